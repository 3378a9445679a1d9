"""``vpm deploy`` to a running cluster of three processes on the three-node Cassandra, under a
light load of the load application: a new application (v1) deployed through one process is
served by every process; a compatible v2 replaces it everywhere without a restart; two versions
deployed at once through two other processes, each compatible with v2 but not with each other,
end with one of them served everywhere and the other refused; an incompatible version is
refused with 409 and changes nothing anywhere; the load's acknowledged commands all read back
(the history checker)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.cluster.harness import ServerProcess, require_cluster_options
from tests.cluster.load import LoadConfig
from tests.cluster.scenario import cassandra_scenario
from tests.cluster.test_monitor_page import cluster_status, settled
from tests.vpm.test_deploy import V1, V1_EXT, V2, V2_EXT, V3, V3_EXT, build
from voedger.structs.wsid import DEFAULT_NUM_APP_WORKSPACES, app_wsid

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

SHOP = "test/shop"
SERVED_WITHIN = 60.0
"""Seconds every process gets to serve a deployed version (a few, unloaded)."""

# Two versions compatible with v2 but not with each other: each removes the other's command.
V2A = V2.replace("COMMAND Triple(Num) RETURNS Num;", "COMMAND Triple(Num) RETURNS Num; COMMAND Quad(Num) RETURNS Num;")
V2A_EXT = V2_EXT + '\n\n@command("shop.Quad")\ndef quad(state, intents):\n    intents.result(N=state.arg["N"] * 4)\n'
V2B = V2.replace("COMMAND Triple(Num) RETURNS Num;", "COMMAND Triple(Num) RETURNS Num; COMMAND Five(Num) RETURNS Num;")
V2B_EXT = V2_EXT + '\n\n@command("shop.Five")\ndef five(state, intents):\n    intents.result(N=state.arg["N"] * 5)\n'


async def deploy(p: ServerProcess, image: Path) -> tuple[int, str]:
    """``vpm deploy`` through ``p`` (the servers run with --insecure-dev: any token will do)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voedger.cli.vpm",
        "deploy",
        p.url,
        str(image),
        "--app",
        SHOP,
        "--token",
        "dev",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def call(client: httpx.AsyncClient, p: ServerProcess, wsid: int, command: str, n: int) -> httpx.Response:
    return await client.post(f"{p.url}/api/{SHOP}/{wsid}/c.{command}", json={"args": {"N": n}})


def shop_wsids() -> list[int]:
    """test/shop's application workspaces (the image's default ten, over its ten partitions):
    through any process, their commands reach the owners of their partitions."""
    return [app_wsid(1, n) for n in range(DEFAULT_NUM_APP_WORKSPACES)]


async def serves(
    processes: list[ServerProcess], version: int, expect: dict[str, int | None], timeout: float = SERVED_WITHIN
) -> float:
    """Wait until every process says it serves ``version`` of test/shop and every command of
    ``expect`` answers as expected (the result for 3, or None: unknown) through every process
    on every application workspace; returns the seconds it took."""
    began = time.monotonic()
    ends = began + timeout
    last = ""
    async with httpx.AsyncClient(timeout=30.0) as client:
        while True:
            statuses = [await cluster_status(p) for p in processes]
            versions = [s.get("versions", {}).get(SHOP) for s in statuses]
            wsids = shop_wsids()
            ok = bool(wsids) and all(v == version for v in versions)
            last = f"versions {versions}"
            if ok:
                for p in processes:
                    for wsid in wsids:
                        for command, result in expect.items():
                            r = await call(client, p, wsid, command, 3)
                            if result is None:
                                good = r.status_code in (400, 404)
                            else:
                                good = r.status_code == 200 and r.json().get("Result", {}).get("N") == result
                            if not good:
                                ok = False
                                last = f"{command} on {wsid} through {p.name}: {r.status_code} {r.text[:200]}"
                                break
                        if not ok:
                            break
                    if not ok:
                        break
            if ok:
                return time.monotonic() - began
            if time.monotonic() > ends:
                raise AssertionError(f"version {version} not served everywhere in {timeout} s: {last}")
            await asyncio.sleep(0.5)


async def test_deploy_to_a_running_three_process_cluster(tmp_path: Path) -> None:
    require_cluster_options()
    v1 = build(tmp_path, "v1", V1, V1_EXT)
    v2 = build(tmp_path, "v2", V2, V2_EXT)
    v2a = build(tmp_path, "v2a", V2A, V2A_EXT)
    v2b = build(tmp_path, "v2b", V2B, V2B_EXT)
    v3 = build(tmp_path, "v3", V3, V3_EXT)
    async with cassandra_scenario(tmp_path, 3, cluster=True, lease_ttl=6.0, metrics=True, ready_timeout=300.0) as s:
        p0, p1, p2 = s.harness.processes
        await settled(p0, 3)
        load = s.new_load(LoadConfig(clients=4, pace=0.05))
        running = asyncio.create_task(load.run(240.0))
        try:
            code, out = await deploy(p0, v1)
            assert code == 0, out
            assert f"{SHOP} deployed" in out
            await serves(s.harness.processes, 1, {"shop.Double": 6, "shop.Triple": None})

            code, out = await deploy(p1, v2)
            assert code == 0, out
            took = await serves(s.harness.processes, 2, {"shop.Double": 60, "shop.Triple": 9})
            assert took < SERVED_WITHIN

            # Two deploys at once through two other processes: one wins, the other is refused
            # (at the same moment, or checked against the winner), never both, never a mix.
            (code_a, out_a), (code_b, out_b) = await asyncio.gather(deploy(p1, v2a), deploy(p2, v2b))
            assert sorted([code_a, code_b]) == [0, 1], (out_a, out_b)
            refused = out_b if code_a == 0 else out_a
            assert "nothing was changed" in refused, refused
            won, lost = ("shop.Quad", "shop.Five") if code_a == 0 else ("shop.Five", "shop.Quad")
            await serves(s.harness.processes, 3, {"shop.Triple": 9, won: 12 if won == "shop.Quad" else 15, lost: None})

            code, out = await deploy(p2, v3)
            assert code == 1, out
            assert "not compatible with the deployed one" in out, out
            assert "nothing was changed" in out
            for p in s.harness.processes:
                status = await cluster_status(p)
                assert status["versions"].get(SHOP) == 3, status["versions"]
            await serves(s.harness.processes, 3, {"shop.Triple": 9, won: 12 if won == "shop.Quad" else 15}, 10.0)
        finally:
            load.finish()
            await running
        report = await s.check()
    assert report.ok, s.context(report)
    assert len(s.history.acked()) > 0
