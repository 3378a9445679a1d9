"""Notification streams of another cluster's workspace through a router of this one.

Two clusters of a federation (the main, 1, and a worker, 2), each a real server with its own
SQLite storage behind its own HTTP server on a loopback port (streams need sockets: httpx's ASGI
transport holds a response until it ends); the directory, the secret, the keys and every hop
between them are the production ones. A client of cluster 1's router subscribes to a view of a
workspace of cluster 2: the router relays the stream from cluster 2's, unchanged."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.n10n.conftest import make_workspaces
from tests.n10n.sse import EventReader
from tests.router.conftest import SHOP_DIR
from tests.support import free_port, until
from voedger.auth import PrincipalPayload
from voedger.federation.directory import ClusterEntry
from voedger.federation.server import FederationConfig, make_federated_asgi
from voedger.federation.store import DirectoryStore, federation_secret
from voedger.router.app import MAX_FRAME
from voedger.router.http import HttpServer
from voedger.router.wire import secret_text
from voedger.storage import open_storage
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, VVM_APP, ServerConfig

APP = "test/shop"
V2 = f"/api/v2/apps/{APP}"
ALICE = new_wsid(2, 400_001)
BOB = new_wsid(2, 400_002)
SHOP = new_wsid(2, 400_003)
"""Workspaces of cluster 2."""


@dataclass
class Cluster:
    vvm: VVM
    url: str
    secret: str


@pytest.fixture
async def clusters(tmp_path: Path) -> AsyncIterator[dict[int, Cluster]]:
    ports = {i: free_port() for i in (1, 2)}
    urls = {i: f"http://127.0.0.1:{ports[i]}" for i in (1, 2)}
    provider = open_storage(f"sqlite://{tmp_path / 'c1'}")
    await provider.open()
    store = DirectoryStore(await provider.app_storage(VVM_APP))
    for i in (1, 2):
        entry = ClusterEntry(id=i, name=f"c{i}", region=f"r{i}", public_url=urls[i], internal_url=urls[i])
        await store.change(lambda d, e=entry: d.with_cluster(e))  # type: ignore[misc]
    secret = await federation_secret(store.storage)
    await provider.close()
    started: list[tuple[HttpServer, VVM]] = []
    out: dict[int, Cluster] = {}
    try:
        for i in (1, 2):
            config = ServerConfig(
                storage_url=f"sqlite://{tmp_path / f'c{i}'}",
                apps=[(APP, SHOP_DIR)],
                cluster_id=i,
                federated=True,
                advertise=urls[i],
            )
            fed = FederationConfig(None if i == 1 else urls[1], None if i == 1 else secret, interval=0.2)
            app, vvm, parts = make_federated_asgi(config, fed)
            server = HttpServer(app, max_body=MAX_FRAME)
            await server.start("127.0.0.1", ports[i])
            started.append((server, vvm))
            assert parts.routes is not None
            out[i] = Cluster(vvm, urls[i], secret_text(parts.routes.secret))
        await make_workspaces(out[2].vvm, ALICE, BOB, SHOP)
        yield out
    finally:
        for server, vvm in reversed(started):
            vvm.n10n.broker.shut()
            await server.stop(1.0)


def _auth(main: VVM, login: str = "alice", profile: int = ALICE) -> dict[str, str]:
    """A principal token of the main cluster (the one that issues them)."""
    assert main.tokens is not None
    token = main.tokens.issue(APP, PrincipalPayload(login=login, profile_wsid=profile), timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


async def test_a_stream_of_another_clusters_workspace_is_relayed(clusters: dict[int, Cluster]) -> None:
    c1, c2 = clusters[1], clusters[2]
    alice = _auth(c1.vvm)
    body = {"subscriptions": [{"entity": "shop.Sales", "wsid": SHOP}]}
    async with (
        httpx.AsyncClient(base_url=c1.url, timeout=10) as to_c1,
        httpx.AsyncClient(base_url=c2.url, timeout=10) as to_c2,
    ):

        async def item_made() -> int | None:  # once cluster 2 verifies the main cluster's tokens
            cud = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}}]}
            r = await to_c1.post(f"/api/{APP}/{SHOP}/c.sys.CUD", json=cud, headers=alice)
            return int(r.json()["NewIDs"]["1"]) if r.status_code == 200 else None

        item = await until(item_made)
        async with to_c1.stream("POST", f"{V2}/notifications", json=body, headers=alice) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            events = EventReader(stream)
            name, channel = await events.next()
            assert name == "channelId"
            # the channel is cluster 2's; cluster 1's router only relays it
            assert c2.vvm.n10n.broker.num_subscriptions == 1 and c1.vvm.n10n.broker.num_subscriptions == 0
            for client in (to_c1, to_c2):  # the command forwarded to cluster 2, or sent there
                order = {"args": {"sys.ID": 1, "Item": item, "Qty": 2}}
                r = await client.post(f"/api/{APP}/{SHOP}/c.shop.MakeOrder", json=order, headers=alice)
                assert r.status_code == 200, r.text
                answered = time.perf_counter()
                name, data = await events.next()
                assert time.perf_counter() - answered < 1.0
                assert json.loads(name) == {"App": APP, "Projection": "shop.Sales", "WS": SHOP}
                assert int(data) == r.json()["CurrentWLogOffset"]

            # the channel's subscriptions through cluster 1's router go to cluster 2's
            url = f"{V2}/notifications/{channel}/workspaces/{SHOP}/subscriptions/shop.ItemCount"
            r = await to_c1.put(url, headers=alice)
            assert r.status_code == 200, r.text
            assert c2.vvm.n10n.broker.num_subscriptions == 2
            r = await to_c1.put(url, headers=_auth(c1.vvm, "bob", BOB))
            assert r.status_code == 403, r.text
            r = await to_c1.delete(url, headers=alice)
            assert r.status_code == 204, r.text
            assert c2.vvm.n10n.broker.num_subscriptions == 1

        # the client went away: the upstream was closed, and cluster 2 dropped the channel
        async def closed() -> bool | None:
            return True if c2.vvm.n10n.broker.num_subscriptions == 0 else None

        await until(closed, 5.0)

        # refused as cluster 2 refuses the same request itself: the same status and body
        for headers, status in ((_auth(c1.vvm, "bob", BOB), 403), ({}, 401)):
            direct = await to_c2.post(f"{V2}/notifications", json=body, headers=headers)
            relayed = await to_c1.post(f"{V2}/notifications", json=body, headers=headers)
            assert direct.status_code == relayed.status_code == status, relayed.text
            assert direct.content == relayed.content
        assert c2.vvm.n10n.broker.num_subscriptions == 0

        # a channel may not mix the workspaces of two clusters
        other = new_wsid(1, 400_003)
        mixed = {"subscriptions": [{"entity": "shop.Sales", "wsid": SHOP}, {"entity": "shop.Sales", "wsid": other}]}
        r = await to_c1.post(f"{V2}/notifications", json=mixed, headers=alice)
        assert r.status_code == 400 and "one cluster" in r.json()["message"]

        # API v1: the channel and its subscriptions relayed the same way
        key = {"App": APP, "Projection": "shop.Sales", "WS": SHOP}
        payload = json.dumps({"SubjectLogin": "alice", "ProjectionKey": [key]})
        async with to_c1.stream("GET", "/n10n/channel", params={"payload": payload}) as stream:
            assert stream.status_code == 200
            events = EventReader(stream)
            name, channel = await events.next()
            assert name == "channelId" and c2.vvm.n10n.broker.num_subscriptions == 1
            item_count = {**key, "Projection": "shop.ItemCount"}
            sub = json.dumps({"Channel": channel, "ProjectionKey": [item_count]})
            r = await to_c1.get("/n10n/subscribe", params={"payload": sub})
            assert r.status_code == 200, r.text
            assert c2.vvm.n10n.broker.num_subscriptions == 2
            r = await to_c1.get("/n10n/unsubscribe", params={"payload": sub})
            assert r.status_code == 200 and c2.vvm.n10n.broker.num_subscriptions == 1
        await until(closed, 5.0)


async def test_only_a_federation_peer_may_relay_and_only_notifications(clusters: dict[int, Cluster]) -> None:
    c1, c2 = clusters[1], clusters[2]
    async with httpx.AsyncClient(base_url=c2.url, timeout=10) as to_c2:
        target = {"X-Voedger-Forwarded-Method": "POST", "X-Voedger-Forwarded-Target": f"{V2}/notifications"}
        r = await to_c2.post("/_federation/stream", headers=target, content=b"{}")
        assert r.status_code == 401
        r = await to_c2.post("/_federation/stream", headers={**target, "X-Voedger-Federation-Secret": "x" * 64})
        assert r.status_code == 403
        # with the secret (as cluster 1's router sends it): a workspace of another cluster is not
        # relayed again (421), and nothing but the notification endpoints is served (400)
        secret = {"X-Voedger-Federation-Secret": c1.secret}
        body = {"subscriptions": [{"entity": "shop.Sales", "wsid": new_wsid(1, 400_003)}]}
        r = await to_c2.post("/_federation/stream", headers={**target, **secret, **_auth(c1.vvm)}, json=body)
        assert r.status_code == 421, r.text
        cud = {"X-Voedger-Forwarded-Method": "POST", "X-Voedger-Forwarded-Target": f"/api/{APP}/{SHOP}/c.sys.CUD"}
        r = await to_c2.post("/_federation/stream", headers={**cud, **secret}, json={"cuds": []})
        assert r.status_code == 400 and "not a notification request" in r.text
