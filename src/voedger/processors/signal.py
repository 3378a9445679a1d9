"""A wake-up call from a partition's writer to the actualizers following its log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Skip = Callable[[Sequence[Any]], bool]
"""A parked waiter's answer to new events: True when it took them in without waking (none of
them concerns it), so it stays parked."""


class Commit(list[Any]):
    """The events of one durable write, with the projectors any of them triggers: an idle
    waiter's ``skip`` answers with one look-up instead of one per event."""

    __slots__ = ("triggers",)

    def __init__(self, events: Iterable[Any], triggers: frozenset[Any]) -> None:
        super().__init__(events)
        self.triggers = triggers


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class CommitSignal:
    """Wakes the waiters when the writer has made new events durable.

    A waiter reads the new events itself after waking (it may also wake on a timeout); the
    events passed to ``notify`` only let a waiter's ``skip`` decide whether to wake at all.
    Each wait costs one future and one timer: an ``asyncio.Condition`` with ``wait_for`` would
    take a lock and a task per wait, on every group commit.
    """

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[tuple[asyncio.Future[None], Skip | None]] = []

    def notify(self, events: Sequence[Any] | None = None) -> None:
        """Wake the waiters; with the new ``events``, those whose ``skip`` takes them in stay
        parked (an actualizer whose projector none of them triggers: most of them, on most
        commits, and each wake-up is a task step, a timer and a pass over the events)."""
        waiters, self._waiters = self._waiters, []
        for entry in waiters:
            fut, skip = entry
            if events and skip is not None and not fut.done() and skip(events):
                self._waiters.append(entry)
            else:
                _wake(fut)

    async def wait(self, timeout: float, skip: Skip | None = None) -> None:
        """Return at the next ``notify`` (that ``skip`` does not take in) or after ``timeout``
        seconds, whichever comes first."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (fut, skip)
        self._waiters.append(entry)
        timer = loop.call_later(timeout, _wake, fut)
        try:
            await fut
        finally:
            timer.cancel()
            if entry in self._waiters:  # woken by the timer (or cancelled), not by notify
                self._waiters.remove(entry)
