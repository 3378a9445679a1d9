"""Unique values: where a record's unique fields are kept in the ``sys.Uniques`` view.

The command processor checks new records against the view before it accepts an event; the
``sys.ApplyUniques`` projector writes the view inside the same command, so both see one index.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from voedger.appdef import DataKind, Field, QName, Structure
from voedger.structs.keycodec import encode_key
from voedger.syserror import SysError

UNIQUES_VIEW = QName("sys", "Uniques")


@dataclass(frozen=True)
class UniqueEntry:
    name: QName
    values: bytes

    def key(self) -> dict[str, Any]:
        """The sys.Uniques key of this entry."""
        digest = hashlib.blake2b(self.values, digest_size=8).digest()
        return {
            "QName": str(self.name),
            "ValuesHash": int.from_bytes(digest, "big", signed=True),
            "Values": base64.b64encode(self.values).decode(),
        }


_Spec = tuple[QName, tuple[Field, ...]]
_SPECS: dict[int, tuple[Structure, tuple[_Spec, ...]]] = {}


def _specs(t: Structure) -> tuple[_Spec, ...]:
    """The table's UNIQUEs (and its UNIQUEFIELD, named after the table) with their fields,
    derived once per table: every insert of the table asks twice (the check, then the view)."""
    hit = _SPECS.get(id(t))
    if hit is None or hit[0] is not t:
        named = [(u.name, u.fields) for u in t.uniques]
        if t.unique_field:
            named.append((t.qname, (t.unique_field,)))
        specs = tuple((name, tuple(f for f in (t.field(n) for n in names) if f is not None)) for name, names in named)
        hit = _SPECS[id(t)] = (t, specs)
    return hit[1]


_DEFAULTS: dict[DataKind, Any] = {
    DataKind.string: "",
    DataKind.bytes: "",  # base64 of no bytes
    DataKind.QName: "",
    DataKind.bool: False,
    DataKind.float32: 0.0,
    DataKind.float64: 0.0,
}
"""A field's value when a record has none (0 for the kinds not listed): as in Voedger, a record
without a unique field's value holds its default value, so two such records conflict."""
_FIXED_WIDTH = {
    DataKind.int8: 1,
    DataKind.int16: 2,
    DataKind.int32: 4,
    DataKind.int64: 8,
    DataKind.float32: 4,
    DataKind.float64: 8,
    DataKind.bool: 1,
    DataKind.RecordID: 8,
}
MAX_UNIQUE_LEN = 65535
"""Bytes a unique combination may take, counted as Voedger lays it out (its ``MaxFieldLength``)."""


def unique_entries(t: Structure, record: dict[str, Any]) -> list[UniqueEntry]:
    """One entry per UNIQUE of the table (and its UNIQUEFIELD, named after the table); a field
    the record has no value for counts with its default value, as in Voedger."""
    out = []
    for name, fields in _specs(t):
        values = []
        for f in fields:
            v = record.get(f.name)
            values.append(_DEFAULTS.get(f.kind, 0) if v is None else v)
        out.append(UniqueEntry(name, encode_key(fields, values)))
    return out


def unique_too_long(t: Structure, record: dict[str, Any]) -> SysError | None:
    """The 403 Voedger answers for a unique combination longer than it can keep, or None."""
    for name, fields in _specs(t):
        size = 0
        for f in fields:
            width = _FIXED_WIDTH.get(f.kind)
            if width is not None:
                size += width
                continue
            v = record.get(f.name) or ""
            raw = len(base64.b64decode(v)) if f.kind is DataKind.bytes else len(str(v).encode())
            # Voedger puts a zero byte before a string or bytes among several fields, and before any QName
            size += raw + (1 if len(fields) > 1 or f.kind is DataKind.QName else 0)
        if size > MAX_UNIQUE_LEN:
            return SysError(
                403,
                f'unique value is too long: resulting len of the unique combination "{name}" is {size}, '
                f"max {MAX_UNIQUE_LEN} is allowed. Decrease len of values of unique fields",
            )
    return None


def unique_field_names(t: Structure) -> set[str]:
    return set(unique_field_order(t))


def unique_field_order(t: Structure) -> list[str]:
    """The fields of the table's UNIQUEs and UNIQUEFIELD, in their declaration order."""
    names = [n for u in t.uniques for n in u.fields]
    if t.unique_field:
        names.append(t.unique_field)
    return list(dict.fromkeys(names))
