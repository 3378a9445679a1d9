"""Deploying through ``c.cluster.DeployApp`` to a cluster of two processes, both in this test
process over one shared in-memory storage (each behind its own HTTP server, leases and every hop
between them over real HTTP; the Cassandra tier runs three real processes): a version deployed
through either process is served by both; two deploys at once (routed to sys/cluster's owner,
or each in its own process) end with one version, never a mix;
an incompatible one is refused and changes nothing; a process that starts later serves the
deployed version. Also the version rows' compare-and-swap and the swap gate alone."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port, share_one_storage
from tests.vpm.test_deploy import V1, V1_EXT, V2, V2_EXT, V3, V3_EXT, build
from voedger.apps.cluster import CLUSTER_APP
from voedger.processors.principal import SYSTEM
from voedger.router.http import HttpServer
from voedger.router.server import make_asgi
from voedger.storage import StorageProvider
from voedger.storage.mem import MemStorageFactory
from voedger.structs.wsid import app_wsid
from voedger.syserror import SysError
from voedger.vvm.server import VVM, ServerConfig
from voedger.vvm.versions import SwapGate, Version, VersionStore

SHOP = "test/shop"
V2A = V2.replace("COMMAND Triple(Num) RETURNS Num;", "COMMAND Triple(Num) RETURNS Num; COMMAND Quad(Num) RETURNS Num;")
V2A_EXT = V2_EXT + '\n\n@command("shop.Quad")\ndef quad(state, intents):\n    intents.result(N=state.arg["N"] * 4)\n'
V2B = V2.replace("COMMAND Triple(Num) RETURNS Num;", "COMMAND Triple(Num) RETURNS Num; COMMAND Five(Num) RETURNS Num;")
V2B_EXT = V2_EXT + '\n\n@command("shop.Five")\ndef five(state, intents):\n    intents.result(N=state.arg["N"] * 5)\n'


class Cluster:
    def __init__(self) -> None:
        self.members: list[tuple[HttpServer, VVM, str]] = []

    async def add(self) -> tuple[VVM, str]:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = ServerConfig(storage_url="mem://", cluster=True, advertise=base, lease_ttl=3)
        app, vvm = make_asgi(config)
        server = HttpServer(app)
        await server.start("127.0.0.1", port)
        self.members.append((server, vvm, base))
        assert vvm.ownership is not None
        return vvm, base

    def vvms(self) -> list[VVM]:
        return [vvm for _, vvm, _ in self.members]


@pytest.fixture
async def cluster(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    c = Cluster()

    share_one_storage(monkeypatch)
    try:
        for _ in range(2):
            await c.add()
        for vvm in c.vvms():
            assert vvm.ownership is not None
            assert await vvm.ownership.converged(20)
        yield c
    finally:
        for server, vvm, _ in reversed(c.members):
            await vvm.leave()
            await server.stop(2.0)
            await vvm.stop()


async def deploy(vvm: VVM, base: str, image: Path) -> httpx.Response:
    assert vvm.tokens is not None
    body = {"args": {"AppQName": SHOP}, "unloggedArgs": {"Image": base64.b64encode(image.read_bytes()).decode()}}
    headers = {"Authorization": f"Bearer {vvm.tokens.issue_system(CLUSTER_APP)}"}
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(
            f"{base}/api/{CLUSTER_APP}/{app_wsid(1, 0)}/c.cluster.DeployApp", json=body, headers=headers
        )


async def call(vvm: VVM, base: str, command: str, n: int, ws: int = 0) -> httpx.Response:
    assert vvm.tokens is not None
    headers = {"Authorization": f"Bearer {vvm.tokens.issue_system(SHOP)}"}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            f"{base}/api/{SHOP}/{app_wsid(1, ws)}/c.{command}", json={"args": {"N": n}}, headers=headers
        )


async def all_serve(cluster: Cluster, version: int, timeout: float = 30.0) -> None:
    ends = time.monotonic() + timeout
    while True:
        numbers = [vvm.serving[SHOP].number if SHOP in vvm.serving else 0 for vvm in cluster.vvms()]
        if all(n == version for n in numbers):
            return
        assert time.monotonic() < ends, f"not every process serves version {version}: {numbers}"
        await asyncio.sleep(0.1)


async def answers(cluster: Cluster, command: str, expected: int | None, timeout: float = 30.0) -> None:
    """``command`` of 3, through every process on every app workspace, answers ``expected``
    (None: the command does not exist); partitions still moving are waited for."""
    ends = time.monotonic() + timeout
    for _, vvm, base in cluster.members:
        for ws in range(10):
            while True:
                r = await call(vvm, base, command, 3, ws)
                if r.status_code == 503 and time.monotonic() < ends:
                    await asyncio.sleep(0.2)  # a new application's partitions are being shared out
                    continue
                if expected is None:
                    assert r.status_code in (400, 404), r.text
                else:
                    assert r.status_code == 200, r.text
                    assert r.json()["Result"]["N"] == expected
                break


async def test_deploy_to_a_cluster_of_two_processes(tmp_path: Path, cluster: Cluster) -> None:
    v1, v2 = build(tmp_path, "v1", V1, V1_EXT), build(tmp_path, "v2", V2, V2_EXT)
    v2a, v2b = build(tmp_path, "v2a", V2A, V2A_EXT), build(tmp_path, "v2b", V2B, V2B_EXT)
    v3 = build(tmp_path, "v3", V3, V3_EXT)
    (_, first, base0), (_, second, base1) = cluster.members

    r = await deploy(first, base0, v1)
    assert r.status_code == 200, r.text
    await all_serve(cluster, 1)
    await answers(cluster, "shop.Double", 6)

    r = await deploy(second, base1, v2)  # through the other process
    assert r.status_code == 200, r.text
    await all_serve(cluster, 2, timeout=10.0)
    await answers(cluster, "shop.Double", 60)
    await answers(cluster, "shop.Triple", 9)

    # the same image again: nothing to change
    r = await deploy(first, base0, v2)
    assert r.status_code == 200, r.text
    assert [vvm.serving[SHOP].number for vvm in cluster.vvms()] == [2, 2]

    # two at once, compatible with v2 but not with each other: one wins, never both
    ra, rb = await asyncio.gather(deploy(first, base0, v2a), deploy(second, base1, v2b))
    assert sorted([ra.status_code, rb.status_code]) == [200, 409], (ra.text, rb.text)
    refused = rb if ra.status_code == 200 else ra
    assert "nothing was changed" in refused.text, refused.text
    won, lost, result = ("shop.Quad", "shop.Five", 12) if ra.status_code == 200 else ("shop.Five", "shop.Quad", 15)
    await all_serve(cluster, 3, timeout=10.0)
    await answers(cluster, won, result)
    await answers(cluster, lost, None)

    # the same, bypassing the routing (each process deploys itself, as when sys/cluster's
    # partition moves between them): the version row's compare-and-swap decides
    schema, ext = (V2A, V2A_EXT) if won == "shop.Quad" else (V2B, V2B_EXT)
    six = schema.replace("RETURNS Num;", "RETURNS Num; COMMAND Six(Num) RETURNS Num;", 1)
    seven = schema.replace("RETURNS Num;", "RETURNS Num; COMMAND Seven(Num) RETURNS Num;", 1)
    ext_six = ext + '\n\n@command("shop.Six")\ndef six(state, intents):\n    intents.result(N=6)\n'
    ext_seven = ext + '\n\n@command("shop.Seven")\ndef seven(state, intents):\n    intents.result(N=7)\n'
    v4a, v4b = build(tmp_path, "v4a", six, ext_six), build(tmp_path, "v4b", seven, ext_seven)

    def body(image: Path) -> dict[str, Any]:
        return {"args": {"AppQName": SHOP}, "unloggedArgs": {"Image": base64.b64encode(image.read_bytes()).decode()}}

    outcomes = await asyncio.gather(
        first.deploy_uploaded(app_wsid(1, 0), body(v4a), SYSTEM),
        second.deploy_uploaded(app_wsid(1, 0), body(v4b), SYSTEM),
        return_exceptions=True,
    )
    refusals = [o for o in outcomes if isinstance(o, SysError)]
    assert len(refusals) == 1 and refusals[0].status == 409, outcomes
    assert "nothing was changed" in refusals[0].message
    won4, lost4 = ("shop.Six", "shop.Seven") if not isinstance(outcomes[0], SysError) else ("shop.Seven", "shop.Six")
    await all_serve(cluster, 4, timeout=10.0)
    await answers(cluster, won4, 6 if won4 == "shop.Six" else 7)
    await answers(cluster, lost4, None)

    r = await deploy(second, base1, v3)
    assert r.status_code == 409, r.text
    assert "not compatible with the deployed one" in r.text and "nothing was changed" in r.text
    stored = await VersionStore(first.vvm_storage).current(SHOP)
    assert stored is not None and stored.number == 4
    assert [vvm.serving[SHOP].number for vvm in cluster.vvms()] == [4, 4]
    await answers(cluster, won, result)

    # a process that starts now serves the deployed version from the start
    late, late_base = await cluster.add()
    assert late.serving[SHOP].number == 4
    assert late.ownership is not None and await late.ownership.converged(20)
    r = await call(late, late_base, won4, 1)
    assert r.status_code == 200, r.text


async def test_the_version_row_moves_by_compare_and_swap_only() -> None:
    provider = StorageProvider(MemStorageFactory())
    await provider.open(server=True)
    try:
        store = VersionStore(await provider.app_storage("sys/vvm"))
        assert await store.current("a/b") is None
        one = Version(1, "d1")
        assert await store.advance("a/b", None, one)
        assert not await store.advance("a/b", None, Version(1, "other"))  # someone was first
        current = await store.current("a/b")
        assert current == Version(1, "d1", one.encode())
        assert await store.advance("a/b", current, Version(2, "d2"))
        assert not await store.advance("a/b", current, Version(2, "d3"))  # read before the last swap
        assert (await store.all())["a/b"].digest == "d2"
        await store.keep_image("a/b", "d2", b"image")
        assert await store.image("a/b", "d2") == b"image"
        await store.forget_image("a/b", "d2")
        assert await store.image("a/b", "d2") is None
    finally:
        await provider.close()


async def test_a_swap_waits_for_the_moves_and_holds_new_ones() -> None:
    gate = SwapGate()
    order: list[str] = []
    await gate.begin_move()

    async def swap() -> None:
        await gate.begin_swap()
        order.append("swap")
        await asyncio.sleep(0.05)
        await gate.end_swap()

    async def move() -> None:
        await gate.begin_move()
        order.append("move")
        await gate.end_move()

    swapping = asyncio.create_task(swap())
    await asyncio.sleep(0.05)
    assert order == []  # a move is in progress
    moving = asyncio.create_task(move())
    await asyncio.sleep(0.01)
    assert order == []  # a new move waits for the swap that asked first
    await gate.end_move()
    await asyncio.gather(swapping, moving)
    assert order == ["swap", "move"]
