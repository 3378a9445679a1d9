"""The HTTP/1.1 server of voedger.router.http over real loopback sockets, with small ASGI apps.

Raw ``asyncio.open_connection`` where the bytes matter (pipelining, malformed requests,
HTTP/1.0), httpx where they do not. Every read has a deadline, so a server that forgets to
answer or to close fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from voedger.router.http import DRAIN_SECONDS, ASGIApp, HttpServer, LifespanError

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

HOST = "127.0.0.1"
DEADLINE = 2.5
"""Seconds any single read may take; the idle sweep runs once a second, so 2.5 covers it."""
DATE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")


# --- apps -------------------------------------------------------------------------------------


async def _lifespan(receive: Receive, send: Send, events: list[str] | None = None) -> None:
    while True:
        message = await receive()
        kind = message["type"]  # lifespan.startup or lifespan.shutdown
        if events is not None:
            events.append(kind.removeprefix("lifespan."))
        await send({"type": f"{kind}.complete"})
        if kind == "lifespan.shutdown":
            return


def app_of(handler: Handler, events: list[str] | None = None) -> ASGIApp:
    """``handler`` for HTTP, plus a lifespan that succeeds (the server requires one)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, events)
        else:
            await handler(scope, receive, send)

    return app


async def respond(send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers ``<method> <path> <body>``: enough to tell requests apart."""
    message = await receive()
    await respond(send, 200, b"%s %s %s" % (scope["method"].encode(), scope["raw_path"], message["body"]))


class Counted:
    """A handler that counts its calls: a refused request must never reach the application."""

    def __init__(self, inner: Handler | None = None) -> None:
        self.calls = 0
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        if self.inner is not None:
            await self.inner(scope, receive, send)


# --- server and client helpers ----------------------------------------------------------------


@asynccontextmanager
async def serving(app: ASGIApp, **options: Any) -> AsyncIterator[tuple[HttpServer, int]]:
    server = HttpServer(app, **options)
    [(host, port)] = await server.start(HOST, 0)
    assert host == HOST
    try:
        yield server, port
    finally:
        await server.stop(1.0)


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name]

    def get(self, name: str) -> str | None:
        values = self.all(name)
        assert len(values) <= 1, f"{name} repeated: {values}"
        return values[0] if values else None


async def _read_reply(reader: asyncio.StreamReader, head: bool) -> Reply:
    line = await reader.readline()
    if not line:
        raise EOFError("the connection closed before a response")
    version, status, *_ = line.decode("latin-1").split(" ", 2)
    assert version == "HTTP/1.1", line
    headers: list[tuple[str, str]] = []
    while (raw := await reader.readline()) != b"\r\n":
        assert raw.endswith(b"\r\n"), f"headers cut short: {raw!r}"
        name, colon, value = raw.decode("latin-1").partition(":")
        assert colon and name == name.strip(), raw
        headers.append((name.lower(), value.strip()))
    reply = Reply(int(status), headers, b"")
    if head or reply.status in (204, 304) or reply.status < 200:
        return reply
    if reply.get("transfer-encoding") == "chunked":
        assert reply.get("content-length") is None
        while size := int((await reader.readline()).strip(), 16):
            reply.body += await reader.readexactly(size)
            assert await reader.readexactly(2) == b"\r\n"
        assert await reader.readexactly(2) == b"\r\n"  # no trailers
    elif (length := reply.get("content-length")) is not None:
        reply.body = await reader.readexactly(int(length))
    else:
        reply.body = await reader.read()  # close-delimited
    return reply


async def read_reply(reader: asyncio.StreamReader, *, head: bool = False) -> Reply:
    return await asyncio.wait_for(_read_reply(reader, head), DEADLINE)


async def rest(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server closes; fails if it does not close in time."""
    return await asyncio.wait_for(reader.read(), DEADLINE)


@asynccontextmanager
async def connect(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        yield reader, writer
    finally:
        writer.close()


def get(path: str = "/", *extra: str, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", "host: test", *extra, "", ""]
    return "\r\n".join(lines).encode()


def post(path: str, body: bytes, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: test", f"content-length: {len(body)}", *extra, "", ""]
    return "\r\n".join(lines).encode() + body


# --- keep-alive, pipelining, request bodies ---------------------------------------------------


async def test_keep_alive_serves_two_requests_on_one_connection() -> None:
    async with serving(app_of(echo)) as (_, port), connect(port) as (reader, writer):
        writer.write(get("/one"))
        first = await read_reply(reader)
        writer.write(post("/two", b"payload"))
        second = await read_reply(reader)
    assert (first.status, first.body) == (200, b"GET /one ")
    assert (second.status, second.body) == (200, b"POST /two payload")
    for reply in (first, second):
        assert reply.get("content-length") == str(len(reply.body))
        assert reply.get("connection") is None  # still open: keep-alive is HTTP/1.1's default
        assert DATE.match(reply.get("date") or ""), reply.headers


async def test_the_servers_date_replaces_the_apps() -> None:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, b"x", [(b"date", b"yesterday"), (b"x-kept", b"yes")])

    async with serving(app_of(handler)) as (_, port), connect(port) as (reader, writer):
        writer.write(get())
        reply = await read_reply(reader)
    assert DATE.match(reply.get("date") or "") and reply.get("x-kept") == "yes"


async def test_pipelined_requests_are_answered_in_order() -> None:
    delays = {"/a": 0.15, "/b": 0.0, "/c": 0.05}
    running = 0
    overlapped = False

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal running, overlapped
        running += 1
        overlapped |= running > 1
        await asyncio.sleep(delays[scope["path"]])
        running -= 1
        await echo(scope, receive, send)

    async with serving(app_of(handler)) as (_, port), connect(port) as (reader, writer):
        writer.write(get("/a") + post("/b", b"bee") + get("/c"))  # one write, one segment
        replies = [await read_reply(reader) for _ in delays]
    assert [r.body for r in replies] == [b"GET /a ", b"POST /b bee", b"GET /c "]
    assert not overlapped  # one request of a connection at a time


async def test_many_pipelined_requests_survive_read_back_pressure() -> None:
    """More than MAX_PIPELINED waiting requests pause reading; all must still be answered."""
    count = 40
    async with serving(app_of(echo)) as (_, port), connect(port) as (reader, writer):
        writer.write(b"".join(get(f"/{i}") for i in range(count)))
        bodies = [(await read_reply(reader)).body for _ in range(count)]
        writer.write(get("/after"))  # reading resumed
        after = await read_reply(reader)
    assert bodies == [b"GET /%d " % i for i in range(count)]
    assert after.body == b"GET /after "


async def test_request_bodies_arrive_whole_in_one_message() -> None:
    messages: list[Message] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        messages.append(dict(await receive()))
        await respond(send, 200)

    async with serving(app_of(handler)) as (_, port), connect(port) as (reader, writer):
        writer.write(post("/", b"0123456789"))
        assert (await read_reply(reader)).status == 200
        # Chunked, split across segments mid-chunk, with a chunk extension.
        writer.write(b"POST / HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"lo\r\n6;ext=1\r\n world\r\n")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")
        assert (await read_reply(reader)).status == 200
        writer.write(get())  # no body at all
        assert (await read_reply(reader)).status == 200
    assert messages == [
        {"type": "http.request", "body": b"0123456789", "more_body": False},
        {"type": "http.request", "body": b"hello world", "more_body": False},
        {"type": "http.request", "body": b"", "more_body": False},
    ]


async def test_expect_100_continue_is_answered_before_the_body_is_sent() -> None:
    async with serving(app_of(echo)) as (_, port), connect(port) as (reader, writer):
        head = post("/up", b"12345", "expect: 100-continue").removesuffix(b"12345")
        writer.write(head)
        interim = await read_reply(reader)  # the body is not sent yet: the server must speak first
        assert (interim.status, interim.headers) == (100, [])
        writer.write(b"12345")
        final = await read_reply(reader)
    assert (final.status, final.body) == (200, b"POST /up 12345")


# --- limits and malformed requests ------------------------------------------------------------


async def test_content_length_above_max_body_is_413_and_closes() -> None:
    handler = Counted(echo)
    async with serving(app_of(handler), max_body=10) as (_, port):
        async with connect(port) as (reader, writer):
            writer.write(post("/", b"x" * 10))  # exactly the limit is fine
            assert (await read_reply(reader)).body == b"POST / " + b"x" * 10
            # Refused on the headers alone: the client need not send the body.
            writer.write(post("/", b"x" * 11).removesuffix(b"x" * 11) + b"x")
            reply = await read_reply(reader)
            assert (reply.status, reply.get("connection")) == (413, "close")
            # In Voedger's error shape, like every refusal of the platform.
            assert orjson.loads(reply.body) == {
                "sys.Error": {"HTTPStatus": 413, "Message": "request body larger than 10 bytes"}
            }
            assert await rest(reader) == b""  # closed, and nothing after the 413
        async with connect(port) as (reader, writer):
            # A 100-continue request over the limit gets the 413 instead of the 100.
            writer.write(post("/", b"x" * 11, "expect: 100-continue").removesuffix(b"x" * 11))
            assert (await read_reply(reader)).status == 413
            assert await rest(reader) == b""
    assert handler.calls == 1


async def test_chunked_body_growing_above_max_body_is_413() -> None:
    handler = Counted()
    async with serving(app_of(handler), max_body=10) as (_, port), connect(port) as (reader, writer):
        writer.write(b"POST / HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n6\r\n123456\r\n")
        await writer.drain()
        await asyncio.sleep(0.02)  # under the limit so far: nothing answered yet
        writer.write(b"6\r\n789012\r\n")
        reply = await read_reply(reader)
        assert (reply.status, reply.get("connection")) == (413, "close")
        assert await rest(reader) == b""
    assert handler.calls == 0


async def test_headers_above_max_headers_are_431() -> None:
    async with serving(app_of(echo), max_headers=1024) as (_, port):
        async with connect(port) as (reader, writer):
            writer.write(get("/", *(f"x-h{i}: {'v' * 50}" for i in range(40))))
            reply = await read_reply(reader)
            assert (reply.status, reply.get("connection")) == (431, "close")
            assert await rest(reader) == b""
        async with connect(port) as (reader, writer):
            writer.write(get("/" + "u" * 2000))  # a long request line counts too
            assert (await read_reply(reader)).status == 431
        async with connect(port) as (reader, writer):
            writer.write(get("/", "x-small: 1"))  # and the server still serves
            assert (await read_reply(reader)).status == 200


async def test_a_refusal_is_the_last_thing_sent() -> None:
    """A refusal stops httptools by raising in a callback, which httptools reports as a parse
    error; that must not add a 400 behind the 413. It showed when the 413 queued behind an
    unread response, so this one is too large for the socket buffers."""
    big = b"x" * (8 * 1024 * 1024)

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, big)

    async with serving(app_of(handler), max_body=10) as (_, port), connect(port) as (reader, writer):
        writer.write(get())
        await asyncio.sleep(0.1)  # the big response is written and queued, not read
        writer.write(post("/", b"x" * 11))
        await asyncio.sleep(0.1)
        assert (await read_reply(reader)).body == big
        assert (await read_reply(reader)).status == 413
        assert await rest(reader) == b""


async def test_one_endless_header_line_is_cut_off_at_max_headers() -> None:
    """httptools calls ``on_header`` only once a header's line is complete, so the server also
    counts the bytes of an unfinished head: a client that never ends one line is cut off."""
    async with serving(app_of(echo), max_headers=1024) as (_, port), connect(port) as (reader, writer):
        try:
            writer.write(b"GET / HTTP/1.1\r\nhost: test\r\nx-endless: ")
            for _ in range(64):  # 256 KiB of one header, against a limit of 1 KiB
                writer.write(b"v" * 4096)
                await writer.drain()
            data = await asyncio.wait_for(reader.read(), 0.5)
        except (ConnectionResetError, BrokenPipeError):
            data = b"reset"
    assert data == b"reset" or data.startswith(b"HTTP/1.1 431 ")


async def test_malformed_request_line_is_400_and_closes() -> None:
    async with serving(app_of(echo)) as (_, port):
        async with connect(port) as (reader, writer):
            writer.write(b"NOT AN HTTP REQUEST\r\n\r\n")
            reply = await read_reply(reader)
            assert (reply.status, reply.get("connection")) == (400, "close")
            assert reply.get("content-type") == "application/json"
            assert orjson.loads(reply.body)["sys.Error"]["HTTPStatus"] == 400
            assert await rest(reader) == b""
        async with connect(port) as (reader, writer):
            # Garbage behind a good request: the good one is answered, then the connection closes.
            writer.write(get("/ok") + b"\x00\x01 garbage\r\n\r\n")
            assert (await read_reply(reader)).body == b"GET /ok "
            assert await rest(reader) == b""


async def test_upgrade_request_is_answered_then_the_connection_closes() -> None:
    """No upgrades here (curl --http2 asks for h2c): the request is served as plain HTTP/1.1 and,
    since what follows an upgrade request is not HTTP/1.1, the connection closes after it."""
    async with serving(app_of(echo)) as (_, port), connect(port) as (reader, writer):
        writer.write(get("/up", "connection: upgrade", "upgrade: h2c") + get("/next"))
        reply = await read_reply(reader)
        assert (reply.status, reply.body, reply.get("connection")) == (200, b"GET /up ", "close")
        assert await rest(reader) == b""


# --- response framing -------------------------------------------------------------------------


async def test_head_has_the_length_but_no_body_and_204_has_neither() -> None:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/empty":
            await respond(send, 204)
        elif scope["path"] == "/declared":
            await respond(send, 200, b"hello", [(b"content-length", b"5")])
        else:
            await respond(send, 200, b"hello")  # the server counts the length itself

    async with serving(app_of(handler)) as (_, port), connect(port) as (reader, writer):
        for path in ("/declared", "/counted"):
            writer.write(get(path).replace(b"GET", b"HEAD", 1))
            reply = await read_reply(reader, head=True)
            assert (reply.status, reply.get("content-length")) == (200, "5"), path
        writer.write(get("/empty"))
        empty = await read_reply(reader)
        assert empty.status == 204
        assert empty.get("content-length") is None and empty.get("transfer-encoding") is None
        # No stray body bytes on the wire: the next response starts right where these ended.
        writer.write(get("/counted"))
        reply = await read_reply(reader)
        assert (reply.status, reply.body) == (200, b"hello")


async def test_a_slow_reader_pauses_the_writer_and_gets_every_byte() -> None:
    """Flow control: while the client does not read, the transport's buffer fills and ``send``
    waits; once it reads, the rest flows and nothing is lost or reordered."""
    chunk, count = 64 * 1024, 64  # 4 MiB, far above the transport's write buffer
    waited = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", str(chunk * count).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(count):
            started = asyncio.get_running_loop().time()
            await send({"type": "http.response.body", "body": bytes([i]) * chunk, "more_body": i < count - 1})
            waited.append(asyncio.get_running_loop().time() - started)

    async with serving(app_of(handler)) as (_, port):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        sock.connect((HOST, port))
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            writer.write(get())
            await asyncio.sleep(0.3)  # not reading: the server's sends must wait
            reply = await read_reply(reader)
        finally:
            writer.close()
    assert reply.status == 200 and len(reply.body) == chunk * count
    assert all(reply.body[i * chunk : (i + 1) * chunk] == bytes([i]) * chunk for i in range(count))
    assert max(waited) >= 0.2, "no send waited for the reader"


async def test_streamed_response_is_chunked_over_http_1_1() -> None:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for part in (b"alpha,", b"", b"beta,"):  # an empty part must not end the chunked body
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"gamma"})

    async with serving(app_of(handler)) as (_, port):
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", trust_env=False) as client:
            r1 = await client.get("/")
            r2 = await client.get("/")  # the same connection, still in step after a chunked body
        async with connect(port) as (reader, writer):
            writer.write(get())
            raw = await read_reply(reader)
    for r in (r1, r2):
        assert r.status_code == 200 and r.text == "alpha,beta,gamma"
        assert r.headers["transfer-encoding"] == "chunked" and "content-length" not in r.headers
    assert raw.body == b"alpha,beta,gamma"


async def test_streamed_response_over_http_1_0_is_close_delimited() -> None:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one,", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})

    async with serving(app_of(handler)) as (_, port):
        for extra in ((), ("connection: keep-alive",)):  # even a keep-alive 1.0 client
            async with connect(port) as (reader, writer):
                writer.write(get("/", *extra, version="1.0"))
                reply = await read_reply(reader)  # read to EOF: neither length nor chunks
                assert reply.body == b"one,two", extra
                assert reply.all("connection") == ["close"], extra
                assert reply.get("transfer-encoding") is None and reply.get("content-length") is None


async def test_body_not_matching_its_content_length_is_not_sent() -> None:
    errors: list[str] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        body = b"abc" if scope["path"] == "/long" else b"a"
        try:
            await respond(send, 200, body, [(b"content-length", b"2")])
        except RuntimeError as exc:
            errors.append(str(exc))
            raise

    async with serving(app_of(handler)) as (_, port):
        for path in ("/long", "/short"):
            async with connect(port) as (reader, writer):
                writer.write(get(path))
                assert await rest(reader) == b"", path  # no head promising what will not come
    assert len(errors) == 2 and "longer" in errors[0] and "shorter" in errors[1]


# --- application errors -----------------------------------------------------------------------


async def test_app_raising_before_the_response_is_500_and_the_server_goes_on() -> None:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] in ("/boom", "/api/v2/apps/o/a/boom"):
            raise ValueError("boom")
        if scope["path"] == "/silent":
            return  # no response at all
        await echo(scope, receive, send)

    async with serving(app_of(handler)) as (_, port):
        for path in ("/boom", "/silent"):
            async with connect(port) as (reader, writer):
                writer.write(get(path))
                reply = await read_reply(reader)
                assert reply.status == 500, path
                assert orjson.loads(reply.body) == {"sys.Error": {"HTTPStatus": 500, "Message": "internal error"}}
                assert reply.get("connection") == "close", path  # the header says what happens
                assert await rest(reader) == b"", path
        async with connect(port) as (reader, writer):  # an API v2 URL: v2's error shape
            writer.write(get("/api/v2/apps/o/a/boom"))
            reply = await read_reply(reader)
            assert (reply.status, orjson.loads(reply.body)) == (500, {"status": 500, "message": "internal error"})
        async with connect(port) as (reader, writer):
            writer.write(get("/fine"))
            assert (await read_reply(reader)).status == 200


async def test_app_raising_after_the_response_started_closes_the_connection() -> None:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("mid-response")

    async with serving(app_of(handler)) as (_, port), connect(port) as (reader, writer):
        writer.write(get())
        data = await rest(reader)
    # The head and the first chunk went out; the chunked body never ends, the connection does.
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"7\r\npartial\r\n")


async def test_a_line_break_in_a_response_header_is_refused() -> None:
    refused: list[str] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/fine":
            await respond(send, 200, b"fine")
            return
        evil = {
            "/value": (b"x-name", b"v\r\nx-injected: 1"),
            "/name": (b"x-injected: 1\r\nx-name", b"v"),
            "/bare-lf": (b"x-name", b"v\nx-injected: 1"),
        }[scope["path"]]
        try:
            await respond(send, 200, b"body", [evil])
        except RuntimeError as exc:
            refused.append(str(exc))
            raise

    async with serving(app_of(handler)) as (_, port):
        for path in ("/value", "/name", "/bare-lf"):
            async with connect(port) as (reader, writer):
                writer.write(get(path))
                reply = await read_reply(reader)
                # Refused before anything was sent: a plain 500, and nothing injected.
                assert reply.status == 500 and reply.get("x-injected") is None, (path, reply)
                assert await rest(reader) == b"", path
        async with connect(port) as (reader, writer):
            writer.write(get("/fine"))
            assert (await read_reply(reader)).body == b"fine"
    assert len(refused) == 3 and all("line break" in r for r in refused)


# --- connection lifetime ----------------------------------------------------------------------


async def test_connection_close_and_http_1_0_close_after_the_response() -> None:
    async with serving(app_of(echo)) as (_, port):
        for request in (
            get("/a", "connection: close") + get("/never"),  # the pipelined one is not served
            get("/a", version="1.0"),
        ):
            async with connect(port) as (reader, writer):
                writer.write(request)
                reply = await read_reply(reader)
                assert (reply.body, reply.get("connection")) == (b"GET /a ", "close")
                assert await rest(reader) == b""


async def test_app_asking_to_close_closes_with_one_connection_header() -> None:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, b"bye", [(b"Connection", b"close")])

    async with serving(app_of(handler)) as (_, port), connect(port) as (reader, writer):
        writer.write(get() + get())
        reply = await read_reply(reader)
        assert reply.body == b"bye" and reply.all("connection") == ["close"]
        assert await rest(reader) == b""


async def test_http_1_0_keep_alive_is_honoured() -> None:
    async with serving(app_of(echo)) as (_, port), connect(port) as (reader, writer):
        writer.write(get("/1", "connection: keep-alive", version="1.0"))
        assert (await read_reply(reader)).body == b"GET /1 "
        writer.write(get("/2", version="1.0"))
        assert (await read_reply(reader)).body == b"GET /2 "
        assert await rest(reader) == b""


async def test_client_disconnect_reaches_a_waiting_receive() -> None:
    waiting = asyncio.Event()
    second: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        waiting.set()
        second.set_result(await receive())

    async with serving(app_of(handler)) as (_, port):
        async with connect(port) as (_reader, writer):
            writer.write(post("/", b"body"))
            await asyncio.wait_for(waiting.wait(), DEADLINE)
        assert await asyncio.wait_for(second, DEADLINE) == {"type": "http.disconnect"}


async def test_idle_keep_alive_connection_is_closed() -> None:
    async with serving(app_of(echo), keep_alive=0.3) as (_, port), connect(port) as (reader, writer):
        writer.write(get())
        assert (await read_reply(reader)).status == 200
        idle_from = time.monotonic()
        assert await rest(reader) == b""
        assert time.monotonic() - idle_from >= 0.3


async def test_a_connection_that_never_sends_a_request_is_closed() -> None:
    async with serving(app_of(echo), keep_alive=0.3) as (_, port), connect(port) as (reader, _writer):
        connected = time.monotonic()
        assert await rest(reader) == b""
        assert time.monotonic() - connected >= 0.3


async def test_a_slow_request_is_not_taken_for_an_idle_connection() -> None:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(1.1)  # spans a sweep, well past keep_alive
        await echo(scope, receive, send)

    async with serving(app_of(handler), keep_alive=0.3) as (_, port), connect(port) as (reader, writer):
        writer.write(get("/slow"))
        reply = await read_reply(reader)
    assert (reply.status, reply.body) == (200, b"GET /slow ")


async def test_a_stalled_request_body_is_408_and_closes() -> None:
    handler = Counted()
    async with serving(app_of(handler), keep_alive=0.3) as (_, port), connect(port) as (reader, writer):
        writer.write(b"POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 10\r\n\r\nabc")  # 7 bytes never come
        started = time.monotonic()
        reply = await read_reply(reader)
        assert (reply.status, reply.get("connection")) == (408, "close")
        assert orjson.loads(reply.body)["sys.Error"]["HTTPStatus"] == 408
        assert time.monotonic() - started >= 0.3
        assert await rest(reader) == b""
    assert handler.calls == 0


async def test_a_body_that_keeps_coming_is_not_cut_off() -> None:
    """The timeout is on silence, not on the whole body: a slow but steady sender is served."""
    async with serving(app_of(echo), keep_alive=0.3) as (_, port), connect(port) as (reader, writer):
        writer.write(b"POST /t HTTP/1.1\r\nhost: test\r\ncontent-length: 8\r\n\r\n")
        for byte in b"12345678":  # 8 x 0.2 s: spans sweeps, each gap under keep_alive
            await asyncio.sleep(0.2)
            writer.write(bytes([byte]))
        reply = await read_reply(reader)
    assert (reply.status, reply.body) == (200, b"POST /t 12345678")


# --- graceful stop and lifespan ---------------------------------------------------------------


async def test_graceful_stop_finishes_the_request_in_flight() -> None:
    events: list[str] = []
    entered = asyncio.Event()

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        entered.set()
        await asyncio.sleep(0.3)
        await respond(send, 200, b"done")
        events.append("response")

    server = HttpServer(app_of(handler, events))
    [(_, port)] = await server.start(HOST, 0)
    async with connect(port) as (reader, writer), connect(port) as (idle_reader, _):
        writer.write(get())
        await asyncio.wait_for(entered.wait(), DEADLINE)
        stopping = asyncio.create_task(server.stop(2.0))
        await asyncio.sleep(0.05)
        with pytest.raises(ConnectionRefusedError):  # no longer accepting
            await asyncio.open_connection(HOST, port)
        began = time.monotonic()
        assert await rest(idle_reader) == b""  # an idle connection closes after the drain
        assert DRAIN_SECONDS - 0.2 < time.monotonic() - began < DRAIN_SECONDS + 1.0
        assert not stopping.done()
        reply = await read_reply(reader)
        assert (reply.status, reply.body, reply.get("connection")) == (200, b"done", "close")
        assert await rest(reader) == b""
        await asyncio.wait_for(stopping, DEADLINE)
    assert events == ["startup", "response", "shutdown"]
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(HOST, port)


async def test_graceful_stop_gives_up_after_its_timeout() -> None:
    cancelled = asyncio.Event()

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = HttpServer(app_of(handler))
    [(_, port)] = await server.start(HOST, 0)
    async with connect(port) as (reader, writer):
        writer.write(get())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await server.stop(0.2)
        assert time.monotonic() - started < 1.0
        assert await rest(reader) == b""  # aborted, unanswered
    await asyncio.wait_for(cancelled.wait(), DEADLINE)


async def test_starlette_lifespan_runs_around_the_requests() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"greeting": "hello"}
        events.append("shutdown")

    async def hello(request: Request) -> PlainTextResponse:
        events.append("request")
        return PlainTextResponse(f"{request.state.greeting} from {request.url.path}")

    app = Starlette(routes=[Route("/hi", hello)], lifespan=lifespan)
    server = HttpServer(app)
    [(_, port)] = await server.start(HOST, 0)
    assert events == ["startup"]  # before the first connection is accepted
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", trust_env=False) as client:
        r = await client.get("/hi")
        assert (r.status_code, r.text) == (200, "hello from /hi")
        assert (await client.get("/missing")).status_code == 404
    await server.stop(1.0)
    assert events == ["startup", "request", "shutdown"]


async def test_lifespan_startup_failure_fails_start() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    def read_config() -> None:
        raise RuntimeError("bad config")

    @asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        read_config()  # Starlette turns the exception into lifespan.startup.failed
        yield

    with pytest.raises(LifespanError, match="no database"):
        await HttpServer(failing).start(HOST, 0)
    with pytest.raises(LifespanError, match="bad config"):
        await HttpServer(Starlette(lifespan=broken)).start(HOST, 0)


async def test_lifespan_shutdown_failure_fails_stop() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})

    server = HttpServer(app)
    await server.start(HOST, 0)
    with pytest.raises(LifespanError, match="flush failed"):
        await server.stop(1.0)


# --- scope ------------------------------------------------------------------------------------


async def test_scope_describes_the_request() -> None:
    scopes: list[Scope] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await echo(scope, receive, send)

    async with serving(app_of(handler)) as (_, port), connect(port) as (reader, writer):
        writer.write(get("/a%20b/c%2Fd/%C3%A9?x=1&y=%20", "X-Custom-Header: Value"))
        await read_reply(reader)
        writer.write(get("/", "connection: keep-alive", version="1.0"))
        await read_reply(reader)
        client_port = writer.get_extra_info("sockname")[1]
    scope, scope10 = scopes
    assert scope["type"] == "http" and scope["scheme"] == "http" and scope["method"] == "GET"
    assert scope["path"] == "/a b/c/d/é"
    assert scope["raw_path"] == b"/a%20b/c%2Fd/%C3%A9"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["root_path"] == ""
    assert (b"x-custom-header", b"Value") in scope["headers"] and (b"host", b"test") in scope["headers"]
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert scope["client"] == (HOST, client_port)
    assert scope["server"] == (HOST, port)
    assert scope["http_version"] == "1.1" and scope10["http_version"] == "1.0"
    assert scope["asgi"]["version"] == "3.0"


# --- on uvloop, as in production --------------------------------------------------------------


async def _uvloop_scenario() -> list[bytes]:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] in ("/boom", "/api/v2/apps/o/a/boom"):
            raise ValueError("boom")
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ab", "more_body": True})
            await send({"type": "http.response.body", "body": b"cd"})
            return
        await echo(scope, receive, send)

    seen: list[bytes] = []
    async with serving(app_of(handler), max_body=10) as (_, port):
        async with connect(port) as (reader, writer):
            writer.write(get("/a") + post("/b", b"bee") + get("/stream"))
            seen += [(await read_reply(reader)).body for _ in range(3)]
            writer.write(post("/", b"x" * 11))
            seen.append(b"%d" % (await read_reply(reader)).status)
            seen.append(await rest(reader))
        async with connect(port) as (reader, writer):
            writer.write(get("/boom"))
            seen.append(b"%d" % (await read_reply(reader)).status)
    return seen


async def test_the_server_on_uvloop() -> None:
    """Production runs on uvloop, whose transports only resemble asyncio's."""
    uvloop = pytest.importorskip("uvloop")
    seen = await asyncio.to_thread(uvloop.run, _uvloop_scenario())
    assert seen == [b"GET /a ", b"POST /b bee", b"ab" + b"cd", b"413", b"", b"500"]


async def test_a_request_sent_as_the_stop_begins_is_served() -> None:
    """A client may send on a kept-alive connection while the server begins to stop: the request
    is read and answered (closing the connection after), not dropped unanswered."""

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, b"late but served")

    server = HttpServer(app_of(handler))
    [(_, port)] = await server.start(HOST, 0)
    async with connect(port) as (reader, writer):
        writer.write(get())
        first = await read_reply(reader)
        assert first.status == 200 and first.get("connection") != "close"
        stopping = asyncio.create_task(server.stop(5.0))
        await asyncio.sleep(0.2)
        writer.write(get())
        reply = await read_reply(reader)
        assert (reply.status, reply.body, reply.get("connection")) == (200, b"late but served", "close")
        assert await rest(reader) == b""
        await asyncio.wait_for(stopping, DEADLINE)


# --- streamed request bodies ------------------------------------------------------------------


def _streams(method: bytes, target: bytes) -> bool:
    return target.startswith(b"/upload")


async def test_streamed_body_arrives_in_bounded_pieces() -> None:
    from voedger.router.http import STREAM_BUFFER

    sizes: list[int] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            sizes.append(len(message.get("body", b"")))
            await asyncio.sleep(0.001)  # a slow consumer: reading must pause, not buffer the rest
            if not message.get("more_body"):
                break
        await respond(send, 200, b"%d" % sum(sizes))

    total = 20 * 1024 * 1024

    async def body() -> AsyncIterator[bytes]:
        for _ in range(total // 65_536):
            yield b"x" * 65_536

    async with serving(app_of(handler), stream=_streams, max_body=1024) as (_, port):
        client = httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=30)
        async with client:
            r = await client.post("/upload", content=body())
            assert r.status_code == 200 and r.text == str(total), r.text
            assert len(sizes) > 20
            assert max(sizes) <= STREAM_BUFFER + 512 * 1024
            # The same server still buffers (and bounds) every other body.
            sizes.clear()
            r = await client.post("/other", content=b"y" * 2048)
            assert r.status_code == 413, r.text


async def test_answer_before_the_streamed_body_ends_closes_the_connection() -> None:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await respond(send, 413, b"too large")

    async with serving(app_of(handler), stream=_streams) as (_, port):
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + b"z" * 1000)
        await writer.drain()
        head = await asyncio.wait_for(reader.read(4096), DEADLINE)
        assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower(), head
        assert await asyncio.wait_for(reader.read(), DEADLINE) in (b"", b"too large")
        writer.close()


async def test_client_gone_mid_stream_is_a_disconnect() -> None:
    seen: list[str] = []
    done = asyncio.Event()

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                seen.append(message["type"])
                done.set()
                return

    async with serving(app_of(handler), stream=_streams) as (_, port):
        _, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + b"z" * 1000)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        await asyncio.wait_for(done.wait(), DEADLINE)
        assert seen == ["http.disconnect"]
