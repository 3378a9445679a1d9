"""A server with authentication on, over a real loopback socket (streams need one: httpx's ASGI
transport holds a response until it ends), with the shop application and its workspace."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from voedger.appdef import QName
from voedger.auth import PrincipalPayload
from voedger.n10n import Quotas
from voedger.processors.command import CommandRequest
from voedger.processors.principal import SYSTEM
from voedger.router.app import MAX_FRAME, build_app
from voedger.router.http import HttpServer
from voedger.router.local import LocalTransport
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, ServerConfig

APP = "test/shop"
SHOP_DIR = Path(__file__).parent.parent / "router" / "shop"
ALICE = new_wsid(1, 400_001)
BOB = new_wsid(1, 400_002)
SHOP = new_wsid(1, 400_003)
V1 = f"/api/test/shop/{SHOP}"
V2 = f"/api/v2/apps/{APP}"


@dataclasses.dataclass
class Env:
    vvm: VVM
    client: httpx.AsyncClient
    base: str

    def auth(self, login: str = "alice", profile: int = ALICE) -> dict[str, str]:
        assert self.vvm.tokens is not None
        t = self.vvm.tokens.issue(APP, PrincipalPayload(login=login, profile_wsid=profile), timedelta(hours=1))
        return {"Authorization": f"Bearer {t}"}

    async def order(self, item: int, qty: int = 1) -> int:
        """MakeOrder (its SYNC projector writes shop.Sales); the event's WLog offset."""
        r = await self.client.post(
            f"{V1}/c.shop.MakeOrder", json={"args": {"sys.ID": 1, "Item": item, "Qty": qty}}, headers=self.auth()
        )
        assert r.status_code == 200, r.text
        return int(r.json()["CurrentWLogOffset"])

    async def item(self, name: str = "tea") -> tuple[int, int]:
        """A new Item (the async projector CountItems writes shop.ItemCount): (ID, WLog offset)."""
        r = await self.client.post(
            f"{V1}/c.sys.CUD",
            json={"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": name}}]},
            headers=self.auth(),
        )
        assert r.status_code == 200, r.text
        return int(r.json()["NewIDs"]["1"]), int(r.json()["CurrentWLogOffset"])

    async def settle(self) -> None:
        """Until the async projectors have written what the events so far make them write."""
        await self.vvm.app(APP).actualizers.wait_idle()


async def system_cud(vvm: VVM, wsid: int, *records: dict[str, object]) -> None:
    body = {"cuds": [{"fields": {"sys.ID": i + 1, **r}} for i, r in enumerate(records)]}
    await vvm.app(APP).partition(wsid).submit(CommandRequest(wsid, QName("sys", "CUD"), body, SYSTEM, synced=True))


async def make_workspaces(vvm: VVM, alice: int = ALICE, bob: int = BOB, shop: int = SHOP) -> None:
    """Alice's and Bob's profiles and Alice's shop, made by System CUDs at the given WSIDs."""
    desc = {"sys.QName": "sys.WorkspaceDescriptor", "CreatedAtMs": 1, "InitCompletedAtMs": 1}
    for name, wsid in (("alice", alice), ("bob", bob)):
        await system_cud(
            vvm, wsid, {**desc, "WSName": name, "WSKind": "sys.UserProfile"}, {"sys.QName": "sys.UserProfile"}
        )
    await system_cud(
        vvm,
        shop,
        {**desc, "WSName": "shop", "WSKind": "shop.ShopDesc", "OwnerWSID": alice},
        {"sys.QName": "shop.ShopDesc", "Name": "Corner shop"},
    )


async def serve(config: ServerConfig) -> AsyncIterator[Env]:
    vvm = VVM(config)
    await vvm.start()
    await make_workspaces(vvm)
    server = HttpServer(build_app(vvm, {1: LocalTransport(vvm)}), max_body=MAX_FRAME)
    [(host, port)] = await server.start("127.0.0.1", 0)
    base = f"http://{host}:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            yield Env(vvm, client, base)
    finally:
        vvm.n10n.broker.shut()  # the streams a test left open end: the server stops at once
        await server.stop(1.0)
        await vvm.stop()


def config(tmp_path: Path, **kw: Any) -> ServerConfig:
    return ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, SHOP_DIR)], **kw)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async for e in serve(config(tmp_path, n10n_quotas=Quotas(channels_per_subject=3), n10n_heartbeat=0.2)):
        yield e
