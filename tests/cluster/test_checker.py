"""The history checker finds what it is there to find: each test breaks one rule in an
otherwise consistent synthetic run (``synthetic.py``, ``mem://`` storage) and expects that
violation, and a clean run passes. Unit tier: no server, no Cassandra."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.cluster import checker
from tests.cluster.checker import (
    APP_DIR,
    APP_NAME,
    COUNT_PROJECTOR,
    Report,
    StoredState,
    ack_gap,
    check,
    settled_snapshot,
    snapshot,
)
from tests.cluster.history import ACKED, NOT_CONNECTED, PENDING, REFUSED, UNKNOWN, Attempt, History, classify
from tests.cluster.synthetic import Synthetic
from voedger.appdef import AppDef
from voedger.processors.actualizers import put_offset
from voedger.storage import open_storage
from voedger.structs.keys import plog_key, record_key, wlog_key
from voedger.structs.pending import Pending
from voedger.vvm.image import load_image


@pytest.fixture(scope="module")
def appdef() -> AppDef:
    return load_image(APP_NAME, APP_DIR).appdef


@pytest.fixture
def run(appdef: AppDef) -> Synthetic:
    return Synthetic(appdef)


async def verify(run: Synthetic, catch_up_timeout: float = 0.0) -> Report:
    storage = await run.storage()
    state = await snapshot(storage, run.appdef, run.wsids, run.num_partitions, catch_up_timeout)
    return check(run.history, state)


def only(report: Report, *kinds: str) -> None:
    assert report.kinds() == set(kinds), report.summary()


# --- a clean run ---------------------------------------------------------------------------------


async def test_a_consistent_run_passes(run: Synthetic) -> None:
    run.run(per_workspace=6)
    report = await verify(run)
    assert report.ok, report.summary()
    assert report.stats["LoadItems in the WLogs"] == 6 * run.workspaces
    assert report.stats["workspaces with LoadItems"] == run.workspaces
    assert report.stats["failed requests"] == 0


async def test_unknown_and_refused_commands_that_are_absent_pass(run: Synthetic) -> None:
    run.run()
    wsid = run.wsids[0]
    run.command(wsid, "unknown-landed", UNKNOWN, 503)
    run.attempt(wsid, "unknown-lost", UNKNOWN, None)
    run.attempt(wsid, "refused", REFUSED, 400)
    run.attempt(wsid, "in-flight", PENDING, None)
    report = await verify(run)
    assert report.ok, report.summary()
    assert report.stats["by outcome"] == {ACKED: 20, UNKNOWN: 2, REFUSED: 1, PENDING: 1}


# --- commands against the history ----------------------------------------------------------------


async def test_a_lost_acknowledged_command_is_found(run: Synthetic) -> None:
    run.run()
    run.attempt(run.wsids[1], "acked-but-lost", ACKED, 200, wlog_offset=99, new_id=299999)
    report = await verify(run)
    only(report, checker.LOST)
    assert "acked-but-lost" in report.violations[0].detail


@pytest.mark.parametrize("outcome", [ACKED, UNKNOWN])
async def test_a_command_applied_twice_is_found(run: Synthetic, outcome: str) -> None:
    run.run()
    wsid = run.wsids[2]
    run.command(wsid, "twice", outcome, 200 if outcome == ACKED else None)
    again = run.event(wsid, "twice")  # e.g. a retry under the same token, or two writers
    run.write(again)
    run.count(again)
    report = await verify(run)
    only(report, checker.DUPLICATE)


async def test_a_refused_command_found_in_the_log_is_found(run: Synthetic) -> None:
    run.run()
    run.command(run.wsids[0], "refused-but-there", REFUSED, 409)
    only(await verify(run), checker.REFUSED_APPLIED)


async def test_an_answer_naming_another_offset_or_id_is_found(run: Synthetic) -> None:
    run.run()
    run.command(run.wsids[3], "moved")
    run.history.attempts[-1].wlog_offset = 1
    only(await verify(run), checker.MISPLACED)


async def test_a_command_nobody_sent_is_found(run: Synthetic) -> None:
    run.run()
    e = run.event(run.wsids[1], "phantom")
    run.write(e)
    run.count(e)
    only(await verify(run), checker.PHANTOM)


async def test_a_token_sent_twice_is_a_broken_history(run: Synthetic) -> None:
    run.run()
    run.attempt(run.wsids[0], run.history.attempts[0].token, REFUSED, 400)
    assert checker.HISTORY in (await verify(run)).kinds()


# --- logs ----------------------------------------------------------------------------------------


async def test_a_skipped_wlog_offset_is_found_and_what_follows_is_still_read(run: Synthetic) -> None:
    run.run()
    wsid = run.wsids[0]
    run.next_wlog[wsid] += 1  # a writer that skips an offset
    run.command(wsid, "after-the-gap")
    report = await verify(run)
    only(report, checker.WLOG_GAP)  # not also "lost": the event after the gap is read
    assert f"workspace {wsid}" in report.violations[0].detail


async def test_a_wlog_entry_under_the_wrong_key_is_found(run: Synthetic) -> None:
    run.run()
    wsid = run.wsids[1]
    e = run.event(wsid, "misfiled")
    run.write(e, wlog=False)
    run.rows[wlog_key(wsid, e.wlog_offset)] = run.rows[wlog_key(wsid, 1)]  # another event's bytes
    run.count(e)
    report = await verify(run)
    assert checker.WLOG_MISMATCH in report.kinds(), report.summary()


async def test_a_skipped_plog_offset_is_found(run: Synthetic) -> None:
    run.run()
    wsid = run.wsids[2]
    partition = wsid % run.num_partitions
    run.next_plog[partition] += 1
    run.command(wsid, "after-plog-gap")
    report = await verify(run)
    only(report, checker.PLOG_GAP)
    assert f"partition {partition}" in report.violations[0].detail


async def test_an_event_missing_from_the_plog_is_found(run: Synthetic) -> None:
    run.run()
    e = run.event(run.wsids[1], "wlog-only")
    run.next_plog[e.partition] -= 1  # its PLog offset was never used: no gap, just no entry
    run.write(e, plog=False)
    run.attempt(e.wsid, "wlog-only", ACKED, 200, wlog_offset=e.wlog_offset, new_id=e.cuds[0].id)
    run.count(e)
    report = await verify(run)
    assert checker.PLOG_MISMATCH in report.kinds(), report.summary()
    assert "is in no PLog" in report.summary()


async def test_one_wlog_event_written_twice_to_the_plog_is_found(run: Synthetic) -> None:
    """Two writers of one partition (a fenced one that went on): the same WLog offset twice."""
    run.run()
    e = run.command(run.wsids[0], "two-epochs")
    twice = dataclasses.replace(e, plog_offset=run.next_plog[e.partition])
    run.next_plog[e.partition] += 1
    run.rows[plog_key(twice.partition, twice.plog_offset)] = twice.encode()
    run.projected[e.partition] = twice.plog_offset
    report = await verify(run)
    only(report, checker.PLOG_MISMATCH)
    assert f"both workspace {e.wsid} WLog offset {e.wlog_offset}" in report.violations[0].detail


async def test_an_event_in_another_partitions_plog_is_found(run: Synthetic) -> None:
    run.run()
    wsid = run.wsids[0]
    e = run.event(wsid, "wrong-partition")
    wrong = (e.partition + 1) % run.num_partitions
    run.rows[plog_key(wrong, run.next_plog[wrong])] = e.encode()
    run.next_plog[wrong] += 1
    run.next_plog[e.partition] -= 1
    run.write(e, plog=False)
    run.attempt(wsid, "wrong-partition", ACKED, 200, wlog_offset=e.wlog_offset, new_id=e.cuds[0].id)
    run.count(e)
    report = await verify(run)
    assert checker.PLOG_MISMATCH in report.kinds(), report.summary()


# --- records and IDs -----------------------------------------------------------------------------


async def test_a_record_id_given_twice_is_found(run: Synthetic) -> None:
    run.run()
    wsid = run.wsids[1]
    first = run.command(wsid, "first")
    e = run.event(wsid, "same-id", record_id=first.cuds[0].id)
    run.write(e)
    run.attempt(wsid, "same-id", ACKED, 200, wlog_offset=e.wlog_offset, new_id=e.cuds[0].id)
    run.count(e)
    report = await verify(run)
    assert checker.ID_REUSED in report.kinds(), report.summary()


async def test_a_missing_record_is_found(run: Synthetic) -> None:
    run.run()
    e = run.command(run.wsids[2], "no-record")
    del run.rows[record_key(e.wsid, e.cuds[0].id)]
    only(await verify(run), checker.RECORD_MISMATCH)


async def test_a_record_without_its_event_is_found(run: Synthetic) -> None:
    run.run()
    e = run.event(run.wsids[2], "orphan")
    run.write(e, plog=False, wlog=False)
    run.next_plog[e.partition] -= 1
    run.next_wlog[e.wsid] -= 1
    report = await verify(run)
    only(report, checker.RECORD_MISMATCH)
    assert "no event created it" in report.violations[0].detail


# --- the view ------------------------------------------------------------------------------------


async def test_an_event_counted_twice_is_found(run: Synthetic) -> None:
    run.run()
    run.counted[run.wsids[0]] += 1
    report = await verify(run)
    only(report, checker.VIEW_COUNT)
    assert "counted twice" in report.violations[0].detail


async def test_an_event_skipped_by_the_projector_is_found(run: Synthetic) -> None:
    run.run()
    run.counted[run.wsids[3]] -= 1
    report = await verify(run)
    only(report, checker.VIEW_COUNT)
    assert "skipped" in report.violations[0].detail


async def test_a_workspace_without_its_counter_is_found(run: Synthetic) -> None:
    run.run()
    del run.counted[run.wsids[1]]
    only(await verify(run), checker.VIEW_COUNT)


async def test_a_projector_behind_is_reported_as_such_not_as_wrong_counts(run: Synthetic) -> None:
    run.run()
    e = run.event(run.wsids[0], "not-yet-counted")
    run.write(e)
    run.attempt(e.wsid, "not-yet-counted", ACKED, 200, wlog_offset=e.wlog_offset, new_id=e.cuds[0].id)
    report = await verify(run, catch_up_timeout=0.0)
    only(report, checker.NOT_CAUGHT_UP)


async def test_snapshot_waits_for_the_projector(run: Synthetic) -> None:
    """A projector that catches up while the snapshot waits passes."""
    run.run()
    storage = await run.storage()
    partition = run.wsids[0] % run.num_partitions
    behind = Pending(storage)
    put_offset(behind, partition, COUNT_PROJECTOR, 1)
    await storage.put_batch(behind.items())

    async def catch_up() -> None:
        await asyncio.sleep(0.7)
        writes = Pending(storage)
        put_offset(writes, partition, COUNT_PROJECTOR, run.projected[partition])
        await storage.put_batch(writes.items())

    task = asyncio.create_task(catch_up())
    state = await snapshot(storage, run.appdef, run.wsids, run.num_partitions, catch_up_timeout=10)
    await task
    assert check(run.history, state).ok


async def test_a_storage_still_changing_is_read_again_until_it_settles(run: Synthetic) -> None:
    """A group half written when first read (its WLog row there, its PLog row not yet) is
    judged once the write has finished."""
    run.run()
    e = run.command(run.wsids[1], "late-plog-row")
    late = plog_key(e.partition, e.plog_offset)
    row = run.rows.pop(late)
    storage = await run.storage()

    async def finish_write() -> None:
        await asyncio.sleep(0.5)
        await storage.put(*late, row)

    task = asyncio.create_task(finish_write())
    first = await snapshot(storage, run.appdef, run.wsids, run.num_partitions, 0.0)
    assert checker.PLOG_MISMATCH in check(run.history, first).kinds()
    state, settled = await settled_snapshot(
        storage, run.appdef, run.wsids, run.num_partitions, 0.0, interval=1.0, timeout=10.0
    )
    await task
    assert settled
    report = check(run.history, state, settled)
    assert report.ok, report.summary()


async def test_a_storage_that_never_settles_is_reported(run: Synthetic) -> None:
    run.run()
    storage = await run.storage()
    stop = asyncio.Event()

    async def keep_writing() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            e = run.event(run.wsids[0], f"late-{n}")
            run.attempt(e.wsid, f"late-{n}", UNKNOWN, None)
            await storage.put(*wlog_key(e.wsid, e.wlog_offset), e.encode(with_extra=False))
            await storage.put(*plog_key(e.partition, e.plog_offset), e.encode())
            await asyncio.sleep(0.1)

    task = asyncio.create_task(keep_writing())
    state, settled = await settled_snapshot(
        storage, run.appdef, run.wsids, run.num_partitions, 0.0, interval=0.3, timeout=1.0
    )
    stop.set()
    await task
    assert not settled
    assert checker.NOT_SETTLED in check(run.history, state, settled).kinds()


# --- reading storage -----------------------------------------------------------------------------


async def test_cracked_logs_are_read_across_storage_partitions_and_gaps() -> None:
    provider = open_storage("mem://")
    storage = await provider.app_storage(APP_NAME)
    wsid = 7
    for offset in (1, 2, 8193):  # 8193 is two storage partitions on, past an empty one
        await storage.put(*wlog_key(wsid, offset), b"x")
    rows = await checker._read_cracked(storage, wlog_key, wsid, 0, 8193)
    assert sorted(rows) == [1, 2, 8193]
    assert sorted(await checker._read_cracked(storage, wlog_key, wsid, 0, 0)) == [1, 2]


# --- the history ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (200, None, ACKED),
        (201, None, ACKED),
        (400, None, REFUSED),
        (404, None, REFUSED),
        (429, None, REFUSED),
        (408, None, UNKNOWN),
        (500, None, UNKNOWN),
        (503, None, UNKNOWN),
        (None, NOT_CONNECTED, REFUSED),
        (None, "ReadTimeout", UNKNOWN),
        (None, "RemoteProtocolError", UNKNOWN),
    ],
)
def test_classify(status: int | None, error: str | None, outcome: str) -> None:
    assert classify(status, error) == outcome


def _acks(*ends: float) -> History:
    h = History(load_started=0.0, load_ended=10.0)
    for n, end in enumerate(ends):
        h.add(Attempt(n, 1, f"t{n}", "p0", 1, end - 0.1, end, 200, ACKED))
    h.add(Attempt(99, 1, "t99", "p0", 1, 4.0, 8.5, None, UNKNOWN, error="ReadTimeout"))
    return h


def test_ack_gap_overall_and_after_a_moment() -> None:
    h = _acks(0.5, 1.0, 1.5, 6.0, 6.5, 9.9)
    gap = ack_gap(h)
    assert (gap.start, gap.end) == (1.5, 6.0)
    after = ack_gap(h, since=6.2)
    assert (after.start, after.end) == (6.5, 9.9)
    assert ack_gap(_acks(), since=2.0).length == pytest.approx(8.0)  # no ack at all: the whole window


def test_failed_requests_are_those_never_acknowledged() -> None:
    h = History()
    h.add(Attempt(1, 1, "a1", "p0", 1, 0.0, 1.0, 503, UNKNOWN, retry_after=1.0))
    h.add(Attempt(1, 2, "a2", "p1", 1, 1.0, 2.0, 200, ACKED))
    h.add(Attempt(2, 1, "b1", "p0", 1, 0.0, 1.0, None, REFUSED, error=NOT_CONNECTED))
    h.add(Attempt(2, 2, "b2", "p1", 1, 1.0, 2.0, None, UNKNOWN, error="ReadError"))
    assert [[a.token for a in tries] for tries in h.failed_requests()] == [["b1", "b2"]]
    assert h.by_status() == {"503": 1, "200": 1, NOT_CONNECTED: 1, "ReadError": 1}


def test_history_survives_json() -> None:
    h = _acks(1.0, 2.0)
    h.mark("kill p1")
    again = History.from_json(h.to_json())
    assert again.attempts == h.attempts
    assert again.marks == h.marks
    assert (again.load_started, again.load_ended) == (0.0, 10.0)


def test_stored_state_defaults_are_empty() -> None:
    report = check(History(), StoredState(num_partitions=2))
    assert report.ok, report.summary()
