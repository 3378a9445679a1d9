"""Reads sent to the partition's owner (the default, ``ServerConfig.reads_at_owner``): a read of
a workspace whose partition another process owns goes to that owner, which keeps the rows its
reads found; it is served where it arrived when the owner does not answer within
``read_hop_seconds`` (then the owner is left alone for ``READ_BACKOFF_SECONDS``, but for one read
that tries it again), or is gone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.inproc_cluster import Member, owner_of
from tests.n10n.conftest import APP, SHOP, V1
from tests.router.test_cluster_reads import CDOCS, DOCS, alice, counter, insert, shop_cluster
from voedger.router import cluster as routing
from voedger.router.http_transport import HttpTransport


@pytest.fixture
async def cluster(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Member]]:
    # A loaded test machine may take over the default second to answer a hop: only the test of
    # a stalled owner shortens it.
    async with shop_cluster(monkeypatch, read_hop_seconds=10.0) as members:
        for vvm, _ in members:  # each knows every owner now, not at its next look at the leases
            assert vvm.ownership is not None
            for pid in range(vvm.app(APP).runtime.num_partitions):
                assert await vvm.ownership.refresh((APP, pid)) is not None
        yield members


async def test_a_read_goes_to_the_owner_and_sees_every_acknowledged_write(cluster: list[Member]) -> None:
    (owner, owner_url), (other, other_url) = owner_of(cluster, APP, SHOP)
    headers = alice(other)
    async with (
        httpx.AsyncClient(base_url=owner_url, timeout=10) as to_owner,
        httpx.AsyncClient(base_url=other_url, timeout=10) as to_other,
    ):
        stats = other.forwards
        forwarded, here, at_owner = stats.count, stats.reads_here, stats.reads_at_owner
        written = []
        for n in range(6):  # written at the owner, or through the other process (forwarded)
            item = await insert(to_owner if n % 2 else to_other, f"item {n}", headers)
            written.append(item)
            r = await to_other.get(f"{DOCS}/{item}", headers=headers)  # at once, at the other process
            assert r.status_code == 200 and r.json()["Name"] == f"item {n}", r.text
        hits = owner.app(APP).runtime.rows.hits
        for _ in range(3):
            r = await to_other.get(f"{DOCS}/{written[0]}", headers=headers)
            assert r.status_code == 200 and r.json()["Name"] == "item 0", r.text
        assert owner.app(APP).runtime.rows.hits > hits  # the owner kept the record its reads found

        r = await to_other.get(CDOCS, headers=headers)
        assert r.status_code == 200 and {d["sys.ID"] for d in r.json()["results"]} >= set(written)
        body = {"args": {"Schema": "shop.Item"}, "elements": [{"fields": ["sys.ID", "Name"]}]}
        r = await to_other.post(f"{V1}/q.sys.Collection", json=body, headers=headers)
        assert r.status_code == 200, r.text
        assert {row[0][0][0] for row in r.json()["sections"][0]["elements"]} >= set(written), r.text
        assert stats.reads_at_owner == at_owner + 11 and stats.reads_here == here
        assert stats.count == forwarded + 3  # the other process's three commands
        assert stats.read_hops_failed == 0


async def test_a_paused_owner_costs_one_wait_then_reads_are_served_here_until_it_answers(
    cluster: list[Member], monkeypatch: pytest.MonkeyPatch
) -> None:
    (_owner, owner_url), (other, other_url) = owner_of(cluster, APP, SHOP)
    headers = alice(other)
    monkeypatch.setattr(other.config, "read_hop_seconds", 0.5)
    monkeypatch.setattr(routing, "READ_BACKOFF_SECONDS", 1.5)
    real_send = HttpTransport.send
    paused = asyncio.Event()

    async def send(self: HttpTransport, request: Any) -> Any:
        if paused.is_set():
            await asyncio.sleep(30)  # a stand-in for an owner stopped with SIGSTOP
        return await real_send(self, request)

    monkeypatch.setattr(HttpTransport, "send", send)
    async with (
        httpx.AsyncClient(base_url=owner_url, timeout=10) as to_owner,
        httpx.AsyncClient(base_url=other_url, timeout=10) as to_other,
    ):
        item = await insert(to_owner, "pen", headers)
        stats = other.forwards
        here, at_owner = stats.reads_here, stats.reads_at_owner

        async def read() -> float:
            began = time.monotonic()
            r = await to_other.get(f"{DOCS}/{item}", headers=headers)
            assert r.status_code == 200 and r.json()["Name"] == "pen", r.text
            return time.monotonic() - began

        paused.set()
        waits = await asyncio.gather(*(read() for _ in range(4)))  # all sent before the owner failed
        assert all(0.4 < w < 3 for w in waits), waits
        assert stats.read_hops_failed == 4 and stats.reads_here == here + 4
        quick = [await read() for _ in range(5)]  # within the backoff: served here at once
        assert max(quick) < 0.4, quick
        assert stats.read_hops_failed == 4 and stats.reads_here == here + 9

        await asyncio.sleep(1.6)  # the backoff is over: one read tries the owner, the rest do not wait
        waits = await asyncio.gather(*(read() for _ in range(4)))
        assert sorted(w > 0.4 for w in waits) == [False, False, False, True], waits
        assert stats.read_hops_failed == 5 and stats.reads_here == here + 13

        paused.clear()  # the owner answers again: after the backoff, reads go to it
        await asyncio.sleep(1.6)
        for _ in range(3):
            await read()
        assert stats.reads_at_owner == at_owner + 3 and stats.reads_here == here + 13
        assert other.forwards.read_hops_failed == 5


async def test_a_read_is_served_here_when_the_owner_is_gone_or_reads_are_served_here(cluster: list[Member]) -> None:
    (owner, _), (other, other_url) = owner_of(cluster, APP, SHOP)
    headers = alice(other)
    async with httpx.AsyncClient(base_url=other_url, timeout=10) as to_other:
        item = await insert(to_other, "pen", headers)
        other.config.reads_at_owner = False
        here, at_owner = other.forwards.reads_here, other.forwards.reads_at_owner
        r = await to_other.get(f"{DOCS}/{item}", headers=headers)
        assert r.status_code == 200 and r.json()["Name"] == "pen", r.text
        assert other.forwards.reads_here == here + 1 and other.forwards.reads_at_owner == at_owner
        other.config.reads_at_owner = True

        await owner.leave()  # nobody owns the partition for a moment, then the other process does
        r = await to_other.get(f"{DOCS}/{item}", headers=headers)
        assert r.status_code == 200 and r.json()["Name"] == "pen", r.text
        assert other.forwards.reads_at_owner == at_owner


async def test_the_metrics_count_reads_at_the_owner_and_failed_hops(cluster: list[Member]) -> None:
    (_owner, _), (other, other_url) = owner_of(cluster, APP, SHOP)
    async with httpx.AsyncClient(base_url=other_url, timeout=10) as to_other:
        r = await to_other.get(CDOCS, headers=alice(other))
        assert r.status_code == 200, r.text
    assert counter(other, "voedger_cluster_reads_at_owner") == other.forwards.reads_at_owner >= 1
    assert counter(other, "voedger_cluster_read_hops_failed") == other.forwards.read_hops_failed == 0
