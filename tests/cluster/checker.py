"""The history checker: reads an application's storage back and verifies a load's history.

Two steps, so that the verification itself is a pure function a unit test can feed by hand:

1. :func:`snapshot` reads, straight from storage (no server involved), the PLog of every
   partition, the WLog of every application workspace, the LoadItem records and the
   ``LoadCount`` view rows, after waiting (bounded) for the async projector to catch up with the
   last event it has to count. Logs are read row by row over whole storage partitions, not with
   ``read_wlog``, which stops at the first gap and would hide what comes after one.
2. :func:`check` compares that :class:`StoredState` with the :class:`History`:

   - every acknowledged command (2xx) is in exactly one event, where its answer said
     (workspace, WLog offset, new ID); a refused one (4xx) in none; an unknown one in at most one;
     no command is in the log that nobody sent;
   - every workspace's WLog offsets run 1..n, and each entry is the event its key names;
   - every partition's PLog offsets run 1..n, each entry belongs to that partition, and the PLog
     and the WLogs hold the same events, each once;
   - no record ID is created twice in a workspace, and every LoadItem is stored as the event
     created it (no record without its event);
   - each workspace's counter equals the number of LoadItems in its WLog (no event counted twice
     or skipped), once the projector has caught up.

Violations are reported, not raised, so that one run shows every kind it found.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.cluster.history import ACKED, PENDING, REFUSED, UNKNOWN, Attempt, History
from voedger.appdef import AppDef, QName
from voedger.processors.actualizers import load_offset
from voedger.storage import AppStorage
from voedger.structs.events import Event
from voedger.structs.ids import FIRST_USER_RECORD_ID
from voedger.structs.keys import CRACK_BITS, offset_from_key, plog_key, record_key, wlog_key
from voedger.structs.pending import Pending
from voedger.structs.views import get_row
from voedger.structs.wsid import partition_of

APP_DIR = Path(__file__).parent / "app"
APP_NAME = "harness/loadtest"
"""The load application (``app/``) and the name the harness deploys it under."""
LOAD_ITEM = "loadtest.LoadItem"
LOAD_COUNT = "loadtest.LoadCount"
COUNT_PROJECTOR = QName("loadtest", "CountLoad")
COUNT_KEY = {"Part": 0, "Kind": 0}

# Kinds of violation (``Violation.kind``).
LOST = "lost"
"""An acknowledged command is in no event."""
DUPLICATE = "duplicate"
"""A command (token) is in more than one event or LoadItem."""
REFUSED_APPLIED = "refused-applied"
"""A command answered 4xx is in the log."""
MISPLACED = "misplaced"
"""An acknowledged command is in the log, but not where its answer said."""
PHANTOM = "phantom"
"""A LoadItem whose token no attempt of the history sent."""
WLOG_GAP = "wlog-gap"
WLOG_MISMATCH = "wlog-mismatch"
"""A WLog entry whose event names another workspace or offset than its key."""
PLOG_GAP = "plog-gap"
PLOG_MISMATCH = "plog-mismatch"
"""A PLog entry in the wrong partition or at the wrong offset, or PLog and WLog disagreeing."""
ID_REUSED = "id-reused"
RECORD_MISMATCH = "record-mismatch"
"""A LoadItem record missing, different from its event, or stored without an event."""
VIEW_COUNT = "view-count"
NOT_CAUGHT_UP = "not-caught-up"
"""The projector's stored offset never reached the last event it must count."""
NOT_SETTLED = "not-settled"
"""Storage kept changing after the load: the state judged may be a moment of a write."""
HISTORY = "history"
"""The history itself is inconsistent (a token used twice): a bug of the load generator."""


@dataclass(frozen=True)
class Violation:
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.detail}"


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def kinds(self) -> set[str]:
        return {v.kind for v in self.violations}

    def add(self, kind: str, detail: str) -> None:
        self.violations.append(Violation(kind, detail))

    def summary(self, limit: int = 30) -> str:
        """The stats and the first ``limit`` violations, for an assertion message."""
        lines = [f"{k}: {v}" for k, v in self.stats.items()]
        if self.violations:
            by_kind = Counter(v.kind for v in self.violations)
            lines.append(f"{len(self.violations)} violation(s): {dict(by_kind)}")
            lines += [f"  {v}" for v in self.violations[:limit]]
            if len(self.violations) > limit:
                lines.append(f"  ... and {len(self.violations) - limit} more")
        else:
            lines.append("no violations")
        return "\n".join(lines)


@dataclass
class StoredState:
    """What the storage holds, read back; the checker's view of the application."""

    num_partitions: int
    wlogs: dict[int, dict[int, Event]] = field(default_factory=dict)
    """Workspace -> offset in the row's key -> the event stored there."""
    plogs: dict[int, dict[int, Event]] = field(default_factory=dict)
    """Partition -> offset in the row's key -> the event stored there."""
    records: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    """Workspace -> record ID -> the record (LoadItems only)."""
    counts: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    """Workspace -> its ``LoadCount`` row (None: no row)."""
    projected: dict[int, int] = field(default_factory=dict)
    """Partition -> the counting projector's stored offset."""

    def digest(self) -> bytes:
        """Everything read, as bytes: two snapshots with equal digests saw the same storage."""
        parts: list[Any] = [
            sorted((w, o, e.encode()) for w, events in self.wlogs.items() for o, e in events.items()),
            sorted((p, o, e.encode()) for p, events in self.plogs.items() for o, e in events.items()),
            sorted(
                (w, i, orjson.dumps(r, option=orjson.OPT_SORT_KEYS))
                for w, rs in self.records.items()
                for i, r in rs.items()
            ),
            sorted((w, orjson.dumps(r, option=orjson.OPT_SORT_KEYS)) for w, r in self.counts.items()),
            sorted(self.projected.items()),
        ]
        return hashlib.sha256(repr(parts).encode()).digest()


@dataclass(frozen=True)
class Placement:
    """Where a LoadItem was found: its event's workspace and WLog offset, and its record ID."""

    wsid: int
    wlog_offset: int
    record_id: int


@dataclass(frozen=True)
class Gap:
    """The longest stretch without an acknowledgement."""

    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


# --- reading storage -----------------------------------------------------------------------------


_ENTRIES_END = (1 << CRACK_BITS).to_bytes(2, "big")


async def _read_cracked(
    storage: AppStorage, key: Callable[[int, int], tuple[bytes, bytes]], owner: int, first_hi: int, last: int
) -> dict[int, bytes]:
    """Every row of a cracked sequence (a log or record IDs), gaps included: whole storage
    partitions from ``first_hi`` on, up to the one holding ``last`` and then until an empty one."""
    rows: dict[int, bytes] = {}
    hi = first_hi
    while True:
        p_key, _ = key(owner, hi << CRACK_BITS)
        found = False
        # Entries only: a PLog chunk also holds its fencing head, above every entry's column.
        async for c_col, value in storage.read(p_key, b"", _ENTRIES_END):
            rows[offset_from_key(p_key, c_col)] = value
            found = True
        if not found and (hi << CRACK_BITS) > last:
            return rows
        hi += 1


def load_items(event: Event) -> list[tuple[int, str | None]]:
    """The LoadItems an event creates: (record ID, token)."""
    return [(c.id, c.fields.get("Token")) for c in event.cuds if c.is_new and c.qname == LOAD_ITEM]


def projection_targets(state: StoredState) -> dict[int, int]:
    """Per partition, the PLog offset of the last event the counting projector must handle."""
    targets: dict[int, int] = {}
    for partition, events in state.plogs.items():
        counted = [offset for offset, e in events.items() if load_items(e)]
        if counted:
            targets[partition] = max(counted)
    return targets


async def read_projected(storage: AppStorage, partitions: Iterable[int]) -> dict[int, int]:
    return {p: await load_offset(storage, p, COUNT_PROJECTOR) for p in partitions}


async def snapshot(
    storage: AppStorage,
    appdef: AppDef,
    wsids: Iterable[int],
    num_partitions: int,
    catch_up_timeout: float = 30.0,
) -> StoredState:
    """Read the application's logs, records and counters (see the module's docstring).

    Waits up to ``catch_up_timeout`` seconds for the counting projector to reach, in every
    partition, the last event that creates a LoadItem; a projector still behind then is reported
    by :func:`check` (``not-caught-up``), not here.
    """
    state = StoredState(num_partitions)
    wsids = list(wsids)
    for partition in range(num_partitions):
        raw = await _read_cracked(storage, plog_key, partition, 0, 0)
        state.plogs[partition] = {offset: Event.decode(value) for offset, value in raw.items()}
    last_wlog: dict[int, int] = defaultdict(int)
    for events in state.plogs.values():
        for e in events.values():
            last_wlog[e.wsid] = max(last_wlog[e.wsid], e.wlog_offset)
    for wsid in wsids:
        raw = await _read_cracked(storage, wlog_key, wsid, 0, last_wlog[wsid])
        state.wlogs[wsid] = {offset: Event.decode(value) for offset, value in raw.items()}
        ids = [rid for e in state.wlogs[wsid].values() for rid, _ in load_items(e)]
        stored = await _read_cracked(storage, record_key, wsid, FIRST_USER_RECORD_ID >> CRACK_BITS, max(ids or [0]))
        records = (orjson.loads(v) for v in stored.values())
        state.records[wsid] = {r["sys.ID"]: r for r in records if r.get("sys.QName") == LOAD_ITEM}

    targets = projection_targets(state)
    deadline = time.monotonic() + catch_up_timeout
    while True:
        state.projected = await read_projected(storage, range(num_partitions))
        behind = [p for p, target in targets.items() if state.projected[p] < target]
        if not behind or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)

    view = appdef.view(LOAD_COUNT)
    reader = Pending(storage)
    for wsid in wsids:
        state.counts[wsid] = await get_row(reader, view, wsid, COUNT_KEY)
    return state


async def settled_snapshot(
    storage: AppStorage,
    appdef: AppDef,
    wsids: Iterable[int],
    num_partitions: int,
    catch_up_timeout: float = 30.0,
    interval: float = 2.0,
    timeout: float = 60.0,
) -> tuple[StoredState, bool]:
    """:func:`snapshot` again every ``interval`` seconds until two reads in a row are equal
    (at most ``timeout`` seconds); returns the last and whether it settled.

    After the load, storage may still change: a server may still be writing a group its clients
    gave up on (a write can outlast their timeout, e.g. while a Cassandra node is being
    convicted), and a logged batch becomes visible row by row. A storage read in the middle
    shows a group half written, which recovery completes by design; the checker judges the
    state once it stays still.
    """
    wsids = list(wsids)
    deadline = time.monotonic() + timeout
    state = await snapshot(storage, appdef, wsids, num_partitions, catch_up_timeout)
    while True:
        await asyncio.sleep(interval)
        left = max(0.0, deadline - time.monotonic())
        again = await snapshot(storage, appdef, wsids, num_partitions, min(catch_up_timeout, left))
        if again.digest() == state.digest():
            return again, True
        state = again
        if time.monotonic() > deadline:
            return state, False


# --- verifying -----------------------------------------------------------------------------------


def _missing(offsets: Iterable[int]) -> str:
    """How a sequence of offsets differs from 1..n, shortly."""
    have = sorted(offsets)
    top = have[-1] if have else 0
    missing = sorted(set(range(1, top + 1)) - set(have))
    return f"offsets 1..{top}, {len(missing)} missing: {missing[:10]}" + (" ..." if len(missing) > 10 else "")


def _check_wlogs(state: StoredState, report: Report) -> None:
    for wsid, events in state.wlogs.items():
        if sorted(events) != list(range(1, len(events) + 1)):
            report.add(WLOG_GAP, f"workspace {wsid}: {_missing(events)}")
        for offset, e in events.items():
            if e.wsid != wsid or e.wlog_offset != offset:
                report.add(
                    WLOG_MISMATCH,
                    f"workspace {wsid} offset {offset} holds the event of workspace {e.wsid} offset {e.wlog_offset}",
                )


def _check_plogs(state: StoredState, report: Report) -> None:
    seen: dict[tuple[int, int], tuple[int, int]] = {}
    for partition, events in state.plogs.items():
        if sorted(events) != list(range(1, len(events) + 1)):
            report.add(PLOG_GAP, f"partition {partition}: {_missing(events)}")
        for offset, e in events.items():
            where = f"partition {partition} offset {offset}"
            if e.partition != partition or e.plog_offset != offset:
                report.add(PLOG_MISMATCH, f"{where} holds the event of partition {e.partition} offset {e.plog_offset}")
            if partition_of(e.wsid, state.num_partitions) != partition:
                report.add(PLOG_MISMATCH, f"{where} holds an event of workspace {e.wsid}, another partition's")
            if e.wsid not in state.wlogs:
                continue  # a workspace the snapshot did not read
            key = (e.wsid, e.wlog_offset)
            if key in seen:
                report.add(
                    PLOG_MISMATCH,
                    f"{where} and partition {seen[key][0]} offset {seen[key][1]} are both workspace {e.wsid} "
                    f"WLog offset {e.wlog_offset}",
                )
                continue
            seen[key] = (partition, offset)
            wlog = state.wlogs[e.wsid].get(e.wlog_offset)
            if wlog is None:
                report.add(PLOG_MISMATCH, f"{where}: workspace {e.wsid} has no WLog entry at {e.wlog_offset}")
            elif wlog.encode(with_extra=False) != e.encode(with_extra=False):
                report.add(PLOG_MISMATCH, f"{where} differs from workspace {e.wsid} WLog offset {e.wlog_offset}")
    for wsid, events in state.wlogs.items():
        for offset in events:
            if (wsid, offset) not in seen:
                report.add(PLOG_MISMATCH, f"workspace {wsid} WLog offset {offset} is in no PLog")


def _check_ids_and_records(state: StoredState, report: Report) -> None:
    for wsid, events in state.wlogs.items():
        created: Counter[int] = Counter()
        items: dict[int, str | None] = {}
        for e in events.values():
            created.update(c.id for c in e.cuds if c.is_new)
            created.update(int(r["sys.ID"]) for r in e.arg_records())
            items.update(load_items(e))
        for rid, n in created.items():
            if n > 1:
                report.add(ID_REUSED, f"workspace {wsid}: record ID {rid} created by {n} events")
        stored = state.records.get(wsid, {})
        for rid, token in items.items():
            record = stored.get(rid)
            if record is None:
                report.add(RECORD_MISMATCH, f"workspace {wsid}: LoadItem {rid} ({token}) is not stored")
            elif record.get("Token") != token:
                report.add(
                    RECORD_MISMATCH, f"workspace {wsid}: LoadItem {rid} is stored as {record.get('Token')}, not {token}"
                )
        for rid in stored.keys() - items.keys():
            report.add(RECORD_MISMATCH, f"workspace {wsid}: LoadItem {rid} is stored but no event created it")


def _placements(state: StoredState) -> dict[str, list[Placement]]:
    found: dict[str, list[Placement]] = defaultdict(list)
    for wsid, events in state.wlogs.items():
        for offset, e in events.items():
            for rid, token in load_items(e):
                found[str(token)].append(Placement(wsid, offset, rid))
    return found


def _check_history(history: History, placements: dict[str, list[Placement]], report: Report) -> None:
    sent: dict[str, Attempt] = {}
    for a in history.attempts:
        if a.token in sent:
            report.add(HISTORY, f"token {a.token} was sent twice (requests {sent[a.token].request} and {a.request})")
        sent[a.token] = a
    for token, a in sent.items():
        found = placements.get(token, [])
        what = f"{a.outcome} {a.token} (to {a.target}, workspace {a.wsid}, status {a.status or a.error})"
        if a.outcome == ACKED:
            if not found:
                report.add(LOST, f"{what} is in no event")
            elif len(found) > 1:
                report.add(DUPLICATE, f"{what} is in {len(found)} events: {found}")
            else:
                p = found[0]
                if (
                    p.wsid != a.wsid
                    or (a.wlog_offset is not None and p.wlog_offset != a.wlog_offset)
                    or (a.new_id is not None and p.record_id != a.new_id)
                ):
                    report.add(
                        MISPLACED,
                        f"{what} answered offset {a.wlog_offset} ID {a.new_id}, but the log has {p}",
                    )
        elif a.outcome == REFUSED and found:
            report.add(REFUSED_APPLIED, f"{what} is in the log: {found}")
        elif a.outcome in (UNKNOWN, PENDING) and len(found) > 1:
            report.add(DUPLICATE, f"{what} is in {len(found)} events: {found}")
    for token, found in placements.items():
        if token not in sent:
            report.add(PHANTOM, f"LoadItem {token} at {found} was sent by no attempt")


def _check_counts(state: StoredState, placements: dict[str, list[Placement]], report: Report) -> None:
    targets = projection_targets(state)
    behind = {p for p, target in targets.items() if state.projected.get(p, 0) < target}
    for p in sorted(behind):
        report.add(
            NOT_CAUGHT_UP,
            f"partition {p}: {COUNT_PROJECTOR} stored offset {state.projected.get(p, 0)}, the last event "
            f"to count is at {targets[p]}",
        )
    per_ws: Counter[int] = Counter()
    last: dict[int, int] = defaultdict(int)
    for found in placements.values():
        for place in found:
            per_ws[place.wsid] += 1
            last[place.wsid] = max(last[place.wsid], place.wlog_offset)
    for wsid in state.wlogs:
        if partition_of(wsid, state.num_partitions) in behind:
            continue
        row = state.counts.get(wsid)
        want = per_ws[wsid]
        if row is None:
            if want:
                report.add(VIEW_COUNT, f"workspace {wsid}: no {LOAD_COUNT} row, {want} LoadItems in the WLog")
            continue
        if row.get("Count") != want or row.get("LastOffset") != last[wsid]:
            how = "counted twice" if (row.get("Count") or 0) > want else "skipped"
            report.add(
                VIEW_COUNT,
                f"workspace {wsid}: {LOAD_COUNT} says {row.get('Count')} up to offset {row.get('LastOffset')}, "
                f"the WLog has {want} LoadItems up to offset {last[wsid]} (events {how})",
            )


def ack_gap(history: History, since: float | None = None, until: float | None = None) -> Gap:
    """The longest interval without a 2xx answer between ``since`` (default: the load's start)
    and ``until`` (default: the load's end); the edges count as ends of a gap."""
    start = since if since is not None else (history.load_started or 0.0)
    end = until if until is not None else (history.load_ended if history.load_ended is not None else history.now())
    acks = sorted(a.ended for a in history.acked() if a.ended is not None and start <= a.ended <= end)
    points = [start, *acks, end]
    best = Gap(start, start)
    for a, b in itertools.pairwise(points):
        if b - a > best.length:
            best = Gap(a, b)
    return best


def check(history: History, state: StoredState, settled: bool = True) -> Report:
    """Verify ``history`` against ``state`` (see the module's docstring); ``settled``: whether
    storage had stopped changing when ``state`` was read (:func:`settled_snapshot`)."""
    report = Report()
    if not settled:
        report.add(NOT_SETTLED, "storage was still changing when it was read for the last time")
    placements = _placements(state)
    _check_wlogs(state, report)
    _check_plogs(state, report)
    _check_ids_and_records(state, report)
    _check_history(history, placements, report)
    _check_counts(state, placements, report)
    gap = ack_gap(history)
    report.stats = {
        "attempts": len(history.attempts),
        "requests": len(history.requests()),
        "failed requests": len(history.failed_requests()),
        "by outcome": dict(history.by_outcome()),
        "by status": dict(history.by_status()),
        "LoadItems in the WLogs": sum(len(v) for v in placements.values()),
        "workspaces with LoadItems": len({p.wsid for v in placements.values() for p in v}),
        "PLog events": sum(len(v) for v in state.plogs.values()),
        "longest ack gap": f"{gap.length:.2f} s ({gap.start:.2f}..{gap.end:.2f})",
    }
    return report
