"""Unique values: where a record's unique fields are kept in the ``sys.Uniques`` view.

The command processor checks new records against the view before it accepts an event; the
``sys.ApplyUniques`` projector writes the view inside the same command, so both see one index.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from voedger.appdef import Field, QName, Structure
from voedger.structs.keycodec import encode_key

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


def unique_entries(t: Structure, record: dict[str, Any]) -> list[UniqueEntry]:
    """One entry per UNIQUE of the table (and its UNIQUEFIELD, named after the table) whose
    fields the record has: a record without a value does not hold the empty value."""
    out = []
    for name, fields in _specs(t):
        values = [record.get(f.name) for f in fields]
        if None in values:
            continue
        out.append(UniqueEntry(name, encode_key(fields, values)))
    return out


def unique_field_names(t: Structure) -> set[str]:
    names = {n for u in t.uniques for n in u.fields}
    if t.unique_field:
        names.add(t.unique_field)
    return names
