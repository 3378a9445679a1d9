"""The partition writer: one per application partition, group commit, recovery.

Each partition of an application has exactly one asyncio task that executes its commands in
order. It takes every command queued while it was busy, has the command pipeline
(``processors/command.py``) execute them one after another (each seeing the writes of the ones
before it), writes the whole group with one durable ``put_batch`` and only then answers each
command. Sequences (PLog offset, WLog offsets, record IDs) live in memory and are stored with
every group, so a restart reads one row per partition and per workspace instead of the whole
log; the events of the last group are re-applied on recovery, which is idempotent, so a group
caught half-written by a crash is completed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from voedger.appdef import SYS_ID
from voedger.processors.app import AppRuntime
from voedger.processors.command import WS_DESCRIPTOR, CommandPipeline, CommandRequest, CommandResult, triggered_names
from voedger.processors.fence import FencedError, PartitionWriter, PlainWriter
from voedger.processors.readcache import ReadCache
from voedger.processors.sequences import Workspaces, part_seq_key, ws_seq_key
from voedger.processors.signal import Commit, CommitSignal
from voedger.processors.tally import Tally
from voedger.storage import AppStorage
from voedger.structs import ids
from voedger.structs.events import Event
from voedger.structs.keys import CRACK_MASK, ROWS_PER_PARTITION
from voedger.structs.logs import put_wlog, read_plog
from voedger.structs.pending import Pending
from voedger.structs.qnames import names_of
from voedger.structs.records import put_record
from voedger.structs.rowcache import keys_of
from voedger.structs.views import put_row
from voedger.structs.wsid import partition_of
from voedger.syserror import SysError
from voedger.tasks import cancelled

log = logging.getLogger("voedger.command")

MAX_GROUP = 256
MAX_QUEUED = 4096
"""Commands waiting in one partition at most; more are refused with 503 (seconds of
work at the measured rates, and a bound on the memory a flood can take)."""
RECENT_EVENTS = 4096
"""Durable events a partition keeps decoded for its followers at most (when one lags)."""
ERR_MOVED = "partition {} is moving to another server process; retry"
ERR_UNKNOWN = "storage did not confirm the write: the command may or may not have been applied"
SETTLE_SECONDS = 5.0
"""How long a group whose write failed waits for storage to tell whether it landed."""
SETTLE_STEP = 0.2
NOT_OWNER_HEADER = "x-voedger-not-owner"
"""On a 503 of a process that does not (or no longer) serve the partition: the router that
forwarded the request reads the partition's lease again and sends it to the new owner."""


@dataclass
class _Job:
    request: CommandRequest
    future: asyncio.Future[CommandResult]


class Follower(Protocol):
    """Something that reads a partition's PLog in order (an async actualizer)."""

    processed: int
    """The PLog offset up to which it has handled events."""


@dataclass
class _Group:
    """Commands executed together and written with one durable ``put_batch``."""

    pending: Pending
    start: int
    """The PLog offset of the group's first event."""
    done: list[tuple[_Job, CommandResult]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    identities_changed: set[int] = field(default_factory=set)
    """Workspaces whose descriptor or subjects the group writes."""
    keys: set[bytes] = field(default_factory=set)
    """The storage partition keys the group writes (``structs/rowcache.py``)."""
    task: asyncio.Task[bool] = field(init=False)

    def fail(self, err: SysError) -> None:
        for job, _ in self.done:
            if not job.future.done():
                job.future.set_exception(err)


class Partition:
    """The single writer of one application partition."""

    def __init__(self, app: AppRuntime, partition_id: int) -> None:
        self.app = app
        self.id = partition_id
        self.next_plog = ids.FIRST_OFFSET
        self._group_start = ids.FIRST_OFFSET
        self.workspaces = Workspaces(app.singleton_ids.get(WS_DESCRIPTOR, 0))
        self.pipeline = CommandPipeline(app, partition_id, self.workspaces)
        """Executes each command; its stages' tallies are the partition's."""
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.groups = 0  # durable writes made; shows group commit at work
        self.group_commands = 0
        """Commands in the groups written (over ``writes.count``: the mean group size)."""
        self.write_errors: dict[str, int] = {}
        """Failed group writes by kind: ``fenced`` (another process holds the partition now),
        ``timeout``, ``other``."""
        self.writes = Tally()
        """Group writes: how many, how many failed, seconds from their start to durable."""
        self.exec = self.pipeline.exec
        """Command extensions run (Voedger's ``voedger_cp_exec_seconds``)."""
        self.projectors = self.pipeline.projectors
        """Commands' SYNC projectors run (``voedger_cp_projectors_seconds``)."""
        self.max_queued = MAX_QUEUED
        self.recent: collections.deque[Event] = collections.deque(maxlen=RECENT_EVENTS)
        """The latest durable events that a follower has not handled yet, decoded: async
        projectors read them without storage."""
        self.followers: set[Follower] = set()
        """The async actualizers following this partition's PLog; see ``_forget_handled``."""
        self._durable_next: int | None = None
        """The PLog offset after the last durable event, once the partition has recovered: no
        other process writes its log then (the lease and the fence), so a follower that has
        handled everything before it has nothing to read (``recent_events``)."""
        self._inflight: _Group | None = None
        self.committed = CommitSignal()
        """Notified after each durable group; async projectors wait on it for new PLog events."""
        self.writer: PartitionWriter = PlainWriter(app.storage)
        """How groups reach storage: fenced by the owner's epoch where other processes share it."""
        self.closed = False
        """No more commands: the partition is handed over, fenced, or stopping."""
        self._unrecovered = False
        """A group's write failed and storage has not told yet where the log ends."""
        self.on_fenced: Callable[[Partition], None] | None = None
        """Told once when a write finds the partition owned by another process."""
        self.reads = ReadCache()
        """Descriptors and principals for the reads this process serves of the partition's
        workspaces (``processors/readcache.py``); asked only while ``serves_reads()``."""

    # --- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.recover()
        claim = getattr(self.writer, "claim", None)
        while claim is not None:
            # Fence the chunks where the log ends, then read it again: a former owner may have
            # appended before the fence took; repeat until the end stays in a fenced chunk.
            before = self.next_plog
            await claim(self.next_plog)
            await self.recover()
            if self.next_plog == before:
                break
        self._task = asyncio.create_task(self._run(), name=f"partition-{self.app.name}-{self.id}")
        self._ready.set()

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        self.closed = True
        await self._queue.join()
        if self._inflight is not None:
            await self._inflight.task
        await cancelled(self._task)
        self._task = None

    async def recover(self) -> None:
        """Rebuild sequences from storage and re-apply the last group's events."""
        storage = self.app.storage
        self.workspaces.clear()
        self.reads.clear()
        self.app.rows.clear()  # and once the re-applied rows are durable
        self.recent.clear()  # kept consecutive: after a failed write, storage is the truth
        raw = await storage.get(part_seq_key(self.id), b"")
        seq = orjson.loads(raw) if raw is not None else {"plog": ids.FIRST_OFFSET, "group": ids.FIRST_OFFSET}
        first = min(seq["plog"], seq["group"])
        self.next_plog = seq["plog"]
        writes = Pending(storage)
        replayed = 0
        async for event in read_plog(storage, self.id, first):
            ws = await self.workspaces.get(event.wsid, writes)
            self._reapply(event, writes)
            ws.next_wlog = max(ws.next_wlog, event.wlog_offset + 1)
            for cud in event.cuds:
                ws.idgen.observe(cud.id)
            for rec in event.arg_records():
                ws.idgen.observe(rec[SYS_ID])
            self.next_plog = max(self.next_plog, event.plog_offset + 1)
            replayed += 1
        if replayed:
            for wsid, ws in self.workspaces.items():
                writes.put(ws_seq_key(wsid), b"", ws.to_json())
            writes.put(part_seq_key(self.id), b"", orjson.dumps({"plog": self.next_plog, "group": self.next_plog}))
            await storage.put_batch(writes.items())
            self.app.rows.clear()
            log.info(
                "%s partition %d: re-applied %d event(s) from PLog offset %d",
                self.app.name,
                self.id,
                replayed,
                first,
            )
        self._group_start = self.next_plog
        self._durable_next = self.next_plog

    def _reapply(self, event: Event, writes: Pending) -> None:
        """Write an event's effects again: the WLog entry, records and view rows it carries."""
        put_wlog(writes, event, event.encode(with_extra=False, names=names_of(writes.storage)))
        for cud in event.cuds:
            if cud.is_new:
                put_record(writes, event.wsid, cud.record())
        for rec in event.extra.get("records", ()):
            put_record(writes, event.wsid, rec)
        for view_name, row in event.extra.get("views", ()):
            put_row(writes, self.app.appdef.view(view_name), event.wsid, row)

    # --- requests ----------------------------------------------------------------------------

    def recent_events(self, first: int, count: int) -> list[Event] | None:
        """Durable events from PLog offset ``first`` (at most ``count``), if still kept here;
        none when ``first`` is past the last durable event (an idle follower's poll then costs
        no storage read: 282 actualizers of three applications polled the log of an idle
        process every second, most of a Cassandra core at RF 3)."""
        recent = self.recent
        if not recent or first < recent[0].plog_offset:
            return [] if first == self._durable_next else None
        start = first - recent[0].plog_offset
        return [recent[i] for i in range(start, min(start + count, len(recent)))]

    def _forget_handled(self) -> None:
        """Drop the kept events that every follower has handled.

        Kept any longer, each event (a dozen objects) outlives the collector's young
        generation: under load that was a young collection of ~20,000 objects a second,
        each a 10-20 ms pause of every request in flight. A follower that later needs a
        dropped event (after a failure, or when it starts) reads the PLog from storage.
        """
        recent = self.recent
        if not recent:
            return
        handled = min((f.processed for f in self.followers), default=recent[-1].plog_offset)
        while recent and recent[0].plog_offset <= handled:
            recent.popleft()

    def moved(self) -> SysError:
        return SysError(503, ERR_MOVED.format(self.id), headers={"Retry-After": "1", NOT_OWNER_HEADER: "1"})

    async def submit(self, request: CommandRequest) -> CommandResult:
        if partition_of(request.wsid, self.app.num_partitions) != self.id:
            raise SysError(500, f"workspace {request.wsid} does not belong to partition {self.id}")
        await self._ready.wait()
        if self.closed:
            raise self.moved()
        if self._queue.qsize() >= self.max_queued:
            # Shed load rather than queue without bound (Voedger answers the same when its
            # command processor's channel is full); the client retries later.
            raise SysError(503, f"no command processors available, partition {self.id}", headers={"Retry-After": "1"})
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(request, future))
        return await future

    async def _run(self) -> None:
        """Take queued commands in groups. A group is formed once the previous one is durable,
        so every command that arrived during that write joins it: measured on the command
        benchmark, this gave larger groups and more commands per second than executing the
        next group during the write (the other partitions keep the CPU busy meanwhile). After
        a failed write the partition recovers from storage before the next group."""
        while True:
            batch = [await self._queue.get()]
            inflight, self._inflight = self._inflight, None
            if inflight is not None and not await inflight.task:
                self._unrecovered = True
            if self._unrecovered:
                await self._recover_after_failure()
            # A group never spans two PLog chunks: the fence guards one chunk per write.
            room = min(MAX_GROUP, ROWS_PER_PARTITION - (self.next_plog & CRACK_MASK))
            while len(batch) < room and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            refusal = self.moved() if self.closed and self._fenced else None
            if refusal is None and self._unrecovered:
                refusal = self._unavailable()
            if refusal is not None:
                # Fenced, or storage not readable yet after a failed write: executing now would
                # number events after offsets the failed group may not have written (a hole).
                for job in batch:
                    job.future.set_exception(refusal)
                    self._queue.task_done()
                continue
            try:
                group = await self._prepare_group(batch, self.app.storage)
                if group is not None:
                    # Handed to the driver now, not from the write task's first step: under
                    # load a turn of the loop took ~5 ms, added to every command of the group.
                    items = group.pending.items()
                    group.keys = keys_of(items)
                    self.app.rows.written(group.keys)  # and again once durable: see rowcache.py
                    durable = self.writer.begin(items, self.next_plog)
                    group.task = asyncio.create_task(self._write_group(group, durable))
                    self._inflight = group
            except Exception:  # pragma: no cover - a bug; keep the partition alive
                log.exception("%s partition %d: group failed", self.app.name, self.id)
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(SysError(500, "internal error"))
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _unavailable(self) -> SysError:
        return SysError(503, "storage is unavailable; the command was not applied", headers={"Retry-After": "1"})

    async def _recover_after_failure(self) -> None:
        """Learn from storage where the log ends; until that works, the partition executes
        nothing (its commands answer 503): its sequences in memory may count a failed group."""
        if self._fenced:
            return
        error = await self._try_recover()
        if error is not None:
            log.error("%s partition %d: recovery failed (retried first thing): %s", self.app.name, self.id, error)
            await asyncio.sleep(0.1)
            return
        self._unrecovered = False

    async def _try_recover(self) -> Exception | None:
        """Resync the writer and recover from storage; the storage error if that failed (a
        fence found on the way is taken here, not returned)."""
        error: Exception | None = None
        try:
            await self.writer.resync()
            await self.recover()
        except FencedError as exc:
            self._fence(exc)
        except Exception as exc:
            error = exc
        return error

    async def _prepare_group(self, batch: list[_Job], base: AppStorage | Pending) -> _Group | None:
        """Execute the commands of a batch; the successful ones form the group to write."""
        group = _Group(Pending(base), self.next_plog)
        touched: set[int] = set()
        for job in batch:
            mine = Pending(group.pending)
            try:
                result, event = await self.pipeline.execute(job.request, mine, self.next_plog)
            except SysError as err:
                job.future.set_exception(err)
                continue
            except Exception as exc:
                log.exception("%s: command %s failed", self.app.name, job.request.command)
                job.future.set_exception(SysError(500, f"internal error: {type(exc).__name__}"))
                continue
            group.pending.absorb(mine)
            self.next_plog += 1
            group.events.append(event)
            touched.add(job.request.wsid)
            group.done.append((job, result))
        changed = self.pipeline.identities_changed
        if changed:
            group.identities_changed, self.pipeline.identities_changed = changed, set()
        if not group.done:
            return None
        for wsid in touched:
            group.pending.put(ws_seq_key(wsid), b"", self.workspaces[wsid].to_json())
        group.pending.put(part_seq_key(self.id), b"", orjson.dumps({"plog": self.next_plog, "group": group.start}))
        return group

    async def _write_group(self, group: _Group, durable: Awaitable[None]) -> bool:
        """Wait until a group's write (begun by the caller) is durable, then answer its commands;
        False if the partition must recover before its next group."""
        failure: Exception | None = None
        began = time.perf_counter()
        writes = self.writes
        writes.count += 1
        self.group_commands += len(group.events)
        try:
            await durable
        except FencedError as exc:
            self.app.rows.written(group.keys)  # it may have landed
            writes.errors += 1
            self._count_error("fenced")
            self._fence(exc)
            # Unserved only if its events cannot be in the log: else the router would send
            # its commands to the new owner, which re-applies the events and runs them again.
            group.fail(self._outcome_unknown() if exc.written else self.moved())
            return False
        except Exception as exc:
            log.error("%s partition %d: durable write failed: %s", self.app.name, self.id, exc)
            failure = exc
        writes.observe(time.perf_counter() - began)
        if failure is not None:
            self.app.rows.written(group.keys)  # it may have landed
            writes.errors += 1
            self._count_error(_error_kind(failure))
            return await self._settle(group)
        self._acknowledge(group)
        return True

    def _count_error(self, kind: str) -> None:
        """Counts a failed group write by kind (``voedger_storage_errors_total``)."""
        self.write_errors[kind] = self.write_errors.get(kind, 0) + 1

    async def _settle(self, group: _Group) -> bool:
        """A group's write failed, which may mean it landed or not (a timeout, a process paused
        past the driver's deadlines): learn which from storage before answering its commands.
        The partition runs no other group meanwhile (``_run`` waits for this one). Recovery is
        tried for up to ``SETTLE_SECONDS``; if storage stays unreadable, the commands get 503
        saying their outcome is unknown."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while not self._fenced:
            error = await self._try_recover()
            if self.writer.fenced:  # fenced meanwhile
                break
            if error is None:
                if self.next_plog >= group.start + len(group.events):
                    log.info("%s partition %d: the failed write had landed", self.app.name, self.id)
                    self._acknowledge(group)
                else:
                    group.fail(self._unavailable())
                return True
            if time.monotonic() >= deadline:
                log.error("%s partition %d: recovery failed (retried first thing): %s", self.app.name, self.id, error)
                group.fail(self._outcome_unknown())
                return False
            await asyncio.sleep(SETTLE_STEP)
        # Fenced before storage told: the group may have landed, and its new owner re-applies
        # it; answered as unserved, its commands would be sent there and run again.
        group.fail(self._outcome_unknown())
        return False

    def _outcome_unknown(self) -> SysError:
        return SysError(503, ERR_UNKNOWN, headers={"Retry-After": "1"})

    def _acknowledge(self, group: _Group) -> None:
        """The group is durable: answer its commands and wake what follows the partition."""
        self.app.rows.written(group.keys)  # before any answer: see rowcache.py
        if group.identities_changed:
            self.reads.drop(group.identities_changed)  # before any answer: see readcache.py
        self.groups += 1
        self._group_start = group.start
        if group.events:
            self._durable_next = group.events[-1].plog_offset + 1
        self.recent.extend(group.events)
        self._forget_handled()
        for job, result in group.done:
            if not job.future.done():
                job.future.set_result(result)
        changed = self.app.views_changed
        if changed is not None:
            changed([(e.wsid, v, e.wlog_offset) for e in group.events for v, _ in e.extra.get("views", ())])
        appdef = self.app.appdef
        triggers = frozenset().union(*(triggered_names(appdef, e) for e in group.events))
        self.committed.notify(Commit(group.events, triggers))

    def serves_reads(self) -> bool:
        """Whether reads may use ``reads``: the partition takes commands and its lease is surely
        still this process's (no other process can have written its workspaces)."""
        return not self.closed and self._task is not None and self.lease_valid()

    def lease_valid(self) -> bool:
        valid = getattr(self.writer, "valid", None)
        return not self._fenced and (valid is None or bool(valid()))

    @property
    def _fenced(self) -> bool:
        return self.writer.fenced

    def _fence(self, exc: FencedError) -> None:
        """Another process owns the partition now: take no more commands (503, retry)."""
        if self.closed and self._fenced and self.on_fenced is None:
            return
        log.warning("%s partition %d: fenced, no more writes here: %s", self.app.name, self.id, exc)
        self.closed = True
        callback, self.on_fenced = self.on_fenced, None
        if callback is not None:
            callback(self)


def _error_kind(exc: Exception) -> str:
    """``timeout`` for the driver's timeouts (and Python's), else ``other``."""
    name = type(exc).__name__.lower()
    return "timeout" if isinstance(exc, TimeoutError) or "timeout" in name or "timedout" in name else "other"
