"""Running the platform: the VVM behind the ASGI router, served by voedger.router.http."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette

from voedger.auth import StorageSecretStore, cluster_secret
from voedger.router.app import FastPath, build_app
from voedger.router.bus_endpoint import BusEndpoint
from voedger.router.cluster import LeaseRoutes
from voedger.router.local import LocalTransport
from voedger.router.owner import Owner
from voedger.router.transport import Routes
from voedger.vvm.server import VVM, VVM_APP, ServerConfig

log = logging.getLogger("voedger.server")


GC_THRESHOLDS = (20_000, 50, 100)
"""Young collections every 20,000 allocations instead of 700: a command allocates hundreds of
short-lived objects, and a collection every few commands costs CPU and adds latency."""


def settle_heap() -> None:
    """After start: move what deployment built (application models, caches) out of the
    collector's sight, since it lives as long as the process, and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


Hook = Callable[[VVM, FastPath], Awaitable[None]]


def make_asgi(
    config: ServerConfig,
    wrap_routes: Callable[[VVM, Routes], Routes] | None = None,
    started: Hook | None = None,
    stopping: Hook | None = None,
) -> tuple[FastPath, VVM]:
    """An ASGI app whose lifespan starts the VVM and stops it (draining commands) at shutdown.

    Its own cluster's partitions are served in process; once started, it also serves requests
    that other processes of the cluster forward to it with the cluster secret from storage.
    A federation wraps the cluster's routes (``wrap_routes``) and starts and stops its own parts
    once the VVM runs (``started``) and before it stops (``stopping``)."""
    vvm = VVM(config)
    owner = Owner(vvm)
    routes: Routes = LeaseRoutes(vvm, LocalTransport(vvm, owner))
    cluster_routes = routes
    if wrap_routes is not None:
        routes = wrap_routes(vvm, routes)
    app = build_app(vvm, routes)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await vvm.start()
        assert vvm.provider is not None
        secret = await cluster_secret(StorageSecretStore(await vvm.provider.app_storage(VVM_APP)))
        assert isinstance(cluster_routes, LeaseRoutes)
        cluster_routes.secret = secret
        app.bus = BusEndpoint(owner, secret, on_wake=vvm.wake, notifications=vvm.n10n)
        vvm.peer_waker = cluster_routes.wake_peers
        if started is not None:
            await started(vvm, app)
        if vvm.ownership is not None:  # views change in the partitions' owners: tell the others
            vvm.n10n.peers = cluster_routes.peer_addresses
            vvm.n10n.sender = cluster_routes.notify_peer
        settle_heap()
        log.info("serving %s", ", ".join(sorted(vvm.apps)))
        try:
            yield
        finally:
            if stopping is not None:
                await stopping(vvm, app)
            await vvm.leave()  # done already when the server was told to stop (SIGTERM)
            await app.router.routes.aclose()  # connections to other processes, if any
            await vvm.stop()
            log.info("stopped")

    app.app.router.lifespan_context = lifespan
    return app, vvm
