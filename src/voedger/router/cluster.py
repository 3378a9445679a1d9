"""Routing inside a cluster: a partition's requests go to the process that holds its lease.

Every process accepts every request. ``LeaseRoutes`` hands the router a transport that, when a
request is sent, looks the partition's owner up in the leases this process last read
(``vvm.ownership.table``): this process's own partitions are served in process, the others'
are forwarded over HTTP (``HttpTransport``, with the cluster secret). A partition that is
moving (its owner handed it over a moment ago, or is gone, or the new one is still recovering
it) is waited for, reading its lease again every ``HOLD_STEP``, for up to ``HOLD_SECONDS``; then
the client gets 503 with ``Retry-After``. A request is sent again only when it was refused
unserved (the owner answered "not mine", or could not be reached at all): a command whose fate
is unknown is never sent twice.

Reads that a reader process may answer (``readers.served_by_reader``: API v2 GETs of documents,
collections and views, the schema pages, the platform's read-only queries) are served where
they arrive, whoever owns the partition: they read only storage, which every process of the
cluster shares, and a read at QUORUM sees every write acknowledged before it (a command is
acknowledged once its rows are written at QUORUM). So reads take no hop, spread over every
process, and go on while a partition moves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Final

from voedger.router.http_transport import HttpTransport
from voedger.router.readers import served_by_reader
from voedger.router.transport import Transport, TransportUnavailable
from voedger.router.wire import BusRequest, BusResponse, error_reply
from voedger.structs import wsid as ws
from voedger.syserror import SysError
from voedger.vvm.server import NOT_OWNER_HEADER, VVM

RETRY_AFTER: Final = {"Retry-After": "1"}
HOLD_SECONDS: Final = 10.0
"""How long a request waits for a moving partition's new owner before it answers 503: a
graceful handover takes well under a second on an idle machine, but the new owner's recovery of
the partition can take seconds on a loaded one; a dead owner's lease runs out after its TTL
(6 s by default), so most takeovers are waited out too. Clients' timeouts are longer."""
HOLD_STEP: Final = 0.1


class LeaseRoutes:
    """``Routes`` for a cluster of processes (see the module's docstring)."""

    def __init__(self, vvm: VVM, local: Transport, secret: bytes | str = b"") -> None:
        self.vvm = vvm
        self.local = local
        self.secret = secret
        """Set once the process has read it from storage (before it serves)."""
        self.peers: dict[str, HttpTransport] = {}
        self.stats = vvm.forwards
        self._transport = _Forwarding(self)

    def transport_for(self, app: str, wsid: int, partition: int) -> Transport:
        cluster = ws.cluster_id(wsid)
        if cluster != self.vvm.config.cluster_id:
            raise SysError(400, f"workspace {wsid} belongs to cluster {cluster}, which this federation does not know")
        if self.vvm.ownership is None:
            return self.local
        return self._transport

    def peer(self, address: str) -> HttpTransport:
        transport = self.peers.get(address)
        if transport is None:
            transport = self.peers[address] = HttpTransport(address, self.secret)
        return transport

    async def wake_peers(self, addresses: Sequence[str]) -> None:
        """Tell other processes to look at the leases now (this one let a partition go)."""
        if self.secret:
            await asyncio.gather(*(self.peer(a).wake() for a in addresses))

    def peer_addresses(self) -> list[str]:
        """The addresses of the other live processes of the cluster, as the last read of the
        members found them (none before this process joined)."""
        own = self.vvm.ownership
        if own is None:
            return []
        me = own.me
        return sorted({m.address for m in own.members if m.id != me.id and m.address and m.address != me.address})

    async def notify_peer(self, address: str, batch: bytes) -> bool:
        """Send a batch of notifications to the process at ``address``."""
        if not self.secret:
            return False
        return await self.peer(address).notify(batch)

    async def aclose(self) -> None:
        await self.local.aclose()
        for transport in self.peers.values():
            await transport.aclose()
        self.peers.clear()


class _Forwarding:
    """The transport ``LeaseRoutes`` gives: decides where each request goes when it is sent."""

    def __init__(self, routes: LeaseRoutes) -> None:
        self.routes = routes

    async def send(self, request: BusRequest) -> BusResponse:
        routes = self.routes
        own = routes.vvm.ownership
        if own is None:
            return await routes.local.send(request)
        key = (request.app, request.partition)
        if key not in own.owned and served_by_reader(request):
            routes.stats.reads_here += 1
            return await routes.local.send(request)
        # A partition that is moving has no owner for a moment (a handover, a process that just
        # took it and is recovering it): the request waits up to HOLD_SECONDS for one rather
        # than failing. Nothing has been sent while it waits, so a command is safe to hold.
        deadline = time.monotonic() + HOLD_SECONDS
        fresh = False  # whether the lease was read for this request
        while True:
            if key in own.owned:
                reply = await routes.local.send(request)
                if NOT_OWNER_HEADER not in reply.headers:
                    return reply
                if time.monotonic() >= deadline:
                    return _strip(reply)
            else:
                lease = own.owner(key) if not fresh else await own.refresh(key)
                if lease is None and not fresh:
                    lease, fresh = await own.refresh(key), True
                if lease is not None and lease.owner != own.me.id:
                    began = time.perf_counter()
                    try:
                        reply = await routes.peer(lease.address).send(request)
                    except TransportUnavailable:
                        routes.stats.retried += 1  # not sent: the owner is gone
                    else:
                        routes.stats.count += 1
                        routes.stats.seconds += time.perf_counter() - began
                        if NOT_OWNER_HEADER not in reply.headers:
                            return reply
                        routes.stats.retried += 1  # it let the partition go: the lease says who has it now
                if time.monotonic() >= deadline:
                    break
            await asyncio.sleep(HOLD_STEP)
            fresh = True
        routes.stats.unavailable += 1
        message = f"partition {request.partition} of {request.app} has no owner right now (it is moving); retry"
        return error_reply(SysError(503, message, headers=RETRY_AFTER), request.v2)

    async def aclose(self) -> None:
        return None


def _strip(reply: BusResponse) -> BusResponse:
    headers = {k: v for k, v in reply.headers.items() if k != NOT_OWNER_HEADER}
    return BusResponse(reply.status, headers, reply.body)
