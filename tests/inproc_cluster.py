"""A cluster of server processes inside one test process, for the unit tier.

Each VVM runs behind its own HTTP server on a loopback port, all over one shared in-memory
storage (several processes need shared storage, and the cluster tier's Cassandra is not for
unit tests), with leases, the cluster secret and every hop between them over real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port, share_one_storage
from voedger.router.http import HttpServer
from voedger.router.server import make_asgi
from voedger.structs.wsid import partition_of
from voedger.vvm.server import VVM, ServerConfig

Member = tuple[VVM, str]
"""A process of the cluster and its base URL."""


@asynccontextmanager
async def inproc_cluster(
    monkeypatch: pytest.MonkeyPatch, app: str, app_dir: Path, processes: int = 2, **fields: Any
) -> AsyncIterator[list[Member]]:
    """``processes`` VVMs serving ``app``, started and converged (every partition owned);
    ``fields``: more fields of their ``ServerConfig``."""
    share_one_storage(monkeypatch)
    started: list[tuple[HttpServer, VVM, str]] = []
    try:
        for _ in range(processes):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            config = ServerConfig(
                storage_url="mem://", apps=[(app, app_dir)], cluster=True, advertise=base, lease_ttl=3, **fields
            )
            asgi, vvm = make_asgi(config)
            server = HttpServer(asgi)
            await server.start("127.0.0.1", port)
            started.append((server, vvm, base))
        for _, vvm, _ in started:
            assert vvm.ownership is not None
            assert await vvm.ownership.converged(20)
        yield [(vvm, base) for _, vvm, base in started]
    finally:
        for server, vvm, _ in reversed(started):
            await vvm.leave()
            await server.stop(2.0)


def owner_of(cluster: list[Member], app: str, wsid: int) -> tuple[Member, Member]:
    """(the process that owns ``wsid``'s partition, another one)."""
    pid = partition_of(wsid, cluster[0][0].app(app).runtime.num_partitions)
    owners = [m for m in cluster if pid in m[0].app(app).partitions]
    assert len(owners) == 1, owners
    return owners[0], next(m for m in cluster if m is not owners[0])


async def at_owners(cluster: list[Member], make: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``make(vvm)`` (a maker of workspaces by System commands at their partitions) with a
    stand-in VVM whose ``app(name).partition(wsid)`` is the owner's partition, wherever it is."""

    class _Routed:
        def app(self, name: str) -> Any:
            return _RoutedApp(name)

    class _RoutedApp:
        def __init__(self, name: str) -> None:
            self.name = name

        def partition(self, wsid: int) -> Any:
            for vvm, _ in cluster:
                app = vvm.app(self.name)
                pid = partition_of(wsid, app.runtime.num_partitions)
                if pid in app.partitions:
                    return app.partitions[pid]
            raise AssertionError(f"nobody owns workspace {wsid}")

    await make(_Routed())
