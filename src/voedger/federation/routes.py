"""Routing across clusters: a WSID's cluster bits name the cluster that owns the workspace.

``FederationRoutes`` wraps the routes of this cluster (``LeaseRoutes``, or one process's own):
a workspace of this cluster goes where they say; a workspace of another cluster goes, through an
``HttpTransport`` with the federation secret, to that cluster's routers (``internal_url`` in the
directory), which route it on inside their own cluster and never to a third one. The answer
comes back as the owner shaped it, so the client sees the same bytes through any router.

- a cluster the directory does not know: 400 naming it;
- a cluster it knows that cannot be reached: 503 with ``Retry-After`` (the router's answer to
  ``TransportUnavailable``); a command whose answer was lost on the way: 503 saying so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from voedger.federation.directory import ClusterEntry, Directory
from voedger.processors.tally import Tally
from voedger.router.http_transport import HttpTransport
from voedger.router.stream_relay import StreamUpstream
from voedger.router.transport import Routes, Transport
from voedger.router.wire import FEDERATION_BUS_PATH, FEDERATION_SECRET_HEADER, BusRequest, BusResponse
from voedger.structs import wsid as ws
from voedger.syserror import SysError

__all__ = ["ClusterForwards", "FederationRoutes"]


@dataclass
class ClusterForwards:
    """Requests sent to other clusters, by target cluster: those answered, with their durations,
    and those the cluster could not be reached for."""

    answered: dict[int, Tally] = field(default_factory=dict)
    unreachable: dict[int, int] = field(default_factory=dict)

    def observe(self, cluster: int, seconds: float) -> None:
        tally = self.answered.get(cluster)
        if tally is None:
            tally = self.answered[cluster] = Tally()
        tally.count += 1
        tally.observe(seconds)

    def missed(self, cluster: int) -> None:
        self.unreachable[cluster] = self.unreachable.get(cluster, 0) + 1

    def sent(self, cluster: int) -> int:
        """Requests to ``cluster`` that were answered."""
        tally = self.answered.get(cluster)
        return tally.count if tally is not None else 0


class FederationRoutes:
    """``Routes`` of a router in a federation (see the module's docstring)."""

    def __init__(
        self,
        cluster_id: int,
        inner: Routes,
        directory: Callable[[], Directory],
        secret: bytes | str = b"",
        client_factory: Callable[[str], httpx.AsyncClient] | None = None,
    ) -> None:
        self.client_factory = client_factory
        """Makes the HTTP client to a cluster's internal URL (tests: in process); None: real."""
        self.cluster_id = cluster_id
        self.inner = inner
        self.directory = directory
        self.secret = secret
        """Set once the process has it (before it serves)."""
        self.stats = ClusterForwards()
        self._transports: dict[int, tuple[str, _ClusterTransport]] = {}
        self._retired: list[_ClusterTransport] = []
        """Transports to an address the directory no longer gives (closed at the end: a request
        may still be under way on one)."""
        self._upstreams: dict[int, StreamUpstream] = {}
        self._retired_upstreams: list[StreamUpstream] = []

    def transport_for(self, app: str, wsid: int, partition: int) -> Transport:
        cluster = ws.cluster_id(wsid)
        if cluster == self.cluster_id:
            return self.inner.transport_for(app, wsid, partition)
        entry = self.directory().get(cluster)
        if entry is None:
            raise SysError(400, f"workspace {wsid} belongs to cluster {cluster}, which this federation does not know")
        return self._transport(entry)

    def upstream_for(self, wsid: int) -> StreamUpstream | None:
        """Where a stream of the workspace is relayed: None for this cluster's (served here), the
        routers of its cluster for another's (``voedger.router.stream_relay``)."""
        cluster = ws.cluster_id(wsid)
        if cluster == self.cluster_id:
            return None
        entry = self.directory().get(cluster)
        if entry is None:
            raise SysError(400, f"workspace {wsid} belongs to cluster {cluster}, which this federation does not know")
        known = self._upstreams.get(cluster)
        if known is not None and known.url.startswith(entry.internal_url.rstrip("/") + "/"):
            return known
        factory = self.client_factory
        upstream = StreamUpstream(
            cluster, entry.internal_url, self.secret, factory(entry.internal_url) if factory is not None else None
        )
        if known is not None:
            self._retired_upstreams.append(known)
        self._upstreams[cluster] = upstream
        return upstream

    def _transport(self, entry: ClusterEntry) -> Transport:
        known = self._transports.get(entry.id)
        if known is not None and known[0] == entry.internal_url:
            return known[1]
        transport = _ClusterTransport(
            entry.id,
            HttpTransport(
                entry.internal_url,
                self.secret,
                self.client_factory(entry.internal_url) if self.client_factory is not None else None,
                path=FEDERATION_BUS_PATH,
                secret_header=FEDERATION_SECRET_HEADER,
            ),
            self.stats,
        )
        if known is not None:
            self._retired.append(known[1])
        self._transports[entry.id] = (entry.internal_url, transport)
        return transport

    async def aclose(self) -> None:
        await self.inner.aclose()
        for _, transport in self._transports.values():
            await transport.aclose()
        for transport in self._retired:
            await transport.aclose()
        self._transports.clear()
        self._retired = []
        for upstream in [*self._upstreams.values(), *self._retired_upstreams]:
            await upstream.aclose()
        self._upstreams.clear()
        self._retired_upstreams = []


class _ClusterTransport:
    """An ``HttpTransport`` to another cluster, counted per cluster."""

    def __init__(self, cluster: int, http: HttpTransport, stats: ClusterForwards) -> None:
        self.cluster = cluster
        self.http = http
        self.stats = stats

    async def send(self, request: BusRequest) -> BusResponse:
        began = time.perf_counter()
        try:
            reply = await self.http.send(request)
        except Exception:
            self.stats.missed(self.cluster)
            raise
        self.stats.observe(self.cluster, time.perf_counter() - began)
        return reply

    async def aclose(self) -> None:
        await self.http.aclose()
