"""Asynchronous projectors: catching up, following, restarts, retries, INCLUDING ERRORS, lag."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import struct
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from tests.processors.conftest import WS, Shop, shop_registry
from voedger.appdef import QName, StorageRef
from voedger.extensions import Registry
from voedger.processors.actualizers import (
    ActualizerConfig,
    Actualizers,
    AppFlushes,
    AsyncActualizer,
    load_offset,
)
from voedger.processors.app import AppRuntime
from voedger.processors.signal import CommitSignal
from voedger.state import Intents, State
from voedger.storage import InvalidKeyError
from voedger.storage.mem import MemAppStorage
from voedger.structs.events import SYS_ERROR, Event
from voedger.structs.keys import app_state_key
from voedger.structs.logs import put_plog
from voedger.structs.pending import Pending
from voedger.structs.views import read_rows

FAST = ActualizerConfig(flush_interval=0.01, poll_interval=0.2, retry_initial_delay=0.01, retry_max_delay=0.05)
ORDER_LOG = QName("shop", "OrderLogProjector")
FAILURES = QName("shop", "FailureProjector")


def with_impls(runtime: AppRuntime, **overrides: Callable[..., Any]) -> AppRuntime:
    """The shop runtime with some implementations replaced (keyword: the entity name) and no sys
    projectors, so that only the shop's asynchronous projectors run."""
    reg = Registry()
    for impl in shop_registry():
        reg.add(impl.kind, impl.qname, overrides.get(impl.qname.entity, impl.func))
    return dataclasses.replace(runtime, impls=reg, platform=Registry())


async def new_item(shop: Shop, ws: int = WS) -> int:
    body = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}}]}
    return (await shop.cmd(ws, "sys.CUD", body)).new_ids["1"]


async def order(shop: Shop, item: int, qty: int = 1, ws: int = WS) -> int:
    """Make an order; returns the PLog offset of its event."""
    await shop.cmd(ws, "shop.MakeOrder", {"args": {"sys.ID": 1, "Item": item, "Qty": qty}})
    return shop.partition(ws).next_plog - 1


async def logged(shop: Shop, item: int) -> list[int]:
    """The PLog offsets of the orders OrderLogProjector has recorded for an item."""
    view = shop.runtime.appdef.view("shop.OrderLog")
    return [r["PLogOffset"] async for r in read_rows(Pending(shop.storage), view, WS, {"Item": item})]


async def test_catches_up_from_zero_then_follows(shop: Shop) -> None:
    await shop.create_ws(WS)
    item = await new_item(shop)
    before = [await order(shop, item) for _ in range(3)]
    acts = Actualizers(with_impls(shop.runtime), shop.partitions, FAST)
    await acts.start()
    try:
        assert set(acts.projectors) >= {shop.runtime.appdef.projector(ORDER_LOG)}
        pid = acts.partition_of(WS)
        await acts.wait_for(pid, before[-1])
        assert await logged(shop, item) == before
        after = [await order(shop, item, qty=i) for i in range(2, 5)]
        await acts.wait_for(pid, after[-1], projector=ORDER_LOG)
        assert await logged(shop, item) == before + after
        await acts.wait_idle()
        assert acts.lag() == {ORDER_LOG: 0, FAILURES: 0}
        assert acts.in_error == 0
        a = acts.actualizer(ORDER_LOG, pid)
        assert await load_offset(shop.storage, pid, ORDER_LOG) == a.stored_offset == after[-1]
    finally:
        await acts.stop()


async def test_an_idle_actualizer_polls_without_reading_storage(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """The partition knows where its durable log ends: a follower that has handled it all
    polls for nothing, and still finds what comes next."""
    await shop.create_ws(WS)
    item = await new_item(shop)
    acts = Actualizers(with_impls(shop.runtime), shop.partitions, FAST)
    await acts.start()
    try:
        await acts.wait_idle()
        reads = 0
        real_read = MemAppStorage.read

        def counted(self: MemAppStorage, *args: Any) -> Any:
            nonlocal reads
            reads += 1
            return real_read(self, *args)

        monkeypatch.setattr(MemAppStorage, "read", counted)
        await asyncio.sleep(FAST.poll_interval * 4)  # each actualizer polls about four times
        assert reads == 0
        later = await order(shop, item)
        await acts.wait_for(acts.partition_of(WS), later, projector=ORDER_LOG)
        assert await logged(shop, item) == [later]
        # After a recovery (a failed write: storage is the truth) the log is read again.
        part = shop.partition(WS)
        await part.recover()
        assert part.recent_events(later + 1, 10) == [] and part.recent_events(later, 10) is None
    finally:
        await acts.stop()


async def test_events_no_projector_wants_move_an_idle_actualizer_on_without_waking_it(shop: Shop) -> None:
    await shop.create_ws(WS)
    acts = Actualizers(with_impls(shop.runtime), shop.partitions, FAST)
    await acts.start()
    try:
        pid = acts.partition_of(WS)
        await acts.wait_idle()
        a = acts.actualizer(ORDER_LOG, pid)
        examined = a.examined
        item = await new_item(shop)  # a sys.CUD: OrderLogProjector wants only MakeOrder
        await new_item(shop)
        last = shop.partition(WS).next_plog - 1
        assert a.offset == a.processed == last  # taken in at the commit itself
        assert a.examined == examined  # and the loop never went over them
        made = await order(shop, item)
        await acts.wait_for(pid, made, projector=ORDER_LOG)
        assert a.examined == examined + 1
        assert await logged(shop, item) == [made]
    finally:
        await acts.stop()


async def test_commit_signal_keeps_a_waiter_parked_while_its_skip_takes_the_events() -> None:
    signal = CommitSignal()
    seen: list[list[str]] = []

    def skip(events: Sequence[Any]) -> bool:
        seen.append(list(events))
        return "mine" not in events

    waiter = asyncio.create_task(signal.wait(5.0, skip))
    await asyncio.sleep(0)
    signal.notify(["other"])
    await asyncio.sleep(0)
    assert not waiter.done()
    signal.notify(["other", "mine"])
    await asyncio.wait_for(waiter, 1.0)
    assert seen == [["other"], ["other", "mine"]]
    plain = asyncio.create_task(signal.wait(5.0, skip))
    await asyncio.sleep(0)
    signal.notify()  # no events (a stop): every waiter wakes
    await asyncio.wait_for(plain, 1.0)


async def test_catch_up_reads_in_batches_and_flushes_rarely(shop: Shop) -> None:
    await shop.create_ws(WS)
    item = await new_item(shop)
    offsets = await asyncio.gather(*(order(shop, item) for _ in range(120)))
    acts = Actualizers(with_impls(shop.runtime), shop.partitions, dataclasses.replace(FAST, flush_interval=0.2))
    await acts.start()
    try:
        await acts.wait_idle()
        assert len(await logged(shop, item)) == 120
        a = acts.actualizer(ORDER_LOG, acts.partition_of(WS))
        assert a.offset == max(offsets)
        assert a.flushes <= 3  # 120 events in batches of 50, written together
    finally:
        await acts.stop()


async def test_restart_keeps_offset_and_loses_nothing(shop: Shop) -> None:
    await shop.create_ws(WS)
    item = await new_item(shop)
    calls: list[int] = []

    def counting(state: State, intents: Intents) -> None:
        calls.append(state.event.plog_offset)
        order_log = shop_registry().get("shop.OrderLogProjector")
        assert order_log is not None
        order_log.func(state, intents)

    first = [await order(shop, item) for _ in range(3)]
    acts = Actualizers(with_impls(shop.runtime, OrderLogProjector=counting), shop.partitions, FAST)
    await acts.start()
    await acts.wait_for(acts.partition_of(WS), first[-1])
    await acts.stop()
    assert calls == first

    more = [await order(shop, item) for _ in range(2)]  # while no actualizer runs
    shop2 = await shop.restart()
    try:
        acts2 = Actualizers(with_impls(shop2.runtime, OrderLogProjector=counting), shop2.partitions, FAST)
        await acts2.start()
        last = await order(shop2, item)
        await acts2.wait_for(acts2.partition_of(WS), last)
        await acts2.stop()
        assert calls == first + more + [last]  # the stored offset was kept: nothing handled twice
        assert await logged(shop2, item) == first + more + [last]
    finally:
        for p in shop2.partitions.values():
            await p.stop()


async def test_crash_before_flush_projects_again(shop: Shop) -> None:
    """Buffered writes lost in a crash are redone from the stored offset: at least once."""
    await shop.create_ws(WS)
    item = await new_item(shop)
    acts = Actualizers(with_impls(shop.runtime), shop.partitions, dataclasses.replace(FAST, flush_interval=30.0))
    await acts.start()
    a = acts.actualizer(ORDER_LOG, acts.partition_of(WS))
    first = await order(shop, item)
    await a.wait_for(first)  # the first writes are flushed at once
    offsets = [first] + [await order(shop, item) for _ in range(2)]
    for _ in range(200):
        if a.processed == offsets[-1]:
            break
        await asyncio.sleep(0.01)
    assert a.processed == offsets[-1] and a.offset == first  # handled, not durable
    for pid in acts.partitions:
        await acts.remove_partition(pid, abort=True)  # as a crash, or a lost lease
    assert await load_offset(shop.storage, a.partition.id, ORDER_LOG) == first
    assert await logged(shop, item) == [first]
    acts2 = Actualizers(with_impls(shop.runtime), shop.partitions, FAST)
    await acts2.start()
    try:
        await acts2.wait_for(acts2.partition_of(WS), offsets[-1])
        assert await logged(shop, item) == offsets
    finally:
        await acts2.stop()


async def test_retries_with_backoff_and_recovers(shop: Shop) -> None:
    await shop.create_ws(WS)
    item = await new_item(shop)
    attempts: list[float] = []
    broken = True
    loop = asyncio.get_running_loop()

    def flaky(state: State, intents: Intents) -> None:
        if (state.event.args or {}).get("Qty") == 13:
            attempts.append(loop.time())
            if broken:
                raise RuntimeError("unlucky order")
        intents.put_view("shop.OrderLog", Item=item, PLogOffset=state.event.plog_offset, Qty=1)

    good = await order(shop, item)
    bad = await order(shop, item, qty=13)
    after = await order(shop, item)
    config = dataclasses.replace(FAST, retry_initial_delay=0.02, retry_max_delay=0.08)
    acts = Actualizers(with_impls(shop.runtime, OrderLogProjector=flaky), shop.partitions, config)
    await acts.start()
    try:
        a = acts.actualizer(ORDER_LOG, acts.partition_of(WS))
        await a.wait_for(good)  # what came before the failing event is kept
        for _ in range(200):
            if len(attempts) >= 5:
                break
            await asyncio.sleep(0.01)
        assert a.in_error and acts.in_error == 1
        assert a.last_error is not None and "unlucky order" in a.last_error
        assert a.offset == good == bad - 1
        assert a.lag == after - good and acts.lag()[ORDER_LOG] == after - good
        gaps = [t2 - t1 for t1, t2 in itertools.pairwise(attempts)]
        assert gaps[0] >= 0.015 and gaps[2] >= 0.06  # 20 ms, 40 ms, 80 ms, ...
        assert a.retry_delay == config.retry_max_delay  # ... capped at 80 ms
        with pytest.raises(TimeoutError, match="unlucky order"):
            await a.wait_for(after, timeout=0.05)
        broken = False
        await a.wait_for(after)
        a = acts.actualizer(ORDER_LOG, acts.partition_of(WS))  # (mypy: the state has changed)
        assert not a.in_error and acts.in_error == 0 and a.lag == 0
        assert a.retry_delay == config.retry_initial_delay
        assert await logged(shop, item) == [good, bad, after]
    finally:
        await acts.stop()


class FakePartition:
    """A PLog writer that logs whatever events a test gives it (sys.Error ones too)."""

    def __init__(self, runtime: AppRuntime, partition_id: int = 0) -> None:
        self.runtime = runtime
        self.id = partition_id
        self.next_plog = 1
        self.groups = 0
        self.committed = CommitSignal()
        self.followers: set[Any] = set()

    def lease_valid(self) -> bool:
        return True

    async def log(self, qname: str, **fields: Any) -> int:
        event = Event(
            qname=qname,
            wsid=WS,
            partition=self.id,
            plog_offset=self.next_plog,
            wlog_offset=self.next_plog,
            registered_at=0,
            **fields,
        )
        writes = Pending(self.runtime.storage)
        put_plog(writes, event, event.encode())
        await self.runtime.storage.put_batch(writes.items())
        self.next_plog += 1
        self.groups += 1
        self.committed.notify()
        return event.plog_offset


async def test_error_events_reach_only_projectors_including_errors(shop: Shop) -> None:
    runtime = dataclasses.replace(with_impls(shop.runtime), storage=MemAppStorage(shop.runtime.clock))
    part = FakePartition(runtime)
    acts = Actualizers(runtime, [part], FAST)
    await acts.start()
    try:
        args = {"sys.QName": "shop.Order", "sys.ID": 200100, "Item": 200001, "Qty": 1}
        ok = await part.log("shop.MakeOrder", args=args)
        err = {"ErrStr": "bad order", "QNameFromParams": "shop.MakeOrder", "ValidEvent": False}
        failed = await part.log(SYS_ERROR, error=err)
        await part.log("sys.CUD")  # triggers neither
        await acts.wait_for(part.id, part.next_plog - 1)
        reader = Pending(runtime.storage)
        failures = runtime.appdef.view("shop.Failures")
        rows = [r async for r in read_rows(reader, failures, WS, {"Bucket": 0})]
        assert [(r["PLogOffset"], r.get("Error", "")) for r in rows] == [(ok, ""), (failed, "bad order")]
        order_log = runtime.appdef.view("shop.OrderLog")
        assert [r["PLogOffset"] async for r in read_rows(reader, order_log, WS, {"Item": 200001})] == [ok]
    finally:
        await acts.stop()


async def test_lag_while_a_projector_is_busy(shop: Shop) -> None:
    await shop.create_ws(WS)
    item = await new_item(shop)
    gate = asyncio.Event()

    async def slow(state: State, intents: Intents) -> None:
        await gate.wait()
        intents.put_view("shop.OrderLog", Item=item, PLogOffset=state.event.plog_offset)

    acts = Actualizers(with_impls(shop.runtime, OrderLogProjector=slow), shop.partitions, FAST)
    await acts.start()
    try:
        pid = acts.partition_of(WS)
        await acts.wait_idle()
        offsets = [await order(shop, item) for _ in range(4)]
        await asyncio.sleep(0.05)
        assert acts.lags()[(ORDER_LOG, pid)] == 4
        assert acts.lag()[ORDER_LOG] == 4
        gate.set()
        await acts.wait_for(pid, offsets[-1])
        assert acts.lag()[ORDER_LOG] == 0
    finally:
        gate.set()
        await acts.stop()


async def test_a_partition_keeps_decoded_events_only_until_its_followers_handled_them(shop: Shop) -> None:
    await shop.create_ws(WS)
    item = await new_item(shop)
    part = shop.partition(WS)
    await order(shop, item)
    assert not part.recent  # nobody follows: nothing is kept
    gate = asyncio.Event()
    seen: list[int] = []

    async def slow(state: State, intents: Intents) -> None:
        await gate.wait()
        seen.append(state.event.plog_offset)
        intents.put_view("shop.OrderLog", Item=item, PLogOffset=state.event.plog_offset)

    acts = Actualizers(with_impls(shop.runtime, OrderLogProjector=slow), shop.partitions, FAST)
    await acts.start()
    try:
        pid = acts.partition_of(WS)
        offsets = [await order(shop, item) for _ in range(3)]
        await asyncio.sleep(0.05)
        # The blocked projector has handled none of them: they stay, decoded.
        assert [e.plog_offset for e in part.recent][-3:] == offsets
        assert part.followers == {a for a in acts if a.partition is part}
        gate.set()
        await acts.wait_for(pid, offsets[-1])
        last = await order(shop, item)
        await acts.wait_for(pid, last)
        # Every follower had handled the earlier events when this one committed.
        assert [e.plog_offset for e in part.recent] == [last]
        assert seen[-4:] == [*offsets, last]
    finally:
        gate.set()
        await acts.stop()
    assert not part.followers


async def test_stop_flushes_what_is_buffered(shop: Shop) -> None:
    await shop.create_ws(WS)
    item = await new_item(shop)
    acts = Actualizers(with_impls(shop.runtime), shop.partitions, dataclasses.replace(FAST, flush_interval=30.0))
    await acts.start()
    pid = acts.partition_of(WS)
    await acts.wait_idle()
    a = acts.actualizer(ORDER_LOG, pid)
    first = await order(shop, item)  # flushed at once: nothing was for a long time
    await a.wait_for(first)
    second = await order(shop, item)  # buffered: the last flush was just now
    await asyncio.sleep(0.05)
    assert a.offset == first
    await acts.stop()
    assert await load_offset(shop.storage, pid, ORDER_LOG) == second
    assert await logged(shop, item) == [first, second]


async def test_partitions_come_and_go(shop: Shop) -> None:
    acts = Actualizers(with_impls(shop.runtime), config=FAST)
    await acts.start()
    served = [acts.partitions]
    await acts.add_partition(shop.partitions[0])
    await acts.add_partition(shop.partitions[0])  # once only
    served.append(acts.partitions)
    assert len(list(acts)) == len(acts.projectors)
    await acts.remove_partition(0)
    served.append(acts.partitions)
    assert served == [(), (0,), ()]
    await acts.stop()


async def test_projector_with_side_effects_stores_its_offset_after_each_event(shop: Shop) -> None:
    await shop.create_ws(WS)
    item = await new_item(shop)
    runtime = with_impls(shop.runtime)
    plain = runtime.appdef.projector(ORDER_LOG)
    mailer = dataclasses.replace(plain, states=(*plain.states, StorageRef(QName("sys", "AppSecret"))))
    part = shop.partition(WS)
    func = shop_registry().get(ORDER_LOG)
    assert func is not None
    slow = dataclasses.replace(FAST, flush_interval=30.0)
    buffered = AsyncActualizer(runtime, part, plain, func.func, slow)
    unbuffered = AsyncActualizer(runtime, part, mailer, func.func, slow)
    assert unbuffered.unbuffered and not buffered.unbuffered
    for a in (buffered, unbuffered):
        await a.start()
    try:
        await unbuffered.wait_for(part.next_plog - 1)
        await buffered.wait_for(part.next_plog - 1)
        first = await order(shop, item)
        await buffered.wait_for(first)  # the first writes are flushed at once, later ones wait
        offsets = [first] + [await order(shop, item) for _ in range(2)]
        await unbuffered.wait_for(offsets[-1])  # each event flushed at once
        assert unbuffered.stored_offset == offsets[-1] and unbuffered.flushes >= 3
        assert buffered.offset == first  # the others are still buffered
    finally:
        for a in (buffered, unbuffered):
            await a.stop()


Written = list[tuple[list[Any], float]]
"""The storage writes a test saw: (rows, time) each."""


def record_writes(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, then: Callable[[Sequence[Any], float], Any] | None = None
) -> Written:
    """Record every ``put_batch_at`` of the shop's storage; ``then``: called after recording
    (the real write, or one that fails)."""
    writes: Written = []

    async def recorded(items: Sequence[Any], at: float) -> None:
        writes.append((list(items), at))
        if then is not None:
            await then(items, at)

    monkeypatch.setattr(shop.storage, "put_batch_at", recorded)
    return writes


async def test_the_actualizers_of_every_partition_flush_in_one_write(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both of the shop's async projectors handle every order, in the two partitions; they
    flush on the same ticks, and what they flush at the same moment goes to storage as one
    batch, whatever their partitions."""
    ws2 = next(w for w in itertools.count(WS + 1) if shop.partition(w) is not shop.partition(WS))
    items = {}
    for ws in (WS, ws2):
        await shop.create_ws(ws)
        items[ws] = await new_item(shop, ws)
    writes = record_writes(shop, monkeypatch, then=shop.storage.put_batch_at)
    acts = Actualizers(with_impls(shop.runtime), shop.partitions, dataclasses.replace(FAST, flush_interval=0.05))
    await acts.start()
    try:
        pids = [acts.partition_of(ws) for ws in (WS, ws2)]
        each = [acts.actualizer(name, pid) for pid in pids for name in (ORDER_LOG, FAILURES)]
        assert all(a.writer is acts.writer for a in each)
        offsets: dict[int, list[int]] = {WS: [], ws2: []}
        for _ in range(6):
            for ws in (WS, ws2):
                offsets[ws].append(await order(shop, items[ws], ws=ws))
            await asyncio.sleep(0.03)
        for ws, pid in zip((WS, ws2), pids, strict=True):
            await acts.wait_for(pid, offsets[ws][-1])
        assert await logged(shop, items[WS]) == offsets[WS]
        writer = acts.writer
        assert writer.flushes == sum(a.flushes for a in each)
        # Every flush went with the others of its tick (one may have been apart: the timers of
        # a tick firing further apart than the gathering waits, on a busy machine).
        assert writer.writes <= writer.flushes // 4 + 2, (writer.writes, writer.flushes)
        # Writes with the rows of all four: each projector's offset row of each partition.
        rows = [app_state_key("projoffs", struct.pack(">H", pid)) for pid in pids]
        together = [w for w, _ in writes if all(sum(1 for p, _, _ in w if p == row) == 2 for row in rows)]
        assert together, [sorted({p for p, _, _ in w}) for w, _ in writes]
    finally:
        await acts.stop()


async def test_flushes_that_come_while_a_write_is_under_way_go_together_in_the_next(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One write under way at a time: the flushes that come meanwhile, at any moment, wait for
    it and then go as one."""
    slow = asyncio.Event()

    async def slowly(items: Sequence[Any], at: float) -> None:
        if len(writes) == 1:
            await slow.wait()

    writes = record_writes(shop, monkeypatch, then=slowly)
    flushes = AppFlushes(shop.runtime)
    a, b, c = (b"p1", b"c", b"a"), (b"p2", b"c", b"b"), (b"p3", b"c", b"c")
    first = asyncio.ensure_future(flushes.write([a], 1.0))
    await asyncio.sleep(0.02)  # the first write is under way
    assert [items for items, _ in writes] == [[a]]
    later = [asyncio.ensure_future(flushes.write([b], 2.0))]
    await asyncio.sleep(0.02)  # well after the gathering of b's moment
    later.append(asyncio.ensure_future(flushes.write([c], 3.0)))
    await asyncio.sleep(0.02)
    assert len(writes) == 1 and not any(f.done() for f in later)
    slow.set()
    await asyncio.gather(first, *later)
    assert writes == [([a], 1.0), ([b, c], 2.0)]
    assert (flushes.writes, flushes.flushes) == (2, 3)


async def test_a_write_refused_as_invalid_is_tried_flush_by_flush(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """One projector's row that storage refuses fails that projector's flush alone."""
    bad = (b"p1", b"c", b"too large")

    async def refusing(items: Sequence[Any], at: float) -> None:
        if bad in items:
            raise InvalidKeyError("the value is too large")

    writes = record_writes(shop, monkeypatch, then=refusing)
    flushes = AppFlushes(shop.runtime)
    a, c = (b"p0", b"c", b"a"), (b"p2", b"c", b"c")
    results = await asyncio.gather(
        flushes.write([a], 1.0), flushes.write([bad], 2.0), flushes.write([c], 3.0), return_exceptions=True
    )
    assert [type(r) for r in results] == [type(None), InvalidKeyError, type(None)]
    # Together first, then each alone at its own time.
    assert writes == [([a, bad, c], 1.0), ([a], 1.0), ([bad], 2.0), ([c], 3.0)]
    assert (flushes.writes, flushes.flushes) == (4, 3)


async def test_flushes_writing_the_same_row_go_one_after_the_other(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = record_writes(shop, monkeypatch)
    flushes = AppFlushes(shop.runtime)
    a, b, c = (b"p1", b"c", b"a"), (b"p2", b"c", b"b"), (b"p1", b"c", b"c")
    await asyncio.gather(flushes.write([a], 3.0), flushes.write([b], 2.0), flushes.write([c], 4.0))
    # a and b together at the earlier time; c writes a's row again: after them, at its own time.
    assert writes == [([a, b], 2.0), ([c], 4.0)]
    assert (flushes.writes, flushes.flushes) == (2, 3)


async def test_a_failed_write_fails_every_flush_in_it_and_a_cancelled_one_is_not_written(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(items: Sequence[Any], at: float) -> None:
        raise OSError("storage is down")

    written = record_writes(shop, monkeypatch, then=failing)
    flushes = AppFlushes(shop.runtime)
    cancelled = asyncio.ensure_future(flushes.write([(b"p0", b"c", b"x")], 1.0))
    first = asyncio.ensure_future(flushes.write([(b"p1", b"c", b"y")], 1.0))
    second = asyncio.ensure_future(flushes.write([(b"p2", b"c", b"z")], 1.0))
    await asyncio.sleep(0)  # the three are queued
    cancelled.cancel()
    results = await asyncio.gather(first, second, cancelled, return_exceptions=True)
    assert [type(r) for r in results] == [OSError, OSError, asyncio.CancelledError]
    assert [items for items, _ in written] == [[(b"p1", b"c", b"y"), (b"p2", b"c", b"z")]]


async def test_a_flush_alone_goes_at_once_without_waiting_for_company(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = record_writes(shop, monkeypatch)
    flushes = AppFlushes(shop.runtime)
    a, b, c = (b"p1", b"c", b"a"), (b"p2", b"c", b"b"), (b"p3", b"c", b"c")
    gathered = asyncio.ensure_future(flushes.write([a], 1.0))
    await asyncio.sleep(0)  # queued: waits for the others of its moment
    await flushes.write([b], 1.0, alone=True)
    assert [items for items, _ in writes] == [[b]]
    await asyncio.gather(gathered, flushes.write([c], 1.0))
    assert [items for items, _ in writes] == [[b], [a, c]]


async def test_a_flush_cancelled_during_a_refused_write_is_not_written_alone_after_it(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad, c = (b"p1", b"c", b"too large"), (b"p2", b"c", b"c")
    flushes = AppFlushes(shop.runtime)
    tasks: list[asyncio.Future[None]] = []

    async def cancel_then_refuse(items: Sequence[Any], at: float) -> None:
        if len(items) == 2:
            tasks[0].cancel()  # its actualizer aborted while the write was under way
        if bad in items:
            raise InvalidKeyError("the value is too large")

    writes = record_writes(shop, monkeypatch, then=cancel_then_refuse)
    tasks += [asyncio.ensure_future(flushes.write([c], 2.0)), asyncio.ensure_future(flushes.write([bad], 1.0))]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r) for r in results] == [asyncio.CancelledError, InvalidKeyError]
    assert writes == [([c, bad], 1.0), ([bad], 1.0)]
