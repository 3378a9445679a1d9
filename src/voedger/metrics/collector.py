"""Voedger's ``voedger_*`` series, read from a running VVM when Prometheus scrapes.

Names and labels are Voedger's (``{app="owner/name",vvm="<host>"}``), so its Grafana
dashboards and alert rules work unchanged. ``voedger_projectors_lag`` is ours: the PLog events
the async projectors of an application have still to handle, summed over its partitions.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from voedger.vvm.server import VVM

# (family, sample, type, help): Voedger's names, without the suffixes prometheus_client adds.
_SERIES = (
    ("voedger_cp_commands", "voedger_cp_commands_total", "counter", "Commands processed."),
    ("voedger_cp_commands_seconds", "voedger_cp_commands_seconds", "counter", "Seconds spent on commands."),
    ("voedger_cp_errors", "voedger_cp_errors_total", "counter", "Commands answered with an error."),
    ("voedger_cp_exec_seconds", "voedger_cp_exec_seconds", "counter", "Seconds spent in command extensions."),
    ("voedger_cp_projectors_seconds", "voedger_cp_projectors_seconds", "counter", "Seconds spent in SYNC projectors."),
    ("voedger_cp_group_writes", "voedger_cp_group_writes_total", "counter", "Group writes (each a durable batch)."),
    ("voedger_cp_group_write_errors", "voedger_cp_group_write_errors_total", "counter", "Group writes that failed."),
    (
        "voedger_cp_group_write_seconds",
        "voedger_cp_group_write_seconds",
        "counter",
        "Seconds group writes took, from their start until durable.",
    ),
    (
        "voedger_cp_fence_seconds",
        "voedger_cp_fence_seconds",
        "counter",
        "Of those, seconds in the conditional PLog batches that fence a cluster's partitions.",
    ),
    ("voedger_qp_queries", "voedger_qp_queries_total", "counter", "Queries and reads processed."),
    ("voedger_qp_queries_seconds", "voedger_qp_queries_seconds", "counter", "Seconds spent on queries and reads."),
    ("voedger_qp_errors", "voedger_qp_errors_total", "counter", "Queries and reads answered with an error."),
    ("voedger_projectors_in_error", "voedger_projectors_in_error", "gauge", "Async projectors failing now."),
    ("voedger_projectors_lag", "voedger_projectors_lag", "gauge", "PLog events async projectors have to handle."),
    ("voedger_jobs_in_error", "voedger_jobs_in_error", "gauge", "Jobs whose last run failed."),
)


class VoedgerCollector(Collector):
    """Collects the series of every application a VVM serves; ``vvm`` names this process."""

    def __init__(self, vvm: VVM, vvm_name: str) -> None:
        self.vvm = vvm
        self.vvm_name = vvm_name

    def collect(self) -> Iterator[Metric]:
        families = {name: Metric(name, doc, kind) for name, _, kind, doc in _SERIES}
        samples = {name: sample for name, sample, _, _ in _SERIES}
        for app_name, app in sorted(self.vvm.apps.items()):
            labels = {"app": app_name, "vvm": self.vvm_name}
            commands, queries = app.stats.commands, app.stats.queries
            partitions = app.partitions.values()
            values = {
                "voedger_cp_commands": commands.count,
                "voedger_cp_commands_seconds": commands.seconds,
                "voedger_cp_errors": commands.errors,
                "voedger_cp_exec_seconds": sum(p.exec.seconds for p in partitions),
                "voedger_cp_projectors_seconds": sum(p.projectors.seconds for p in partitions),
                "voedger_cp_group_writes": sum(p.writes.count for p in partitions),
                "voedger_cp_group_write_errors": sum(p.writes.errors for p in partitions),
                "voedger_cp_group_write_seconds": sum(p.writes.seconds for p in partitions),
                "voedger_cp_fence_seconds": sum(getattr(p.writer, "lwt_seconds", 0.0) for p in partitions),
                "voedger_qp_queries": queries.count,
                "voedger_qp_queries_seconds": queries.seconds,
                "voedger_qp_errors": queries.errors,
                "voedger_projectors_in_error": app.actualizers.in_error,
                "voedger_projectors_lag": sum(app.actualizers.lag().values()),
                "voedger_jobs_in_error": sum(j.in_error for j in app.jobs),
            }
            for name, value in values.items():
                families[name].add_sample(samples[name], labels, float(value))
        yield from families.values()
        yield from self._n10n()
        yield from self._cluster()

    def _n10n(self) -> Iterator[Metric]:
        """Ours: notification channels and subscriptions held here (Voedger's broker counts them
        too), and batches of updates other processes of the cluster did not take."""
        labels = {"vvm": self.vvm_name}
        n10n = self.vvm.n10n
        for name, value, doc in (
            ("voedger_n10n_channels", n10n.broker.num_channels, "Notification channels (SSE streams) open here."),
            ("voedger_n10n_subscriptions", n10n.broker.num_subscriptions, "Subscriptions of those channels."),
        ):
            gauge = Metric(name, doc, "gauge")
            gauge.add_sample(name, labels, float(value))
            yield gauge
        failed = Metric("voedger_n10n_relay_failures", "Batches of notifications a peer did not take.", "counter")
        failed.add_sample("voedger_n10n_relay_failures_total", labels, float(n10n.failed))
        yield failed

    def _cluster(self) -> Iterator[Metric]:
        """Ours: what this process owns of its cluster and how its leases have gone."""
        labels = {"vvm": self.vvm_name}
        owned = Metric("voedger_cluster_partitions_owned", "Partitions this process serves.", "gauge")
        for app_name, app in sorted(self.vvm.apps.items()):
            owned.add_sample("voedger_cluster_partitions_owned", {**labels, "app": app_name}, len(app.partitions))
        yield owned
        own = self.vvm.ownership
        if own is None:
            return
        for name, value, doc in (
            ("voedger_cluster_lease_acquisitions", own.stats.acquired, "Partition leases acquired."),
            ("voedger_cluster_lease_releases", own.stats.released, "Partition leases handed over."),
            ("voedger_cluster_lease_losses", own.stats.lost, "Partition leases lost (ran out, or fenced)."),
        ):
            family = Metric(name, doc, "counter")
            family.add_sample(f"{name}_total", labels, float(value))
            yield family
        fwd = self.vvm.forwards
        forwards: tuple[tuple[str, float, str], ...] = (
            ("voedger_cluster_forwarded", fwd.count, "Requests forwarded to the owner in another process."),
            ("voedger_cluster_forward_seconds", fwd.seconds, "Seconds forwarded requests waited for the owner."),
            ("voedger_cluster_forward_retries", fwd.retried, "Forwards that went on to a partition's new owner."),
            ("voedger_cluster_unrouted", fwd.unavailable, "Requests answered 503: no owner could be reached."),
        )
        for fname, fvalue, fdoc in forwards:
            family = Metric(fname, fdoc, "counter")
            family.add_sample(f"{fname}_total", labels, fvalue)
            yield family
        members = Metric("voedger_cluster_members", "Live members of the cluster, as last read.", "gauge")
        members.add_sample("voedger_cluster_members", labels, float(len(own.members)))
        yield members
