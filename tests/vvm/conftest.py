"""Processes of a cluster inside the test process: each a ``VVM`` behind a real HTTP server, all
over one shared in-memory storage."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import free_port, share_one_storage
from voedger.router.http import HttpServer
from voedger.router.server import make_asgi
from voedger.vvm.server import VVM, ServerConfig


class Members:
    def __init__(self) -> None:
        self.started: list[tuple[HttpServer, VVM]] = []

    async def add(self, join_later: bool, lease_ttl: int = 3) -> tuple[VVM, str]:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = ServerConfig(
            storage_url="mem://", cluster=True, advertise=base, lease_ttl=lease_ttl, join_later=join_later
        )
        app, vvm = make_asgi(config)
        server = HttpServer(app)
        await server.start("127.0.0.1", port)
        self.started.append((server, vvm))
        return vvm, base


@pytest.fixture
async def members(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Members]:
    m = Members()

    share_one_storage(monkeypatch)
    try:
        yield m
    finally:
        for server, vvm in reversed(m.started):
            await vvm.leave()
            await server.stop(2.0)
            await vvm.stop()
