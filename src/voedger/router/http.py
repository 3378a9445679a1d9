"""The HTTP/1.1 front: serves an ASGI application over asyncio with httptools.

Why not uvicorn: on the 2-core benchmark machine the event loop is the ceiling, and uvicorn
writes a response's head and body separately, arms a keep-alive timer per response and runs a
receive cycle per request. On an ASGI app that answers after 10 ms with a fixed CPU cost, this
server spent 75-105 µs less per request; on the command benchmark, alternating runs gave about
50 µs less CPU per command and 6-10 % more commands a second (docs/benchmarks.md). It keeps to
what the platform needs:

- HTTP/1.1 with keep-alive and pipelining (one request of a connection at a time, in order);
  HTTP/1.0; ``Expect: 100-continue``; request bodies read whole before the application starts,
  bounded by ``max_body``; bounded header size;
- streamed request bodies for the requests ``stream`` picks (BLOB uploads): the application
  starts at the head and receives the body as it arrives, at most ``STREAM_BUFFER`` bytes of it
  waiting (reading pauses beyond), with no ``max_body`` (the application sets its own limit); a
  response sent before such a body was read whole closes the connection (gently: ``_close``);
- a response is one write when its length is known, else chunked (close-delimited for HTTP/1.0);
- what the server answers itself (400, 413, 431, a 500 for an application that failed) is in
  Voedger's error shape, as the router's answers are;
- the ASGI lifespan (the application must speak it; Starlette does);
- idle keep-alive connections, and requests whose bytes stop coming (408), closed by one sweep a
  second (no timer per request); a request's head and body must arrive within ``read_timeout``
  of its first byte (15 s, Voedger's read deadline), however steadily they trickle (a streamed
  body earns a second more per ``STREAM_MIN_RATE`` bytes);
- at most ``max_connections`` connections (beyond, a 503 with ``Retry-After`` and close); at
  most one complete request waiting behind the one in flight (reading pauses until it starts);
  at most ``max_buffered`` bytes of request bodies held by all connections together (beyond,
  503): what hostile clients can make the server hold is bounded;
- HTTP/1.1 requests with no ``Host`` header, and requests with two, answer 400 (RFC 9112);
- graceful shutdown on SIGTERM or SIGINT: stop accepting, finish the requests in flight, close,
  then the lifespan's shutdown.

- TLS 1.2 or newer on the same port when given a certificate and key (``tls_context``).

Not here: HTTP/2 (``router.fronts``: Hypercorn), WebSocket, trusted proxy headers, certificates
obtained by ACME.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import signal
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence, Sized
from http import HTTPStatus
from typing import Any, Protocol, cast
from urllib.parse import unquote

import httptools

from voedger.syserror import SysError

log = logging.getLogger("voedger.http")

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

MAX_BODY = 64 * 1024 * 1024
"""Larger request bodies answer 413 before the application sees them, on their headers alone
when they give a content-length. The platform passes the router's own limit."""
MAX_HEADERS = 64 * 1024
"""Bytes of request line and headers; more answers 431."""
MAX_PIPELINED = 1
"""Requests of one connection waiting behind the one in flight before reading pauses (their
bodies are held whole, so each one waiting is up to ``max_body`` of memory)."""
MAX_CONNECTIONS = 10_000
"""Connections served at once (Voedger's default connections limit); more get a 503 and close."""
MAX_BUFFERED = 512 * 1024 * 1024
"""Bytes of request bodies all connections together may hold (received, not yet answered)."""
READ_TIMEOUT = 15.0
"""Seconds from a request's first byte until its head and body must have arrived (Voedger's
``DefaultRouterReadTimeout``)."""
STREAM_MIN_RATE = 64 * 1024
"""A streamed body (a BLOB upload) gets a second more than ``read_timeout`` per this many bytes."""
MAX_REFUSING = 1024
"""Connections beyond ``max_connections`` kept for a moment to be answered 503; beyond, dropped."""
STREAM_BUFFER = 256 * 1024
"""Bytes of a streamed body received and not yet taken by the application before reading pauses."""
KEEP_ALIVE_SECONDS = 15.0
GRACEFUL_SECONDS = 30.0
DRAIN_SECONDS = 1.0
"""At a stop, how long connections are still read for requests clients sent a moment before."""
LINGER_SECONDS = 2.0
"""How long a connection closed while its client may still be sending a request (a body
answered before it arrived whole) is still read, the bytes dropped, before it closes."""

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_NO_BODY_STATUSES = frozenset({204, 304})


def _status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))


_STATUS_LINES = {status: _status_line(status) for status in _REASONS}


def _refusal(status: int, message: str, url: bytes = b"") -> bytes:
    """A response the server makes itself (a request it refuses, an application that failed),
    in Voedger's error shape: API v2's for a v2 URL, else v1's (also when the URL is unknown).
    A 503 says when to come back."""
    err = SysError(status, message)
    body = err.to_v2() if url.startswith(b"/api/v2/") else err.to_v1()
    head = _STATUS_LINES.get(status) or _status_line(status)
    retry = b"retry-after: 1\r\n" if status == 503 else b""
    return b"%scontent-type: application/json\r\ncontent-length: %d\r\n%sconnection: close\r\n\r\n%s" % (
        head,
        len(body),
        retry,
        body,
    )


class _Clock:
    """The ``date`` header, formatted once a second by the server's sweep."""

    def __init__(self) -> None:
        self.header = b""
        self.tick()

    def tick(self) -> None:
        self.header = b"date: " + email.utils.formatdate(usegmt=True).encode() + b"\r\n"


class _Request:
    """One parsed request of a connection, waiting for or going through the application."""

    __slots__ = (
        "accounted",
        "body",
        "body_done",
        "buffered",
        "headers",
        "keep_alive",
        "method",
        "path",
        "query",
        "streamed",
        "url",
        "version",
        "waiter",
    )

    def __init__(self, method: bytes, url: bytes, headers: list[tuple[bytes, bytes]], version: str) -> None:
        self.method = method
        self.url = url
        self.path = b"/"
        self.query = b""
        self.headers = headers
        self.body: list[bytes] = []
        self.keep_alive = True
        self.version = version
        self.streamed = False
        """The application takes the body as it arrives."""
        self.body_done = False
        """All of a streamed body has arrived."""
        self.buffered = 0
        """Bytes of a streamed body arrived and not yet taken."""
        self.waiter: asyncio.Future[None] | None = None
        """The application waiting for more of a streamed body."""
        self.accounted = 0
        """Body bytes counted in the server's ``buffered`` until the request is done with."""

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Exchange:
    """The ASGI ``receive`` and ``send`` of one request."""

    __slots__ = (
        "_done",
        "body_read",
        "chunked",
        "complete",
        "conn",
        "head",
        "head_only",
        "no_length",
        "remaining",
        "request",
        "started",
    )

    def __init__(self, conn: Connection, request: _Request) -> None:
        self.conn = conn
        self.request = request
        self.body_read = False
        self.head = b""
        self.started = False
        self.complete = False
        self.chunked = False
        self.remaining = -1
        """Body bytes still due under the response's content-length; -1 when it gave none."""
        self.head_only = request.method == b"HEAD"
        self.no_length = False
        """A 204 or 304: no body and no content-length."""
        self._done: asyncio.Future[None] | None = None

    async def receive(self) -> Message:
        request = self.request
        if request.streamed and not self.body_read:
            return await self._receive_streamed(request)
        if not self.body_read:
            self.body_read = True
            chunks = self.request.body
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self.request.body = []  # the application holds it now: not twice
            return {"type": "http.request", "body": body, "more_body": False}
        if not self.complete and not self.conn.lost:
            if self._done is None:
                self._done = asyncio.get_running_loop().create_future()
            await self._done
        return {"type": "http.disconnect"}

    async def _receive_streamed(self, request: _Request) -> Message:
        conn = self.conn
        while True:
            if request.body:
                chunks = request.body
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                request.body = []
                request.buffered = 0
                conn.resume_body()
                more = not request.body_done
                self.body_read = not more
                return {"type": "http.request", "body": body, "more_body": more}
            if request.body_done:
                self.body_read = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if conn.lost or conn.closing:
                return {"type": "http.disconnect"}
            request.waiter = asyncio.get_running_loop().create_future()
            await request.waiter
            request.waiter = None

    def finished(self) -> None:
        """The response is complete or the connection is gone: wake a waiting ``receive``."""
        self.request.wake()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.head = self._head(message["status"], message.get("headers", ()))
            self.started = True  # after the checks in _head: a refused head still gets a 500
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        if not self.started or self.complete:
            raise RuntimeError("http.response.body outside a response")
        conn = self.conn
        body: bytes = message.get("body", b"")
        more = bool(message.get("more_body", False))
        if self.head:
            head, self.head = self.head, b""
            if self.remaining < 0 and not self.chunked:
                if more:
                    if self.request.version == "1.0":
                        if self.request.keep_alive:  # else _head said so already
                            self.request.keep_alive = False
                            head += b"connection: close\r\n"
                    else:
                        self.chunked = True
                        head += b"transfer-encoding: chunked\r\n"
                elif not self.no_length:
                    self.remaining = len(body)
                    head += b"content-length: %d\r\n" % self.remaining
            head += conn.server.clock.header + b"\r\n"
            data = head + self._framed(body, more)
        else:
            data = self._framed(body, more)
        if self.remaining >= 0 and not self.head_only:
            self.remaining -= len(body)
            if self.remaining < 0:
                raise RuntimeError("response body longer than its content-length")
        if not more:
            if self.remaining > 0 and not self.head_only:
                raise RuntimeError("response body shorter than its content-length")
            self.complete = True
        if conn.lost:
            return
        if data:
            if conn.paused():
                await conn.writable()
            transport = conn.transport
            if transport is not None and not conn.lost:
                transport.write(data)
        if self.complete:
            conn.response_done(self)

    def _framed(self, body: bytes, more: bool) -> bytes:
        if self.head_only:
            return b""
        if not self.chunked:
            return body
        chunk = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
        return chunk if more else chunk + b"0\r\n\r\n"

    def _head(self, status: int, headers: Any) -> bytes:
        parts = [_STATUS_LINES.get(status) or _status_line(status)]
        request = self.request
        for name, value in headers:
            if b"\n" in name or b"\r" in name or b"\n" in value or b"\r" in value:
                raise RuntimeError("a response header holds a line break")
            lower = name.lower()
            if lower == b"content-length":
                self.remaining = int(value)
            elif lower == b"transfer-encoding":
                self.chunked = b"chunked" in value.lower()
            elif lower == b"connection" and b"close" in value.lower():
                request.keep_alive = False
                continue  # said once, below
            elif lower == b"date":
                continue
            parts += (name, b": ", value, b"\r\n")
        if status in _NO_BODY_STATUSES:
            self.head_only = self.no_length = True
        if request.streamed and not request.body_done:
            request.keep_alive = False  # the rest of the body is not read: the connection ends
        if not request.keep_alive or self.conn.closing or self.conn.draining:
            request.keep_alive = False
            parts.append(b"connection: close\r\n")
        return b"".join(parts)


class Connection(asyncio.Protocol):
    """One client connection: parses requests and serves them one at a time, in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.stream = server.stream
        self.client: tuple[str, int] | None = None
        self.local: tuple[str, int] | None = None
        self.queue: deque[_Request] = deque()
        self.current: _Exchange | None = None
        self.lost = False
        self.closing = False
        self.draining = False
        """The server is stopping: requests still arriving are served, each answer closes."""
        self.reading_paused = False
        self.body_paused = False
        """Reading paused until the application takes the streamed body waiting."""
        self.idle_since: float | None = None
        self.in_message = False
        """A request is being received: begun, not yet complete."""
        self.last_read = 0.0
        self.deadline = 0.0
        """When the request being received must have arrived whole (monotonic seconds)."""
        self.paused_at = 0.0
        """When reading paused for a streamed body the application had not taken (0: not paused)."""
        self.refused_at = 0.0
        self.cut: tuple[int, str] | None = None
        """Why the server stopped reading a request the application is serving (a streamed
        body past its deadline): answered so if the application, told the client is gone,
        returns without a response."""
        """A connection beyond the cap: when it was answered 503 (0: not refused)."""
        self._writable: asyncio.Future[None] | None = None
        self._linger: asyncio.TimerHandle | None = None
        """Closes a connection that lingers (``_close``) at the end of ``LINGER_SECONDS``."""
        # The request being parsed.
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._in_head = False
        self._head_bytes = 0
        self._request: _Request | None = None
        self._body_bytes = 0

    # --- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, only alike.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        self.local = (str(sock[0]), int(sock[1])) if isinstance(sock, tuple) else None
        self.idle_since = time.monotonic()
        server = self.server
        if len(server.connections) >= server.max_connections:
            # Over the cap: answered 503 and closed, never parsed; answered when its request
            # comes (so the answer is read before the close, not lost to a reset, and in the
            # error shape of its URL), or by the sweep after a second. Past MAX_REFUSING of
            # those, dropped at once.
            self.closing = True
            server.refused += 1
            if len(server.refusing) >= MAX_REFUSING:
                self.transport.abort()
                return
            self.refused_at = self.idle_since
            server.refusing.add(self)
            return
        server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.server.connections.discard(self)
        self.server.refusing.discard(self)
        for request in self.queue:
            self.server.release(request)
        if self._request is not None:
            self.server.release(self._request)
        if self.current is not None:
            self.server.release(self.current.request)
            self.current.finished()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        if self._linger is not None:
            self._linger.cancel()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            if self.refused_at and self.transport is not None and not self.transport.is_closing():
                target = data.split(b" ", 2)[1] if data.count(b" ") >= 2 else b""
                self.refuse_connection(target)
            return  # nothing more is served on this connection
        # Not idle until a request begins (on_message_begin): bytes between requests (empty
        # lines) do not keep a connection open.
        self.last_read = time.monotonic()
        if self._in_head:
            # httptools keeps an unfinished header line to itself: bound what a head may take
            # across reads (this read included, so at most max_headers plus one read).
            if self._head_bytes > self.server.max_headers:
                self._answer_and_close(431, "request line and headers too large")
                return
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No protocol upgrades here: the request is answered as it is, and the connection
            # closes after it, since what follows on it is not HTTP/1.1. The parser raises this
            # after on_message_complete, so the request is the last one taken.
            last = self.queue[-1] if self.queue else self.current.request if self.current is not None else None
            if last is not None:
                last.keep_alive = False
        except httptools.HttpParserError:
            # A refusal's _Refused reaches here too, as httptools' error for a failed callback:
            # that request is answered already.
            if not self.closing:
                self._answer_and_close(400, "malformed HTTP request")
        if self.idle and not self.closing and self.idle_since is None:
            self.idle_since = time.monotonic()

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # --- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.idle_since = None
        self.deadline = self.last_read + self.server.read_timeout
        self._url = b""
        self._headers = []
        self._header_bytes = 0
        self._in_head = True
        self._head_bytes = 0
        self._body_bytes = 0
        self._request = None

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))
        self._count(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self.parser
        request = _Request(parser.get_method(), self._url, self._headers, parser.get_http_version())
        request.keep_alive = parser.should_keep_alive()
        try:
            url: Any = httptools.parse_url(self._url)  # its stub says bytes where it gives None
        except httptools.HttpParserInvalidURLError:
            url = None
        if url is None or not (url.path or b"").startswith(b"/"):
            # Neither origin-form ("/path?query") nor absolute-form ("http://host/path").
            self._refuse(400, "malformed request target")
        request.path = url.path
        request.query = url.query or b""
        request.streamed = self.stream is not None and self.stream(request.method, self._url)
        self._request = request
        expect_continue = False
        hosts = 0
        for name, value in self._headers:
            if name == b"host":
                hosts += 1
            elif name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    self._refuse(400, "bad content-length")
                if length > self.server.max_body and not request.streamed:
                    self._refuse(413, f"request body larger than {self.server.max_body} bytes")
            elif name == b"expect" and value.lower() == b"100-continue":
                expect_continue = True
        if hosts > 1 or (hosts == 0 and request.version == "1.1"):
            # RFC 9112, 3.2: which host the request is for must be unambiguous.
            self._refuse(400, "an HTTP/1.1 request needs exactly one Host header")
        if expect_continue and self.current is None and not self.queue and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if request.streamed:
            self._take(request)

    def on_body(self, body: bytes) -> None:
        request = self._request
        if request is None:
            return
        if request.streamed:
            request.body.append(body)
            request.buffered += len(body)
            self.deadline += len(body) / self.server.stream_min_rate
            request.wake()
            if request.buffered > STREAM_BUFFER and not self.body_paused:
                self.body_paused = True
                self._pause()
            return
        self._body_bytes += len(body)
        server = self.server
        if self._body_bytes > server.max_body:
            self._refuse(413, f"request body larger than {server.max_body} bytes")
        if server.buffered + len(body) > server.max_buffered:
            self._refuse(503, "the server holds too many request bodies; try again later")
        request.accounted += len(body)
        server.buffered += len(body)
        request.body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        request, self._request = self._request, None
        if request is None or self.closing:
            return
        if request.streamed:  # taken at its head already
            request.body_done = True
            request.wake()
            return
        self._take(request)

    def _take(self, request: _Request) -> None:
        """Serve a request now, or after those before it."""
        if self.current is None:
            self._start(request)
        else:
            self.queue.append(request)
            if len(self.queue) >= MAX_PIPELINED and not self.reading_paused:
                # The client sends before it reads: it waits, whatever its next request's size.
                self.reading_paused = True
                self._pause()

    def resume_body(self) -> None:
        """The application took the streamed body waiting: read on (unless paused for another reason)."""
        if self.body_paused:
            self.body_paused = False
            if not self.reading_paused and not self.closing:
                self._resume()

    def _pause(self) -> None:
        if self.transport is not None:
            if not self.paused_at:
                self.paused_at = time.monotonic()
            self.transport.pause_reading()

    def _resume(self) -> None:
        """Read on; the time reading was paused was the server's wait, not the client's."""
        if self.transport is not None:
            if self.paused_at:
                now = time.monotonic()
                self.deadline += now - self.paused_at
                self.last_read = now
                self.paused_at = 0.0
            self.transport.resume_reading()

    # --- serving ------------------------------------------------------------------------------

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.server.max_headers:
            self._refuse(431, "request line and headers too large")

    def _refuse(self, status: int, text: str) -> None:
        """``_answer_and_close`` from a parser callback: raises to stop the parser."""
        self._answer_and_close(status, text)
        raise _Refused

    def _answer_and_close(self, status: int, text: str) -> None:
        """Answer a request the application never sees, then close: the stream is not
        trustworthy after it. A request in flight still gets its response first."""
        if self._request is not None:
            self.server.release(self._request)
        self._request = None
        self.closing = True
        for request in self.queue:
            self.server.release(request)
        self.queue.clear()
        if self.current is not None:
            self.cut = (status, text)
            self.current.request.wake()  # a streamed body that will not come: the application hears it
        if self.transport is not None:
            self.transport.pause_reading()
            if self.current is None:
                self.transport.write(_refusal(status, text, self._url))
                self._close()

    def _start(self, request: _Request) -> None:
        exchange = _Exchange(self, request)
        self.current = exchange
        self.server.in_flight += 1
        task = self.loop.create_task(self._run(exchange))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    async def _run(self, exchange: _Exchange) -> None:
        try:
            await self.server.app(self._scope(exchange.request), exchange.receive, exchange.send)
        except Exception:
            log.exception("internal error serving %s", exchange.request.url[:200].decode("latin-1"))
            if not exchange.started and not self.lost and self.transport is not None:
                self.transport.write(_refusal(500, "internal error", exchange.request.url))
                exchange.complete = True
                exchange.request.keep_alive = False
                self.response_done(exchange)
                return
        finally:
            self.server.in_flight -= 1
        if not exchange.complete:
            if exchange.started or self.lost:
                log.error("the application ended a response before its end; closing the connection")
                self._close()
            else:
                status, text = 500, "internal error"
                if self.cut is not None:
                    status, text = self.cut
                else:
                    log.error("the application returned without a response")
                if self.transport is not None:
                    self.transport.write(_refusal(status, text, exchange.request.url))
                exchange.complete = True
                exchange.request.keep_alive = False
                self.response_done(exchange)

    def _scope(self, request: _Request) -> dict[str, Any]:
        raw_path = request.path
        try:
            path = unquote(raw_path.decode("ascii"))
        except UnicodeDecodeError:
            path = unquote(raw_path.decode("latin-1"))
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.version,
            "server": self.local,
            "client": self.client,
            "scheme": self.server.scheme,
            "method": request.method.decode("ascii"),
            "root_path": "",
            "path": path,
            "raw_path": raw_path,
            "query_string": request.query,
            "headers": request.headers,
            "state": dict(self.server.state),
        }

    def paused(self) -> bool:
        """The transport asked to stop writing until its buffer drains (flow control)."""
        return self._writable is not None and not self._writable.done()

    async def writable(self) -> None:
        if self._writable is not None:
            await self._writable

    def response_done(self, exchange: _Exchange) -> None:
        exchange.finished()
        self.server.release(exchange.request)
        self.current = None
        if self.lost or self.transport is None:
            return
        if not exchange.request.keep_alive or self.closing:
            self._close()
            return
        request = exchange.request
        if request.streamed and request.body:
            # Answered without taking the whole body (which came whole, else the connection
            # would close; an upload refused for its size, say): what is left is dropped, and
            # reading, paused while it waited, goes on, or the next request is never read.
            request.body = []
            request.buffered = 0
            self.resume_body()
        if self.queue:
            self._start(self.queue.popleft())
            if self.reading_paused and len(self.queue) < MAX_PIPELINED:
                self.reading_paused = False
                if not self.body_paused:
                    self._resume()
        elif self._request is None:
            self.idle_since = time.monotonic()

    def refuse_connection(self, target: bytes) -> None:
        """Answer a connection beyond the cap, then close it."""
        transport = self.transport
        self.server.refusing.discard(self)
        if transport is not None and not transport.is_closing():
            transport.write(_refusal(503, "too many connections; try again later", target))
            transport.close()

    def _close(self) -> None:
        """Close; if the client may still be sending a request (its head or body not received
        whole: a 413 on a content-length, a BLOB refused before its body was read), linger.

        Closed with bytes still arriving, the kernel answers them with a reset, and a reset can
        make the client lose the answer it was sent (as httpx does: the 413 of a BLOB too large
        became a ReadError). So the server's side ends (a FIN after the answer), what comes is
        read and dropped, and the connection closes when the client closes its side or after
        ``LINGER_SECONDS``. Go's server half-closes and waits for the same reason."""
        self.closing = True
        transport = self.transport
        if transport is None or transport.is_closing() or self._linger is not None:
            return
        if not self.in_message:
            transport.close()
            return
        if transport.can_write_eof():  # not over TLS: there the answer is followed by the wait alone
            transport.write_eof()
        self.reading_paused = self.body_paused = False
        self.paused_at = 0.0
        transport.resume_reading()  # data_received drops what comes: the connection is closing
        self._linger = self.loop.call_later(LINGER_SECONDS, transport.close)

    @property
    def idle(self) -> bool:
        return self.current is None and not self.queue and not self.in_message and self._request is None

    def shutdown(self) -> None:
        """Server stopping: close now if idle, else after the response in flight."""
        self.closing = True
        for request in self.queue:
            self.server.release(request)
        self.queue.clear()
        if self.current is None:
            self._close()


class _Refused(Exception):
    """Stops the parser after a request was refused."""


class Front(Protocol):
    """A server of one ASGI application on one address: this module's ``HttpServer``, or a
    fallback of ``router.fronts``."""

    scheme: str
    refused: int

    @property
    def connections(self) -> Sized: ...

    async def start(self, host: str, port: int) -> list[tuple[str, int]]: ...

    async def stop(self, timeout: float = GRACEFUL_SECONDS) -> None: ...


class HttpServer:
    """Listens, runs the application's lifespan, and shuts down gracefully."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int = MAX_BODY,
        max_headers: int = MAX_HEADERS,
        keep_alive: float = KEEP_ALIVE_SECONDS,
        stream: Callable[[bytes, bytes], bool] | None = None,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        max_buffered: int = MAX_BUFFERED,
        tls: ssl.SSLContext | None = None,
        stream_min_rate: int = STREAM_MIN_RATE,
        reuse_port: bool = False,
    ) -> None:
        self.app = app
        self.reuse_port = reuse_port
        """Listen with ``SO_REUSEPORT``: the processes of ``voedger server --processes`` share the
        port, and the kernel spreads connections over them."""
        self.stream_min_rate = stream_min_rate
        self.tls = tls
        self.scheme = "https" if tls is not None else "http"
        self.stream = stream
        """Which requests (method, target) get their bodies streamed; None: none."""
        self.max_body = max_body
        self.max_headers = max_headers
        self.keep_alive = keep_alive
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.max_buffered = max_buffered
        self.buffered = 0
        """Bytes of request bodies held (received and not yet answered), all connections together."""
        self.refusing: set[Connection] = set()
        """Connections beyond ``max_connections``, answered 503, about to close."""
        self.refused = 0
        """Connections refused so far."""
        self.loop = asyncio.get_running_loop()
        self.clock = _Clock()
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.in_flight = 0
        self.state: dict[str, Any] = {}
        self._listeners: list[asyncio.AbstractServer] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._lifespan: Lifespan | None = None

    def release(self, request: _Request) -> None:
        """``request`` is done with: its body no longer counts against ``max_buffered``."""
        self.buffered -= request.accounted
        request.accounted = 0

    async def start(self, host: str, port: int) -> list[tuple[str, int]]:
        """Run the lifespan's startup, then listen; the addresses listened on."""
        self._lifespan = Lifespan(self.app, self.state)
        await self._lifespan.startup()
        # A TLS handshake gets the read deadline too (a client that starts one and stalls).
        handshake = self.read_timeout if self.tls is not None else None
        listener = await self.loop.create_server(
            lambda: Connection(self),
            host,
            port,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
            ssl=self.tls,
            ssl_handshake_timeout=handshake,
        )
        self._listeners.append(listener)
        self._sweeper = self.loop.create_task(self._sweep())
        sockets = cast(Any, listener).sockets  # a list under uvloop, not the tuple typeshed says
        return [sock.getsockname()[:2] for sock in sockets]

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.clock.tick()
            now = time.monotonic()
            limit = now - self.keep_alive
            for conn in list(self.connections):
                if conn.idle_since is not None and conn.idle_since < limit and conn.current is None:
                    conn.shutdown()
                elif (
                    conn.in_message
                    and not conn.closing
                    and not conn.paused_at
                    and (conn.last_read < limit or conn.deadline < now)
                ):
                    # A request begun and stalled (a body that stops coming): the same patience
                    # as for an idle connection; one that trickles, its deadline.
                    conn._answer_and_close(408, "the request was not received in time")
            for conn in list(self.refusing):
                if conn.refused_at < now - 1.0:
                    conn.refuse_connection(b"")

    async def stop(self, timeout: float = GRACEFUL_SECONDS) -> None:
        """Stop accepting, let the requests in flight finish (up to ``timeout``), close every
        connection, then run the lifespan's shutdown."""
        for listener in self._listeners:
            listener.close()
        # A client may have sent a request on a kept-alive connection just now, still unread:
        # closing at once would lose it (the client sees the connection drop, not knowing
        # whether it was done). So for a moment requests are still read and served, each
        # answered with "Connection: close"; idle connections close after that moment.
        began = time.monotonic()
        deadline = began + timeout
        for conn in list(self.connections):
            conn.draining = True
        while (self.in_flight or self.connections) and time.monotonic() < deadline:
            if time.monotonic() - began >= DRAIN_SECONDS:
                for conn in list(self.connections):
                    if conn.idle and not conn.closing:
                        conn.shutdown()
            await asyncio.sleep(0.05)
        for conn in [*self.connections, *self.refusing]:
            if conn.transport is not None:
                conn.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for listener in self._listeners:
            await listener.wait_closed()
        if self._lifespan is not None:
            await self._lifespan.shutdown()


class LifespanError(Exception):
    """The application's startup or shutdown failed."""


class Lifespan:
    """The ASGI lifespan protocol: startup before listening, shutdown after the last request."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.app(scope, self.inbox.get, self.outbox.put)
        except Exception as exc:
            self.outbox.put_nowait({"type": "lifespan.error", "message": repr(exc)})

    async def _step(self, kind: str) -> None:
        await self.inbox.put({"type": f"lifespan.{kind}"})
        assert self.task is not None
        getter = asyncio.ensure_future(self.outbox.get())
        await asyncio.wait([getter, self.task], return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            raise LifespanError(f"the application's lifespan ended during {kind}")
        reply = getter.result()
        if reply["type"] == f"lifespan.{kind}.failed" or reply["type"] == "lifespan.error":
            raise LifespanError(f"the application's {kind} failed: {reply.get('message', '')}")

    async def startup(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._main())
        await self._step("startup")

    async def shutdown(self) -> None:
        if self.task is None or self.task.done():
            return
        await self._step("shutdown")
        await self.task


async def serve(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    graceful: float = GRACEFUL_SECONDS,
    max_body: int = MAX_BODY,
    extra: Sequence[tuple[ASGIApp, str, int]] = (),
    stream: Callable[[bytes, bytes], bool] | None = None,
    before_stop: Callable[[], Awaitable[None]] | None = None,
    after_start: Callable[[], Awaitable[None]] | None = None,
    read_timeout: float = READ_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    max_buffered: int = MAX_BUFFERED,
    tls: ssl.SSLContext | None = None,
    listeners: list[Any] | None = None,
    front: Callable[..., Front] = HttpServer,
    reuse_port: bool = False,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then shut down gracefully; ``extra`` apps (the
    metrics service) listen on ports of their own, started after it and stopped before it.
    ``listeners``, if given, gets the server of ``app`` once it listens (the metrics read its
    connections).
    ``after_start`` runs once every listener is open (a cluster process takes its partitions
    there); ``before_stop`` runs first at shutdown, while every listener still answers (a cluster
    process hands its partitions over there, forwarding their requests to the new owners).
    ``front`` makes the servers (``HttpServer``, or a fallback of ``router.fronts``);
    ``reuse_port``: ``app``'s listener shares its port with other processes (``SO_REUSEPORT``)."""
    servers: list[Front] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for one_app, one_host, one_port, limit in [(app, host, port, max_body), *((*e, MAX_BODY) for e in extra)]:
            server = front(
                one_app,
                max_body=limit,
                stream=stream if one_app is app else None,
                read_timeout=read_timeout,
                max_connections=max_connections,
                max_buffered=max_buffered,
                tls=tls if one_app is app else None,
                **({"reuse_port": True} if reuse_port and one_app is app else {}),
            )
            for host_port in await server.start(one_host, one_port):
                log.info("listening on %s://%s:%d", server.scheme, *host_port)
            servers.append(server)
            if one_app is app and listeners is not None:
                listeners.append(server)
        if after_start is not None:
            starting = asyncio.ensure_future(after_start())
            await asyncio.wait([starting, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
            if starting.done() and starting.exception() is not None:
                raise LifespanError(f"after starting: {starting.exception()}")
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("shutting down")
        if before_stop is not None and servers:
            try:
                await asyncio.wait_for(before_stop(), graceful)
            except Exception:
                log.exception("before stopping")
        for server in reversed(servers):
            await server.stop(graceful)


def run(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    max_body: int = MAX_BODY,
    extra: Sequence[tuple[ASGIApp, str, int]] = (),
    stream: Callable[[bytes, bytes], bool] | None = None,
    before_stop: Callable[[], Awaitable[None]] | None = None,
    after_start: Callable[[], Awaitable[None]] | None = None,
    read_timeout: float = READ_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    max_buffered: int = MAX_BUFFERED,
    tls: ssl.SSLContext | None = None,
    listeners: list[Any] | None = None,
    front: Callable[..., Front] = HttpServer,
    reuse_port: bool = False,
) -> None:
    """``serve`` on uvloop when it is installed, else on asyncio's own loop."""
    main = serve(
        app,
        host,
        port,
        max_body=max_body,
        extra=extra,
        stream=stream,
        before_stop=before_stop,
        after_start=after_start,
        read_timeout=read_timeout,
        max_connections=max_connections,
        max_buffered=max_buffered,
        tls=tls,
        listeners=listeners,
        front=front,
        reuse_port=reuse_port,
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        asyncio.run(main)
    else:
        uvloop.run(main)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server's TLS settings: the certificate chain and key (PEM files), TLS 1.2 or newer (as
    Voedger's router), HTTP/1.1 offered by ALPN. Raises ``ssl.SSLError`` or ``OSError`` for files
    that do not do."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context
