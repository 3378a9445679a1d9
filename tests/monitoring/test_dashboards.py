"""The Grafana dashboards: the committed JSON is what the generator writes, and every panel's
query runs on a real Prometheus scraping a real server under a small load, and returns data."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.router.conftest import V1
from tests.router.test_crash import start_server
from tests.support import free_port, wait_ready
from tests.test_sample_app import SAMPLE_APP
from voedger.devtools.monitoring import Prometheus
from voedger.monitoring import DASHBOARDS_DIR
from voedger.monitoring.dashboards import BOARDS, file_name, queries, render
from voedger.structs.wsid import app_wsid

VARIABLES = {
    "$app": ".*",
    "$vvm": ".*",
    "$__rate_interval": "15s",
    "$aggregation_interval": "1m",
}
"""What Grafana puts in the queries, for a Prometheus scraping every second."""


def test_the_committed_dashboards_are_the_generators_output() -> None:
    committed = {p.name for p in DASHBOARDS_DIR.glob("*.json")}
    assert committed == {file_name(b) for b in BOARDS}
    for board in BOARDS:
        stale = (DASHBOARDS_DIR / file_name(board)).read_text() != render(board)
        assert not stale, f"{file_name(board)} is stale: run python -m voedger.monitoring.dashboards"


def test_every_dashboard_has_its_variables_and_titled_panels_with_queries() -> None:
    for board in BOARDS:
        doc = json.loads(render(board))
        names = [v["name"] for v in doc["templating"]["list"]]
        assert names[0] == "datasource" and "vvm" in names and "aggregation_interval" in names
        assert ("app" in names) == board.per_app
        panels = [p for p in doc["panels"] if p["type"] != "row"]
        assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
        for panel in panels:
            assert panel["title"] and panel["description"] and panel["targets"], panel["title"]
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert all(t["expr"] for t in panel["targets"])


def substituted(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


async def load(port: int, seconds: float) -> dict[str, int]:
    """Commands (new child workspaces: federation calls and projectors too), queries, checks and
    unknown paths, for ``seconds``."""
    sent = {"commands": 0, "queries": 0}
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        n = 0
        while time.monotonic() < deadline:
            wsid = app_wsid(1, n % 3)
            fields = {"sys.ID": 1, "sys.QName": "sys.ChildWorkspace", "WSName": f"w{n}", "WSKind": "shop.ShopDesc"}
            reply = await c.post(
                f"/api/test/shop/{wsid}/c.sys.CUD", json={"cuds": [{"fields": {**fields, "WSClusterID": 1}}]}
            )
            assert reply.status_code == 200, reply.text
            sent["commands"] += 1
            assert (await c.post(f"{V1}/q.sys.Echo", json={"args": {"Text": "hi"}})).status_code == 200
            sent["queries"] += 1
            assert (await c.get("/api/check")).status_code == 200
            assert (await c.get("/no/such/path")).status_code == 404
            n += 1
            await asyncio.sleep(0.05)
    return sent


@pytest.mark.monitoring
@pytest.mark.timeout(180)
async def test_every_panel_query_is_valid_and_returns_data(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    target = f"127.0.0.1:{metrics_port}"
    server = start_server(
        tmp_path / "data",
        port,
        tmp_path / "server.log",
        "--metrics-port",
        str(metrics_port),
        "--app",
        f"untill/restaurant={SAMPLE_APP}",
    )
    prom = Prometheus(tmp_path / "prom", free_port(), targets=[target])
    try:
        await wait_ready(port, server)
        await asyncio.to_thread(prom.start)
        sent = await load(port, 20)
        assert sent["commands"] > 20
        await asyncio.sleep(2)  # the last scrapes
        empty, failed, checked = [], [], 0
        finite: dict[str, float] = {}
        for board in BOARDS:
            for title, expr in queries(board):
                promql = substituted(expr)
                try:
                    data = await asyncio.to_thread(prom.query, promql)
                except Exception as exc:
                    failed.append(f"{board.title} / {title}: {exc}")
                    continue
                checked += 1
                if not data["result"]:
                    empty.append(f"{board.title} / {title}: {promql}")
                    continue
                values = [float(r["value"][1]) for r in data["result"]]
                if any(math.isfinite(v) for v in values):
                    finite[promql] = max(v for v in values if math.isfinite(v))
        assert not failed, "\n".join(failed)
        assert not empty, "queries without data:\n" + "\n".join(empty)
        assert checked == sum(len(queries(b)) for b in BOARDS) >= 40
        # Under load the latency panels hold numbers, not NaN: the histograms have observations.
        for metric in (
            "voedger_cp_latency_seconds",
            "voedger_qp_latency_seconds",
            "voedger_federation_latency_seconds",
        ):
            p99 = [v for q, v in finite.items() if metric in q and q.startswith("histogram_quantile(0.99")]
            assert p99 and 0 < p99[0] < 10, (metric, p99)
        print(f"\n{checked} queries, {len(finite)} with finite values; load: {sent}")
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGTERM)
            server.wait(30)
        await asyncio.to_thread(prom.stop)
