"""A wake-up call from a partition's writer to the actualizers following its log."""

from __future__ import annotations

import asyncio


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class CommitSignal:
    """Wakes every waiter when the writer has made new events durable.

    A waiter checks for new events itself after waking (it may also wake on a timeout), so the
    signal carries no data. Each wait costs one future and one timer: an ``asyncio.Condition``
    with ``wait_for`` would take a lock and a task per wait, on every group commit.
    """

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            _wake(fut)

    async def wait(self, timeout: float) -> None:
        """Return at the next ``notify`` or after ``timeout`` seconds, whichever comes first."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.append(fut)
        timer = loop.call_later(timeout, _wake, fut)
        try:
            await fut
        finally:
            timer.cancel()
            if fut in self._waiters:  # woken by the timer (or cancelled), not by notify
                self._waiters.remove(fut)
