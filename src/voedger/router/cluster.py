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
collections and views, the schema pages, the platform's read-only queries) need no owner: they
read only storage, which every process of the cluster shares, and a read at QUORUM sees every
write acknowledged before it (a command is acknowledged once its rows are written at QUORUM).
Such a read of a partition owned elsewhere still goes to the owner first (``reads_at_owner``, the
default): the owner keeps the rows its reads found (``structs/rowcache.py``), so one hop on
loopback costs less than the storage statements the read would make here. A read is
idempotent, so when the owner does not answer within ``read_hop_seconds`` (paused, overloaded)
or cannot be reached, the read is served here; and the owner is then left alone by reads for
``READ_BACKOFF_SECONDS``, but for one read at a time that tries it again. With no owner (the
partition is moving) a read is served here at once: reads go on while partitions move.
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
READ_BACKOFF_SECONDS: Final = 2.0
"""How long reads are served here, without asking, after the owner failed to answer one in
time; then one read tries the owner again."""
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

    async def tell_peer_watched(self, address: str, message: bytes) -> bool | None:
        """Tell the process at ``address`` the keys watched here (``Notifications.announcer``)."""
        if not self.secret:
            return False
        return await self.peer(address).tell_watched(message)

    async def aclose(self) -> None:
        await self.local.aclose()
        for transport in self.peers.values():
            await transport.aclose()
        self.peers.clear()


class _Forwarding:
    """The transport ``LeaseRoutes`` gives: decides where each request goes when it is sent."""

    def __init__(self, routes: LeaseRoutes) -> None:
        self.routes = routes
        self.slow: dict[str, float] = {}
        """Owners that failed to answer a read in time -> until when reads skip them."""

    async def send(self, request: BusRequest) -> BusResponse:
        routes = self.routes
        own = routes.vvm.ownership
        if own is None:
            return await routes.local.send(request)
        key = (request.app, request.partition)
        if key not in own.owned and served_by_reader(request):
            lease = own.owner(key) if routes.vvm.config.reads_at_owner else None
            if lease is not None and lease.owner != own.me.id and self._may_ask(lease.address):
                reply = await self._read_at(lease.address, request)
                if reply is not None:
                    return reply
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

    def _may_ask(self, address: str) -> bool:
        """Whether a read may go to the owner at ``address``: yes, unless it failed to answer a
        read lately; once ``READ_BACKOFF_SECONDS`` have passed, this read is the one that tries
        it again (the others are served here until it answers)."""
        until = self.slow.get(address)
        if until is None:
            return True
        now = time.monotonic()
        if now < until:
            return False
        self.slow[address] = now + READ_BACKOFF_SECONDS
        return True

    async def _read_at(self, address: str, request: BusRequest) -> BusResponse | None:
        """The owner's answer to a read, or None when it should be served here: the owner did
        not answer within ``read_hop_seconds``, could not be reached, or no longer owns it."""
        stats = self.routes.stats
        try:
            reply = await asyncio.wait_for(
                self.routes.peer(address).send(request), self.routes.vvm.config.read_hop_seconds
            )
        except (TransportUnavailable, TimeoutError):
            self.slow[address] = time.monotonic() + READ_BACKOFF_SECONDS
            stats.read_hops_failed += 1
            return None
        if NOT_OWNER_HEADER in reply.headers:
            return None
        self.slow.pop(address, None)
        stats.reads_at_owner += 1
        return reply

    async def aclose(self) -> None:
        return None


def _strip(reply: BusResponse) -> BusResponse:
    headers = {k: v for k, v in reply.headers.items() if k != NOT_OWNER_HEADER}
    return BusResponse(reply.status, headers, reply.body)
