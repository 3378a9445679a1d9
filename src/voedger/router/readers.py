"""Routing in a reader process of ``voedger server --processes N``.

A reader serves the reads it can answer from the SQLite files alone, each in one read
transaction (``storage.read_snapshot``: one snapshot for the whole read, so it never sees part
of a group); everything else goes to the writer, the process that holds the data directory and
owns every partition, over the hop cluster processes use (``HttpTransport`` to the writer's
``POST /_cluster/bus`` with the cluster secret), and its answer comes back unchanged.

Served here: API v2 GETs of documents, collections and views, the schema pages, and API v1 and
v2 queries of ``READ_ONLY_QUERIES``: the platform's queries that only read this workspace's
records and views. Not: commands, sign-in and token functions, queries that send mail or call
other workspaces, and an application's own queries (nothing says they have no side effects).
"""

from __future__ import annotations

from typing import Final

from voedger.appdef import QName, QNameError
from voedger.router.http_transport import HttpTransport
from voedger.router.transport import Transport
from voedger.router.wire import SCHEMA_OPS, BusRequest, BusResponse, Op
from voedger.storage import read_snapshot
from voedger.structs import wsid as ws
from voedger.syserror import SysError
from voedger.vvm.server import VVM

__all__ = ["READ_ONLY_QUERIES", "ReaderRoutes", "served_by_reader"]

READ_ONLY_QUERIES: Final = frozenset(
    QName("sys", name)
    for name in (
        "Echo",
        "Modules",
        "Collection",
        "GetCDoc",
        "State",
        "Journal",
        "QueryChildWorkspaceByName",
        "DescribePackageNames",
        "DescribePackage",
    )
)
"""Queries a reader process answers itself: they read the workspace's own rows and nothing
else. ``q.sys.GRCount`` is the process's own count (the writer's is asked); ``q.sys.SqlQuery``
may read other workspaces through the federation, which is the writer's."""
_V2_READS: Final = frozenset({Op.V2_DOCS, Op.V2_CDOCS, Op.V2_VIEWS})


def served_by_reader(request: BusRequest) -> bool:
    """Whether a reader process answers ``request`` from storage (else the writer does)."""
    op = request.op
    if op in SCHEMA_OPS:
        return True
    if op in _V2_READS:
        return request.method == "GET"
    if op is Op.V1_QUERY or (op is Op.V2_QUERIES and request.method == "GET"):
        try:
            return QName.parse(request.resource.removeprefix("q.")) in READ_ONLY_QUERIES
        except QNameError:
            return True  # answered 400 here, as the writer would
    return False


class ReaderRoutes:
    """``Routes`` of a reader process: reads served here, the rest sent to the writer."""

    def __init__(self, vvm: VVM, local: Transport, writer_url: str, secret: bytes | str = b"") -> None:
        self.vvm = vvm
        self.local = local
        self.writer_url = writer_url
        self.secret = secret
        """Read from storage once the process has started (before it serves)."""
        self._writer: HttpTransport | None = None
        self._transport = _ReaderTransport(self)
        self.served = 0
        """Requests answered here."""
        self.forwarded = 0
        """Requests sent to the writer."""

    def transport_for(self, app: str, wsid: int, partition: int) -> Transport:
        cluster = ws.cluster_id(wsid)
        if cluster != self.vvm.config.cluster_id:
            raise SysError(400, f"workspace {wsid} belongs to cluster {cluster}, which this federation does not know")
        return self._transport

    def writer(self) -> HttpTransport:
        if self._writer is None:
            self._writer = HttpTransport(self.writer_url, self.secret)
        return self._writer

    async def tell_writer_watched(self, address: str, message: bytes) -> bool | None:
        """Tell the writer (``address``, its internal URL) the keys watched here
        (``Notifications.announcer``)."""
        if not self.secret or address != self.writer_url:
            return False
        return await self.writer().tell_watched(message)

    async def aclose(self) -> None:
        await self.local.aclose()
        if self._writer is not None:
            await self._writer.aclose()
            self._writer = None


class _ReaderTransport:
    def __init__(self, routes: ReaderRoutes) -> None:
        self.routes = routes

    async def send(self, request: BusRequest) -> BusResponse:
        routes = self.routes
        if served_by_reader(request):
            routes.served += 1
            with read_snapshot():
                return await routes.local.send(request)
        routes.forwarded += 1
        # Not sent (the writer is down or restarting): the router answers 503 with Retry-After.
        return await routes.writer().send(request)

    async def aclose(self) -> None:
        return None
