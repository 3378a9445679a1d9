"""Asynchronous projectors: one actualizer per (application partition, projector) follows the PLog.

A command is acknowledged once its event is durable; asynchronous projectors catch up later.
Each actualizer keeps the offset of the last PLog event whose effects are durable, reads the
log from there in batches, waits on the partition's ``committed`` condition for new events (and
polls now and then, in case a notification was missed) and runs its projector on the events
that trigger it. View writes are buffered (reads see them) and written together with the new
offset in one ``put_batch`` at most every ``flush_interval``, so an offset is never stored
without the writes of the events before it: after a crash the events since the stored offset
are projected again. Delivery is therefore at least once, and projectors must be idempotent.

The actualizers of an application flush on the same clock ticks (multiples of
``flush_interval``), and the flushes that come at the same moment go to storage as one
``put_batch`` (``AppFlushes``): on Cassandra a logged batch for all the projectors of all the
partitions a process serves, not one each (a logged batch is also written to, and removed from,
the batch log of two other nodes).

A projector that fails is retried from its first unprocessed event with exponential backoff;
what the events before it wrote is kept. ``in_error``, ``last_error``, ``offset`` and ``lag``
are there for metrics (``voedger_projectors_in_error``) and for tests.

The sys package declares no ``sys.projectionOffsets`` view, so offsets are kept as application
state rows (``app_state_key("projoffs", partition)``, clustering column = the projector's QName),
one storage partition per application partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from voedger.appdef import AppDef, Projector, QName, qname
from voedger.processors.app import AppRuntime, invoke
from voedger.processors.command import triggered
from voedger.processors.signal import Commit, CommitSignal, Skip
from voedger.state import Intents
from voedger.state.access import SYS_RECORD, SYS_VIEW
from voedger.state.mail import deliver
from voedger.state.rows import row_producer, write_produced_rows
from voedger.storage import AppStorage, BatchItem, InvalidKeyError
from voedger.structs import ids
from voedger.structs.events import Event
from voedger.structs.keys import app_state_key
from voedger.structs.logs import read_plog
from voedger.structs.pending import Pending
from voedger.structs.rowcache import write_rows
from voedger.structs.views import put_row
from voedger.structs.wsid import partition_of
from voedger.syserror import SysError

__all__ = [
    "ActualizerConfig",
    "Actualizers",
    "AppFlushes",
    "AsyncActualizer",
    "PLogSource",
    "apply_view_intents",
    "load_offset",
    "project_event",
    "put_offset",
]

log = logging.getLogger("voedger.actualizers")

_SYS_VIEW = QName("sys", "View")


class PLogSource(Protocol):
    """What an actualizer needs of its partition's writer (``partition.Partition`` fits)."""

    id: int
    next_plog: int
    """The offset the next event will get; the log holds (at most) everything before it."""
    groups: int
    """Durable writes made so far; it changes whenever new events become readable."""
    committed: CommitSignal
    """Notified after each durable write."""
    followers: set[Any]
    """The actualizers reading it; it keeps decoded events until they all handled them."""

    def lease_valid(self) -> bool:
        """False once this process may no longer own the partition: nothing more is written."""
        ...


@dataclass(frozen=True)
class ActualizerConfig:
    """Timings of the actualizers (seconds); tests shorten the retry delays."""

    batch_size: int = 50
    """PLog events read at once."""
    flush_interval: float = 0.5
    """Buffered view writes are made durable at most this often; the first after a quiet spell
    at once. Voedger's VVM uses 500 ms too (its actualizers' own default is 100 ms): on one
    Cassandra node 500 ms gave 11-21 % more commands per second than 100 ms, and views still
    follow well within a second."""
    position_interval: float = 60.0
    """When the events since the last flush wrote nothing, their offset is stored this often."""
    poll_interval: float = 1.0
    """The longest wait for a commit notification before the log is read again anyway."""
    retry_initial_delay: float = 0.1
    retry_max_delay: float = 180.0
    stop_timeout: float = 5.0
    """How long ``stop`` waits for a graceful finish (a last flush) before cancelling."""


DEFAULT_CONFIG = ActualizerConfig()
_BUFFERED_STORAGES = frozenset({SYS_VIEW, SYS_RECORD})

# --- offsets -------------------------------------------------------------------------------------


def _offset_key(partition: int, projector: QName) -> tuple[bytes, bytes]:
    return app_state_key("projoffs", struct.pack(">H", partition)), str(projector).encode()


def put_offset(writes: Pending, partition: int, projector: QName, offset: int) -> None:
    """Stage the offset of the last event a projector has handled in a partition."""
    writes.put(*_offset_key(partition, projector), orjson.dumps({"Offset": offset}))


async def load_offset(storage: AppStorage, partition: int, projector: QName) -> int:
    """The stored offset of a projector in a partition; 0 (no event handled) if none."""
    raw = await storage.get(*_offset_key(partition, projector))
    return ids.NULL_OFFSET if raw is None else int(orjson.loads(raw)["Offset"])


# --- one event -----------------------------------------------------------------------------------


def apply_view_intents(app: AppRuntime, who: QName, wsid: int, intents: Intents, writes: Pending) -> None:
    """Write an extension's view rows; a malformed row is the extension's failure (500)."""
    for view_name, row in intents.view_rows:
        try:
            put_row(writes, app.appdef.view(view_name), wsid, row)
        except (KeyError, ValueError) as exc:
            raise SysError(500, f"{who}: {exc}") from exc


async def project_event(
    app: AppRuntime, projector: Projector, func: Callable[..., Any], event: Event, writes: Pending
) -> Intents:
    """Run a projector on one event (reads see ``writes``) and stage its view rows there.

    The same code serves asynchronous actualizers and the test kit, so both check storages alike.
    """
    _, access = app.runner(projector)
    state = app.state(access, writes, event.wsid, event=event)
    intents = Intents(access)
    await invoke(func, state, intents)
    apply_view_intents(app, projector.qname, event.wsid, intents, writes)
    return intents


# --- the actualizer ------------------------------------------------------------------------------


def _sole_writer(app: AppDef, projector: Projector) -> bool:
    """True when the views the projector writes are its own results and no other extension
    declares them in INTENTS."""
    views = {e for ref in projector.intents if ref.storage == _SYS_VIEW for e in ref.entities}
    if not views or any(app.view(v).result_of != projector.qname for v in views):
        return False
    for ext in app.extensions():
        if ext.qname != projector.qname and any(
            ref.storage == _SYS_VIEW and views.intersection(ref.entities) for ref in ext.intents
        ):
            return False
    return True


def next_tick(now: float, interval: float) -> float:
    """The first multiple of ``interval`` after ``now``: when an actualizer that flushed at
    ``now`` flushes next. All actualizers keep to the same ticks, so they flush at the same
    moment (the tick's timers, or the first commit of their partition after it, wake them) and
    ``AppFlushes`` writes them together."""
    return (math.floor(now / interval) + 1) * interval


GATHER_SECONDS = 0.002
"""How long the first flush of a tick waits for the other actualizers to join it: those woken
by the same commit come in the same turn of the loop, but those woken by their timers at the
tick, or by their partition's first commit after it, may come a turn or two apart."""


_Due = tuple[Sequence[BatchItem], float, asyncio.Future[None]]
"""A flush waiting to be written: its rows, their time, and who waits for the outcome."""


class AppFlushes:
    """One storage write for the flushes of an application's actualizers (every projector of
    every partition this process serves) that come at the same moment (within
    ``GATHER_SECONDS``).

    The first flush schedules the write; the flushes of the other actualizers that come before
    it starts join it, and those that come while it is under way go together in the next one, at
    once when it ends (three loaded processes on the 2-core machine took 0.3-0.5 s a logged
    batch, long enough for the actualizers' flushes to drift off their shared ticks). Every
    actualizer waits for the write and gets its outcome: a failure of
    storage fails them all (each retries from its own stored offset); a write that storage
    refuses as invalid is tried again flush by flush, so that one projector's bad row stops that
    projector alone. The rows are written at the earliest of their times (each actualizer dates
    its rows before it checks its partition's lease). Should two flushes write the same row (two
    projectors writing one view), they are written one after the other, in the order they came,
    as before.
    """

    def __init__(self, app: AppRuntime) -> None:
        self.app = app
        self._due: list[_Due] = []
        self._busy = False
        """A write is scheduled or under way: flushes that come now go in the next one."""
        self.writes = 0
        """Storage writes so far."""
        self.flushes = 0
        """Flushes written so far (more than ``writes`` when some went together)."""

    async def write(self, items: Sequence[BatchItem], at: float, alone: bool = False) -> None:
        """Write ``items`` at ``at``, with the flushes of the other actualizers that come within
        ``GATHER_SECONDS`` or while the write before is under way; ``alone``: at once, by
        themselves (a projector with side effects flushes after each event it handles, and must
        not wait for company each time)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if alone:
            await self._write([(items, at, fut)])
            return await fut
        self._due.append((items, at, fut))
        if not self._busy:
            self._busy = True
            loop.call_later(GATHER_SECONDS, self._start)
        await fut

    def _start(self) -> None:
        due, self._due = [entry for entry in self._due if not entry[2].done()], []
        if not due:  # those cancelled meanwhile are dropped (an actualizer aborted: it writes nothing more)
            self._busy = False
            return
        task = asyncio.get_running_loop().create_task(self._write(due))
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        _retrieve(task)
        if self._due:
            self._start()  # what came while it was written: together, now
        else:
            self._busy = False

    async def _write(self, due: list[_Due]) -> None:
        groups: list[list[_Due]] = [[]]
        keys: set[tuple[bytes, bytes]] = set()
        for entry in due:
            mine = {(p_key, c_col) for p_key, c_col, _ in entry[0]}
            if not keys.isdisjoint(mine):
                groups.append([])
                keys = set()
            groups[-1].append(entry)
            keys |= mine
        for group in groups:
            error = await self._put(group)
            if isinstance(error, InvalidKeyError) and len(group) > 1:
                for entry in group:  # refused as invalid: which flush it was, each alone
                    if not entry[2].done():  # not one cancelled meanwhile, as in _start
                        self._settle([entry], await self._put([entry]))
            else:
                self._settle(group, error)

    async def _put(self, group: list[_Due]) -> Exception | None:
        """Write the flushes of ``group`` in one ``put_batch``; the error, if it failed."""
        items = [item for entry in group for item in entry[0]]
        at = min(entry[1] for entry in group)
        self.writes += 1
        try:
            await write_rows(self.app.rows, items, functools.partial(self.app.storage.put_batch_at, at=at))
        except Exception as exc:
            return exc
        return None

    def _settle(self, group: list[_Due], error: Exception | None) -> None:
        self.flushes += len(group)
        for _, _, fut in group:
            if fut.done():
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:  # pragma: no cover - a bug
        log.error("flush failed", exc_info=task.exception())


class AsyncActualizer:
    """Feeds one asynchronous projector the events of one partition, in PLog order."""

    def __init__(
        self,
        app: AppRuntime,
        partition: PLogSource,
        projector: Projector,
        func: Callable[..., Any],
        config: ActualizerConfig = DEFAULT_CONFIG,
        flushes: AppFlushes | None = None,
    ) -> None:
        self.app = app
        self.partition = partition
        self.writer = flushes if flushes is not None else AppFlushes(app)
        """Writes this actualizer's flushes, with those of the application's other actualizers."""
        self.projector = projector
        self.config = config
        self._func = func
        self._produce = row_producer(func) if app.runner(projector)[1].unrestricted else None
        """The platform's row producer behind ``func``, when it is one."""
        self.offset = ids.NULL_OFFSET
        """Events up to this PLog offset are handled and their effects durable."""
        self.processed = ids.NULL_OFFSET
        """Events up to this offset are handled; their writes may still be buffered."""
        self.stored_offset = ids.NULL_OFFSET
        """The offset in storage (behind ``offset`` while only events that wrote nothing followed)."""
        self.in_error = False
        self.last_error: str | None = None
        self.errors = 0
        """Failures so far (of the projector or of storage)."""
        self.flushes = 0
        self._changed: dict[tuple[int, str], int] = {}
        """Views written by the events buffered, (WSID, view) -> WLog offset: told once durable."""
        self.examined = 0
        """Events the loop has gone over, whether they trigger the projector or not (those the
        actualizer takes in at a commit without waking are not counted)."""
        self.unbuffered = any(ref.storage not in _BUFFERED_STORAGES for ref in (*projector.states, *projector.intents))
        """A projector that reaches beyond records and views (mail, HTTP, other workspaces) has its
        offset stored after each event it handles, so that a restart repeats as few of its side
        effects as possible (Voedger runs such projectors unbuffered too)."""
        self.sole_writer = _sole_writer(app.appdef, projector)
        """No other extension writes this projector's views, so rows it wrote stay valid to read."""
        self._delay = config.retry_initial_delay
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._loaded = False
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def name(self) -> str:
        return f"{self.projector.qname} [{self.partition.id}]"

    @property
    def lag(self) -> int:
        """PLog events not handled yet (counting those of a write still in flight)."""
        return max(0, self.partition.next_plog - 1 - self.offset)

    def lag_seconds(self, now_ms: int) -> float:
        """How old the first event not handled yet is (0 when none is waiting). An event older
        than those the partition keeps decoded counts as old as the oldest kept: a lower bound."""
        if self.lag == 0:
            return 0.0
        recent = getattr(self.partition, "recent", None)  # partition.Partition's decoded events
        if not recent:
            return 0.0
        waiting = self.offset + 1
        first = recent[0].plog_offset
        if waiting > recent[-1].plog_offset:
            return 0.0  # its write is still in flight
        registered: int = recent[max(waiting - first, 0)].registered_at
        return max(0.0, (now_ms - registered) / 1000)

    @property
    def retry_delay(self) -> float:
        """How long the next retry waits after a failure (doubles up to ``retry_max_delay``)."""
        return self._delay

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # --- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.running:
            return
        self._stop = asyncio.Event()
        self.partition.followers.add(self)
        self._task = asyncio.create_task(self._run(), name=f"actualizer-{self.app.name}-{self.name}")

    async def stop(self) -> None:
        """Flush what is buffered and stop; cancel if that takes longer than ``stop_timeout``."""
        task = self._task
        if task is None:
            return
        self._stop.set()
        self.partition.committed.notify()
        await asyncio.wait([task], timeout=self.config.stop_timeout)
        if not task.done():
            log.warning("%s: %s did not stop in time; cancelled", self.app.name, self.name)
            task.cancel()
            await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            # _run keeps every failure of a projector to itself; one here is a bug, reported
            # without failing the shutdown of everything else.
            log.error("%s: %s ended with an error", self.app.name, self.name, exc_info=task.exception())
        self._stopped()

    async def abort(self) -> None:
        """Stop at once, writing nothing more: the partition's lease is lost, so another process
        may already be projecting it. Buffered writes are dropped; they are redone from the
        stored offset by whoever runs the projector next."""
        task = self._task
        if task is None:
            return
        self._stop.set()
        task.cancel()
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: %s ended with an error", self.app.name, self.name, exc_info=task.exception())
        self._stopped()

    def _stopped(self) -> None:
        self._task = None
        self.partition.followers.discard(self)
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(RuntimeError(f"{self.name} stopped at offset {self.offset}"))

    async def wait_for(self, offset: int, timeout: float = 5.0) -> None:
        """Wait until the effects of the events up to ``offset`` are durable."""
        if self.offset >= offset:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (offset, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            why = f"; in error: {self.last_error}" if self.in_error else ""
            raise TimeoutError(
                f"{self.app.name}: {self.name} is at offset {self.offset}, not {offset}, after {timeout}s{why}"
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    # --- the loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._loaded:
                    stored = await load_offset(self.app.storage, self.partition.id, self.projector.qname)
                    self.offset = self.stored_offset = self.processed = stored
                    self._loaded = True
                await self._follow()
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._delay)
            self._delay = min(self._delay * 2, self.config.retry_max_delay)

    async def _follow(self) -> None:
        """Project events from ``offset`` on until asked to stop; raises on any failure, after
        keeping what the events before the failing one did."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        storage = self.app.storage
        buffer = Pending(storage)
        self._changed.clear()  # of events handled again after a failure
        done = self.processed = self.offset
        last_position = loop.time()
        flush_at = last_position  # the first writes need not wait
        while True:
            seen = self.partition.groups
            events = self._recent(done + 1)
            if events is None:
                events = [e async for e in read_plog(storage, self.partition.id, done + 1, cfg.batch_size)]
            for event in events:
                if self._stop.is_set():
                    break
                self.examined += 1
                # No await inside an except block (here and in _run): the native build (mypyc)
                # can re-raise another coroutine's exception after one (mypyc issue 1177).
                failure: Exception | None = None
                try:
                    handled = await self._handle(event, buffer)
                except Exception as exc:
                    failure = exc
                if failure is not None:
                    if done > self.offset:
                        await self._flush(buffer, done)
                    raise failure
                done = self.processed = event.plog_offset
                if handled and self.unbuffered:
                    await self._flush(buffer, done)
                    last_position = loop.time()
                    flush_at = next_tick(last_position, cfg.flush_interval)
            if not buffer:
                self._advance(done)  # nothing to make durable for these events
            stopping = self._stop.is_set()
            now = loop.time()
            if buffer and (stopping or now >= flush_at):
                await self._flush(buffer, done)
                last_position = now
                flush_at = next_tick(now, cfg.flush_interval)
            elif self.offset > self.stored_offset and (stopping or now - last_position >= cfg.position_interval):
                await self._flush(buffer, done)
                last_position = now
            if stopping:
                return
            if len(events) == cfg.batch_size:
                continue  # more to read
            timeout = cfg.poll_interval
            if buffer:
                timeout = min(timeout, max(0.0, flush_at - now))
            await self._wait_commit(seen, timeout, None if buffer else self._skip)
            done = self.processed  # _skip may have taken events in meanwhile

    def _recent(self, first: int) -> list[Event] | None:
        """Events the partition still holds decoded (those a follower has not handled), or None."""
        recent = getattr(self.partition, "recent_events", None)
        return None if recent is None else recent(first, self.config.batch_size)

    async def _handle(self, event: Event, buffer: Pending) -> bool:
        appdef = self.app.appdef
        if not triggered(appdef, self.projector, event):
            return False
        mine = Pending(buffer)  # dropped if the projector fails
        if self._produce is None:
            intents = await project_event(self.app, self.projector, self._func, event, mine)
            for message in intents.mails:  # sent before the event counts as handled: at least once
                await deliver(message)
            rows = intents.view_rows
        else:  # the platform's own: called directly, without State and Intents
            rows = await write_produced_rows(self._produce, self.projector.qname, appdef, event, mine)
        buffer.absorb(mine)
        if self.app.views_changed is not None:
            for view, _ in rows:
                self._changed[(event.wsid, str(view))] = event.wlog_offset
        return True

    async def _flush(self, buffer: Pending, done: int) -> None:
        put_offset(buffer, self.partition.id, self.projector.qname, done)
        at = time.time()  # dated before the check: a late write loses to a new owner's
        if not self.partition.lease_valid():
            raise RuntimeError(f"partition {self.partition.id} may be another process's now; not written")
        await self.writer.write(buffer.items(), at, alone=self.unbuffered)
        if self.sole_writer:
            buffer.settle()  # nobody else writes these rows: keep them to answer its next reads
        else:
            buffer.clear()
        self.stored_offset = done
        self.flushes += 1
        if self._changed:
            changed, self._changed = self._changed, {}
            if self.app.views_changed is not None:
                self.app.views_changed([(wsid, view, offset) for (wsid, view), offset in changed.items()])
        self._advance(done)

    async def _wait_commit(self, seen: int, timeout: float, skip: Skip | None) -> None:
        if timeout <= 0:
            return
        if self.partition.groups != seen or self._stop.is_set():
            return  # committed while the last events were being handled
        await self.partition.committed.wait(timeout, skip)

    def _skip(self, events: Sequence[Event]) -> bool:
        """Take in newly committed events without waking, when none of them triggers the
        projector. Offered only while the actualizer waits with nothing buffered, so its offset
        may move straight on: there is nothing to make durable for these events."""
        if self._stop.is_set() or events[0].plog_offset != self.processed + 1:
            return False  # stopping, or a gap: the loop reads the log itself
        if not isinstance(events, Commit) or self.projector.qname in events.triggers:
            return False  # wanted (or not known to be unwanted): wake and handle them
        self.processed = events[-1].plog_offset
        self._advance(self.processed)
        return True

    def _advance(self, done: int) -> None:
        if done <= self.offset:
            return
        self.offset = done
        if self.in_error:
            log.info("%s: %s recovered at offset %d", self.app.name, self.name, done)
            self.in_error = False
        self._delay = self.config.retry_initial_delay
        for target, fut in self._waiters:
            if target <= done and not fut.done():
                fut.set_result(None)

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self.in_error = True
        self.last_error = str(exc) or type(exc).__name__
        log.error(
            "%s: %s failed after offset %d, retrying in %.1fs: %s",
            self.app.name,
            self.name,
            self.offset,
            self._delay,
            self.last_error,
        )


# --- all actualizers of an application -----------------------------------------------------------


class Actualizers:
    """The actualizers of one application: one per asynchronous projector per partition served.

    A server process creates one for each application it runs, passes the partitions it owns
    (or adds them as it acquires their leases) and stops it before the partitions.
    """

    def __init__(
        self,
        app: AppRuntime,
        partitions: Iterable[PLogSource] | Mapping[int, PLogSource] = (),
        config: ActualizerConfig = DEFAULT_CONFIG,
    ) -> None:
        self.app = app
        self.config = config
        self._initial = list(partitions.values() if isinstance(partitions, Mapping) else partitions)
        self._parts: dict[int, dict[QName, AsyncActualizer]] = {}
        self.projectors: tuple[Projector, ...] = ()
        """The asynchronous projectors that run (those with an implementation)."""
        self.skipped: tuple[QName, ...] = ()
        """Asynchronous projectors with no implementation (sys ones not built yet)."""
        runnable: list[Projector] = []
        skipped: list[QName] = []
        for prj in app.appdef.projectors(sync=False):
            if app.implementation(prj) is None:
                skipped.append(prj.qname)
                if not prj.qname.is_sys:
                    log.error("%s: async projector %s has no implementation", app.name, prj.qname)
            else:
                runnable.append(prj)
        self.projectors = tuple(runnable)
        self.skipped = tuple(skipped)
        self.writer = AppFlushes(app)
        """Writes the flushes of every actualizer here, those of one moment together."""

    async def start(self) -> None:
        for part in self._initial:
            await self.add_partition(part)

    async def stop(self) -> None:
        await asyncio.gather(*(self.remove_partition(pid) for pid in list(self._parts)))

    async def add_partition(self, partition: PLogSource) -> None:
        """Start the actualizers of a partition this process now serves."""
        if partition.id in self._parts:
            return
        actualizers: dict[QName, AsyncActualizer] = {}
        for prj in self.projectors:
            func = self.app.implementation(prj)
            assert func is not None
            actualizers[prj.qname] = AsyncActualizer(self.app, partition, prj, func, self.config, self.writer)
        self._parts[partition.id] = actualizers
        for a in actualizers.values():
            await a.start()

    async def remove_partition(self, partition_id: int, *, abort: bool = False) -> None:
        """Stop the actualizers of a partition: gracefully when the application stops, at once
        (``abort``) when the partition's lease is lost."""
        actualizers = self._parts.pop(partition_id, {})
        await asyncio.gather(*(a.abort() if abort else a.stop() for a in actualizers.values()))

    # --- inspection -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[AsyncActualizer]:
        for actualizers in self._parts.values():
            yield from actualizers.values()

    @property
    def partitions(self) -> tuple[int, ...]:
        return tuple(sorted(self._parts))

    def actualizer(self, projector: QName | str, partition_id: int) -> AsyncActualizer:
        return self._parts[partition_id][qname(projector)]

    def partition_of(self, wsid: int) -> int:
        return partition_of(wsid, self.app.num_partitions)

    def lags(self) -> dict[tuple[QName, int], int]:
        """Events not yet handled, per (projector, partition)."""
        return {(a.projector.qname, a.partition.id): a.lag for a in self}

    def lag(self) -> dict[QName, int]:
        """Events not yet handled per projector, summed over the partitions served."""
        out = dict.fromkeys((p.qname for p in self.projectors), 0)
        for a in self:
            out[a.projector.qname] += a.lag
        return out

    def lag_seconds(self) -> float:
        """The age of the oldest event an async projector has still to handle, in seconds
        (``voedger_projectors_lag_seconds``)."""
        now_ms = int(self.app.clock.now() * 1000)
        return max((a.lag_seconds(now_ms) for a in self), default=0.0)

    @property
    def in_error(self) -> int:
        """How many actualizers are failing now (``voedger_projectors_in_error``)."""
        return sum(1 for a in self if a.in_error)

    async def wait_for(
        self, partition_id: int, offset: int, timeout: float = 5.0, projector: QName | str | None = None
    ) -> None:
        """Wait until every projector (or the one named) has handled the partition's events up to
        ``offset`` and made their effects durable."""
        targets = (
            [self.actualizer(projector, partition_id)]
            if projector is not None
            else list(self._parts.get(partition_id, {}).values())
        )
        await asyncio.gather(*(a.wait_for(offset, timeout) for a in targets))

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until every actualizer has caught up with the events committed so far."""
        await asyncio.gather(*(a.wait_for(a.partition.next_plog - 1, timeout) for a in self))
