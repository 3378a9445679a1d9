"""The query processor: reads through API v1 (``q.pkg.Query``) and API v2 (queries, views,
documents and collections of documents).

Every read follows Voedger's pipeline: the workspace must be initialised (403) and active (410,
except for the system); the name must exist in the workspace (400); the principal must be allowed
to execute the query or to select from the table or view (403); the parameters must be right
(400). A query's extension then runs with a State and Intents of its own, and the objects it
returns go through the rows processor of the API version. Reads see what is durable in storage;
nothing a query does is written.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from typing import Any

import orjson

from voedger.appdef import (
    ANY,
    SYS_ID,
    SYS_QNAME,
    AppDef,
    OperationKind,
    QName,
    QNameError,
    Query,
    Structure,
    Type,
    TypeKind,
    View,
    Workspace,
    qname,
)
from voedger.blobs.store import BlobStore
from voedger.processors import query_v1, query_v2
from voedger.processors.app import AppRuntime, invoke
from voedger.processors.command import ERR_WS_NOT_INITED, WS_DESCRIPTOR, check_active, workspace_kind
from voedger.processors.cuds import parse_object
from voedger.processors.identity import resolve_principal
from voedger.processors.principal import Principal
from voedger.processors.readcache import ReadCache
from voedger.processors.rows import (
    Row,
    any_record,
    children_by_container,
    collection_records,
    declared_result_type,
    operation_record,
    record_map,
    result_map,
    type_of,
    view_row_map,
    wrecord_children,
)
from voedger.processors.tally import QueryStages
from voedger.state import Intents, QueryContext
from voedger.state.access import Access
from voedger.structs.events import Event
from voedger.structs.logs import read_plog
from voedger.structs.pending import Pending
from voedger.structs.records import Record, get_record
from voedger.structs.rowcache import CachedRows
from voedger.structs.values import ValidationError
from voedger.structs.views import read_rows
from voedger.structs.wsid import partition_of
from voedger.syserror import SysError
from voedger.trim import trimmed

SYS_RAW = QName("sys", "Raw")
SQL_QUERY = QName("sys", "SqlQuery")
ANSWERS_KEPT = frozenset({QName("sys", "Collection")})
"""API v1 queries whose answer is kept where the workspace is written (``structs/rowcache.py``,
results), keyed by workspace and body: their answer is a function of the body and of the rows
they read alone (no caller, time, address or other application in it; a platform query, so no
ACL inside it either: the caller's rights are checked before, on every read)."""
READABLE_KINDS = frozenset(
    {TypeKind.CDoc, TypeKind.WDoc, TypeKind.ODoc, TypeKind.CRecord, TypeKind.WRecord, TypeKind.ORecord}
)


class ApiPath(StrEnum):
    """What an API v2 read addresses."""

    QUERIES = "queries"
    VIEWS = "views"
    DOCS = "docs"
    CDOCS = "cdocs"


@dataclass
class QueryRequest:
    wsid: int
    name: QName
    """The query (``pkg.Query``), view, table or document type read."""
    principal: Any
    """The caller as the edge authenticated it; a Principal once the workspace resolved it."""
    body: bytes | str | dict[str, Any] | None = None
    """API v1: the request body as received (or already parsed)."""
    params: Mapping[str, str] = field(default_factory=dict)
    """API v2: the URL query parameters, decoded (``where``, ``order``, ``args``, ...)."""
    api_v2: bool = False
    path: ApiPath = ApiPath.QUERIES
    doc_id: int = 0
    """API v2 ``docs``: the ID in the URL; 0 for a singleton."""
    ip: str = ""
    """The client's address, for rates per IP."""
    caller: Any = None
    """The caller before resolution (the validated token), kept for sys.RefreshPrincipalToken."""


@dataclass(frozen=True, slots=True)
class _Answer:
    """A kept answer, serialized (a few µs to decode: each read gets objects of its own, and
    the bytes are what the cache's bound counts), and the application definition it was
    computed with (a redeployed application answers anew)."""

    app: AppDef
    raw: bytes


class _KeptAnswer:
    """A query's answer found kept (``answer``), or the means to keep the one being computed."""

    __slots__ = ("_generation", "_key", "_processor", "_rows", "answer")

    def __init__(
        self, processor: QueryProcessor, key: tuple[int, QName, bytes], rows: CachedRows, answer: dict[str, Any] | None
    ) -> None:
        self._processor = processor
        self._key = key
        self._rows = rows
        self._generation = processor.runtime.rows.generation
        self.answer = answer

    def keep(self, answer: dict[str, Any]) -> None:
        """Keep ``answer``, unless a row it was computed from was written meanwhile."""
        read = self._rows.read_keys
        self._rows.read_keys = None
        if read is None:
            return
        p = self._processor
        raw = trimmed(orjson.dumps(answer))
        size = len(raw) + len(self._key[2])
        p.runtime.rows.keep_result(self._key, _Answer(p.app, raw), size, read, self._generation)


class FailedAfterResults(SysError):
    """A query extension's failure after it had answered ``objects``: API v1 sends them first."""

    def __init__(self, err: SysError, objects: list[Row]) -> None:
        super().__init__(err.status, err.message, qname=err.qname, data=err.data, headers=err.headers)
        self.objects = objects


MAX_RUNNING_QUERIES = 1024
"""Reads of one application in progress at once; a flood beyond it is shed, not queued."""


class QueryProcessor:
    """Answers the reads of one application; stateless, so one instance serves every request."""

    def __init__(self, runtime: AppRuntime, max_running: int = MAX_RUNNING_QUERIES) -> None:
        self.runtime = runtime
        self.app = runtime.appdef
        self.max_running = max_running
        self.running = 0
        """Reads in progress; more than ``max_running`` at once are refused with 503."""
        self.stages = QueryStages()
        """Seconds in each stage of the rows processors (``voedger_qp_exec_*_seconds``)."""

    async def execute(self, request: QueryRequest) -> dict[str, Any]:
        if self.running >= self.max_running:
            # Voedger's words when all its query processors are busy; the client retries.
            api = "v2" if request.api_v2 else "v1"
            raise SysError(503, f"no query processors {api} available", headers={"Retry-After": "1"})
        self.running += 1
        try:
            return await (self.execute_v2(request) if request.api_v2 else self.execute_v1(request))
        finally:
            self.running -= 1

    # --- API v1 ---------------------------------------------------------------------------------

    async def execute_v1(self, req: QueryRequest) -> dict[str, Any]:
        """``{"sections":[{"type":"","elements":[...]}]}``, or ``{}`` when nothing is answered."""
        cache = self._cache(req.wsid)
        reader = self._reader(cache)
        ws = await self._workspace(reader, req, cache)
        query = self._query(ws, req.name)
        self._authorize(ws, req.principal, OperationKind.Execute, query.qname)
        self._limit(req, query.qname)
        body = _body_v1(req.body, raw_param=query.param == SYS_RAW)
        args = self._args(query, body.get("args"))
        impl = self._impl(query)
        result = self._result_type(ws, query, impl, args)
        if result is not None and result.qname == SYS_RAW:
            return query_v1.raw_sections(await self._run(reader, req, query, impl, args, result, ws))
        params = query_v1.parse_params(self.app, body, result)
        if query.result == ANY.qname and isinstance(result, Structure):
            for e in params.elements:
                if e.type is not None:
                    self._authorize(ws, req.principal, OperationKind.Select, e.type.qname, e.fields)
        kept = self._kept_answer(reader, req, query, body)
        if kept is not None and kept.answer is not None:
            return kept.answer
        rows = query_v1.RowsProcessor(self.app, params, self._reader_of(reader, req.wsid), self.stages)
        failed: FailedAfterResults | None = None
        try:
            objects = await self._run(reader, req, query, impl, args, result, ws)
        except FailedAfterResults as exc:  # no await in here: the native build cannot compile one
            failed = exc
        if failed is not None:
            # Voedger has sent the rows already when the extension fails: a 200 whose
            # sections are followed by the error.
            answer = await rows.sections(failed.objects)
            if not answer:
                raise failed
            return {**answer, **failed.v1_fields()}
        if result is None:
            return {}
        answer = await rows.sections(objects)
        if kept is not None:
            kept.keep(answer)
        return answer

    def _kept_answer(
        self, reader: Pending, req: QueryRequest, query: Query, body: dict[str, Any]
    ) -> _KeptAnswer | None:
        """For a query of ``ANSWERS_KEPT`` read where the workspace is written: its kept answer,
        or what keeps the answer about to be computed (the reader records what it reads)."""
        rows = reader.base
        if query.qname not in ANSWERS_KEPT or not isinstance(rows, CachedRows):
            return None
        key = (req.wsid, query.qname, trimmed(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)))
        found = self.runtime.rows.result(key)
        if isinstance(found, _Answer) and found.app is self.app:
            return _KeptAnswer(self, key, rows, orjson.loads(found.raw))
        rows.read_keys = set()
        return _KeptAnswer(self, key, rows, None)

    # --- API v2 ---------------------------------------------------------------------------------

    async def execute_v2(self, req: QueryRequest) -> dict[str, Any]:
        """``{"results":[...]}``; for ``docs`` the record itself."""
        cache = self._cache(req.wsid)
        reader = self._reader(cache)
        ws = await self._workspace(reader, req, cache)
        handler = {
            ApiPath.QUERIES: self._v2_query,
            ApiPath.VIEWS: self._v2_view,
            ApiPath.DOCS: self._v2_doc,
            ApiPath.CDOCS: self._v2_cdocs,
        }[req.path]
        return await handler(reader, ws, req)

    async def _v2_query(self, reader: Pending, ws: Workspace, req: QueryRequest) -> dict[str, Any]:
        query = self._query(ws, req.name)
        raw = query.param == SYS_RAW
        params = query_v2.parse_params(req.params, raw_arg=raw)
        self._authorize(ws, req.principal, OperationKind.Execute, query.qname)
        self._limit(req, query.qname)
        args = self._args(query, {"Body": params.raw_arg} if raw else params.args)
        impl = self._impl(query)
        result = self._result_type(ws, query, impl, args)
        typed = result if isinstance(result, Structure) else None
        conditions = query_v2.parse_where(params.where, typed)
        query_v2.check_order(params.order, typed)
        failed: FailedAfterResults | None = None
        objects: list[Row] = []
        try:
            objects = await self._run(reader, req, query, impl, args, result, ws)
        except FailedAfterResults as exc:  # no await in here: the native build cannot compile one
            failed = exc
        if result is None:
            if failed is not None:
                raise failed
            return {"results": []}
        if failed is not None:
            objects = failed.objects
        rows = [result_map(typed, o) if typed is not None else dict(o) for o in objects]
        answer: dict[str, Any] = {"results": await self._v2_rows(reader, req.wsid, rows, params, conditions, typed)}
        if failed is not None:
            # Voedger streams the results as they come: once one is sent the answer is a 200,
            # and the failure follows the results.
            if not answer["results"]:
                raise failed
            answer["error"] = failed.v2_fields()
        return answer

    async def _v2_view(self, reader: Pending, ws: Workspace, req: QueryRequest) -> dict[str, Any]:
        view = ws.type(req.name)
        if not isinstance(view, View):
            raise SysError(400, f"view {req.name} does not exist in {ws}")
        params = query_v2.parse_params(req.params)
        names = [f.name for f in view.key + view.value]
        self._authorize(ws, req.principal, OperationKind.Select, view.qname, _requested(params, names))
        if not params.constrained:
            raise SysError(400, "constraints are null")
        if not params.where:
            raise SysError(400, "where constraint is empty")
        if any(f.name not in params.where for f in view.partition_key):
            raise SysError(400, "where constraint must specify the partition key")
        conditions = query_v2.parse_where(params.where, view)
        query_v2.check_order(params.order, view)
        rows: list[Row] = []
        try:
            for key in query_v2.view_keys(view, conditions):
                rows += [view_row_map(view, r) async for r in read_rows(reader, view, req.wsid, key)]
        except ValidationError as exc:
            raise SysError(400, str(exc)) from None
        return {"results": await self._v2_rows(reader, req.wsid, rows, params, conditions, view)}

    async def _v2_doc(self, reader: Pending, ws: Workspace, req: QueryRequest) -> dict[str, Any]:
        t = self._table(ws, req.name, READABLE_KINDS)
        params = query_v2.parse_params(req.params)
        self._authorize(ws, req.principal, OperationKind.Select, t.qname, _requested(params, _names(t), t))
        for included in _included_types(self.app, t, params.include):
            self._authorize(ws, req.principal, OperationKind.Select, included.qname)
        rec = await self._read_doc(reader, t, req)
        obj = record_map(rec)
        if params.include:
            relations = await self._relations(reader, req.wsid, t, rec)
            read = self._reader_of(reader, req.wsid)
            # A WDoc's or WRecord's containers are in sys.WRecordChildrenIdx, not sys.CollectionView.
            wdoc = t.kind in query_v2.WKINDS
            children = functools.partial(wrecord_children, reader, self.app, req.wsid) if wdoc else None
            includer = query_v2.Includer(self.app, params.include, read, relations, children)
            await includer.apply(obj, t)
        if params.keys:
            query_v2.project(obj, params.keys)
        return obj

    async def _v2_cdocs(self, reader: Pending, ws: Workspace, req: QueryRequest) -> dict[str, Any]:
        t = self._table(ws, req.name, frozenset({TypeKind.CDoc}))
        params = query_v2.parse_params(req.params)
        self._authorize(ws, req.principal, OperationKind.Select, t.qname, _requested(params, _names(t), t))
        for included in _included_types(self.app, t, params.include):
            self._authorize(ws, req.principal, OperationKind.Select, included.qname)
        conditions = query_v2.parse_where(params.where, t)
        query_v2.check_order(params.order, t)
        docs = await collection_records(reader, self.app, req.wsid, t.qname)
        rows = [record_map(records[0]) for records in docs]
        relations = children_by_container(r for records in docs for r in records[1:])
        return {"results": await self._v2_rows(reader, req.wsid, rows, params, conditions, t, relations)}

    async def _v2_rows(
        self,
        reader: Pending,
        wsid: int,
        rows: list[Row],
        params: query_v2.Params,
        conditions: list[query_v2.Condition],
        owner: Type | None,
        relations: query_v2.Relations | None = None,
    ) -> list[Row]:
        """Where, order, skip and limit, include, keys: the v2 rows processor."""
        st = self.stages
        t0 = time.perf_counter()
        rows = [r for r in rows if query_v2.matches(r, conditions)]
        t1 = time.perf_counter()
        query_v2.order_rows(rows, params.order)
        t2 = time.perf_counter()
        rows = query_v2.page(rows, params.skip, params.limit)
        t3 = time.perf_counter()
        if params.include:
            read = self._reader_of(reader, wsid)
            includer = query_v2.Includer(self.app, params.include, read, relations or {})
            for r in rows:
                await includer.apply(r, owner if owner is not None else type_of(self.app, r))
        t4 = time.perf_counter()
        if params.keys:
            for r in rows:
                query_v2.project(r, params.keys)
        st.filter += t1 - t0
        st.order += t2 - t1
        st.count += t3 - t2
        st.enrich += t4 - t3
        st.fields += time.perf_counter() - t4
        return rows

    # --- notifications ---------------------------------------------------------------------------

    async def check_watch(self, wsid: int, entity: QName, caller: object) -> None:
        """A caller may subscribe to changes of ``entity`` in the workspace when it may select
        from it there (the workspace initialised and active, as for a read); SysError if not."""
        req = QueryRequest(wsid, entity, caller, api_v2=True, path=ApiPath.VIEWS)
        ws = await self._workspace(Pending(self.runtime.storage), req, self._cache(wsid))
        if ws.type(entity) is None:
            raise SysError(400, f"{entity} is not defined in {ws}")
        self._authorize(ws, req.principal, OperationKind.Select, entity)

    # --- the common pipeline ---------------------------------------------------------------------

    def _cache(self, wsid: int) -> ReadCache | None:
        """The read cache of the workspace's partition where this process writes it, else None."""
        read_cache = self.runtime.read_cache
        return read_cache(wsid) if read_cache is not None else None

    def _reader(self, cache: ReadCache | None) -> Pending:
        """What a read of a workspace reads through: storage, and the rows kept of it where this
        process writes the workspace (``cache``, its partition's; ``structs/rowcache.py``)."""
        runtime = self.runtime
        return Pending(CachedRows(runtime.storage, runtime.rows) if cache is not None else runtime.storage)

    async def _workspace(self, reader: Pending, req: QueryRequest, cache: ReadCache | None) -> Workspace:
        """The kind of the request's workspace, from its descriptor, as the command processor
        finds it, and the caller's principal there; kept in the partition's read cache
        (``cache``) where this process writes the workspace (``processors/readcache.py``)."""
        runtime = self.runtime
        caller = req.caller = req.principal
        known = cache.get(req.wsid) if cache is not None else None
        if known is None:
            generation = cache.generation if cache is not None else 0
            descriptor = await get_record(reader, req.wsid, runtime.singleton_ids.get(WS_DESCRIPTOR, 0))
            if descriptor is None:
                raise SysError(403, ERR_WS_NOT_INITED)
            ws = workspace_kind(self.app, descriptor)
            if cache is None:
                req.principal = await resolve_principal(runtime, caller, req.wsid, ws, descriptor, reader)
                check_active(descriptor, req.principal)
                return ws
            known = cache.put(req.wsid, descriptor, ws, generation)
        principal = known.principal(caller)
        if principal is None:
            principal = await resolve_principal(
                runtime, caller, req.wsid, known.kind, known.descriptor, reader, known.subjects
            )
            known.remember(caller, principal)
        req.principal = principal
        check_active(known.descriptor, principal)
        return known.kind

    def _limit(self, req: QueryRequest, query: QName, *, reset: bool = False) -> None:
        """Take this call of ``query`` from the caller's limits (429 when over one); with
        ``reset``, forget instead what its earlier calls took from the same buckets."""
        limiter = self.runtime.limiter
        if limiter is not None and not req.principal.is_system:
            act = limiter.reset if reset else limiter.check
            partition = partition_of(req.wsid, self.runtime.num_partitions)
            act(query, partition=partition, wsid=req.wsid, login=req.principal.login, ip=req.ip)

    def _query(self, ws: Workspace, name: QName) -> Query:
        q = ws.type(name)
        if not isinstance(q, Query):
            raise SysError(400, f"query {name} does not exist in {ws}")
        return q

    def _table(self, ws: Workspace, name: QName, kinds: frozenset[TypeKind]) -> Structure:
        t = ws.type(name)
        if not isinstance(t, Structure) or t.kind not in kinds or t.abstract:
            raise SysError(400, f"document or record {name} is not defined in {ws}")
        return t

    def _authorize(
        self,
        ws: Workspace,
        principal: Principal,
        op: OperationKind,
        resource: QName,
        fields: Sequence[str] = (),
    ) -> None:
        if principal.is_system:
            return
        if not self.runtime.authorizer.allowed(ws, principal, op, resource, fields):
            verb = "execute" if op is OperationKind.Execute else "select"
            raise SysError(403, f"{verb} of {resource} is forbidden in workspace {ws.qname}")

    def _impl(self, query: Query) -> Callable[..., Any]:
        func = self.runtime.implementation(query)
        if func is None:
            if query.qname.is_sys:
                raise SysError(501, f"query {query.qname} is not built yet")
            raise SysError(500, f"query {query.qname} has no implementation")
        return func

    def _args(self, query: Query, raw: Any) -> dict[str, Any] | None:
        """The query's argument object, checked against its parameter type."""
        if query.param is None:
            if raw:
                raise SysError(400, "args are not expected")
            return None
        t = self.app.find(query.param)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise SysError(400, 'field "args" must be an object')
        if not isinstance(t, Structure):
            return raw  # any: handed over as sent
        unexpected = sorted(k for k in raw if t.field(k) is None and t.container(k) is None)
        if unexpected:
            raise SysError(400, f"unexpected field(s): {', '.join(unexpected)}")
        return parse_object(self.app, t, raw, "args", allow_raw_ids=False)

    def _result_type(
        self, ws: Workspace, query: Query, impl: Callable[..., Any], args: dict[str, Any] | None
    ) -> Type | None:
        """The type of the query's result objects; for ``any``, the one its extension names."""
        if query.result is None:
            return None
        t = self.app.find(query.result)
        resolver = declared_result_type(impl)
        if t is None or t.kind is not TypeKind.Any or resolver is None:
            return t
        name = resolver(args or {})
        try:
            exact = ws.type(qname(name)) if name else None
        except QNameError:
            exact = None
        if not isinstance(exact, Structure):
            raise SysError(400, f"{query.qname} query result type {name or ''} does not exist in {ws}")
        return exact

    async def _run(
        self,
        reader: Pending,
        req: QueryRequest,
        query: Query,
        impl: Callable[..., Any],
        args: dict[str, Any] | None,
        result: Type | None,
        ws: Workspace,
    ) -> list[Row]:
        """Run the query's extension; its result objects, or the error it answered with."""
        access = Access.of(self.app, query, unrestricted=query.qname.is_sys)
        host = SqlHost(self, reader, req, ws) if query.qname == SQL_QUERY else None
        state = self.runtime.state(
            access,
            reader,
            req.wsid,
            query=QueryContext(
                req.wsid,
                args,
                _principal_context(req),
                req.ip,
                host,
                reset_limit=lambda: self._limit(req, query.qname, reset=True),
            ),
        )
        intents = Intents(access)
        try:
            await invoke(impl, state, intents)
        except SysError as err:
            if intents.results:
                raise FailedAfterResults(err, [_plain(r) for r in intents.results]) from err
            raise
        if intents.response is not None and intents.response[0] != HTTPStatus.OK:
            raise SysError(*intents.response)
        objects: list[Row] = [_plain(r) for r in intents.results]
        if isinstance(result, Structure):
            known = {f.name for f in result.fields} | {c.name for c in result.containers}
            for obj in objects:
                extra = sorted(set(obj) - known)
                if extra:
                    what = f"result field «{extra[0]}» is not in {result.qname}"
                    raise SysError(500, f"query {query.qname}: {what}")
        return objects

    def _reader_of(self, reader: Pending, wsid: int) -> Callable[[int], Any]:
        async def read(record_id: int) -> Record | None:
            return await any_record(reader, self.app, wsid, record_id)

        return read

    async def _read_doc(self, reader: Pending, t: Structure, req: QueryRequest) -> Record:
        if t.singleton:
            if req.doc_id != 0:
                raise SysError(400, f"document {t.qname} is singleton. DocID must be 0")
            sid = self.runtime.singleton_ids.get(t.qname)
            rec = await get_record(reader, req.wsid, sid) if sid else None
            if rec is None:
                raise SysError(404, f"singleton {t.qname} not found")
            return rec
        if t.kind in (TypeKind.ODoc, TypeKind.ORecord):
            rec = await operation_record(reader, self.app, req.wsid, req.doc_id)
        else:
            rec = await get_record(reader, req.wsid, req.doc_id) if req.doc_id > 0 else None
        if rec is None or rec.get(SYS_QNAME) != str(t.qname):
            what = "document" if t.kind.is_doc else "record"
            raise SysError(404, f"{what} {t.qname} with ID {req.doc_id} not found")
        return rec

    async def _relations(self, reader: Pending, wsid: int, t: Structure, rec: Record) -> query_v2.Relations:
        """The records of a document by parent and container, for including containers."""
        if t.kind is TypeKind.CDoc:
            docs = await collection_records(reader, self.app, wsid, t.qname, int(rec[SYS_ID]))
            return children_by_container(r for records in docs for r in records[1:])
        if t.kind is TypeKind.ODoc:
            return children_by_container(_nested(rec))
        return {}


class SqlHost:
    """What ``q.sys.SqlQuery`` needs of the processor that runs it: the caller's SELECT rights
    in the workspace, records of any kind, the partition's PLog, and reading another workspace
    of the application as the same caller."""

    def __init__(self, processor: QueryProcessor, reader: Pending, req: QueryRequest, ws: Workspace) -> None:
        self.processor = processor
        self.reader = reader
        self.req = req
        self.workspace = ws
        self.wsid = req.wsid
        runtime = processor.runtime
        self.app_name = runtime.name
        self.cluster_id = runtime.cluster_id
        self.num_app_workspaces = runtime.num_app_workspaces

    def allowed(self, resource: QName, fields: Sequence[str]) -> bool:
        principal = self.req.principal
        if isinstance(principal, Principal) and principal.is_system:
            return True
        return self.processor.runtime.authorizer.allowed(
            self.workspace, principal, OperationKind.Select, resource, fields
        )

    async def record(self, record_id: int) -> Record | None:
        return await any_record(self.reader, self.processor.app, self.wsid, record_id)

    def blob_store(self) -> BlobStore:
        """The application's BLOBs (``blobinfo``, ``blobtext``)."""
        return BlobStore(self.processor.runtime.storage, self.processor.runtime.clock)

    async def plog(self, first: int, count: int | None) -> list[tuple[int, Event]]:
        """Events of the workspace's partition from offset ``first``, with their offsets."""
        partition = partition_of(self.wsid, self.processor.runtime.num_partitions)
        out: list[tuple[int, Event]] = []
        async for ev in read_plog(self.processor.runtime.storage, partition, first, count):
            out.append((ev.plog_offset, ev))
        return out

    async def forward(self, wsid: int, query: str, app: str = "") -> list[str]:
        """The rows of ``query`` run in another workspace (of this application, or of ``app``)
        by the same caller."""
        body: dict[str, Any] = {"args": {"Query": query}, "elements": [{"fields": ["Result"]}]}
        runtime = self.processor.runtime
        if app and app != runtime.name:
            if runtime.peer_query is None:
                raise SysError(400, f"application {app} is not reachable from {runtime.name}")
            answer = await runtime.peer_query(app, wsid, body, self.req.caller)
        else:
            nested = QueryRequest(wsid, SQL_QUERY, self.req.caller, body=body, ip=self.req.ip)
            answer = await self.processor.execute_v1(nested)
        rows: list[str] = []
        for section in answer.get("sections", []):
            for element in section.get("elements", []):
                rows.append(str(element[0][0][0]))
        return rows


def _principal_context(req: QueryRequest) -> dict[str, Any]:
    """What a query sees of its caller: login, token, and the roles it has in the workspace
    (as resolved there, before inheritance)."""
    principal = req.principal
    roles = principal.extra.get("direct_roles", principal.roles) if isinstance(principal, Principal) else ()
    return {"login": principal.login, "token": req.caller, "roles": roles}


def _body_v1(raw: bytes | str | dict[str, Any] | None, raw_param: bool) -> dict[str, Any]:
    if raw_param:  # a sys.Raw parameter takes the body as it came
        if isinstance(raw, dict):
            return {"args": {"Body": orjson.dumps(raw).decode()}}
        if isinstance(raw, bytes):
            try:
                raw = raw.decode()
            except UnicodeDecodeError:
                raise SysError(400, "failed to unmarshal request body: it is not UTF-8 text") from None
        return {"args": {"Body": raw or "{}"}}  # Voedger reads an empty body as "{}"
    if isinstance(raw, dict):
        data: Any = raw
    elif not raw:
        data = {}
    else:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SysError(400, f"failed to unmarshal request body: {exc}") from None
    if not isinstance(data, dict):
        raise SysError(400, "failed to unmarshal request body: expected a JSON object")
    unexpected = sorted(set(data) - query_v1.BODY_KEYS)
    if unexpected:
        raise SysError(400, f"unexpected field(s): {', '.join(unexpected)}")
    return data


def _requested(params: query_v2.Params, default: list[str], t: Type | None = None) -> list[str]:
    """The fields a read asks for, for the ACL: the first segments of ``keys`` that are fields
    (a container's name is checked as a read of the container's table), else all."""
    if not params.keys:
        return default
    names = [p[0] for p in params.keys]
    if isinstance(t, Structure):
        names = [n for n in names if t.container(n) is None]
    return list(dict.fromkeys(names))


def _included_types(app: AppDef, t: Structure, paths: list[list[str]]) -> list[Structure]:
    """The tables an ``include`` reads: containers' tables and referenced tables, along each path."""
    found: list[Structure] = []
    for path in paths:
        current: Structure | None = t
        for segment in path:
            if current is None:
                break
            nxt: Structure | None = None
            container = current.container(segment)
            if container is not None:
                target = app.find(container.type)
                nxt = target if isinstance(target, Structure) else None
            else:
                f = current.field(segment)
                if f is not None and len(f.refs) == 1:
                    target = app.find(f.refs[0])
                    nxt = target if isinstance(target, Structure) else None
            if nxt is not None:
                found.append(nxt)
            current = nxt
    return found


def _names(t: Structure) -> list[str]:
    return [f.name for f in t.fields]


def _nested(rec: Record) -> Iterable[Record]:
    for value in rec.values():
        if isinstance(value, list):
            for child in value:
                if isinstance(child, dict):
                    yield child
                    yield from _nested(child)


def _plain(value: Any) -> Any:
    """A result as JSON sees it: QNames as text, tuples as lists (a copy of every dict and list)."""
    t = type(value)
    if t is str or t is int or t is bool or t is float or value is None:
        return value  # most values, answered without a call each
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            vt = type(v)
            key = k if type(k) is str else str(k)
            if vt is str or vt is int or vt is bool or vt is float or v is None:
                out[key] = v
            else:
                out[key] = _plain(v)
        return out
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, QName):
        return str(value)
    return value
