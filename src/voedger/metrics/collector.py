"""Voedger's ``voedger_*`` series, read from a running VVM when Prometheus scrapes.

Names and labels are Voedger's (``{app="owner/name",vvm="<host>"}``), so its Grafana
dashboards and alert rules work unchanged. Ours, in the same style: ``voedger_projectors_lag``
(the PLog events the async projectors of an application have still to handle, summed over its
partitions), the latency histograms (``voedger_cp_latency_seconds``, ``voedger_qp_latency_seconds``,
``voedger_storage_write_latency_seconds``) from which PromQL computes p99, how late the event
loop runs (``voedger_event_loop_lag_seconds``), storage errors by kind, requests to the storage
servers by kind (``voedger_storage_requests_total``),
group commit size, partitions, jobs' next due run, HTTP requests by route family and status, and
the ``voedger_cluster_*`` series of a process in a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from voedger.processors.tally import Tally
from voedger.vvm.server import VVM

ERROR_KINDS = ("fenced", "timeout", "other")
"""Kinds of failed group writes (``voedger_storage_errors_total{kind}``), each always present."""

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
    (
        "voedger_projectors_lag_seconds",
        "voedger_projectors_lag_seconds",
        "gauge",
        "Age of the oldest event async projectors have still to handle.",
    ),
    ("voedger_jobs_in_error", "voedger_jobs_in_error", "gauge", "Jobs whose last run failed."),
    (
        "voedger_cp_group_commands",
        "voedger_cp_group_commands_total",
        "counter",
        "Commands in the group writes (over voedger_cp_group_writes_total: the mean group size).",
    ),
    ("voedger_app_partitions", "voedger_app_partitions", "gauge", "Partitions the application has (in all)."),
    (
        "voedger_qp_kept_rows_hits",
        "voedger_qp_kept_rows_hits_total",
        "counter",
        "Storage reads of rows served from the rows kept where the workspace is written.",
    ),
    (
        "voedger_qp_kept_rows_misses",
        "voedger_qp_kept_rows_misses_total",
        "counter",
        "Storage reads of rows that found nothing kept (served from storage).",
    ),
    (
        "voedger_qp_kept_answers_hits",
        "voedger_qp_kept_answers_hits_total",
        "counter",
        "Queries answered with a kept answer (q.sys.Collection where the workspace is written).",
    ),
    (
        "voedger_qp_kept_answers_misses",
        "voedger_qp_kept_answers_misses_total",
        "counter",
        "Queries whose answer could be kept but was computed (none kept, or dropped by a write).",
    ),
    ("voedger_qp_kept_bytes", "voedger_qp_kept_bytes", "gauge", "Bytes counted for the rows and answers kept."),
    (
        "voedger_qp_exec_fields_seconds",
        "voedger_qp_exec_fields_seconds",
        "counter",
        "Seconds reads spent in the rows processor's fields stage.",
    ),
    (
        "voedger_qp_exec_enrich_seconds",
        "voedger_qp_exec_enrich_seconds",
        "counter",
        "Seconds reads spent in the rows processor's enrich stage.",
    ),
    (
        "voedger_qp_exec_filter_seconds",
        "voedger_qp_exec_filter_seconds",
        "counter",
        "Seconds reads spent in the rows processor's filter stage.",
    ),
    (
        "voedger_qp_exec_order_seconds",
        "voedger_qp_exec_order_seconds",
        "counter",
        "Seconds reads spent in the rows processor's order stage.",
    ),
    (
        "voedger_qp_exec_count_seconds",
        "voedger_qp_exec_count_seconds",
        "counter",
        "Seconds reads spent in the rows processor's count stage.",
    ),
    (
        "voedger_qp_exec_send_seconds",
        "voedger_qp_exec_send_seconds",
        "counter",
        "Seconds reads spent in the rows processor's send stage.",
    ),
)

# (family, help, what of an application's stats it reads)
_HISTOGRAMS = (
    ("voedger_cp_latency_seconds", "Commands: seconds from arrival to durable result."),
    ("voedger_qp_latency_seconds", "Queries and reads: seconds to answer."),
    ("voedger_storage_write_latency_seconds", "Group writes: seconds from their start until durable."),
)


class VoedgerCollector(Collector):
    """Collects the series of every application a VVM serves; ``vvm`` names this process."""

    def __init__(self, vvm: VVM, vvm_name: str) -> None:
        self.vvm = vvm
        self.vvm_name = vvm_name

    def collect(self) -> Iterator[Metric]:
        families = {name: Metric(name, doc, kind) for name, _, kind, doc in _SERIES}
        samples = {name: sample for name, sample, _, _ in _SERIES}
        histograms = {name: Metric(name, doc, "histogram") for name, doc in _HISTOGRAMS}
        storage_errors = Metric("voedger_storage_errors", "Failed group writes, by kind.", "counter")
        next_due = Metric(
            "voedger_jobs_next_due_timestamp_seconds",
            "When the application's earliest job run is due (Unix time); long past means jobs are late.",
            "gauge",
        )
        last_success = Metric(
            "voedger_jobs_last_success_timestamp_seconds",
            "When a job of the application last ran successfully (Unix time).",
            "gauge",
        )
        errors: dict[str, int] = {}
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
                "voedger_projectors_lag_seconds": app.actualizers.lag_seconds(),
                "voedger_jobs_in_error": sum(j.in_error for j in app.jobs),
                "voedger_cp_group_commands": sum(p.group_commands for p in partitions),
                "voedger_app_partitions": app.runtime.num_partitions,
                "voedger_qp_kept_rows_hits": app.runtime.rows.hits,
                "voedger_qp_kept_rows_misses": app.runtime.rows.misses,
                "voedger_qp_kept_answers_hits": app.runtime.rows.result_hits,
                "voedger_qp_kept_answers_misses": app.runtime.rows.result_misses,
                "voedger_qp_kept_bytes": app.runtime.rows.size,
                "voedger_qp_exec_fields_seconds": app.queries.stages.fields,
                "voedger_qp_exec_enrich_seconds": app.queries.stages.enrich,
                "voedger_qp_exec_filter_seconds": app.queries.stages.filter,
                "voedger_qp_exec_order_seconds": app.queries.stages.order,
                "voedger_qp_exec_count_seconds": app.queries.stages.count,
                "voedger_qp_exec_send_seconds": app.queries.stages.send,
            }
            for name, value in values.items():
                families[name].add_sample(samples[name], labels, float(value))
            writes = Tally()
            for p in partitions:
                _merge(writes, p.writes)
                for kind, n in p.write_errors.items():
                    errors[kind] = errors.get(kind, 0) + n
            for (name, _), tally in zip(_HISTOGRAMS, (commands, queries, writes), strict=True):
                histogram_samples(histograms[name], name, labels, tally)
            for kind in ERROR_KINDS:
                storage_errors.add_sample(
                    "voedger_storage_errors_total", {**labels, "kind": kind}, float(errors.pop(kind, 0))
                )
            due = min((j.next_due() for j in app.jobs), default=math.inf)
            if math.isfinite(due):
                next_due.add_sample("voedger_jobs_next_due_timestamp_seconds", labels, due)
            successes = [t for j in app.jobs if (t := j.last_success) is not None]
            if successes:
                last_success.add_sample("voedger_jobs_last_success_timestamp_seconds", labels, max(successes))
        yield from families.values()
        yield from histograms.values()
        yield storage_errors
        yield next_due
        yield last_success
        yield from self._http()
        yield from self._loop()
        yield from self._storage()
        yield from self._n10n()
        yield from self._cluster()

    def _http(self) -> Iterator[Metric]:
        family = Metric("voedger_http_requests", "HTTP requests answered, by route family and status.", "counter")
        for (route, status), n in sorted(self.vvm.http.requests.items()):
            labels = {"vvm": self.vvm_name, "family": route, "status": str(status)}
            family.add_sample("voedger_http_requests_total", labels, float(n))
        yield family
        if not self.vvm.http.listeners:
            return  # the API is served by someone else (tests in process)
        open_now, refused = self.vvm.http.connections()
        labels = {"vvm": self.vvm_name}
        conns = Metric("voedger_http_connections", "Client connections to the API open now.", "gauge")
        conns.add_sample("voedger_http_connections", labels, float(open_now))
        yield conns
        refusals = Metric(
            "voedger_http_refused_connections", "Connections refused (beyond --max-connections).", "counter"
        )
        refusals.add_sample("voedger_http_refused_connections_total", labels, float(refused))
        yield refusals

    def _loop(self) -> Iterator[Metric]:
        """Ours: how late the process's event loop wakes what is due (every request waits that)."""
        labels = {"vvm": self.vvm_name}
        name = "voedger_event_loop_lag_seconds"
        lag = Metric(name, "How late the event loop woke a task that slept: seconds past when it was due.", "histogram")
        histogram_samples(lag, name, labels, self.vvm.loop_lag.tally)
        yield lag
        worst = Metric("voedger_event_loop_lag_max_seconds", "The latest wake-up since the process started.", "gauge")
        worst.add_sample("voedger_event_loop_lag_max_seconds", labels, self.vvm.loop_lag.worst)
        yield worst

    def _storage(self) -> Iterator[Metric]:
        """Ours: requests this process sent to the storage's servers, by kind (none on an
        embedded store): how many reads, writes, batches and Paxos rounds the load costs."""
        provider = self.vvm.provider
        requests = provider.requests() if provider is not None else {}
        if not requests:
            return
        labels = {"vvm": self.vvm_name}
        family = Metric("voedger_storage_requests", "Requests sent to the storage servers, by kind.", "counter")
        for kind, n in requests.items():
            family.add_sample("voedger_storage_requests_total", {**labels, "kind": kind}, float(n))
        yield family

    def _n10n(self) -> Iterator[Metric]:
        """Ours: notification channels and subscriptions held here (Voedger's broker counts them
        too), and the batches of updates sent to the other processes of the cluster and those
        they did not take."""
        labels = {"vvm": self.vvm_name}
        n10n = self.vvm.n10n
        for name, value, doc in (
            ("voedger_n10n_channels", n10n.broker.num_channels, "Notification channels (SSE streams) open here."),
            ("voedger_n10n_subscriptions", n10n.broker.num_subscriptions, "Subscriptions of those channels."),
        ):
            gauge = Metric(name, doc, "gauge")
            gauge.add_sample(name, labels, float(value))
            yield gauge
        sent = Metric("voedger_n10n_relay_requests", "Batches of notifications sent to other processes.", "counter")
        sent.add_sample("voedger_n10n_relay_requests_total", labels, float(n10n.sent))
        yield sent
        failed = Metric("voedger_n10n_relay_failures", "Batches of notifications a peer did not take.", "counter")
        failed.add_sample("voedger_n10n_relay_failures_total", labels, float(n10n.failed))
        yield failed
        skipped = Metric(
            "voedger_n10n_relay_skipped",
            "Batches of notifications not sent to a process because it watches none of their keys.",
            "counter",
        )
        skipped.add_sample("voedger_n10n_relay_skipped_total", labels, float(n10n.skipped))
        yield skipped

    def _cluster(self) -> Iterator[Metric]:
        """Ours: what this process owns of its cluster and how its leases have gone."""
        labels = {"vvm": self.vvm_name}
        owned = Metric("voedger_cluster_partitions_owned", "Partitions this process serves.", "gauge")
        for app_name, app in sorted(self.vvm.apps.items()):
            owned.add_sample("voedger_cluster_partitions_owned", {**labels, "app": app_name}, len(app.partitions))
        yield owned
        own = self.vvm.ownership
        # A process on storage of its own leases nothing: its lease series stay at zero.
        leases = (0, 0, 0) if own is None else (own.stats.acquired, own.stats.released, own.stats.lost)
        for name, value, doc in (
            ("voedger_cluster_lease_acquisitions", leases[0], "Partition leases acquired."),
            ("voedger_cluster_lease_releases", leases[1], "Partition leases handed over."),
            ("voedger_cluster_lease_losses", leases[2], "Partition leases lost (ran out, or fenced)."),
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
            ("voedger_cluster_reads_here", fwd.reads_here, "Reads of other processes' partitions served here."),
            ("voedger_cluster_reads_at_owner", fwd.reads_at_owner, "Reads answered by another process (the owner)."),
            ("voedger_cluster_read_hops_failed", fwd.read_hops_failed, "Reads the owner did not answer: served here."),
        )
        for fname, fvalue, fdoc in forwards:
            family = Metric(fname, fdoc, "counter")
            family.add_sample(f"{fname}_total", labels, fvalue)
            yield family
        members = Metric("voedger_cluster_members", "Live members of the cluster, as last read.", "gauge")
        members.add_sample("voedger_cluster_members", labels, 1.0 if own is None else float(len(own.members)))
        yield members
        yield from self._federation()

    def _federation(self) -> Iterator[Metric]:
        """Ours: calls to applications through the federation, by target."""
        calls = Metric("voedger_federation_calls", "Calls through the federation.", "counter")
        errors = Metric("voedger_federation_errors", "Federation calls answered 5xx or not at all.", "counter")
        latency = Metric(
            "voedger_federation_latency_seconds", "Federation calls: seconds, retries included.", "histogram"
        )
        for target, tally in sorted(self.vvm.federation_stats.calls.items()):
            labels = {"vvm": self.vvm_name, "target": target}
            calls.add_sample("voedger_federation_calls_total", labels, float(tally.count))
            errors.add_sample("voedger_federation_errors_total", labels, float(tally.errors))
            histogram_samples(latency, "voedger_federation_latency_seconds", labels, tally)
        yield calls
        yield errors
        yield latency


def _merge(into: Tally, tally: Tally) -> None:
    into.count += tally.count
    into.seconds += tally.seconds
    for i, n in enumerate(tally.buckets):
        into.buckets[i] += n


def histogram_samples(family: Metric, name: str, labels: dict[str, str], tally: Tally) -> None:
    """Adds ``tally``'s durations to ``family`` as a Prometheus histogram (buckets, count, sum)."""
    for bound, n in tally.cumulative():
        family.add_sample(f"{name}_bucket", {**labels, "le": "+Inf" if math.isinf(bound) else repr(bound)}, float(n))
    family.add_sample(f"{name}_count", labels, float(tally.count))
    family.add_sample(f"{name}_sum", labels, tally.seconds)
