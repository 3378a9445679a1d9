"""The whole identity path over HTTP on the restaurant sample, with authentication on: sign up,
sign in before and after the profile is ready, create a restaurant from the profile, work in
it, share it with a second user through sys.Subject, refresh a token, deactivate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import until
from voedger.clock import ManualClock
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.vvm.server import VVM, ServerConfig

APP = "untill/restaurant"
RESTAURANT = Path(__file__).resolve().parents[2] / "examples" / "restaurant"
V2 = "/api/v2/apps/untill/restaurant"


CLOCK = ManualClock(1_790_000_000)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, RESTAURANT)], clock=CLOCK))
    await vvm.start()
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await vvm.stop()


async def sign_up_and_in(client: httpx.AsyncClient, login: str, password: str) -> tuple[dict[str, str], int]:
    r = await client.post(f"{V2}/users", json={"login": login, "password": password})
    assert r.status_code == 201, r.text
    return await sign_in(client, login, password)


async def sign_in(client: httpx.AsyncClient, login: str, password: str) -> tuple[dict[str, str], int]:
    """Sign in, waiting (409) until the profile workspace is ready."""

    async def attempt() -> dict[str, Any] | None:
        r = await client.post(f"{V2}/auth/login", json={"login": login, "password": password})
        if r.status_code == 409:
            assert "not yet ready" in r.json()["message"]
            return None
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    answer = await until(attempt)
    assert answer["expiresInSeconds"] == 3600 and answer["profileWSID"] > 0
    return {"Authorization": f"Bearer {answer['principalToken']}"}, answer["profileWSID"]


async def test_sign_up_create_a_restaurant_share_it(client: httpx.AsyncClient) -> None:
    alice, alice_profile = await sign_up_and_in(client, "alice@example.com", "pa55word!")
    r = await client.post(f"{V2}/auth/login", json={"login": "alice@example.com", "password": "wrong"})
    assert r.status_code == 401, r.text
    r = await client.post(f"{V2}/users", json={"login": "alice@example.com", "password": "x"})
    assert r.status_code == 409, r.text

    # Alice creates a restaurant from her profile and waits for it.
    args = {
        "WSName": "trattoria",
        "WSKind": "restaurant.RestaurantDescriptor",
        "WSKindInitializationData": '{"Name":"Trattoria","Currency":"EUR"}',
    }
    r = await client.post(
        f"{V2}/workspaces/{alice_profile}/commands/sys.InitChildWorkspace", json={"args": args}, headers=alice
    )
    assert r.status_code == 200, r.text

    async def child() -> int | None:
        r = await client.get(
            f"{V2}/workspaces/{alice_profile}/queries/sys.QueryChildWorkspaceByName",
            params={"args": '{"WSName":"trattoria"}'},
            headers=alice,
        )
        assert r.status_code == 200, r.text
        row = r.json()["results"][0]
        assert not row.get("WSError"), row
        return row.get("WSID") or None

    trattoria = await until(child)
    ws = f"{V2}/workspaces/{trattoria}"
    location = {"Name": "Centre", "TimeZone": "Europe/Rome"}
    r = await client.post(f"{ws}/docs/service.Location", json=location, headers=alice)
    assert r.status_code == 201, r.text
    location_id = r.json()["newIDs"]["1"]

    # Bob signs up too; the restaurant is not his.
    bob, bob_profile = await sign_up_and_in(client, "bob", "s3cret-bob")
    r = await client.get(f"{ws}/docs/service.Location/{location_id}", headers=bob)
    assert r.status_code == 403, r.text
    r = await client.get(f"{ws}/docs/service.Location/{location_id}")
    assert r.status_code == 403, r.text  # anonymous

    # Alice makes him a waiter; now he reads locations, but may not create them.
    subject = {"Login": "bob", "SubjectKind": 1, "Roles": "staff.Waiter", "ProfileWSID": bob_profile}
    r = await client.post(f"{ws}/docs/sys.Subject", json=subject, headers=alice)
    assert r.status_code == 201, r.text
    r = await client.get(f"{ws}/docs/service.Location/{location_id}", headers=bob)
    assert r.status_code == 200 and r.json()["Name"] == "Centre", r.text
    r = await client.post(f"{ws}/docs/service.Location", json=location, headers=bob)
    assert r.status_code == 403, r.text

    # Tokens: refresh gives a working token; a token of another app is refused.
    r = await client.post(f"{V2}/auth/refresh", headers=alice)
    assert r.status_code == 200, r.text
    fresh = {"Authorization": f"Bearer {r.json()['principalToken']}"}
    assert (await client.get(f"{ws}/docs/service.Location/{location_id}", headers=fresh)).status_code == 200
    r = await client.get(f"/api/v2/apps/test/other/workspaces/{trattoria}/docs/service.Location/1", headers=alice)
    assert r.status_code == 400, r.text  # the app is not deployed here

    # Alice deactivates the restaurant: 410 for everybody afterwards.
    r = await client.post(f"{ws}/commands/sys.InitiateDeactivateWorkspace", json={}, headers=alice)
    assert r.status_code == 200, r.text
    r = await client.get(f"{ws}/docs/service.Location/{location_id}", headers=alice)
    assert r.status_code == 410, r.text


async def test_devices_and_password_change(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{V2}/devices")
    assert r.status_code == 201, r.text
    device = r.json()
    assert device["login"].startswith("device") and len(device["password"]) == 26
    _, profile = await sign_in(client, device["login"], device["password"])
    assert profile > 0

    await sign_up_and_in(client, "carol", "old-password")
    body = {"login": "carol", "oldPassword": "wrong", "newPassword": "new-password"}
    r = await client.post(f"{V2}/users/change-password", json=body)
    assert r.status_code == 401, r.text
    body["oldPassword"] = "old-password"
    r = await client.post(f"{V2}/users/change-password", json=body)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, r.text  # 1 per minute per partition
    CLOCK.advance(61)
    r = await client.post(f"{V2}/users/change-password", json=body)
    assert r.status_code == 200, r.text
    r = await client.post(f"{V2}/auth/login", json={"login": "carol", "password": "new-password"})
    assert r.status_code == 200, r.text
    r = await client.post(f"{V2}/auth/login", json={"login": "carol"})
    assert r.status_code == 400, r.text
