"""The fallback HTTP fronts: uvicorn and Hypercorn serve the same ASGI application as the built-in
front (``router.http``), selected by ``voedger server --http-front``.

Each is a server with ``HttpServer``'s shape (``start``, ``stop``, ``scheme``, ``connections``,
``refused``), so ``http.serve`` drives it the same way: the lifespan's startup before listening,
``after_start`` and ``before_stop`` around the listeners, a graceful stop on SIGTERM that
finishes the requests in flight. The listening socket is bound here, so that a port in use is an
``OSError`` as with the built-in front (neither library is asked to bind: uvicorn exits the
process when it cannot).

- uvicorn (httptools, on the loop ``http.run`` gives, uvloop): HTTP/1.1. ``max_connections`` is
  its ``limit_concurrency`` (connections and requests in flight together; beyond, a plain 503),
  ``max_headers`` its ``h11_max_incomplete_event_size``; keep-alive 15 s as ours.
- Hypercorn: HTTP/1.1 (h11) and HTTP/2 (h2): with TLS, ALPN offers ``h2`` then ``http/1.1``;
  without, h2c (prior knowledge or ``Upgrade``). ``read_timeout`` is its ``read_timeout`` (a
  connection closes when nothing arrives for that long, not a deadline for the whole request),
  ``max_headers`` its ``h11_max_incomplete_size``; it has no connection limit.

``HeadGuard`` gives both what the built-in front refuses on a request's head (a missing or
repeated Host, a body announced too large; Hypercorn's h11 refuses the first itself, with an
empty 400). What neither gives of the built-in edge
(docs/design.md): the whole-request read deadline (408), the bound on a body that comes without
a length or larger than announced (the router still stops reading at its own limit) and on the
bytes of bodies all connections hold (503), the server's own answers to malformed requests in
Voedger's error shape, the moment of draining at a stop for requests sent on idle connections,
and a count of refused connections; Hypercorn's connections are not counted in
``voedger_http_connections``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable, Sized
from typing import Any

import uvicorn
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.utils import LifespanFailureError, wrap_app

from voedger.router.http import (
    GRACEFUL_SECONDS,
    KEEP_ALIVE_SECONDS,
    MAX_BODY,
    MAX_BUFFERED,
    MAX_CONNECTIONS,
    MAX_HEADERS,
    READ_TIMEOUT,
    ASGIApp,
    HttpServer,
    LifespanError,
    Message,
)
from voedger.syserror import SysError

log = logging.getLogger("voedger.http")

FRONTS = ("builtin", "uvicorn", "hypercorn")
"""The names ``--http-front`` takes; the first is the default."""


class HeadGuard:
    """What the built-in front refuses on a request's head, refused before the application for
    a fallback front, in Voedger's error shape: an HTTP/1.1 request without one ``Host`` header
    (400), a body announced larger than ``max_body`` unless ``stream`` takes the request (413)."""

    def __init__(self, app: ASGIApp, max_body: int, stream: Callable[[bytes, bytes], bool] | None) -> None:
        self.app = app
        self.max_body = max_body
        self.stream = stream

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                err, url = refusal
                body = err.to_v2() if url.startswith(b"/api/v2/") else err.to_v1()
                headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
                await send({"type": "http.response.start", "status": err.status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Message) -> tuple[SysError, bytes] | None:
        url: bytes = scope.get("raw_path") or scope["path"].encode()
        hosts = 0
        length = 0
        for name, value in scope["headers"]:
            if name == b"host":
                hosts += 1
            elif name == b"content-length" and value.isdigit():
                length = int(value)
        if scope["http_version"] in ("1.0", "1.1") and (hosts > 1 or (hosts == 0 and scope["http_version"] == "1.1")):
            return SysError(400, "an HTTP/1.1 request needs exactly one Host header"), url
        if length > self.max_body:
            target = url + (b"?" + scope["query_string"] if scope.get("query_string") else b"")
            if self.stream is None or not self.stream(scope["method"].encode(), target):
                return SysError(413, f"request body larger than {self.max_body} bytes"), url
        return None


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), listening, for a library's server to take over."""
    sock = socket.create_server((host, port), family=_family(host), backlog=1024)
    sock.setblocking(False)
    return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _LibraryFront:
    """What both fronts share: ``HttpServer``'s constructor, the ``HeadGuard`` before the
    application, and a start that binds the socket here and closes it if serving fails."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int = MAX_BODY,
        max_headers: int = MAX_HEADERS,
        stream: Callable[[bytes, bytes], bool] | None = None,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        max_buffered: int = MAX_BUFFERED,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.app = HeadGuard(app, max_body, stream)
        self.scheme = "https" if tls is not None else "http"
        self.refused = 0
        self._configure(max_headers=max_headers, read_timeout=read_timeout, max_connections=max_connections, tls=tls)

    def _configure(
        self, *, max_headers: int, read_timeout: float, max_connections: int, tls: ssl.SSLContext | None
    ) -> None:
        raise NotImplementedError

    async def start(self, host: str, port: int) -> list[tuple[str, int]]:
        sock = _bind(host, port)
        try:
            await self._serve(sock)
        except BaseException:
            sock.close()
            raise
        return [sock.getsockname()[:2]]

    async def _serve(self, sock: socket.socket) -> None:
        """Run the lifespan's startup and start serving ``sock``; a failed startup is a
        ``LifespanError``."""
        raise NotImplementedError

    async def stop(self, timeout: float = GRACEFUL_SECONDS) -> None:
        """Stop accepting, let the requests in flight finish (up to ``timeout``), then the
        lifespan's shutdown."""
        raise NotImplementedError


class UvicornServer(_LibraryFront):
    """uvicorn serving ``app`` on one socket."""

    def _configure(
        self, *, max_headers: int, read_timeout: float, max_connections: int, tls: ssl.SSLContext | None
    ) -> None:
        # ``refused`` is not counted: uvicorn answers 503 beyond its limit without telling.
        self.config = uvicorn.Config(
            self.app,
            loop="none",
            http="httptools",
            ws="none",
            lifespan="on",
            interface="asgi3",
            limit_concurrency=max_connections,
            timeout_keep_alive=int(KEEP_ALIVE_SECONDS),
            timeout_graceful_shutdown=int(GRACEFUL_SECONDS),
            h11_max_incomplete_event_size=max_headers,
            access_log=False,
            log_config=None,
            server_header=False,
            proxy_headers=False,
        )
        self.config.load()
        self.config.ssl = tls  # ours: TLS 1.2 or newer, ALPN http/1.1
        self.server = uvicorn.Server(self.config)
        self._ticks: asyncio.Task[None] | None = None

    @property
    def connections(self) -> Sized:
        return self.server.server_state.connections

    async def _serve(self, sock: socket.socket) -> None:
        self.server.lifespan = self.config.lifespan_class(self.config)
        try:
            await self.server.startup(sockets=[sock])
        except SystemExit:  # uvicorn's answer to a failed lifespan startup
            raise LifespanError("the application's startup failed") from None
        self._ticks = asyncio.get_running_loop().create_task(self.server.main_loop())  # the date header

    async def stop(self, timeout: float = GRACEFUL_SECONDS) -> None:
        self.config.timeout_graceful_shutdown = max(1, int(timeout))
        self.server.should_exit = True
        if self._ticks is not None:
            await self._ticks
        await self.server.shutdown()


class _Config(HypercornConfig):
    """Hypercorn's settings with our TLS context (it would build its own from file names)."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        super().__init__()
        self.tls = tls

    @property
    def ssl_enabled(self) -> bool:
        return self.tls is not None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self.tls


class HypercornServer(_LibraryFront):
    """Hypercorn serving ``app`` on one socket: HTTP/1.1, and HTTP/2 (ALPN h2 over TLS, h2c)."""

    def _configure(
        self, *, max_headers: int, read_timeout: float, max_connections: int, tls: ssl.SSLContext | None
    ) -> None:
        if tls is not None:
            tls.set_alpn_protocols(["h2", "http/1.1"])
        self.connections: Sized = ()
        """Not counted: Hypercorn keeps its connections to itself."""
        config = _Config(tls)
        config.keep_alive_timeout = KEEP_ALIVE_SECONDS
        config.read_timeout = max(1, int(read_timeout))
        config.h11_max_incomplete_size = max_headers
        config.graceful_timeout = GRACEFUL_SECONDS
        config.ssl_handshake_timeout = read_timeout
        config.include_server_header = False
        config.errorlog = log
        config.accesslog = None
        self.config = config
        self._stop = asyncio.Event()
        self._started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _watch(self, scope: Any, receive: Any, send: Any) -> None:
        """The application, with the end of its lifespan's startup noted."""
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def watched(message: Any) -> None:
            await send(message)
            if message["type"] in ("lifespan.startup.complete", "lifespan.startup.failed"):
                self._started.set()

        return await self.app(scope, receive, watched)

    async def _serve(self, sock: socket.socket) -> None:
        sockets = Sockets([sock], [], []) if self.config.ssl_enabled else Sockets([], [sock], [])
        self._task = asyncio.get_running_loop().create_task(
            worker_serve(
                wrap_app(self._watch, 0, "asgi"), self.config, sockets=sockets, shutdown_trigger=self._stop.wait
            )
        )
        started = asyncio.ensure_future(self._started.wait())
        await asyncio.wait([started, self._task], return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        await asyncio.sleep(0)  # the listener opens right after the startup
        if self._task.done():
            error = self._task.exception()
            if isinstance(error, LifespanFailureError) or error is None:
                raise LifespanError(f"the application's startup failed: {error}")
            raise error

    async def stop(self, timeout: float = GRACEFUL_SECONDS) -> None:
        self.config.graceful_timeout = timeout
        self._stop.set()
        if self._task is not None:
            await self._task


def front_class(name: str) -> type[HttpServer] | type[UvicornServer] | type[HypercornServer]:
    """The server class of ``--http-front NAME``."""
    return {"builtin": HttpServer, "uvicorn": UvicornServer, "hypercorn": HypercornServer}[name]
