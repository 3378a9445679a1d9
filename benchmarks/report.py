"""Shared bits of the benchmarks: latency statistics, memory, and a plain-text table."""

from __future__ import annotations

import resource
import statistics
from dataclasses import dataclass


@dataclass
class Result:
    driver: str
    op: str
    callers: int
    ops: int
    rows_per_op: int
    seconds: float
    latencies: list[float]

    @property
    def throughput(self) -> float:
        return self.ops * self.rows_per_op / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        if len(self.latencies) == 1:
            return self.latencies[0] * 1000
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1] * 1000


def max_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(results: list[Result], unit: str = "ops/s") -> str:
    head = f"| driver | operation | callers | {unit} (rows/s for batches) | p50 ms | p99 ms | peak RSS MiB |"
    lines = [head, "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(
            f"| {r.driver} | {r.op} | {r.callers} | {r.throughput:,.0f} | {r.pct(50):.2f} | {r.pct(99):.2f} "
            f"| {max_rss_mib():.0f} |"
        )
    return "\n".join(lines)
