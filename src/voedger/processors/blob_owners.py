"""A record takes a BLOB: who may, and the ``sys.BLOB`` update that records it.

A BLOB uploaded through API v2 is meant for one field of one table (``OwnerRecord``,
``OwnerRecordField`` of its ``sys.BLOB``). A command whose CUDs put a BLOB's ID into a BLOB
field must use it there, once, and only while no record holds it yet; anything else is a 403 in
Voedger's words. A BLOB uploaded through API v1 names no owner and may be put anywhere. Either
way the command also sets the BLOB's ``OwnerRecordID`` to the record that took it, so reading
the BLOB later is a matter of reading that record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from voedger.appdef import SYS_ID, QName, Structure
from voedger.structs.records import Record
from voedger.syserror import SysError

BLOB_TABLE: Final = QName("sys", "BLOB")
OWNER_RECORD: Final = "OwnerRecord"
OWNER_RECORD_FIELD: Final = "OwnerRecordField"
OWNER_RECORD_ID: Final = "OwnerRecordID"


@dataclass(frozen=True, slots=True)
class Taker:
    """A CUD of the command that may put BLOBs into its fields."""

    type: Structure
    id: int
    """The record's real ID."""
    shown_id: int
    """Its ID as the client knows it: the raw ID of a new record."""
    values: Record
    """The fields the CUD gives, references resolved to real IDs."""


def is_blob_field_of(t: Structure, name: str) -> bool:
    f = t.field(name)
    return f is not None and BLOB_TABLE in getattr(f, "refs", ())


async def claims(takers: Sequence[Taker], read: Callable[[int], Awaitable[Record | None]]) -> list[Record]:
    """The after-images of the ``sys.BLOB`` records the takers' CUDs take, each with its
    ``OwnerRecordID`` set; a 403 for a BLOB meant for another field, held by a record already,
    or given to two records of the command."""
    used: dict[int, Taker] = {}
    taken: list[Record] = []
    for taker in takers:
        t = taker.type
        for f in t.ref_fields:
            if BLOB_TABLE not in f.refs:
                continue
            blob_id = taker.values.get(f.name)
            if not isinstance(blob_id, int) or blob_id <= 0:
                continue
            blob = await read(blob_id)
            if blob is None:
                continue  # the reference check has answered it already
            mentioned = f"BLOB ID {blob_id} mentioned in CUD {t.qname}.{f.name}"
            owner = blob.get(OWNER_RECORD) or ""
            if owner:
                holder = blob.get(OWNER_RECORD_ID) or 0
                if holder:
                    raise SysError(
                        403, f"{mentioned} is used already in {owner}.{holder}.{blob.get(OWNER_RECORD_FIELD, '')}"
                    )
                if blob_id in used:
                    other = used[blob_id]
                    raise SysError(403, f"{mentioned} is used already in CUD {other.type.qname}.{other.shown_id}")
                if owner != str(t.qname) or blob.get(OWNER_RECORD_FIELD) != f.name:
                    raise SysError(
                        403,
                        f"BLOB ID {blob_id} is intended for {owner}.{blob.get(OWNER_RECORD_FIELD, '')} "
                        f"whereas it is being used in {t.qname}.{f.name}",
                    )
            used[blob_id] = taker
            taken.append({**blob, SYS_ID: blob_id, OWNER_RECORD_ID: taker.id})
    return taken
