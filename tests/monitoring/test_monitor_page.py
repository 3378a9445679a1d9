"""The monitor page in a real headless Chromium (Debian's, driven by Playwright): it loads and
reloads itself without console errors, and shows the members, the applications with their rates
and charts, and the partitions of a running server. A cluster's members are shown from a cluster
status given to the page; the page of a running three-process cluster is tested in the cluster
tier (tests/cluster/test_monitor_page.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.router.test_crash import start_server
from tests.support import free_port, wait_ready
from voedger.devtools.monitoring import chromium
from voedger.metrics.monitor import Monitor
from voedger.structs.wsid import app_wsid
from voedger.vvm.server import VVM, ServerConfig

pytestmark = [pytest.mark.monitoring, pytest.mark.timeout(180)]

SCREENSHOT = os.environ.get("VOEDGER_MONITOR_SCREENSHOT")
"""Where to keep the screenshot (docs/monitor.png when updating the docs); else only in tmp."""


def watched(browser: Browser) -> tuple[Page, list[str]]:
    """A page whose console errors, page errors and failed requests are collected."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    problems: list[str] = []

    def console(m: ConsoleMessage) -> None:
        if m.type in ("error", "warning"):
            problems.append(f"console {m.type}: {m.text}")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    return page, problems


def show(url: str, reloads: int, shot: Path) -> tuple[str, list[str], dict[str, Any]]:
    """Open ``url`` in a headless Chromium, wait for ``reloads`` of the page's own refreshes,
    and read it. Run in a thread of its own (Playwright's sync API runs an event loop)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            return _show(browser, url, reloads, shot)
        finally:
            browser.close()


def _show(browser: Browser, url: str, reloads: int, shot: Path) -> tuple[str, list[str], dict[str, Any]]:
    page, problems = watched(browser)
    page.goto(url)
    for _ in range(reloads):  # the page's own refresh: each is a new navigation
        page.wait_for_event("load", timeout=10_000)
    text = page.inner_text("body")
    facts = {
        "members": page.locator("tr.member").count(),
        "apps": page.locator("tr.app").count(),
        "charts": page.locator("svg.chart polyline").count(),
        "shop": page.locator("tr.app", has_text="test/shop").inner_text() if "test/shop" in text else "",
    }
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    return text, problems, facts


async def test_the_page_of_a_running_server_in_chromium(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    server = start_server(tmp_path / "data", port, tmp_path / "server.log", "--metrics-port", str(metrics_port))
    try:
        await wait_ready(port, server)
        stop = asyncio.Event()

        async def load() -> None:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
                n = 0
                while not stop.is_set():
                    f = {"sys.ID": 1, "sys.QName": "sys.ChildWorkspace", "WSName": f"w{n}", "WSKind": "shop.ShopDesc"}
                    body = {"cuds": [{"fields": {**f, "WSClusterID": 1}}]}
                    assert (
                        await c.post(f"/api/test/shop/{app_wsid(1, n % 3)}/c.sys.CUD", json=body)
                    ).status_code == 200
                    n += 1
                    await asyncio.sleep(0.05)

        loader = asyncio.create_task(load())
        shot = tmp_path / "monitor.png"
        try:
            text, problems, facts = await asyncio.to_thread(show, f"http://127.0.0.1:{metrics_port}/monitor", 3, shot)
        finally:
            stop.set()
            await loader
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGTERM)
            server.wait(30)
    assert problems == []
    assert "Members: this process alone" in text and "(this process)" in text
    assert facts["members"] == 1
    assert facts["apps"] >= 2  # test/shop and the sys applications
    assert facts["charts"] >= 1  # rates drawn after the reloads
    cells = facts["shop"].split("\t")
    assert float(cells[1]) > 0, facts["shop"]  # commands per second under the load
    assert cells[3].endswith(" ms"), facts["shop"]  # a p99
    assert "Partitions and owners" in text
    assert shot.stat().st_size > 10_000
    if SCREENSHOT:
        shutil.copyfile(shot, SCREENSHOT)


def page_cell(text: str, owner: str) -> str:
    """The partition above ``owner`` in the page's text (a cell reads "N\nOWNER")."""
    lines = text.splitlines()
    return lines[lines.index(owner) - 1].split("\t")[-1].strip()


async def test_a_clusters_members_in_chromium(tmp_path: Path) -> None:
    """The page as a process of a three-process cluster renders it, one partition without owner."""
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path / 'data'}", apps=[], insecure_dev=True))
    status = {
        "cluster": True,
        "self": {"id": "p2", "address": "http://10.0.0.2:8822"},
        "members": [
            {"id": f"p{i}", "address": f"http://10.0.0.{i}:8822", "pid": 4100 + i, "since": 0, "partitions": 2 - i // 3}
            for i in (1, 2, 3)
        ],
        "partitions": [
            {"app": "untill/restaurant", "partition": n, "owner": owner, "address": "", "epoch": 1}
            for n, owner in enumerate(["p1", "p1", "p2", "p2", "p3", ""])
        ],
    }
    html = tmp_path / "cluster.html"
    html.write_text(Monitor(vvm, "p2", status=lambda: status).page())
    text, problems, facts = await asyncio.to_thread(show, html.as_uri(), 0, tmp_path / "cluster.png")
    assert problems == []
    assert facts["members"] == 3
    for i in (1, 2, 3):
        assert f"http://10.0.0.{i}:8822" in text
    assert "p2 (this process)" in text
    assert page_cell(text, "no owner") == "5"
