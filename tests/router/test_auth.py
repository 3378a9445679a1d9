"""Authentication and ACL over HTTP, on the restaurant sample: tokens, principals from the
workspace's owner and its sys.Subject records, GRANT/REVOKE from VSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from voedger.appdef import QName
from voedger.auth import PrincipalPayload
from voedger.clock import ManualClock
from voedger.processors.command import CommandRequest
from voedger.processors.principal import SYSTEM
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import app_wsid, new_wsid
from voedger.vvm.server import VVM, ServerConfig

APP = "untill/restaurant"
RESTAURANT = Path(__file__).resolve().parents[2] / "examples" / "restaurant"
ALICE_PROFILE = new_wsid(1, 300_001)
BOB_PROFILE = new_wsid(1, 300_002)
TRATTORIA = new_wsid(1, 300_003)
V1 = f"/api/untill/restaurant/{TRATTORIA}"
V2 = f"/api/v2/apps/untill/restaurant/workspaces/{TRATTORIA}"


async def system_cud(vvm: VVM, wsid: int, *records: dict[str, object]) -> None:
    body = {"cuds": [{"fields": {"sys.ID": i + 1, **r}} for i, r in enumerate(records)]}
    app = vvm.app(APP)
    await app.partition(wsid).submit(CommandRequest(wsid, QName("sys", "CUD"), body, SYSTEM, synced=True))


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[VVM, httpx.AsyncClient, ManualClock]]:
    clock = ManualClock(1_790_000_000)
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, RESTAURANT)], clock=clock))
    await vvm.start()
    desc = {"sys.QName": "sys.WorkspaceDescriptor", "CreatedAtMs": 1, "InitCompletedAtMs": 1}
    for name, wsid in (("alice", ALICE_PROFILE), ("bob", BOB_PROFILE)):
        await system_cud(
            vvm,
            wsid,
            {**desc, "WSName": name, "WSKind": "sys.UserProfile"},
            {"sys.QName": "sys.UserProfile", "DisplayName": name},
        )
    await system_cud(
        vvm,
        TRATTORIA,
        {**desc, "WSName": "trattoria", "WSKind": "restaurant.RestaurantDescriptor", "OwnerWSID": ALICE_PROFILE},
        {"sys.QName": "restaurant.RestaurantDescriptor", "Name": "Trattoria", "Currency": "EUR"},
    )
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield vvm, client, clock
    await vvm.stop()


def token(vvm: VVM, login: str, profile: int, app: str = APP, hours: int = 1) -> dict[str, str]:
    assert vvm.tokens is not None
    t = vvm.tokens.issue(app, PrincipalPayload(login=login, profile_wsid=profile), timedelta(hours=hours))
    return {"Authorization": f"Bearer {t}"}


LOCATION = {
    "cuds": [{"fields": {"sys.ID": 1, "sys.QName": "service.Location", "Name": "Centre", "TimeZone": "Europe/Rome"}}]
}


async def test_owner_works_others_are_refused(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    vvm, client, _ = env
    r = await client.post(f"{V1}/c.sys.CUD", json=LOCATION, headers=token(vvm, "alice", ALICE_PROFILE))
    assert r.status_code == 200, r.text
    location = r.json()["NewIDs"]["1"]
    r = await client.post(f"{V1}/c.sys.CUD", json=LOCATION, headers=token(vvm, "bob", BOB_PROFILE))
    assert r.status_code == 403 and "sys.CUD" in r.json()["sys.Error"]["Message"], r.text
    r = await client.post(f"{V1}/c.sys.CUD", json=LOCATION)
    assert r.status_code == 403, r.text
    r = await client.get(f"{V2}/docs/service.Location/{location}", headers=token(vvm, "bob", BOB_PROFILE))
    assert r.status_code == 403, r.text

    # The owner makes bob a waiter: he may read locations now, but still not write them.
    subject = {
        "sys.ID": 1,
        "sys.QName": "sys.Subject",
        "Login": "bob",
        "SubjectKind": 1,
        "Roles": "staff.Waiter",
        "ProfileWSID": BOB_PROFILE,
    }
    r = await client.post(
        f"{V1}/c.sys.CUD", json={"cuds": [{"fields": subject}]}, headers=token(vvm, "alice", ALICE_PROFILE)
    )
    assert r.status_code == 200, r.text
    r = await client.get(f"{V2}/docs/service.Location/{location}", headers=token(vvm, "bob", BOB_PROFILE))
    assert r.status_code == 200 and r.json()["Name"] == "Centre", r.text
    r = await client.post(f"{V1}/c.sys.CUD", json=LOCATION, headers=token(vvm, "bob", BOB_PROFILE))
    assert r.status_code == 403, r.text
    r = await client.post(f"{V1}/c.service.MakeOrder", json={"args": {}}, headers=token(vvm, "bob", BOB_PROFILE))
    assert r.status_code == 400, r.text  # allowed to execute; the order itself is wrong


async def test_a_subject_with_a_misspelt_role_is_refused(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    vvm, client, _ = env
    alice = token(vvm, "alice", ALICE_PROFILE)
    subject = {"sys.ID": 1, "sys.QName": "sys.Subject", "Login": "bob", "SubjectKind": 1}
    subject |= {"Roles": "staff.Waiter, staff.Waitre, nodots", "ProfileWSID": BOB_PROFILE}
    r = await client.post(f"{V1}/c.sys.CUD", json={"cuds": [{"fields": subject}]}, headers=alice)
    assert r.status_code == 400, r.text
    assert "no role of the application: «staff.Waitre», «nodots»" in r.json()["sys.Error"]["Message"]
    subject["Roles"] = "staff.Waiter"
    r = await client.post(f"{V1}/c.sys.CUD", json={"cuds": [{"fields": subject}]}, headers=alice)
    assert r.status_code == 200, r.text
    # a change of the roles is checked too
    change = {"cuds": [{"sys.ID": r.json()["NewIDs"]["1"], "fields": {"Roles": "staff.Waiter,sys.NoSuchRole"}}]}
    r = await client.post(f"{V1}/c.sys.CUD", json=change, headers=alice)
    assert r.status_code == 400 and "«sys.NoSuchRole»" in r.text, r.text


async def test_rights_follow_subject_changes_for_the_same_token(
    env: tuple[VVM, httpx.AsyncClient, ManualClock],
) -> None:
    """The partition remembers a caller's principal per workspace; a new, changed or
    deactivated ``sys.Subject`` takes effect on the very next command with the same token."""
    vvm, client, _ = env
    alice, bob = token(vvm, "alice", ALICE_PROFILE), token(vvm, "bob", BOB_PROFILE)
    order = {"args": {}}
    r = await client.post(f"{V1}/c.service.MakeOrder", json=order, headers=bob)
    assert r.status_code == 403, r.text
    subject = {"sys.ID": 1, "sys.QName": "sys.Subject", "Login": "bob", "SubjectKind": 1}
    subject |= {"Roles": "staff.Waiter", "ProfileWSID": BOB_PROFILE}
    r = await client.post(f"{V1}/c.sys.CUD", json={"cuds": [{"fields": subject}]}, headers=alice)
    assert r.status_code == 200, r.text
    subject_id = r.json()["NewIDs"]["1"]
    r = await client.post(f"{V1}/c.service.MakeOrder", json=order, headers=bob)
    assert r.status_code == 400, r.text  # allowed now; the order itself is wrong
    off = {"cuds": [{"sys.ID": subject_id, "fields": {"sys.IsActive": False}}]}
    r = await client.post(f"{V1}/c.sys.CUD", json=off, headers=alice)
    assert r.status_code == 200, r.text
    r = await client.post(f"{V1}/c.service.MakeOrder", json=order, headers=bob)
    assert r.status_code == 403, r.text


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-token", "Basic !!!", "Digest abc", "Bearer " + "x" * 10],
)
async def test_bad_credentials_are_401(env: tuple[VVM, httpx.AsyncClient, ManualClock], header: str) -> None:
    _, client, _ = env
    r = await client.post(f"{V1}/c.sys.CUD", json=LOCATION, headers={"Authorization": header})
    assert r.status_code == 401, r.text
    assert header.split(" ", 1)[1] not in r.text or len(header) < 12


async def test_foreign_and_expired_tokens_are_401(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    vvm, client, clock = env
    r = await client.post(f"{V1}/c.sys.CUD", json=LOCATION, headers=token(vvm, "alice", ALICE_PROFILE, "other/app"))
    assert r.status_code == 401, r.text
    headers = token(vvm, "alice", ALICE_PROFILE)
    r = await client.post(f"{V1}/c.sys.CUD", json=LOCATION, headers=headers)
    assert r.status_code == 200, r.text  # validated once, then remembered until it expires
    clock.advance(3601)
    r = await client.post(f"{V1}/c.sys.CUD", json=LOCATION, headers=headers)
    assert r.status_code == 401 and "expired" in r.text, r.text


async def test_app_workspace_needs_a_token(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    _, client, _ = env
    body = {"args": {"WSName": "x", "WSKind": "restaurant.RestaurantDescriptor"}}
    r = await client.post(f"/api/untill/restaurant/{app_wsid(1, 0)}/c.sys.InitChildWorkspace", json=body)
    assert r.status_code == 403, r.text


async def test_rate_limit_is_429_with_retry_after(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    """sales.DailySales is limited to 60 per minute per workspace per subject (sales.vsql)."""
    vvm, client, clock = env
    headers = token(vvm, "alice", ALICE_PROFILE)
    body = {"args": {"Location": 1, "Year": 2026, "Month": 1}}
    statuses = [
        (await client.post(f"{V1}/q.sales.DailySales", json=body, headers=headers)).status_code for _ in range(60)
    ]
    assert 429 not in statuses, statuses
    r = await client.post(f"{V1}/q.sales.DailySales", json=body, headers=headers)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, r.text
    other = token(vvm, "bob", BOB_PROFILE)  # another subject has a bucket of its own (and no grant)
    assert (await client.post(f"{V1}/q.sales.DailySales", json=body, headers=other)).status_code == 403
    clock.advance(61)
    headers = token(vvm, "alice", ALICE_PROFILE)
    r = await client.post(f"{V1}/q.sales.DailySales", json=body, headers=headers)
    assert r.status_code != 429, r.text
