"""Many clients at once, after Voedger's race scenarios (``pkg/sys/it``: ``race_cud_test.go``,
``race_signup_test.go``, ``race_n10n_test.go``), against one server on a loopback socket (the
notification streams need one): concurrent CUDs and reads in one workspace and in many,
concurrent sign-ups and sign-ins, concurrent notification channels and subscribers.

Voedger's scenarios mostly check that nothing breaks under its race detector. Ours check what a
client may rely on once the dust settles: every acknowledged write reads back, no record ID and
no WLog offset is given twice, each workspace's WLog offsets run without a gap, every
acknowledged sign-up signs in, every subscriber gets its events. Nothing here depends on timing:
a wait is for an answer or an event, never for a moment.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.n10n.conftest import ALICE, APP, SHOP, V2, Env, config, serve, system_cud
from tests.n10n.sse import EventReader
from tests.support import until
from voedger.apps.registry import REGISTRY_APP, expected_app_wsid
from voedger.apps.sys.verifier import VERIFIED_VALUE_AUDIENCE
from voedger.structs import wsid as ws

CLIENTS = 30
"""Concurrent clients per scenario: enough to interleave, few enough for a loaded 2-core box."""
SHOPS = [ws.new_wsid(1, 400_100 + i) for i in range(10)]
"""The workspaces of the many-workspace scenarios (Voedger's ``test_ws_N``), Alice's."""


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async for e in serve(config(tmp_path)):
        # a connection for each concurrent client, streams included (httpx pools 100 at most)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(base_url=e.base, timeout=30, limits=limits) as client:
            yield Env(e.vvm, client, e.base)


# --- helpers ----------------------------------------------------------------------------------


def v1(wsid: int) -> str:
    return f"/api/{APP}/{wsid}"


async def post(env: Env, url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    """POST as Voedger's VIT client does: a 503 is retried after a short pause, growing up to
    the answer's Retry-After. With this many readers it comes: a workspace runs at most 10
    reads at once, as Voedger's router allows (its DefaultMaxQueriesPerWSLimit), and refuses
    the others with a 503 for the client to retry."""
    pause = 0.02
    while True:
        r = await env.client.post(url, json=body, headers=env.auth() if headers is None else headers)
        if r.status_code != 503:
            return r
        await asyncio.sleep(pause)
        pause = min(pause * 2, float(r.headers.get("retry-after", 1)))


def rows(r: httpx.Response) -> list[list[Any]]:
    """The rows of an API v1 query answer."""
    assert r.status_code == 200, r.text
    sections = r.json().get("sections") or [{"elements": []}]
    return [e[0][0] for e in sections[0]["elements"]]


async def add_item(env: Env, wsid: int, name: str, price: int = 5) -> tuple[int, int]:
    """Voedger's ``writeArt``: a new shop.Item by a CUD; its (ID, WLog offset)."""
    body = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": name, "Price": price}}]}
    r = await post(env, f"{v1(wsid)}/c.sys.CUD", body)
    assert r.status_code == 200, r.text
    return int(r.json()["NewIDs"]["1"]), int(r.json()["CurrentWLogOffset"])


async def set_price(env: Env, wsid: int, item: int, price: int) -> int:
    """Voedger's ``updateArt``: the item's price changed by a CUD; the WLog offset."""
    body = {"cuds": [{"sys.ID": item, "fields": {"Price": price}}]}
    r = await post(env, f"{v1(wsid)}/c.sys.CUD", body)
    assert r.status_code == 200, r.text
    return int(r.json()["CurrentWLogOffset"])


async def items(env: Env, wsid: int) -> dict[str, tuple[int, int]]:
    """Voedger's ``readArt`` (q.sys.Collection ordered by name): {name: (ID, price)}, checking
    that the answer names no ID and no name twice."""
    body = {
        "args": {"Schema": "shop.Item"},
        "elements": [{"fields": ["Name", "Price", "sys.ID"]}],
        "orderBy": [{"field": "Name"}],
    }
    found = rows(await post(env, f"{v1(wsid)}/q.sys.Collection", body))
    names = [name for name, _, _ in found]
    assert names == sorted(names), names
    assert len(set(names)) == len(names) and len({i for _, _, i in found}) == len(found), found
    assert all(i > 0 for _, _, i in found), found
    return {name: (item, price) for name, price, item in found}


async def wlog(env: Env, wsid: int) -> dict[int, dict[str, Any]]:
    """The workspace's events by WLog offset, read by q.sys.SqlQuery, checking the offsets run
    from 1 without a gap."""
    body = {"args": {"Query": "select * from sys.wlog limit -1"}, "elements": [{"fields": ["Result"]}]}
    events = [json.loads(row[0]) for row in rows(await post(env, f"{v1(wsid)}/q.sys.SqlQuery", body))]
    offsets = [e["WlogOffset"] for e in events]
    assert offsets == list(range(1, len(offsets) + 1)), f"a gap or a duplicate in the WLog of {wsid}: {offsets}"
    return {e["WlogOffset"]: e for e in events}


def created_name(event: dict[str, Any]) -> str | None:
    """The Name of the shop.Item a CUD event created, if it did."""
    cuds = event.get("CUDs") or []
    return next((c["fields"].get("Name") for c in cuds if c.get("IsNew") and c["sys.QName"] == "shop.Item"), None)


async def make_shops(env: Env) -> None:
    """Alice's further shops, made at once (the workspaces of the many-workspace scenarios)."""
    desc = {"sys.QName": "sys.WorkspaceDescriptor", "CreatedAtMs": 1, "InitCompletedAtMs": 1}

    async def make(i: int, wsid: int) -> None:
        await system_cud(
            env.vvm,
            wsid,
            {**desc, "WSName": f"shop{i}", "WSKind": "shop.ShopDesc", "OwnerWSID": ALICE},
            {"sys.QName": "shop.ShopDesc", "Name": f"Shop {i}"},
        )

    await asyncio.gather(*(make(i, wsid) for i, wsid in enumerate(SHOPS)))


def check_acknowledged(
    events: dict[int, dict[str, Any]], acked: dict[str, tuple[int, int]], found: dict[str, tuple[int, int]]
) -> None:
    """Every acknowledged creation ``acked`` ({name: (ID, offset)}) reads back with its ID and
    is the event at its offset; no two got one ID or one offset."""
    assert len({item for item, _ in acked.values()}) == len(acked), "one ID given twice"
    assert len({offset for _, offset in acked.values()}) == len(acked), "one WLog offset given twice"
    for name, (item, offset) in acked.items():
        assert name in found, f"acknowledged {name} is not read back"
        assert found[name][0] == item, (name, found[name], item)
        assert created_name(events[offset]) == name, (name, offset, events[offset])


# --- race_cud_test.go: one workspace ----------------------------------------------------------


async def test_concurrent_writes_and_reads_in_one_workspace(env: Env) -> None:
    """Test_Race_CUDSimpleRead, CUDSimpleWrite, CUDOneWriteManyRead, CUDManyWriteOneRead,
    CUDManyWriteManyReadNoResult and CUDManyWriteManyReadCheckResult: writers and readers at
    once. Each writer reads its own item right after its acknowledgement; each reader sees
    a consistent list (no ID twice); afterwards every acknowledged item reads back."""
    acked: dict[str, tuple[int, int]] = {}

    async def writer(n: int) -> None:
        name = f"cola{n:03}"
        acked[name] = await add_item(env, SHOP, name, price=n)
        # read your own write (Voedger's writeArt then readArt in one goroutine)
        assert (await items(env, SHOP))[name] == (acked[name][0], n)

    seen: list[set[str]] = []

    async def reader() -> None:
        seen.append(set(await items(env, SHOP)))

    await asyncio.gather(*(writer(n) for n in range(CLIENTS)), *(reader() for _ in range(CLIENTS)))

    found = await items(env, SHOP)
    assert set(found) == set(acked)
    for snapshot in seen:  # a reader saw only items that were acknowledged in the end
        assert snapshot <= set(acked)
    for name, (_, price) in found.items():
        assert price == int(name.removeprefix("cola"))
    check_acknowledged(await wlog(env, SHOP), acked, found)


async def test_concurrent_updates_and_reads_in_one_workspace(env: Env) -> None:
    """Test_Race_CUDManyUpdateManyReadCheckResult: items written at once, then rounds of an
    update of each and as many reads at once; after each round every item has its round's
    price. Then every client updates one item: the last update in the WLog is the one read."""
    written = await asyncio.gather(*(add_item(env, SHOP, f"cola{n:03}") for n in range(CLIENTS)))
    ids = [item for item, _ in written]
    assert len(set(ids)) == CLIENTS
    for round_ in range(1, 4):

        async def update(n: int, item: int, round_: int = round_) -> None:
            await set_price(env, SHOP, item, round_ * 1000 + n)

        async def read() -> None:
            await items(env, SHOP)

        await asyncio.gather(*(update(n, i) for n, i in enumerate(ids)), *(read() for _ in ids))
        found = await items(env, SHOP)
        assert {name: price for name, (_, price) in found.items()} == {
            f"cola{n:03}": round_ * 1000 + n for n in range(CLIENTS)
        }

    # one record, many writers: the update acknowledged with the highest offset wins
    target = ids[0]
    offsets = await asyncio.gather(*(set_price(env, SHOP, target, 50_000 + n) for n in range(CLIENTS)))
    assert len(set(offsets)) == CLIENTS, "one WLog offset given twice"
    last = max(range(CLIENTS), key=lambda n: offsets[n])
    assert (await items(env, SHOP))["cola000"] == (target, 50_000 + last)
    events = await wlog(env, SHOP)
    for n, offset in enumerate(offsets):
        [cud] = events[offset]["CUDs"]
        assert cud["sys.ID"] == target and cud["fields"]["Price"] == 50_000 + n


# --- race_cud_test.go: many workspaces --------------------------------------------------------


async def test_concurrent_writes_and_reads_in_many_workspaces(env: Env) -> None:
    """Test_Race_CUDManyReadCheckResult, CUDManyWriteCheckResult and
    CUDManyWriteReadCheckResult: rounds of a writer and a reader in each of ten workspaces at
    once. Each workspace reads back exactly its own items, and its WLog runs without a gap."""
    await make_shops(env)
    first = await asyncio.gather(*(items(env, wsid) for wsid in SHOPS))
    assert first == [{} for _ in SHOPS]  # Test_Race_CUDManyReadCheckResult: reads of empty workspaces
    acked: dict[int, dict[str, tuple[int, int]]] = {wsid: {} for wsid in SHOPS}

    async def writer(wsid: int, round_: int) -> None:
        name = f"cola-{wsid}-{round_}"
        acked[wsid][name] = await add_item(env, wsid, name)

    async def reader(wsid: int) -> None:
        await items(env, wsid)

    for round_ in range(3):
        await asyncio.gather(*(writer(wsid, round_) for wsid in SHOPS), *(reader(wsid) for wsid in SHOPS))

    for wsid in SHOPS:
        found = await items(env, wsid)
        assert set(found) == set(acked[wsid]), f"workspace {wsid} reads another's items or lost its own"
        check_acknowledged(await wlog(env, wsid), acked[wsid], found)


# --- race_signup_test.go ----------------------------------------------------------------------


def verified_email(env: Env, login: str) -> str:
    """A verified value token for the login's e-mail, issued as Voedger's VIT issues it for its
    sign-ups (no mail is sent): addressed to the registry's workspace that keeps the login."""
    registry = env.vvm.app(REGISTRY_APP).runtime
    app_ws = expected_app_wsid(login, ws.new_wsid(ws.MAIN_CLUSTER_ID, 0), registry.num_app_workspaces)
    payload = {
        "VerificationKind": 0,
        "WSID": app_ws,
        "ID": 0,
        "Entity": "registry.CreateEmailLoginParams",
        "Field": "Email",
        "Value": login,
    }
    assert env.vvm.tokens is not None
    return env.vvm.tokens.issue_claims(REGISTRY_APP, VERIFIED_VALUE_AUDIENCE, payload, timedelta(minutes=10))


async def sign_up(env: Env, login: str, password: str) -> httpx.Response:
    body = {"verifiedEmailToken": verified_email(env, login), "password": password, "displayName": login}
    return await env.client.post(f"{V2}/users", json=body)


async def sign_in(env: Env, login: str, password: str) -> tuple[str, int]:
    """Voedger's ``vit.SignIn``: until the profile is ready (409, or 503 while busy), then the
    principal token and the profile's WSID."""

    async def attempt() -> tuple[str, int] | None:
        r = await env.client.post(f"{V2}/auth/login", json={"login": login, "password": password})
        if r.status_code in (409, 503):
            return None
        assert r.status_code == 200, r.text
        return str(r.json()["principalToken"]), int(r.json()["profileWSID"])

    return await until(attempt, timeout=60)  # type: ignore[no-any-return]


async def test_concurrent_sign_ups_then_sign_ins(env: Env) -> None:
    """Test_Race_SUsignUpIn: logins signed up at once, then signed in at once, with unknown
    logins signing in among them. Every acknowledged sign-up signs in to a profile of its own
    that holds its display name."""
    logins = [f"login{n}@example.com" for n in range(20)]
    answers = await asyncio.gather(*(sign_up(env, login, f"pwd-{login}") for login in logins))
    for r in answers:
        assert r.status_code == 201, r.text

    async def unknown(n: int) -> tuple[str, int]:
        r = await env.client.post(f"{V2}/auth/login", json={"login": f"nobody{n}@example.com", "password": "1"})
        assert r.status_code == 401, r.text
        return "", 0

    signed_in = await asyncio.gather(
        *(sign_in(env, login, f"pwd-{login}") for login in logins), *(unknown(n) for n in range(10))
    )
    principals = dict(zip(logins, signed_in[: len(logins)], strict=True))
    assert len({profile for _, profile in principals.values()}) == len(logins), "one profile given twice"

    async def display_name(token: str, profile: int) -> str:
        body = {"args": {"Schema": "sys.UserProfile"}, "elements": [{"fields": ["DisplayName"]}]}
        r = await post(env, f"{v1(profile)}/q.sys.Collection", body, {"Authorization": f"Bearer {token}"})
        [[name]] = rows(r)
        return str(name)

    names = await asyncio.gather(*(display_name(token, profile) for token, profile in principals.values()))
    assert names == logins


async def test_one_login_signed_up_by_many_at_once(env: Env) -> None:
    """Our addition to Test_Race_SUsignUpIn: many clients sign one login up at once. Exactly
    one is acknowledged; the others are refused as a login that exists (409), and the login
    signs in with the acknowledged one's password."""
    login = "contested@example.com"
    answers = await asyncio.gather(*(sign_up(env, login, f"pwd-{n}") for n in range(CLIENTS)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * (CLIENTS - 1), [r.text for r in answers]
    [winner] = [n for n, r in enumerate(answers) if r.status_code == 201]
    _, profile = await sign_in(env, login, f"pwd-{winner}")
    assert profile > 0
    loser = (winner + 1) % CLIENTS
    r = await env.client.post(f"{V2}/auth/login", json={"login": login, "password": f"pwd-{loser}"})
    assert r.status_code == 401, r.text


# --- race_n10n_test.go ------------------------------------------------------------------------


def v1_key(app: str, wsid: int) -> dict[str, Any]:
    return {"App": app, "Projection": "paa.price", "WS": wsid}


async def test_many_channels_opened_and_closed_at_once(env: Env) -> None:
    """Test_Race_n10nCHS: channels of many subjects opened at once over API v1, each with a
    key of an application this server does not serve (API v1 takes keys as given), then all
    unsubscribed at once (the channels stay open), then all closed at once: none is left."""
    broker = env.vvm.n10n.broker
    count = 50
    channels: dict[int, str] = {}
    opened, unsubscribe, unsubscribed, close = (asyncio.Event() for _ in range(4))
    left: list[int] = []

    async def subscriber(n: int) -> None:
        key = v1_key("untill/Application", n)
        payload = orjson.dumps({"SubjectLogin": f"test_{n}", "ProjectionKey": [key]}).decode()
        async with env.client.stream("GET", "/n10n/channel", params={"payload": payload}) as r:
            assert r.status_code == 200
            events = EventReader(r)  # kept: the stream closes when its reader is collected
            name, channels[n] = await events.next(timeout=30)
            assert name == "channelId"
            if len(channels) == count:
                opened.set()
            await unsubscribe.wait()
            sub = orjson.dumps({"Channel": channels[n], "ProjectionKey": [key]}).decode()
            r2 = await env.client.get("/n10n/unsubscribe", params={"payload": sub})
            assert r2.status_code == 200, r2.text
            left.append(n)
            if len(left) == count:
                unsubscribed.set()
            await close.wait()

    tasks = [asyncio.create_task(subscriber(n)) for n in range(count)]
    await reached(opened, tasks)
    assert len(set(channels.values())) == count, "one channel ID given twice"
    assert broker.num_channels == count and broker.num_subscriptions == count
    unsubscribe.set()
    await reached(unsubscribed, tasks)
    assert broker.num_channels == count and broker.num_subscriptions == 0
    close.set()
    await asyncio.gather(*tasks)
    assert await until(lambda: _zero(broker.num_channels))


async def _zero(n: int) -> bool | None:
    return True if n == 0 else None


async def reached(event: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Until ``event`` is set; a task that fails first fails the test with its own error."""
    waiter = asyncio.create_task(event.wait())
    done, _ = await asyncio.wait([waiter, *tasks], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not waiter:
            waiter.cancel()
            task.result()  # raises the task's error
            raise AssertionError("a client ended before the others were ready")
    assert waiter in done, "timed out"


async def test_every_channel_gets_its_own_update(env: Env) -> None:
    """Test_Race_n10nCHSU: channels opened at once, each of its own key, each updating its key
    through ``/n10n/update`` as soon as it is open. Each channel gets its own update and nothing
    of the others' keys (the next event after it is its own second update)."""
    count = 20
    updated: list[int] = []
    all_updated = asyncio.Event()

    async def subscriber(n: int) -> None:
        key = v1_key(APP, n)
        payload = orjson.dumps({"SubjectLogin": f"test_{n}", "ProjectionKey": [key]}).decode()
        async with env.client.stream("GET", "/n10n/channel", params={"payload": payload}) as r:
            events = EventReader(r)
            assert (await events.next(timeout=30))[0] == "channelId"
            assert (await env.client.post("/n10n/update/13", json=key)).status_code == 200
            updated.append(n)
            if len(updated) == count:
                all_updated.set()
            assert await events.next(timeout=30) == (json.dumps(key, separators=(",", ":")), "13")
            await all_updated.wait()  # every other key is updated too by now
            assert (await env.client.post("/n10n/update/14", json=key)).status_code == 200
            assert await events.next(timeout=30) == (json.dumps(key, separators=(",", ":")), "14")

    await asyncio.gather(*(subscriber(n) for n in range(count)))


async def test_every_subscriber_gets_the_events_of_concurrent_commands(env: Env) -> None:
    """Our addition to the n10n races, over API v2 and real commands: subscribers of one view
    in two workspaces, orders made at once in both. Each subscriber gets increasing offsets of
    its own workspace's orders only, up to the last one acknowledged there (the broker may fold
    updates of one key that come faster than a client reads)."""
    await make_shops(env)
    shops = [SHOP, SHOPS[0]]
    item: dict[int, int] = {}
    for wsid in shops:
        item[wsid], _ = await add_item(env, wsid, "tea")
    acked: dict[int, list[int]] = {wsid: [] for wsid in shops}
    subscribed: list[int] = []
    all_subscribed = asyncio.Event()
    orders_done = asyncio.Event()
    per_shop = 10

    async def subscriber(n: int) -> None:
        wsid = shops[n % 2]
        body = {"subscriptions": [{"entity": "shop.Sales", "wsid": wsid}], "expiresIn": 120}
        async with env.client.stream("POST", f"{V2}/notifications", json=body, headers=env.auth()) as r:
            assert r.status_code == 200
            events = EventReader(r)
            assert (await events.next(timeout=30))[0] == "channelId"
            subscribed.append(n)
            if len(subscribed) == 2 * per_shop:
                all_subscribed.set()
            await orders_done.wait()
            last = max(acked[wsid])
            got: list[int] = []
            while not got or got[-1] < last:
                name, data = await events.next(timeout=30)
                assert json.loads(name) == {"App": APP, "Projection": "shop.Sales", "WS": wsid}, name
                got.append(int(data))
            assert got == sorted(set(got)) and set(got) <= set(acked[wsid]), (got, acked[wsid])

    async def order(wsid: int) -> None:
        body = {"args": {"sys.ID": 1, "Item": item[wsid], "Qty": 1}}
        r = await post(env, f"{v1(wsid)}/c.shop.MakeOrder", body)
        assert r.status_code == 200, r.text
        acked[wsid].append(int(r.json()["CurrentWLogOffset"]))

    async def orders() -> None:
        await all_subscribed.wait()
        await asyncio.gather(*(order(wsid) for wsid in shops for _ in range(per_shop)))
        orders_done.set()

    await asyncio.gather(orders(), *(subscriber(n) for n in range(2 * per_shop)))
    for wsid in shops:
        assert len(set(acked[wsid])) == per_shop
        await wlog(env, wsid)
