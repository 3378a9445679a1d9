"""Counts and durations of one kind of work, kept in plain numbers on the hot path.

The VVM counts commands and reads with them (``vvm/stats.py``); a partition times the stages of
its commands. The metrics service reads them when it is scraped. Durations also fall into the
buckets of a histogram (``BOUNDS``), so that Prometheus can compute quantiles (p99) of them.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass, field
from types import TracebackType

BOUNDS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds, inclusive) of the histogram buckets; one more bucket holds the rest."""


def _no_buckets() -> list[int]:
    return [0] * (len(BOUNDS) + 1)


@dataclass(slots=True)
class Tally:
    """Requests of one kind: how many, how many failed (any error status), seconds in all, and
    how many took up to each of ``BOUNDS`` (``buckets[i]``: those in ``(BOUNDS[i-1], BOUNDS[i]]``;
    the last: those over ``BOUNDS[-1]``)."""

    count: int = 0
    errors: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=_no_buckets)

    def timing(self) -> _Timing:
        """``with tally.timing(): ...`` counts the block, its failure and its duration."""
        return _Timing(self)

    def observe(self, seconds: float) -> None:
        """Adds one duration (the caller counts the request itself)."""
        self.seconds += seconds
        self.buckets[bisect_left(BOUNDS, seconds)] += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """Prometheus' buckets: (upper bound, durations up to it), ending with ``inf``."""
        out: list[tuple[float, int]] = []
        total = 0
        for bound, n in zip((*BOUNDS, float("inf")), self.buckets, strict=True):
            total += n
            out.append((bound, total))
        return out


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
        tally.observe(time.perf_counter() - self.started)
        if isinstance(exc, Exception):  # a cancelled request is not an error
            tally.errors += 1


@dataclass(slots=True)
class QueryStages:
    """Seconds the reads of an application spent in each stage of the rows processor (Voedger's
    ``voedger_qp_exec_{fields,enrich,filter,order,count,send}_seconds``): building the requested
    fields, enriching references (and v2 includes), filtering, ordering, paging (count, skip,
    limit), and assembling the answer."""

    fields: float = 0.0
    enrich: float = 0.0
    filter: float = 0.0
    order: float = 0.0
    count: float = 0.0
    send: float = 0.0
