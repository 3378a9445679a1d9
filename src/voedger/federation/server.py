"""A server process that is part of a federation: the cluster's server plus the federation's parts.

``make_federated_asgi`` builds the same server as ``router.server.make_asgi`` and adds:

- ``FederationRoutes`` around the cluster's routes (a WSID of another cluster goes there);
- the directory, kept current (``StoredDirectory`` on the main cluster, ``FetchedDirectory`` on
  a worker), which also tells the extensions which clusters exist (``ProfileCluster``,
  ``WSClusterID``);
- the internal endpoints ``/_federation/bus`` and, on the main cluster, ``/_federation/directory``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from voedger.auth.keys import KeyImportError
from voedger.federation.directory import Directory
from voedger.federation.endpoint import FederationEndpoint
from voedger.federation.routes import FederationRoutes
from voedger.federation.store import DirectoryStore, federation_secret
from voedger.federation.sync import DEFAULT_INTERVAL, FetchedDirectory, StoredDirectory
from voedger.router.app import FastPath
from voedger.router.server import make_asgi
from voedger.router.transport import Routes
from voedger.router.wire import (
    FEDERATION_BUS_PATH,
    FEDERATION_DIRECTORY_PATH,
    FEDERATION_REFRESH_PATH,
    FEDERATION_STREAM_PATH,
)
from voedger.structs.wsid import MAIN_CLUSTER_ID
from voedger.vvm.federation import HttpFederation
from voedger.vvm.server import VVM, VVM_APP, ServerConfig

__all__ = ["Federated", "FederationConfig", "make_federated_asgi"]

log = logging.getLogger("voedger.federation")


@dataclass(frozen=True)
class FederationConfig:
    main_url: str | None = None
    """A router of the main cluster (its internal URL); None on the main cluster itself."""
    secret: bytes | None = None
    """The federation secret a worker was given; None on the main cluster (it keeps its own)."""
    interval: float = DEFAULT_INTERVAL
    """Seconds between two reads of the directory."""
    client_factory: Callable[[str], httpx.AsyncClient] | None = None
    """Makes the HTTP client for a router's base URL (other clusters', the main's, its own for
    calls between workspaces); None: real connections. A whole federation runs in one test
    process with clients over ``httpx.ASGITransport``."""


class Federated:
    """The federation's parts of one server process, for tests and the operator's views."""

    def __init__(self, config: FederationConfig, cluster_id: int) -> None:
        if (cluster_id == MAIN_CLUSTER_ID) != (config.main_url is None):
            raise ValueError("the main cluster (1) takes no main URL; every other cluster needs one")
        if (config.main_url is None) != (config.secret is None):
            raise ValueError("a worker cluster needs the federation secret; the main cluster keeps its own")
        self.config = config
        self.cluster_id = cluster_id
        self.source: StoredDirectory | FetchedDirectory | None = None
        self.routes: FederationRoutes | None = None
        self.endpoint: FederationEndpoint | None = None
        self.vvm: VVM | None = None
        self.store: DirectoryStore | None = None

    def directory(self) -> Directory:
        return self.source.current if self.source is not None else Directory()

    def knows(self, cluster_id: int) -> bool:
        return cluster_id == self.cluster_id or self.directory().knows(cluster_id)

    def wrap(self, vvm: VVM, inner: Routes) -> Routes:
        self.vvm = vvm
        vvm.knows_cluster = self.knows
        self.routes = FederationRoutes(
            self.cluster_id, inner, self.directory, client_factory=self.config.client_factory
        )
        return self.routes

    async def started(self, vvm: VVM, app: FastPath) -> None:
        assert vvm.provider is not None and self.routes is not None
        storage = await vvm.provider.app_storage(VVM_APP)
        secret = await federation_secret(storage, self.config.secret)
        store = self.store = DirectoryStore(storage)
        if self.config.main_url is None:
            self.source = StoredDirectory(store, self.config.interval)
        else:
            factory = self.config.client_factory
            client = factory(self.config.main_url) if factory is not None else None
            self.source = FetchedDirectory(self.config.main_url, secret, store, self.config.interval, client)
        self.source.on_refresh = self.refreshed
        await self.source.start()
        self.routes.secret = secret
        if self.config.client_factory is not None and isinstance(vvm.federation, HttpFederation):
            old = vvm.federation.client
            vvm.federation.client = self.config.client_factory(vvm.federation.base_url)
            await old.aclose()
        is_main = self.config.main_url is None
        self.endpoint = FederationEndpoint(
            app.router,
            self.cluster_id,
            secret,
            self.directory if is_main else None,
            self._publish if is_main else None,
        )
        app.internal[FEDERATION_BUS_PATH] = self.endpoint.bus
        app.internal[FEDERATION_DIRECTORY_PATH] = self.endpoint.directory_of
        app.internal[FEDERATION_REFRESH_PATH] = self.endpoint.refresh
        app.internal_streams[FEDERATION_STREAM_PATH] = functools.partial(self.endpoint.stream, app.app)
        app.router.stream_relays = self.routes
        if isinstance(self.source, FetchedDirectory):
            app.router.remote_refresh = self.source.refresh_token

    async def _publish(self, cluster_id: int, jwks: list[dict[str, Any]]) -> Directory:
        """The main cluster lists a cluster's keys (its own, or a worker's it was sent)."""
        assert self.store is not None and isinstance(self.source, StoredDirectory)
        directory = await self.store.change(lambda d: d.with_keys(cluster_id, jwks))
        self.source.current = directory if directory.version > self.source.current.version else self.source.current
        return directory

    async def refreshed(self, directory: Directory) -> None:
        """After each read of the directory: publish this cluster's keys if the directory lists
        others (a rotation, a first start), and verify every other cluster's tokens with the
        keys it lists (a cluster that left: none)."""
        assert self.vvm is not None and self.vvm.tokens is not None
        keys = self.vvm.tokens.keys
        own = _normal(keys.jwks())
        mine = directory.get(self.cluster_id)
        if mine is not None and _normal(mine.keys) != own:
            if isinstance(self.source, FetchedDirectory):
                await self.source.publish(self.cluster_id, own)
            else:
                await self._publish(self.cluster_id, own)
        ring = keys.ring
        for cluster_id, entry in directory.clusters.items():
            if cluster_id == self.cluster_id or _normal(ring.jwks_of(cluster_id)) == _normal(entry.keys):
                continue
            try:
                ring.update_cluster(cluster_id, list(entry.keys))
            except KeyImportError as exc:
                log.warning("federation: the keys the directory lists for cluster %d are refused: %s", cluster_id, exc)
        for cluster_id in ring.clusters():
            if cluster_id != self.cluster_id and not directory.knows(cluster_id):
                ring.remove_cluster(cluster_id)

    async def stopping(self, vvm: VVM, app: FastPath) -> None:
        app.internal.pop(FEDERATION_BUS_PATH, None)
        app.internal.pop(FEDERATION_DIRECTORY_PATH, None)
        app.internal.pop(FEDERATION_REFRESH_PATH, None)
        app.internal_streams.pop(FEDERATION_STREAM_PATH, None)
        app.router.stream_relays = None
        app.router.remote_refresh = None
        if self.source is not None:
            await self.source.stop()


def _normal(jwks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return sorted((dict(k) for k in jwks), key=lambda k: str(k.get("kid")))


def make_federated_asgi(config: ServerConfig, federation: FederationConfig) -> tuple[FastPath, VVM, Federated]:
    """The server of ``config``, as a cluster of a federation (``config.federated`` is set)."""
    if not config.federated:
        raise ValueError("ServerConfig.federated must be set for a server of a federation")
    parts = Federated(federation, config.cluster_id)
    app, vvm = make_asgi(config, wrap_routes=parts.wrap, started=parts.started, stopping=parts.stopping)
    return app, vvm, parts
