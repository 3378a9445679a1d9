"""The metrics service: Voedger's voedger_* series for the applications a VVM serves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.router.conftest import SHOP_DIR, V1, make_shop_ws
from voedger.metrics import metrics_app
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, ServerConfig

SHOP = {"app": "test/shop", "vvm": "node-1"}
ITEM = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}}]}


@pytest.fixture
async def vvm(tmp_path: Path) -> AsyncIterator[VVM]:
    v = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[("test/shop", SHOP_DIR)], insecure_dev=True))
    await v.start()
    yield v
    await v.stop()


def client_of(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")  # type: ignore[arg-type]


async def scrape(metrics: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reply = await metrics.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, labels: dict[str, str]) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_commands_queries_and_their_errors_are_counted_per_application(vvm: VVM) -> None:
    api, metrics = client_of(build_app(vvm, {1: LocalTransport(vvm)})), client_of(metrics_app(vvm, "node-1"))
    async with api, metrics:
        before = await scrape(metrics)
        assert {("app", "sys/cluster"), ("vvm", "node-1")} <= {
            kv for (name, labels) in before if name == "voedger_cp_commands_total" for kv in labels
        }
        shop = new_wsid(1, 200_000)
        await make_shop_ws(api, vvm, shop)
        await vvm.app("test/shop").actualizers.wait_idle()
        before = await scrape(metrics)  # the workspace's own command is not counted: it bypasses the VVM
        for _ in range(3):
            reply = await api.post(f"/api/test/shop/{shop}/c.sys.CUD", json=ITEM)
            assert reply.status_code == 200
        order = {"args": {"sys.ID": 1, "Item": reply.json()["NewIDs"]["1"], "Qty": 2}}  # an extension's command
        assert (await api.post(f"/api/test/shop/{shop}/c.shop.MakeOrder", json=order)).status_code == 200
        bad = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item"}}]}  # Name is required
        assert (await api.post(f"/api/test/shop/{shop}/c.sys.CUD", json=bad)).status_code == 400
        assert (await api.post(f"{V1}/q.sys.Echo", json={"args": {"Text": "hi"}})).status_code == 200
        assert (await api.post(f"{V1}/q.sys.NoSuchQuery", json={})).status_code >= 400
        after = await scrape(metrics)

    def grew(name: str) -> float:
        return value(after, name, SHOP) - value(before, name, SHOP)

    assert grew("voedger_cp_commands_total") == 5
    assert grew("voedger_cp_errors_total") == 1
    assert grew("voedger_cp_commands_seconds") > 0
    assert 0 < grew("voedger_cp_exec_seconds") < grew("voedger_cp_commands_seconds")
    assert 0 < grew("voedger_cp_projectors_seconds") < grew("voedger_cp_commands_seconds")
    assert grew("voedger_cp_group_writes_total") == 4  # the refused command wrote nothing
    assert grew("voedger_cp_group_write_errors_total") == 0
    assert 0 < grew("voedger_cp_group_write_seconds") < grew("voedger_cp_commands_seconds")
    assert grew("voedger_cp_fence_seconds") == 0  # one process on its own storage: no fence
    assert grew("voedger_qp_queries_total") == 2
    assert grew("voedger_qp_errors_total") == 1
    assert grew("voedger_qp_queries_seconds") > 0
    assert value(after, "voedger_projectors_in_error", SHOP) == 0
    assert value(after, "voedger_jobs_in_error", SHOP) == 0
    assert value(after, "voedger_projectors_lag", SHOP) >= 0


async def test_projector_lag_and_errors_show_while_a_projector_fails(vvm: VVM) -> None:
    app = vvm.app("test/shop")
    actualizer = next(a for a in app.actualizers if str(a.projector.qname) == "shop.CountItems")
    pid = actualizer.partition.id
    failing = asyncio.Event()

    async def broken(*_: object) -> None:  # the projector's implementation, failing
        failing.set()
        raise RuntimeError("projector down")

    actualizer._func = broken
    api, metrics = client_of(build_app(vvm, {1: LocalTransport(vvm)})), client_of(metrics_app(vvm, "node-1"))
    async with api, metrics:
        wsid = next(
            w for w in range(new_wsid(1, 200_000), new_wsid(1, 200_050)) if app.actualizers.partition_of(w) == pid
        )
        await make_shop_ws(api, vvm, wsid)
        reply = await api.post(f"/api/test/shop/{wsid}/c.sys.CUD", json=ITEM)
        assert reply.status_code == 200, reply.text
        await asyncio.wait_for(failing.wait(), 5)
        for _ in range(100):
            samples = await scrape(metrics)
            if value(samples, "voedger_projectors_in_error", SHOP) >= 1:
                break
            await asyncio.sleep(0.02)
        assert value(samples, "voedger_projectors_in_error", SHOP) >= 1
        assert value(samples, "voedger_projectors_lag", SHOP) >= 1
        await asyncio.sleep(0.3)
        later = await scrape(metrics)
        assert 0.3 <= value(later, "voedger_projectors_lag_seconds", SHOP) < 30  # the waiting event's age


async def test_check_answers_ok_and_anything_else_is_a_404(vvm: VVM) -> None:
    async with client_of(metrics_app(vvm, "node-1")) as metrics:
        check = await metrics.get("/metrics/check")
        assert (check.status_code, check.text) == (200, "ok")
        assert (await metrics.get("/unknown")).status_code == 404
        assert (await metrics.post("/metrics")).status_code == 404


async def test_partitions_owned_and_the_cluster_view(vvm: VVM) -> None:
    """One process on embedded storage owns every partition; /api/cluster lists them."""
    async with client_of(metrics_app(vvm, "node-1")) as metrics:
        samples = await scrape(metrics)
        shop = vvm.app("test/shop").runtime.num_partitions
        assert value(samples, "voedger_cluster_partitions_owned", {"app": "test/shop", "vvm": "node-1"}) == shop
        view = (await metrics.get("/api/cluster")).json()
        assert view["cluster"] is False
        owned = sorted(p["partition"] for p in view["partitions"] if p["app"] == "test/shop")
        assert owned == list(range(shop))


async def test_reads_served_from_what_is_kept_are_counted(vvm: VVM) -> None:
    api, metrics = client_of(build_app(vvm, {1: LocalTransport(vvm)})), client_of(metrics_app(vvm, "node-1"))
    async with api, metrics:
        shop = new_wsid(1, 200_001)
        await make_shop_ws(api, vvm, shop)
        reply = await api.post(f"/api/test/shop/{shop}/c.sys.CUD", json=ITEM)
        assert reply.status_code == 200
        item = reply.json()["NewIDs"]["1"]
        before = await scrape(metrics)
        collection = {"args": {"Schema": "shop.Item"}, "elements": [{"fields": ["Name"]}]}
        for _ in range(3):
            reply = await api.post(f"/api/test/shop/{shop}/q.sys.Collection", json=collection)
            assert reply.status_code == 200
            reply = await api.get(f"/api/v2/apps/test/shop/workspaces/{shop}/docs/shop.Item/{item}")
            assert reply.status_code == 200
        after = await scrape(metrics)

    def grew(name: str) -> float:
        return value(after, name, SHOP) - value(before, name, SHOP)

    assert grew("voedger_qp_kept_answers_misses_total") == 1  # the first Collection computed ...
    assert grew("voedger_qp_kept_answers_hits_total") == 2  # ... and kept
    assert grew("voedger_qp_kept_rows_hits_total") >= 2  # the document, after its first read
    assert value(after, "voedger_qp_kept_bytes", SHOP) > 0


async def test_a_stalled_event_loop_shows_in_its_lag(vvm: VVM) -> None:
    """A loop turn that blocks for 0.2 s makes the probe's wake-up late by about that much: it
    lands in the histogram's (0.1, 0.25] bucket and in the worst lag; quiet wake-ups do not."""
    labels = {"vvm": "node-1"}

    def late(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> tuple[float, float, float]:
        """(wake-ups, those up to 0.1 s late, those up to 0.25 s late)."""
        name = "voedger_event_loop_lag_seconds"
        return (
            value(samples, f"{name}_count", labels),
            value(samples, f"{name}_bucket", {**labels, "le": "0.1"}),
            value(samples, f"{name}_bucket", {**labels, "le": "0.25"}),
        )

    async with client_of(metrics_app(vvm, "node-1")) as metrics:
        before = late(await scrape(metrics))
        await asyncio.sleep(0.2)  # a few quiet wake-ups
        quiet = late(await scrape(metrics))
        assert quiet[0] - before[0] >= 2
        assert quiet[0] - before[0] == quiet[1] - before[1] == quiet[2] - before[2]
        time.sleep(0.2)  # the loop's turn blocks
        await asyncio.sleep(0.12)
        samples = await scrape(metrics)
    stalled = late(samples)
    assert stalled[0] - quiet[0] >= 2
    assert stalled[0] - stalled[1] - (quiet[0] - quiet[1]) == 1  # one wake-up over 0.1 s late
    assert stalled[2] - stalled[1] - (quiet[2] - quiet[1]) == 1  # and it came within 0.25 s
    assert value(samples, "voedger_event_loop_lag_max_seconds", labels) > 0.1
