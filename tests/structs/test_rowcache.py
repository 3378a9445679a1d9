"""The cache of storage rows reads found (``structs/rowcache.py``): what it keeps, and what a read
that raced a write may not keep."""

from __future__ import annotations

from voedger.clock import SYSTEM_CLOCK
from voedger.storage.mem import MemAppStorage
from voedger.structs.pending import Pending
from voedger.structs.rowcache import MAX_RANGE_ROWS, MAX_TOUCHED, CachedRows, RowCache


async def _range(reader: Pending, p_key: bytes) -> list[tuple[bytes, bytes]]:
    return [row async for row in reader.read(p_key)]


async def test_reads_are_kept_until_their_partition_key_is_written() -> None:
    storage = MemAppStorage(SYSTEM_CLOCK)
    cache = RowCache()
    await storage.put_batch([(b"a", b"1", b"one"), (b"a", b"2", b"two"), (b"b", b"1", b"bee")])
    reader = Pending(CachedRows(storage, cache))
    assert await reader.get(b"a", b"1") == b"one"
    assert await reader.get(b"a", b"9") is None  # an absent row is kept as absent
    assert await _range(reader, b"a") == [(b"1", b"one"), (b"2", b"two")]
    assert await reader.get(b"b", b"1") == b"bee"
    hits = cache.hits
    assert await reader.get(b"a", b"1") == b"one"
    assert await reader.get(b"a", b"9") is None
    assert await _range(reader, b"a") == [(b"1", b"one"), (b"2", b"two")]
    assert cache.hits == hits + 3

    # Written behind the cache's back, the kept rows are still what reads get ...
    await storage.put_batch([(b"a", b"1", b"uno"), (b"a", b"9", b"nine")])
    assert await reader.get(b"a", b"1") == b"one"
    # ... until the writer says so; other partition keys keep theirs.
    cache.written([b"a"])
    assert await reader.get(b"a", b"1") == b"uno"
    assert await reader.get(b"a", b"9") == b"nine"
    assert await _range(reader, b"a") == [(b"1", b"uno"), (b"2", b"two"), (b"9", b"nine")]
    hits = cache.hits
    assert await reader.get(b"b", b"1") == b"bee"
    assert cache.hits == hits + 1


async def test_a_read_that_began_before_a_write_keeps_nothing() -> None:
    storage = MemAppStorage(SYSTEM_CLOCK)
    cache = RowCache()
    await storage.put(b"a", b"1", b"old")
    seen = cache.generation  # a read begins ...
    cache.written([b"a"])  # ... a write of the row begins (or ends) meanwhile ...
    cache.keep_value(b"a", b"1", b"old", seen)  # ... and what the read found is not kept
    cache.keep_range(b"a", b"", b"", [(b"1", b"old")], seen)
    assert not cache.has(b"a", b"1") and cache.range(b"a", b"", b"") is None
    cache.keep_value(b"b", b"1", b"bee", seen)  # another partition key's read is kept
    assert cache.has(b"b", b"1")

    # A range read whose storage read straddles a write: nothing kept.
    reader = Pending(CachedRows(storage, cache))
    rows = reader.read(b"a")
    assert await rows.__anext__() == (b"1", b"old")
    cache.written([b"a"])
    assert [row async for row in rows] == []
    assert cache.range(b"a", b"", b"") is None

    # A clear (a partition recovering) refuses what earlier reads would keep, on every key.
    seen = cache.generation
    cache.clear()
    cache.keep_value(b"c", b"1", b"sea", seen)
    assert not cache.has(b"c", b"1") and len(cache) == 0


async def test_long_ranges_and_a_full_cache_are_not_kept() -> None:
    storage = MemAppStorage(SYSTEM_CLOCK)
    cache = RowCache(max_bytes=4096)
    await storage.put_batch([(b"long", b"%05d" % i, b"x") for i in range(MAX_RANGE_ROWS + 1)])
    reader = Pending(CachedRows(storage, cache))
    assert len(await _range(reader, b"long")) == MAX_RANGE_ROWS + 1
    assert cache.range(b"long", b"", b"") is None
    rows = reader.read(b"long")  # a read left unfinished keeps nothing either
    await rows.__anext__()
    assert cache.range(b"long", b"", b"") is None

    for i in range(100):  # 100 values of 100 bytes: more than 4 KiB, so the cache starts over
        cache.keep_value(b"p%d" % i, b"", b"v" * 100, cache.generation)
    assert cache.size <= 4096 and 0 < len(cache) < 100


def test_remembering_too_many_writes_refuses_older_reads() -> None:
    cache = RowCache()
    seen = cache.generation
    cache.written(b"k%d" % i for i in range(MAX_TOUCHED + 1))  # forgets which keys it wrote ...
    cache.keep_value(b"other", b"", b"v", seen)  # ... so a read begun before keeps nothing
    assert not cache.has(b"other", b"")
    cache.keep_value(b"other", b"", b"v", cache.generation)
    assert cache.has(b"other", b"")


# --- results computed from rows ----------------------------------------------------------------


async def test_a_result_is_kept_until_a_row_it_read_is_written() -> None:
    storage = MemAppStorage(SYSTEM_CLOCK)
    cache = RowCache()
    await storage.put_batch([(b"a", b"1", b"one"), (b"b", b"1", b"bee"), (b"c", b"1", b"sea")])
    rows = CachedRows(storage, cache)
    rows.read_keys = set()
    reader = Pending(rows)
    seen = cache.generation
    found = [await reader.get(b"a", b"1"), *[v for _, v in await _range(reader, b"b")]]
    assert rows.read_keys == {b"a", b"b"}
    cache.keep_result("q", found, 16, rows.read_keys, seen)
    assert cache.result("q") == [b"one", b"bee"]
    cache.written([b"c"])  # another partition key: kept
    assert cache.result("q") == [b"one", b"bee"]
    cache.written([b"b"])  # one it read: dropped
    assert cache.result("q") is None
    assert (cache.result_hits, cache.result_misses) == (2, 1)

    seen = cache.generation
    cache.keep_result("q", found, 16, [b"a"], seen)
    cache.clear()  # a recovery
    assert cache.result("q") is None


def test_a_result_read_while_a_row_of_it_was_written_is_not_kept() -> None:
    cache = RowCache()
    seen = cache.generation  # the read begins ...
    cache.written([b"a"])  # ... a write of one of its rows begins or ends meanwhile
    cache.keep_result("q", "stale", 8, [b"a", b"b"], seen)
    assert cache.result("q") is None
    cache.keep_result("r", "fresh", 8, [b"b"], seen)  # rows nobody wrote: kept
    assert cache.result("r") == "fresh"
    cache.keep_result("s", "from nothing", 8, [], cache.generation)  # no write would drop it
    assert cache.result("s") is None


def test_results_count_towards_the_bound() -> None:
    cache = RowCache(max_bytes=1000)
    cache.keep_result("big", "x", 600, [b"a"], cache.generation)
    assert cache.result("big") == "x"
    cache.keep_result("bigger", "y", 600, [b"b"], cache.generation)  # over the bound: starts over
    assert cache.result("big") is None and cache.result("bigger") == "y"
    cache.written([b"a"])  # the dropped result's key is forgotten too: nothing left to drop
    assert cache.result("bigger") == "y"
