"""``GET /monitor`` on the metrics port: a small page an operator opens in a browser.

Server-rendered HTML with no build step and no script: the cluster's members, the partitions and
their owners, and per application commands and queries per second, their p99 latency, projector
lag and projectors in error, with small SVG charts of the recent rates. The page reloads itself
every ``REFRESH`` seconds; each load adds a sample to the process's short history, from which
rates and percentiles are computed (the same way PromQL's ``rate`` and ``histogram_quantile``
would from the ``voedger_*`` series).
"""

from __future__ import annotations

import collections
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

from voedger.processors.tally import BOUNDS
from voedger.vvm.server import VVM

REFRESH = 2
"""Seconds between the page's reloads."""
WINDOW = 60.0
"""Seconds of history the rates and percentiles are computed over."""
POINTS = 60
"""Samples kept (and drawn in the charts)."""
MIN_STEP = 0.5
"""Loads closer together than this share one sample."""


@dataclass(frozen=True, slots=True)
class AppSample:
    commands: int
    queries: int
    command_buckets: tuple[int, ...]
    query_buckets: tuple[int, ...]
    lag: int
    in_error: int


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    apps: dict[str, AppSample]


def quantile(q: float, buckets: tuple[int, ...]) -> float | None:
    """The ``q`` quantile of durations counted in ``buckets`` (per bucket, as ``Tally`` keeps
    them), interpolated in its bucket as ``histogram_quantile`` does; None without durations."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    lower = 0.0
    for i, n in enumerate(buckets):
        if seen + n >= rank and n > 0:
            if i == len(BOUNDS):  # beyond the last bound: the last bound is all one can say
                return BOUNDS[-1]
            upper = BOUNDS[i]
            return lower + (upper - lower) * (rank - seen) / n
        seen += n
        lower = BOUNDS[i] if i < len(BOUNDS) else lower
    return BOUNDS[-1]


class Monitor:
    """The page of one VVM, with the history of samples its loads took."""

    def __init__(
        self,
        vvm: VVM,
        vvm_name: str,
        clock: Callable[[], float] = time.monotonic,
        status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.vvm = vvm
        self.vvm_name = vvm_name
        self.clock = clock
        self.status = status or vvm.cluster_status
        """Members and owners, as ``GET /api/cluster`` shows them."""
        self.history: collections.deque[Sample] = collections.deque(maxlen=POINTS)

    def sample(self) -> Sample:
        now = self.clock()
        if self.history and now - self.history[-1].at < MIN_STEP:
            return self.history[-1]
        apps = {}
        for name, app in sorted(self.vvm.apps.items()):
            c, q = app.stats.commands, app.stats.queries
            apps[name] = AppSample(
                c.count,
                q.count,
                tuple(c.buckets),
                tuple(q.buckets),
                sum(app.actualizers.lag().values()),
                app.actualizers.in_error,
            )
        taken = Sample(now, apps)
        self.history.append(taken)
        return taken

    def page(self) -> str:
        latest = self.sample()
        base = next((s for s in self.history if latest.at - s.at <= WINDOW), latest)
        status = self.status()
        parts = [
            _HEAD.format(refresh=REFRESH, name=escape(self.vvm_name)),
            self._members(status),
            self._apps(latest, base),
            self._partitions(status),
            "</main></body></html>\n",
        ]
        return "".join(parts)

    def _members(self, status: dict[str, Any]) -> str:
        rows = []
        if status["cluster"]:
            me = status["self"]["id"]
            for m in status["members"]:
                mark = " (this process)" if m["id"] == me else ""
                rows.append(
                    f'<tr class="member"><td>{escape(m["id"])}{mark}</td><td>{escape(m["address"])}</td>'
                    f"<td>{m['pid']}</td><td>{m['partitions']}</td></tr>"
                )
            title = f"Cluster members ({len(status['members'])})"
        else:
            owned = len(status["partitions"])
            rows.append(
                f'<tr class="member"><td>{escape(self.vvm_name)} (this process)</td>'
                f"<td>{escape(status['self']['address'])}</td><td>{os.getpid()}</td><td>{owned}</td></tr>"
            )
            title = "Members: this process alone (its own storage, not a cluster)"
        head = "<tr><th>Member</th><th>Address</th><th>PID</th><th>Partitions</th></tr>"
        return f'<section id="members"><h2>{title}</h2><table>{head}{"".join(rows)}</table></section>'

    def _apps(self, latest: Sample, base: Sample) -> str:
        seconds = latest.at - base.at
        head = (
            "<tr><th>Application</th><th>Commands/s</th><th></th><th>p99 command</th>"
            "<th>Queries/s</th><th></th><th>p99 query</th><th>Projector lag</th><th>In error</th></tr>"
        )
        rows = []
        for name, now in latest.apps.items():
            was = base.apps.get(name, now)
            cps = (now.commands - was.commands) / seconds if seconds > 0 else 0.0
            qps = (now.queries - was.queries) / seconds if seconds > 0 else 0.0
            p99c = quantile(0.99, _minus(now.command_buckets, was.command_buckets))
            p99q = quantile(0.99, _minus(now.query_buckets, was.query_buckets))
            err = ' class="bad"' if now.in_error else ""
            rows.append(
                f'<tr class="app"><td>{escape(name)}</td><td>{cps:.1f}</td><td>{self._chart(name, "commands")}</td>'
                f"<td>{_ms(p99c)}</td><td>{qps:.1f}</td><td>{self._chart(name, 'queries')}</td><td>{_ms(p99q)}</td>"
                f"<td>{now.lag}</td><td{err}>{now.in_error}</td></tr>"
            )
        note = f"over the last {seconds:.0f} s" if seconds > 0 else "(rates after the next refresh)"
        return f'<section id="apps"><h2>Applications {note}</h2><table>{head}{"".join(rows)}</table></section>'

    def _chart(self, app: str, what: str) -> str:
        """An SVG sparkline of the rate between consecutive samples."""
        rates = []
        for a, b in itertools.pairwise(self.history):
            if app in a.apps and app in b.apps and b.at > a.at:
                count = getattr(b.apps[app], what) - getattr(a.apps[app], what)
                rates.append(count / (b.at - a.at))
        width, height = 120, 24
        if len(rates) < 2:
            return f'<svg class="chart" width="{width}" height="{height}"></svg>'
        top = max(rates) or 1.0
        step = width / (len(rates) - 1)
        xy = " ".join(f"{i * step:.1f},{height - 2 - (r / top) * (height - 4):.1f}" for i, r in enumerate(rates))
        return (
            f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<polyline fill="none" stroke="#2a7" stroke-width="1.5" points="{xy}"/></svg>'
        )

    def _partitions(self, status: dict[str, Any]) -> str:
        by_app: dict[str, list[dict[str, Any]]] = {}
        for p in status["partitions"]:
            by_app.setdefault(p["app"], []).append(p)
        blocks = []
        for app, parts in sorted(by_app.items()):
            cells = "".join(
                f'<td class="{"owned" if p["owner"] or not status["cluster"] else "orphan"}" '
                f'title="{escape(p["address"])} epoch {p["epoch"]}">{p["partition"]}<br><small>'
                f"{escape(p['owner'] or ('self' if not status['cluster'] else 'no owner'))}</small></td>"
                for p in sorted(parts, key=lambda p: int(p["partition"]))
            )
            blocks.append(f"<tr><th>{escape(app)}</th>{cells}</tr>")
        legend = "<p>Each cell: a partition and its owner (self: this process); red: no owner.</p>"
        return (
            f'<section id="partitions"><h2>Partitions and owners</h2>{legend}<table>{"".join(blocks)}</table></section>'
        )


def _minus(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.1f} ms"


_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh}">
<link rel="icon" href="data:,">
<title>Voedger monitor: {name}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 1.5em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ddd; padding: 3px 8px; text-align: left; white-space: nowrap; }}
#partitions td {{ text-align: center; min-width: 2.5em; }}
td.orphan, td.bad {{ background: #fdd; }} td.owned {{ background: #efe; }}
svg.chart {{ vertical-align: middle; background: #f8f8f8; }}
</style></head>
<body><main><h1>Voedger monitor: {name}</h1>
<p>Refreshes every {refresh} s. Prometheus: <a href="/metrics">/metrics</a>,
cluster: <a href="/api/cluster">/api/cluster</a>.</p>
"""
