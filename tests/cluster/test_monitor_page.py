"""The monitor page (``GET /monitor`` on a process's metrics port) of a running three-process
cluster on the three-node Cassandra, in Debian's headless Chromium: it shows the three members
with their addresses, which one is the page's own process, the load's commands per second, and
every partition with an owner; after ``kill -9`` of one process it shows the two that are left,
owning every partition between them. (The monitoring tier tests the page of one process.)"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.cluster.checker import APP_NAME
from tests.cluster.harness import ServerProcess, require_cluster_options
from tests.cluster.scenario import cassandra_scenario
from tests.monitoring.test_monitor_page import watched
from voedger.devtools.monitoring import chromium

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

LEASE_TTL = 6.0


async def cluster_status(p: ServerProcess) -> dict[str, Any]:
    """What ``p`` says of the cluster (``GET /api/cluster`` on its metrics port)."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        reply = await client.get(f"http://127.0.0.1:{p.metrics_port}/api/cluster")
    reply.raise_for_status()
    status: dict[str, Any] = reply.json()
    return status


async def settled(p: ServerProcess, members: int, timeout: float = 90.0, agree: bool = False) -> dict[str, Any]:
    """``p``'s cluster status once it lists ``members`` members and every partition has an owner
    among them (with ``agree``: and the members' rows say they hold what the leases say); fails
    after ``timeout`` seconds with the last status seen."""
    ends = time.monotonic() + timeout
    while True:
        status = await cluster_status(p)
        ids = {m["id"] for m in status["members"]}
        owned = all(part["owner"] in ids for part in status["partitions"])
        if len(ids) == members and owned and (not agree or status["settled"]):
            return status
        if time.monotonic() > ends:
            raise AssertionError(f"not settled on {members} members in {timeout} s: {status}")
        await asyncio.sleep(0.5)


def read_page(url: str, reloads: int, shot: Path) -> tuple[str, list[str], int, dict[str, int]]:
    """The page's text, its problems, its member rows and the owners of its partition cells
    (how many cells name each), read in Chromium after ``reloads`` of the page's own refreshes."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page, problems = watched(browser)
            page.goto(url)
            for _ in range(reloads):
                page.wait_for_event("load", timeout=10_000)
            text = page.inner_text("body")
            members = page.locator("tr.member").count()
            owners = Counter(page.locator("#partitions td small").all_inner_texts())
            page.screenshot(path=str(shot), full_page=True)
            return text, problems, members, dict(owners)
        finally:
            browser.close()


def app_row(text: str) -> list[str]:
    """The cells of the load application's row in the page's text."""
    line = next(line for line in text.splitlines() if line.startswith(APP_NAME))
    return line.split("\t")


async def test_the_monitor_page_of_a_running_three_process_cluster(tmp_path: Path) -> None:
    require_cluster_options()
    async with cassandra_scenario(tmp_path, 3, cluster=True, lease_ttl=LEASE_TTL, metrics=True) as s:
        p0, _, p2 = s.harness.processes
        status = await settled(p0, 3)
        url = f"http://127.0.0.1:{p0.metrics_port}/monitor"

        # Under load, through two of the page's own reloads (2 s apart), so that rates show; on a
        # loaded machine the first rounds of load may not reach this process's partitions in time.
        ends = time.monotonic() + 90.0
        while True:
            _, (text, problems, members, shown) = await asyncio.gather(
                s.load(6.0), asyncio.to_thread(read_page, url, 2, tmp_path / "three.png")
            )
            if float(app_row(text)[1]) > 0 or time.monotonic() > ends:
                break
        assert problems == []
        assert members == 3, text
        assert "Cluster members (3)" in text
        # Processes sharing a host are told apart by their port (the ``vvm`` label of their series).
        assert f"Voedger monitor: {socket.gethostname()}:{p0.port}" in text
        for m in status["members"]:
            assert m["address"] in text, (m, text)
        assert f"{status['self']['id']} (this process)" in text
        assert status["self"]["address"] == p0.url
        assert set(shown) == {m["id"] for m in status["members"]}, shown  # no "no owner" either
        assert sum(shown.values()) == len(status["partitions"]), shown
        assert float(app_row(text)[1]) > 0, app_row(text)  # commands per second under the load

        # One process killed: once its membership and leases have lapsed, the page shows the
        # two that are left, owning every partition.
        s.harness.kill(p2)
        after = await settled(p0, 2, agree=True)
        # each of the two holds, as its member row says, what the leases say it owns
        for part in after["partitions"]:
            assert part["claimed_by"] == [part["owner"]], part
        assert [m["holds"] for m in after["members"]] == [m["partitions"] for m in after["members"]]
        text, problems, members, shown = await asyncio.to_thread(read_page, url, 0, tmp_path / "two.png")
        assert problems == []
        assert members == 2, text
        assert "Cluster members (2)" in text
        assert p2.url not in text
        for m in after["members"]:
            assert m["address"] in text
        assert set(shown) == {m["id"] for m in after["members"]}, shown
        assert sum(shown.values()) == len(after["partitions"]), shown
        assert sum(shown.values()) == len(after["partitions"]), shown
