"""Jobs: extensions run on a cron schedule in every application workspace.

As in Voedger, each application partition runs the jobs of the application workspaces it
handles (app workspace ``n`` is WSID ``new_wsid(cluster, 0x10000 + n)``, handled by partition
``wsid mod NumParts``), so a job runs once per app workspace wherever partitions are placed.
A job sees a ``JobContext`` (workspace, Unix time) and may write views; its view writes are
made durable in one ``put_batch`` after it returns. A failing run is logged and counted
(``voedger_jobs_in_error``) and not retried: the next scheduled run is the retry.

Time comes from the runtime's clock. :meth:`JobScheduler.tick` runs whatever is due at a given
moment; the scheduler's loop only calls it, so tests move a ``ManualClock`` and call ``tick``
instead of sleeping. When the clock jumps over several scheduled times, the job runs once, as
Voedger's timer-driven scheduler does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter  # type: ignore[import-untyped,unused-ignore]

from voedger.appdef import Job, QName, qname
from voedger.processors.actualizers import apply_view_intents
from voedger.processors.app import AppRuntime, invoke
from voedger.state import Intents, JobContext
from voedger.state.access import Access
from voedger.state.mail import deliver
from voedger.structs.pending import Pending
from voedger.structs.rowcache import write_rows
from voedger.structs.wsid import app_wsid, partition_of

__all__ = ["CronSchedule", "JobRun", "JobScheduler", "app_workspaces_of_partition", "run_job"]

log = logging.getLogger("voedger.jobs")

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _go_duration(text: str) -> float:
    """Seconds in a Go duration such as ``2m30s``."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _GO_DURATION_PART.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(body) or not body:
        raise ValueError(f"invalid duration {text!r}")
    return sign * total


class CronSchedule:
    """A job's schedule read as Voedger (robfig/cron) reads it: five fields, or six with seconds
    first; ``@hourly`` and the other descriptors; ``@every <Go duration>``; an optional
    ``TZ=<zone>`` (or ``CRON_TZ=``) prefix. Without one, times are UTC."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        text = spec.strip()
        self.tz: tzinfo | None = None
        if text.startswith(("TZ=", "CRON_TZ=")):
            zone, _, text = text.partition(" ")
            self.tz = ZoneInfo(zone.split("=", 1)[1])
            text = text.strip()
        self.every: float | None = None
        self.expr = ""
        self.seconds_first = False
        if text.startswith("@every "):
            # robfig rounds the delay down to whole seconds, and to at least one second
            self.every = max(1.0, math.floor(_go_duration(text[len("@every ") :].strip())))
            return
        expr = _DESCRIPTORS.get(text, text)
        fields = [f.replace("?", "*") for f in expr.split()]  # robfig reads "?" as "*" in any field
        if len(fields) not in (5, 6):
            raise ValueError(f"invalid cron schedule: {spec}")
        self.expr = " ".join(fields)
        self.seconds_first = len(fields) == 6
        if not croniter.is_valid(self.expr, second_at_beginning=self.seconds_first):
            raise ValueError(f"invalid cron schedule: {spec}")

    def next_after(self, t: float) -> float:
        """The first scheduled moment strictly after ``t`` (seconds since the epoch)."""
        if self.every is not None:
            return math.floor(t) + self.every
        start = datetime.fromtimestamp(t, self.tz) if self.tz is not None else t
        it = croniter(self.expr, start, second_at_beginning=self.seconds_first)
        return float(it.get_next(float))

    def __repr__(self) -> str:
        return f"CronSchedule({self.spec!r})"


def app_workspaces_of_partition(app: AppRuntime, partition_id: int) -> dict[int, int]:
    """The application workspaces a partition handles: WSID -> app workspace number."""
    out: dict[int, int] = {}
    for n in range(app.num_app_workspaces):
        wsid = app_wsid(app.cluster_id, n)
        if partition_of(wsid, app.num_partitions) == partition_id:
            out[wsid] = n
    return out


async def run_job(
    app: AppRuntime, job: Job, func: Callable[..., Any], wsid: int, unix_time: int, writes: Pending
) -> Intents:
    """Run a job once in a workspace (reads see ``writes``) and stage its view rows there.

    The same code serves the scheduler and the test kit, so both check storages alike.
    """
    access = Access.of(app.appdef, job, unrestricted=job.qname.is_sys)
    state = app.state(access, writes, wsid, job=JobContext(wsid, unix_time))
    intents = Intents(access)
    await invoke(func, state, intents)
    apply_view_intents(app, job.qname, wsid, intents, writes)
    return intents


@dataclass(frozen=True)
class JobRun:
    """One run of a job, as :meth:`JobScheduler.tick` reports it."""

    job: QName
    wsid: int
    unix_time: int
    error: str | None = None


@dataclass
class _Entry:
    job: Job
    func: Callable[..., Any]
    schedule: CronSchedule
    wsid: int
    next_at: float
    in_error: bool = False
    last_error: str | None = None
    runs: int = 0
    last_success: float | None = None
    """When the last successful run ended (the app's clock), None before one."""


class JobScheduler:
    """Runs the application's jobs in the app workspaces of one partition."""

    def __init__(self, app: AppRuntime, partition_id: int, *, max_sleep: float = 1.0) -> None:
        self.app = app
        self.partition_id = partition_id
        self.max_sleep = max_sleep
        """The loop looks at the clock at least this often (a manual clock may jump)."""
        self.workspaces = app_workspaces_of_partition(app, partition_id)
        self._entries: list[_Entry] = []
        self.invalid: dict[QName, str] = {}
        """Jobs that do not run: no implementation, or a schedule this scheduler cannot read."""
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        now = app.clock.now()
        for job in app.appdef.types():
            if not isinstance(job, Job):
                continue
            func = app.implementation(job)
            if func is None:
                self.invalid[job.qname] = "no implementation"
                if not job.qname.is_sys:
                    log.error("%s: job %s has no implementation", app.name, job.qname)
                continue
            try:
                schedule = CronSchedule(job.cron)
            except ValueError as exc:
                self.invalid[job.qname] = str(exc)
                log.error("%s: job %s will not run: %s", app.name, job.qname, exc)
                continue
            for wsid in sorted(self.workspaces):
                self._entries.append(_Entry(job, func, schedule, wsid, schedule.next_after(now)))

    # --- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Plan every job from now and run them on time until stopped."""
        if self._task is not None:
            return
        self.replan()
        self._task = asyncio.create_task(self._loop(), name=f"jobs-{self.app.name}-{self.partition_id}")

    async def stop(self) -> None:
        """Stop the loop; a run in progress is let finish."""
        task = self._task
        if task is None:
            return
        self._task = None
        async with self._lock:  # not in the middle of a run
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def replan(self, now: float | None = None) -> None:
        """Forget missed runs: each job next runs at its first scheduled time after ``now``."""
        t = self.app.clock.now() if now is None else now
        for e in self._entries:
            e.next_at = e.schedule.next_after(t)

    async def _loop(self) -> None:
        while True:
            await self.tick()
            delay = self.next_due() - self.app.clock.now()
            await asyncio.sleep(min(max(delay, 0.0), self.max_sleep))

    # --- running -----------------------------------------------------------------------------------

    def next_due(self) -> float:
        """When the next run is due (infinity without jobs)."""
        return min((e.next_at for e in self._entries), default=math.inf)

    def next_run(self, job: QName | str, wsid: int) -> float:
        q = qname(job)
        return next(e.next_at for e in self._entries if e.job.qname == q and e.wsid == wsid)

    async def tick(self, now: float | None = None) -> list[JobRun]:
        """Run every job due at ``now`` (the clock's time by default), one after another."""
        t = self.app.clock.now() if now is None else now
        runs: list[JobRun] = []
        async with self._lock:
            for e in self._entries:
                if e.next_at > t:
                    continue
                runs.append(await self._run(e, t))
                e.next_at = e.schedule.next_after(t)
        return runs

    async def _run(self, e: _Entry, now: float) -> JobRun:
        unix_time = int(now)
        writes = Pending(self.app.storage)
        e.runs += 1
        try:
            intents = await run_job(self.app, e.job, e.func, e.wsid, unix_time, writes)
            for message in intents.mails:
                await deliver(message)
            if writes:
                await write_rows(self.app.rows, writes.items(), self.app.storage.put_batch)
        except Exception as exc:
            e.last_error = str(exc) or type(exc).__name__
            e.in_error = True
            log.error("%s: job %s in workspace %d failed: %s", self.app.name, e.job.qname, e.wsid, e.last_error)
            return JobRun(e.job.qname, e.wsid, unix_time, e.last_error)
        e.in_error = False
        e.last_success = self.app.clock.now()
        return JobRun(e.job.qname, e.wsid, unix_time)

    # --- inspection ----------------------------------------------------------------------------------

    @property
    def jobs(self) -> tuple[QName, ...]:
        return tuple(dict.fromkeys(e.job.qname for e in self._entries))

    @property
    def in_error(self) -> int:
        """How many (job, workspace) pairs failed on their last run (``voedger_jobs_in_error``)."""
        return sum(1 for e in self._entries if e.in_error)

    @property
    def last_success(self) -> float | None:
        """When a job of this scheduler last ran successfully (``voedger_jobs_last_success_timestamp_seconds``)."""
        return max((e.last_success for e in self._entries if e.last_success is not None), default=None)

    def last_error(self, job: QName | str, wsid: int) -> str | None:
        q = qname(job)
        return next((e.last_error for e in self._entries if e.job.qname == q and e.wsid == wsid), None)
