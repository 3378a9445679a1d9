"""Notifications in a cluster of two processes: a client connected to the process that does not
own the workspace's partition gets the events of the owner's commands.

Both VVMs run in this test process over one shared in-memory storage (several processes need
shared storage, and the cluster tier's Cassandra is not for unit tests), each behind its own HTTP
server on a loopback port, with leases, the cluster secret and every hop between them over real
HTTP: the subscriber's check goes to the owner as a forwarded request, the owner sends the
changed views to the other process at ``/_cluster/n10n``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.inproc_cluster import at_owners, inproc_cluster, owner_of
from tests.n10n.conftest import ALICE, APP, SHOP, SHOP_DIR, V1, V2, make_workspaces
from tests.n10n.sse import EventReader
from voedger.auth import PrincipalPayload, StorageSecretStore, cluster_secret
from voedger.metrics.service import metrics_app
from voedger.n10n import Key
from voedger.n10n.relay import encode_batch, encode_interest
from voedger.router.wire import N10N_PATH, N10N_WATCH_PATH, SECRET_HEADER, secret_text
from voedger.vvm.server import VVM, VVM_APP


@pytest.fixture
async def cluster(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[tuple[VVM, str]]]:
    async with inproc_cluster(monkeypatch, APP, SHOP_DIR) as members:
        yield members


def _auth(vvm: VVM) -> dict[str, str]:
    assert vvm.tokens is not None
    t = vvm.tokens.issue(APP, PrincipalPayload(login="alice", profile_wsid=ALICE), timedelta(hours=1))
    return {"Authorization": f"Bearer {t}"}


async def _new_item(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    r = await client.post(
        f"{V1}/c.sys.CUD",
        json={"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}}]},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    item: int = r.json()["NewIDs"]["1"]
    return item


async def test_a_subscriber_of_another_process_gets_the_owners_events(cluster: list[tuple[VVM, str]]) -> None:
    (owner, owner_url), (other, other_url) = owner_of(cluster, APP, SHOP)
    # the workspaces: their partitions may be either process's; each is written by its owner
    for vvm, _ in cluster:
        assert vvm.n10n.peers is not None and vvm.n10n.peers() == [u for _, u in cluster if u != vvm.config.advertise]
    await at_owners(cluster, make_workspaces)
    # Updates sent to a process still starting (a member already, its endpoint not yet ready)
    # may have failed during the set-up; from here on, none may.
    failed = owner.n10n.failed
    headers = _auth(other)
    body: dict[str, Any] = {"subscriptions": [{"entity": "shop.Sales", "wsid": SHOP}]}
    async with (
        httpx.AsyncClient(base_url=other_url, timeout=10) as to_other,
        httpx.AsyncClient(base_url=owner_url, timeout=10) as to_owner,
    ):
        item = await _new_item(to_owner, headers)
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


async def _until(check: Any, timeout: float = 10.0) -> None:
    ends = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < ends, "not reached in time"
        await asyncio.sleep(0.02)


async def test_a_process_is_sent_the_updates_of_the_keys_it_watches_only(cluster: list[tuple[VVM, str]]) -> None:
    """No subscriber in the other process: the owner's commands send it nothing. Once a stream
    there opens (its channel ID is the answer), the owner knows the key and sends its updates;
    once the stream is gone, it forgets the key again."""
    (owner, owner_url), (other, other_url) = owner_of(cluster, APP, SHOP)
    await at_owners(cluster, make_workspaces)
    # each has told the other the keys its subscribers watch: none
    await _until(lambda: owner.n10n.interest.get(other_url) == set() and other.n10n.interest.get(owner_url) == set())
    headers = _auth(other)
    sales = Key(APP, "shop.Sales", SHOP)
    async with (
        httpx.AsyncClient(base_url=other_url, timeout=10) as to_other,
        httpx.AsyncClient(base_url=owner_url, timeout=10) as to_owner,
    ):
        item = await _new_item(to_owner, headers)
        order = {"args": {"sys.ID": 1, "Item": item, "Qty": 2}}
        sent, skipped = owner.n10n.sent, owner.n10n.skipped
        for _ in range(3):
            assert (await to_owner.post(f"{V1}/c.shop.MakeOrder", json=order, headers=headers)).status_code == 200
        assert owner.n10n.sent == sent and owner.n10n.skipped > skipped  # nothing went to the other
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=metrics_app(owner, "p"))) as m:
            text = (await m.get("http://m/metrics")).text
        assert f'voedger_n10n_relay_skipped_total{{vvm="p"}} {float(owner.n10n.skipped)}' in text

        # The other's messages of watched keys take a while: the stream waits for them.
        tell = other.n10n.announcer
        assert tell is not None

        async def slowly(peer: str, message: bytes) -> bool | None:
            await asyncio.sleep(0.3)
            return await tell(peer, message)

        other.n10n.announcer = slowly
        body: dict[str, Any] = {"subscriptions": [{"entity": "shop.Sales", "wsid": SHOP}]}
        async with to_other.stream("POST", f"{V2}/notifications", json=body, headers=headers) as stream:
            events = EventReader(stream)
            assert (await events.next())[0] == "channelId"
            assert owner.n10n.interest[other_url] == {sales}  # told before the stream was answered
            r = await to_owner.post(f"{V1}/c.shop.MakeOrder", json=order, headers=headers)
            assert r.status_code == 200, r.text
            name, data = await events.next()
            assert json.loads(name) == {"App": APP, "Projection": "shop.Sales", "WS": SHOP}
            assert int(data) == r.json()["CurrentWLogOffset"]
            assert owner.n10n.sent > sent
        # the stream ended: the other process watches nothing again, and says so
        await _until(lambda: owner.n10n.interest.get(other_url) == set())


async def test_the_watch_endpoint_needs_the_cluster_secret_and_a_whole_set_first(
    cluster: list[tuple[VVM, str]],
) -> None:
    vvm, url = cluster[0]
    assert vvm.provider is not None
    secret = secret_text(await cluster_secret(StorageSecretStore(await vvm.provider.app_storage(VVM_APP))))
    key = Key(APP, "shop.Sales", SHOP)
    change = encode_interest("http://127.0.0.9:1", False, [key], [])
    whole = encode_interest("http://127.0.0.9:1", True, [key], [])
    auth = {SECRET_HEADER: secret}
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        assert (await c.post(N10N_WATCH_PATH, content=whole)).status_code == 401
        assert (await c.post(N10N_WATCH_PATH, content=whole, headers={SECRET_HEADER: "wrong"})).status_code == 403
        r = await c.post(N10N_WATCH_PATH, content=b'{"from": "x"}', headers=auth)
        assert r.status_code == 400 and "malformed watched keys" in r.text
        r = await c.post(N10N_WATCH_PATH, content=change, headers=auth)
        assert r.status_code == 409 and "whole set" in r.text  # a change from a process not known yet
        assert "http://127.0.0.9:1" not in vvm.n10n.interest
        assert (await c.post(N10N_WATCH_PATH, content=whole, headers=auth)).status_code == 204
        assert (await c.post(N10N_WATCH_PATH, content=change, headers=auth)).status_code == 204
        gone = encode_interest("http://127.0.0.9:1", False, [], [key])
        assert (await c.post(N10N_WATCH_PATH, content=gone, headers=auth)).status_code == 204
        assert vvm.n10n.interest["http://127.0.0.9:1"] == set()
