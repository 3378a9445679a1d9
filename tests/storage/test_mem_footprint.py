"""What the mem driver holds, against the bytes it was given (the memory target of ``mem://``)."""

from __future__ import annotations

from voedger.clock import ManualClock
from voedger.storage.mem import Footprint, MemStorageFactory


async def test_the_footprint_counts_every_live_row_and_the_objects_holding_it() -> None:
    clock = ManualClock(1000.0)
    factory = MemStorageFactory(clock)
    await factory.init("a")
    await factory.init("b")
    a, b = await factory.app_storage("a"), await factory.app_storage("b")
    assert factory.footprint() == Footprint(0, 0, factory.footprint().held)

    rows = [(b"p%d" % (i % 10), b"c%04d" % i, b"v" * 100) for i in range(1000)]
    await a.put_batch(rows)
    await b.insert_if_not_exists(b"lease", b"x", b"owner", ttl=5)
    got = factory.footprint()
    payload = sum(len(p) + len(c) + len(v) for p, c, v in rows) + len(b"lease") + len(b"x") + len(b"owner")
    assert (got.rows, got.payload) == (1001, payload)
    # A row without TTL is its bare value: keys and value objects and the dict slots, no pair.
    assert payload < got.held < 2.5 * payload, got

    assert await b.query_ttl(b"lease", b"x") == 5 and await a.query_ttl(b"p0", b"c0000") == 0
    clock.advance(6)
    assert await b.get(b"lease", b"x") is None and await b.query_ttl(b"lease", b"x") is None
    assert await b.insert_if_not_exists(b"lease", b"x", b"other", ttl=0)
    assert await b.get(b"lease", b"x") == b"other" and await b.query_ttl(b"lease", b"x") == 0


async def test_values_are_kept_in_buffers_of_their_own_size() -> None:
    """orjson's bytes sit in buffers of 4 KiB or more whatever their length; the driver keeps a
    copy of each value's own size, so 2,000 rows of ~37 bytes (with their keys, dictionaries and
    TTL pairs) take a few hundred KiB, not the 8 MiB of the buffers they were given in."""
    import tracemalloc

    import orjson

    factory = MemStorageFactory()
    await factory.init("a")
    storage = await factory.app_storage("a")
    tracemalloc.start()
    try:
        for i in range(1000):  # made and dropped here, as a command's rows are
            await storage.put_batch([(b"p", b"c%04d" % i, orjson.dumps({"Name": f"item {i}", "Price": i}))])
            value = orjson.dumps({"Name": f"item {i}", "Price": i})
            await storage.insert_if_not_exists(b"q", b"c%04d" % i, value, ttl=60)
        del value
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert factory.footprint().rows == 2000
    assert held < 512 * 1024, held
