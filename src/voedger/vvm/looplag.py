"""How late the process's event loop runs what is due: the time a request waits for the loop
before any of its own work starts.

One asyncio loop serves every request of a process, so a turn that takes long (a large answer
encoded, a slow callback, the process not getting a core) delays every request queued behind
it, and no request's own timing shows where that time went. ``LoopLag`` asks the loop to wake it
every ``INTERVAL`` seconds and counts how late each wake-up came, as a histogram
(``voedger_event_loop_lag_seconds``): its upper buckets count the stalls.
"""

from __future__ import annotations

import asyncio

from voedger.processors.tally import Tally
from voedger.tasks import cancelled

INTERVAL = 0.05
"""Seconds between wake-ups: a stall of any length past this shows in one of them."""


class LoopLag:
    """Counts how late the running loop wakes a sleeper, from ``start`` until ``stop``."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.tally = Tally()
        """Wake-ups and how late each came (seconds past when it was due)."""
        self.worst = 0.0
        """The latest wake-up so far, in seconds."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancelled(task)

    def observe(self, late: float) -> None:
        """Counts one wake-up that came ``late`` seconds after it was due."""
        late = max(late, 0.0)
        self.tally.count += 1
        self.tally.observe(late)
        self.worst = max(self.worst, late)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.observe(loop.time() - due)
