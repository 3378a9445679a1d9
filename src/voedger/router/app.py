"""The ASGI application: Voedger's HTTP API v1 and v2 over Starlette.

The router checks what it can without the application's data (the application exists, the
WSID parses and names a known cluster, the URL names a resource, the body is not too large),
turns pseudo WSIDs into application workspaces, keeps the per-workspace read limit, and sends the
request as the client sent it (credential and body untouched, in a ``BusRequest``) to the owner
of its partition. The owner's answer goes back to the client byte for byte. Every error the edge
itself finds answers in Voedger's error shape; anything else is logged and answers 500 without
details.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Final
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request, cookie_parser
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from voedger.appdef import QName, QNameError
from voedger.router.blobs import BlobEndpoints
from voedger.router.bus_endpoint import BusEndpoint
from voedger.router.endpoint import endpoint
from voedger.router.identity import IdentityEndpoints
from voedger.router.n10n import N10nEndpoints
from voedger.router.owner import MAX_BODY
from voedger.router.responses import bus_response
from voedger.router.schemas import viewer_page
from voedger.router.stream_relay import StreamRelays
from voedger.router.transport import ClusterRoutes, Routes, Transport, TransportUnavailable
from voedger.router.wire import (
    BUS_PATH,
    JSON_HEADERS,
    N10N_PATH,
    N10N_WATCH_PATH,
    SCHEMA_OPS,
    WAKE_PATH,
    BusRequest,
    BusResponse,
    Op,
)
from voedger.structs import wsid as ws
from voedger.syserror import SysError
from voedger.vvm.server import VVM

log = logging.getLogger("voedger.router")

MAX_WIRE_HEAD: Final = 256 * 1024
"""Bytes a forwarded request's head may add to its body (credential, URL parameters, names)."""
MAX_FRAME: Final = MAX_BODY + MAX_WIRE_HEAD
"""The most bytes a server reads of a request body: a client's body, or a forwarded request."""

Handler = Callable[[Request], Awaitable[Response]]
Header = tuple[bytes, bytes]
InternalReply = tuple[int, list[tuple[bytes, bytes]], bytes]
InternalHandler = Callable[[Iterable[tuple[bytes, bytes]], bytes], Awaitable[InternalReply]]
"""An internal endpoint: (the request's ASGI headers, its body) -> (status, headers, body)."""

_V2_READS: Final = {"docs": Op.V2_DOCS, "cdocs": Op.V2_CDOCS, "queries": Op.V2_QUERIES, "views": Op.V2_VIEWS}
CORS_HEADERS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Accept, Content-Type, Content-Length, Accept-Encoding, Authorization, Blob-Name",
}
"""What Voedger's router adds to the answer of every request to a route of its API (errors
included), and all an ``OPTIONS`` preflight to such a route gets (200, no body): any origin, these
request headers; no ``Access-Control-Allow-Methods``, as in Voedger."""
_RAW_CORS: Final = [(k.lower().encode(), v.encode()) for k, v in CORS_HEADERS.items()]


class Router:
    def __init__(self, vvm: VVM, routes: Routes | Mapping[int, Transport]) -> None:
        self.vvm = vvm
        self.routes: Routes = ClusterRoutes(routes) if isinstance(routes, Mapping) else routes
        self._reading: dict[int, int] = {}
        """Reads running now, by WSID (the per-workspace query limit)."""
        self.reads_refused = 0
        """Reads refused by that limit since start."""
        self.stream_relays: StreamRelays | None = None
        """Where the streams of other clusters' workspaces are relayed (a router of a
        federation); None: every workspace's stream is served here."""
        self.remote_refresh: Callable[[str, str], Awaitable[str]] | None = None
        """(application, token) -> a fresh token, from the cluster that may issue principal
        tokens, when this one may not (a worker of a federation); None: refreshed here."""

    # --- shared steps ---------------------------------------------------------------------------

    def resolve(self, app_name: str, wsid_text: str) -> tuple[int, int, Transport]:
        """(WSID, partition, transport) for a request, or a SysError naming what is wrong."""
        wsid = parse_wsid(wsid_text)
        app = self.vvm.app(app_name)
        rt = app.runtime
        if ws.is_pseudo(wsid):
            wsid = ws.pseudo_to_app_wsid(wsid, rt.num_app_workspaces, rt.cluster_id)
        partition = ws.partition_of(wsid, rt.num_partitions)
        return wsid, partition, self.routes.transport_for(app_name, wsid, partition)

    async def send(self, request: BusRequest, transport: Transport, limit_reads: bool = True) -> BusResponse:
        """The owner's answer to ``request``. A read takes one of its workspace's read slots
        while it runs (unless ``limit_reads`` is off); an owner that cannot be reached is a 503."""
        try:
            if limit_reads and request.is_read:
                with self._read_slot(request.wsid):
                    return await transport.send(request)
            return await transport.send(request)
        except TransportUnavailable as exc:
            log.warning("%s", exc)
            raise SysError(
                503,
                f"the owner of workspace {request.wsid} cannot be reached; retry later",
                headers={"Retry-After": "1"},
            ) from None

    @contextlib.contextmanager
    def _read_slot(self, wsid: int) -> Iterator[None]:
        """One of the workspace's slots for a read (a query, or an API v2 GET), as Voedger's
        router keeps them: a workspace flooded with reads cannot take every query processor.
        Commands are not counted. Over the limit: 503 with ``Retry-After``, so clients retry."""
        limit = self.vvm.config.max_queries_per_ws
        running = self._reading.get(wsid, 0)
        if limit and running >= limit:
            self.reads_refused += 1
            raise SysError(
                503,
                f"workspace {wsid} has {running} reads running, the most it may; retry later",
                headers={"Retry-After": "1"},
            )
        self._reading[wsid] = running + 1
        try:
            yield
        finally:
            left = self._reading[wsid] - 1
            if left:
                self._reading[wsid] = left
            else:
                del self._reading[wsid]

    @staticmethod
    def credential(headers: Mapping[str, str], cookies: Mapping[str, str] | None = None) -> tuple[str, str]:
        """The request's credential as sent, for the owner to check: (the ``Authorization``
        header, "") when the header holds anything, else ("", the ``Authorization`` cookie)."""
        header = headers.get("authorization") or ""
        if header.strip():
            return header, ""
        return "", auth_cookie((cookies_of(headers) if cookies is None else cookies).get("Authorization") or "")

    @staticmethod
    def check_size(raw: bytes) -> bytes:
        if len(raw) > MAX_BODY:
            raise SysError(413, f"request body is {len(raw)} bytes; at most {MAX_BODY} are accepted")
        return raw

    # --- API v1 -------------------------------------------------------------------------------

    async def v1(self, request: Request) -> Response:
        p = request.path_params
        body = await request.body()
        reply = await self.handle_v1(
            p["owner"], p["app"], p["wsid"], p["resource"], body, request.headers, client_ip(request), request.method
        )
        return bus_response(reply)

    async def handle_v1(
        self,
        owner: str,
        app: str,
        wsid_text: str,
        resource: str,
        raw_body: bytes,
        headers: Mapping[str, str],
        ip: str = "",
        method: str = "POST",
    ) -> BusResponse:
        """``POST /api/{owner}/{app}/{wsid}/{c|q}.{pkg}.{name}``, from any front (Starlette or the fast path)."""
        app_name = f"{owner}/{app}"
        wsid, partition, transport = self.resolve(app_name, wsid_text)
        kind_letter, dot, name = resource.partition(".")
        # Voedger's words: shorter than "q.a.a" or no QName after the mark, then a mark not c or q.
        wrong = len(resource) <= len("q.a.a") or len(kind_letter) != 1 or not dot
        if not wrong:
            try:
                QName.parse(name)
            except QNameError:
                wrong = True
        if wrong:
            raise SysError(400, f"wrong function name: {resource}")
        if kind_letter not in ("c", "q"):
            raise SysError(400, f'wrong function mark "{kind_letter}" for function {name}')
        authorization, cookie = self.credential(headers)
        op = Op.V1_COMMAND if kind_letter == "c" else Op.V1_QUERY
        bus = BusRequest(
            op, method, app_name, wsid, partition, name, 0, authorization, cookie, self.check_size(raw_body), {}, ip
        )
        return await self.send(bus, transport)

    # --- API v2 -------------------------------------------------------------------------------

    async def _v2_send(
        self, request: Request, op: Op, name: str, record_id: int = 0, params: dict[str, str] | None = None
    ) -> Response:
        """Resolve and send an API v2 request of a workspace; answer its reply."""
        p = request.path_params
        parse_qname(name)
        app_name = f"{p['owner']}/{p['app']}"
        wsid, partition, transport = self.resolve(app_name, p["wsid"])
        authorization, cookie = self.credential(request.headers, request.cookies)
        body = self.check_size(await request.body())
        bus = BusRequest(
            op,
            request.method,
            app_name,
            wsid,
            partition,
            name,
            record_id,
            authorization,
            cookie,
            body,
            params or {},
            client_ip(request),
        )
        return bus_response(await self.send(bus, transport))

    async def v2_command(self, request: Request) -> Response:
        return await self._v2_send(request, Op.V2_COMMANDS, request.path_params["name"])

    async def v2_docs(self, request: Request) -> Response:
        """Create (POST), update (PATCH) or deactivate (DELETE) a record: a c.sys.CUD in disguise."""
        p = request.path_params
        # ID 0 names no record: the owner answers 404, as Voedger does for a record not found.
        record_id = parse_id(p["id"], allow_zero=True) if "id" in p else 0
        return await self._v2_send(request, Op.V2_DOCS, p["name"], record_id)

    async def v2_schemas(self, request: Request) -> Response:
        """``schemas``, ``schemas/{workspace}/roles``, ``schemas/{workspace}/roles/{role}``: read
        from the application's first application workspace, as Voedger sends them (the pseudo
        WSID 0). A role's document is JSON, or a page showing it for a client that accepts HTML."""
        p = request.path_params
        app_name = f"{p['owner']}/{p['app']}"
        rt = self.vvm.app(app_name).runtime
        wsid = ws.app_wsid(rt.cluster_id, 0)
        partition = ws.partition_of(wsid, rt.num_partitions)
        transport = self.routes.transport_for(app_name, wsid, partition)
        workspace = p.get("workspace", "")
        op = Op.V2_SCHEMAS if not workspace else Op.V2_SCHEMAS_ROLE if "role" in p else Op.V2_SCHEMAS_ROLES
        assert op in SCHEMA_OPS
        authorization, cookie = self.credential(request.headers, request.cookies)
        params = {"role": p["role"]} if "role" in p else {}
        bus = BusRequest(
            op, "GET", app_name, wsid, partition, workspace, 0, authorization, cookie, b"", params, client_ip(request)
        )
        reply = await self.send(bus, transport)
        if op is Op.V2_SCHEMAS_ROLE and reply.status == 200 and "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(viewer_page(request.url.path))
        return bus_response(reply)

    async def v2_read(self, request: Request) -> Response:
        """GET docs/{table}/{id}, cdocs/{table}, queries/{query}, views/{view}: the query side."""
        p = request.path_params
        path = request.url.path.split("/workspaces/", 1)[1].split("/")[1]
        reply = await self.handle_v2_read(
            p["owner"],
            p["app"],
            p["wsid"],
            path,
            p["name"],
            p.get("id"),
            await request.body(),
            self.credential(request.headers, request.cookies),
            dict(request.query_params),
            client_ip(request),
        )
        return bus_response(reply)

    async def handle_v2_read(
        self,
        owner: str,
        app: str,
        wsid_text: str,
        path: str,
        name: str,
        id_text: str | None,
        raw_body: bytes,
        credential: tuple[str, str],
        params: dict[str, str],
        ip: str,
    ) -> BusResponse:
        """``v2_read`` for the fast path: the same checks in the same order, the same request."""
        # ID 0, or none: a singleton (Voedger's clients read one at docs/{table}/0); no other
        # record has ID 0, and the owner answers 404 for it.
        record_id = parse_id(id_text, allow_zero=True) if id_text is not None else 0
        parse_qname(name)
        app_name = f"{owner}/{app}"
        wsid, partition, transport = self.resolve(app_name, wsid_text)
        authorization, cookie = credential
        body = self.check_size(raw_body)
        bus = BusRequest(
            _V2_READS[path], "GET", app_name, wsid, partition, name, record_id, authorization, cookie, body, params, ip
        )
        return await self.send(bus, transport)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def auth_cookie(value: str) -> str:
    """The ``Authorization`` cookie as sent; a 400 in Voedger's words if it cannot be URL-unescaped
    (Voedger's router unescapes it before anything else)."""
    bad = _BAD_ESCAPE.search(value)
    if bad:
        escape = value[bad.start() : bad.start() + 3]
        raise SysError(400, f'failed to unescape cookie value "{value}": invalid URL escape "{escape}"')
    return value


def cookies_of(headers: Mapping[str, str]) -> dict[str, str]:
    """The cookies of the ``Cookie`` header, read as browsers send them and as Starlette (and
    Voedger) reads them: a value may hold spaces (``Authorization=Bearer <token>``)."""
    raw = headers.get("cookie")
    return cookie_parser(raw) if raw else {}


_INT64_TEXT: Final = re.compile(r"[+-]?[0-9]+")


def parse_wsid(text: str) -> int:
    """The WSID of a URL, read as Voedger's router reads it (as a Go int64 that may not be
    negative); a 400 in its words otherwise."""
    where = f"invalid wsid: failed to cast {text} to WSID: strconv.ParseInt: parsing {orjson.dumps(text).decode()}"
    if not _INT64_TEXT.fullmatch(text):
        raise SysError(400, f"{where}: invalid syntax")
    wsid = int(text)
    if not -(2**63) <= wsid <= ws.MAX_WSID:
        raise SysError(400, f"{where}: value out of range")
    if wsid < 0:
        raise SysError(400, f"invalid wsid: number overflow: {text} to WSID")
    return wsid


def parse_qname(text: str) -> QName:
    try:
        return QName.parse(text)
    except QNameError as exc:
        raise SysError(400, str(exc)) from None


_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
"""A ``%`` that does not start an escape: Go's URL unescaping refuses it."""

MAX_RECORD_ID = 2**64 - 1
"""Record IDs are unsigned 64-bit numbers, as in Voedger."""


def parse_id(text: str, allow_zero: bool = False) -> int:
    """A record ID of a URL; 0 only with ``allow_zero``, for the owner to answer as Voedger's
    processors do (a read of a singleton; no other record has it, a 404)."""
    try:
        value = int(text)
    except ValueError:
        raise SysError(400, f"record ID {text!r} is not a number") from None
    if value < 0 or (value == 0 and not allow_zero):
        raise SysError(400, f"record ID {value} must be positive")
    if value > MAX_RECORD_ID:
        raise SysError(400, f"record ID {value} is out of range: a record ID is at most {MAX_RECORD_ID}")
    return value


def error_response(err: SysError, v2: bool) -> Response:
    return Response(
        err.to_v2() if v2 else err.to_v1(),
        status_code=err.status,
        media_type="application/json",
        headers=err.headers,
    )


def with_cors(handler: Handler) -> Handler:
    """Voedger's CORS: ``OPTIONS`` answers 200 with no body, every other answer gets the headers too."""

    async def run(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(b"", headers=CORS_HEADERS)
        response = await handler(request)
        response.headers.update(CORS_HEADERS)
        return response

    return run


def guarded(handler: Handler, v2: bool) -> Handler:
    """Turn every failure into Voedger's error shape; never leak a traceback to the client."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except SysError as err:
            return error_response(err, v2)
        except Exception:
            log.exception("internal error serving %s %s", request.method, request.url.path)
            return error_response(SysError(500, "internal error"), v2)

    return run


_AUTH_HEADERS: Final = (b"authorization", b"cookie")
_JSON_TYPE: Final = (b"content-type", b"application/json")
V1_PATH: Final = re.compile(r"^/api/([^/]+)/([^/]+)/([^/]+)/([^/]+)$")
V2_READ_PATH: Final = re.compile(
    r"^/api/v2/apps/([^/]+)/([^/]+)/workspaces/([^/]+)/(docs|cdocs|queries|views)/([^/]+)(?:/([^/]+))?$"
)
"""The API v2 reads (``GET docs/{table}[/{id}]``, ``cdocs/{table}``, ``queries/{query}``,
``views/{view}``), as Starlette's routes of ``build_app`` match them; an ID only after ``docs``."""


def starlette_headers(headers: Mapping[str, str], body: bytes, status: int, media_type: str = "") -> list[Header]:
    """The raw headers Starlette's ``Response(body, status, headers, media_type)`` sends, in its
    order, then the CORS headers as ``with_cors`` adds them: the fast path answers as the
    Starlette route would, to the byte."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    keys = [k for k, _ in raw]
    if b"content-length" not in keys and not (status < 200 or status in (204, 304)):
        raw.append((b"content-length", b"%d" % len(body)))
    if media_type and b"content-type" not in keys:
        raw.append((b"content-type", media_type.encode("latin-1")))
    for name, value in _RAW_CORS:
        found = [i for i, (k, _) in enumerate(raw) if k == name]
        if found:
            raw[found[0]] = (name, value)
            for i in reversed(found[1:]):
                del raw[i]
        else:
            raw.append((name, value))
    return raw


def request_credential(scope_headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, str]:
    """``Router.credential`` of a Starlette request, from the ASGI headers: the first
    ``Authorization`` header, else the ``Authorization`` cookie of every ``Cookie`` header."""
    authorization: str | None = None
    cookies: list[str] = []
    for k, v in scope_headers:
        if k == b"authorization":
            if authorization is None:
                authorization = v.decode("latin-1")
        elif k == b"cookie":
            cookies.append(v.decode("latin-1"))
    if authorization and authorization.strip():
        return authorization, ""
    jar: dict[str, str] = {}
    for raw in cookies:
        jar.update(cookie_parser(raw))
    return "", auth_cookie(jar.get("Authorization") or "")


class FastPath:
    """API v1 ``POST`` straight to the router, forwarded requests (``POST /_cluster/bus``)
    straight to the owner, every other request to Starlette.

    Commands are the hot path: skipping the framework's routing, middleware and request objects
    for them saves a good part of a request's CPU. The handler is the same one the Starlette
    route calls, so behaviour does not depend on which front served the request.
    """

    def __init__(self, router: Router, app: Starlette, bus: BusEndpoint | None = None) -> None:
        self.router = router
        self.app = app
        self.bus = bus
        """Serves forwarded requests once set; until then their path is unknown here (404)."""
        self.internal: dict[str, InternalHandler] = {}
        """Other internal endpoints by path (the federation's), each taking a POST's headers
        and body; set by whoever builds the server."""
        self.internal_streams: dict[str, ASGIApp] = {}
        """Internal endpoints by path that answer as they please (streams), ASGI applications."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] == "GET":
            read = V2_READ_PATH.match(scope["path"])
            if read is not None and (read.group(6) is None or read.group(4) == "docs"):
                return await self._v2_read(scope, receive, send, read)
            return await self.app(scope, receive, send)
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path = scope["path"]
        match = V1_PATH.match(path)
        if match is None or match.group(1) == "v2":
            if path == BUS_PATH and self.bus is not None:
                return await self._forwarded(scope, receive, send, self.bus)
            handler = self.internal.get(path)
            if handler is not None:
                return await self._internal(scope, receive, send, handler)
            streamed = self.internal_streams.get(path)
            if streamed is not None:
                return await streamed(scope, receive, send)
            if path in (N10N_PATH, N10N_WATCH_PATH) and self.bus is not None:
                body = await read_body(receive, MAX_BODY)
                if path == N10N_PATH:
                    status, woke, data = self.bus.n10n(scope["headers"], body)
                else:
                    status, woke, data = self.bus.n10n_watch(scope["headers"], body)
                woke = [*woke, (b"content-length", b"%d" % len(data))]
                await send({"type": "http.response.start", "status": status, "headers": woke})
                await send({"type": "http.response.body", "body": data})
                return None
            if path == WAKE_PATH and self.bus is not None:
                await read_body(receive, 0)
                status, woke, data = self.bus.wake(scope["headers"])
                if data:
                    woke = [*woke, (b"content-length", b"%d" % len(data))]
                await send({"type": "http.response.start", "status": status, "headers": woke})
                await send({"type": "http.response.body", "body": data})
                return None
            return await self.app(scope, receive, send)
        body = await read_body(receive, MAX_BODY)
        # Only what authentication reads (the Authorization header, or its cookie).
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _AUTH_HEADERS}
        try:
            owner, app, wsid, resource = match.groups()
            client = scope.get("client")
            reply = await self.router.handle_v1(owner, app, wsid, resource, body, headers, client[0] if client else "")
            status, data = reply.status, reply.body
            if reply.headers is JSON_HEADERS:
                raw_headers = [_JSON_TYPE, (b"content-length", b"%d" % len(data)), *_RAW_CORS]
            else:
                raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
                raw_headers.append((b"content-length", b"%d" % len(data)))
                raw_headers += _RAW_CORS
        except SysError as err:
            status, data = err.status, err.to_v1()
            raw_headers = [_JSON_TYPE, (b"content-length", b"%d" % len(data)), *_RAW_CORS]
            raw_headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
        except Exception:
            log.exception("internal error serving POST %s", path)
            status, data = 500, SysError(500, "internal error").to_v1()
            raw_headers = [_JSON_TYPE, (b"content-length", b"%d" % len(data)), *_RAW_CORS]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": data})

    async def _v2_read(self, scope: Scope, receive: Receive, send: Send, match: re.Match[str]) -> None:
        """An API v2 read, answered as ``Router.v2_read`` behind ``with_cors`` and ``guarded``
        answers it, without Starlette's routing, middleware and request objects."""
        body = await read_body(receive, MAX_BODY)
        owner, app, wsid, path, name, id_text = match.groups()
        client = scope.get("client")
        params = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        try:
            reply = await self.router.handle_v2_read(
                owner,
                app,
                wsid,
                path,
                name,
                id_text,
                body,
                request_credential(scope["headers"]),
                params,
                client[0] if client else "",
            )
            status, data = reply.status, reply.body
            raw_headers = starlette_headers(reply.headers, data, status)
        except SysError as err:
            status, data = err.status, err.to_v2()
            raw_headers = starlette_headers(err.headers, data, status, "application/json")
        except Exception:
            log.exception("internal error serving GET %s", scope["path"])
            status, data = 500, SysError(500, "internal error").to_v2()
            raw_headers = starlette_headers({}, data, status, "application/json")
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": data})

    async def _forwarded(self, scope: Scope, receive: Receive, send: Send, bus: BusEndpoint) -> None:
        await self._internal(scope, receive, send, bus.handle)

    async def _internal(self, scope: Scope, receive: Receive, send: Send, handler: InternalHandler) -> None:
        frame = await read_body(receive, MAX_FRAME)
        try:
            status, headers, data = await handler(scope["headers"], frame)
        except Exception:  # the owner answers every failure itself; this is a bug of the endpoint
            log.exception("internal error serving a forwarded request")
            status, headers, data = 500, [_JSON_TYPE], SysError(500, "internal error").to_v1()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", b"%d" % len(data))],
            }
        )
        await send({"type": "http.response.body", "body": data})


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body; one longer than ``limit`` is read to its end and stands as ``limit`` + 1
    bytes, which the size check refuses."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if size <= limit else b"x" * (limit + 1)


def build_app(vvm: VVM, routes: Routes | Mapping[int, Transport], bus: BusEndpoint | None = None) -> FastPath:
    """The ASGI application of ``vvm``'s edge: requests go to their owners through ``routes``
    (or a transport per cluster ID); ``bus``, if given, serves requests forwarded to this process."""
    r = Router(vvm, routes)
    v1 = "/api/{owner}/{app}/{wsid}/{resource}"
    v2 = "/api/v2/apps/{owner}/{app}/workspaces/{wsid}"
    v1_blob = "/blob/{owner}/{app}/{wsid}"

    async def check(request: Request) -> Response:
        # A process of a cluster that is still joining (or already leaving) is alive but not
        # ready: load balancers and clients send elsewhere or wait.
        if not vvm.ready:
            return PlainTextResponse("not ready", status_code=503, headers={"Retry-After": "1"})
        return PlainTextResponse("ok")

    ident = IdentityEndpoints(r)
    blobs = BlobEndpoints(r)
    n10n = N10nEndpoints(r)
    apps = "/api/v2/apps/{owner}/{app}"

    def api(path: str, handler: Handler, methods: list[str], v2: bool = True) -> Route:
        """A route of Voedger's API: its errors in Voedger's shape, CORS on every answer, and
        ``OPTIONS`` answered as a preflight."""
        return Route(path, endpoint(with_cors(guarded(handler, v2))), methods=[*methods, "OPTIONS"])

    routes_ = [
        Route("/api/check", endpoint(with_cors(check)), methods=["GET", "POST", "OPTIONS"]),
        api(f"{apps}/auth/login", ident.login, ["POST"]),
        api(f"{apps}/auth/refresh", ident.refresh, ["POST"]),
        api(f"{apps}/users", ident.users, ["POST"]),
        api(f"{apps}/users/change-password", ident.change_password, ["POST"]),
        api(f"{apps}/devices", ident.devices, ["POST"]),
        api(f"{apps}/schemas", r.v2_schemas, ["GET"]),
        api(f"{apps}/schemas/{{workspace}}/roles", r.v2_schemas, ["GET"]),
        api(f"{apps}/schemas/{{workspace}}/roles/{{role}}", r.v2_schemas, ["GET"]),
        api(f"{v2}/commands/{{name}}", r.v2_command, ["POST"]),
        api(f"{v2}/docs/{{name}}", r.v2_docs, ["POST"]),
        api(f"{v2}/docs/{{name}}", r.v2_read, ["GET"]),
        api(f"{v2}/docs/{{name}}/{{id}}", r.v2_docs, ["PATCH", "DELETE"]),
        api(f"{v2}/docs/{{name}}/{{id}}", r.v2_read, ["GET"]),
        api(f"{v2}/cdocs/{{name}}", r.v2_read, ["GET"]),
        api(f"{v2}/queries/{{name}}", r.v2_read, ["GET"]),
        api(f"{v2}/views/{{name}}", r.v2_read, ["GET"]),
        api(v1, r.v1, ["POST", "PATCH"], v2=False),
        api(v1_blob, blobs.v1_upload, ["POST"], v2=False),
        api(f"{v1_blob}/{{blob}}", blobs.v1_download, ["GET", "POST"], v2=False),
        api(f"{v2}/docs/{{name}}/blobs/{{field}}", blobs.v2_upload, ["POST"]),
        api(f"{v2}/docs/{{name}}/{{id}}/blobs/{{field}}", blobs.v2_download, ["GET"]),
        api(f"{v2}/tblobs", blobs.v2_temp_upload, ["POST"]),
        api(f"{v2}/tblobs/{{suuid}}", blobs.v2_temp_download, ["GET"]),
        api("/n10n/channel", n10n.v1_channel, ["GET"], v2=False),
        api("/n10n/subscribe", n10n.v1_subscribe, ["GET"], v2=False),
        api("/n10n/unsubscribe", n10n.v1_unsubscribe, ["GET"], v2=False),
        api("/n10n/update/{offset}", n10n.v1_update, ["GET", "POST", "PUT", "PATCH", "DELETE"], v2=False),
        api(f"{apps}/notifications", n10n.v2_open, ["POST"]),
        api(
            f"{apps}/notifications/{{channel}}/workspaces/{{wsid}}/subscriptions/{{view}}",
            n10n.v2_subscribe,
            ["PUT"],
        ),
        api(
            f"{apps}/notifications/{{channel}}/workspaces/{{wsid}}/subscriptions/{{view}}",
            n10n.v2_unsubscribe,
            ["DELETE"],
        ),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        v2_path = request.url.path.startswith("/api/v2/")
        status = getattr(exc, "status_code", 404)
        message = "method not allowed" if status == 405 else f"no such endpoint: {request.method} {request.url.path}"
        return error_response(SysError(status, message), v2_path)

    starlette = Starlette(routes=routes_, exception_handlers={404: not_found, 405: not_found})
    # No redirects: Starlette's trailing-slash redirect builds its Location from the client's
    # Host header (an open redirect). A URL with a trailing slash is a 404, as in Voedger.
    starlette.router.redirect_slashes = False
    return FastPath(r, starlette, bus)
