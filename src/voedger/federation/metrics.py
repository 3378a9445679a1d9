"""What an operator sees of the federation from one router: series for Prometheus and
``GET /api/federation`` on the metrics port (the directory as this router knows it, and its
traffic to other clusters)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voedger.federation.routes import ClusterForwards
from voedger.federation.server import Federated
from voedger.metrics.collector import histogram_samples
from voedger.processors.tally import Tally

__all__ = ["FederationCollector", "federation_route", "federation_status"]


def _forwards(parts: Federated) -> ClusterForwards:
    return parts.routes.stats if parts.routes is not None else ClusterForwards()


class FederationCollector(Collector):
    def __init__(self, parts: Federated, vvm_name: str) -> None:
        self.parts = parts
        self.vvm_name = vvm_name

    def collect(self) -> Iterator[Metric]:
        labels = {"vvm": self.vvm_name, "cluster": str(self.parts.cluster_id)}
        directory = self.parts.directory()
        version = Metric(
            "voedger_federation_directory_version", "Version of the directory this router routes by.", "gauge"
        )
        version.add_sample("voedger_federation_directory_version", labels, float(directory.version))
        yield version
        clusters = Metric("voedger_federation_clusters", "Clusters in that directory.", "gauge")
        clusters.add_sample("voedger_federation_clusters", labels, float(len(directory.clusters)))
        yield clusters
        failures = Metric(
            "voedger_federation_directory_read_failures",
            "Reads of the directory that failed in a row (main cluster or storage out of reach).",
            "gauge",
        )
        source = self.parts.source
        failures.add_sample(
            "voedger_federation_directory_read_failures", labels, float(source.failures if source else 0)
        )
        yield failures
        stats = _forwards(self.parts)
        sent = Metric("voedger_federation_forwarded", "Requests forwarded to another cluster.", "counter")
        unreachable = Metric(
            "voedger_federation_unreachable", "Requests another cluster could not be reached for (503).", "counter"
        )
        seconds = Metric(
            "voedger_federation_forward_seconds", "Seconds requests forwarded to another cluster took.", "histogram"
        )
        for target in sorted(set(stats.answered) | set(stats.unreachable)):
            tl = {**labels, "target": str(target)}
            tally = stats.answered.get(target, Tally())
            sent.add_sample("voedger_federation_forwarded_total", tl, float(tally.count))
            unreachable.add_sample("voedger_federation_unreachable_total", tl, float(stats.unreachable.get(target, 0)))
            histogram_samples(seconds, "voedger_federation_forward_seconds", tl, tally)
        yield sent
        yield unreachable
        yield seconds


def federation_status(parts: Federated) -> dict[str, Any]:
    """This router's view: its cluster, the directory it routes by (no secrets in it: keys are
    public), and its traffic to each other cluster."""
    stats = _forwards(parts)
    source = parts.source
    return {
        "cluster": parts.cluster_id,
        "main": parts.config.main_url is None,
        "directoryReadFailures": source.failures if source is not None else 0,
        "directory": parts.directory().to_json(),
        "forwarded": {
            str(t): {
                "requests": stats.sent(t),
                "seconds": round(stats.answered[t].seconds if t in stats.answered else 0.0, 6),
                "unreachable": stats.unreachable.get(t, 0),
            }
            for t in sorted(set(stats.answered) | set(stats.unreachable))
        },
    }


def federation_route(parts: Federated) -> Route:
    async def status(request: Request) -> Response:
        return JSONResponse(federation_status(parts))

    return Route("/api/federation", status, methods=["GET"])
