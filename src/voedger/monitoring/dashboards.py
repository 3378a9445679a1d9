"""Grafana dashboards of a Voedger deployment, generated with Grafana's Python SDK
(``grafana-foundation-sdk``, in the ``dev`` extra) into ``voedger/monitoring/dashboards/``.

Four dashboards: App processors (Voedger's, with our latency percentiles and stages), Cluster
(processes, partitions, leases, storage), Federation (forwarding in a cluster, calls between
applications) and Projectors and jobs. Every panel reads only ``voedger_*`` series and the
``process_*``/``up`` series of the ``voedger`` scrape job, so each returns data from a running
server (the tests run every query against a real Prometheus).

Regenerate after a change (a test fails while the files are stale)::

    python -m voedger.monitoring.dashboards
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh, VariableSort

from voedger.monitoring import DASHBOARDS_DIR

SEL = 'app=~"$app",vvm=~"$vvm"'
"""The label selector of the dashboards' ``app`` and ``vvm`` variables."""
VVM = 'vvm=~"$vvm"'
RATE = "$__rate_interval"
AGG = "$aggregation_interval"


@dataclass(frozen=True, slots=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True, slots=True)
class PanelSpec:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: Literal["timeseries", "stat"] = "timeseries"
    width: int = 12


@dataclass(frozen=True, slots=True)
class Board:
    uid: str
    title: str
    description: str
    rows: tuple[tuple[str, tuple[PanelSpec, ...]], ...]
    per_app: bool = True


def _p(title: str, description: str, *queries: tuple[str, str], unit: str = "short", width: int = 12) -> PanelSpec:
    return PanelSpec(title, description, tuple(Query(e, legend) for e, legend in queries), unit, "timeseries", width)


def _stat(title: str, description: str, expr: str, legend: str, unit: str = "short") -> PanelSpec:
    return PanelSpec(title, description, (Query(expr, legend),), unit, "stat", 6)


def _quantiles(metric: str, by: str, legend: str) -> tuple[tuple[str, str], ...]:
    sel = SEL if by == "app" else VVM
    return tuple(
        (
            f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{sel}}}[{RATE}])))",
            f"{legend} p{int(q * 100)}",
        )
        for q in (0.5, 0.99)
    )


APP_PROCESSORS = Board(
    uid="voedger-app-processors",
    title="Voedger: App processors",
    description="Commands and queries per application: rates, errors, latency and where it goes.",
    rows=(
        (
            "Commands",
            (
                _p(
                    "Commands per interval",
                    "Commands processed in each aggregation interval.",
                    (f"sum by (app) (increase(voedger_cp_commands_total{{{SEL}}}[{AGG}]))", "{{app}}"),
                ),
                _p(
                    "Command errors per interval",
                    "Commands answered with an error.",
                    (f"sum by (app) (increase(voedger_cp_errors_total{{{SEL}}}[{AGG}]))", "{{app}}"),
                ),
                _p(
                    "Command latency (p50, p99)",
                    "From a command's arrival at its partition to its durable result.",
                    *_quantiles("voedger_cp_latency_seconds", "app", "{{app}}"),
                    unit="s",
                ),
                _p(
                    "Command stages (seconds per second)",
                    "Time spent in command extensions, SYNC projectors, group writes and fencing batches.",
                    (f"sum(rate(voedger_cp_exec_seconds{{{SEL}}}[{RATE}]))", "exec"),
                    (f"sum(rate(voedger_cp_projectors_seconds{{{SEL}}}[{RATE}]))", "sync projectors"),
                    (f"sum(rate(voedger_cp_group_write_seconds{{{SEL}}}[{RATE}]))", "group write"),
                    (f"sum(rate(voedger_cp_fence_seconds{{{SEL}}}[{RATE}]))", "fence"),
                    unit="s",
                ),
                _p(
                    "Group commit: commands per write",
                    "The mean number of commands made durable by one group write.",
                    (
                        f"sum by (app) (rate(voedger_cp_group_commands_total{{{SEL}}}[{RATE}]))"
                        f" / sum by (app) (rate(voedger_cp_group_writes_total{{{SEL}}}[{RATE}]))",
                        "{{app}}",
                    ),
                ),
                _p(
                    "Command average latency",
                    "Seconds per command, averaged over each aggregation interval (Voedger's panel).",
                    (
                        f"sum by (app) (increase(voedger_cp_commands_seconds{{{SEL}}}[{AGG}]))"
                        f" / sum by (app) (increase(voedger_cp_commands_total{{{SEL}}}[{AGG}]))",
                        "{{app}}",
                    ),
                    unit="s",
                ),
            ),
        ),
        (
            "Queries",
            (
                _p(
                    "Queries per interval",
                    "Queries and reads processed in each aggregation interval.",
                    (f"sum by (app) (increase(voedger_qp_queries_total{{{SEL}}}[{AGG}]))", "{{app}}"),
                ),
                _p(
                    "Query errors per interval",
                    "Queries and reads answered with an error.",
                    (f"sum by (app) (increase(voedger_qp_errors_total{{{SEL}}}[{AGG}]))", "{{app}}"),
                ),
                _p(
                    "Query latency (p50, p99)",
                    "Seconds to answer a query or read.",
                    *_quantiles("voedger_qp_latency_seconds", "app", "{{app}}"),
                    unit="s",
                ),
                _p(
                    "Query stages (seconds per second)",
                    "Time the rows processor spent building fields, enriching, filtering, ordering, paging, answering.",
                    *tuple(
                        (f"sum(rate(voedger_qp_exec_{stage}_seconds{{{SEL}}}[{RATE}]))", stage)
                        for stage in ("fields", "enrich", "filter", "order", "count", "send")
                    ),
                    unit="s",
                ),
                _p(
                    "Query average latency",
                    "Seconds per query, averaged over each aggregation interval (Voedger's panel).",
                    (
                        f"sum by (app) (increase(voedger_qp_queries_seconds{{{SEL}}}[{AGG}]))"
                        f" / sum by (app) (increase(voedger_qp_queries_total{{{SEL}}}[{AGG}]))",
                        "{{app}}",
                    ),
                    unit="s",
                ),
                _p(
                    "Reads served from what is kept",
                    "Share of storage reads of rows served from the rows kept where the workspace is written,"
                    " and of q.sys.Collection answers served kept (structs/rowcache.py).",
                    *tuple(
                        (
                            f"sum(rate(voedger_qp_kept_{kind}_hits_total{{{SEL}}}[{RATE}]))"
                            f" / (sum(rate(voedger_qp_kept_{kind}_hits_total{{{SEL}}}[{RATE}]))"
                            f" + sum(rate(voedger_qp_kept_{kind}_misses_total{{{SEL}}}[{RATE}])))",
                            kind,
                        )
                        for kind in ("rows", "answers")
                    ),
                    unit="percentunit",
                ),
            ),
        ),
        (
            "Projectors",
            (
                _stat(
                    "Projectors in error now",
                    "Async projectors failing now.",
                    f"sum(voedger_projectors_in_error{{{SEL}}})",
                    "in error",
                ),
                _p(
                    "Projectors in error (history)",
                    "Async projectors failing, per application.",
                    (f"sum by (app) (voedger_projectors_in_error{{{SEL}}})", "{{app}}"),
                    width=18,
                ),
            ),
        ),
    ),
)

CLUSTER = Board(
    uid="voedger-cluster",
    title="Voedger: Cluster",
    description="Processes of the cluster, their partitions and leases, HTTP answers and storage.",
    per_app=False,
    rows=(
        (
            "Processes",
            (
                _stat("Processes up", "Server processes Prometheus scrapes now.", 'sum(up{job="voedger"})', "up"),
                _stat(
                    "Members (as the processes see them)",
                    "Live members of the cluster, as each process last read them; the lowest is shown.",
                    f"min(voedger_cluster_members{{{VVM}}})",
                    "members",
                ),
                _stat(
                    "Partitions without owner",
                    "Partitions no scraped process owns (0 when all are served).",
                    "sum(max by (app) (voedger_app_partitions) - sum by (app) (voedger_cluster_partitions_owned))",
                    "without owner",
                ),
                _stat(
                    "5xx ratio",
                    "Share of HTTP answers with a server error.",
                    # "or vector(0)": no 5xx series yet is a ratio of 0, not "no data".
                    f'(sum(rate(voedger_http_requests_total{{{VVM},status=~"5.."}}[{RATE}])) or vector(0))'
                    f" / sum(rate(voedger_http_requests_total{{{VVM}}}[{RATE}]))",
                    "5xx",
                    unit="percentunit",
                ),
                _p(
                    "CPU per process",
                    "CPU seconds per second (1 = one core, all an event loop can use).",
                    (f'rate(process_cpu_seconds_total{{job="voedger"}}[{RATE}])', "{{instance}}"),
                    unit="percentunit",
                ),
                _p(
                    "Event loop lag",
                    "How late each process's event loop woke its probe (every request waits that before its"
                    " own work starts): the p99 of its wake-ups over the window, by process.",
                    (
                        "histogram_quantile(0.99, sum by (vvm, le) "
                        f"(rate(voedger_event_loop_lag_seconds_bucket{{{VVM}}}[{RATE}])))",
                        "p99 {{vvm}}",
                    ),
                    unit="s",
                ),
                _p(
                    "Memory per process",
                    "Resident memory.",
                    ('process_resident_memory_bytes{job="voedger"}', "{{instance}}"),
                    unit="bytes",
                ),
                _p(
                    "Open connections and files",
                    "Client connections to the API open now, and all open file descriptors (sockets, storage files).",
                    (f"sum by (vvm) (voedger_http_connections{{{VVM}}})", "connections {{vvm}}"),
                    ('process_open_fds{job="voedger"}', "files {{instance}}"),
                ),
                _p(
                    "HTTP requests by route family and status",
                    "Answers per second.",
                    (
                        f"sum by (family, status) (rate(voedger_http_requests_total{{{VVM}}}[{RATE}]))",
                        "{{family}} {{status}}",
                    ),
                    unit="reqps",
                ),
            ),
        ),
        (
            "Partitions and leases",
            (
                _p(
                    "Partitions owned per process",
                    "Partitions each process serves, all applications together.",
                    (f"sum by (vvm) (voedger_cluster_partitions_owned{{{VVM}}})", "{{vvm}}"),
                ),
                _p(
                    "Lease changes",
                    "Leases acquired, handed over and lost per minute; losses mean late renewals or fencing.",
                    (
                        f"sum by (vvm) (rate(voedger_cluster_lease_acquisitions_total{{{VVM}}}[{RATE}])) * 60",
                        "acquired {{vvm}}",
                    ),
                    (
                        f"sum by (vvm) (rate(voedger_cluster_lease_releases_total{{{VVM}}}[{RATE}])) * 60",
                        "released {{vvm}}",
                    ),
                    (f"sum by (vvm) (rate(voedger_cluster_lease_losses_total{{{VVM}}}[{RATE}])) * 60", "lost {{vvm}}"),
                ),
            ),
        ),
        (
            "Storage",
            (
                _p(
                    "Storage write latency (p50, p99)",
                    "Group writes, from their start until durable.",
                    *_quantiles("voedger_storage_write_latency_seconds", "vvm", "{{vvm}}"),
                    unit="s",
                ),
                _p(
                    "Storage errors by kind",
                    "Failed group writes: fenced (another process owns the partition), timeout, other.",
                    (f"sum by (kind) (increase(voedger_storage_errors_total{{{VVM}}}[{AGG}]))", "{{kind}}"),
                ),
                _p(
                    "Group writes per second",
                    "Durable batches written.",
                    (f"sum by (vvm) (rate(voedger_cp_group_writes_total{{{VVM}}}[{RATE}]))", "{{vvm}}"),
                    unit="wps",
                ),
            ),
        ),
    ),
)

FEDERATION = Board(
    uid="voedger-federation",
    title="Voedger: Federation",
    description="Requests forwarded between the processes of a cluster, and calls between applications and clusters.",
    per_app=False,
    rows=(
        (
            "In the cluster",
            (
                _p(
                    "Forwarded requests and reads served here",
                    "Requests sent on to the process owning their partition, reads sent to it and answered "
                    "there, and reads of other processes' partitions served here from storage, per second.",
                    (f"sum by (vvm) (rate(voedger_cluster_forwarded_total{{{VVM}}}[{RATE}]))", "forwarded {{vvm}}"),
                    (
                        f"sum by (vvm) (rate(voedger_cluster_reads_at_owner_total{{{VVM}}}[{RATE}]))",
                        "read at owner {{vvm}}",
                    ),
                    (f"sum by (vvm) (rate(voedger_cluster_reads_here_total{{{VVM}}}[{RATE}]))", "read here {{vvm}}"),
                    unit="reqps",
                ),
                _p(
                    "Forward retries and unrouted requests",
                    "Forwards that went on to a new owner; requests answered 503 with no owner reachable; "
                    "reads the owner did not answer in time (served here).",
                    (
                        f"sum by (vvm) (increase(voedger_cluster_forward_retries_total{{{VVM}}}[{AGG}]))",
                        "retried {{vvm}}",
                    ),
                    (f"sum by (vvm) (increase(voedger_cluster_unrouted_total{{{VVM}}}[{AGG}]))", "unrouted {{vvm}}"),
                    (
                        f"sum by (vvm) (increase(voedger_cluster_read_hops_failed_total{{{VVM}}}[{AGG}]))",
                        "read hop failed {{vvm}}",
                    ),
                ),
                _p(
                    "Forward waiting time (seconds per second)",
                    "Time requests waited for their owners' answers.",
                    (f"sum by (vvm) (rate(voedger_cluster_forward_seconds_total{{{VVM}}}[{RATE}]))", "{{vvm}}"),
                    unit="s",
                ),
            ),
        ),
        (
            "Between applications and clusters",
            (
                _p(
                    "Federation calls by target",
                    "Calls per second; target local: served in this process.",
                    (f"sum by (target) (rate(voedger_federation_calls_total{{{VVM}}}[{RATE}]))", "{{target}}"),
                    unit="reqps",
                ),
                _p(
                    "Federation errors by target",
                    "Calls answered 5xx, or not at all, after the retries.",
                    (f"sum by (target) (increase(voedger_federation_errors_total{{{VVM}}}[{AGG}]))", "{{target}}"),
                ),
                _p(
                    "Federation call latency (p50, p99)",
                    "Seconds per call, retries included.",
                    *tuple(
                        (
                            f"histogram_quantile({q}, sum by (target, le) "
                            f"(rate(voedger_federation_latency_seconds_bucket{{{VVM}}}[{RATE}])))",
                            f"{{{{target}}}} p{int(q * 100)}",
                        )
                        for q in (0.5, 0.99)
                    ),
                    unit="s",
                ),
            ),
        ),
    ),
)

PROJECTORS_AND_JOBS = Board(
    uid="voedger-projectors-jobs",
    title="Voedger: Projectors and jobs",
    description="Async projectors (lag, errors), SYNC projectors' time, and scheduled jobs.",
    rows=(
        (
            "Projectors",
            (
                _p(
                    "Projector lag (events)",
                    "PLog events the async projectors have still to handle.",
                    (f"sum by (app) (voedger_projectors_lag{{{SEL}}})", "{{app}}"),
                ),
                _p(
                    "Projector lag (seconds)",
                    "Age of the oldest event the async projectors have still to handle.",
                    (f"max by (app) (voedger_projectors_lag_seconds{{{SEL}}})", "{{app}}"),
                    unit="s",
                ),
                _p(
                    "Projectors in error",
                    "Async projectors failing now.",
                    (f"sum by (app) (voedger_projectors_in_error{{{SEL}}})", "{{app}}"),
                ),
                _p(
                    "SYNC projectors (seconds per second)",
                    "Time commands spent in their SYNC projectors.",
                    (f"sum by (app) (rate(voedger_cp_projectors_seconds{{{SEL}}}[{RATE}]))", "{{app}}"),
                    unit="s",
                ),
            ),
        ),
        (
            "Jobs",
            (
                _p(
                    "Jobs in error",
                    "Jobs whose last run failed.",
                    (f"sum by (app) (voedger_jobs_in_error{{{SEL}}})", "{{app}}"),
                ),
                _p(
                    "Next job run due in",
                    "Seconds until the earliest job run of each application; below zero, jobs are late.",
                    (f"min by (app) (voedger_jobs_next_due_timestamp_seconds{{{SEL}}}) - time()", "{{app}}"),
                    unit="s",
                ),
            ),
        ),
    ),
)

BOARDS = (APP_PROCESSORS, CLUSTER, FEDERATION, PROJECTORS_AND_JOBS)

_DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


def _panel(spec: PanelSpec) -> timeseries.Panel | stat.Panel:
    panel = timeseries.Panel() if spec.kind == "timeseries" else stat.Panel()
    panel.title(spec.title).description(spec.description).datasource(_DATASOURCE).unit(spec.unit)
    panel.height(8).span(spec.width)
    for i, q in enumerate(spec.queries):
        panel.with_target(prometheus.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(chr(ord("A") + i)))
    return panel


def _label_variable(name: str, label: str, metric: str) -> dashboard.QueryVariable:
    """A variable taking any of the values of label ``name`` on ``metric`` (all by default)."""
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(_DATASOURCE)
        .query(f"label_values({metric}, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def build(board: Board) -> dashboard.Dashboard:
    """The SDK's dashboard for ``board``: its variables, then a row per group of panels."""
    b = (
        dashboard.Dashboard(board.title)
        .uid(board.uid)
        .description(board.description)
        .tags(["voedger"])
        .timezone("utc")
        .time("now-1h", "now")
        .refresh("30s")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )
    if board.per_app:
        b.with_variable(_label_variable("app", "Application", "voedger_cp_commands_total"))
    b.with_variable(_label_variable("vvm", "Process", "voedger_cluster_members"))
    b.with_variable(
        dashboard.IntervalVariable("aggregation_interval").label("Aggregation interval").values("1m,5m,30m,1h,1d")
    )
    ids = iter(range(1, 1000))
    for title, panels in board.rows:
        b.with_row(dashboard.Row(title).id(next(ids)))
        for spec in panels:
            b.with_panel(_panel(spec).id(next(ids)))
    return b


def render(board: Board) -> str:
    """The dashboard's JSON, as committed (stable key order, two-space indent, final newline)."""
    return json.dumps(build(board).build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def file_name(board: Board) -> str:
    return f"{board.uid}.json"


def write(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for board in BOARDS:
        path = directory / file_name(board)
        path.write_text(render(board))
        written.append(path)
    return written


def queries(board: Board) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of every panel."""
    return [(spec.title, q.expr) for _, panels in board.rows for spec in panels for q in spec.queries]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voedger.monitoring.dashboards", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DASHBOARDS_DIR, help="folder to write the JSON files to")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
