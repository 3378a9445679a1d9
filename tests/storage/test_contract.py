"""The storage contract, written once and run against every driver (mem, sqlite, cassandra)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import pytest

from tests.storage.conftest import Driver
from voedger.storage import AppStorage, InvalidKeyError

Keys = Callable[[bytes], bytes]


async def collect(storage: AppStorage, p: bytes, start: bytes = b"", finish: bytes = b"") -> list[bytes]:
    return [c async for c, _ in storage.read(p, start, finish)]


SHORT_TTL = 3
"""Seconds: long enough that the checks before expiry finish in time on a loaded machine (with 1
s, a real Cassandra busy compacting once let a row run out before the next statement)."""


async def expire(driver: Driver, seconds: int) -> None:
    """Let rows with a TTL of ``seconds`` run out: move a manual clock, or wait for the real one."""
    if driver.clock is not None:
        driver.clock.advance(seconds + 0.001)
    else:
        await asyncio.sleep(seconds + 1.1)


async def test_put_and_get(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"a")
    assert await storage.get(p, b"c") is None
    await storage.put(p, b"c", b"v1")
    assert await storage.get(p, b"c") == b"v1"
    await storage.put(p, b"c", b"v2")
    assert await storage.get(p, b"c") == b"v2"
    assert await storage.get(keys(b"other"), b"c") is None


async def test_empty_clustering_column(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"e")
    await storage.put(p, b"", b"empty")
    await storage.put(p, b"\x00", b"zero")
    assert await storage.get(p, b"") == b"empty"
    assert await storage.get_batch(p, [b"\x00", b""]) == [b"zero", b"empty"]
    assert await collect(storage, p) == [b"", b"\x00"]


async def test_empty_value(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"ev")
    await storage.put(p, b"c", b"")
    assert await storage.get(p, b"c") == b""


async def test_put_batch_and_get_batch(storage: AppStorage, keys: Keys) -> None:
    p1, p2 = keys(b"1"), keys(b"2")
    await storage.put_batch([(p1, b"a", b"1a"), (p1, b"b", b"1b"), (p2, b"a", b"2a")])
    assert await storage.get_batch(p1, [b"b", b"zz", b"a"]) == [b"1b", None, b"1a"]
    assert await storage.get_batch(p2, [b"a"]) == [b"2a"]
    assert await storage.get_batch(p1, []) == []
    await storage.put_batch([])


async def test_begin_put_batch_is_put_batch_started_at_once(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"begin")
    first = storage.begin_put_batch([(p, b"a", b"1")])
    second = storage.begin_put_batch([(p, b"b", b"2")])
    await first
    await second
    assert await storage.get_batch(p, [b"a", b"b"]) == [b"1", b"2"]
    with pytest.raises(InvalidKeyError):
        await storage.begin_put_batch([(p, b"c", "not bytes")])  # type: ignore[list-item]
    assert await storage.get(p, b"c") is None


async def test_put_batch_overwrites(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"ow")
    await storage.put(p, b"a", b"old")
    await storage.put_batch([(p, b"a", b"new"), (p, b"b", b"b")])
    assert await storage.get_batch(p, [b"a", b"b"]) == [b"new", b"b"]


async def test_read_ranges(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"r")
    cols = [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x00\x01",
        b"\x01",
        b"a",
        b"ab",
        b"b",
        b"\x7f",
        b"\x80",
        b"\xff",
        b"\xff\xff",
    ]
    await storage.put_batch([(p, c, b"v" + c) for c in reversed(cols)])
    ordered = sorted(cols)
    assert await collect(storage, p) == ordered
    assert await collect(storage, p, b"a") == [c for c in ordered if c >= b"a"]
    assert await collect(storage, p, b"", b"a") == [c for c in ordered if c < b"a"]
    assert await collect(storage, p, b"\x00\x01", b"\x80") == [
        b"\x00\x01",
        b"\x01",
        b"a",
        b"ab",
        b"b",
        b"\x7f",
    ]
    assert await collect(storage, p, b"\x80", b"\x80") == []
    assert await collect(storage, p, b"b", b"a") == []
    assert await collect(storage, p, b"\xff\xff\xff") == []
    values = {c: v async for c, v in storage.read(p)}
    assert values == {c: b"v" + c for c in cols}
    assert await collect(storage, keys(b"nothing")) == []


async def test_read_is_unsigned_byte_order(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"u")
    cols = [bytes([b]) for b in (0xFF, 0x00, 0x80, 0x7F, 0x01)]
    for c in cols:
        await storage.put(p, c, c)
    assert await collect(storage, p) == [b"\x00", b"\x01", b"\x7f", b"\x80", b"\xff"]


async def test_read_streams_many_rows_in_order(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"many")
    n = 2500
    rows = [(p, i.to_bytes(4, "big"), i.to_bytes(4, "little")) for i in range(n)]
    for i in range(0, n, 500):
        await storage.put_batch(rows[i : i + 500])
    seen = [(c, v) async for c, v in storage.read(p)]
    assert seen == [(c, v) for _, c, v in rows]
    middle = await collect(storage, p, (1000).to_bytes(4, "big"), (2001).to_bytes(4, "big"))
    assert middle == [i.to_bytes(4, "big") for i in range(1000, 2001)]


async def test_binary_partition_keys(storage: AppStorage, keys: Keys) -> None:
    p0, pf = keys(b"\x00\x00\x00"), keys(b"\xff\x00\xff")
    await storage.put(p0, b"\x00", b"zero")
    await storage.put(pf, b"\x00", b"ff")
    assert await storage.get(p0, b"\x00") == b"zero"
    assert await storage.get(pf, b"\x00") == b"ff"
    assert await collect(storage, p0) == [b"\x00"]


async def test_one_mebibyte_value(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"big")
    value = bytes(range(256)) * 4096
    assert len(value) == 1 << 20
    await storage.put(p, b"c", value)
    assert await storage.get(p, b"c") == value
    assert [v async for _, v in storage.read(p)] == [value]


async def test_insert_if_not_exists(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"ins")
    assert await storage.insert_if_not_exists(p, b"c", b"first")
    assert not await storage.insert_if_not_exists(p, b"c", b"second")
    assert await storage.get(p, b"c") == b"first"
    assert await storage.query_ttl(p, b"c") == 0
    await storage.put(p, b"d", b"plain")
    assert not await storage.insert_if_not_exists(p, b"d", b"x")
    assert await storage.insert_if_not_exists(p, b"", b"empty-ccols")


async def test_compare_and_swap(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"cas")
    assert not await storage.compare_and_swap(p, b"c", b"x", b"y")
    assert await storage.get(p, b"c") is None
    await storage.put(p, b"c", b"old")
    assert not await storage.compare_and_swap(p, b"c", b"wrong", b"new")
    assert await storage.get(p, b"c") == b"old"
    assert await storage.compare_and_swap(p, b"c", b"old", b"new")
    assert await storage.get(p, b"c") == b"new"


async def test_compare_and_delete(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"cad")
    assert not await storage.compare_and_delete(p, b"c", b"x")
    await storage.put(p, b"c", b"v")
    assert not await storage.compare_and_delete(p, b"c", b"other")
    assert await storage.get(p, b"c") == b"v"
    assert await storage.compare_and_delete(p, b"c", b"v")
    assert await storage.get(p, b"c") is None
    assert await collect(storage, p) == []
    assert await storage.insert_if_not_exists(p, b"c", b"again")


async def test_query_ttl(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"qt")
    assert await storage.query_ttl(p, b"c") is None
    await storage.put(p, b"c", b"v")
    assert await storage.query_ttl(p, b"c") == 0
    assert await storage.insert_if_not_exists(p, b"t", b"v", ttl=100)
    ttl = await storage.query_ttl(p, b"t")
    assert ttl is not None and 95 <= ttl <= 100


async def test_ttl_expiry(driver: Driver, storage: AppStorage, keys: Keys) -> None:
    p = keys(b"ttl")
    await storage.put(p, b"keep", b"k")
    assert await storage.insert_if_not_exists(p, b"t", b"soon-gone", ttl=SHORT_TTL)
    assert await storage.ttl_get(p, b"t") == b"soon-gone"
    assert [c async for c, _ in storage.ttl_read(p)] == [b"keep", b"t"]
    await expire(driver, SHORT_TTL)
    assert await storage.get(p, b"t") is None
    assert await storage.ttl_get(p, b"t") is None
    assert await storage.get_batch(p, [b"t", b"keep"]) == [None, b"k"]
    assert await collect(storage, p) == [b"keep"]
    assert [c async for c, _ in storage.ttl_read(p)] == [b"keep"]
    assert await storage.query_ttl(p, b"t") is None
    assert not await storage.compare_and_swap(p, b"t", b"soon-gone", b"x")
    assert not await storage.compare_and_delete(p, b"t", b"soon-gone")
    assert await storage.insert_if_not_exists(p, b"t", b"reborn")
    assert await storage.get(p, b"t") == b"reborn"


async def test_compare_and_swap_resets_ttl(driver: Driver, storage: AppStorage, keys: Keys) -> None:
    p = keys(b"cttl")
    assert await storage.insert_if_not_exists(p, b"lease", b"me", ttl=2)
    assert await storage.compare_and_swap(p, b"lease", b"me", b"me", ttl=100)
    ttl = await storage.query_ttl(p, b"lease")
    assert ttl is not None and ttl > 2
    assert await storage.compare_and_swap(p, b"lease", b"me", b"forever", ttl=0)
    assert await storage.query_ttl(p, b"lease") == 0
    assert await storage.insert_if_not_exists(p, b"short", b"s", ttl=SHORT_TTL)
    assert await storage.compare_and_swap(p, b"short", b"s", b"s", ttl=SHORT_TTL)
    await expire(driver, SHORT_TTL)
    assert await storage.get(p, b"short") is None
    assert await storage.get(p, b"lease") == b"forever"


async def test_put_clears_ttl(driver: Driver, storage: AppStorage, keys: Keys) -> None:
    p = keys(b"pttl")
    assert await storage.insert_if_not_exists(p, b"c", b"t", ttl=1)
    await storage.put(p, b"c", b"durable")
    assert await storage.query_ttl(p, b"c") == 0
    await expire(driver, 1)
    assert await storage.get(p, b"c") == b"durable"


async def test_concurrent_compare_and_swap_has_one_winner(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"race")
    await storage.put(p, b"c", b"start")
    results = await asyncio.gather(*(storage.compare_and_swap(p, b"c", b"start", b"racer%d" % i) for i in range(50)))
    assert sum(results) == 1
    winner = results.index(True)
    assert await storage.get(p, b"c") == b"racer%d" % winner


async def test_concurrent_insert_if_not_exists_has_one_winner(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"irace")
    results = await asyncio.gather(*(storage.insert_if_not_exists(p, b"c", b"racer%d" % i, ttl=60) for i in range(50)))
    assert sum(results) == 1
    winner = results.index(True)
    assert await storage.get(p, b"c") == b"racer%d" % winner


async def test_concurrent_puts_to_many_partitions(storage: AppStorage, keys: Keys) -> None:
    items = [(keys(b"m%d" % i), b"c", os.urandom(16)) for i in range(64)]
    await asyncio.gather(*(storage.put(p, c, v) for p, c, v in items))
    got = await asyncio.gather(*(storage.get(p, c) for p, c, _ in items))
    assert got == [v for _, _, v in items]


@pytest.mark.parametrize(
    ("p_key", "c_col"),
    [(b"", b"c"), ("text", b"c"), (b"p", "text"), (b"x" * 70_000, b"c"), (b"p", b"x" * 70_000)],
    ids=["empty-pkey", "str-pkey", "str-ccols", "long-pkey", "long-ccols"],
)
async def test_invalid_keys_are_rejected(storage: AppStorage, p_key: object, c_col: object) -> None:
    with pytest.raises(InvalidKeyError):
        await storage.put(p_key, c_col, b"v")  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError):
        await storage.get(p_key, c_col)  # type: ignore[arg-type]


async def test_invalid_ttl_is_rejected(storage: AppStorage, keys: Keys) -> None:
    with pytest.raises(InvalidKeyError):
        await storage.insert_if_not_exists(keys(b"t"), b"c", b"v", ttl=-1)
    with pytest.raises(InvalidKeyError):
        await storage.compare_and_swap(keys(b"t"), b"c", b"v", b"w", ttl=10**10)
    assert await storage.get(keys(b"t"), b"c") is None


async def test_invalid_batch_writes_nothing(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"ib")
    with pytest.raises(InvalidKeyError):
        await storage.put_batch([(p, b"a", b"1"), (b"", b"b", b"2")])
    assert await storage.get(p, b"a") is None


async def test_put_batch_if_applies_only_on_its_condition(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"fence")
    assert await storage.put_batch_if(p, b"\xff", None, b"e1", [(b"\x00", b"a"), (b"\x01", b"b")])
    assert await storage.get(p, b"\xff") == b"e1"
    assert await collect(storage, p) == [b"\x00", b"\x01", b"\xff"]
    # The row exists now: "if not exists" fails and writes nothing.
    assert not await storage.put_batch_if(p, b"\xff", None, b"e9", [(b"\x02", b"zombie")])
    assert await storage.get(p, b"\x02") is None
    # A stale expected value fails and writes nothing; the current one applies.
    assert not await storage.put_batch_if(p, b"\xff", b"e0", b"e2", [(b"\x02", b"zombie")])
    assert await storage.get(p, b"\x02") is None
    assert await storage.get(p, b"\xff") == b"e1"
    assert await storage.put_batch_if(p, b"\xff", b"e1", b"e2", [(b"\x02", b"c"), (b"\x00", b"a2")])
    assert await storage.get_batch(p, [b"\x00", b"\x01", b"\x02", b"\xff"]) == [b"a2", b"b", b"c", b"e2"]
    # No rows: the condition row alone.
    assert await storage.put_batch_if(p, b"\xff", b"e2", b"e3", [])
    assert await storage.get(p, b"\xff") == b"e3"


async def test_put_batch_if_after_expiry_is_if_not_exists(driver: Driver, storage: AppStorage, keys: Keys) -> None:
    p = keys(b"fence-ttl")
    assert await storage.insert_if_not_exists(p, b"h", b"old", ttl=SHORT_TTL)
    await expire(driver, SHORT_TTL)
    assert not await storage.put_batch_if(p, b"h", b"old", b"new", [])
    assert await storage.put_batch_if(p, b"h", None, b"new", [(b"r", b"v")])
    assert await storage.query_ttl(p, b"h") == 0
    assert await storage.get(p, b"r") == b"v"


async def test_put_batch_if_rejects_bad_rows(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"fence-bad")
    with pytest.raises(InvalidKeyError):
        await storage.put_batch_if(p, b"h", None, b"v", [(b"h", b"twice")])
    with pytest.raises(InvalidKeyError):
        await storage.put_batch_if(p, b"h", None, b"v", [(b"x" * 70_000, b"v")])
    with pytest.raises(InvalidKeyError):
        await storage.put_batch_if(b"", b"h", None, b"v", [])
    assert await storage.get(p, b"h") is None


async def test_concurrent_put_batch_if_has_one_winner(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"fence-race")
    await storage.put(p, b"h", b"0")
    results = await asyncio.gather(
        *(storage.put_batch_if(p, b"h", b"0", f"w{i}".encode(), [(f"r{i}".encode(), b"v")]) for i in range(8))
    )
    assert results.count(True) == 1
    winner = results.index(True)
    assert await storage.get(p, b"h") == f"w{winner}".encode()
    assert await collect(storage, p) == [b"h", f"r{winner}".encode()]


async def test_put_batch_at_writes_like_put_batch(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"at")
    await storage.put_batch_at([(p, b"a", b"1"), (p, b"b", b"2")], time.time())
    assert await storage.get_batch(p, [b"a", b"b"]) == [b"1", b"2"]


async def test_put_batch_at_loses_to_a_newer_write(driver: Driver, storage: AppStorage, keys: Keys) -> None:
    """Where writes are resolved by time, a late write dated earlier does not win."""
    if storage.capabilities.name != "cassandra":
        pytest.skip("one writer: the latest write is the newest")
    p = keys(b"at-late")
    await storage.put(p, b"r", b"new")
    await storage.put_batch_at([(p, b"r", b"stale")], time.time() - 10)
    assert await storage.get(p, b"r") == b"new"


async def test_put_ttl_writes_over_what_is_there_and_expires(driver: Driver, storage: AppStorage, keys: Keys) -> None:
    p = keys(b"put-ttl")
    await storage.put_ttl(p, b"m", b"1", SHORT_TTL)
    await storage.put_ttl(p, b"m", b"2", SHORT_TTL)  # unconditional: over a live row
    await storage.put_ttl(p, b"n", b"3", 0)  # 0: no expiry
    assert await storage.ttl_get(p, b"m") == b"2"
    assert [v async for _, v in storage.ttl_read(p)] == [b"2", b"3"]
    await expire(driver, SHORT_TTL)
    assert await storage.ttl_get(p, b"m") is None
    assert await storage.ttl_get(p, b"n") == b"3"
    with pytest.raises(InvalidKeyError):
        await storage.put_ttl(p, b"m", b"4", -1)


async def test_put_rows_at_writes_rows_of_several_partitions(storage: AppStorage, keys: Keys) -> None:
    p, q = keys(b"rows-p"), keys(b"rows-q")
    await storage.put_rows_at([(p, b"a", b"1"), (q, b"a", b"2"), (p, b"b", b"3")], time.time())
    assert await storage.get_batch(p, [b"a", b"b"]) == [b"1", b"3"]
    assert await collect(storage, q) == [b"a"] and await storage.get(q, b"a") == b"2"
    await storage.put_rows_at([], time.time())  # nothing to write: nothing happens


async def test_put_rows_at_loses_to_a_newer_write(driver: Driver, storage: AppStorage, keys: Keys) -> None:
    if storage.capabilities.name != "cassandra":
        pytest.skip("one writer: the latest write is the newest")
    p, q = keys(b"rows-late-p"), keys(b"rows-late-q")
    await storage.put(p, b"r", b"new")
    await storage.put_rows_at([(p, b"r", b"stale"), (q, b"r", b"first")], time.time() - 10)
    assert await storage.get(p, b"r") == b"new"
    assert await storage.get(q, b"r") == b"first"


async def test_put_rows_at_refuses_bad_rows_and_writes_none(storage: AppStorage, keys: Keys) -> None:
    p = keys(b"rows-bad")
    with pytest.raises(InvalidKeyError):
        await storage.put_rows_at([(p, b"a", b"1"), (b"", b"a", b"2")], time.time())
    assert await collect(storage, p) == []
