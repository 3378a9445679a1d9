"""Records (CDocs, WDocs and their records) of a workspace, kept as JSON objects."""

from __future__ import annotations

from typing import Any

import orjson

from voedger.structs.keys import record_key
from voedger.structs.pending import Pending

Record = dict[str, Any]


async def get_record(reader: Pending, wsid: int, record_id: int) -> Record | None:
    raw = await reader.get(*record_key(wsid, record_id))
    return None if raw is None else orjson.loads(raw)


def put_record(writes: Pending, wsid: int, record: Record) -> None:
    writes.put(*record_key(wsid, record["sys.ID"]), orjson.dumps(record))
