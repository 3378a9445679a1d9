"""``GET /monitor``: the page's numbers, its members and partitions, in-process."""

from __future__ import annotations

from typing import Any

import pytest

from tests.metrics.test_metrics import ITEM, client_of, vvm
from tests.router.conftest import make_shop_ws
from voedger.metrics import metrics_app
from voedger.metrics.monitor import Monitor, quantile
from voedger.processors.tally import BOUNDS, Tally
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM

__all__ = ["vvm"]


def test_quantile_interpolates_in_its_bucket_as_prometheus_does() -> None:
    t = Tally()
    for _ in range(100):
        t.observe(0.002)  # all in (0.001, 0.0025]
    assert quantile(0.99, tuple(t.buckets)) == pytest.approx(0.001 + 0.0015 * 0.99)
    assert quantile(0.5, tuple(t.buckets)) == pytest.approx(0.001 + 0.0015 * 0.5)
    t.observe(100.0)  # beyond the last bound
    assert quantile(1.0, tuple(t.buckets)) == BOUNDS[-1]
    assert quantile(0.99, tuple(Tally().buckets)) is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_page_shows_this_process_its_apps_rates_and_partitions(vvm: VVM) -> None:
    clock = Clock()
    monitor = Monitor(vvm, "node-1", clock)
    first = monitor.page()
    assert "Members: this process alone" in first and "node-1 (this process)" in first
    assert "(rates after the next refresh)" in first
    async with client_of(build_app(vvm, {1: LocalTransport(vvm)})) as api:
        shop = new_wsid(1, 200_000)
        await make_shop_ws(api, vvm, shop)
        for _ in range(10):
            assert (await api.post(f"/api/test/shop/{shop}/c.sys.CUD", json=ITEM)).status_code == 200
            clock.now += 1.0
            monitor.sample()
    page = monitor.page()
    assert "over the last 10 s" in page
    row = page.split('<tr class="app"><td>test/shop</td>', 1)[1].split("</tr>", 1)[0]
    assert row.startswith("<td>1.0</td>")  # 10 commands in 10 s
    assert "<polyline" in row  # the commands' chart
    assert " ms</td>" in row  # a p99
    shop_parts = vvm.app("test/shop").runtime.num_partitions
    assert page.count("<small>self</small>") >= shop_parts  # the partitions' owners


async def test_a_cluster_shows_its_members_and_the_partitions_without_owner(vvm: VVM) -> None:
    status: dict[str, Any] = {
        "cluster": True,
        "self": {"id": "p1", "address": "http://10.0.0.1:8822"},
        "members": [
            {"id": f"p{i}", "address": f"http://10.0.0.{i}:8822", "pid": 100 + i, "since": 0, "partitions": 1}
            for i in (1, 2, 3)
        ],
        "partitions": [
            {"app": "test/shop", "partition": 0, "owner": "p1", "address": "http://10.0.0.1:8822", "epoch": 3},
            {"app": "test/shop", "partition": 1, "owner": "", "address": "", "epoch": 0},
        ],
    }
    page = Monitor(vvm, "node-1", status=lambda: status).page()
    assert "Cluster members (3)" in page
    assert page.count('<tr class="member">') == 3
    assert "p1 (this process)" in page and "http://10.0.0.3:8822" in page
    assert 'class="orphan"' in page and "1<br><small>no owner</small>" in page


async def test_the_metrics_port_serves_the_page(vvm: VVM) -> None:
    async with client_of(metrics_app(vvm, "node-1")) as metrics:
        reply = await metrics.get("/monitor")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert '<meta http-equiv="refresh"' in reply.text and "test/shop" in reply.text
