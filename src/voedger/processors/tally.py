"""Counts and durations of one kind of work, kept in plain numbers on the hot path.

The VVM counts commands and reads with them (``vvm/stats.py``); a partition times the stages of
its commands. The metrics service reads them when it is scraped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType


@dataclass(slots=True)
class Tally:
    """Requests of one kind: how many, how many failed (any error status), seconds in all."""

    count: int = 0
    errors: int = 0
    seconds: float = 0.0

    def timing(self) -> _Timing:
        """``with tally.timing(): ...`` counts the block, its failure and its duration."""
        return _Timing(self)


class _Timing:
    __slots__ = ("started", "tally")

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.started = 0.0

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        tally = self.tally
        tally.count += 1
        tally.seconds += time.perf_counter() - self.started
        if isinstance(exc, Exception):  # a cancelled request is not an error
            tally.errors += 1
