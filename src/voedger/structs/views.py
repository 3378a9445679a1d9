"""View rows: addressed by the view's partition key and clustering columns, kept as JSON.

A row's storage value holds all its fields (key and value), so a read needs no key decoding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from voedger.appdef import View
from voedger.structs.keycodec import encode_key, increment
from voedger.structs.keys import view_partition_key
from voedger.structs.pending import Pending
from voedger.structs.values import ValidationError, coerce

Row = dict[str, Any]


class ViewKeyError(ValidationError):
    """A view key lacks a field or names one it does not have."""


def _partition(view: View, wsid: int, key: Mapping[str, Any]) -> bytes:
    missing = [f.name for f in view.partition_key if f.name not in key]
    if missing:
        raise ViewKeyError(f"view {view.qname}: partition key field(s) {', '.join(missing)} missing")
    values = [coerce(view.qname, f, key[f.name]) for f in view.partition_key]
    return view_partition_key(str(view.qname), wsid, encode_key(view.partition_key, values))


def _clustering_prefix(view: View, key: Mapping[str, Any]) -> tuple[bytes, bool]:
    """Encoded clustering columns given in ``key`` (a leading run); True if all were given."""
    values = []
    for f in view.clustering_columns:
        if f.name not in key:
            break
        values.append(coerce(view.qname, f, key[f.name]))
    complete = len(values) == len(view.clustering_columns)
    extra = [f.name for f in view.clustering_columns[len(values) :] if f.name in key]
    if extra:
        raise ViewKeyError(
            f"view {view.qname}: clustering column(s) {', '.join(extra)} given without the ones before them"
        )
    return encode_key(view.clustering_columns, values, complete=complete), complete


_NAMES: dict[int, tuple[View, frozenset[str], str]] = {}


def _names(view: View) -> tuple[frozenset[str], str]:
    """The field names a row of the view may have, and its QName as text (memoised: hot path)."""
    hit = _NAMES.get(id(view))
    if hit is None or hit[0] is not view:
        hit = _NAMES[id(view)] = (view, frozenset({f.name for f in view.fields}), str(view.qname))
    return hit[1], hit[2]


def check_fields(view: View, row: Mapping[str, Any]) -> None:
    names, _ = _names(view)
    unknown = [n for n in row if n not in names]
    if unknown:
        raise ViewKeyError(f"view {view.qname} has no field(s) {', '.join(sorted(unknown))}")


def put_row(writes: Pending, view: View, wsid: int, row: Mapping[str, Any]) -> None:
    """Write a full row (every key field, any value fields)."""
    names, qname = _names(view)
    if not names.issuperset(row):
        check_fields(view, row)
    missing = [f.name for f in view.key if f.name not in row]
    if missing:
        raise ViewKeyError(f"view {qname}: key field(s) {', '.join(missing)} missing")
    stored: Row = {"sys.QName": qname}
    for f in view.key:
        stored[f.name] = coerce(view.qname, f, row[f.name])
    for f in view.value:
        value = row.get(f.name)
        if value is not None:
            stored[f.name] = coerce(view.qname, f, value)
    p_key = view_partition_key(
        qname, wsid, encode_key(view.partition_key, [stored[f.name] for f in view.partition_key])
    )
    c_col = encode_key(view.clustering_columns, [stored[f.name] for f in view.clustering_columns])
    writes.put(p_key, c_col, orjson.dumps(stored))


async def get_row(reader: Pending, view: View, wsid: int, key: Mapping[str, Any]) -> Row | None:
    p_key = _partition(view, wsid, key)
    c_col, complete = _clustering_prefix(view, key)
    if not complete:
        raise ViewKeyError(f"view {view.qname}: a full key is needed to get one row")
    raw = await reader.get(p_key, c_col)
    return None if raw is None else orjson.loads(raw)


async def read_rows(reader: Pending, view: View, wsid: int, key: Mapping[str, Any]) -> AsyncIterator[Row]:
    """Rows whose partition key equals and whose clustering columns start with ``key``'s."""
    p_key = _partition(view, wsid, key)
    prefix, _ = _clustering_prefix(view, key)
    async for _, raw in reader.read(p_key, prefix, increment(prefix) if prefix else b""):
        yield orjson.loads(raw)
