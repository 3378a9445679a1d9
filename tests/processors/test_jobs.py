"""Jobs: cron schedules, the app workspaces of a partition, runs driven by a manual clock."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.processors.conftest import Shop, shop_registry
from voedger.appdef import QName
from voedger.clock import ManualClock
from voedger.extensions import Registry
from voedger.processors.app import AppRuntime
from voedger.processors.jobs import CronSchedule, JobScheduler, app_workspaces_of_partition
from voedger.state import Intents, State
from voedger.structs.pending import Pending
from voedger.structs.rowcache import CachedRows
from voedger.structs.views import read_rows
from voedger.structs.wsid import app_wsid

HEARTBEAT = QName("shop", "Heartbeat")
START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
FIRST_RUN = 1_700_000_100.0  # 22:15:00, the first "*/5 * * * *" after START


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def runtime(shop: Shop, **overrides: Callable[..., Any]) -> AppRuntime:
    """The shop runtime on a manual clock, with some implementations replaced."""
    reg = Registry()
    for impl in shop_registry():
        reg.add(impl.kind, impl.qname, overrides.get(impl.qname.entity, impl.func))
    return dataclasses.replace(shop.runtime, impls=reg, clock=ManualClock(START))


async def heartbeats(rt: AppRuntime, wsid: int) -> list[int]:
    view = rt.appdef.view("shop.Heartbeats")
    return [r["UnixTime"] async for r in read_rows(Pending(rt.storage), view, wsid, {"Bucket": 0})]


def clock(rt: AppRuntime) -> ManualClock:
    assert isinstance(rt.clock, ManualClock)
    return rt.clock


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        ("*/5 * * * *", "2023-11-14T22:13:20", "2023-11-14T22:15:00"),
        ("1 0 * * *", "2024-01-01T00:01:00", "2024-01-02T00:01:00"),  # strictly after
        ("30 * * * * *", "2024-01-01T00:00:00", "2024-01-01T00:00:30"),  # seconds first, as robfig
        ("0 0 9 * * mon-fri", "2024-01-06T12:00:00", "2024-01-08T09:00:00"),
        ("0 0 ? * sun", "2024-01-01T00:00:00", "2024-01-07T00:00:00"),
        ("? * * * *", "2024-01-01T00:00:00", "2024-01-01T00:01:00"),
        ("@hourly", "2024-01-01T00:59:59", "2024-01-01T01:00:00"),
        ("@daily", "2024-01-01T00:00:00", "2024-01-02T00:00:00"),
        ("@every 2m30s", "2024-01-01T00:00:00.700", "2024-01-01T00:02:30"),
        ("@every 200ms", "2024-01-01T00:00:00", "2024-01-01T00:00:01"),  # at least a second
        ("TZ=Europe/Berlin 0 9 * * *", "2024-01-01T00:00:00", "2024-01-01T08:00:00"),
        ("CRON_TZ=America/New_York 0 9 * * *", "2024-07-01T00:00:00", "2024-07-01T13:00:00"),
    ],
)
def test_cron_schedule(spec: str, after: str, expected: str) -> None:
    assert CronSchedule(spec).next_after(ts(after)) == ts(expected)


@pytest.mark.parametrize("spec", ["blah", "* * * *", "61 * * * *", "@every", "@every 5x", "@sometimes"])
def test_invalid_cron_schedule(spec: str) -> None:
    with pytest.raises(ValueError):
        CronSchedule(spec)


def test_app_workspaces_of_partitions(shop: Shop) -> None:
    rt = shop.runtime
    assert (rt.num_partitions, rt.num_app_workspaces) == (2, 10)
    zero = app_workspaces_of_partition(rt, 0)
    one = app_workspaces_of_partition(rt, 1)
    assert zero == {app_wsid(1, n): n for n in (0, 2, 4, 6, 8)}
    assert one == {app_wsid(1, n): n for n in (1, 3, 5, 7, 9)}


async def test_job_runs_on_schedule_in_its_partitions_workspaces(shop: Shop) -> None:
    rt = runtime(shop)
    sched = JobScheduler(rt, 0)
    assert sched.jobs == (HEARTBEAT,)
    assert await sched.tick() == []
    assert sched.next_run(HEARTBEAT, app_wsid(1, 0)) == sched.next_due() == FIRST_RUN
    clock(rt).advance(99)
    assert await sched.tick() == []
    clock(rt).advance(1)
    runs = await sched.tick()
    assert [(r.job, r.wsid, r.unix_time, r.error) for r in runs] == [
        (HEARTBEAT, wsid, int(FIRST_RUN), None) for wsid in sorted(sched.workspaces)
    ]
    assert await sched.tick() == []  # once per scheduled time
    for wsid in sched.workspaces:
        assert await heartbeats(rt, wsid) == [int(FIRST_RUN)]
    assert await heartbeats(rt, app_wsid(1, 1)) == []  # partition 1's workspace

    clock(rt).advance(3600)  # twelve scheduled times missed: one run, as Voedger's timer does
    runs = await sched.tick()
    assert len(runs) == 5 and {r.unix_time for r in runs} == {int(FIRST_RUN) + 3600}
    assert sched.next_due() == FIRST_RUN + 3600 + 300


async def test_every_app_workspace_runs_once_over_all_partitions(shop: Shop) -> None:
    rt = runtime(shop)
    scheds = [JobScheduler(rt, pid) for pid in range(rt.num_partitions)]
    clock(rt).advance(FIRST_RUN - START)
    runs = [run for s in scheds for run in await s.tick()]
    assert sorted(r.wsid for r in runs) == sorted(app_wsid(1, n) for n in range(10))


async def test_failing_job_is_reported_and_runs_again_next_time(shop: Shop) -> None:
    broken = True

    def flaky(state: State, intents: Intents) -> None:
        if broken:
            raise RuntimeError("disk on fire")
        intents.put_view("shop.Heartbeats", Bucket=0, UnixTime=state.job_context.unix_time)

    rt = runtime(shop, Heartbeat=flaky)
    sched = JobScheduler(rt, 1)
    clock(rt).advance(FIRST_RUN - START)
    runs = await sched.tick()
    assert all(r.error is not None and "disk on fire" in r.error for r in runs) and len(runs) == 5
    assert sched.in_error == 5
    assert sched.last_success is None  # voedger_jobs_last_success_timestamp_seconds: none yet
    assert "disk on fire" in (sched.last_error(HEARTBEAT, app_wsid(1, 1)) or "")
    broken = False
    clock(rt).advance(300)
    assert all(r.error is None for r in await sched.tick())
    assert sched.in_error == 0
    assert sched.last_success == clock(rt).now()
    assert await heartbeats(rt, app_wsid(1, 1)) == [int(FIRST_RUN) + 300]


async def test_jobs_may_not_write_records(shop: Shop) -> None:
    def writer(state: State, intents: Intents) -> None:
        intents.insert("shop.Item", Name="from a job")

    rt = runtime(shop, Heartbeat=writer)
    sched = JobScheduler(rt, 0)
    runs = await sched.tick(FIRST_RUN)  # an explicit time, whatever the clock says
    assert runs and all("does not allow INSERT in JOBS" in (r.error or "") for r in runs)


async def test_scheduler_loop_follows_the_clock(shop: Shop) -> None:
    rt = runtime(shop)
    sched = JobScheduler(rt, 0, max_sleep=0.01)
    await sched.start()
    try:
        clock(rt).advance(FIRST_RUN - START)
        for _ in range(200):
            if await heartbeats(rt, app_wsid(1, 8)):
                break
            await asyncio.sleep(0.01)
        assert await heartbeats(rt, app_wsid(1, 8)) == [int(FIRST_RUN)]
    finally:
        await sched.stop()
    clock(rt).advance(300)
    await asyncio.sleep(0.05)
    assert await heartbeats(rt, app_wsid(1, 8)) == [int(FIRST_RUN)]  # stopped


async def test_jobs_without_implementation_do_not_run(shop: Shop) -> None:
    reg = Registry()
    for impl in shop_registry():
        if impl.qname != HEARTBEAT:
            reg.add(impl.kind, impl.qname, impl.func)
    rt = dataclasses.replace(shop.runtime, impls=reg, clock=ManualClock(START))
    sched = JobScheduler(rt, 0)
    assert sched.jobs == () and sched.invalid == {HEARTBEAT: "no implementation"}
    assert await sched.tick(FIRST_RUN + 3600) == []


async def test_a_jobs_writes_drop_the_rows_reads_kept(shop: Shop) -> None:
    rt = runtime(shop)
    sched = JobScheduler(rt, 0)
    wsid = sorted(sched.workspaces)[0]
    view = rt.appdef.view("shop.Heartbeats")

    async def cached() -> list[int]:  # as the query processor reads where the partition is written
        reader = Pending(CachedRows(rt.storage, rt.rows))
        return [r["UnixTime"] async for r in read_rows(reader, view, wsid, {"Bucket": 0})]

    assert await cached() == []
    hits = rt.rows.hits
    assert await cached() == []
    assert rt.rows.hits == hits + 1  # kept
    clock(rt).advance(FIRST_RUN - START)
    await sched.tick()
    assert await cached() == [int(FIRST_RUN)]
