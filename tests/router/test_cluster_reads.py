"""Reads in a cluster served where they arrive (``--cluster-reads here``), from the shared
storage, not forwarded (the default sends them to the owner: ``test_cluster_reads_at_owner``).

Two processes over one storage (``tests.inproc_cluster``): a read of a workspace whose partition
the other process owns is answered here and sees every command acknowledged before it, by
either process; a command still goes to the owner; and reads go on while nobody owns the
partition (its owner left), where commands get 503.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.inproc_cluster import Member, at_owners, inproc_cluster, owner_of
from tests.n10n.conftest import ALICE, APP, SHOP, SHOP_DIR, V1, V2, make_workspaces
from voedger.auth import PrincipalPayload
from voedger.vvm.server import VVM

DOCS = f"{V2}/workspaces/{SHOP}/docs/shop.Item"
CDOCS = f"{V2}/workspaces/{SHOP}/cdocs/shop.Item"


@asynccontextmanager
async def shop_cluster(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> AsyncIterator[list[Member]]:
    """Two processes serving the shop, its workspaces made; ``fields``: more ``ServerConfig``."""
    async with inproc_cluster(monkeypatch, APP, SHOP_DIR, **fields) as members:
        await at_owners(members, make_workspaces)
        yield members


@pytest.fixture
async def cluster(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Member]]:
    async with shop_cluster(monkeypatch, reads_at_owner=False) as members:
        yield members


def alice(vvm: VVM) -> dict[str, str]:
    assert vvm.tokens is not None
    token = vvm.tokens.issue(APP, PrincipalPayload(login="alice", profile_wsid=ALICE), timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


async def insert(client: httpx.AsyncClient, name: str, headers: dict[str, str]) -> int:
    body = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": name, "Price": 1}}]}
    r = await client.post(f"{V1}/c.sys.CUD", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return int(r.json()["NewIDs"]["1"])


async def test_a_read_is_served_where_it_arrives_and_sees_every_acknowledged_write(cluster: list[Member]) -> None:
    (owner, owner_url), (other, other_url) = owner_of(cluster, APP, SHOP)
    headers = alice(other)
    async with (
        httpx.AsyncClient(base_url=owner_url, timeout=10) as to_owner,
        httpx.AsyncClient(base_url=other_url, timeout=10) as to_other,
    ):
        forwarded, here = other.forwards.count, other.forwards.reads_here
        written = []
        for n in range(10):  # written at the owner, or through the other process (forwarded)
            client = to_owner if n % 2 else to_other
            item = await insert(client, f"item {n}", headers)
            written.append(item)
            r = await to_other.get(f"{DOCS}/{item}", headers=headers)  # at once, at the other process
            assert r.status_code == 200 and r.json()["Name"] == f"item {n}", r.text
        assert other.forwards.count == forwarded + 5  # its five commands, and none of its reads
        assert other.forwards.reads_here == here + 10

        r = await to_other.get(CDOCS, headers=headers)  # the collection
        assert r.status_code == 200 and {d["sys.ID"] for d in r.json()["results"]} >= set(written)
        body = {"args": {"Schema": "shop.Item"}, "elements": [{"fields": ["sys.ID", "Name"]}]}
        r = await to_other.post(f"{V1}/q.sys.Collection", json=body, headers=headers)
        assert r.status_code == 200, r.text
        assert {row[0][0][0] for row in r.json()["sections"][0]["elements"]} >= set(written), r.text
        assert other.forwards.reads_here == here + 12 and other.forwards.count == forwarded + 5

        # A query that may read other workspaces through the federation goes to the owner.
        r = await to_other.post(
            f"{V1}/q.sys.SqlQuery",
            json={"args": {"Query": f"select * from shop.Item where id = {written[0]}"}},
            headers=headers,
        )
        assert r.status_code == 200 and other.forwards.count == forwarded + 6, r.text

        # Reads of the workspace go on at the other process when its owner is gone; commands wait.
        await owner.leave()
        r = await to_other.get(f"{DOCS}/{written[0]}", headers=headers)
        assert r.status_code == 200 and r.json()["Name"] == "item 0", r.text
        body = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "late", "Price": 1}}]}
        r = await to_other.post(f"{V1}/c.sys.CUD", json=body, headers=headers)
        assert r.status_code in (200, 503), r.text  # taken over by the other process, or not yet


def counter(vvm: VVM, name: str) -> float:
    """The value of the ``voedger_*`` counter ``name`` (its ``_total`` series) for ``vvm``."""
    from prometheus_client import CollectorRegistry, generate_latest

    from voedger.metrics.collector import VoedgerCollector

    registry = CollectorRegistry()
    registry.register(VoedgerCollector(vvm, "vvm"))
    lines = generate_latest(registry).decode().splitlines()
    return float(next(ln for ln in lines if ln.startswith(f"{name}_total{{")).rsplit(" ", 1)[1])


async def test_the_metric_counts_the_reads_served_here(cluster: list[Member]) -> None:
    (_owner, _), (other, other_url) = owner_of(cluster, APP, SHOP)
    async with httpx.AsyncClient(base_url=other_url, timeout=10) as to_other:
        r = await to_other.get(CDOCS, headers=alice(other))
        assert r.status_code == 200, r.text
    assert counter(other, "voedger_cluster_reads_here") == other.forwards.reads_here >= 1
