"""The HTTP server against hostile clients: slow senders, pipeliners, connection floods, bad
Host headers. Real loopback sockets, as in test_http_server.py, whose helpers these share."""

from __future__ import annotations

import asyncio
import time

import orjson

from tests.router.test_http_server import (
    Counted,
    Receive,
    Scope,
    Send,
    app_of,
    connect,
    echo,
    get,
    post,
    read_reply,
    respond,
    rest,
    serving,
)


async def _trickle(writer: asyncio.StreamWriter, data: bytes, gap: float) -> None:
    for i in range(len(data)):
        writer.write(data[i : i + 1])
        await asyncio.sleep(gap)


# --- the read deadline --------------------------------------------------------------------------


async def test_a_head_that_trickles_in_is_408_at_the_read_deadline() -> None:
    """One byte every 0.2 s is never silence, but the head must be whole within read_timeout."""
    handler = Counted(echo)
    async with (
        serving(app_of(handler), keep_alive=1.0, read_timeout=1.0) as (_, port),
        connect(port) as (reader, writer),
    ):
        head = b"GET / HTTP/1.1\r\nhost: test\r\n" + b"x-slow: " + b"a" * 200 + b"\r\n\r\n"
        sender = asyncio.create_task(_trickle(writer, head, 0.2))
        started = time.monotonic()
        reply = await read_reply(reader)
        elapsed = time.monotonic() - started
        sender.cancel()
        assert (reply.status, reply.get("connection")) == (408, "close")
        assert orjson.loads(reply.body)["sys.Error"]["HTTPStatus"] == 408
        assert 1.0 <= elapsed < 2.5
    assert handler.calls == 0


async def test_a_body_that_trickles_in_is_408_at_the_read_deadline() -> None:
    handler = Counted(echo)
    async with (
        serving(app_of(handler), keep_alive=5.0, read_timeout=1.0) as (_, port),
        connect(port) as (reader, writer),
    ):
        writer.write(b"POST /api/v2/x HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n")
        sender = asyncio.create_task(_trickle(writer, b"b" * 100, 0.2))
        reply = await read_reply(reader)
        sender.cancel()
        assert reply.status == 408
        assert orjson.loads(reply.body)["status"] == 408  # API v2's error shape for a v2 URL
    assert handler.calls == 0


async def test_a_request_within_the_read_deadline_is_served_on_a_kept_alive_connection() -> None:
    """The deadline is per request, from its first byte: a connection lives on past it."""
    async with (
        serving(app_of(echo), keep_alive=5.0, read_timeout=1.0) as (_, port),
        connect(port) as (reader, writer),
    ):
        for i in range(3):
            await _trickle(writer, post(f"/{i}", b"abc"), 0.01)
            reply = await read_reply(reader)
            assert (reply.status, reply.body) == (200, b"POST /%d abc" % i)
            await asyncio.sleep(0.6)  # 1.8 s in all: past read_timeout, each request within it


async def test_empty_lines_do_not_keep_an_idle_connection_open() -> None:
    async with serving(app_of(echo), keep_alive=0.5) as (_, port), connect(port) as (reader, writer):
        started = time.monotonic()
        closed = asyncio.create_task(rest(reader))
        while not closed.done() and time.monotonic() - started < 4.0:
            writer.write(b"\r\n")
            await asyncio.sleep(0.1)
        assert closed.done() and await closed == b""
        assert time.monotonic() - started < 3.0


# --- connections and memory -------------------------------------------------------------------


async def test_connections_beyond_the_cap_are_answered_503_with_retry_after() -> None:
    async with serving(app_of(echo), max_connections=2) as (server, port):
        async with connect(port) as (r1, w1), connect(port) as (r2, w2):
            for reader, writer in ((r1, w1), (r2, w2)):
                writer.write(get("/held"))
                assert (await read_reply(reader)).status == 200
            async with connect(port) as (r3, w3):
                w3.write(get("/api/v2/apps/a/b/workspaces/1/queries/q.x"))
                refused = await read_reply(r3)
                assert (refused.status, refused.get("retry-after"), refused.get("connection")) == (503, "1", "close")
                assert orjson.loads(refused.body)["status"] == 503
                assert await rest(r3) == b""
            assert server.refused == 1
            w1.write(get("/still"))  # the two within the cap are served on
            assert (await read_reply(r1)).body == b"GET /still "
        await asyncio.sleep(0.1)  # their close reaches the server
        async with connect(port) as (reader, writer):
            writer.write(get("/again"))
            assert (await read_reply(reader)).status == 200


async def test_reading_pauses_after_one_pipelined_request() -> None:
    """A client that pipelines large bodies while the first request is served: the server holds
    the one in flight and one more, not a queue of them."""
    release = asyncio.Event()
    size = 1024 * 1024

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        await release.wait()
        await respond(send, 200, b"%d" % len(message["body"]))

    async with serving(app_of(handler)) as (server, port), connect(port) as (reader, writer):
        body = b"p" * size
        sender = asyncio.create_task(_send_all(writer, b"".join(post(f"/{i}", body) for i in range(12))))
        await asyncio.sleep(0.8)
        [conn] = server.connections
        assert len(conn.queue) <= 1
        assert server.buffered <= 3 * size, server.buffered  # in flight, waiting, a read's worth
        release.set()
        replies = [await read_reply(reader) for _ in range(12)]
        assert [r.body for r in replies] == [b"%d" % size] * 12
        await sender
        assert server.buffered == 0


async def _send_all(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def test_request_bodies_beyond_the_servers_budget_are_503() -> None:
    release = asyncio.Event()

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await release.wait()
        await respond(send, 200)

    async with serving(app_of(handler), max_buffered=1024 * 1024) as (server, port):
        async with connect(port) as (r1, w1), connect(port) as (r2, w2):
            w1.write(post("/one", b"a" * 700_000))
            await asyncio.sleep(0.3)
            w2.write(post("/two", b"b" * 700_000))
            refused = await read_reply(r2)
            assert (refused.status, refused.get("retry-after")) == (503, "1")
            release.set()
            assert (await read_reply(r1)).status == 200
        await asyncio.sleep(0.1)
        assert server.buffered == 0


# --- Host -----------------------------------------------------------------------------------------


async def test_http_1_1_without_host_is_400() -> None:
    handler = Counted(echo)
    async with serving(app_of(handler)) as (_, port), connect(port) as (reader, writer):
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        reply = await read_reply(reader)
        assert (reply.status, reply.get("connection")) == (400, "close")
        assert "Host" in orjson.loads(reply.body)["sys.Error"]["Message"]
    assert handler.calls == 0


async def test_two_host_headers_are_400() -> None:
    handler = Counted(echo)
    async with serving(app_of(handler)) as (_, port):
        for version in ("1.1", "1.0"):
            async with connect(port) as (reader, writer):
                writer.write(f"GET / HTTP/{version}\r\nHost: a\r\nHost: b\r\n\r\n".encode())
                assert (await read_reply(reader)).status == 400
    assert handler.calls == 0


async def test_http_1_0_without_host_is_served() -> None:
    async with serving(app_of(echo)) as (_, port), connect(port) as (reader, writer):
        writer.write(b"GET /old HTTP/1.0\r\n\r\n")
        reply = await read_reply(reader)
    assert (reply.status, reply.body) == (200, b"GET /old ")


# --- streamed bodies (BLOB uploads) under the read deadline ---------------------------------------


def _streams(method: bytes, target: bytes) -> bool:
    return target.startswith(b"/upload")


async def _upload_app(scope: Scope, receive: Receive, send: Send, slow_consumer: float = 0.0) -> None:
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        total += len(message.get("body", b""))
        if slow_consumer:
            await asyncio.sleep(slow_consumer)
        if not message.get("more_body"):
            break
    await respond(send, 200, b"%d" % total)


async def test_a_streamed_upload_that_keeps_its_pace_outlasts_the_read_deadline() -> None:
    """A BLOB upload at 256 KiB/s for 2.5 s against a 1 s read deadline: each 64 KiB earns a
    second, so it is served."""
    async with (
        serving(app_of(_upload_app), stream=_streams, read_timeout=1.0, keep_alive=5.0) as (_, port),
        connect(port) as (reader, writer),
    ):
        size = 40 * 16 * 1024
        writer.write(b"POST /upload HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % size)
        for _ in range(40):
            writer.write(b"u" * 16 * 1024)
            await asyncio.sleep(1 / 16)
        reply = await read_reply(reader)
    assert (reply.status, reply.body) == (200, b"%d" % size)


async def test_a_streamed_upload_that_trickles_is_cut_at_the_read_deadline() -> None:
    async def upload(scope: Scope, receive: Receive, send: Send) -> None:
        await _upload_app(scope, receive, send)

    async with (
        serving(app_of(upload), stream=_streams, read_timeout=1.0, keep_alive=5.0) as (_, port),
        connect(port) as (reader, writer),
    ):
        writer.write(b"POST /upload HTTP/1.1\r\nhost: t\r\ncontent-length: 100000\r\n\r\n")
        sender = asyncio.create_task(_trickle(writer, b"t" * 1000, 0.1))
        started = time.monotonic()
        # The application hears a disconnect and returns: the server says why, and closes.
        reply = await read_reply(reader)
        assert (reply.status, reply.get("connection")) == (408, "close")
        assert await rest(reader) == b""
        sender.cancel()
        assert 1.0 <= time.monotonic() - started < 2.5


async def test_a_slow_application_does_not_cost_the_uploader_its_deadline() -> None:
    """Reading pauses while the application has not taken what arrived; that wait is the
    server's, not the client's. Here the application sits 2 s on the first piece (reading
    paused), and the client sends the last bytes 1 s after that, 3 s after the first: within
    its 1.5 s of reading. (No allowance per byte here.)"""

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        await asyncio.sleep(2.0)
        total = len(message["body"])
        while message.get("more_body"):
            message = await receive()
            total += len(message.get("body", b""))
        await respond(send, 200, b"%d" % total)

    options = {"stream": _streams, "read_timeout": 1.5, "keep_alive": 5.0, "stream_min_rate": 1 << 40}
    async with serving(app_of(slow), **options) as (_, port), connect(port) as (reader, writer):
        size = 1024 * 1024
        writer.write(b"POST /upload HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % size + b"s" * (size - 10))
        await asyncio.sleep(3.0)
        writer.write(b"s" * 10)
        reply = await asyncio.wait_for(read_reply(reader), 15)
    assert (reply.status, reply.body) == (200, b"%d" % size)
