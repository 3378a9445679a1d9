"""What queries hand out: records, view rows and result objects as JSON maps, and where they are read.

Records are kept as the JSON objects the command processor wrote (only the fields that have a
value, like Voedger's specified values); view rows and typed query results are answered with every
field of their type, absent ones as the zero value of their kind, as Voedger does. Documents and
their records are read back from ``sys.CollectionView``, ODocs and ORecords from the event that
carried them; the WRecords in the containers of a WDoc or WRecord are found through
``sys.WRecordChildrenIdx``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, TypeVar

from voedger.appdef import (
    SYS_CONTAINER,
    SYS_ID,
    SYS_PARENT_ID,
    SYS_QNAME,
    AppDef,
    DataKind,
    Field,
    QName,
    QNameError,
    Structure,
    Type,
    View,
)
from voedger.structs.logs import read_wlog
from voedger.structs.pending import Pending
from voedger.structs.records import Record, get_record
from voedger.structs.values import zero
from voedger.structs.views import get_row, read_rows

COLLECTION_VIEW = QName("sys", "CollectionView")
COLLECTION_PART_KEY = 1
"""CollectionView keeps a workspace's records in one view partition, as Voedger does."""
RECORDS_REGISTRY = QName("sys", "RecordsRegistry")
WRECORD_CHILDREN_IDX = QName("sys", "WRecordChildrenIdx")
"""A WDoc's or WRecord's records by container (ours, not Voedger's: CollectionView holds CDocs only)."""

Row = dict[str, Any]
ResultTypeOf = Callable[[Mapping[str, Any]], "QName | str | None"]
F = TypeVar("F", bound=Callable[..., Any])

_RESULT_TYPES: dict[Callable[..., Any], ResultTypeOf] = {}
"""The resolvers of queries marked with ``result_type_of``; kept here rather than as an attribute
of the function, which a function compiled by the native build cannot take."""


def result_type_of(resolver: ResultTypeOf) -> Callable[[F], F]:
    """Mark a query that ``RETURNS any`` with the function naming its rows' type from its
    arguments (Voedger's ``ResultType(PrepareArgs)``): the rows processor needs the type to
    check the requested fields before the query runs."""

    def mark(func: F) -> F:
        _RESULT_TYPES[func] = resolver
        return func

    return mark


def declared_result_type(func: Callable[..., Any]) -> ResultTypeOf | None:
    return _RESULT_TYPES.get(func)


def type_of(app: AppDef, obj: Mapping[str, Any]) -> Type | None:
    """The type an object names in its sys.QName, if any."""
    name = obj.get(SYS_QNAME)
    try:
        return app.find(name) if isinstance(name, str | QName) else None
    except QNameError:
        return None


_NO_FIELDS: Mapping[str, Field] = {}


def fields_of(t: Type | None) -> Mapping[str, Field]:
    """The fields of a structure or view by name (nothing for other types); read-only."""
    if isinstance(t, Structure | View):
        return t.by_name
    return _NO_FIELDS


def value_of(f: Field, row: Mapping[str, Any]) -> Any:
    """A field's value in a row, or the zero value of its kind when it has none."""
    value = row.get(f.name)
    if value is not None:
        return value
    return {} if f.kind in (DataKind.Record, DataKind.Event) else zero(f.kind)


def view_row_map(view: View, row: Mapping[str, Any]) -> Row:
    """A view row as API v2 answers it: sys.QName, every key field and every value field."""
    out: Row = {SYS_QNAME: str(view.qname)}
    for f in view.key + view.value:
        out[f.name] = value_of(f, row)
    return out


def result_map(t: Structure, row: Mapping[str, Any]) -> Row:
    """A typed query result as API v2 answers it: every user field, no system fields."""
    return {f.name: value_of(f, row) for f in t.user_fields}


def record_map(rec: Mapping[str, Any]) -> Row:
    """A record as it is answered: its fields, without nested children."""
    return {k: v for k, v in rec.items() if not isinstance(v, list)}


# --- documents and their records -------------------------------------------------------------


def collection_key(doc_qname: QName | str, doc_id: int | None = None) -> dict[str, Any]:
    """The sys.CollectionView key prefix of every document of a type, or of one document."""
    key: dict[str, Any] = {"PartKey": COLLECTION_PART_KEY, "DocQName": str(doc_qname)}
    if doc_id is not None:
        key["DocID"] = doc_id
    return key


async def group_documents(rows: AsyncIterator[Row]) -> list[list[Record]]:
    """sys.CollectionView rows as one list per document: the document first, then its records
    in ID order; a record whose document is missing from the view is left out."""
    docs: dict[int, list[Record]] = {}
    async for row in rows:
        docs.setdefault(int(row["DocID"]), []).append(row["Record"])
    out = []
    for did, records in docs.items():
        head = [r for r in records if r.get(SYS_ID) == did]
        if head:
            out.append(head + [r for r in records if r.get(SYS_ID) != did])
    return out


async def collection_records(
    reader: Pending, app: AppDef, wsid: int, doc_qname: QName | str, doc_id: int | None = None
) -> list[list[Record]]:
    """The records of each document of a type (or of one document), from sys.CollectionView."""
    view = app.view(COLLECTION_VIEW)
    return await group_documents(read_rows(reader, view, wsid, collection_key(doc_qname, doc_id)))


def nest(records: list[Record]) -> Row:
    """The document (first of ``records``) with its records nested by container, each list
    in ID order, as Voedger's collection objects hold them."""
    by_parent: dict[int, list[Record]] = {}
    for rec in records[1:]:
        by_parent.setdefault(int(rec.get(SYS_PARENT_ID, 0)), []).append(rec)
    return _nested(records[0], by_parent)


def _nested(rec: Record, by_parent: dict[int, list[Record]]) -> Row:
    """A module function, not a closure: a recursive closure is a reference cycle, left for
    the cycle collector on every call."""
    out = dict(rec)
    for child in sorted(by_parent.get(int(rec[SYS_ID]), ()), key=lambda r: int(r[SYS_ID])):
        out.setdefault(str(child.get(SYS_CONTAINER, "")), []).append(_nested(child, by_parent))
    return out


def children_by_container(records: Iterable[Record]) -> dict[int, dict[str, list[Record]]]:
    """Parent ID -> container -> its records, for including containers into answers."""
    out: dict[int, dict[str, list[Record]]] = {}
    for rec in records:
        parent = rec.get(SYS_PARENT_ID)
        if parent:
            out.setdefault(int(parent), {}).setdefault(str(rec.get(SYS_CONTAINER, "")), []).append(rec)
    return out


async def wrecord_children(reader: Pending, app: AppDef, wsid: int, parent_id: int) -> dict[str, list[Record]]:
    """The WRecords in the containers of a WDoc or WRecord, by container, each list in ID
    order (through sys.WRecordChildrenIdx); nothing for a record of another kind."""
    view = app.find(WRECORD_CHILDREN_IDX)
    out: dict[str, list[Record]] = {}
    if not isinstance(view, View) or parent_id <= 0:
        return out
    rows = [row async for row in read_rows(reader, view, wsid, {"ParentID": parent_id})]
    records = await asyncio.gather(*(get_record(reader, wsid, int(row["ID"])) for row in rows))
    for row, rec in zip(rows, records, strict=True):
        if rec is not None:
            out.setdefault(str(row["Container"]), []).append(rec)
    return out


# --- ODocs and ORecords ----------------------------------------------------------------------


async def operation_record(reader: Pending, app: AppDef, wsid: int, record_id: int) -> Record | None:
    """An ODoc or ORecord, taken from the event whose argument carried it (found through
    sys.RecordsRegistry), with its children as nested lists."""
    entry = await registry_entry(reader, app, wsid, record_id)
    if entry is None:
        return None
    async for event in read_wlog(reader.storage, wsid, int(entry["WLogOffset"]), 1):
        for rec in event.arg_records():
            if rec.get(SYS_ID) == record_id:
                return rec
    return None


MAX_RECORD_ID = 2**63 - 1
"""The largest record ID storage holds (a RecordID field's range)."""


async def registry_entry(reader: Pending, app: AppDef, wsid: int, record_id: int) -> Row | None:
    view = app.find(RECORDS_REGISTRY)
    if not isinstance(view, View) or not 0 < record_id <= MAX_RECORD_ID:
        return None  # an ID no record can have (an API v2 URL takes any 64-bit number)
    return await get_row(reader, view, wsid, {"IDHi": record_id >> 18, "ID": record_id})


async def any_record(reader: Pending, app: AppDef, wsid: int, record_id: int) -> Record | None:
    """A record of any kind by ID: kept records first, then operation records."""
    if record_id <= 0:
        return None
    rec = await get_record(reader, wsid, record_id)
    if rec is not None:
        return rec
    return await operation_record(reader, app, wsid, record_id)
