"""How the router hands a request to its owner.

Every request is resolved to (cluster, application, partition), and ``Routes`` names the
``Transport`` to the partition's owner: this process (``LocalTransport``), another process of the
cluster or another cluster (``HttpTransport``). A transport carries the wire contract of
``router/wire.py`` and nothing else, like httpx's transports: ``send`` and ``aclose``, and a mock
for tests. The router does not change when the federation does; the cluster replaces ``Routes``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from voedger.router.wire import BusRequest, BusResponse, Op, WireError
from voedger.structs import wsid as ws
from voedger.syserror import SysError

__all__ = [
    "BusRequest",
    "BusResponse",
    "ClusterRoutes",
    "MockTransport",
    "Op",
    "Routes",
    "Transport",
    "TransportUnavailable",
    "WireError",
]


class Transport(Protocol):
    """The interface every hop shares."""

    async def send(self, request: BusRequest) -> BusResponse:
        """The owner's answer. Never raises for what the owner answered (errors are responses);
        may raise TransportUnavailable when the request certainly did not reach the owner."""
        ...

    async def aclose(self) -> None:
        """Release connections; the transport is not used afterwards."""
        ...


class TransportUnavailable(Exception):
    """The owner could not be reached and the request was not sent (connection refused, reset
    before the request went out): nothing was done, so it may go to another owner or be retried."""


class MockTransport:
    """A transport that answers with ``handler(request)`` (a function or a coroutine function),
    as httpx's ``MockTransport`` does; for tests."""

    def __init__(self, handler: Callable[[BusRequest], BusResponse | Awaitable[BusResponse]]) -> None:
        self.handler = handler
        self.closed = False

    async def send(self, request: BusRequest) -> BusResponse:
        reply = self.handler(request)
        if inspect.isawaitable(reply):
            reply = await reply
        assert isinstance(reply, BusResponse), f"the handler answered {type(reply).__name__}, not a BusResponse"
        return reply

    async def aclose(self) -> None:
        self.closed = True


class Routes(Protocol):
    """Which transport reaches the owner of a partition: the seam the cluster replaces with one
    that knows the partitions' leases."""

    def transport_for(self, app: str, wsid: int, partition: int) -> Transport:
        """The transport to the owner; raises SysError when no owner is known (answered as is)."""
        ...

    async def aclose(self) -> None:
        """Close every transport."""
        ...


class ClusterRoutes:
    """One transport per cluster ID: every partition of a cluster has the same owner (today:
    this process for its own cluster). A WSID of another cluster is a 400 that names it."""

    def __init__(self, transports: Mapping[int, Transport]) -> None:
        self.transports = dict(transports)

    def transport_for(self, app: str, wsid: int, partition: int) -> Transport:
        cluster = ws.cluster_id(wsid)
        transport = self.transports.get(cluster)
        if transport is None:
            raise SysError(400, f"workspace {wsid} belongs to cluster {cluster}, which this federation does not know")
        return transport

    async def aclose(self) -> None:
        for transport in self.transports.values():
            await transport.aclose()
