"""A whole federation in one test process: three clusters (the real servers, each with its own
SQLite storage, real tokens) whose routers reach each other through ``httpx.ASGITransport``
instead of sockets; the code paths are the production ones. Plus the directory, its store and the secret
file on their own."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.router.conftest import SHOP_DIR
from voedger.federation.directory import ClusterEntry, Directory, DirectoryError
from voedger.federation.metrics import FederationCollector, federation_status
from voedger.federation.secretfile import read_secret_file, write_secret_file
from voedger.federation.server import Federated, FederationConfig, make_federated_asgi
from voedger.federation.store import DirectoryStore, federation_secret
from voedger.router.app import FastPath
from voedger.router.http import Lifespan
from voedger.storage import open_storage
from voedger.storage.mem import MemAppStorage
from voedger.structs import wsid as ws
from voedger.vvm.server import VVM, VVM_APP, ServerConfig

SHOP = "test/shop"
V2 = f"/api/v2/apps/{SHOP}"


def _entry(i: int, **kw: Any) -> ClusterEntry:
    fields: dict[str, Any] = {
        "id": i,
        "name": f"c{i}",
        "region": f"r{i}",
        "public_url": f"http://c{i}",
        "internal_url": f"http://c{i}",
    }
    fields.update(kw)
    return ClusterEntry(**fields)


class InProcess:
    """Three clusters in this process; ``down`` holds the clusters whose routers are unreachable."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.apps: dict[str, FastPath] = {}
        self.parts: dict[int, Federated] = {}
        self.vvms: dict[int, VVM] = {}
        self.lifespans: list[Lifespan] = []
        self.down: set[str] = set()

    def client(self, base_url: str) -> httpx.AsyncClient:
        async def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("cluster down", request=request)

        def transport() -> httpx.AsyncBaseTransport:
            if base_url in self.down:
                return httpx.MockTransport(handler)
            return httpx.ASGITransport(app=self.apps[base_url])

        class Switching(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                return await transport().handle_async_request(request)

        return httpx.AsyncClient(transport=Switching(), base_url=base_url)

    async def start(self) -> None:
        main_url = f"sqlite://{self.root / 'c1'}"
        provider = open_storage(main_url)
        await provider.open()
        store = DirectoryStore(await provider.app_storage(VVM_APP))
        for i in (1, 2, 3):
            await store.change(lambda d, i=i: d.with_cluster(_entry(i)))  # type: ignore[misc]
        secret = await federation_secret(store.storage)
        await provider.close()
        for i in (1, 2, 3):
            config = ServerConfig(
                storage_url=f"sqlite://{self.root / f'c{i}'}",
                apps=[(SHOP, SHOP_DIR)],
                cluster_id=i,
                federated=True,
                advertise=f"http://c{i}",
            )
            fed = FederationConfig(
                None if i == 1 else "http://c1", None if i == 1 else secret, interval=0.2, client_factory=self.client
            )
            app, vvm, parts = make_federated_asgi(config, fed)
            self.apps[f"http://c{i}"] = app
            self.vvms[i] = vvm
            self.parts[i] = parts
            lifespan = Lifespan(app, {})
            await lifespan.startup()
            self.lifespans.append(lifespan)

    async def stop(self) -> None:
        for lifespan in reversed(self.lifespans):
            await lifespan.shutdown()


@pytest.fixture
async def fed(tmp_path: Path) -> AsyncIterator[InProcess]:
    f = InProcess(tmp_path)
    await f.start()
    try:
        yield f
    finally:
        await f.stop()


async def _until(probe: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await probe()
        if got is not None:
            return got
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.05)


async def test_a_federation_in_one_process(fed: InProcess) -> None:
    c1, c2, c3 = (fed.client(f"http://c{i}") for i in (1, 2, 3))
    try:
        r = await c2.post(f"{V2}/users", json={"login": "eve", "password": "pass-word-1"})
        assert r.status_code == 201, r.text

        async def signed_in() -> Any:
            r = await c3.post(f"{V2}/auth/login", json={"login": "eve", "password": "pass-word-1"})
            return r.json() if r.status_code == 200 else None

        signed = await _until(signed_in)
        profile = int(signed["profileWSID"])
        for c in (c1, c2, c3):  # the main cluster's token, verified by every cluster itself
            c.headers["Authorization"] = f"Bearer {signed['principalToken']}"
        assert ws.cluster_id(profile) == 2
        args = {"WSName": "s", "WSKind": "shop.ShopDesc", "WSKindInitializationData": '{"Name":"N"}'}
        args["WSClusterID"] = 3  # type: ignore[assignment]
        r = await c1.post(f"/api/{SHOP}/{profile}/c.sys.InitChildWorkspace", json={"args": args})
        assert r.status_code == 200, r.text
        query = {"args": {"WSName": "s"}, "elements": [{"fields": ["WSID", "WSError"]}]}

        async def made() -> Any:
            r = await c2.post(f"/api/{SHOP}/{profile}/q.sys.QueryChildWorkspaceByName", json=query)
            wsid, error = r.json()["sections"][0]["elements"][0][0][0]
            assert not error
            return wsid or None

        child = int(await _until(made))
        assert ws.cluster_id(child) == 3
        cud = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}}]}
        r = await c1.post(f"/api/{SHOP}/{child}/c.sys.CUD", json=cud)
        assert r.status_code == 200, r.text
        bodies = {(await c.get(f"{V2}/workspaces/{child}/cdocs/shop.Item")).content for c in (c1, c2, c3)}
        assert len(bodies) == 1 and b"tea" in next(iter(bodies))
        # The forwarding router counted its hops to cluster 3, and shows them to an operator.
        routes = fed.parts[1].routes
        assert routes is not None and routes.stats.sent(3) >= 2
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FederationCollector(fed.parts[1], "t"))
        text = generate_latest(registry).decode()
        sent = routes.stats.sent(3)
        assert f'voedger_federation_forwarded_total{{cluster="1",target="3",vvm="t"}} {float(sent)}' in text
        assert 'voedger_federation_forward_seconds_bucket{cluster="1",le="+Inf",target="3",vvm="t"}' in text
        assert 'voedger_federation_clusters{cluster="1",vvm="t"} 3.0' in text
        status = federation_status(fed.parts[1])
        assert status["main"] and status["forwarded"]["3"]["requests"] == sent
        assert [c["id"] for c in status["directory"]["clusters"]] == [1, 2, 3]

        # Cluster 3 unreachable: its workspace answers 503 with Retry-After; cluster 2's does not.
        fed.down.add("http://c3")
        r = await c1.get(f"{V2}/workspaces/{child}/cdocs/shop.Item")
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        r = await c1.get(f"{V2}/workspaces/{profile}/docs/sys.UserProfile")
        assert r.status_code == 200, r.text
        fed.down.discard("http://c3")
        r = await c2.get(f"{V2}/workspaces/{child}/cdocs/shop.Item")
        assert r.status_code == 200, r.text
    finally:
        for c in (c1, c2, c3):
            await c.aclose()


async def test_a_directory_change_reaches_the_workers_and_a_removed_cluster_is_400(fed: InProcess) -> None:
    worker = fed.parts[2]
    assert worker.directory().knows(3)
    main = fed.parts[1]
    assert main.source is not None
    store = main.source.store  # type: ignore[union-attr]
    await store.change(lambda d: d.without_cluster(3))
    await _until(lambda: asyncio.sleep(0, True if not worker.directory().knows(3) else None), timeout=5)
    async with fed.client("http://c2") as c2:
        wsid = ws.new_wsid(3, ws.FIRST_BASE_USER_WSID)
        r = await c2.post(f"/api/{SHOP}/{wsid}/c.sys.CUD", json={"cuds": []})
        assert r.status_code == 400 and "cluster 3" in r.text
    # The worker kept the directory it fetched: a restart with the main cluster unreachable
    # starts with it.
    provider = fed.vvms[2].provider
    assert provider is not None
    cache = DirectoryStore(await provider.app_storage(VVM_APP))

    async def kept() -> Directory | None:
        d = await cache.cached()  # written just after the worker took the new version
        return d if d is not None and not d.knows(3) else None

    assert (await _until(kept, timeout=5)).knows(2)


def test_directory_entries_are_validated() -> None:
    with pytest.raises(DirectoryError, match="cluster ID"):
        _entry(0)
    with pytest.raises(DirectoryError, match="name"):
        _entry(2, name="2bad")
    with pytest.raises(DirectoryError, match="internal_url"):
        _entry(2, internal_url="ftp://x")
    with pytest.raises(DirectoryError, match="credentials"):
        _entry(2, public_url="http://u:p@x")
    d = Directory().with_cluster(_entry(1)).with_cluster(_entry(2))
    assert d.version == 2 and Directory.parse(d.to_bytes()) == d
    with pytest.raises(DirectoryError, match="already named"):
        d.with_cluster(_entry(3, name="c2"))
    with pytest.raises(DirectoryError, match="removed last"):
        d.without_cluster(1)
    for raw in (b"[]", b"{", b'{"version":1,"clusters":[{"id":1}]}', b'{"version":-1,"clusters":[]}'):
        with pytest.raises(DirectoryError):
            Directory.parse(raw)


async def test_the_store_changes_atomically_and_the_secret_is_kept() -> None:
    from voedger.clock import SYSTEM_CLOCK

    storage = MemAppStorage(SYSTEM_CLOCK)
    store = DirectoryStore(storage)
    await asyncio.gather(*(store.change(lambda d, i=i: d.with_cluster(_entry(i))) for i in range(1, 9)))  # type: ignore[misc]
    d = await store.load()
    assert sorted(d.clusters) == list(range(1, 9)) and d.version == 8  # no change lost
    main = await federation_secret(storage)
    assert await federation_secret(storage) == main
    other = MemAppStorage(SYSTEM_CLOCK)
    assert await federation_secret(other, main) == main
    with pytest.raises(DirectoryError, match="another federation secret"):
        await federation_secret(other, bytes(32))


def test_the_secret_file_is_the_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "fed.secret"
    write_secret_file(path, bytes(range(32)))
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert read_secret_file(path) == bytes(range(32))
    with pytest.raises(FileExistsError):
        write_secret_file(path, bytes(32))
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="read by others"):
        read_secret_file(path)
    bad = tmp_path / "bad"
    bad.write_text("zz")
    os.chmod(bad, 0o600)
    with pytest.raises(ValueError, match="hex"):
        read_secret_file(bad)
