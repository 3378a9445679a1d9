"""The PLog (per partition) and WLog (per workspace), read back as events (their tables and
views under the names the application's QName table gives them now)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from voedger.storage import AppStorage
from voedger.structs.events import Event
from voedger.structs.keys import ROWS_PER_PARTITION, offset_from_key, plog_key, wlog_key
from voedger.structs.pending import Pending
from voedger.structs.qnames import names_of

_CHUNK_END = ROWS_PER_PARTITION.to_bytes(2, "big")
"""Above every entry's clustering column: a PLog chunk also holds its fencing head
(``processors.fence``), which is not an entry."""


def put_plog(writes: Pending, event: Event, data: bytes) -> None:
    writes.put(*plog_key(event.partition, event.plog_offset), data)


def put_wlog(writes: Pending, event: Event, data: bytes) -> None:
    writes.put(*wlog_key(event.wsid, event.wlog_offset), data)


async def _read(
    storage: AppStorage, key_of: tuple[int, bool], first: int, count: int | None
) -> AsyncIterator[tuple[int, bytes]]:
    """Walk a cracked log from offset ``first`` until a gap, at most ``count`` entries."""
    owner, is_plog = key_of
    make = plog_key if is_plog else wlog_key
    offset, seen = first, 0
    while count is None or seen < count:
        p_key, c_col = make(owner, offset)
        found = False
        async for c, value in storage.read(p_key, c_col, _CHUNK_END):
            got = offset_from_key(p_key, c)
            if got != offset:
                return  # a gap: the log ends here
            yield got, value
            offset += 1
            seen += 1
            found = True
            if count is not None and seen >= count:
                return
        if not found or offset & (ROWS_PER_PARTITION - 1):
            return  # the storage partition was not full, so the log ends inside it


async def read_plog(
    storage: AppStorage, partition: int, first: int = 1, count: int | None = None
) -> AsyncIterator[Event]:
    names = names_of(storage)
    async for _, raw in _read(storage, (partition, True), first, count):
        yield Event.decode(raw, names)


async def read_plog_raw(
    storage: AppStorage, partition: int, first: int = 1, count: int | None = None
) -> AsyncIterator[tuple[int, bytes]]:
    async for item in _read(storage, (partition, True), first, count):
        yield item


async def read_wlog(storage: AppStorage, wsid: int, first: int = 1, count: int | None = None) -> AsyncIterator[Event]:
    names = names_of(storage)
    async for _, raw in _read(storage, (wsid, False), first, count):
        yield Event.decode(raw, names)
