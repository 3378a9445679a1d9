"""A small application (tests/processors/shop) run by the real processors on the mem driver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from voedger.appdef import AppDef
from voedger.appdef.load import compile_app
from voedger.apps.sys.builtins import platform
from voedger.extensions import Registry
from voedger.processors.app import AppRuntime
from voedger.processors.command import CommandRequest, CommandResult
from voedger.processors.partition import Partition
from voedger.processors.principal import SYSTEM, Principal
from voedger.state import Intents, State
from voedger.storage import AppStorage
from voedger.storage.mem import MemStorageFactory
from voedger.structs.singletons import load_singleton_ids
from voedger.structs.wsid import new_wsid, partition_of

SHOP = Path(__file__).parent / "shop"
USER = Principal(login="tester")


def shop_registry() -> Registry:
    reg = Registry()

    @reg.command("shop.MakeOrder")
    def make_order(state: State, intents: Intents) -> None:
        pass

    @reg.projector("shop.SalesProjector")
    async def sales(state: State, intents: Intents) -> None:
        order = state.event.args or {}
        row = await state.view("shop.Sales", Item=order["Item"], Day=1)
        qty = (row or {}).get("Qty", 0) + order.get("Qty", 0)
        intents.put_view("shop.Sales", Item=order["Item"], Day=1, Qty=qty)

    @reg.projector("shop.OrderLogProjector")
    def order_log(state: State, intents: Intents) -> None:
        ev = state.event
        order = ev.args or {}
        intents.put_view("shop.OrderLog", Item=order["Item"], PLogOffset=ev.plog_offset, Qty=order.get("Qty"))

    @reg.projector("shop.FailureProjector")
    def failures(state: State, intents: Intents) -> None:
        ev = state.event
        error = (ev.error or {}).get("ErrStr", "")
        intents.put_view("shop.Failures", Bucket=0, PLogOffset=ev.plog_offset, Error=error)

    @reg.query("shop.GetSales")
    async def get_sales(state: State, intents: Intents) -> None:
        async for row in state.read_view("shop.Sales", Item=state.arg["Item"]):
            intents.result(Day=row["Day"], Qty=row.get("Qty", 0))

    @reg.command("shop.Restock")
    async def restock(state: State, intents: Intents) -> None:
        item = await state.record(state.arg["Item"])
        assert item is not None
        price = item.get("Price", 0) + 1
        intents.update(item, Price=price)
        intents.insert("shop.Item", Name=f"{item['Name']} (spare)", Price=1)
        intents.result(Price=price)

    @reg.job("shop.Heartbeat")
    def heartbeat(state: State, intents: Intents) -> None:
        intents.put_view("shop.Heartbeats", Bucket=0, UnixTime=state.job_context.unix_time)

    # --- read by the query processor's tests (shop/query.vsql, test_query*.py) ---

    @reg.command("shop.Pay")
    def pay(state: State, intents: Intents) -> None:
        pass

    @reg.projector("shop.VisitsProjector")
    def visits(state: State, intents: Intents) -> None:
        for cud in state.event.cuds:
            if cud.is_new and cud.qname == "shop.Visit":
                f = cud.fields
                key = {"Year": f["Year"], "Month": f["Month"], "Day": f["Day"], "Visit": cud.id}
                intents.put_view("shop.Visits", **key, Note=f.get("Note"), Guests=f["Day"] * 10)

    @reg.query("shop.Items")
    def items(state: State, intents: Intents) -> None:
        fruits = [
            ("apple", 3, 1.5, True),
            ("pear", 5, 2.25, False),
            ("plum", 1, 0.5, True),
            ("kiwi", 5, 0.75, True),
        ]
        for name, price, weight, fresh in fruits:
            if price >= state.arg.get("MinPrice", 0):
                ref = state.arg.get("Ref", 0)
                intents.result(Name=name, Price=price, Item=ref, Weight=weight, Fresh=fresh, Kind="shop.Item")

    @reg.query("shop.Anything")
    def anything(state: State, intents: Intents) -> None:
        intents.result(A=1, B="x")
        intents.result(A=2, B="y")

    @reg.query("shop.Nothing")
    def nothing(state: State, intents: Intents) -> None:
        pass

    @reg.query("shop.RawEcho")
    def raw_echo(state: State, intents: Intents) -> None:
        intents.result(Body=f"raw:{state.arg['Body']}")

    @reg.query("shop.Teapot")
    def teapot(state: State, intents: Intents) -> None:
        intents.respond(418, "I'm a teapot")

    return reg


@pytest.fixture(scope="session")
def shop_appdef() -> AppDef:
    return compile_app(SHOP)


@dataclass
class Shop:
    runtime: AppRuntime
    storage: AppStorage
    partitions: dict[int, Partition]

    def partition(self, wsid: int) -> Partition:
        return self.partitions[partition_of(wsid, self.runtime.num_partitions)]

    async def cmd(
        self, wsid: int, command: str, body: dict[str, Any], principal: Principal = USER, synced: bool = False
    ) -> CommandResult:
        from voedger.appdef import QName

        return await self.partition(wsid).submit(CommandRequest(wsid, QName.parse(command), body, principal, synced))

    async def create_ws(self, wsid: int) -> None:
        body = {
            "cuds": [
                {
                    "fields": {
                        "sys.ID": 1,
                        "sys.QName": "sys.WorkspaceDescriptor",
                        "WSName": f"ws{wsid}",
                        "WSKind": "shop.ShopDesc",
                        "CreatedAtMs": 1,
                    }
                },
                {"fields": {"sys.ID": 2, "sys.QName": "shop.ShopDesc", "Name": "shop"}},
            ]
        }
        await self.cmd(wsid, "sys.CUD", body, SYSTEM, synced=True)

    async def restart(self) -> Shop:
        for p in self.partitions.values():
            await p.stop()
        return await start_shop(self.runtime.appdef, self.storage)


async def start_shop(app: AppDef, storage: AppStorage) -> Shop:
    runtime = AppRuntime(
        name="test/shop",
        appdef=app,
        storage=storage,
        impls=shop_registry(),
        platform=platform,
        singleton_ids=await load_singleton_ids(storage, app),
        num_partitions=2,
    )
    partitions = {i: Partition(runtime, i) for i in range(2)}
    for p in partitions.values():
        await p.start()
    return Shop(runtime, storage, partitions)


@pytest.fixture
async def shop(shop_appdef: AppDef) -> AsyncIterator[Shop]:
    factory = MemStorageFactory()
    await factory.init("shop")
    s = await start_shop(shop_appdef, await factory.app_storage("shop"))
    yield s
    for p in s.partitions.values():
        await p.stop()


WS = new_wsid(1, 200_000)


async def menu_document(shop: Shop) -> dict[str, int]:
    """An item, and a menu whose section has a line naming it; the new IDs by raw ID."""
    cuds: list[dict[str, Any]] = [
        {"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea", "Price": 5}},
        {"fields": {"sys.ID": 2, "sys.QName": "shop.Menu", "Title": "day", "Special": 1}},
        {
            "fields": {
                "sys.ID": 3,
                "sys.QName": "shop.MenuSection",
                "sys.ParentID": 2,
                "sys.Container": "Sections",
            }
        },
        {
            "fields": {
                "sys.ID": 4,
                "sys.QName": "shop.MenuLine",
                "sys.ParentID": 3,
                "sys.Container": "Lines",
                "Item": 1,
            }
        },
    ]
    return (await shop.cmd(WS, "sys.CUD", {"cuds": cuds})).new_ids
