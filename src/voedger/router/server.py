"""Running the platform: the VVM behind the ASGI router, served by voedger.router.http."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.applications import Starlette

from voedger.auth import StorageSecretStore, cluster_secret
from voedger.router.app import FastPath, build_app
from voedger.router.bus_endpoint import BusEndpoint
from voedger.router.cluster import LeaseRoutes
from voedger.router.local import LocalTransport
from voedger.router.owner import Owner
from voedger.router.readers import ReaderRoutes
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
    readers: Sequence[str] = (),
) -> tuple[FastPath, VVM]:
    """An ASGI app whose lifespan starts the VVM and stops it (draining commands) at shutdown.

    Its own cluster's partitions are served in process; once started, it also serves requests
    that other processes of the cluster forward to it with the cluster secret from storage.
    A federation wraps the cluster's routes (``wrap_routes``) and starts and stops its own parts
    once the VVM runs (``started``) and before it stops (``stopping``). ``readers``: the internal
    addresses of the reader processes beside this one (``--processes``), told of the views that
    change here as the processes of a cluster are."""
    vvm = VVM(config)
    owner = Owner(vvm)
    routes: Routes = LeaseRoutes(vvm, LocalTransport(vvm, owner))
    cluster_routes = routes
    if wrap_routes is not None:
        routes = wrap_routes(vvm, routes)
    app = build_app(vvm, routes)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        secret = await _start_with_bus(vvm, owner, app, on_wake=vvm.wake)
        assert isinstance(cluster_routes, LeaseRoutes)
        cluster_routes.secret = secret
        vvm.peer_waker = cluster_routes.wake_peers
        if started is not None:
            await started(vvm, app)
        if vvm.ownership is not None:  # views change in the partitions' owners: tell the others
            vvm.n10n.peers = cluster_routes.peer_addresses
            vvm.n10n.sender = cluster_routes.notify_peer
            # and the others send this one the changes of the keys watched here only
            own = vvm.ownership
            vvm.n10n.start_telling(own.me.address, cluster_routes.tell_peer_watched, lambda: own.joined)
        elif readers:
            reader_list = list(readers)
            vvm.n10n.peers = lambda: reader_list
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


async def _start_with_bus(vvm: VVM, owner: Owner, app: FastPath, on_wake: Callable[[], None] | None = None) -> bytes:
    """Start ``vvm``, then serve requests other processes send it (``/_cluster/bus``, notifications)
    with the cluster secret from storage, which it returns for the process's own hops."""
    await vvm.start()
    assert vvm.provider is not None
    secret = await cluster_secret(StorageSecretStore(await vvm.provider.app_storage(VVM_APP)))
    app.bus = BusEndpoint(owner, secret, on_wake=on_wake, notifications=vvm.n10n)
    return secret


def make_reader_asgi(config: ServerConfig, writer_url: str, me: str = "") -> tuple[FastPath, VVM]:
    """The ASGI app of a reader process (``config.reader``): reads served from the SQLite files
    read-only, everything else sent to the writer at ``writer_url`` (``router.readers``). It takes
    the notifications the writer sends (``POST /_cluster/n10n``) for its own subscribers and, given
    ``me`` (its internal URL, as the writer lists it), tells the writer the keys they watch, so
    that the writer sends it the updates of those keys only."""
    vvm = VVM(config)
    owner = Owner(vvm)
    routes = ReaderRoutes(vvm, LocalTransport(vvm, owner), writer_url)
    app = build_app(vvm, routes)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        routes.secret = await _start_with_bus(vvm, owner, app)
        if me:
            vvm.n10n.peers = lambda: [writer_url]  # it sends nothing (no sender): it only tells
            vvm.n10n.start_telling(me, routes.tell_writer_watched)
        settle_heap()
        log.info("serving reads of %s; the rest goes to %s", ", ".join(sorted(vvm.apps)), writer_url)
        try:
            yield
        finally:
            vvm.n10n.broker.shut()
            await app.router.routes.aclose()
            await vvm.stop()
            log.info("stopped")

    app.app.router.lifespan_context = lifespan
    return app, vvm


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Scope]]
Send = Callable[[Scope], Awaitable[None]]


def without_lifespan(
    app: Callable[[Scope, Receive, Send], Awaitable[None]],
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """``app`` for a second listener of the same process (the internal port of ``--processes``):
    its requests go to ``app``, whose lifespan the first listener runs; this one's is a no-op."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return asgi
