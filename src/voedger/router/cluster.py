"""Routing inside a cluster: a partition's requests go to the process that holds its lease.

Every process accepts every request. ``LeaseRoutes`` hands the router a transport that, when a
request is sent, looks the partition's owner up in the leases this process last read
(``vvm.ownership.table``): this process's own partitions are served in process, the others'
are forwarded once over HTTP (``HttpTransport``, with the cluster secret). A forward that finds
no owner behind it (the owner is gone, or handed the partition over a moment ago) reads the
lease again and tries once more; a command whose fate is unknown is never sent twice.
"""

from __future__ import annotations

import time
from typing import Final

from voedger.router.http_transport import HttpTransport
from voedger.router.transport import Transport, TransportUnavailable
from voedger.router.wire import BusRequest, BusResponse, error_reply
from voedger.structs import wsid as ws
from voedger.syserror import SysError
from voedger.vvm.server import NOT_OWNER_HEADER, VVM

RETRY_AFTER: Final = {"Retry-After": "1"}
ATTEMPTS: Final = 3


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
        for attempt in range(ATTEMPTS):
            if key in own.owned:
                reply = await routes.local.send(request)
                if NOT_OWNER_HEADER not in reply.headers:
                    return reply
                if attempt == ATTEMPTS - 1:
                    return _strip(reply)
                await own.refresh(key)
                continue
            lease = own.owner(key) if attempt == 0 else await own.refresh(key)
            if lease is None and attempt == 0:
                lease = await own.refresh(key)
            if lease is None:
                break
            if lease.owner == own.me.id:
                continue  # acquired a moment ago: served here on the next round
            began = time.perf_counter()
            try:
                reply = await routes.peer(lease.address).send(request)
            except TransportUnavailable:
                routes.stats.retried += 1
                continue  # not sent: the owner is gone; read the lease again
            routes.stats.count += 1
            routes.stats.seconds += time.perf_counter() - began
            if NOT_OWNER_HEADER not in reply.headers:
                return reply
            routes.stats.retried += 1  # it let the partition go: the lease says who has it now
        routes.stats.unavailable += 1
        message = f"partition {request.partition} of {request.app} has no owner right now (it is moving); retry"
        return error_reply(SysError(503, message, headers=RETRY_AFTER), request.v2)

    async def aclose(self) -> None:
        return None


def _strip(reply: BusResponse) -> BusResponse:
    headers = {k: v for k, v in reply.headers.items() if k != NOT_OWNER_HEADER}
    return BusResponse(reply.status, headers, reply.body)
