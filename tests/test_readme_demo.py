"""The "Try it" session of README.md, in-process: the same requests in the same order, with
authentication on, against the restaurant sample. If this fails, the README's curl lines (or the
answers shown with them) are likely stale too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import until, v2_error_of
from voedger.clock import ManualClock
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.vvm.server import VVM, ServerConfig

RESTAURANT = Path(__file__).resolve().parents[1] / "examples" / "restaurant"
V2 = "/api/v2/apps/untill/restaurant"
V1 = "/api/untill/restaurant"
FORBIDDEN = "is forbidden in workspace restaurant.Restaurant"

# A clock that stands still: the rate limit below never refills.
CLOCK = ManualClock(1_790_000_000)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[("untill/restaurant", RESTAURANT)], clock=CLOCK))
    await vvm.start()
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await vvm.stop()


def bearer(answer: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {answer['principalToken']}"}


async def sign_up_and_in(c: httpx.AsyncClient, login: str) -> tuple[dict[str, str], int]:
    """Sign up, then sign in while the answer is 409 (the profile workspace is being made)."""
    password = f"{login}-pa55"
    r = await c.post(f"{V2}/users", json={"login": login, "password": password})
    assert r.status_code == 201 and r.json() == {}, r.text

    async def attempt() -> dict[str, Any] | None:
        r = await c.post(f"{V2}/auth/login", json={"login": login, "password": password})
        if r.status_code == 409:
            assert r.json()["message"] == "profile workspace is not yet ready, try again later"
            return None
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    answer = await until(attempt)
    assert answer["expiresInSeconds"] == 3600
    return bearer(answer), answer["profileWSID"]


def forbidden(r: httpx.Response, text: str) -> None:
    assert r.status_code == 403, r.text
    assert v2_error_of(r)["message"] == f"{text} {FORBIDDEN}", r.text


def denied(r: httpx.Response, message: str) -> None:
    """A write the ACL refuses, in Voedger's words (which name neither fields nor workspace)."""
    assert r.status_code == 403, r.text
    assert r.json()["message"] == message, r.text


async def test_readme_session(client: httpx.AsyncClient) -> None:
    c = client
    # Alice opens a restaurant.
    alice, alice_profile = await sign_up_and_in(c, "alice")
    args = {
        "WSName": "trattoria",
        "WSKind": "restaurant.RestaurantDescriptor",
        "WSKindInitializationData": '{"Name":"Trattoria","Currency":"EUR"}',
    }
    r = await c.post(
        f"{V2}/workspaces/{alice_profile}/commands/sys.InitChildWorkspace", json={"args": args}, headers=alice
    )
    assert r.status_code == 200, r.text

    async def child() -> int | None:
        r = await c.get(
            f"{V2}/workspaces/{alice_profile}/queries/sys.QueryChildWorkspaceByName",
            params={"args": '{"WSName":"trattoria"}'},
            headers=alice,
        )
        assert r.status_code == 200, r.text
        return r.json()["results"][0]["WSID"] or None

    ws = await until(child)
    w = f"{V2}/workspaces/{ws}"
    r = await c.post(
        f"{w}/docs/service.Location", json={"Name": "Centre", "TimeZone": "Europe/Amsterdam"}, headers=alice
    )
    assert r.status_code == 201, r.text
    loc = r.json()["newIDs"]["1"]
    r = await c.post(f"{w}/docs/service.DiningTable", json={"Location": loc, "Number": 1, "Seats": 4}, headers=alice)
    assert r.status_code == 201, r.text
    table = r.json()["newIDs"]["1"]
    article = {"sys.QName": "menu.Article", "Category": 1, "VatPercent": 9}
    option = {"sys.QName": "menu.ArticleOption", "sys.ParentID": 3, "sys.Container": "Options"}
    cuds = [
        {"fields": {"sys.ID": 1, "sys.QName": "menu.Category", "Name": "Pizza"}},
        {"fields": {"sys.ID": 2, "Number": 1, "Name": "Margherita", "Price": 950, **article}},
        {"fields": {"sys.ID": 3, "Number": 2, "Name": "Tiramisu", "Price": 650, **article}},
        {"fields": {"sys.ID": 4, "Name": "extra cream", "PriceDelta": 100, **option}},
    ]
    r = await c.post(f"{V1}/{ws}/c.sys.CUD", json={"cuds": cuds}, headers=alice)
    assert r.status_code == 200 and len(r.json()["NewIDs"]) == 4, r.text
    pizza, tiramisu = r.json()["NewIDs"]["2"], r.json()["NewIDs"]["3"]

    # Staff: Bob manages, Carol waits on tables.
    bob, bob_profile = await sign_up_and_in(c, "bob")
    carol, carol_profile = await sign_up_and_in(c, "carol")
    forbidden(await c.get(f"{w}/docs/service.Location/{loc}", headers=carol), "select of service.Location")
    for login, profile, role in (("bob", bob_profile, "Manager"), ("carol", carol_profile, "Waiter")):
        subject = {"Login": login, "SubjectKind": 1, "Roles": f"staff.{role}", "ProfileWSID": profile}
        r = await c.post(f"{w}/docs/sys.Subject", json=subject, headers=alice)
        assert r.status_code == 201, r.text
    r = await c.get(f"{w}/docs/service.Location/{loc}", headers=carol)
    assert r.status_code == 200 and r.json()["Name"] == "Centre", r.text

    # Carol opens a bill (a waiter's INSERT on Bill), takes an order on it and closes it.
    bill_fields = {"Location": loc, "DiningTable": table, "OpenedAt": 1767268800000}
    r = await c.post(f"{w}/docs/service.Bill", json=bill_fields, headers=carol)
    assert r.status_code == 201, r.text
    bill = r.json()["newIDs"]["1"]
    items = [
        {"sys.ID": 2, "Article": pizza, "Quantity": 2, "Price": 950},
        {"sys.ID": 3, "Article": tiramisu, "Quantity": 1, "Price": 750, "Comment": "extra cream"},
    ]
    order = {"sys.ID": 1, "Bill": bill, "Location": loc, "OrderedAt": 1767269100000, "Items": items}
    r = await c.post(f"{w}/commands/service.MakeOrder", json={"args": order}, headers=carol)
    assert r.status_code == 200, r.text
    r = await c.get(f"{w}/views/service.OpenBills", params={"where": f'{{"Location":{loc}}}'}, headers=carol)
    assert r.status_code == 200, r.text
    assert [(b["Bill"], b["Total"], b["Open"]) for b in r.json()["results"]] == [(bill, 2650, True)]
    close = {"Bill": bill, "Tip": 150, "Payment": {"Kind": 2, "Amount": 2800}}
    r = await c.post(f"{w}/commands/service.CloseBill", json={"args": close}, headers=carol)
    assert r.status_code == 200 and r.json()["result"]["Number"] == 1, r.text
    order = {**order, "OrderedAt": 1767270000000, "Items": items[:1]}
    r = await c.post(f"{w}/commands/service.MakeOrder", json={"args": order}, headers=carol)
    assert r.status_code == 400 and r.json()["message"] == f"Bill: bill {bill} is closed (number 1)", r.text
    r = await c.get(f"{w}/docs/service.Bill/{bill}", headers=carol)
    assert r.status_code == 200 and (r.json()["Number"], r.json()["Total"], r.json()["Tip"]) == (1, 2650, 150)

    # What each role may see and do: sales are for managers.
    sales = {"args": f'{{"Location":{loc},"Year":2026,"Month":1}}'}
    forbidden(await c.get(f"{w}/queries/sales.DailySales", params=sales, headers=carol), "execute of sales.DailySales")

    async def daily() -> list[dict[str, Any]] | None:
        r = await c.get(f"{w}/queries/sales.DailySales", params=sales, headers=bob)
        assert r.status_code == 200, r.text
        return r.json()["results"] or None  # the async projector may not have caught up yet

    assert await until(daily) == [{"Day": 1, "Orders": 1, "Amount": 2650}]
    r = await c.get(f"{w}/views/sales.SalesByDay", params={"where": f'{{"Location":{loc},"Year":2026}}'}, headers=bob)
    assert r.status_code == 200 and [(d["Day"], d["Amount"]) for d in r.json()["results"]] == [(1, 2650)], r.text

    # The staff list: the owner's to change, the managers' to read.
    employee = {"Name": "Carol", "Login": "carol", "Role": "staff.Waiter"}
    r = await c.post(f"{w}/docs/staff.Employee", json=employee, headers=bob)
    denied(r, "cuds[0] OperationKind_Insert staff.Employee: operation forbidden")
    assert (await c.post(f"{w}/docs/staff.Employee", json=employee, headers=alice)).status_code == 201
    r = await c.get(f"{w}/cdocs/staff.Employee", headers=bob)
    assert r.status_code == 200 and [e["Login"] for e in r.json()["results"]] == ["carol"], r.text
    forbidden(await c.get(f"{w}/cdocs/staff.Employee", headers=carol), "select of staff.Employee")

    # The menu: a waiter may mark an article sold out but not change its price; a manager may.
    r = await c.patch(f"{w}/docs/menu.Article/{pizza}", json={"Price": 1050}, headers=carol)
    denied(r, "cuds[0] OperationKind_Update menu.Article: operation forbidden")
    r = await c.patch(f"{w}/docs/menu.Article/{tiramisu}", json={"Available": False}, headers=carol)
    assert r.status_code == 200, r.text
    r = await c.patch(f"{w}/docs/menu.Article/{pizza}", json={"Price": 1050}, headers=bob)
    assert r.status_code == 200, r.text

    # The menu as a collection: v1 (the owner's), v2 (any role that reads articles and their options).
    body = {"args": {"Schema": "menu.Article"}, "elements": [{"fields": ["sys.ID", "Number", "Name", "Price"]}]}
    r = await c.post(f"{V1}/{ws}/q.sys.Collection", json=body, headers=alice)
    assert r.status_code == 200, r.text
    rows = [e[0][0] for e in r.json()["sections"][0]["elements"]]
    assert rows == [[pizza, 1, "Margherita", 1050], [tiramisu, 2, "Tiramisu", 650]]
    keys = "Number,Name,Price,Available,Options.Name,Options.PriceDelta"
    r = await c.get(f"{w}/cdocs/menu.Article", params={"include": "Options", "keys": keys}, headers=carol)
    assert r.status_code == 200, r.text
    assert r.json()["results"] == [
        {"Number": 1, "Name": "Margherita", "Price": 1050},
        {
            "Number": 2,
            "Name": "Tiramisu",
            "Price": 650,
            "Available": False,
            "Options": [{"Name": "extra cream", "PriceDelta": 100}],
        },
    ]

    # Tokens and rates.
    r = await c.post(f"{V2}/auth/refresh", headers=alice)
    assert r.status_code == 200 and r.json()["profileWSID"] == alice_profile, r.text
    assert (await c.get(f"{w}/docs/service.Location/{loc}", headers=bearer(r.json()))).status_code == 200
    forbidden(await c.get(f"{w}/docs/service.Location/{loc}"), "select of service.Location")
    codes = [(await c.get(f"{w}/queries/sales.DailySales", params=sales, headers=bob)).status_code for _ in range(70)]
    assert 429 in codes and set(codes) == {200, 429}, codes
    r = await c.get(f"{w}/queries/sales.DailySales", params=sales, headers=bob)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, r.text
    assert v2_error_of(r)["qname"] == "sales.DailySalesLimit", r.text
