"""The owner's side of the wire: a BusRequest in, a BusResponse out.

Whatever needs the application's data or secrets happens here, in the process that owns the
partition: the credential is validated, the body parsed, the command or read run on the VVM,
and the answer shaped to the byte (status, headers, Voedger's body or error body). The edge sends
those bytes on unchanged, so an answer does not depend on which hop carried the request.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson

from voedger.appdef import AppDef, OperationKind, PolicyKind, QName, QNameError, Structure
from voedger.auth import CredentialsKind, TokenInfo, parse_authorization, parse_authorization_cookie
from voedger.auth.errors import TokenError
from voedger.processors.cuds import document_cuds
from voedger.processors.principal import SYSTEM, Principal
from voedger.router import schemas
from voedger.router.wire import JSON_HEADERS, SCHEMA_OPS, BusRequest, BusResponse, Op, error_reply
from voedger.structs.wsid import partition_of
from voedger.syserror import SysError
from voedger.vvm.server import VVM

log = logging.getLogger("voedger.router")

MAX_BODY: Final = 20 * 1024 * 1024
"""Bytes of a request body a client may send."""
VALIDATED_TOKENS: Final = 10_000
DEV_PRINCIPAL: Final = Principal(login="dev", extra={"insecure": True})
_CUD: Final = QName("sys", "CUD")
ANONYMOUS: Final = QName("sys", "Anonymous")
_READ_PATHS: Final = {Op.V2_QUERIES: "queries", Op.V2_VIEWS: "views", Op.V2_DOCS: "docs", Op.V2_CDOCS: "cdocs"}
_ARRAY_READS: Final = frozenset({Op.V2_QUERIES, Op.V2_VIEWS, Op.V2_CDOCS})
_INTERNAL: Final = SysError(500, "internal error")
HTML_HEADERS: Final[dict[str, str]] = {"content-type": "text/html"}


class Owner:
    """Serves the requests of the partitions this process owns."""

    def __init__(self, vvm: VVM) -> None:
        self.vvm = vvm
        self._validated: dict[tuple[str, str, str], TokenInfo] = {}
        """Tokens already validated, by application and credential as sent, until they expire: a
        client sends the same one many times. The same object comes back for the same token,
        which lets a partition remember the caller's principal."""
        self._revocations = 0
        """The key ring's ``revocations`` the cached tokens were validated under."""
        self._anonymous: dict[tuple[str, QName], tuple[AppDef, bool]] = {}
        """Whether a function may be executed by ``sys.Anonymous`` only, by application."""

    async def handle(self, request: BusRequest) -> BusResponse:
        """The answer to ``request``; never raises: every failure is an error response, and
        anything unexpected is logged and answers 500 without details."""
        try:
            op = request.op
            if op is Op.V1_COMMAND:
                return await self._v1(request, command=True)
            if op is Op.V1_QUERY:
                return await self._v1(request, command=False)
            if op in SCHEMA_OPS:
                return self._v2_schemas(request)
            if op is Op.N10N_WATCH:
                return await self._n10n_watch(request)
            if request.method == "GET":
                return await self._v2_read(request)
            if op is Op.V2_DOCS:
                return await self._v2_docs(request)
            if op is Op.V2_COMMANDS:
                return await self._v2_command(request)
            raise SysError(405, f"method {request.method} is not allowed on {op.value}")
        except SysError as err:
            return error_reply(err, request.v2)
        except Exception:
            log.exception(
                "internal error serving %s %s %s/%d %s",
                request.op.value,
                request.method,
                request.app,
                request.wsid,
                request.resource,
            )
            return error_reply(_INTERNAL, request.v2)

    # --- shared steps ---------------------------------------------------------------------------

    def authenticate(self, app: str, authorization: str, cookie: str = "") -> object:
        """The caller: a validated token, or None for a request without one (anonymous).

        Bad credentials are a 401 here; what the caller may do is decided in the workspace.
        """
        if self.vvm.config.insecure_dev:
            return self._dev_caller(app, authorization)
        if not authorization and not cookie:
            return None
        assert self.vvm.tokens is not None
        revocations = self.vvm.tokens.keys.ring.revocations
        if revocations != self._revocations:  # a key stopped verifying: check every token again
            self._validated.clear()
            self._revocations = revocations
        key = (app, authorization, cookie)
        hit = self._validated.get(key)
        if hit is not None and hit.expires_at > self.vvm.config.clock.now():
            return hit  # checked before: signature, app and payload cannot have changed
        if authorization.strip():
            creds = parse_authorization(authorization)
        else:
            creds = parse_authorization_cookie(cookie) if cookie else None
        if creds is None:
            return None
        if creds.kind is not CredentialsKind.TOKEN:
            raise SysError(401, "a login and password are not accepted here: sign in to get a token first")
        info = self.vvm.tokens.for_app(app).validate(creds.token)
        if len(self._validated) >= VALIDATED_TOKENS:
            self._validated.clear()
        self._validated[key] = info
        return info

    def _dev_caller(self, app: str, authorization: str) -> Principal:
        """``--insecure-dev``: everyone is the dev principal, except a call that carries a valid
        System token (the platform's own calls between workspaces over HTTP, in a cluster or a
        federation), which is the System, as it would be without the flag."""
        creds = parse_authorization(authorization) if authorization.strip() else None
        if creds is None or creds.kind is not CredentialsKind.TOKEN or self.vvm.tokens is None:
            return DEV_PRINCIPAL
        try:
            info = self.vvm.tokens.for_app(app).validate(creds.token)
        except (TokenError, SysError):
            return DEV_PRINCIPAL
        return SYSTEM if info.payload.is_system else DEV_PRINCIPAL

    def _caller(self, request: BusRequest, function: QName) -> object:
        """The caller of a function: as ``authenticate`` finds it, except for a function that only
        ``sys.Anonymous`` may execute, where any credential is ignored (an expired token kept in
        a cookie must not refuse it), as Voedger does."""
        if not self.vvm.config.insecure_dev and self._anonymous_only(request.app, function):
            return None
        return self.authenticate(request.app, request.authorization, request.cookie)

    def _anonymous_only(self, app: str, function: QName) -> bool:
        appdef = self.vvm.app(app).runtime.appdef
        hit = self._anonymous.get((app, function))
        if hit is not None and hit[0] is appdef:
            return hit[1]
        t = appdef.find(function)
        rules = [r for r in appdef.acl() if r.filter.match(t)] if t is not None else []
        only = (
            len(rules) == 1
            and rules[0].ops == {OperationKind.Execute}
            and rules[0].policy is PolicyKind.Allow
            and rules[0].principal == ANONYMOUS
        )
        self._anonymous[(app, function)] = (appdef, only)
        return only

    def _check_partition(self, request: BusRequest) -> None:
        rt = self.vvm.app(request.app).runtime
        if partition_of(request.wsid, rt.num_partitions) != request.partition:
            raise SysError(400, f"workspace {request.wsid} is not in partition {request.partition} of {request.app}")

    # --- API v1 -------------------------------------------------------------------------------

    async def _v1(self, request: BusRequest, command: bool) -> BusResponse:
        qname = parse_qname(request.resource)
        self._check_partition(request)
        principal = self._caller(request, qname)
        body = parse_json(request.body)
        if command:
            result = await self.vvm.command(request.app, request.wsid, qname, body, principal, ip=request.ip)
            return BusResponse(200, JSON_HEADERS, orjson.dumps(result.to_v1()))
        answer = await self.vvm.query(request.app, request.wsid, qname, principal, body=body, ip=request.ip)
        return BusResponse(200, JSON_HEADERS, orjson.dumps(answer))

    # --- API v2 -------------------------------------------------------------------------------

    async def _v2_command(self, request: BusRequest) -> BusResponse:
        qname = parse_qname(request.resource)
        self._check_partition(request)
        principal = self._caller(request, qname)
        body = parse_json(request.body)
        result = await self.vvm.command(request.app, request.wsid, qname, body, principal, ip=request.ip)
        return BusResponse(200, JSON_HEADERS, orjson.dumps(result.to_v2()))

    async def _v2_docs(self, request: BusRequest) -> BusResponse:
        """Create (POST), update (PATCH) or deactivate (DELETE) a record: a c.sys.CUD in disguise."""
        table = parse_qname(request.resource)
        self._check_partition(request)
        principal = self.authenticate(request.app, request.authorization, request.cookie)
        app = self.vvm.app(request.app).runtime.appdef
        t = app.find(table)
        method = request.method
        if t is None:
            # The command processor answers, as Voedger's does, that the workspace lacks the table
            # (400); it looks the table up before it wants any CUD.
            cuds: list[dict[str, Any]] = []
        elif not isinstance(t, Structure) or not t.kind.is_record:
            raise SysError(400, f"{table} is not a table")
        elif t.kind.value in ("ODoc", "ORecord"):
            raise SysError(405, "cannot operate on the ODoc\\ORecord in any way other than through command arguments")
        elif method == "POST":
            # The document and the records nested in its containers, all created by one event.
            cuds = document_cuds(app, t, parse_json(request.body, allow_empty=False))
        else:
            cuds = [{"sys.ID": request.record_id, "fields": _changes(t, table, request)}]
        result = await self.vvm.command(
            request.app,
            request.wsid,
            _CUD,
            {"cuds": cuds},
            principal,
            ip=request.ip,
            table=table,
        )
        return BusResponse(201 if method == "POST" else 200, JSON_HEADERS, orjson.dumps(result.to_v2()))

    async def _v2_read(self, request: BusRequest) -> BusResponse:
        """GET docs/{table}[/{id}], cdocs/{table}, queries/{query}, views/{view}: the query side.

        A read whose answer is an array (queries, views, cdocs) answers its failure as Voedger's
        query processor streams it, ``{"results":[],"error":{...}}`` with the error's status; a
        document's is the plain error object. A 503 (too many reads, Voedger's router's answer)
        stays plain."""
        qname = parse_qname(request.resource)
        self._check_partition(request)
        try:
            if request.op is Op.V2_QUERIES:
                principal = self._caller(request, qname)
            else:
                principal = self.authenticate(request.app, request.authorization, request.cookie)
            answer = await self.vvm.query(
                request.app,
                request.wsid,
                qname,
                principal,
                api_v2=True,
                path=_READ_PATHS[request.op],
                params=request.params,
                doc_id=request.record_id,
                ip=request.ip,
            )
        except SysError as err:
            if request.op not in _ARRAY_READS or err.status == 503:
                raise
            reply = error_reply(err, v2=True)
            return BusResponse(reply.status, reply.headers, err.to_v2_array())
        return BusResponse(200, JSON_HEADERS, orjson.dumps(answer))

    async def _n10n_watch(self, request: BusRequest) -> BusResponse:
        """May the caller be notified of changes of the view ``resource`` in the workspace: it
        must be allowed to select from it, as Voedger's notification processor checks."""
        view = parse_qname(request.resource)
        self._check_partition(request)
        principal = self.authenticate(request.app, request.authorization, request.cookie)
        await self.vvm.app(request.app).queries.check_watch(request.wsid, view, principal)
        return BusResponse(200, JSON_HEADERS, b"{}")

    def _v2_schemas(self, request: BusRequest) -> BusResponse:
        """``schemas``, ``schemas/{workspace}/roles``, ``schemas/{workspace}/roles/{role}``: HTML
        pages and the OpenAPI document of a role, from the application's definition. Anybody may
        read them; a bad token is a 401, and a token with the global role ``sys.Developer`` (or a
        server in ``--insecure-dev``) also sees what is not published."""
        principal = self.authenticate(request.app, request.authorization, request.cookie)
        developer = principal is DEV_PRINCIPAL or (
            isinstance(principal, TokenInfo) and schemas.DEVELOPER in principal.payload.global_roles
        )
        appdef = self.vvm.app(request.app).runtime.appdef
        if request.op is Op.V2_SCHEMAS:
            page = schemas.app_page(appdef, request.app, developer)
        elif request.op is Op.V2_SCHEMAS_ROLES:
            page = schemas.roles_page(appdef, request.app, request.resource, developer)
        else:
            role = request.params.get("role", "")
            doc = schemas.role_document(appdef, request.app, request.resource, role, developer)
            return BusResponse(200, JSON_HEADERS, doc)
        return BusResponse(200, HTML_HEADERS, page.encode())


def _changes(t: Structure, table: QName, request: BusRequest) -> dict[str, Any]:
    """The fields a PATCH (the record's own) or a DELETE (deactivation) of docs/{table}/{id} changes."""
    if not request.record_id:  # ID 0 in the URL: no record has it
        raise SysError(404, "record with queried id 0 does not exist")
    if request.method != "PATCH":
        if parse_json(request.body):  # nothing, or an empty object, as Voedger takes it
            raise SysError(400, "unexpected body is provided on delete")
        return {"sys.IsActive": False}
    fields = parse_json(request.body, allow_empty=False)
    if "sys.ID" in fields:
        raise SysError(400, "sys.ID field is not allowed among fields to update")
    nested = [name for name in fields if t.container(name) is not None]
    if nested:
        raise SysError(
            400,
            f"{table} container «{nested[0]}» cannot be changed by PATCH, which updates the record's own "
            "fields: PATCH or DELETE each nested record at docs/{table}/{id} of its own",
        )
    return fields


def parse_qname(text: str) -> QName:
    try:
        return QName.parse(text)
    except QNameError as exc:
        raise SysError(400, str(exc)) from None


def parse_json(raw: bytes, allow_empty: bool = True) -> dict[str, Any]:
    """A request body: a JSON object (``{}`` for an empty body when ``allow_empty``)."""
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
