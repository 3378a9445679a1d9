"""Notifications in a cluster of two processes: a client connected to the process that does not
own the workspace's partition gets the events of the owner's commands.

Both VVMs run in this test process over one shared in-memory storage (several processes need
shared storage, and the cluster tier's Cassandra is not for unit tests), each behind its own HTTP
server on a loopback port, with leases, the cluster secret and every hop between them over real
HTTP: the subscriber's check goes to the owner as a forwarded request, the owner sends the
changed views to the other process at ``/_cluster/n10n``."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.n10n.conftest import ALICE, APP, SHOP, SHOP_DIR, V1, V2, make_workspaces
from tests.n10n.sse import EventReader
from tests.support import free_port, share_one_storage
from voedger.auth import PrincipalPayload, StorageSecretStore, cluster_secret
from voedger.n10n import Key
from voedger.n10n.relay import encode_batch
from voedger.router.http import HttpServer
from voedger.router.server import make_asgi
from voedger.router.wire import N10N_PATH, SECRET_HEADER, secret_text
from voedger.structs.wsid import partition_of
from voedger.vvm.server import VVM, VVM_APP, ServerConfig


@pytest.fixture
async def cluster(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[tuple[VVM, str]]]:
    share_one_storage(monkeypatch)
    started: list[tuple[HttpServer, VVM, str]] = []
    try:
        for _ in range(2):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            config = ServerConfig(
                storage_url="mem://", apps=[(APP, SHOP_DIR)], cluster=True, advertise=base, lease_ttl=3
            )
            app, vvm = make_asgi(config)
            server = HttpServer(app)
            await server.start("127.0.0.1", port)
            started.append((server, vvm, base))
        for _, vvm, _ in started:
            assert vvm.ownership is not None
            assert await vvm.ownership.converged(20)
        yield [(vvm, base) for _, vvm, base in started]
    finally:
        for server, vvm, _ in reversed(started):
            await vvm.leave()
            await server.stop(2.0)


def _auth(vvm: VVM) -> dict[str, str]:
    assert vvm.tokens is not None
    t = vvm.tokens.issue(APP, PrincipalPayload(login="alice", profile_wsid=ALICE), timedelta(hours=1))
    return {"Authorization": f"Bearer {t}"}


async def test_a_subscriber_of_another_process_gets_the_owners_events(cluster: list[tuple[VVM, str]]) -> None:
    pid = partition_of(SHOP, cluster[0][0].app(APP).runtime.num_partitions)
    owners = [i for i, (vvm, _) in enumerate(cluster) if pid in vvm.app(APP).partitions]
    assert len(owners) == 1
    owner, owner_url = cluster[owners[0]]
    other, other_url = cluster[1 - owners[0]]
    # the workspaces: their partitions may be either process's; each is written by its owner
    for vvm, _ in cluster:
        assert vvm.n10n.peers is not None and vvm.n10n.peers() == [u for _, u in cluster if u != vvm.config.advertise]
    await _make_workspaces(cluster)
    # Updates sent to a process still starting (a member already, its endpoint not yet ready)
    # may have failed during the set-up; from here on, none may.
    failed = owner.n10n.failed
    headers = _auth(other)
    body: dict[str, Any] = {"subscriptions": [{"entity": "shop.Sales", "wsid": SHOP}]}
    async with (
        httpx.AsyncClient(base_url=other_url, timeout=10) as to_other,
        httpx.AsyncClient(base_url=owner_url, timeout=10) as to_owner,
    ):
        r = await to_owner.post(
            f"{V1}/c.sys.CUD",
            json={"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}}]},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        item = r.json()["NewIDs"]["1"]
        async with to_other.stream("POST", f"{V2}/notifications", json=body, headers=headers) as stream:
            assert stream.status_code == 200
            events = EventReader(stream)
            assert (await events.next())[0] == "channelId"
            assert other.n10n.broker.num_subscriptions == 1 and owner.n10n.broker.num_subscriptions == 0
            for client in (to_owner, to_other):  # sent to the owner, or forwarded to it
                began = time.perf_counter()
                r = await client.post(
                    f"{V1}/c.shop.MakeOrder", json={"args": {"sys.ID": 1, "Item": item, "Qty": 2}}, headers=headers
                )
                assert r.status_code == 200, r.text
                name, data = await events.next()
                assert json.loads(name) == {"App": APP, "Projection": "shop.Sales", "WS": SHOP}
                assert int(data) == r.json()["CurrentWLogOffset"]
                assert time.perf_counter() - began < 1.0
        # a subscriber of the other process is refused what the owner refuses (the check is forwarded)
        r = await to_other.post(
            f"{V2}/notifications",
            json={"subscriptions": [{"entity": "shop.Nothing", "wsid": SHOP}]},
            headers=headers,
        )
        assert r.status_code == 400 and "shop.Nothing" in r.json()["message"]
    assert owner.n10n.sent >= 2 and other.n10n.received >= 2
    assert owner.n10n.failed == failed


async def _make_workspaces(cluster: list[tuple[VVM, str]]) -> None:
    """``make_workspaces`` at the owner of each workspace's partition."""

    class _Routed:
        def __init__(self) -> None:
            self.apps: dict[str, Any] = {}

        def app(self, name: str) -> Any:
            return _RoutedApp(name)

    class _RoutedApp:
        def __init__(self, name: str) -> None:
            self.name = name

        def partition(self, wsid: int) -> Any:
            for vvm, _ in cluster:
                app = vvm.app(self.name)
                pid = partition_of(wsid, app.runtime.num_partitions)
                if pid in app.partitions:
                    return app.partitions[pid]
            raise AssertionError(f"nobody owns workspace {wsid}")

    await make_workspaces(_Routed())  # type: ignore[arg-type]


async def test_the_peer_endpoint_needs_the_cluster_secret(cluster: list[tuple[VVM, str]]) -> None:
    vvm, url = cluster[0]
    assert vvm.provider is not None
    secret = secret_text(await cluster_secret(StorageSecretStore(await vvm.provider.app_storage(VVM_APP))))
    batch = encode_batch([(Key(APP, "shop.Sales", SHOP), 3)])
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        assert (await c.post(N10N_PATH, content=batch)).status_code == 401
        assert (await c.post(N10N_PATH, content=batch, headers={SECRET_HEADER: "wrong"})).status_code == 403
        r = await c.post(N10N_PATH, content=b"[1]", headers={SECRET_HEADER: secret})
        assert r.status_code == 400 and "malformed notifications" in r.text
        received = vvm.n10n.received
        assert (await c.post(N10N_PATH, content=batch, headers={SECRET_HEADER: secret})).status_code == 204
        assert vvm.n10n.received == received + 1
