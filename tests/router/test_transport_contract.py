"""The wire contract's promise: the same requests get byte-identical answers whether the owner is
called in process (LocalTransport), over HTTP to a second ASGI application (HttpTransport through
httpx's ASGI transport, no sockets), or over a real socket to a ``voedger.router.http`` server.

Commands change state, so each path runs the same scenario on a server of its own, started
alike: a fresh store holding the same JWT secret and signing keys (Ed25519 signatures are
deterministic: the same key signs the same claims into the same bytes), the same manual clock,
the same workspace.
Every answer of the scenario (status, headers, body) must then be the same byte for byte.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.router.conftest import SHOP_DIR
from voedger.appdef import QName
from voedger.auth import JWT_SECRET_NAME, ClusterKeys, PrincipalPayload, StorageKeySetStore
from voedger.clock import ManualClock
from voedger.processors.command import CommandRequest
from voedger.processors.principal import SYSTEM
from voedger.router.app import MAX_FRAME, build_app
from voedger.router.bus_endpoint import BusEndpoint
from voedger.router.http import HttpServer
from voedger.router.http_transport import HttpTransport
from voedger.router.local import LocalTransport
from voedger.router.owner import Owner
from voedger.router.transport import Transport
from voedger.storage import open_storage
from voedger.structs.keys import app_state_key
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, VVM_APP, ServerConfig

APP = "test/shop"
JWT_SECRET = bytes(range(64))
CLUSTER_SECRET = b"contract-test-cluster-secret-32b"
OWNER_PROFILE = new_wsid(1, 300_001)
OTHER_PROFILE = new_wsid(1, 300_002)
SHOP = new_wsid(1, 300_003)
V1 = f"/api/{APP}/{SHOP}"
V2 = f"/api/v2/apps/{APP}"
WS2 = f"{V2}/workspaces/{SHOP}"

Answer = tuple[str, int, list[tuple[str, str]], bytes]
Setup = Callable[[VVM], contextlib.AbstractAsyncContextManager[Transport]]


_KEY_SET: dict[str, bytes] = {}
"""The signing keys every path's server shares, made by the first."""


async def started_vvm(path: Path) -> VVM:
    """A server on a fresh store that holds the JWT secret and keys every path shares, with a shop
    workspace owned by OWNER_PROFILE."""
    url = f"sqlite://{path}"
    provider = open_storage(url)
    await provider.open()
    storage = await provider.app_storage(VVM_APP)
    assert await storage.insert_if_not_exists(app_state_key("secret", JWT_SECRET_NAME.encode()), b"", JWT_SECRET)
    keys = StorageKeySetStore(storage)
    if "record" not in _KEY_SET:
        await ClusterKeys.open(keys)
        record = await keys.load()
        assert record is not None
        _KEY_SET["record"] = record
    assert await keys.create(_KEY_SET["record"]) == _KEY_SET["record"]
    await provider.close()
    vvm = VVM(ServerConfig(storage_url=url, apps=[(APP, SHOP_DIR)], clock=ManualClock(1_790_000_000)))
    await vvm.start()
    desc = {"sys.QName": "sys.WorkspaceDescriptor", "CreatedAtMs": 1, "InitCompletedAtMs": 1}
    records = [
        {"sys.ID": 1, **desc, "WSName": "shop", "WSKind": "shop.ShopDesc", "OwnerWSID": OWNER_PROFILE},
        {"sys.ID": 2, "sys.QName": "shop.ShopDesc", "Name": "Corner shop"},
    ]
    body = {"cuds": [{"fields": r} for r in records]}
    await vvm.app(APP).partition(SHOP).submit(CommandRequest(SHOP, QName("sys", "CUD"), body, SYSTEM, synced=True))
    return vvm


def bearer(vvm: VVM, profile: int) -> dict[str, str]:
    assert vvm.tokens is not None
    return {
        "Authorization": f"Bearer {vvm.tokens.issue(APP, PrincipalPayload(login=f'u{profile}', profile_wsid=profile))}"
    }


async def scenario(client: httpx.AsyncClient, vvm: VVM) -> list[Answer]:
    """Every kind of request the edge forwards, each answer kept and its status checked."""
    answers: list[Answer] = []
    owner, other = bearer(vvm, OWNER_PROFILE), bearer(vvm, OTHER_PROFILE)

    async def call(label: str, status: int, method: str, url: str, **kwargs: Any) -> Any:
        r = await client.request(method, url, **kwargs)
        assert r.status_code == status, f"{label}: {r.status_code} {r.text}"
        answers.append((label, r.status_code, list(r.headers.multi_items()), r.content))
        return r.json()

    # Identity: sign up, then sign in once the profile is ready (the waiting is not compared).
    creds = {"login": "dora", "password": "d0ra-pass"}
    await call("users", 201, "POST", f"{V2}/users", json=creds)
    for _ in range(400):
        r = await client.post(f"{V2}/auth/login", json=creds)
        if r.status_code != 409:
            break
        await _pause()
    assert r.status_code == 200, r.text
    answers.append(("auth/login", r.status_code, list(r.headers.multi_items()), r.content))
    dora = {"Authorization": f"Bearer {r.json()['principalToken']}"}
    await call("auth/refresh", 200, "POST", f"{V2}/auth/refresh", headers=dora)
    cookie = {"Cookie": f"Authorization=Bearer%20{r.json()['principalToken']}"}
    await call("auth/refresh, the token in a cookie", 200, "POST", f"{V2}/auth/refresh", headers=cookie)
    await call("auth/refresh 401", 401, "POST", f"{V2}/auth/refresh", headers={"Authorization": "Bearer a.b.c"})
    await call("auth/login wrong password", 401, "POST", f"{V2}/auth/login", json={**creds, "password": "nope"})
    await call("auth/login no body", 400, "POST", f"{V2}/auth/login")

    # API v1
    item = {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea", "Price": 3, "Code": "T1"}
    cud = await call("v1 command", 200, "POST", f"{V1}/c.sys.CUD", json={"cuds": [{"fields": item}]}, headers=owner)
    tea = cud["NewIDs"]["1"]
    order = {"args": {"sys.ID": 1, "Item": tea, "Qty": 2}}
    await call("v1 command with a result", 200, "POST", f"{V1}/c.shop.MakeOrder", json=order, headers=owner)
    collection = {"args": {"Schema": "shop.Item"}, "elements": [{"fields": ["sys.ID", "Name", "Price"]}]}
    await call("v1 query", 200, "POST", f"{V1}/q.sys.Collection", json=collection, headers=owner)
    await call("v1 403", 403, "POST", f"{V1}/c.sys.CUD", json={"cuds": [{"fields": item}]}, headers=other)
    await call("v1 401", 401, "POST", f"{V1}/c.sys.CUD", json={"cuds": []}, headers={"Authorization": "Bearer x.y.z"})
    await call("v1 400 body", 400, "POST", f"{V1}/c.sys.CUD", content=b"{not json", headers=owner)
    sku = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Sku", "Code": "T1"}}]}
    await call("v1 sku", 200, "POST", f"{V1}/c.sys.CUD", json=sku, headers=owner)
    await call("v1 409 unique", 409, "POST", f"{V1}/c.sys.CUD", json=sku, headers=owner)

    # API v2
    made = await call(
        "v2 docs POST", 201, "POST", f"{WS2}/docs/shop.Item", json={"Name": "mint", "Price": 4}, headers=owner
    )
    mint = made["newIDs"]["1"]
    await call("v2 docs GET", 200, "GET", f"{WS2}/docs/shop.Item/{mint}", headers=owner)
    await call("v2 docs PATCH", 200, "PATCH", f"{WS2}/docs/shop.Item/{mint}", json={"Price": 5}, headers=owner)
    # ALL ON ALL TABLES grants no deactivation: the owner's refusal is the answer to compare.
    await call("v2 docs DELETE", 403, "DELETE", f"{WS2}/docs/shop.Item/{mint}", headers=owner)
    await call("v2 docs 404", 404, "GET", f"{WS2}/docs/shop.Item/{mint + 1000}", headers=owner)
    await call("v2 docs no table", 400, "GET", f"{WS2}/docs/shop.Nothing/{mint}", headers=owner)
    await call("v2 docs POST no table", 400, "POST", f"{WS2}/docs/shop.Nothing", json={"Name": "x"}, headers=owner)
    await call("v2 cdocs", 200, "GET", f"{WS2}/cdocs/shop.Item", params={"order": "Name"}, headers=owner)
    where = orjson.dumps({"Item": tea}).decode()
    await call("v2 views", 200, "GET", f"{WS2}/views/shop.Sales", params={"where": where}, headers=owner)
    await call("v2 views 400", 400, "GET", f"{WS2}/views/shop.Sales", headers=owner)
    echo = {"args": orjson.dumps({"Text": "hi"}).decode()}
    await call("v2 queries", 200, "GET", f"{WS2}/queries/sys.Echo", params=echo, headers=owner)
    await call("v2 commands", 200, "POST", f"{WS2}/commands/shop.MakeOrder", json=order, headers=owner)
    await call("v2 commands 400", 400, "POST", f"{WS2}/commands/shop.MakeOrder", json={"bad": 1}, headers=owner)
    await call("v2 403", 403, "GET", f"{WS2}/docs/shop.Item/{tea}", headers=other)
    in_cookie = {"Cookie": "Authorization=" + owner["Authorization"].replace(" ", "%20")}
    await call("v2 token in a cookie", 200, "GET", f"{WS2}/docs/shop.Item/{tea}", headers=in_cookie)
    return answers


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def local(vvm: VVM) -> AsyncIterator[Transport]:
    yield LocalTransport(vvm)


@contextlib.asynccontextmanager
async def over_asgi(vvm: VVM) -> AsyncIterator[Transport]:
    owner = Owner(vvm)
    owner_app = build_app(vvm, {1: LocalTransport(vvm, owner)}, bus=BusEndpoint(owner, CLUSTER_SECRET))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=owner_app))
    transport = HttpTransport("http://owner", CLUSTER_SECRET, client=client)
    try:
        yield transport
    finally:
        await transport.aclose()


@contextlib.asynccontextmanager
async def over_a_socket(vvm: VVM) -> AsyncIterator[Transport]:
    owner = Owner(vvm)
    owner_app = build_app(vvm, {1: LocalTransport(vvm, owner)}, bus=BusEndpoint(owner, CLUSTER_SECRET))
    server = HttpServer(owner_app, max_body=MAX_FRAME)
    [(host, port)] = await server.start("127.0.0.1", 0)
    transport = HttpTransport(f"http://{host}:{port}", CLUSTER_SECRET)
    try:
        yield transport
    finally:
        await transport.aclose()
        await server.stop(2.0)


async def run(path: Path, setup: Setup) -> list[Answer]:
    vvm = await started_vvm(path)
    try:
        async with setup(vvm) as transport:
            edge = build_app(vvm, {1: transport})
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=edge), base_url="http://edge") as client:
                return await scenario(client, vvm)
    finally:
        await vvm.stop()


async def test_every_path_gives_the_same_bytes(tmp_path: Path) -> None:
    in_process = await run(tmp_path / "local", local)
    over_http = await run(tmp_path / "asgi", over_asgi)
    assert over_http == in_process
    over_tcp = await run(tmp_path / "socket", over_a_socket)
    assert over_tcp == in_process
    assert {status for _, status, *_ in in_process} == {200, 201, 400, 401, 403, 404, 409}
