"""The read cache of workspace descriptors and principals (``processors/readcache.py``): reads
served where the workspace is written keep what they asked first, and see every change of it
acknowledged before them; a read that raced a change keeps nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.router.conftest import SHOP_DIR
from tests.support import owned_workspace
from voedger.appdef import QName
from voedger.auth import PrincipalPayload
from voedger.processors.command import CommandRequest
from voedger.processors.principal import SYSTEM, Principal
from voedger.processors.readcache import MAX_WORKSPACES, ReadCache
from voedger.processors.sequences import Workspaces
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, ServerConfig

APP = "test/shop"
PROFILE = new_wsid(1, 420_001)
SHOP = new_wsid(1, 420_002)
BOB_PROFILE = new_wsid(1, 420_003)
V1 = f"/api/test/shop/{SHOP}"
V2 = f"/api/v2/apps/test/shop/workspaces/{SHOP}"


@dataclass
class Env:
    vvm: VVM
    client: httpx.AsyncClient
    alice: dict[str, str]
    bob: dict[str, str]

    @property
    def cache(self) -> ReadCache:
        cache = self.vvm.app(APP).read_cache(SHOP)
        assert cache is not None
        return cache


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, SHOP_DIR)]))
    await vvm.start()
    alice = await owned_workspace(vvm, APP, PROFILE, SHOP, "shop.ShopDesc", "Shop")
    assert vvm.tokens is not None
    bob = vvm.tokens.issue(APP, PrincipalPayload(login="bob", profile_wsid=BOB_PROFILE), timedelta(hours=1))
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield Env(vvm, client, {"Authorization": f"Bearer {alice}"}, {"Authorization": f"Bearer {bob}"})
    await vvm.stop()


async def test_a_role_granted_or_taken_is_seen_by_the_next_read(env: Env) -> None:
    c = env.client
    r = await c.post(f"{V2}/docs/shop.Item", json={"Name": "pen", "Code": "P1", "Price": 3}, headers=env.alice)
    assert r.status_code == 201, r.text
    item = r.json()["newIDs"]["1"]
    collection = {"args": {"Schema": "shop.Item"}, "elements": [{"fields": ["Name"]}]}

    # Bob has no role here; his refusal is cached along with Alice's principal.
    for _ in range(3):
        assert (await c.get(f"{V2}/docs/shop.Item/{item}", headers=env.alice)).status_code == 200
        assert (await c.get(f"{V2}/docs/shop.Item/{item}", headers=env.bob)).status_code == 403
    hits = env.cache.hits
    assert hits >= 4, hits  # the reads after the first asked the cache, not storage

    # Alice makes him an ApiClient: his very next read is allowed.
    subject = {"Login": "bob", "SubjectKind": 1, "Roles": "shop.ApiClient", "ProfileWSID": BOB_PROFILE}
    r = await c.post(f"{V2}/docs/sys.Subject", json=subject, headers=env.alice)
    assert r.status_code == 201, r.text
    subject_id = r.json()["newIDs"]["1"]
    r = await c.get(f"{V2}/docs/shop.Item/{item}", headers=env.bob)
    assert r.status_code == 200 and r.json()["Name"] == "pen", r.text
    r = await c.post(f"{V1}/q.sys.Collection", json=collection, headers=env.alice)
    assert r.status_code == 200 and r.json()["sections"][0]["elements"][0][0] == [["pen"]], r.text
    assert env.cache.hits > hits

    # A role that does not read items: refused again at once; then the subject deactivated.
    r = await c.patch(f"{V2}/docs/sys.Subject/{subject_id}", json={"Roles": "shop.DailyReader"}, headers=env.alice)
    assert r.status_code == 200, r.text
    assert (await c.get(f"{V2}/docs/shop.Item/{item}", headers=env.bob)).status_code == 403
    r = await c.patch(f"{V2}/docs/sys.Subject/{subject_id}", json={"Roles": "shop.ApiClient"}, headers=env.alice)
    assert r.status_code == 200, r.text
    assert (await c.get(f"{V2}/docs/shop.Item/{item}", headers=env.bob)).status_code == 200
    r = await c.post(
        f"{V1}/c.sys.CUD",
        json={"cuds": [{"sys.ID": subject_id, "fields": {"sys.IsActive": False}}]},
        headers=env.alice,
    )
    assert r.status_code == 200, r.text
    assert (await c.get(f"{V2}/docs/shop.Item/{item}", headers=env.bob)).status_code == 403


async def test_a_deactivated_workspace_answers_410_to_the_next_read(env: Env) -> None:
    c = env.client
    assert (await c.get(f"{V2}/docs/shop.ShopDesc/0", headers=env.alice)).status_code in (200, 404)
    assert (await c.get(f"{V2}/docs/shop.ShopDesc/0", headers=env.alice)).status_code in (200, 404)
    assert len(env.cache) >= 1
    descriptor_id = env.vvm.app(APP).runtime.singleton_ids[QName("sys", "WorkspaceDescriptor")]
    body = {"cuds": [{"sys.ID": descriptor_id, "fields": {"Status": 1}}]}
    partition = env.vvm.app(APP).partition(SHOP)
    await partition.submit(CommandRequest(SHOP, QName("sys", "CUD"), body, SYSTEM, synced=True))
    r = await c.post(f"{V1}/q.sys.Collection", json={"args": {"Schema": "shop.Item"}}, headers=env.alice)
    assert r.status_code == 410, r.text


async def test_a_partition_that_does_not_take_commands_is_not_asked(env: Env) -> None:
    app = env.vvm.app(APP)
    partition = app.partition(SHOP)
    assert app.read_cache(SHOP) is partition.reads
    partition.closed = True  # handed over, stopping or fenced: another process may write next
    try:
        assert app.read_cache(SHOP) is None
        r = await env.client.get(f"{V2}/docs/shop.ShopDesc/0", headers=env.alice)
        assert r.status_code in (200, 404), r.text  # read from storage
    finally:
        partition.closed = False


def test_an_entry_read_before_a_drop_is_not_kept() -> None:
    cache = ReadCache()
    kind = Workspaces  # any object will do as the kind here; the cache does not look at it
    seen = cache.generation
    cache.drop([7])  # a durable change of workspace 7 while the read was reading storage
    stale = cache.put(7, {"sys.ID": 1, "Status": 0}, kind, seen)  # type: ignore[arg-type]
    assert cache.get(7) is None and len(cache) == 0
    stale.subjects["bob"] = None  # the read goes on with its own copy: it lands nowhere shared
    fresh = cache.put(7, {"sys.ID": 1, "Status": 1}, kind, cache.generation)  # type: ignore[arg-type]
    assert cache.get(7) is fresh and fresh.subjects == {}
    cache.drop([8])
    assert cache.get(7) is fresh  # other workspaces' drops keep it
    cache.clear()
    assert cache.get(7) is None


def test_entries_and_principals_are_bounded() -> None:
    cache = ReadCache()
    for wsid in range(MAX_WORKSPACES + 1):
        cache.put(wsid, {"sys.ID": 1}, Workspaces, cache.generation)  # type: ignore[arg-type]
    assert len(cache) == 1
    known = cache.put(1, {"sys.ID": 1}, Workspaces, cache.generation)  # type: ignore[arg-type]
    callers = [object() for _ in range(1025)]
    for caller in callers:
        known.remember(caller, Principal(login="x"))
    assert len(known.principals) == 1 and known.principal(callers[-1]) is not None
    assert known.principal(object()) is None
    known.remember(SYSTEM, SYSTEM)  # a principal passed through is not remembered
    assert known.principal(SYSTEM) is None


# --- the rows reads found (structs/rowcache.py) ---------------------------------------------------

COLLECTION = {"args": {"Schema": "shop.Item"}, "elements": [{"fields": ["Name", "Price"]}]}
ITEM_COUNT = f'{V2}/views/shop.ItemCount?where={{"Part":0}}'


async def _new_item(env: Env, name: str, price: int) -> int:
    r = await env.client.post(
        f"{V2}/docs/shop.Item", json={"Name": name, "Code": name, "Price": price}, headers=env.alice
    )
    assert r.status_code == 201, r.text
    return int(r.json()["newIDs"]["1"])


async def _names(env: Env) -> list[str]:
    r = await env.client.post(f"{V1}/q.sys.Collection", json=COLLECTION, headers=env.alice)
    assert r.status_code == 200, r.text
    return sorted(row[0][0][0] for row in r.json()["sections"][0]["elements"])


async def _count(env: Env) -> int:
    r = await env.client.get(ITEM_COUNT, headers=env.alice)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    return int(results[0]["Count"]) if results else 0


async def test_documents_and_collections_read_again_see_every_acknowledged_change(env: Env) -> None:
    c = env.client
    rows = env.vvm.app(APP).runtime.rows
    item = await _new_item(env, "pen", 3)
    assert (await c.get(f"{V2}/docs/shop.Item/{item}", headers=env.alice)).json()["Price"] == 3
    assert await _names(env) == ["pen"]
    hits, answers = rows.hits, rows.result_hits
    assert (await c.get(f"{V2}/docs/shop.Item/{item}", headers=env.alice)).json()["Price"] == 3
    assert await _names(env) == ["pen"]
    assert rows.hits >= hits + 1  # the document read from the cache, not from storage
    assert rows.result_hits == answers + 1  # the collection's answer kept whole

    r = await c.patch(f"{V2}/docs/shop.Item/{item}", json={"Price": 4}, headers=env.alice)
    assert r.status_code == 200, r.text
    assert (await c.get(f"{V2}/docs/shop.Item/{item}", headers=env.alice)).json()["Price"] == 4
    await _new_item(env, "ink", 5)
    assert await _names(env) == ["ink", "pen"]


async def test_a_view_an_async_projector_writes_is_read_again_once_it_wrote(env: Env) -> None:
    await _new_item(env, "pen", 3)
    for _ in range(200):
        if await _count(env) == 1:
            break
        await asyncio.sleep(0.05)
    assert await _count(env) == 1
    await _count(env)  # kept now
    await _new_item(env, "ink", 5)
    for _ in range(200):  # the projector's write drops what reads kept: the count moves on
        if await _count(env) == 2:
            break
        await asyncio.sleep(0.05)
    assert await _count(env) == 2


async def _prices(env: Env, headers: dict[str, str] | None = None) -> dict[str, int]:
    body = {"args": {"Schema": "shop.Item"}, "elements": [{"fields": ["Name", "Price"]}]}
    r = await env.client.post(f"{V1}/q.sys.Collection", json=body, headers=headers or env.alice)
    assert r.status_code == 200, r.text
    return {row[0][0][0]: row[0][0][1] for row in r.json()["sections"][0]["elements"]} if r.json() else {}


async def test_a_kept_collection_answer_follows_every_change_of_what_it_read(env: Env) -> None:
    c = env.client
    rows = env.vvm.app(APP).runtime.rows
    assert await _prices(env) == {}
    pen = await _new_item(env, "pen", 3)
    assert await _prices(env) == {"pen": 3}
    kept = rows.result_hits
    assert await _prices(env) == {"pen": 3}
    assert rows.result_hits == kept + 1
    r = await c.patch(f"{V2}/docs/shop.Item/{pen}", json={"Price": 4}, headers=env.alice)
    assert r.status_code == 200, r.text
    assert await _prices(env) == {"pen": 4}
    await _new_item(env, "ink", 5)
    assert await _prices(env) == {"pen": 4, "ink": 5}

    # Another body is another answer; the same body in another field order is the same one.
    one = {"args": {"Schema": "shop.Item"}, "elements": [{"fields": ["Name"]}], "count": 1}
    same = {"count": 1, "elements": [{"fields": ["Name"]}], "args": {"Schema": "shop.Item"}}
    r = await c.post(f"{V1}/q.sys.Collection", json=one, headers=env.alice)
    first = r.json()["sections"][0]["elements"]
    assert len(first) == 1
    kept = rows.result_hits
    r = await c.post(f"{V1}/q.sys.Collection", json=same, headers=env.alice)
    assert r.json()["sections"][0]["elements"] == first
    assert rows.result_hits == kept + 1

    # The caller's rights are checked on every read, kept answer or not.
    r = await c.post(f"{V1}/q.sys.Collection", json=one, headers=env.bob)
    assert r.status_code == 403, r.text


async def test_a_kept_answer_follows_the_records_its_references_read(env: Env) -> None:
    """A Collection that enriches a reference reads the referenced record: its change is seen."""
    c = env.client
    item = {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "pen", "Code": "p"}
    barcode = {"sys.ID": 2, "sys.ParentID": 1, "sys.QName": "shop.Barcode", "sys.Container": "Barcodes", "Code": "b"}
    r = await c.post(f"{V1}/c.sys.CUD", json={"cuds": [{"fields": item}, {"fields": barcode}]}, headers=env.alice)
    assert r.status_code == 200, r.text
    pen = int(r.json()["NewIDs"]["1"])
    body = {
        "args": {"Schema": "shop.Item"},
        "elements": [{"path": "Barcodes", "fields": ["Code"], "refs": [["sys.ParentID", "Name"]]}],
    }

    async def enriched() -> list[object]:
        r = await c.post(f"{V1}/q.sys.Collection", json=body, headers=env.alice)
        assert r.status_code == 200, r.text
        return [cells for cells in r.json()["sections"][0]["elements"][0][0]]

    assert await enriched() == [["b", "pen"]]
    kept = env.vvm.app(APP).runtime.rows.result_hits
    assert await enriched() == [["b", "pen"]]
    assert env.vvm.app(APP).runtime.rows.result_hits == kept + 1
    r = await c.patch(f"{V2}/docs/shop.Item/{pen}", json={"Name": "quill"}, headers=env.alice)
    assert r.status_code == 200, r.text
    assert await enriched() == [["b", "quill"]]


async def test_each_writer_reads_its_own_writes_while_others_read(env: Env) -> None:
    c = env.client
    # Six writers and three readers: at most nine reads at once, under a workspace's ten.
    items = [await _new_item(env, f"i{n}", 0) for n in range(6)]
    stop = asyncio.Event()

    async def reader() -> None:
        while not stop.is_set():
            for item in items:
                assert (await c.get(f"{V2}/docs/shop.Item/{item}", headers=env.alice)).status_code == 200
            await _names(env)
            await asyncio.sleep(0)  # served from the cache, a read need not give the loop a turn

    async def writer(item: int) -> None:
        for price in range(1, 16):
            r = await c.patch(f"{V2}/docs/shop.Item/{item}", json={"Price": price}, headers=env.alice)
            assert r.status_code == 200, r.text
            r = await c.get(f"{V2}/docs/shop.Item/{item}", headers=env.alice)
            assert r.json()["Price"] == price, (item, price, r.text)
            name = r.json()["Name"]
            assert (await _prices(env))[name] == price, (item, price)  # the collection too

    readers = [asyncio.create_task(reader()) for _ in range(3)]
    try:
        await asyncio.gather(*(writer(item) for item in items))
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert env.vvm.app(APP).runtime.rows.hits > 0
