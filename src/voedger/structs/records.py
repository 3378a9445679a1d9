"""Records (CDocs, WDocs and their records) of a workspace, kept as JSON objects.

A record keeps its QName, and the QNames its QName fields hold, as the texts of the
application's QName table (``structs/qnames.py``): the text a QName renamed since was first
stored under.
"""

from __future__ import annotations

from typing import Any

import orjson

from voedger.structs.keys import record_key
from voedger.structs.pending import Pending
from voedger.structs.qnames import names_of

Record = dict[str, Any]

_SYS_QNAME = "sys.QName"


async def get_record(reader: Pending, wsid: int, record_id: int) -> Record | None:
    raw = await reader.get(*record_key(wsid, record_id))
    if raw is None:
        return None
    rec: Record = orjson.loads(raw)
    names = names_of(reader.storage)
    if names:
        stored = rec.get(_SYS_QNAME)
        if isinstance(stored, str):
            name = rec[_SYS_QNAME] = names.name(stored)
            for f in names.qname_fields.get(name, ()):
                value = rec.get(f)
                if isinstance(value, str):
                    rec[f] = names.name(value)
    return rec


def put_record(writes: Pending, wsid: int, record: Record) -> None:
    names = names_of(writes.storage)
    if names:
        name = record.get(_SYS_QNAME)
        if isinstance(name, str):
            record = {**record, _SYS_QNAME: names.stored(name)}
            for f in names.qname_fields.get(name, ()):
                value = record.get(f)
                if isinstance(value, str):
                    record[f] = names.stored(value)
    writes.put(*record_key(wsid, record["sys.ID"]), orjson.dumps(record))
