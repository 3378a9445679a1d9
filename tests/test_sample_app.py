"""The restaurant sample end to end: the real router and VVM in-process, HTTP through httpx's ASGI
transport. A restaurant workspace is created as a client creates one, the menu and the floor are
set up with API v1 and v2, orders go through MakeOrder, the SYNC view follows at once, CloseBill
answers the bill's number, and the async sales projector catches up a moment later."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support import v2_error_of
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import app_wsid
from voedger.vvm.server import VVM, ServerConfig

SAMPLE_APP = Path(__file__).resolve().parents[1] / "examples" / "restaurant"
APP = "untill/restaurant"
APP_WS = app_wsid(1, 0)
ORDERED_AT = 1767243600000  # 2026-01-01 05:00 UTC, and 19:00 on 31 December 2025 in Honolulu
TIMEOUT = 10.0


@pytest.fixture
async def vvm(tmp_path: Path) -> AsyncIterator[VVM]:
    v = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, SAMPLE_APP)], insecure_dev=True))
    await v.start()
    yield v
    await v.stop()


@pytest.fixture
async def client(vvm: VVM) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


def v1(wsid: int) -> str:
    return f"/api/{APP}/{wsid}"


def v2(wsid: int) -> str:
    return f"/api/v2/apps/{APP}/workspaces/{wsid}"


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def v1_error(r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()["sys.Error"]
    assert body["HTTPStatus"] == status and text in body["Message"], body


def v2_error(r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, r.text
    body = v2_error_of(r)
    assert body["status"] == status and text in body["message"], body


async def eventually(probe: Any, what: str, timeout: float = TIMEOUT) -> Any:
    """Call ``probe`` until it answers something truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = await probe()
        if answer:
            return answer
        assert loop.time() < deadline, f"{what}: not within {timeout}s"
        await asyncio.sleep(0.05)


async def create_restaurant(client: httpx.AsyncClient, name: str, init: dict[str, Any]) -> dict[str, Any]:
    """InitChildWorkspace in the application workspace, then QueryChildWorkspaceByName until the
    workspace has its WSID (or an error)."""
    init_data = orjson.dumps(init).decode()
    args = {"WSName": name, "WSKind": "restaurant.RestaurantDescriptor", "WSKindInitializationData": init_data}
    ok(await client.post(f"{v2(APP_WS)}/commands/sys.InitChildWorkspace", json={"args": args}))

    async def probe() -> dict[str, Any] | None:
        params = {"args": orjson.dumps({"WSName": name}).decode(), "keys": "WSID,WSError"}
        row: dict[str, Any] = ok(
            await client.get(f"{v2(APP_WS)}/queries/sys.QueryChildWorkspaceByName", params=params)
        )["results"][0]
        return row if row["WSID"] or row["WSError"] else None

    child: dict[str, Any] = await eventually(probe, f"workspace {name}")
    return child


class Restaurant:
    """A restaurant workspace with one location, two tables and a small menu."""

    def __init__(self, client: httpx.AsyncClient, wsid: int) -> None:
        self.client = client
        self.wsid = wsid
        self.v1 = v1(wsid)
        self.v2 = v2(wsid)
        self.ids: dict[str, int] = {}

    async def set_up(self) -> None:
        c = self.client
        # v2 docs: one record per request
        body = ok(
            await c.post(f"{self.v2}/docs/service.Location", json={"Name": "Centre", "TimeZone": "Pacific/Honolulu"}),
            201,
        )
        self.ids["location"] = loc = body["newIDs"]["1"]
        # v1 CUD: several records in one event, referring to each other by raw IDs
        cuds = [
            {"fields": {"sys.ID": 1, "sys.QName": "service.DiningTable", "Location": loc, "Number": 1, "Seats": 4}},
            {"fields": {"sys.ID": 2, "sys.QName": "service.DiningTable", "Location": loc, "Number": 2, "Seats": 2}},
            {"fields": {"sys.ID": 3, "sys.QName": "menu.Category", "Name": "Pizza", "Position": 1}},
            {
                "fields": {
                    "sys.ID": 4,
                    "sys.QName": "menu.Article",
                    "Number": 10,
                    "Name": "Margherita",
                    "Category": 3,
                    "Price": 950,
                    "VatPercent": 9,
                }
            },
            {
                "fields": {
                    "sys.ID": 5,
                    "sys.QName": "menu.ArticleOption",
                    "sys.ParentID": 4,
                    "sys.Container": "Options",
                    "Name": "extra cheese",
                    "PriceDelta": 150,
                }
            },
        ]
        new = ok(await c.post(f"{self.v1}/c.sys.CUD", json={"cuds": cuds}))["NewIDs"]
        self.ids.update(table1=new["1"], table2=new["2"], pizza_category=new["3"], margherita=new["4"])
        tiramisu = {"Number": 20, "Name": "Tiramisu", "Category": new["3"], "Price": 650, "VatPercent": 9}
        self.ids["tiramisu"] = ok(await c.post(f"{self.v2}/docs/menu.Article", json=tiramisu), 201)["newIDs"]["1"]

    async def open_bill(self, table: str) -> int:
        bill = {"Location": self.ids["location"], "DiningTable": self.ids[table], "OpenedAt": ORDERED_AT - 600_000}
        bill_id: int = ok(await self.client.post(f"{self.v2}/docs/service.Bill", json=bill), 201)["newIDs"]["1"]
        return bill_id

    def order(self, bill: int, *items: tuple[str, int, int]) -> dict[str, Any]:
        lines = [
            {"sys.ID": i + 2, "Article": self.ids[article], "Quantity": qty, "Price": price}
            for i, (article, qty, price) in enumerate(items)
        ]
        return {"sys.ID": 1, "Bill": bill, "Location": self.ids["location"], "OrderedAt": ORDERED_AT, "Items": lines}

    async def open_bills(self) -> list[dict[str, Any]]:
        params = {"where": orjson.dumps({"Location": self.ids["location"]}).decode(), "order": "DiningTable"}
        rows: list[dict[str, Any]] = ok(await self.client.get(f"{self.v2}/views/service.OpenBills", params=params))[
            "results"
        ]
        return rows


@pytest.fixture
async def restaurant(client: httpx.AsyncClient) -> Restaurant:
    child = await create_restaurant(client, "trattoria", {"Name": "Trattoria", "Currency": "EUR", "Country": "NL"})
    assert child["WSError"] == "", child
    r = Restaurant(client, int(child["WSID"]))
    await r.set_up()
    return r


async def test_the_workspace_is_a_restaurant(client: httpx.AsyncClient, restaurant: Restaurant) -> None:
    body = {"args": {"WSName": "trattoria"}, "elements": [{"fields": ["WSID", "WSKind", "WSError"]}]}
    r = await client.post(f"{v1(APP_WS)}/q.sys.QueryChildWorkspaceByName", json=body)
    assert ok(r)["sections"][0]["elements"] == [[[[restaurant.wsid, "restaurant.RestaurantDescriptor", ""]]]]
    # the name is taken now
    args = {"WSName": "trattoria", "WSKind": "restaurant.RestaurantDescriptor"}
    v2_error(await client.post(f"{v2(APP_WS)}/commands/sys.InitChildWorkspace", json={"args": args}), 409, "")


async def test_orders_bills_and_sales(client: httpx.AsyncClient, restaurant: Restaurant) -> None:
    r, ids = restaurant, restaurant.ids
    bill = await r.open_bill("table1")
    # SYNC projector: the bill is on the floor plan as soon as the command is answered
    rows = await r.open_bills()
    assert [(x["DiningTable"], x["Bill"], x["Total"], x["Open"]) for x in rows] == [(ids["table1"], bill, 0, True)]

    # two orders: v2 command, then v1 command; the second corrects the first (negative quantity)
    first = r.order(bill, ("margherita", 2, 950), ("tiramisu", 1, 650))
    body = ok(await client.post(f"{r.v2}/commands/service.MakeOrder", json={"args": first}))
    assert set(body["newIDs"]) == {"1", "2", "3"}  # the order and its two items got IDs
    second = r.order(bill, ("tiramisu", 2, 650), ("margherita", -1, 950))
    order_offset = ok(await client.post(f"{r.v1}/c.service.MakeOrder", json={"args": second}))["CurrentWLogOffset"]
    rows = await r.open_bills()
    assert [(x["Bill"], x["Total"], x["Open"]) for x in rows] == [(bill, 2 * 950 + 650 + 2 * 650 - 950, True)]
    total = rows[0]["Total"]

    # the bill moves to table 2: the row at table 1 closes, the new one carries the total
    ok(await client.patch(f"{r.v2}/docs/service.Bill/{bill}", json={"DiningTable": ids["table2"]}))
    rows = await r.open_bills()
    assert [(x["DiningTable"], x["Total"], x["Open"]) for x in rows] == [
        (ids["table1"], total, False),
        (ids["table2"], total, True),
    ]

    # closing: a payment short of total + tip is refused; then the bill gets number 1
    short = {"Bill": bill, "Tip": 200, "Payment": {"Kind": 1, "Amount": total}}
    v2_error(await client.post(f"{r.v2}/commands/service.CloseBill", json={"args": short}), 400, "does not cover")
    pay = {"Bill": bill, "Tip": 200, "Payment": {"Kind": 2, "Amount": total + 200}}
    body = ok(await client.post(f"{r.v2}/commands/service.CloseBill", json={"args": pay}))
    assert body["result"] == {"Number": 1, "sys.QName": "service.CloseBillResult"}
    assert [x["Open"] for x in await r.open_bills()] == [False, False]
    doc = ok(await client.get(f"{r.v2}/docs/service.Bill/{bill}"))
    assert (doc["Number"], doc["Total"], doc["Tip"]) == (1, total, 200) and doc["ClosedAt"] > 0
    payment_id = max(body["newIDs"].values())  # the other new record is the BillCounter singleton, with a small ID
    payment = ok(await client.get(f"{r.v2}/docs/service.Payment/{payment_id}"))
    assert (payment["sys.ParentID"], payment["Kind"], payment["Amount"]) == (bill, 2, total + 200)
    # no more orders on a closed bill, and the next bill gets the next number
    late = r.order(bill, ("tiramisu", 1, 650))
    v2_error(await client.post(f"{r.v2}/commands/service.MakeOrder", json={"args": late}), 400, "is closed")
    v1_error(await client.post(f"{r.v1}/c.service.CloseBill", json={"args": pay}), 400, "is closed")
    bill2 = await r.open_bill("table1")
    pay2 = {"Bill": bill2, "Payment": {"Kind": 1, "Amount": 0}}
    assert ok(await client.post(f"{r.v1}/c.service.CloseBill", json={"args": pay2}))["Result"]["Number"] == 2

    # the async projector counts the orders into the local day of the location: 31 December in Honolulu
    params = {"args": orjson.dumps({"Location": ids["location"], "Year": 2025, "Month": 12}).decode()}

    async def daily() -> list[dict[str, Any]]:
        r2 = await client.get(f"{r.v2}/queries/sales.DailySales", params=params)
        results: list[dict[str, Any]] = ok(r2)["results"]
        return results if results and results[0]["Orders"] == 2 else []

    assert await eventually(daily, "sales.DailySales") == [{"Day": 31, "Orders": 2, "Amount": total}]
    where = orjson.dumps({"Location": ids["location"], "Year": 2025}).decode()
    rows = ok(await client.get(f"{r.v2}/views/sales.SalesByDay", params={"where": where}))["results"]
    assert [(x["Month"], x["Day"], x["Orders"], x["Amount"], x["offs"]) for x in rows] == [
        (12, 31, 2, total, order_offset)
    ]
    for article, quantity in (("margherita", 1), ("tiramisu", 3)):
        where = orjson.dumps({"Article": ids[article]}).decode()
        rows = ok(await client.get(f"{r.v2}/views/sales.ArticleSales", params={"where": where}))["results"]
        assert [(x["Year"], x["Month"], x["Quantity"]) for x in rows] == [(2025, 12, quantity)], article
    # v1 reads the same query
    body = {
        "args": {"Location": ids["location"], "Year": 2025, "Month": 12},
        "elements": [{"fields": ["Day", "Amount"]}],
    }
    assert ok(await client.post(f"{r.v1}/q.sales.DailySales", json=body))["sections"][0]["elements"] == [
        [[[31, total]]]
    ]


async def test_collections(client: httpx.AsyncClient, restaurant: Restaurant) -> None:
    r, ids = restaurant, restaurant.ids
    body = {"args": {"Schema": "menu.Article"}, "elements": [{"fields": ["sys.ID", "Number", "Name", "Price"]}]}
    elements = ok(await client.post(f"{r.v1}/q.sys.Collection", json=body))["sections"][0]["elements"]
    assert elements == [[[[ids["margherita"], 10, "Margherita", 950]]], [[[ids["tiramisu"], 20, "Tiramisu", 650]]]]
    got = ok(await client.get(f"{r.v2}/cdocs/menu.Article", params={"include": "Options", "order": "Number"}))
    articles = got["results"]
    assert [a["Name"] for a in articles] == ["Margherita", "Tiramisu"]
    assert [o["Name"] for o in articles[0]["Options"]] == ["extra cheese"] and "Options" not in articles[1]
    where = orjson.dumps({"Location": ids["location"]}).decode()
    tables = ok(await client.get(f"{r.v2}/cdocs/service.DiningTable", params={"where": where, "keys": "Number,Seats"}))
    assert tables["results"] == [{"Number": 1, "Seats": 4}, {"Number": 2, "Seats": 2}]
    # a sold-out article leaves the menu's collection as it is, but is refused in orders
    ok(await client.patch(f"{r.v2}/docs/menu.Article/{ids['tiramisu']}", json={"Available": False}))
    got = ok(await client.get(f"{r.v2}/docs/menu.Article/{ids['tiramisu']}"))
    assert got["Available"] is False


async def test_client_mistakes(client: httpx.AsyncClient, restaurant: Restaurant) -> None:
    r, ids = restaurant, restaurant.ids
    bill = await r.open_bill("table1")
    make = f"{r.v2}/commands/service.MakeOrder"

    async def refused(order: dict[str, Any], text: str, status: int = 400) -> None:
        v2_error(await client.post(make, json={"args": order}), status, text)

    await refused({**r.order(bill), "Items": []}, "at least one item")
    await refused(r.order(bill, ("margherita", 0, 950)), "Quantity cannot be 0")
    await refused(r.order(bill, ("margherita", 1, -5)), "Price cannot be negative")
    # references the platform checks before the extension runs (Voedger's texts)
    await refused(
        r.order(ids["margherita"], ("margherita", 1, 950)),
        f"record ID {ids['margherita']} referenced by service.Order.Bill is of QName menu.Article whereas "
        "[service.Bill] QNames are only allowed",
    )
    await refused(r.order(999_999, ("margherita", 1, 950)), "record ID 999999 referenced by service.Order.Bill")
    other = await client.post(f"{r.v2}/docs/service.Location", json={"Name": "Beach", "TimeZone": "Europe/Rome"})
    ok(other, 201)
    await refused({**r.order(bill, ("margherita", 1, 950)), "Location": other.json()["newIDs"]["1"]}, "is at location")
    ok(await client.patch(f"{r.v2}/docs/menu.Article/{ids['tiramisu']}", json={"Available": False}))
    await refused(r.order(bill, ("tiramisu", 1, 650)), "«Tiramisu» is not available")
    # what the platform checks before the extension runs
    await refused({k: v for k, v in r.order(bill, ("margherita", 1, 950)).items() if k != "OrderedAt"}, "OrderedAt")
    await refused(
        {**r.order(bill), "Items": [{"sys.ID": 2, "Article": ids["margherita"], "Quantity": "two"}]}, "Quantity"
    )
    # nothing was accepted: the bill's total is still 0
    assert [(x["Bill"], x["Total"]) for x in await r.open_bills()] == [(bill, 0)]

    close = f"{r.v2}/commands/service.CloseBill"
    v2_error(await client.post(close, json={"args": {"Bill": bill}}), 400, "Payment")
    tip = {"Bill": bill, "Tip": -1, "Payment": {"Kind": 1, "Amount": 0}}
    v2_error(await client.post(close, json={"args": tip}), 400, "Tip cannot be negative")
    # the database guards the rest: uniques, required fields, the currency's pattern, months
    dup = {"Number": 10, "Name": "Another", "Category": ids["pizza_category"], "Price": 1, "VatPercent": 9}
    v2_error(await client.post(f"{r.v2}/docs/menu.Article", json=dup), 409, "unique constraint violation")
    v2_error(await client.post(f"{r.v2}/docs/service.Location", json={"Name": "No zone"}), 400, "TimeZone")
    v2_error(await client.post(f"{r.v2}/docs/service.Order", json={}), 405, "ODoc")
    args = orjson.dumps({"Location": ids["location"], "Year": 2026, "Month": 13}).decode()
    v2_error(await client.get(f"{r.v2}/queries/sales.DailySales", params={"args": args}), 400, "Month must be")
    v2_error(await client.get(f"{r.v2}/views/sales.SalesByDay", params={"where": "{}"}), 400, "")
    bad = await create_restaurant(client, "nowhere", {"Name": "Nowhere", "Currency": "euro"})
    assert bad["WSID"] == 0 and "Currency" in bad["WSError"], bad


async def test_nightly_digest(client: httpx.AsyncClient, vvm: VVM) -> None:
    """The server's scheduler of the partition of app workspace 0 is ticked at the job's next
    03:00 (rather than waiting for it), and what the job wrote is read over HTTP."""
    scheduler = next(s for s in vvm.app(APP).jobs if APP_WS in s.workspaces)
    assert "sales.NightlyDigest" in map(str, scheduler.jobs)
    due = scheduler.next_run("sales.NightlyDigest", APP_WS)
    when = dt.datetime.fromtimestamp(due, dt.UTC)
    assert (when.hour, when.minute) == (3, 0)
    runs = [run for run in await scheduler.tick(due) if run.wsid == APP_WS]
    assert [(str(run.job), run.error) for run in runs] == [("sales.NightlyDigest", None)]
    where = orjson.dumps({"Year": when.year}).decode()
    rows = ok(await client.get(f"{v2(APP_WS)}/views/sales.NightlyRuns", params={"where": where}))["results"]
    assert [(x["DayOfYear"], x["StartedAt"]) for x in rows] == [(when.timetuple().tm_yday, int(due))]


async def test_sales_count_an_order_once_when_it_is_projected_twice() -> None:
    """Async projectors deliver at least once: after a crash the events since the last stored
    offset are projected again. ApplySales skips what its ``offs`` says it has counted."""
    from voedger.testkit import ExtensionTestKit

    kit = ExtensionTestKit(SAMPLE_APP)
    loc = kit.put_record("service.Location", Name="Centre", TimeZone="Europe/Amsterdam")
    pizza = kit.put_record("menu.Article", Number=1, Name="Pizza", Category=1, Price=950, VatPercent=9)
    items = [
        {"sys.ID": 2, "sys.QName": "service.OrderItem", "Article": pizza, "Quantity": 2, "Price": 950},
        {"sys.ID": 3, "sys.QName": "service.OrderItem", "Article": pizza, "Quantity": 1, "Price": 900},
    ]
    order = {"sys.ID": 1, "sys.QName": "service.Order", "Bill": 1, "Location": loc, "OrderedAt": ORDERED_AT}
    event = kit.event("service.MakeOrder", {**order, "Items": items})
    for _ in range(2):
        await kit.run_projector("sales.ApplySales", event)
    day = await kit.view_row("sales.SalesByDay", Location=loc, Year=2026, Month=1, Day=1)  # 06:00 in Amsterdam
    assert day is not None and (day["Orders"], day["Amount"]) == (1, 2 * 950 + 900)
    month = await kit.view_row("sales.ArticleSales", Article=pizza, Year=2026, Month=1)
    assert month is not None and (month["Quantity"], month["Amount"]) == (3, 2 * 950 + 900)
