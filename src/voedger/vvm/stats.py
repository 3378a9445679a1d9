"""What a process's processors have done: plain counters, read by the metrics service.

Counted in the VVM, where every command and read of an application passes (from the router,
from another workspace, from a job), with nothing on the hot path but additions; the metrics
service turns them into Voedger's ``voedger_*`` series when it is scraped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class ProcessorStats:
    """One application's commands and reads in this process since it started."""

    commands: Tally = field(default_factory=Tally)
    """From a command's arrival at its partition to its durable result."""
    queries: Tally = field(default_factory=Tally)
