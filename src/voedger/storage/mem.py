"""The in-process driver: a real implementation of the contract for unit tests, not a stand-in
for another driver's tests. Nothing survives the process."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence

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

MEM_CAPABILITIES = Capabilities(name="mem", manual_clock=True)

# A row is (value, expires_at); expires_at 0.0 means no TTL.
_Row = tuple[bytes, float]


class MemAppStorage(AppStorage):
    """Rows in nested dicts; a range read sorts the partition's keys."""

    capabilities = MEM_CAPABILITIES

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._data: dict[bytes, dict[bytes, _Row]] = {}

    def _expires_at(self, ttl: int) -> float:
        return self._clock.now() + ttl if ttl else 0.0

    def _live(self, row: _Row | None) -> bytes | None:
        if row is None:
            return None
        value, exp = row
        if exp and exp <= self._clock.now():
            return None
        return value

    def _row(self, p_key: bytes, c_col: bytes) -> _Row | None:
        part = self._data.get(p_key)
        return None if part is None else part.get(c_col)

    async def put(self, p_key: bytes, c_col: bytes, value: bytes) -> None:
        check_key(p_key, c_col)
        check_value(value)
        self._data.setdefault(p_key, {})[c_col] = (value, 0.0)

    async def put_batch(self, items: Sequence[BatchItem]) -> None:
        for p_key, c_col, value in items:
            check_key(p_key, c_col)
            check_value(value)
        for p_key, c_col, value in items:
            self._data.setdefault(p_key, {})[c_col] = (value, 0.0)

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
        self._data.setdefault(p_key, {})[c_col] = (value, self._expires_at(ttl))
        return True

    async def compare_and_swap(self, p_key: bytes, c_col: bytes, old: bytes, new: bytes, ttl: int = 0) -> bool:
        check_key(p_key, c_col)
        check_value(new)
        check_ttl(ttl)
        if self._live(self._row(p_key, c_col)) != old:
            return False
        self._data[p_key][c_col] = (new, self._expires_at(ttl))
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
        part[c_col] = (new, 0.0)
        for row_col, value in rows:
            part[row_col] = (value, 0.0)
        return True

    async def query_ttl(self, p_key: bytes, c_col: bytes) -> int | None:
        check_key(p_key, c_col)
        row = self._row(p_key, c_col)
        if self._live(row) is None or row is None:
            return None
        exp = row[1]
        return math.ceil(exp - self._clock.now()) if exp else 0


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

    async def close(self) -> None:
        self._storages.clear()
