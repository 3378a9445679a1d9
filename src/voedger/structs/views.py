"""View rows: addressed by the view's partition key and clustering columns, kept as JSON.

A row's storage value holds all its fields (key and value), so a read needs no key decoding.
QNames (the view's own, in its key prefix and ``sys.QName``, and QName fields) are kept as the
text of the application's QName table (``structs/qnames.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from voedger.appdef import DataKind, Field, View
from voedger.structs.keycodec import INT_ENCODERS, encode_key, increment
from voedger.structs.keys import view_key_prefix, view_partition_key
from voedger.structs.pending import Pending
from voedger.structs.qnames import StoredNames, names_of
from voedger.structs.values import ValidationError, coerce

Row = dict[str, Any]


class ViewKeyError(ValidationError):
    """A view key lacks a field or names one it does not have."""


KeyEncoder = Callable[[Mapping[str, Any]], bytes]


def _key_encoder(fields: tuple[Field, ...]) -> KeyEncoder:
    """Encodes the values of ``fields`` taken from a row: most keys are one integer field."""
    if len(fields) == 1:
        encode_one = INT_ENCODERS.get(fields[0].kind)
        if encode_one is not None:
            name = fields[0].name
            return lambda row: encode_one(row[name])
    names = [f.name for f in fields]
    return lambda row: encode_key(fields, [row[n] for n in names])


@dataclass(frozen=True, slots=True)
class _Plan:
    """What reading and writing rows of one view needs, derived once (hot path)."""

    view: View
    stored_names: StoredNames
    qname: str
    """The view's QName as its rows keep it."""
    qname_fields: tuple[str, ...]
    """Fields holding QNames, whose text a renamed QName changes (empty if no QName is renamed)."""
    record_fields: tuple[str, ...]
    """Fields holding records, whose ``sys.QName`` a renamed QName changes (empty likewise)."""
    names: frozenset[str]
    key: tuple[Field, ...]
    value: tuple[Field, ...]
    prefix: bytes
    partition: KeyEncoder
    clustering: KeyEncoder


_PLANS: dict[int, _Plan] = {}


def _plan(view: View, stored: StoredNames) -> _Plan:
    hit = _PLANS.get(id(view))
    if hit is None or hit.view is not view or hit.stored_names is not stored:
        qname = stored.stored(str(view.qname))
        qname_fields = tuple(f.name for f in view.fields if f.kind is DataKind.QName) if stored else ()
        record_fields = tuple(f.name for f in view.fields if f.kind is DataKind.Record) if stored else ()
        hit = _PLANS[id(view)] = _Plan(
            view,
            stored,
            qname,
            qname_fields,
            record_fields,
            frozenset(f.name for f in view.fields),
            view.key,
            view.value,
            view_key_prefix(qname),
            _key_encoder(tuple(view.partition_key)),
            _key_encoder(tuple(view.clustering_columns)),
        )
    return hit


def _stored_value(plan: _Plan, f: Field, value: Any) -> Any:
    """A coerced key value as rows keep it (the stored text of a QName)."""
    if plan.qname_fields and f.kind is DataKind.QName and isinstance(value, str):
        return plan.stored_names.stored(value)
    return value


def _partition(plan: _Plan, wsid: int, key: Mapping[str, Any]) -> bytes:
    view = plan.view
    missing = [f.name for f in view.partition_key if f.name not in key]
    if missing:
        raise ViewKeyError(f"view {view.qname}: partition key field(s) {', '.join(missing)} missing")
    values = [_stored_value(plan, f, coerce(view.qname, f, key[f.name])) for f in view.partition_key]
    return view_partition_key(plan.qname, wsid, encode_key(view.partition_key, values), plan.prefix)


def _clustering_prefix(plan: _Plan, key: Mapping[str, Any]) -> tuple[bytes, bool]:
    """Encoded clustering columns given in ``key`` (a leading run); True if all were given."""
    view = plan.view
    values = []
    for f in view.clustering_columns:
        if f.name not in key:
            break
        values.append(_stored_value(plan, f, coerce(view.qname, f, key[f.name])))
    complete = len(values) == len(view.clustering_columns)
    extra = [f.name for f in view.clustering_columns[len(values) :] if f.name in key]
    if extra:
        raise ViewKeyError(
            f"view {view.qname}: clustering column(s) {', '.join(extra)} given without the ones before them"
        )
    return encode_key(view.clustering_columns, values, complete=complete), complete


def check_fields(view: View, row: Mapping[str, Any]) -> None:
    names = frozenset(f.name for f in view.fields)
    unknown = [n for n in row if n not in names]
    if unknown:
        raise ViewKeyError(f"view {view.qname} has no field(s) {', '.join(sorted(unknown))}")


def _row_key(plan: _Plan, wsid: int, stored: Mapping[str, Any]) -> tuple[bytes, bytes]:
    return view_partition_key(plan.qname, wsid, plan.partition(stored), plan.prefix), plan.clustering(stored)


def _store_qnames(plan: _Plan, row: Row) -> None:
    """QName fields of a row to be stored: their stored text."""
    stored = plan.stored_names
    for name in plan.qname_fields:
        value = row.get(name)
        if isinstance(value, str):
            row[name] = stored.stored(value)
    for name in plan.record_fields:
        rec = row.get(name)
        if isinstance(rec, dict) and isinstance(rec.get("sys.QName"), str):
            row[name] = {**rec, "sys.QName": stored.stored(rec["sys.QName"])}


def _load_qnames(plan: _Plan, row: Row) -> Row:
    """A stored row as readers see it: its QNames by their names."""
    stored = plan.stored_names
    if stored:
        for name in ("sys.QName", *plan.qname_fields):
            value = row.get(name)
            if isinstance(value, str):
                row[name] = stored.name(value)
        for name in plan.record_fields:
            rec = row.get(name)
            if isinstance(rec, dict) and isinstance(rec.get("sys.QName"), str):
                rec["sys.QName"] = stored.name(rec["sys.QName"])
    return row


def put_row(writes: Pending, view: View, wsid: int, row: Mapping[str, Any]) -> None:
    """Write a full row (every key field, any value fields)."""
    plan = _plan(view, names_of(writes.storage))
    if not plan.names.issuperset(row):
        check_fields(view, row)
    owner = view.qname
    stored: Row = {"sys.QName": plan.qname}
    try:
        for f in plan.key:
            stored[f.name] = coerce(owner, f, row[f.name])
    except KeyError:
        missing = [f.name for f in plan.key if f.name not in row]
        raise ViewKeyError(f"view {plan.qname}: key field(s) {', '.join(missing)} missing") from None
    for f in plan.value:
        value = row.get(f.name)
        if value is not None:
            stored[f.name] = coerce(owner, f, value)
    if plan.stored_names:
        _store_qnames(plan, stored)
    p_key, c_col = _row_key(plan, wsid, stored)
    writes.put(p_key, c_col, orjson.dumps(stored))


def put_trusted_row(writes: Pending, view: View, wsid: int, row: Mapping[str, Any]) -> None:
    """``put_row`` for a row the platform built from a validated event (its row producers): no
    field checks or coercion, and no None values expected. The test kit runs the same producers
    through ``put_row``, which checks their rows."""
    plan = _plan(view, names_of(writes.storage))
    stored: Row = {"sys.QName": plan.qname, **row}
    if plan.stored_names:
        _store_qnames(plan, stored)
    p_key, c_col = _row_key(plan, wsid, stored)
    writes.put(p_key, c_col, orjson.dumps(stored))


async def get_row(reader: Pending, view: View, wsid: int, key: Mapping[str, Any]) -> Row | None:
    plan = _plan(view, names_of(reader.storage))
    owner = view.qname
    try:
        values = {f.name: coerce(owner, f, key[f.name]) for f in plan.key}
    except KeyError:  # name what is missing, as a range read would
        _partition(plan, wsid, key)
        _clustering_prefix(plan, key)
        raise ViewKeyError(f"view {view.qname}: a full key is needed to get one row") from None
    if plan.qname_fields:
        _store_qnames(plan, values)
    raw = await reader.get(*_row_key(plan, wsid, values))
    return None if raw is None else _load_qnames(plan, orjson.loads(raw))


def read_rows(reader: Pending, view: View, wsid: int, key: Mapping[str, Any]) -> AsyncIterator[Row]:
    """Rows whose partition key equals and whose clustering columns start with ``key``'s."""
    plan = _plan(view, names_of(reader.storage))
    p_key = _partition(plan, wsid, key)
    prefix, _ = _clustering_prefix(plan, key)
    return _Decoded(reader.read(p_key, prefix, increment(prefix) if prefix else b""), plan)


class _Decoded:
    """The rows of stored values, decoded as they are read (an async generator written out:
    the native build compiles none)."""

    __slots__ = ("_plan", "_stored")

    def __init__(self, stored: AsyncIterator[tuple[bytes, bytes]], plan: _Plan) -> None:
        self._stored = stored
        self._plan = plan

    def __aiter__(self) -> _Decoded:
        return self

    async def __anext__(self) -> Row:
        _, raw = await anext(self._stored)
        row: Row = orjson.loads(raw)
        return _load_qnames(self._plan, row) if self._plan.stored_names else row
