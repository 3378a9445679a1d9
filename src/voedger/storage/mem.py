"""The in-process driver: a real implementation of the contract for unit tests, not a stand-in
for another driver's tests. Nothing survives the process."""

from __future__ import annotations

import math
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from voedger.clock import SYSTEM_CLOCK, Clock
from voedger.storage.contract import (
    AppStorage,
    AppStorageFactory,
    BatchItem,
    Capabilities,
    PartitionRow,
    check_conditional_batch,
    check_key,
    check_ttl,
    check_value,
    range_is_empty,
)
from voedger.storage.errors import StorageAlreadyExistsError, StorageDoesNotExistError
from voedger.trim import trimmed

MEM_CAPABILITIES = Capabilities(name="mem", manual_clock=True)


@dataclass(frozen=True, slots=True)
class Footprint:
    """What the driver holds: its rows, their bytes (keys and values), and the bytes of the
    Python objects that hold them (dictionaries, keys, values, TTL pairs)."""

    rows: int = 0
    payload: int = 0
    held: int = 0

    def __add__(self, other: Footprint) -> Footprint:
        return Footprint(self.rows + other.rows, self.payload + other.payload, self.held + other.held)


_Row = bytes | tuple[bytes, float]
"""A row's value, or (value, expires_at) for a row with a TTL: most rows have none, and a bare
value saves the pair (56 bytes a row; the driver should hold not much more than its payload)."""


class MemAppStorage(AppStorage):
    """Rows in nested dicts; a range read sorts the partition's keys."""

    capabilities = MEM_CAPABILITIES

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._data: dict[bytes, dict[bytes, _Row]] = {}

    def _with_ttl(self, value: bytes, ttl: int) -> _Row:
        return (trimmed(value), self._clock.now() + ttl) if ttl else trimmed(value)

    def _live(self, row: _Row | None) -> bytes | None:
        if row is None or isinstance(row, bytes):
            return row
        value, exp = row
        return None if exp <= self._clock.now() else value

    def _row(self, p_key: bytes, c_col: bytes) -> _Row | None:
        part = self._data.get(p_key)
        return None if part is None else part.get(c_col)

    def footprint(self) -> Footprint:
        """Its rows, their bytes and the bytes of the objects holding them (``sys.getsizeof``;
        a value shared by several rows is counted for each)."""
        rows = payload = 0
        held = sys.getsizeof(self._data)
        for p_key, part in self._data.items():
            held += sys.getsizeof(p_key) + sys.getsizeof(part)
            for c_col, row in part.items():
                value = row if isinstance(row, bytes) else row[0]
                rows += 1
                payload += len(p_key) + len(c_col) + len(value)
                held += sys.getsizeof(c_col) + sys.getsizeof(value)
                if not isinstance(row, bytes):
                    held += sys.getsizeof(row) + sys.getsizeof(row[1])
        return Footprint(rows, payload, held)

    async def put(self, p_key: bytes, c_col: bytes, value: bytes) -> None:
        check_key(p_key, c_col)
        check_value(value)
        self._data.setdefault(p_key, {})[c_col] = trimmed(value)

    async def put_batch(self, items: Sequence[BatchItem]) -> None:
        for p_key, c_col, value in items:
            check_key(p_key, c_col)
            check_value(value)
        for p_key, c_col, value in items:
            self._data.setdefault(p_key, {})[c_col] = trimmed(value)

    async def get(self, p_key: bytes, c_col: bytes) -> bytes | None:
        check_key(p_key, c_col)
        return self._live(self._row(p_key, c_col))

    async def get_batch(self, p_key: bytes, c_cols: Sequence[bytes]) -> list[bytes | None]:
        for c_col in c_cols:
            check_key(p_key, c_col)
        return [self._live(self._row(p_key, c)) for c in c_cols]

    async def read(self, p_key: bytes, start: bytes = b"", finish: bytes = b"") -> AsyncIterator[tuple[bytes, bytes]]:
        check_key(p_key, start)
        check_key(p_key, finish)
        if range_is_empty(start, finish):
            return
        part = self._data.get(p_key, {})
        keys = sorted(c for c in part if c >= start and (not finish or c < finish))
        for c_col in keys:
            value = self._live(part.get(c_col))
            if value is not None:
                yield c_col, value

    async def insert_if_not_exists(self, p_key: bytes, c_col: bytes, value: bytes, ttl: int = 0) -> bool:
        check_key(p_key, c_col)
        check_value(value)
        check_ttl(ttl)
        if self._live(self._row(p_key, c_col)) is not None:
            return False
        self._data.setdefault(p_key, {})[c_col] = self._with_ttl(value, ttl)
        return True

    async def compare_and_swap(self, p_key: bytes, c_col: bytes, old: bytes, new: bytes, ttl: int = 0) -> bool:
        check_key(p_key, c_col)
        check_value(new)
        check_ttl(ttl)
        if self._live(self._row(p_key, c_col)) != old:
            return False
        self._data[p_key][c_col] = self._with_ttl(new, ttl)
        return True

    async def compare_and_delete(self, p_key: bytes, c_col: bytes, expected: bytes) -> bool:
        check_key(p_key, c_col)
        if self._live(self._row(p_key, c_col)) != expected:
            return False
        del self._data[p_key][c_col]
        return True

    async def put_batch_if(
        self, p_key: bytes, c_col: bytes, expected: bytes | None, new: bytes, rows: Sequence[PartitionRow]
    ) -> bool:
        check_conditional_batch(p_key, c_col, expected, new, rows)
        if self._live(self._row(p_key, c_col)) != expected:
            return False
        part = self._data.setdefault(p_key, {})
        part[c_col] = trimmed(new)
        for row_col, value in rows:
            part[row_col] = trimmed(value)
        return True

    async def query_ttl(self, p_key: bytes, c_col: bytes) -> int | None:
        check_key(p_key, c_col)
        row = self._row(p_key, c_col)
        if self._live(row) is None or row is None:
            return None
        if isinstance(row, bytes):
            return 0
        return math.ceil(row[1] - self._clock.now())


class MemStorageFactory(AppStorageFactory):
    capabilities = MEM_CAPABILITIES

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._storages: dict[str, MemAppStorage] = {}

    async def init(self, safe_name: str) -> None:
        if safe_name in self._storages:
            raise StorageAlreadyExistsError(f"storage {safe_name!r} already exists")
        self._storages[safe_name] = MemAppStorage(self._clock)

    async def app_storage(self, safe_name: str) -> AppStorage:
        try:
            return self._storages[safe_name]
        except KeyError:
            raise StorageDoesNotExistError(f"storage {safe_name!r} does not exist") from None

    def footprint(self) -> Footprint:
        """What every storage of this factory holds (see :meth:`MemAppStorage.footprint`)."""
        return sum((storage.footprint() for storage in self._storages.values()), Footprint())

    async def close(self) -> None:
        self._storages.clear()
