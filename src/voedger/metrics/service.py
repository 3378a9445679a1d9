"""The metrics service: ``GET /metrics`` (Prometheus text), ``GET /metrics/check`` ("ok"),
``GET /api/cluster`` (members and owners, JSON) and ``GET /monitor`` (a page for a browser).

Voedger serves it on a port of its own (8000 in production), apart from the API; anything else
is a 404 there, a wrong method included.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from voedger.metrics.collector import VoedgerCollector
from voedger.metrics.monitor import Monitor
from voedger.vvm.server import VVM


def metrics_app(
    vvm: VVM, vvm_name: str, collectors: Sequence[Collector] = (), routes: Sequence[Route] = ()
) -> Starlette:
    """An ASGI app serving the VVM's metrics; its own registry, so nothing else leaks in (but the
    standard ``process_*`` series: CPU seconds, resident memory, open file descriptors).
    ``collectors`` and ``routes``: more series and views (the federation's)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VoedgerCollector(vvm, vvm_name))
    for collector in collectors:
        registry.register(collector)
    ProcessCollector(registry=registry)  # process_cpu_seconds_total, process_resident_memory_bytes, ...

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def check(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def cluster(request: Request) -> Response:
        return JSONResponse(vvm.cluster_status())

    monitor = Monitor(vvm, vvm_name)

    async def page(request: Request) -> Response:
        return HTMLResponse(monitor.page(), headers={"cache-control": "no-store"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("404 not found", status_code=404)

    served = [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/metrics/check", check, methods=["GET"]),
        Route("/api/cluster", cluster, methods=["GET"]),
        Route("/monitor", page, methods=["GET"]),
        *routes,
    ]
    return Starlette(routes=served, exception_handlers={404: not_found, 405: not_found})
