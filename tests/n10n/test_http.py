"""Notifications over HTTP, after Voedger's pkg/sys/it/impl_n10n_test.go: a client subscribes,
a command changes a view, the event arrives with the command's WLog offset; unsubscribing stops
them; a client that goes away frees its channel; every mistake is a 4xx in Voedger's words."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import orjson
import pytest

from tests.n10n.conftest import APP, SHOP, V2, Env
from tests.n10n.sse import EventReader

SALES = {"App": APP, "Projection": "shop.Sales", "WS": SHOP}
COUNT = {"App": APP, "Projection": "shop.ItemCount", "WS": SHOP}


def subs_body(*views: str, expires: int = 42, wsid: int = SHOP) -> dict[str, Any]:
    return {"subscriptions": [{"entity": v, "wsid": wsid} for v in views], "expiresIn": expires}


async def until_free(env: Env, channels: int = 0) -> None:
    broker = env.vvm.n10n.broker
    for _ in range(100):
        if broker.num_channels == channels:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{broker.num_channels} channels open, expected {channels}")


async def test_v2_subscribe_receive_unsubscribe_and_disconnect(env: Env) -> None:
    broker = env.vvm.n10n.broker
    item, _ = await env.item("bread")
    await env.settle()
    body = subs_body("shop.Sales", "shop.ItemCount")
    async with env.client.stream("POST", f"{V2}/notifications", json=body, headers=env.auth()) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["access-control-allow-origin"] == "*"
        events = EventReader(r)
        name, channel = await events.next()
        assert name == "channelId"
        uuid.UUID(channel)
        assert broker.num_channels == 1 and broker.num_subscriptions == 2

        # a command whose SYNC projector writes shop.Sales: the event carries its WLog offset
        offset = await env.order(item, 3)
        name, data = await events.next()
        assert json.loads(name) == SALES and int(data) == offset
        assert name == f'{{"App":"test/shop","Projection":"shop.Sales","WS":{SHOP}}}'

        # an async projector's view: notified once its rows are durable
        _, item_offset = await env.item("milk")
        name, data = await events.next()
        assert json.loads(name) == COUNT and int(data) == item_offset

        # unsubscribed from Sales: an order says nothing, the next event is the next item's
        url = f"{V2}/notifications/{channel}/workspaces/{SHOP}/subscriptions/shop.Sales"
        r2 = await env.client.delete(url, headers=env.auth())
        assert r2.status_code == 204 and r2.content == b""
        assert broker.num_subscriptions == 1
        await env.order(item)
        _, item_offset = await env.item("salt")
        name, data = await events.next()
        assert json.loads(name) == COUNT and int(data) == item_offset

        # subscribed again to an extra view: its events come again
        r2 = await env.client.put(url, headers=env.auth())
        assert r2.status_code == 200 and r2.content == b""
        offset = await env.order(item)
        name, data = await events.next()
        assert json.loads(name) == SALES and int(data) == offset
    # the client went away: its channel and subscriptions are gone
    await until_free(env)
    assert broker.num_subscriptions == 0


async def test_cookie_auth_and_a_closing_channel(env: Env) -> None:
    token = env.auth()["Authorization"].removeprefix("Bearer ")
    cookies = {"Authorization": f"Bearer%20{token}"}
    env.client.cookies.update(cookies)
    try:
        async with env.client.stream("POST", f"{V2}/notifications", json=subs_body("shop.Sales", expires=1)) as r:
            assert r.status_code == 200
            events = EventReader(r)
            _, channel = await events.next()
            url = f"{V2}/notifications/{channel}/workspaces/{SHOP}/subscriptions/shop.ItemCount"
            assert (await env.client.put(url)).status_code == 200
            assert (await env.client.delete(url)).status_code == 204
            # expiresIn: 1 second, then the stream ends and the channel is gone
            assert await events.ended(timeout=3.0)
    finally:
        env.client.cookies.clear()
    await until_free(env)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "failed to unmarshal request body"),
        (b"{}", "no subscriptions provided"),
        (b'{"subscriptions":[]}', "no subscriptions provided"),
        (b'{"subscriptions":42}', "failed to unmarshal request body"),
        (b'{"wrong":42}', 'unknown field "wrong"'),
        (b'{"subscriptions":[{"wrong":42}]}', 'unknown field "wrong"'),
        (b'{"subscriptions":[{"entity":"test.test"}]}', "entity and/or wsid is not provided"),
        (b'{"subscriptions":[{"wsid":42}]}', "entity and/or wsid is not provided"),
        (b'{"subscriptions":[{"entity":42,"wsid":42}]}', "failed to unmarshal request body"),
        (b'{"subscriptions":[{"entity":"test.test","wsid":"str"}]}', "failed to parse wsid str"),
        (b'{"subscriptions":[{"entity":"test.test","wsid":42}],"expiresIn":"str"}', "failed to unmarshal"),
        (b'{"subscriptions":[{"entity":"wrong","wsid":42}]}', "failed to parse entity wrong as a QName"),
        (b'{"subscriptions":[{"entity":"test.test","wsid":-1}]}', "number overflow: -1 to WSID"),
        (b'{"subscriptions":[{"entity":"test.test","wsid":42}],"expiresIn":-1}', "invalid expiresIn value -1"),
        (b"[1]", "failed to unmarshal request body"),
    ],
)
async def test_v2_bad_bodies_are_400(env: Env, body: bytes, expected: str) -> None:
    r = await env.client.post(f"{V2}/notifications", content=body, headers=env.auth())
    assert r.status_code == 400, r.text
    assert r.json()["status"] == 400 and expected in r.json()["message"], r.text
    assert env.vvm.n10n.broker.num_channels == 0


async def test_v2_refusals(env: Env) -> None:
    url = f"{V2}/notifications"
    body = subs_body("shop.Sales")
    # no token, a wrong one, an expired one: 401 before anything else
    assert (await env.client.post(url, content=b"")).status_code == 401
    r = await env.client.post(url, json=body, headers={"Authorization": "Bearer garbage"})
    assert r.status_code == 401 and r.json()["status"] == 401
    from tests.n10n.conftest import BOB

    # bob does not own the shop: SELECT on its views is not his (403, as Voedger's ACL check)
    r = await env.client.post(url, json=body, headers=env.auth("bob", BOB))
    assert r.status_code == 403, r.text
    # not a view of the workspace; a workspace that does not exist
    r = await env.client.post(url, json=subs_body("shop.Nothing"), headers=env.auth())
    assert r.status_code == 400 and "shop.Nothing" in r.json()["message"]
    r = await env.client.post(url, json=subs_body("shop.Sales", wsid=SHOP + 1000), headers=env.auth())
    assert r.status_code == 403 and "workspace is not initialized" in r.json()["message"]
    # an application that is not deployed
    r = await env.client.post("/api/v2/apps/no/such/notifications", json=body, headers=env.auth())
    assert r.status_code == 400
    assert env.vvm.n10n.broker.num_channels == 0


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_v2_subscription_refusals(env: Env, method: str) -> None:
    broker = env.vvm.n10n.broker
    channel = broker.new_channel("alice")
    url = f"{V2}/notifications/{channel.id}/workspaces/{SHOP}/subscriptions/shop.Sales"
    assert (await env.client.request(method, url)).status_code == 401
    r = await env.client.request(method, url, headers=env.auth(), content=b"some body")
    assert r.status_code == 400 and r.json()["message"] == "unexpected body"
    r = await env.client.request(method, url.replace(channel.id, "unknownChannelID"), headers=env.auth())
    prefix = "subscribe failed: " if method == "PUT" else ""  # Voedger's words
    assert r.status_code == 404 and r.json() == {"status": 404, "message": prefix + "channel does not exist"}
    r = await env.client.request(method, url.replace("shop.Sales", "malformedViewQName"), headers=env.auth())
    assert r.status_code == 400
    r = await env.client.request(method, url.replace(str(SHOP), "x1"), headers=env.auth())
    assert r.status_code == 400
    r = await env.client.request(method, url.replace(str(SHOP), "x1"))  # the URL first, then the token
    assert r.status_code == 400 and "x1" in r.json()["message"]
    if method == "PUT":
        from tests.n10n.conftest import BOB

        r = await env.client.put(url, headers=env.auth("bob", BOB))
        assert r.status_code == 403
    assert broker.num_subscriptions == 0
    broker.close(channel)


async def test_quotas_are_429(env: Env) -> None:
    broker = env.vvm.n10n.broker
    held = [broker.new_channel("alice") for _ in range(3)]  # the fixture's quota: 3 per subject
    r = await env.client.post(f"{V2}/notifications", json=subs_body("shop.Sales"), headers=env.auth())
    assert r.status_code == 429 and r.json()["message"] == "quota exceeded: number of channels per subject"
    payload = orjson.dumps({"SubjectLogin": "alice", "ProjectionKey": [SALES]}).decode()
    r = await env.client.get("/n10n/channel", params={"payload": payload})
    assert (
        r.status_code == 429 and r.text == "create new channel failed: quota exceeded: number of channels per subject"
    )
    for c in held:
        broker.close(c)
    assert broker.num_channels == 0


async def test_v1_channel_subscribe_update_unsubscribe(env: Env) -> None:
    broker = env.vvm.n10n.broker
    item, _ = await env.item()
    await env.settle()
    payload = orjson.dumps({"SubjectLogin": "paa", "ProjectionKey": [SALES]}).decode()
    async with env.client.stream("GET", "/n10n/channel", params={"payload": payload}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = EventReader(r)
        name, channel = await events.next()
        assert name == "channelId"
        offset = await env.order(item)
        assert await events.next() == (json.dumps(SALES, separators=(",", ":")), str(offset))

        # an extra key, updated by hand (Voedger's /n10n/update, its TestSynthetic)
        price = {"App": APP, "Projection": "paa.price", "WS": SHOP}
        sub = orjson.dumps({"Channel": channel, "ProjectionKey": [price]}).decode()
        r2 = await env.client.get("/n10n/subscribe", params={"payload": sub})
        assert r2.status_code == 200 and r2.content == b""
        r2 = await env.client.post("/n10n/update/13", json=price)
        assert r2.status_code == 200
        name, data = await events.next()
        assert json.loads(name) == price and data == "13"
        # an offset not above the one delivered is not sent again
        await env.client.post("/n10n/update/13", json=price)
        await env.client.post("/n10n/update/14", json=price)
        assert (await events.next())[1] == "14"

        r2 = await env.client.get("/n10n/unsubscribe", params={"payload": sub})
        assert r2.status_code == 200
        assert broker.num_subscriptions == 1
        await env.client.post("/n10n/update/20", json=price)
        offset = await env.order(item)
        assert await events.next() == (json.dumps(SALES, separators=(",", ":")), str(offset))
    await until_free(env)


async def test_v1_heartbeat(env: Env) -> None:
    key = {"App": APP, "Projection": "sys.Heartbeat30", "WS": SHOP}  # app and workspace do not matter
    payload = orjson.dumps({"SubjectLogin": "paa", "ProjectionKey": [key]}).decode()
    async with env.client.stream("GET", "/n10n/channel", params={"payload": payload}) as r:
        events = EventReader(r)
        await events.next()
        name, data = await events.next(timeout=3.0)  # the fixture beats every 0.2 s
        assert name == '{"App":"/","Projection":"sys.Heartbeat30","WS":0}' and int(data) >= 1


async def test_v1_errors(env: Env) -> None:
    r = await env.client.get("/n10n/channel")
    assert r.status_code == 400
    assert r.text == "query parameter with payload (SubjectLogin id and ProjectionKey) is missing"
    for bad in ("{", "[]", '{"ProjectionKey":[{"App":"nope","Projection":"a.b","WS":1}]}', '{"ProjectionKey":7}'):
        r = await env.client.get("/n10n/channel", params={"payload": bad})
        assert r.status_code == 400 and r.text.startswith("cannot unmarshal input payload"), (bad, r.text)
    for path in ("/n10n/subscribe", "/n10n/unsubscribe"):
        r = await env.client.get(path)
        assert r.status_code == 400
        assert r.text == "url parameter with payload (channel id and projection key) is missing\n"
        r = await env.client.get(path, params={"payload": '{"Channel":'})
        assert r.status_code == 400 and r.text.startswith("cannot unmarshal input payload")
        payload = orjson.dumps({"Channel": "nope", "ProjectionKey": [SALES]}).decode()
        r = await env.client.get(path, params={"payload": payload})
        prefix = "subscribe failed: " if path == "/n10n/subscribe" else ""
        assert (r.status_code, r.text) == (400, prefix + "channel does not exist\n")
    r = await env.client.post("/n10n/update/13", content=b"not json")
    assert (r.status_code, r.text) == (400, "Error when parse request body\n")
    for offset in ("x", "12345678901", "-1"):
        assert (await env.client.post(f"/n10n/update/{offset}", json=SALES)).status_code == 404
    r = await env.client.options("/n10n/channel")
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


async def test_a_v1_subscription_over_quota_ends_the_stream_with_an_error(env: Env) -> None:
    broker = env.vvm.n10n.broker
    broker.quotas = type(broker.quotas)(subscriptions_per_subject=1)
    keys = [SALES, COUNT]
    payload = orjson.dumps({"SubjectLogin": "paa", "ProjectionKey": keys}).decode()
    async with env.client.stream("GET", "/n10n/channel", params={"payload": payload}) as r:
        events = EventReader(r)
        assert (await events.next())[0] == "channelId"
        name, data = await events.next()
        assert name == "error" and data == "subscribe failed: quota exceeded: number of subscriptions per subject"
        assert await events.ended()
    assert broker.num_channels == 0 and broker.num_subscriptions == 0


async def test_leaving_ends_the_streams(env: Env) -> None:
    async with env.client.stream("POST", f"{V2}/notifications", json=subs_body("shop.Sales"), headers=env.auth()) as r:
        events = EventReader(r)
        await events.next()
        env.vvm.n10n.broker.shut()
        assert await events.ended()
    r = await env.client.post(f"{V2}/notifications", json=subs_body("shop.Sales"), headers=env.auth())
    assert r.status_code == 503 and r.headers["retry-after"] == "1"


async def test_channels_and_subscriptions_are_metrics(env: Env) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from voedger.metrics.service import metrics_app

    transport = httpx.ASGITransport(app=metrics_app(env.vvm, "node-1"))

    async def scrape() -> dict[str, float]:
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as m:
            text = (await m.get("/metrics")).text
        return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if "n10n" in s.name}

    assert await scrape() == {
        "voedger_n10n_channels": 0,
        "voedger_n10n_subscriptions": 0,
        "voedger_n10n_relay_requests_total": 0,
        "voedger_n10n_relay_failures_total": 0,
        "voedger_n10n_relay_skipped_total": 0,
    }
    body = subs_body("shop.Sales", "shop.ItemCount")
    async with env.client.stream("POST", f"{V2}/notifications", json=body, headers=env.auth()) as r:
        await EventReader(r).next()
        got = await scrape()
        assert (got["voedger_n10n_channels"], got["voedger_n10n_subscriptions"]) == (1, 2)
    await until_free(env)
    assert (await scrape())["voedger_n10n_channels"] == 0
