"""The ASGI application: Voedger's HTTP API v1 and v2 over Starlette.

The router checks what it can without the application's data (the application exists, the
WSID parses and names a known cluster, the body is JSON), turns pseudo WSIDs into application
workspaces, authenticates, and sends the request to the owner of its partition. Every error a
client can cause answers in Voedger's error shape; anything else is logged and answers 500
without details.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from voedger.appdef import QName, QNameError, Structure
from voedger.auth import CredentialsKind, TokenInfo, credentials_from
from voedger.processors.cuds import document_cuds
from voedger.processors.principal import Principal
from voedger.router.endpoint import endpoint
from voedger.router.identity import IdentityEndpoints
from voedger.router.responses import json_response
from voedger.router.transport import BusRequest, BusResponse, Kind, Transport
from voedger.structs import wsid as ws
from voedger.syserror import SysError
from voedger.vvm.server import VVM

log = logging.getLogger("voedger.router")

MAX_BODY = 20 * 1024 * 1024
VALIDATED_TOKENS = 10_000
DEV_PRINCIPAL = Principal(login="dev", extra={"insecure": True})

Handler = Callable[[Request], Awaitable[Response]]


class Router:
    def __init__(self, vvm: VVM, transports: dict[int, Transport]) -> None:
        self.vvm = vvm
        self.transports = transports
        self._validated: dict[tuple[str, str], TokenInfo] = {}
        """Tokens already validated, until they expire: a client sends the same one many times."""
        self._reading: dict[int, int] = {}
        """Reads running now, by WSID (the per-workspace query limit)."""
        self.reads_refused = 0
        """Reads refused by that limit since start."""

    # --- shared steps ---------------------------------------------------------------------------

    def resolve(self, app_name: str, wsid_text: str) -> tuple[int, int, Transport]:
        """(WSID, partition, transport) for a request, or a SysError naming what is wrong."""
        app = self.vvm.app(app_name)
        try:
            wsid = int(wsid_text)
        except ValueError:
            raise SysError(400, f"workspace ID {wsid_text!r} is not a number") from None
        if not 0 < wsid <= ws.MAX_WSID:
            raise SysError(400, f"workspace ID {wsid} is out of range 1..{ws.MAX_WSID}")
        rt = app.runtime
        if ws.is_pseudo(wsid):
            wsid = ws.pseudo_to_app_wsid(wsid, rt.num_app_workspaces, rt.cluster_id)
        cluster = ws.cluster_id(wsid)
        transport = self.transports.get(cluster)
        if transport is None:
            raise SysError(400, f"workspace {wsid} belongs to cluster {cluster}, which this federation does not know")
        return wsid, ws.partition_of(wsid, rt.num_partitions), transport

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

    def anonymous_caller(self) -> object:
        """The caller of the sign-in endpoints: nobody (granted to sys.Anonymous), or the
        development principal under ``--insecure-dev``."""
        return DEV_PRINCIPAL if self.vvm.config.insecure_dev else None

    def authenticate(
        self, app_name: str, headers: Mapping[str, str], cookies: Mapping[str, str] | None = None
    ) -> object:
        """The caller: a validated token, or None for a request without one (anonymous).

        Bad credentials are a 401 here; what the caller may do is decided in the workspace.
        """
        if self.vvm.config.insecure_dev:
            return DEV_PRINCIPAL
        creds = credentials_from(headers, cookies_of(headers) if cookies is None else cookies)
        if creds is None:
            return None
        if creds.kind is not CredentialsKind.TOKEN:
            raise SysError(401, "a login and password are not accepted here: sign in to get a token first")
        assert self.vvm.tokens is not None
        key = (app_name, creds.token)
        hit = self._validated.get(key)
        if hit is not None and hit.expires_at > self.vvm.config.clock.now():
            return hit  # checked before: signature, app and payload cannot have changed
        info = self.vvm.tokens.for_app(app_name).validate(creds.token)
        if len(self._validated) >= VALIDATED_TOKENS:
            self._validated.clear()
        self._validated[key] = info
        return info

    @staticmethod
    async def json_body(request: Request, allow_empty: bool = True) -> dict[str, Any]:
        return Router.parse_json(await request.body(), allow_empty)

    @staticmethod
    def parse_json(raw: bytes, allow_empty: bool = True) -> dict[str, Any]:
        if len(raw) > MAX_BODY:
            raise SysError(413, f"request body is {len(raw)} bytes; at most {MAX_BODY} are accepted")
        if not raw.strip():
            if allow_empty:
                return {}
            raise SysError(400, "request body is empty; a JSON object is expected")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SysError(400, f"request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise SysError(400, "request body must be a JSON object")
        return body

    # --- API v1 -------------------------------------------------------------------------------

    async def v1(self, request: Request) -> Response:
        p = request.path_params
        body = await request.body()
        reply = await self.handle_v1(
            p["owner"], p["app"], p["wsid"], p["resource"], body, request.headers, client_ip(request)
        )
        return json_response(reply.status, reply.body, reply.headers)

    async def handle_v1(
        self,
        owner: str,
        app: str,
        wsid_text: str,
        resource: str,
        raw_body: bytes,
        headers: Mapping[str, str],
        ip: str = "",
    ) -> BusResponse:
        """``POST /api/{owner}/{app}/{wsid}/{c|q}.{pkg}.{name}``, from any front (Starlette or the fast path)."""
        app_name = f"{owner}/{app}"
        kind_letter, _, name = resource.partition(".")
        if kind_letter not in ("c", "q") or not name:
            raise SysError(400, f"resource {resource!r} must be c.<pkg>.<Command> or q.<pkg>.<Query>")
        try:
            qname = QName.parse(name)
        except QNameError as exc:
            raise SysError(400, f"resource {resource!r}: {exc}") from None
        wsid, partition, transport = self.resolve(app_name, wsid_text)
        principal = self.authenticate(app_name, headers)
        body = self.parse_json(raw_body)
        kind: Kind = "command" if kind_letter == "c" else "query"
        with self._read_slot(wsid) if kind == "query" else contextlib.nullcontext():
            return await transport.send(BusRequest(app_name, wsid, partition, kind, qname, body, principal, ip=ip))

    # --- API v2 -------------------------------------------------------------------------------

    async def _v2_send(
        self, request: Request, kind: Kind, resource: QName, body: dict[str, Any], extra: dict[str, Any]
    ) -> Response:
        """Resolve, authenticate and send an API v2 request of a workspace; answer its reply."""
        p = request.path_params
        app_name = f"{p['owner']}/{p['app']}"
        wsid, partition, transport = self.resolve(app_name, p["wsid"])
        principal = self.authenticate(app_name, request.headers, request.cookies)
        bus = BusRequest(
            app_name, wsid, partition, kind, resource, body, principal, api_v2=True, extra=extra, ip=client_ip(request)
        )
        with self._read_slot(wsid) if kind == "query" else contextlib.nullcontext():
            reply = await transport.send(bus)
        return json_response(reply.status, reply.body, reply.headers)

    async def v2_command(self, request: Request) -> Response:
        qname = parse_qname(request.path_params["name"])
        self.vvm.app(f"{request.path_params['owner']}/{request.path_params['app']}")
        body = await self.json_body(request)
        unexpected = sorted(set(body) - {"args", "unloggedArgs"})
        if unexpected:
            raise SysError(400, f"unexpected key(s) in the request body: {', '.join(unexpected)}")
        return await self._v2_send(request, "command", qname, body, {})

    async def v2_docs(self, request: Request) -> Response:
        """Create (POST), update (PATCH) or deactivate (DELETE) a record: a c.sys.CUD in disguise."""
        p = request.path_params
        table = parse_qname(p["name"])
        app = self.vvm.app(f"{p['owner']}/{p['app']}").runtime.appdef
        t = app.find(table)
        if not isinstance(t, Structure) or not t.kind.is_record:
            raise SysError(404, f"table {table} does not exist")
        if t.kind.value in ("ODoc", "ORecord"):
            raise SysError(405, "cannot operate on the ODoc\\ORecord in any way other than through command arguments")
        method = request.method
        if method == "POST":
            # The document and the records nested in its containers, all created by one event.
            cuds = document_cuds(app, t, await self.json_body(request, allow_empty=False))
        else:
            record_id = parse_id(p.get("id", ""))
            if method == "PATCH":
                fields = await self.json_body(request, allow_empty=False)
                if "sys.ID" in fields:
                    raise SysError(400, "sys.ID field is not allowed among fields to update")
                nested = [name for name in fields if t.container(name) is not None]
                if nested:
                    raise SysError(
                        400,
                        f"{table} container «{nested[0]}» cannot be changed by PATCH, which updates the record's own "
                        "fields: PATCH or DELETE each nested record at docs/{table}/{id} of its own",
                    )
            else:
                if (await request.body()).strip():
                    raise SysError(400, "unexpected body is provided on delete")
                fields = {"sys.IsActive": False}
            cuds = [{"sys.ID": record_id, "fields": fields}]
        extra = {"path": "docs", "method": method, "table": str(table)}
        return await self._v2_send(request, "command", QName("sys", "CUD"), {"cuds": cuds}, extra)

    async def v2_read(self, request: Request) -> Response:
        """GET docs/{table}/{id}, cdocs/{table}, queries/{query}, views/{view}: the query side."""
        p = request.path_params
        qname = parse_qname(p["name"])
        path = request.url.path.split("/workspaces/", 1)[1].split("/")[1]
        extra: dict[str, Any] = {"path": path, "method": "GET", "params": dict(request.query_params)}
        if "id" in p:
            extra["id"] = parse_id(p["id"])
        elif path == "docs":
            extra["id"] = 0  # a singleton: the table names the record
        return await self._v2_send(request, "query", qname, {}, extra)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def cookies_of(headers: Mapping[str, str]) -> dict[str, str]:
    raw = headers.get("cookie")
    if not raw:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return {}
    return {k: m.value for k, m in jar.items()}


def parse_qname(text: str) -> QName:
    try:
        return QName.parse(text)
    except QNameError as exc:
        raise SysError(400, str(exc)) from None


def parse_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SysError(400, f"record ID {text!r} is not a number") from None
    if value <= 0:
        raise SysError(400, f"record ID {value} must be positive")
    return value


def error_response(err: SysError, v2: bool) -> Response:
    return Response(
        err.to_v2() if v2 else err.to_v1(),
        status_code=err.status,
        media_type="application/json",
        headers=err.headers,
    )


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


_AUTH_HEADERS = (b"authorization", b"cookie")
V1_PATH = re.compile(r"^/api/([^/]+)/([^/]+)/([^/]+)/([^/]+)$")


class FastPath:
    """API v1 ``POST`` straight to the router, every other request to Starlette.

    Commands are the hot path: skipping the framework's routing, middleware and request objects
    for them saves a good part of a request's CPU. The handler is the same one the Starlette
    route calls, so behaviour does not depend on which front served the request.
    """

    def __init__(self, router: Router, app: Starlette) -> None:
        self.router = router
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        match = V1_PATH.match(scope["path"])
        if match is None or match.group(1) == "v2":
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_BODY:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks) if size <= MAX_BODY else b"x" * (MAX_BODY + 1)
        # Only what authentication reads (the Authorization header, or its cookie).
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _AUTH_HEADERS}
        try:
            owner, app, wsid, resource = match.groups()
            client = scope.get("client")
            reply = await self.router.handle_v1(owner, app, wsid, resource, body, headers, client[0] if client else "")
            status, data, extra = reply.status, orjson.dumps(reply.body), reply.headers
        except SysError as err:
            status, data, extra = err.status, err.to_v1(), err.headers
        except Exception:
            log.exception("internal error serving POST %s", scope["path"])
            status, data, extra = 500, SysError(500, "internal error").to_v1(), {}
        raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": data})


def build_app(vvm: VVM, transports: dict[int, Transport]) -> FastPath:
    r = Router(vvm, transports)
    v1 = "/api/{owner}/{app}/{wsid}/{resource}"
    v2 = "/api/v2/apps/{owner}/{app}/workspaces/{wsid}"

    async def check(request: Request) -> Response:
        return PlainTextResponse("ok")

    ident = IdentityEndpoints(r)
    apps = "/api/v2/apps/{owner}/{app}"
    routes = [
        Route("/api/check", endpoint(check), methods=["GET"]),
        Route(f"{apps}/auth/login", endpoint(guarded(ident.login, True)), methods=["POST"]),
        Route(f"{apps}/auth/refresh", endpoint(guarded(ident.refresh, True)), methods=["POST"]),
        Route(f"{apps}/users", endpoint(guarded(ident.users, True)), methods=["POST"]),
        Route(f"{apps}/users/change-password", endpoint(guarded(ident.change_password, True)), methods=["POST"]),
        Route(f"{apps}/devices", endpoint(guarded(ident.devices, True)), methods=["POST"]),
        Route(f"{v2}/commands/{{name}}", endpoint(guarded(r.v2_command, True)), methods=["POST"]),
        Route(f"{v2}/docs/{{name}}", endpoint(guarded(r.v2_docs, True)), methods=["POST"]),
        Route(f"{v2}/docs/{{name}}", endpoint(guarded(r.v2_read, True)), methods=["GET"]),
        Route(f"{v2}/docs/{{name}}/{{id}}", endpoint(guarded(r.v2_docs, True)), methods=["PATCH", "DELETE"]),
        Route(f"{v2}/docs/{{name}}/{{id}}", endpoint(guarded(r.v2_read, True)), methods=["GET"]),
        Route(f"{v2}/cdocs/{{name}}", endpoint(guarded(r.v2_read, True)), methods=["GET"]),
        Route(f"{v2}/queries/{{name}}", endpoint(guarded(r.v2_read, True)), methods=["GET"]),
        Route(f"{v2}/views/{{name}}", endpoint(guarded(r.v2_read, True)), methods=["GET"]),
        Route(v1, endpoint(guarded(r.v1, False)), methods=["POST", "PATCH"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        v2_path = request.url.path.startswith("/api/v2/")
        status = getattr(exc, "status_code", 404)
        message = "method not allowed" if status == 405 else f"no such endpoint: {request.method} {request.url.path}"
        return error_response(SysError(status, message), v2_path)

    return FastPath(r, Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found}))
