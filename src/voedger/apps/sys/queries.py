"""The platform's implementations of the sys package's queries, answering as Voedger's do.

- ``q.sys.Echo``, ``GRCount``, ``Modules``: liveness and what runs;
- ``q.sys.Collection``, ``GetCDoc``, ``State``: documents and their records from sys.CollectionView;
- ``q.sys.Journal``: WLog events by offsets or by days (through sys.WLogDates, whose projector
  is here too, since nothing else reads that view, but not registered yet);
- ``q.sys.QueryChildWorkspaceByName``: a child workspace by its name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import orjson

from voedger.appdef import SYS_CONTAINER, SYS_ID, SYS_PARENT_ID, SYS_QNAME, AppDef, DataKind, QName
from voedger.apps.sys.builtins import CHILD_WORKSPACE_IDX, platform
from voedger.processors.rows import (
    COLLECTION_PART_KEY,
    COLLECTION_VIEW,
    Row,
    collection_key,
    fields_of,
    group_documents,
    nest,
    result_type_of,
    type_of,
    value_of,
)
from voedger.state import Intents, State
from voedger.state.rows import Reads, ViewRows, producing_rows
from voedger.structs.events import Event
from voedger.syserror import SysError

WLOG_DATES = QName("sys", "WLogDates")
_DIST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SKIPPED_IN_CDOC = frozenset({SYS_QNAME, SYS_CONTAINER, SYS_PARENT_ID})


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# --- liveness -----------------------------------------------------------------------------------


@platform.query("sys.Echo")
def echo(state: State, intents: Intents) -> None:
    intents.result(Res=state.arg.get("Text", ""))


@platform.query("sys.GRCount")
def gr_count(state: State, intents: Intents) -> None:
    """The number of running asyncio tasks, our counterpart of Go's goroutines."""
    intents.result(NumGoroutines=len(asyncio.all_tasks()))


@platform.query("sys.Modules")
def modules(state: State, intents: Intents) -> None:
    """The packages the platform runs on and their versions, one ``path: .. version: ..`` line each."""
    try:
        requires = metadata.requires("voedger") or []
    except metadata.PackageNotFoundError:
        requires = []
    names = sorted({m.group() for r in requires if "extra ==" not in r and (m := _DIST_NAME.match(r))})
    lines = []
    for name in names:
        try:
            lines.append(f"path: {name} version: {metadata.version(name)}\n")
        except metadata.PackageNotFoundError:
            continue
    intents.result(Modules="".join(lines))


# --- the collection -----------------------------------------------------------------------------


def _schema(args: Mapping[str, Any]) -> str | None:
    schema = args.get("Schema")
    return schema if isinstance(schema, str) else None


@result_type_of(_schema)
@platform.query("sys.Collection")
async def collection(state: State, intents: Intents) -> None:
    """Each document of the Schema (or the one with ID) with its records nested by container."""
    key = collection_key(state.arg["Schema"], state.arg.get("ID") or None)
    for records in await group_documents(state.read_view(COLLECTION_VIEW, **key)):
        intents.result(**nest(records))


@platform.query("sys.GetCDoc")
async def get_cdoc(state: State, intents: Intents) -> None:
    """A document and its records as JSON, with the records it references under ``xrefs``."""
    record_id = int(state.arg.get("ID", 0))
    rec = await state.record(record_id) if record_id > 0 else None
    docs = []
    if rec is not None:
        key = collection_key(rec[SYS_QNAME], record_id)
        docs = await group_documents(state.read_view(COLLECTION_VIEW, **key))
    if not docs:
        raise SysError(404, "Document not found")
    refs: dict[int, None] = {}
    obj = _cdoc_object(state, nest(docs[0]), refs, 0)
    xrefs: dict[str, dict[str, Row]] = {}
    for ref_id in refs:
        target = await state.record(ref_id)
        if target is not None:
            xrefs.setdefault(target[SYS_QNAME], {})[str(ref_id)] = _cdoc_object(state, target, None, 0)
    if xrefs:
        obj["xrefs"] = xrefs
    intents.result(Result=_json(obj))


def _cdoc_object(state: State, rec: Row, refs: dict[int, None] | None, parent: int) -> Row:
    declared = fields_of(type_of(state.app, rec))
    out: Row = {}
    for name, value in rec.items():
        if name in _SKIPPED_IN_CDOC:
            continue
        if isinstance(value, list):
            out[name] = [_cdoc_object(state, c, refs, int(rec[SYS_ID])) for c in value if isinstance(c, dict)]
            continue
        f = declared.get(name)
        is_ref = f is not None and f.kind is DataKind.RecordID and name != SYS_ID
        if refs is not None and is_ref and value and value != parent:
            refs[int(value)] = None
        out[name] = value
    return out


@platform.query("sys.State")
async def state_query(state: State, intents: Intents) -> None:
    """Every document and record changed after the offset ``After``, by QName and ID, with
    every field; MaxRelevantOffset is the last offset among them."""
    after = int(state.arg.get("After", 0))
    data: dict[str, dict[str, Row]] = {}
    max_offset = 0
    async for row in state.read_view(COLLECTION_VIEW, PartKey=COLLECTION_PART_KEY):
        offset = int(row.get("offs", 0))
        if offset <= after:
            continue
        rec = row["Record"]
        declared = fields_of(type_of(state.app, rec))
        fields = {n: value_of(f, rec) for n, f in declared.items() if n not in (SYS_QNAME, SYS_CONTAINER)}
        data.setdefault(rec[SYS_QNAME], {})[str(rec[SYS_ID])] = fields
        max_offset = max(max_offset, offset)
    intents.result(State=_json(data), MaxRelevantOffset=max_offset)


# --- the journal --------------------------------------------------------------------------------


@platform.query("sys.Journal")
async def journal(state: State, intents: Intents) -> None:
    """Events of the workspace between two offsets, or two days (by sys.WLogDates), each as
    Offset, EventTime and the event as JSON."""
    args = state.arg
    unit = args.get("RangeUnit", "")
    if unit in ("", "UnixTimestamp"):
        first, last = await _offsets_by_days(state, args)
    elif unit == "Offset":
        first, last = _offsets(args)
    else:
        raise SysError(400, "argument type not supported")
    for event_type in str(args.get("EventTypes", "")).split(","):
        if event_type != "all":
            raise SysError(400, f"invalid event type: {event_type}")
    if first <= 0 or last < first:
        return
    async for event in state.read_wlog(first, last - first + 1):
        text = _json(_event_map(event))
        intents.result(Offset=event.wlog_offset, EventTime=event.registered_at, Event=text)


def _offsets(args: Mapping[str, Any]) -> tuple[int, int]:
    first, last = int(args.get("From", 0)), int(args.get("Till", 0))
    problems = []
    if first <= 0:
        problems.append("'from' offset must be positive")
    if last <= 0:
        problems.append("'till' offset must be positive")
    if first > last:
        problems.append("'from' offset must be lower or equal to 'till' offset")
    if problems:
        raise SysError(400, "\n".join(problems))
    return first, last


async def _offsets_by_days(state: State, args: Mapping[str, Any]) -> tuple[int, int]:
    if args.get("IndexForTimestamps", "") not in ("", str(WLOG_DATES)):
        raise SysError(400, "index not supported")
    since, till = _day(int(args.get("From", 0))), _day(int(args.get("Till", 0)))
    first = last = 0
    for year in range(since.year, till.year + 1):
        async for row in state.read_view(WLOG_DATES, Year=year):
            day = int(row["DayOfYear"])
            if not first and (year > since.year or day >= since.timetuple().tm_yday):
                first = int(row["FirstOffset"])
            if year < till.year or day <= till.timetuple().tm_yday:
                last = int(row["LastOffset"])
    return first, last


def _day(unix_ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(unix_ms / 1000, dt.UTC).date()


def _event_map(event: Event) -> Row:
    """An event as q.sys.Journal shows it."""
    cuds = [
        {
            "sys.ID": c.id,
            "sys.QName": c.qname,
            "IsNew": c.is_new,
            "fields": {SYS_ID: c.id, SYS_QNAME: c.qname, **c.fields},
        }
        for c in event.cuds
    ]
    return {
        "sys.QName": event.qname,
        "RegisteredAt": event.registered_at,
        "Synced": event.synced,
        "DeviceID": event.device_id,
        "SyncedAt": event.synced_at,
        "args": event.args or {},
        "cuds": cuds,
    }


@functools.lru_cache(maxsize=64)
def _utc_day(days_since_epoch: int) -> tuple[int, int]:
    """(year, day of the year) of a UTC day; events of a day all ask for the same one."""
    day = dt.date(1970, 1, 1) + dt.timedelta(days=days_since_epoch)
    return day.year, day.timetuple().tm_yday


@platform.projector("sys.ProjectorWLogDates")
@producing_rows
async def wlog_dates(app: AppDef, ev: Event, reads: Reads) -> ViewRows:
    """sys.ProjectorWLogDates (async): widens the day's range of WLog offsets to the event's.
    Idempotent, so a replay is harmless; a row producer, so the actualizer calls it directly."""
    year, day_of_year = _utc_day(ev.registered_at // 86_400_000)
    key = {"Year": year, "DayOfYear": day_of_year}
    row = await reads.view(WLOG_DATES, **key)
    if row is not None and int(row["LastOffset"]) >= ev.wlog_offset:
        return []
    first = int(row["FirstOffset"]) if row is not None else ev.wlog_offset
    return [(WLOG_DATES, {**key, "FirstOffset": first, "LastOffset": ev.wlog_offset})]


# --- child workspaces -----------------------------------------------------------------------------


@platform.query("sys.QueryChildWorkspaceByName")
async def child_workspace_by_name(state: State, intents: Intents) -> None:
    name = str(state.arg.get("WSName", ""))
    idx = await state.view(CHILD_WORKSPACE_IDX, dummy=1, WSName=name)
    rec = await state.record(int(idx["ChildWorkspaceID"])) if idx is not None else None
    if rec is None:
        raise SysError(404, f"child workspace {name} not found")
    intents.result(
        WSName=rec.get("WSName", ""),
        WSKind=rec.get("WSKind", ""),
        WSKindInitializationData=rec.get("WSKindInitializationData", ""),
        TemplateName=rec.get("TemplateName", ""),
        TemplateParams=rec.get("TemplateParams", ""),
        WSID=rec.get("WSID", 0),
        WSError=rec.get("WSError", ""),
    )
