"""Readiness of a cluster's process (issue 13): ``voedger server`` listens first and takes its
share of the partitions after (``join_later``), so ``GET /api/check`` answers 503 until the
process carries its share, 200 while it serves, and 503 again once it leaves. Two processes in
this test process over one shared in-memory storage, each behind a real HTTP server."""

from __future__ import annotations

import httpx

from tests.support import free_port
from tests.vvm.conftest import Members
from voedger.router.http import HttpServer
from voedger.router.server import make_asgi
from voedger.vvm.server import ServerConfig


async def check(base: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(f"{base}/api/check")


async def test_a_joining_process_is_not_ready_until_it_carries_its_share(members: Members) -> None:
    first, first_base = await members.add(join_later=False)
    assert first.ready
    assert (await check(first_base)).text == "ok"

    second, base = await members.add(join_later=True)
    assert second.ownership is not None and first.ownership is not None
    # Listening, but no partition taken yet: alive and not ready.
    r = await check(base)
    assert (r.status_code, r.text, r.headers.get("retry-after")) == (503, "not ready", "1")
    assert not second.ownership.owned
    assert not second.ready

    await second.join()
    assert second.ready
    r = await check(base)
    assert (r.status_code, r.text) == (200, "ok")
    assert second.ownership.owned, "the joined process took no partition"
    assert await first.ownership.converged(20)

    # Leaving (SIGTERM's first step): not ready again while it hands its partitions over.
    await second.leave()
    r = await check(base)
    assert r.status_code == 503
    assert (await check(first_base)).status_code == 200


async def test_a_single_node_is_ready_once_started(members: Members) -> None:
    port = free_port()
    app, vvm = make_asgi(ServerConfig(storage_url="mem://", join_later=True))
    server = HttpServer(app)
    await server.start("127.0.0.1", port)
    members.started.append((server, vvm))
    assert vvm.ownership is None
    r = await check(f"http://127.0.0.1:{port}")
    assert (r.status_code, r.text) == (200, "ok")
