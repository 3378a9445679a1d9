"""``q.sys.SqlQuery``: Voedger's SQL-like reads of records, views, the WLog and the PLog.

Each result row is one object ``{"Result": "<JSON text>"}``, the JSON of one record, view row or
event, with its keys in sorted order (as Go writes a map). The statement (see
:mod:`voedger.apps.sys.sqlparse`):

- ``select * | f1, f2 from pkg.Table.ID`` or ``... where id = N`` / ``where id in (N, M)``: records
  (a singleton without an ID); every field of the record, empty ones included;
- ``select ... from pkg.View where K1 = v and K2 = 'w'``: view rows, the partition key complete;
- ``select ... from sys.wlog | sys.plog [.N | where offset >= N | > N | = N] [limit n]``: events
  from offset 1 by default, 100 of them unless ``limit`` says otherwise (-1: all);
- a prefix reads another workspace: ``123.`` (a WSID), ``a0.`` (application workspace 0),
  ``"login".`` (the application workspace of a login), optionally after another application of
  this process (``owner.app.``); the query is run there as the same caller.

Reading a table or view needs SELECT on it and on every field named (all fields for ``*``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from voedger.appdef import DataKind, Field, QName, QNameError, Structure, TypeKind, View
from voedger.apps.sys.builtins import platform
from voedger.apps.sys.sqlparse import (
    AndExpr,
    ColName,
    ComparisonExpr,
    Expr,
    FuncExpr,
    Select,
    SQLVal,
    StarExpr,
    ValTuple,
    WorkspaceKind,
    go_type,
    parse_int64,
    parse_query,
    parse_select,
    parse_uint64,
)
from voedger.blobs import BlobKey
from voedger.blobs.store import BlobError
from voedger.state import Intents, State
from voedger.structs import wsid as ws
from voedger.structs.events import Event
from voedger.structs.values import ValidationError, zero
from voedger.syserror import SysError

__all__ = ["DEFAULT_LIMIT"]

DEFAULT_LIMIT: Final = 100
PLOG: Final = "sys.plog"
WLOG: Final = "sys.wlog"
_EVENT_FIELDS: Final = frozenset(
    {"QName", "ArgumentObject", "CUDs", "RegisteredAt", "Synced", "DeviceID", "SyncedAt", "Error"}
)
_WLOG_FIELDS: Final = _EVENT_FIELDS | {"WlogOffset"}
_PLOG_FIELDS: Final = _EVENT_FIELDS | {"PlogOffset", "Workspace", "WLogOffset"}
_RECORD_KINDS: Final = frozenset(
    {TypeKind.CDoc, TypeKind.CRecord, TypeKind.WDoc, TypeKind.WRecord, TypeKind.ODoc, TypeKind.ORecord}
)
_NUMBER_KINDS: Final = frozenset({DataKind.int8, DataKind.int16, DataKind.int32, DataKind.int64, DataKind.RecordID})
_FLOAT_KINDS: Final = frozenset({DataKind.float32, DataKind.float64})


def _json(data: Mapping[str, Any]) -> str:
    """As Go's json.Marshal writes a map: keys sorted, <, > and & escaped."""
    text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class _Filter:
    def __init__(self) -> None:
        self.all = False
        self.fields: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        return self.all or name in self.fields


def _recover(names: Iterable[str], name: str) -> str:
    """The schema's spelling of a name written in another case (Voedger's parser lowers them)."""
    names = list(names)
    if name in names:
        return name
    return next((n for n in names if n.lower() == name.lower()), name)


def _recover_table(state: State, qualifier: str, name: str) -> str:
    full = f"{qualifier}.{name}"
    if full in (PLOG, WLOG) or state.app.find(full) is not None:
        return full
    for t in state.app.types():
        if str(t.qname).lower() == full.lower():
            return str(t.qname)
    return full


def _kind_name(t: object) -> str:
    """Voedger's name of a type kind, as its "not found" messages show it."""
    if isinstance(t, View):
        return "ViewRecord"
    kind = getattr(t, "kind", None)
    return str(kind.name) if kind is not None else "Type"


def _field_names(t: Structure | View) -> list[str]:
    if isinstance(t, View):
        return ["sys.QName", *(f.name for f in t.key), *(f.name for f in t.value)]
    return [f.name for f in t.fields]


@platform.query("sys.SqlQuery")
async def sql_query(state: State, intents: Intents) -> None:
    ctx = state.query_context
    host = ctx.host
    if host is None:
        raise SysError(500, "q.sys.SqlQuery runs only in the query processor")
    op = parse_query(str(state.arg.get("Query", "")))
    foreign = bool(op.app) and op.app != host.app_name
    target = ctx.wsid
    if op.ws_kind is WorkspaceKind.APP_WS_NUM:
        target = ws.new_wsid(host.cluster_id, ws.FIRST_BASE_APP_WSID + int(op.ws_value))
    elif op.ws_kind is WorkspaceKind.WSID:
        target = int(op.ws_value)
    elif op.ws_kind is WorkspaceKind.PSEUDO:
        target = ws.pseudo_wsid(str(op.ws_value), host.cluster_id)
        if not foreign:  # another application maps it to its own workspaces
            target = ws.pseudo_to_app_wsid(target, host.num_app_workspaces, host.cluster_id)
    if not 0 < target <= ws.MAX_WSID:
        raise SysError(400, f"workspace ID {target} is out of range 1..{ws.MAX_WSID}")
    if foreign or target != ctx.wsid:
        for row in await host.forward(target, op.without_app_and_ws, op.app if foreign else ""):
            intents.result(Result=row)
        return
    sel = parse_select(op.clean_sql)
    source = _recover_table(state, sel.table_qualifier, sel.table_name)
    t = state.app.find(source)
    f = _Filter()
    seen: set[str] = set()
    blob_funcs: list[_BlobFunc] = []
    with_fields = t if isinstance(t, Structure | View) else None
    for e in sel.exprs:
        if isinstance(e, StarExpr):
            f.all = True
            continue
        if isinstance(e, ColName):
            name = e.full
            if with_fields is not None:
                name = _recover(_field_names(with_fields), name)
        elif isinstance(e, FuncExpr):
            bf = _blob_func(e, with_fields)
            name = f"{bf.func}({bf.field})"
            if name in seen:
                raise SysError(400, f'field "{name}" is selected more than once')
            seen.add(name)
            blob_funcs.append(bf)
            continue
        else:
            raise SysError(400, f"unsupported select expression: {go_type(e)}")
        if name in seen:
            raise SysError(400, f'field "{name}" is selected more than once')
        seen.add(name)
        f.fields[name] = True
    if blob_funcs and sel.where is not None:
        raise SysError(400, "WHERE clause is not allowed with blobinfo/blobtext functions")
    if isinstance(t, View) or (isinstance(t, Structure) and t.kind in _RECORD_KINDS):
        _authorize(host, t, f, sel.where, [bf.field for bf in blob_funcs])
    rows: list[dict[str, Any]]
    if isinstance(t, View):
        if op.entity_id > 0:
            raise SysError(400, "ID must not be specified on select from view")
        if blob_funcs:
            raise SysError(400, "blob functions are not supported on views")
        rows = await _view_rows(state, t, sel.where, f)
    elif isinstance(t, Structure) and t.kind in _RECORD_KINDS and blob_funcs:
        rows = [await _blob_row(state, host, t, f, op.entity_id, blob_funcs)]
    elif isinstance(t, Structure) and t.kind in _RECORD_KINDS:
        rows = await _records(state, host, t, sel.where, f, op.entity_id)
    elif source in (PLOG, WLOG):
        limit, offset = _log_params(sel, op.entity_id)
        allowed = _PLOG_FIELDS if source == PLOG else _WLOG_FIELDS
        if not f.all:
            for name in f.fields:
                if name not in allowed:
                    raise SysError(400, f"field '{name}' not found in def")
        count = None if limit < 0 else limit
        if source == PLOG:
            rows = [_plog_row(offset, ev, f) for offset, ev in await host.plog(offset, count)]
        else:
            rows = [_wlog_row(ev, f) async for ev in state.read_wlog(offset, count)]
    else:
        kind = _kind_name(t) if t is not None else "null"
        raise SysError(400, f"do not know how to read from the requested {source}, {kind}")
    for row in rows:
        intents.result(Result=_json(row))


def _authorize(host: Any, t: Structure | View, f: _Filter, where: Expr | None, blob_fields: list[str]) -> None:
    names = _field_names(t)
    fields: set[str] = set(names if f.all else f.fields) | set(blob_fields)
    if where is not None:
        for col in _columns(where):
            name = _recover(names, col.full)
            if name in names:
                fields.add(name)
    for name in sorted(fields):
        if name not in names:
            raise SysError(400, f"not found: field «{name}» in {_kind_name(t)} «{t.qname}»")
    if not host.allowed(t.qname, sorted(fields)):
        raise SysError(403, "forbidden")


def _columns(e: Expr) -> list[ColName]:
    if isinstance(e, ColName):
        return [e]
    out: list[ColName] = []
    for child in vars(e).values():
        if isinstance(child, Expr):
            out += _columns(child)
        elif isinstance(child, tuple):
            for c in child:
                if isinstance(c, Expr):
                    out += _columns(c)
    return out


# --- logs --------------------------------------------------------------------------------------------


def _log_params(sel: Select, entity_id: int) -> tuple[int, int]:
    """(limit, first offset) from ``limit`` and ``where offset ...`` (or the ``.N`` of the source)."""
    limit = DEFAULT_LIMIT
    if sel.limit is not None:
        if not isinstance(sel.limit, SQLVal):
            raise SysError(400, f"unsupported limit value expression: {go_type(sel.limit)}")
        limit = _parse_int(sel.limit.val)
        if limit < -1:
            raise SysError(400, "limit must be greater than -2")
    offset, eq = 1, False
    e = sel.where
    if isinstance(e, ComparisonExpr):
        if not isinstance(e.left, ColName):
            raise SysError(400, f"unsupported column reference expression: {go_type(e.left)}")
        if e.left.name.lower() != "offset":
            raise SysError(400, f"unsupported column name: {e.left.name}")
        if entity_id > 0:
            raise SysError(400, "both .Offset and 'where offset ...' clause can not be provided in one query")
        if not isinstance(e.right, SQLVal):
            raise SysError(400, f"unsupported offset value expression: {go_type(e.right)}")
        value = _parse_uint(e.right.val)
        if e.operator == "=":
            eq, offset = True, value
        elif e.operator == ">=":
            offset = value
        elif e.operator == ">":
            offset = value + 1
        else:
            raise SysError(400, f"unsupported operation: {e.operator}")
        if offset <= 0:
            raise SysError(400, "offset must be greater than zero")
    elif e is None:
        if entity_id:
            offset = entity_id
    else:
        raise SysError(400, f"unsupported expression: {go_type(e)}")
    if eq and limit != 0:
        limit = 1
    return limit, offset


_parse_int = parse_int64
_parse_uint = parse_uint64


def _event_data(ev: Event, f: _Filter) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if f("QName"):
        data["QName"] = ev.qname
    if f("ArgumentObject"):
        data["ArgumentObject"] = ev.args or {}
    if f("CUDs"):
        data["CUDs"] = [c.to_json() for c in ev.cuds]
    if f("RegisteredAt"):
        data["RegisteredAt"] = ev.registered_at
    if f("Synced"):
        data["Synced"] = ev.synced
    if f("DeviceID"):
        data["DeviceID"] = ev.device_id
    if f("SyncedAt"):
        data["SyncedAt"] = ev.synced_at
    if f("Error") and ev.error:
        data["Error"] = {
            "ErrStr": ev.error.get("ErrStr", ""),
            "QNameFromParams": ev.error.get("QNameFromParams", ""),
            "ValidEvent": bool(ev.error.get("ValidEvent", False)),
            "OriginalEventBytes": ev.error.get("OriginalEventBytes"),
        }
    return data


def _wlog_row(ev: Event, f: _Filter) -> dict[str, Any]:
    data = _event_data(ev, f)
    if f("WlogOffset"):
        data["WlogOffset"] = ev.wlog_offset
    return data


def _plog_row(offset: int, ev: Event, f: _Filter) -> dict[str, Any]:
    data = _event_data(ev, f)
    if f("PlogOffset"):
        data["PlogOffset"] = offset
    if f("Workspace"):
        data["Workspace"] = ev.wsid
    if f("WLogOffset"):
        data["WLogOffset"] = ev.wlog_offset
    return data


# --- records -----------------------------------------------------------------------------------------


async def _records(
    state: State, host: Any, t: Structure, where: Expr | None, f: _Filter, entity_id: int
) -> list[dict[str, Any]]:
    ids: list[int] = []
    if isinstance(where, ComparisonExpr):
        if not isinstance(where.left, ColName):
            raise SysError(400, f"unsupported column reference expression: {go_type(where.left)}")
        if where.left.name.lower() != "id":
            raise SysError(400, f"unsupported column name: {where.left.name}")
        if where.operator == "=" and isinstance(where.right, SQLVal):
            ids.append(_parse_uint(where.right.val))
        elif where.operator == "in" and isinstance(where.right, ValTuple):
            for v in where.right.values:
                if not isinstance(v, SQLVal):
                    raise SysError(400, f"unsupported expression: {go_type(v)}")
                ids.append(_parse_uint(v.val))
        else:
            raise SysError(400, f"unsupported operation: {where.operator}")
    elif where is not None:
        raise SysError(400, f"unsupported expression: {go_type(where)}")
    if t.singleton:
        if entity_id or ids:
            raise SysError(400, "conditions are not allowed to query a singleton")
        rec = await state.singleton(t.qname)
        return [_record_row(t, rec, f, 0)]
    if entity_id and ids:
        raise SysError(400, "record ID and 'where id ...' clause can not be used in one query")
    if not entity_id and not ids:
        raise SysError(400, f"'{t.qname}' is not a singleton. At least one record ID must be provided")
    return [_record_row(t, await host.record(i), f, i) for i in (ids or [entity_id])]


def _record_row(t: Structure, rec: Mapping[str, Any] | None, f: _Filter, record_id: int) -> dict[str, Any]:
    if rec is None:
        raise SysError(400, f"record with ID '{record_id}' not found")
    if rec.get("sys.QName") != str(t.qname):
        raise SysError(400, f"record with ID '{record_id}' has mismatching QName '{rec.get('sys.QName')}'")
    return {fl.name: _value(fl, rec) for fl in t.fields if f(fl.name)}


def _value(fl: Field, row: Mapping[str, Any]) -> Any:
    value = row.get(fl.name)
    if value is None:
        value = True if fl.name == "sys.IsActive" else zero(fl.kind)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()  # as Go writes []byte
    return value


# --- views -------------------------------------------------------------------------------------------


async def _view_rows(state: State, view: View, where: Expr | None, f: _Filter) -> list[dict[str, Any]]:
    key_names = [fl.name for fl in view.key]
    parts: list[tuple[str, SQLVal]] = []

    def collect(e: Expr | None) -> None:
        if e is None:
            return
        if isinstance(e, AndExpr):
            collect(e.left)
            collect(e.right)
        elif isinstance(e, ComparisonExpr):
            if e.operator != "=":
                raise SysError(400, f"unsupported operator: {e.operator}")
            if not isinstance(e.left, ColName):
                raise SysError(400, f"unsupported column reference expression: {go_type(e.left)}")
            if not isinstance(e.right, SQLVal):
                raise SysError(400, f"unsupported value expression: {go_type(e.right)}")
            parts.append((e.left.full, e.right))
        else:
            raise SysError(400, f"unsupported expression: {go_type(e)}")

    collect(where)
    key: dict[str, Any] = {}
    for name, val in parts:
        real = _recover(key_names, name)
        fl = next((k for k in view.key if k.name == real), None)
        if fl is None:
            raise SysError(400, f"field '{name}' does not exist in '{view.qname}' key def")
        key[real] = _key_value(fl, val)
    missing = [fl.name for fl in view.partition_key if fl.name not in key]
    if missing:
        raise SysError(400, f"the partition key of view {view.qname} must be given: {', '.join(missing)}")
    rows: list[dict[str, Any]] = []
    try:
        async for row in state.read_view(view.qname, **key):
            data = {"sys.QName": str(view.qname)} if f("sys.QName") else {}
            for fl in (*view.key, *view.value):
                if f(fl.name):
                    data[fl.name] = _value(fl, row)
            rows.append(data)
    except ValidationError as exc:
        raise SysError(400, str(exc)) from None
    return rows


def _key_value(fl: Field, val: SQLVal) -> Any:
    try:
        if fl.kind in _NUMBER_KINDS:
            return int(val.val)
        if fl.kind in _FLOAT_KINDS:
            return float(val.val)
        if fl.kind is DataKind.QName:
            return str(QName.parse(val.val))
        if fl.kind in (DataKind.string, DataKind.bytes):
            return val.val
    except (ValueError, QNameError) as exc:
        raise SysError(400, f"field '{fl.name}': {exc}") from None
    raise SysError(400, "unsupported data kind")


# --- blob functions ------------------------------------------------------------------------------------

BLOB_TEXT_MAX_BYTES: Final = 10_000
_BLOB_FUNCS: Final = ("blobinfo", "blobtext")


@dataclass(frozen=True)
class _BlobFunc:
    func: str
    field: str
    start: int = 0


def _blob_func(e: FuncExpr, t: Structure | View | None) -> _BlobFunc:
    """``blobinfo(Field)`` or ``blobtext(Field[, startFrom])``, checked as Voedger checks them."""
    func = e.name.lower()
    if func not in _BLOB_FUNCS:
        raise SysError(400, f"unsupported function: {e.name}")
    if not e.args:
        raise SysError(400, f"{func} requires at least one argument (field name)")
    first = e.args[0]
    if not isinstance(first, ColName):
        raise SysError(400, f"{func}: first argument must be a field name")
    field = first.name if t is None else _recover(_field_names(t), first.name)
    start = 0
    if len(e.args) > 1:
        if func != "blobtext":
            raise SysError(400, f"{func} does not accept a second argument")
        second = e.args[1]
        if not isinstance(second, SQLVal) or second.is_str or "." in second.val:
            raise SysError(400, f"{func}: second argument (startFrom) must be an integer")
        try:
            start = parse_uint64(second.val)
        except SysError as exc:
            raise SysError(400, f"{func}: invalid startFrom value: {exc.message}") from None
    if len(e.args) > 2:
        raise SysError(400, f"{func} accepts at most 2 arguments")
    return _BlobFunc(func, field, start)


def _is_text(content_type: str) -> bool:
    ct = content_type.lower()
    return ct.startswith("text/") or ct == "application/json"


async def _blob_row(
    state: State, host: Any, t: Structure, f: _Filter, entity_id: int, funcs: list[_BlobFunc]
) -> dict[str, Any]:
    """One record's BLOBs as ``blobinfo(F)`` ({name, mimetype, size}) and ``blobtext(F)`` (up to
    10,000 bytes from startFrom: text for text/* and JSON, else base64), with the record's
    selected fields if any."""
    if t.singleton:
        rec = await state.singleton(t.qname)
    elif entity_id == 0:
        raise SysError(400, "blob functions require a document ID or a singleton")
    else:
        rec = await host.record(entity_id)
    row = _record_row(t, rec, f, entity_id) if (f.all or f.fields) else {}
    if rec is None:
        raise SysError(400, f"record with ID '{entity_id}' not found")
    store = host.blob_store()
    by_field: dict[str, list[_BlobFunc]] = {}
    for bf in funcs:
        by_field.setdefault(bf.field, []).append(bf)
    for field, wanted in by_field.items():
        blob_id = rec.get(field)
        if not isinstance(blob_id, int) or isinstance(blob_id, bool) or blob_id <= 0:
            raise SysError(404, f"blob read error: no BLOB in field {field} of {t.qname} {rec.get('sys.ID')}")
        key = BlobKey(state.query_context.wsid, blob_id=blob_id)
        try:
            blob = await store.state(key)
        except BlobError as exc:
            raise SysError(404, f"blob read error: {exc}") from None
        for bf in wanted:
            if bf.func == "blobinfo":
                row[f"blobinfo({field})"] = {"name": blob.name, "mimetype": blob.content_type, "size": blob.size}
                continue
            data = bytearray()
            pos, end = 0, bf.start + BLOB_TEXT_MAX_BYTES
            try:
                async for chunk in store.read(key, blob):
                    lo, hi = max(bf.start, pos) - pos, min(end, pos + len(chunk)) - pos
                    if lo < hi:
                        data += chunk[lo:hi]
                    pos += len(chunk)
                    if pos >= end:
                        break
            except BlobError as exc:
                raise SysError(500, f"blob read error: {exc}") from None
            text = (
                bytes(data).decode("utf-8", "replace")
                if _is_text(blob.content_type)
                else base64.b64encode(data).decode()
            )
            row[f"blobtext({field})"] = text
    return row
