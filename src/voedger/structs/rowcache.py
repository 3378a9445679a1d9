"""Rows that reads found in storage, kept by the process that writes them.

A query reads a few storage rows (a record, a range of records or view rows); on Cassandra each
statement costs the server a few hundred µs of CPU and the database as much again. The process
that owns a partition writes every row of its workspaces (its command groups, its async
projectors, its jobs), so it can keep what reads found and drop it when it writes: this module
is that cache, one per application (``AppRuntime.rows``), and ``CachedRows``, the reader the
query processor reads through while the workspace's partition serves reads here
(``Partition.serves_reads``: it takes commands under a lease surely still this process's).

Why a read never gets a value older than one acknowledged before it started:

- every writer of the application's workspace rows calls ``written`` with the partition keys
  it writes, once before it hands the rows to storage and once after they are durable, before
  anything that depends on them is answered (a command's answer, an async projector's offset);
  ``written`` drops the entries of those partition keys;
- a read remembers the cache's ``generation`` before it asks storage, and keeps what it found
  only if no write of that partition key began or ended since (``_touched``): a read that
  raced a write keeps nothing, and one that overlapped only a write's beginning has its entry
  dropped by the write's end;
- ``clear`` (a partition recovering from storage, taking over from another process) empties
  the cache and refuses what reads begun before it would keep.

Beside rows it keeps *results*: what a read computed from rows (a query's answer), with the
partition keys of every row it read. The same rules keep them fresh: a result is kept only if
none of those keys was written since the read began, and a write of any of them drops it.

A partition this process does not own, or owns on a lease that may have lapsed, is never read
through the cache (its rows may be written elsewhere); when it is taken (again), it recovers,
which clears the cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Sequence

from voedger.storage import AppStorage, BatchItem
from voedger.structs.pending import Pending

MAX_BYTES = 32 * 1024 * 1024
"""Bytes of keys and values kept at most per application; the cache starts over when full."""
MAX_RANGE_ROWS = 256
"""Rows of a range read kept at most; a longer range is read from storage every time."""
MAX_TOUCHED = 65_536
"""Partition keys whose last write is remembered; beyond, the oldest reads keep nothing."""

_ENTRY_OVERHEAD = 64
"""Bytes counted for an entry beside its keys and values (a rough share of the dicts)."""

Range = list[tuple[bytes, bytes]]


class _Entries:
    """What reads found in one storage partition."""

    __slots__ = ("gets", "ranges")

    def __init__(self) -> None:
        self.gets: dict[bytes, bytes | None] = {}
        self.ranges: dict[tuple[bytes, bytes], Range] = {}


class RowCache:
    """Storage rows by partition key, as reads found them (see the module's docstring)."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self._entries: dict[bytes, _Entries] = {}
        self._results: dict[Hashable, object] = {}
        self._dependents: dict[bytes, set[Hashable]] = {}
        """Partition key -> the keys of the results read from it."""
        self._touched: dict[bytes, int] = {}
        self._floor = 0
        self.generation = 0
        """Moved on by every ``written`` and ``clear``; a read notes it before it asks storage."""
        self.size = 0
        """Bytes counted for what is kept."""
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self.result_hits = 0
        self.result_misses = 0

    # --- reads -----------------------------------------------------------------------------------

    def has(self, p_key: bytes, c_col: bytes) -> bool:
        entries = self._entries.get(p_key)
        if entries is not None and c_col in entries.gets:
            self.hits += 1
            return True
        self.misses += 1
        return False

    def value(self, p_key: bytes, c_col: bytes) -> bytes | None:
        """The value kept for a row ``has`` found (None: the row did not exist)."""
        return self._entries[p_key].gets[c_col]

    def range(self, p_key: bytes, start: bytes, finish: bytes) -> Range | None:
        entries = self._entries.get(p_key)
        rows = entries.ranges.get((start, finish)) if entries is not None else None
        if rows is None:
            self.misses += 1
        else:
            self.hits += 1
        return rows

    def keep_value(self, p_key: bytes, c_col: bytes, value: bytes | None, generation: int) -> None:
        """What a get found, read after the cache was at ``generation``."""
        if not self._may_keep(p_key, generation):
            return
        self._count(len(p_key) + len(c_col) + (len(value) if value is not None else 0))
        self._entries_of(p_key).gets[c_col] = value

    def keep_range(self, p_key: bytes, start: bytes, finish: bytes, rows: Range, generation: int) -> None:
        """What a whole range read found, read after the cache was at ``generation``."""
        if not self._may_keep(p_key, generation):
            return
        self._count(len(p_key) + len(start) + len(finish) + sum(len(c) + len(v) + _ENTRY_OVERHEAD for c, v in rows))
        self._entries_of(p_key).ranges[(start, finish)] = rows

    def result(self, key: Hashable) -> object | None:
        """The result kept under ``key``, or None."""
        value = self._results.get(key)
        if value is None:
            self.result_misses += 1
        else:
            self.result_hits += 1
        return value

    def keep_result(self, key: Hashable, value: object, size: int, p_keys: Iterable[bytes], generation: int) -> None:
        """A result (about ``size`` bytes) computed from rows of ``p_keys`` only, by a read
        begun when the cache was at ``generation``. A result that read no row is not kept:
        no write would ever drop it."""
        keys = set(p_keys)
        if not keys or not all(self._may_keep(p_key, generation) for p_key in keys):
            return
        self._count(size + _ENTRY_OVERHEAD * len(keys))
        self._results[key] = value
        for p_key in keys:
            self._dependents.setdefault(p_key, set()).add(key)

    def _may_keep(self, p_key: bytes, generation: int) -> bool:
        return generation >= self._floor and self._touched.get(p_key, 0) <= generation

    def _entries_of(self, p_key: bytes) -> _Entries:
        entries = self._entries.get(p_key)
        if entries is None:
            entries = self._entries[p_key] = _Entries()
        return entries

    def _count(self, size: int) -> None:
        """Counts an entry about to be made; the cache starts over first if it would be full
        (what is dropped is read from storage again)."""
        size += _ENTRY_OVERHEAD
        if self.size + size > self.max_bytes:
            self._empty()
        self.size += size

    def _empty(self) -> None:
        """Forget every row and result kept (their writes' marks stay)."""
        self._entries.clear()
        self._results.clear()
        self._dependents.clear()
        self.size = 0

    # --- writes ----------------------------------------------------------------------------------

    def written(self, p_keys: Iterable[bytes]) -> None:
        """Rows of these partition keys are about to be written, or were: drop what is kept of
        them, and keep nothing a read begun before now finds there."""
        self.generation += 1
        generation = self.generation
        touched = self._touched
        entries = self._entries
        results = self._results
        dependents = self._dependents
        for p_key in p_keys:
            touched[p_key] = generation
            entries.pop(p_key, None)  # its bytes stay counted until the cache starts over
            if dependents:
                for key in dependents.pop(p_key, ()):
                    results.pop(key, None)
        if len(touched) > MAX_TOUCHED:
            touched.clear()
            self._floor = generation

    def clear(self) -> None:
        """Forget everything, and keep nothing a read begun before now finds."""
        self.generation += 1
        self._floor = self.generation
        self._empty()
        self._touched.clear()

    def __len__(self) -> int:
        return sum(len(e.gets) + len(e.ranges) for e in self._entries.values())


def keys_of(items: Sequence[BatchItem]) -> set[bytes]:
    """The storage partition keys a batch writes."""
    return {p_key for p_key, _, _ in items}


async def write_rows(
    rows: RowCache, items: Sequence[BatchItem], write: Callable[[Sequence[BatchItem]], Awaitable[None]]
) -> None:
    """``write(items)``, with their keys dropped from ``rows`` before and after (whatever the
    write's outcome: a failed write may have landed)."""
    keys = keys_of(items)
    rows.written(keys)
    try:
        await write(items)
    finally:
        rows.written(keys)


class CachedRows(Pending):
    """A reader of storage through a ``RowCache``: wrap it in a ``Pending`` as a query's reader."""

    __slots__ = ("_cache", "read_keys")

    def __init__(self, storage: AppStorage, cache: RowCache) -> None:
        super().__init__(storage)
        self._cache = cache
        self.read_keys: set[bytes] | None = None
        """When a set: every partition key read through this reader is added to it (what a
        result computed from the reads depends on)."""

    async def get(self, p_key: bytes, c_col: bytes) -> bytes | None:
        if self.read_keys is not None:
            self.read_keys.add(p_key)
        cache = self._cache
        if cache.has(p_key, c_col):
            return cache.value(p_key, c_col)
        generation = cache.generation
        value = await self.storage.get(p_key, c_col)
        cache.keep_value(p_key, c_col, value, generation)
        return value

    def read(self, p_key: bytes, start: bytes = b"", finish: bytes = b"") -> AsyncIterator[tuple[bytes, bytes]]:
        if self.read_keys is not None:
            self.read_keys.add(p_key)
        cache = self._cache
        rows = cache.range(p_key, start, finish)
        if rows is not None:
            return _Kept(rows)
        return _Keeping(self.storage.read(p_key, start, finish), cache, p_key, start, finish)


class _Kept:
    """Kept rows of a range, as an async iterator (mypyc compiles no async generators)."""

    __slots__ = ("_rows",)

    def __init__(self, rows: Range) -> None:
        self._rows = iter(rows)

    def __aiter__(self) -> _Kept:
        return self

    async def __anext__(self) -> tuple[bytes, bytes]:
        for row in self._rows:
            return row
        await asyncio.sleep(0)  # one turn of the loop, as a range read from storage gives
        raise StopAsyncIteration


class _Keeping:
    """A range read from storage, kept in the cache once read to its end (if not too long)."""

    __slots__ = ("_cache", "_finish", "_generation", "_p_key", "_rows", "_seen", "_start")

    def __init__(
        self, rows: AsyncIterator[tuple[bytes, bytes]], cache: RowCache, p_key: bytes, start: bytes, finish: bytes
    ) -> None:
        self._rows = rows
        self._cache = cache
        self._generation = cache.generation
        self._p_key = p_key
        self._start = start
        self._finish = finish
        self._seen: Range | None = []

    def __aiter__(self) -> _Keeping:
        return self

    async def __anext__(self) -> tuple[bytes, bytes]:
        try:
            row = await self._rows.__anext__()
        except StopAsyncIteration:
            seen = self._seen
            if seen is not None:
                self._seen = None
                self._cache.keep_range(self._p_key, self._start, self._finish, seen, self._generation)
            raise
        seen = self._seen
        if seen is not None:
            if len(seen) < MAX_RANGE_ROWS:
                seen.append(row)
            else:
                self._seen = None
        return row
