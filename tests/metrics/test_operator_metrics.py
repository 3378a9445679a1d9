"""The series added for operators: latency histograms, storage errors by kind, group commit size,
partitions, jobs' next due run, HTTP requests by route family and status, process series."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.metrics.test_metrics import ITEM, SHOP, client_of, scrape, value, vvm
from tests.router.conftest import V1, make_shop_ws
from tests.test_sample_app import SAMPLE_APP
from voedger.metrics import metrics_app
from voedger.processors.tally import BOUNDS, Tally
from voedger.router.access import FAMILIES, CountRequests, route_family
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, ServerConfig

__all__ = ["vvm"]  # the fixture


def test_a_tally_puts_each_duration_in_the_first_bucket_that_holds_it() -> None:
    t = Tally()
    for seconds in (0.0005, 0.001, 0.0011, 0.3, 99.0):
        t.observe(seconds)
    cumulative = dict(t.cumulative())
    assert cumulative[0.001] == 2  # upper bounds are inclusive, as Prometheus' le
    assert cumulative[0.0025] == 3
    assert cumulative[0.25] == 3 and cumulative[0.5] == 4
    assert cumulative[BOUNDS[-1]] == 4 and cumulative[float("inf")] == 5
    assert t.seconds == pytest.approx(0.0005 + 0.001 + 0.0011 + 0.3 + 99.0)


@pytest.mark.parametrize(
    ("path", "family"),
    [
        ("/api/test/shop/140737488420864/c.sys.CUD", "api_v1"),
        ("/api/v2/apps/test/shop/workspaces/1/docs/shop.Item", "api_v2"),
        ("/api/v2/apps/test/shop/auth/login", "auth"),
        ("/api/v2/apps/test/shop/users", "auth"),
        ("/api/check", "check"),
        ("/blob/test/shop/1", "blob"),
        ("/_cluster/bus", "cluster"),
        ("/favicon.ico", "other"),
    ],
)
def test_route_families(path: str, family: str) -> None:
    assert route_family(path) == family
    assert family in FAMILIES


async def test_histograms_http_and_storage_series_follow_the_requests(vvm: VVM) -> None:
    front = CountRequests(build_app(vvm, {1: LocalTransport(vvm)}), vvm.http)
    api, metrics = client_of(front), client_of(metrics_app(vvm, "node-1"))
    async with api, metrics:
        shop = new_wsid(1, 200_000)
        await make_shop_ws(api, vvm, shop)
        await vvm.app("test/shop").actualizers.wait_idle()
        before = await scrape(metrics)
        for _ in range(4):
            assert (await api.post(f"/api/test/shop/{shop}/c.sys.CUD", json=ITEM)).status_code == 200
        assert (await api.post(f"{V1}/q.sys.Echo", json={"args": {"Text": "hi"}})).status_code == 200
        assert (await api.get("/api/check")).status_code == 200
        assert (await api.get("/nowhere")).status_code == 404
        after = await scrape(metrics)

    def grew(name: str, labels: dict[str, str] = SHOP) -> float:
        return value(after, name, labels) - value(before, name, labels)

    assert grew("voedger_cp_latency_seconds_count") == 4
    assert grew("voedger_cp_latency_seconds_bucket", {**SHOP, "le": "+Inf"}) == 4
    assert grew("voedger_cp_latency_seconds_sum") == pytest.approx(grew("voedger_cp_commands_seconds"))
    assert grew("voedger_qp_latency_seconds_count") == 1
    buckets = [value(after, "voedger_cp_latency_seconds_bucket", {**SHOP, "le": repr(b)}) for b in BOUNDS]
    assert buckets == sorted(buckets)  # cumulative
    assert grew("voedger_storage_write_latency_seconds_count") == grew("voedger_cp_group_writes_total") == 4
    assert grew("voedger_cp_group_commands_total") == 4
    for kind in ("fenced", "timeout", "other"):
        assert value(after, "voedger_storage_errors_total", {**SHOP, "kind": kind}) == 0
    assert value(after, "voedger_app_partitions", SHOP) == vvm.app("test/shop").runtime.num_partitions
    await vvm.app("test/shop").actualizers.wait_idle()
    assert vvm.app("test/shop").actualizers.lag_seconds() == 0  # all handled

    def http(family: str, status: str) -> float:
        return value(after, "voedger_http_requests_total", {"vvm": "node-1", "family": family, "status": status})

    assert http("api_v1", "200") >= 5  # 4 commands and the query (and the workspace's creation)
    assert http("check", "200") == 1
    assert http("other", "404") == 1
    assert value(after, "process_resident_memory_bytes", {}) > 0
    assert value(after, "process_open_fds", {}) > 0


async def test_requests_to_storage_servers_are_counted_by_kind(vvm: VVM, monkeypatch: pytest.MonkeyPatch) -> None:
    async with client_of(metrics_app(vvm, "node-1")) as metrics:
        # An embedded store (here mem://) has no servers: no series.
        assert not [name for name, _ in await scrape(metrics) if name == "voedger_storage_requests_total"]
        assert vvm.provider is not None
        counts = {"read": 7, "write": 2, "conditional": 1}
        monkeypatch.setattr(vvm.provider.factory, "requests", lambda: counts)
        samples = await scrape(metrics)
    for kind, n in counts.items():
        assert value(samples, "voedger_storage_requests_total", {"vvm": "node-1", "kind": kind}) == n


async def test_the_jobs_next_due_run_is_the_schedulers_next_run(tmp_path: Path) -> None:
    """The sample application's nightly job: its next run is the next 03:00 UTC."""
    app = "untill/restaurant"
    v = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(app, SAMPLE_APP)], insecure_dev=True))
    await v.start()
    try:
        async with client_of(metrics_app(v, "node-1")) as metrics:
            samples = await scrape(metrics)
    finally:
        await v.stop()
    due = value(samples, "voedger_jobs_next_due_timestamp_seconds", {"app": app, "vvm": "node-1"})
    now = time.time()
    assert now < due <= now + 86400
    assert time.gmtime(due)[3:6] == (3, 0, 0)
    assert ("voedger_jobs_next_due_timestamp_seconds", (("app", "test/shop"), ("vvm", "node-1"))) not in samples


async def test_federation_calls_and_the_lease_series_of_a_process_on_its_own(vvm: VVM) -> None:
    """A child workspace is made through the federation (in process: target ``local``); a
    process on storage of its own shows zero leases and one member."""
    api, metrics = client_of(build_app(vvm, {1: LocalTransport(vvm)})), client_of(metrics_app(vvm, "node-1"))
    local = {"vvm": "node-1", "target": "local"}
    async with api, metrics:
        shop = new_wsid(1, 200_000)
        await make_shop_ws(api, vvm, shop)
        await vvm.app("test/shop").actualizers.wait_idle()
        before = await scrape(metrics)
        child = {
            "sys.ID": 1,
            "sys.QName": "sys.ChildWorkspace",
            "WSName": "kid",
            "WSKind": "shop.ShopDesc",
            "WSClusterID": 1,
        }
        reply = await api.post(f"/api/test/shop/{shop}/c.sys.CUD", json={"cuds": [{"fields": child}]})
        assert reply.status_code == 200, reply.text
        for _ in range(200):
            await vvm.app("test/shop").actualizers.wait_idle()
            after = await scrape(metrics)
            if value(after, "voedger_federation_calls_total", local) > value(
                before, "voedger_federation_calls_total", local
            ):
                break
        assert value(after, "voedger_federation_calls_total", local) > value(
            before, "voedger_federation_calls_total", local
        )
    assert value(after, "voedger_federation_errors_total", local) == 0
    assert value(after, "voedger_federation_latency_seconds_count", local) == value(
        after, "voedger_federation_calls_total", local
    )
    alone = {"vvm": "node-1"}
    assert value(after, "voedger_cluster_lease_losses_total", alone) == 0
    assert value(after, "voedger_cluster_members", alone) == 1


async def test_an_http_federation_counts_its_calls_and_failures_by_target() -> None:
    import httpx

    from voedger.vvm.federation import HttpFederation
    from voedger.vvm.stats import FederationStats

    answers = iter([httpx.Response(200, json={"NewIDs": {}}), *[httpx.Response(500)] * 5])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers)

    class FakeTokens:
        def issue_system(self, app: str) -> str:
            return "t"

    stats = FederationStats()
    fed = HttpFederation(
        "http://peer.example:8822",
        FakeTokens(),  # type: ignore[arg-type]
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        stats=stats,
    )
    assert (await fed.command("a/b", 1, "c.sys.CUD", {})).status == 200
    assert (await fed.command("a/b", 1, "c.sys.CUD", {})).status == 500  # after its retries
    tally = stats.calls["peer.example:8822"]
    assert (tally.count, tally.errors) == (2, 1)
    assert sum(tally.buckets) == 2 and tally.seconds > 0.1  # the retries' waits are in it


async def test_a_servers_open_connections_are_counted(tmp_path: Path) -> None:
    import asyncio
    import signal

    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from tests.router.test_crash import start_server
    from tests.support import free_port, wait_ready

    port, metrics_port = free_port(), free_port()
    proc = start_server(tmp_path, port, None, "--metrics-port", str(metrics_port))

    async def connections(c: httpx.AsyncClient) -> float:
        text = (await c.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        (sample,) = [
            s for f in text_string_to_metric_families(text) for s in f.samples if s.name == "voedger_http_connections"
        ]
        return sample.value

    try:
        await wait_ready(port, proc)
        async with httpx.AsyncClient(timeout=10) as scraper:
            idle = await connections(scraper)
            streams = []
            for _ in range(3):  # three connections to the API, kept open
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /api/check HTTP/1.1\r\nhost: t\r\n\r\n")
                await reader.readuntil(b"ok")
                streams.append(writer)
            assert await connections(scraper) == idle + 3
            for w in streams:
                w.close()
                await w.wait_closed()
            for _ in range(50):
                if await connections(scraper) == idle:
                    break
                await asyncio.sleep(0.05)
            assert await connections(scraper) == idle
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
