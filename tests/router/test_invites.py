"""Invitations over HTTP on the restaurant sample, after Voedger's invite scenarios
(``pkg/sys/it/impl_invite_test.go``, ``impl_invites_feature_test.go``): the owner invites by
e-mail (mailed through an in-memory outbox), the invitee joins with the mailed code and gets the
invite's roles in the workspace through a ``sys.Subject`` and a ``sys.JoinedWorkspace`` in their
profile; roles change, the owner cancels, the member leaves, and every misuse is a 4xx."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router.test_identity import APP, RESTAURANT, V2, sign_up_and_in
from tests.support import until
from voedger.apps.sys.invites import InviteState, login_hash64
from voedger.apps.sys.mail import Outbox
from voedger.clock import ManualClock
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs import wsid as ws
from voedger.structs.pending import Pending
from voedger.structs.records import get_record
from voedger.structs.views import get_row
from voedger.vvm.server import VVM, ServerConfig

TEMPLATE = "text:${VerificationCode};${InviteID};${WSID};${WSName};${Email}"
HOUR_MS = 3_600_000


@dataclass
class Env:
    client: httpx.AsyncClient
    outbox: Outbox
    clock: ManualClock
    owner: dict[str, str]
    ws: int
    ws_url: str
    vvm: VVM
    owner_profile: int


@contextlib.asynccontextmanager
async def open_env(tmp_path: Path) -> AsyncIterator[Env]:
    """A server with the restaurant sample, an outbox for its mail, its owner and workspace \"acme\"."""
    outbox = Outbox()
    clock = ManualClock(1_790_000_000)
    config = ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, RESTAURANT)], clock=clock, mailer=outbox)
    vvm = VVM(config)
    await vvm.start()
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        owner, profile = await sign_up_and_in(c, "owner@example.com", "pa55word!")
        args = {
            "WSName": "acme",
            "WSKind": "restaurant.RestaurantDescriptor",
            "WSKindInitializationData": '{"Name":"Acme","Currency":"EUR"}',
        }
        r = await c.post(
            f"{V2}/workspaces/{profile}/commands/sys.InitChildWorkspace", json={"args": args}, headers=owner
        )
        assert r.status_code == 200, r.text

        async def child() -> int | None:
            r = await c.get(
                f"{V2}/workspaces/{profile}/queries/sys.QueryChildWorkspaceByName",
                params={"args": '{"WSName":"acme"}'},
                headers=owner,
            )
            row = r.json()["results"][0]
            return row.get("WSID") or None

        ws = await until(child)
        yield Env(c, outbox, clock, owner, ws, f"{V2}/workspaces/{ws}", vvm, profile)
    await vvm.stop()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with open_env(tmp_path) as e:
        yield e


def now_ms(env: Env) -> int:
    return int(env.clock.now() * 1000)


async def command(env: Env, name: str, args: dict[str, Any], auth: dict[str, str] | None = None) -> httpx.Response:
    return await env.client.post(f"{env.ws_url}/commands/sys.{name}", json={"args": args}, headers=auth or env.owner)


async def invite_doc(env: Env, invite_id: int) -> dict[str, Any]:
    r = await env.client.get(f"{env.ws_url}/docs/sys.Invite/{invite_id}", headers=env.owner)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def wait_state(env: Env, invite_id: int, state: InviteState) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        doc = await invite_doc(env, invite_id)
        return doc if doc["State"] == state else None

    return await until(probe)  # type: ignore[no-any-return]


async def invite(
    env: Env, email: str, roles: str = "staff.Waiter", expire: int | None = None, expect_new: bool = True
) -> tuple[int, str]:
    """Invite ``email``; the invite's ID and the code mailed."""
    before = len(env.outbox.messages)
    args = {
        "Email": email,
        "Roles": roles,
        "ExpireDatetime": now_ms(env) + HOUR_MS if expire is None else expire,
        "EmailTemplate": TEMPLATE,
        "EmailSubject": "you are invited",
    }
    r = await command(env, "InitiateInvitationByEMail", args)
    assert r.status_code == 200, r.text
    new_ids = r.json().get("newIDs") or {}
    if expect_new:
        invite_id = new_ids["1"]
    else:
        assert not new_ids
        row = await collection_invite(env, email)
        invite_id = row
    doc = await wait_state(env, invite_id, InviteState.Invited)
    assert len(env.outbox.messages) == before + 1
    mail = env.outbox.messages[-1]
    assert mail.to == email and mail.subject == "you are invited"
    fields = mail.body.split(";")
    assert fields[1:] == [str(invite_id), str(env.ws), "acme", email]
    assert fields[0] == doc["VerificationCode"] and len(fields[0]) == 6 and fields[0].isdigit()
    return invite_id, fields[0]


async def collection_invite(env: Env, email: str) -> int:
    r = await env.client.get(f"{env.ws_url}/cdocs/sys.Invite", headers=env.owner)
    assert r.status_code == 200, r.text
    ids = [d["sys.ID"] for d in r.json()["results"] if d["Email"] == email]
    assert len(ids) == 1
    return int(ids[0])


async def subjects(env: Env, login: str) -> list[dict[str, Any]]:
    r = await env.client.get(f"{env.ws_url}/cdocs/sys.Subject", headers=env.owner)
    assert r.status_code == 200, r.text
    return [d for d in r.json()["results"] if d["Login"] == login]


async def joined(env: Env, auth: dict[str, str], profile: int) -> dict[str, Any] | None:
    r = await env.client.get(f"{V2}/workspaces/{profile}/cdocs/sys.JoinedWorkspace", headers=auth)
    assert r.status_code == 200, r.text
    rows = [d for d in r.json()["results"] if d["InvitingWorkspaceWSID"] == env.ws]
    assert len(rows) <= 1
    return rows[0] if rows else None


async def can_read_locations(env: Env, auth: dict[str, str]) -> int:
    r = await env.client.get(f"{env.ws_url}/cdocs/service.Location", headers=auth)
    return r.status_code


async def join(env: Env, invite_id: int, code: str, auth: dict[str, str]) -> httpx.Response:
    return await command(env, "InitiateJoinWorkspace", {"InviteID": invite_id, "VerificationCode": code}, auth)


async def test_invite_join_update_roles_leave_and_come_back(env: Env) -> None:
    alice, alice_profile = await sign_up_and_in(env.client, "alice@example.com", "alice-pa55")
    assert await can_read_locations(env, alice) == 403

    invite_id, code = await invite(env, "alice@example.com")
    doc = await invite_doc(env, invite_id)
    assert doc["Login"] == doc["Email"] == "alice@example.com"
    assert doc["Roles"] == "staff.Waiter" and doc["Version"] == 1 and not doc.get("ActualLogin")

    r = await join(env, invite_id, code, alice)
    assert r.status_code == 200, r.text
    doc = await wait_state(env, invite_id, InviteState.Joined)
    assert doc["ActualLogin"] == "alice@example.com"
    assert doc["InviteeProfileWSID"] == alice_profile and doc["SubjectKind"] == 1
    [subject] = await subjects(env, "alice@example.com")
    assert doc["SubjectID"] == subject["sys.ID"]
    assert subject["Roles"] == "staff.Waiter" and subject["InviteEmail"] == "alice@example.com"
    assert subject["ProfileWSID"] == alice_profile and subject["sys.IsActive"] is True
    mine = await joined(env, alice, alice_profile)
    assert mine is not None and mine["Roles"] == "staff.Waiter" and mine["WSName"] == "acme"
    # Now a waiter: she reads locations, but may not manage staff.
    assert await can_read_locations(env, alice) == 200
    r = await env.client.post(
        f"{env.ws_url}/docs/staff.Employee", json={"Name": "X", "Login": "x", "Role": "staff.Waiter"}, headers=alice
    )
    assert r.status_code == 403, r.text
    # The subjects index knows her, keyed as Voedger keys it.
    r = await env.client.get(
        f"{env.ws_url}/views/sys.ViewSubjectsIdx",
        params={"where": json.dumps({"LoginHash": login_hash64("alice@example.com"), "Login": "alice@example.com"})},
        headers=env.owner,
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["SubjectID"] == subject["sys.ID"]

    # The owner makes her a manager: the Subject, the joined workspace and the invite follow; she is mailed.
    r = await command(
        env,
        "InitiateUpdateInviteRoles",
        {
            "InviteID": invite_id,
            "Roles": "staff.Manager",
            "EmailTemplate": "text:now ${Roles}",
            "EmailSubject": "roles",
        },
    )
    assert r.status_code == 200, r.text

    async def roles_updated() -> bool | None:
        mail = env.outbox.last_to("alice@example.com")
        return True if mail is not None and mail.subject == "roles" else None

    await until(roles_updated)
    assert env.outbox.messages[-1].body == "now staff.Manager"
    assert (await invite_doc(env, invite_id))["Roles"] == "staff.Manager"
    [subject] = await subjects(env, "alice@example.com")
    assert subject["Roles"] == "staff.Manager"
    mine = await joined(env, alice, alice_profile)
    assert mine is not None and mine["Roles"] == "staff.Manager"
    r = await env.client.get(f"{env.ws_url}/cdocs/staff.Employee", headers=alice)
    assert r.status_code == 200, r.text  # managers read employees

    # She leaves: no roles here any more, her joined workspace goes inactive.
    r = await env.client.post(f"{env.ws_url}/commands/sys.InitiateLeaveWorkspace", json={}, headers=alice)
    assert r.status_code == 200, r.text
    await wait_state(env, invite_id, InviteState.Left)
    [subject] = await subjects(env, "alice@example.com")
    assert subject["sys.IsActive"] is False
    mine = await joined(env, alice, alice_profile)
    assert mine is not None and mine["sys.IsActive"] is False
    assert await can_read_locations(env, alice) == 403
    r = await env.client.post(f"{env.ws_url}/commands/sys.InitiateLeaveWorkspace", json={}, headers=alice)
    assert r.status_code == 400 and r.json()["message"] == "invite state invalid", r.text

    # Invited again, she comes back with the same Subject, reactivated, and the new roles.
    same_id, code = await invite(env, "alice@example.com", roles="staff.Manager", expect_new=False)
    assert same_id == invite_id
    r = await join(env, invite_id, code, alice)
    assert r.status_code == 200, r.text
    await wait_state(env, invite_id, InviteState.Joined)
    [again] = await subjects(env, "alice@example.com")
    assert again["sys.ID"] == subject["sys.ID"] and again["sys.IsActive"] is True
    assert again["Roles"] == "staff.Manager"
    mine = await joined(env, alice, alice_profile)
    assert mine is not None and mine["sys.IsActive"] is True and mine["Roles"] == "staff.Manager"
    assert await can_read_locations(env, alice) == 200

    # An active member cannot be invited again.
    args = {
        "Email": "alice@example.com",
        "Roles": "staff.Waiter",
        "ExpireDatetime": now_ms(env) + HOUR_MS,
        "EmailTemplate": TEMPLATE,
        "EmailSubject": "s",
    }
    r = await command(env, "InitiateInvitationByEMail", args)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "re-invite not allowed for state State_Joined"

    # The owner removes her.
    r = await command(env, "InitiateCancelAcceptedInvite", {"InviteID": invite_id})
    assert r.status_code == 200, r.text
    await wait_state(env, invite_id, InviteState.Cancelled)
    assert await can_read_locations(env, alice) == 403
    mine = await joined(env, alice, alice_profile)
    assert mine is not None and mine["sys.IsActive"] is False


async def test_resend_and_cancel_pending_invitation(env: Env) -> None:
    bob, _ = await sign_up_and_in(env.client, "bob@example.com", "bob-pa55")
    invite_id, first = await invite(env, "bob@example.com")
    # Resent with other roles: a new code, the same invite, the new roles.
    same, second = await invite(env, "bob@example.com", roles="staff.Manager", expect_new=False)
    assert same == invite_id
    assert (await invite_doc(env, invite_id))["Roles"] == "staff.Manager"
    assert first != second or len(env.outbox.messages) == 2  # a fresh random code (may collide once in 10^6)
    r = await join(env, invite_id, first if first != second else "bad", bob)
    assert r.status_code == 400 and r.json()["message"] == "invite verification code invalid", r.text

    r = await command(env, "CancelSentInvite", {"InviteID": invite_id})
    assert r.status_code == 200, r.text
    await wait_state(env, invite_id, InviteState.Cancelled)
    r = await join(env, invite_id, second, bob)
    assert r.status_code == 400 and r.json()["message"] == "invite state invalid", r.text
    assert await subjects(env, "bob@example.com") == []
    r = await command(env, "CancelSentInvite", {"InviteID": invite_id})
    assert r.status_code == 400 and r.json()["message"] == "invite state invalid", r.text
    # Invited again after the cancel: pending once more.
    await invite(env, "bob@example.com", expect_new=False)


async def test_joining_is_refused_when_it_should_be(env: Env) -> None:
    carol, _ = await sign_up_and_in(env.client, "carol@example.com", "carol-pa55")
    dave, _ = await sign_up_and_in(env.client, "dave@example.com", "dave-pa55")

    invite_id, code = await invite(env, "carol@example.com")
    r = await join(env, invite_id, code, dave)  # sent to somebody else
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "invitation was sent to carol@example.com but current login is dave@example.com"

    expired_id, expired_code = await invite(env, "dave@example.com", expire=now_ms(env) - 1)
    r = await join(env, expired_id, expired_code, dave)
    assert r.status_code == 400 and r.json()["message"] == "invite expired", r.text

    r = await env.client.post(f"{env.ws_url}/commands/sys.InitiateLeaveWorkspace", json={}, headers=carol)
    assert r.status_code == 400 and r.json()["message"] == "invite state invalid", r.text  # not a member

    # Invite commands are the owner's; joining is for an authenticated login only.
    r = await command(env, "CancelSentInvite", {"InviteID": invite_id}, carol)
    assert r.status_code == 403, r.text
    r = await env.client.post(
        f"{env.ws_url}/commands/sys.InitiateJoinWorkspace",
        json={"args": {"InviteID": invite_id, "VerificationCode": code}},
    )
    assert r.status_code == 403, r.text
    assert await subjects(env, "carol@example.com") == []

    # A record that is not there: the reference check answers first, as in Voedger.
    r = await command(env, "CancelSentInvite", {"InviteID": 65536 * 1000})
    assert r.status_code == 400, r.text
    # A record that is not an invite.
    r = await env.client.post(
        f"{env.ws_url}/docs/service.Location", json={"Name": "C", "TimeZone": "UTC"}, headers=env.owner
    )
    assert r.status_code == 201, r.text
    r = await command(env, "CancelSentInvite", {"InviteID": r.json()["newIDs"]["1"]})
    assert r.status_code == 400, r.text
    r = await command(env, "InitiateCancelAcceptedInvite", {"InviteID": invite_id})  # not joined yet
    assert r.status_code == 400 and r.json()["message"] == "invite state invalid", r.text


@pytest.mark.parametrize(
    ("email", "roles", "template", "message"),
    [
        ("a", "staff.Waiter", TEMPLATE, "email validation failed: mail: missing '@' or angle-addr"),
        ("bad@", "staff.Waiter", TEMPLATE, "email validation failed: mail: no domain in addr-spec"),
        ("@bad", "staff.Waiter", TEMPLATE, "email validation failed: mail: no addr-spec"),
        ("e@example.com", "", TEMPLATE, ""),  # the required field's own check answers first
        ("e@example.com", " ", TEMPLATE, "roles must not be empty"),
        ("e@example.com", "not-a-qname", TEMPLATE, "invalid role: not-a-qname: "),
        ("e@example.com", "staff.Waiter,", TEMPLATE, "roles must not be empty"),
        (
            "e@example.com",
            "sys.WorkspaceOwner",
            TEMPLATE,
            "system roles cannot be assigned via invite: sys.WorkspaceOwner",
        ),
        ("e@example.com", "staff.Nobody", TEMPLATE, "role not found in workspace: staff.Nobody"),
        ("e@example.com", "staff.Waiter,staff.Waiter", TEMPLATE, "duplicate role: staff.Waiter"),
        ("e@example.com", "staff.Employee", TEMPLATE, "role not found in workspace: staff.Employee"),
        (
            "e@example.com",
            "staff.Waiter",
            "${VerificationCode}",
            "invite template invalid, it must be prefixed with 'text:' or 'resource:'",
        ),
    ],
)
async def test_invalid_invitations(env: Env, email: str, roles: str, template: str, message: str) -> None:
    args = {
        "Email": email,
        "Roles": roles,
        "ExpireDatetime": now_ms(env) + HOUR_MS,
        "EmailTemplate": template,
        "EmailSubject": "s",
    }
    r = await command(env, "InitiateInvitationByEMail", args)
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith(message) and (
        message.endswith(": ") or r.json()["message"] == message or not message
    )
    assert env.outbox.messages[-1:] == [] or env.outbox.messages[-1].subject != "s"
    r = await command(env, "InitiateInvitationByEMail", {**args, "Roles": "bad role"} if roles else args)
    assert r.status_code == 400, r.text


async def test_update_roles_is_checked(env: Env) -> None:
    erin, _ = await sign_up_and_in(env.client, "erin@example.com", "erin-pa55")
    invite_id, code = await invite(env, "erin@example.com")
    args = {"InviteID": invite_id, "Roles": "staff.Manager", "EmailTemplate": "text:x", "EmailSubject": "s"}
    r = await command(env, "InitiateUpdateInviteRoles", args)  # not joined yet
    assert r.status_code == 400 and r.json()["message"] == "invite state invalid", r.text
    assert (await join(env, invite_id, code, erin)).status_code == 200
    await wait_state(env, invite_id, InviteState.Joined)
    r = await command(env, "InitiateUpdateInviteRoles", {**args, "Roles": "sys.ProfileOwner"})
    assert (
        r.status_code == 400 and r.json()["message"] == "system roles cannot be assigned via invite: sys.ProfileOwner"
    )
    r = await command(env, "InitiateUpdateInviteRoles", {**args, "EmailTemplate": "x"})
    assert r.status_code == 400 and r.json()["message"].startswith("invite template invalid")
    [subject] = await subjects(env, "erin@example.com")
    assert subject["Roles"] == "staff.Waiter"


async def test_joined_workspace_commands_in_a_profile(env: Env) -> None:
    """The profile side, as the projector calls it; the owner of the profile may call them too."""
    frank, profile = await sign_up_and_in(env.client, "frank@example.com", "frank-pa55")
    url = f"{V2}/workspaces/{profile}/commands/sys."
    r = await env.client.post(
        url + "UpdateJoinedWorkspaceRoles", json={"args": {"Roles": "x.Y", "InvitingWorkspaceWSID": 42}}, headers=frank
    )
    assert r.status_code == 404, r.text  # nothing joined from workspace 42
    args = {"Roles": "a.B", "InvitingWorkspaceWSID": 42, "WSName": "far"}
    r = await env.client.post(url + "CreateJoinedWorkspace", json={"args": args}, headers=frank)
    assert r.status_code == 200, r.text
    first = r.json()["newIDs"]["1"]
    r = await env.client.post(
        url + "DeactivateJoinedWorkspace", json={"args": {"InvitingWorkspaceWSID": 42}}, headers=frank
    )
    assert r.status_code == 200, r.text
    r = await env.client.post(url + "CreateJoinedWorkspace", json={"args": {**args, "Roles": "c.D"}}, headers=frank)
    assert r.status_code == 200, r.text
    assert not r.json().get("newIDs")  # the same record, updated and active again
    r = await env.client.get(f"{V2}/workspaces/{profile}/docs/sys.JoinedWorkspace/{first}", headers=frank)
    assert r.status_code == 200, r.text
    assert r.json()["Roles"] == "c.D" and r.json()["sys.IsActive"] is True


def test_login_hash_is_voedgers() -> None:
    # FNV-1 64 of "" is the offset basis; as a signed int64.
    assert login_hash64("") == 0xCBF29CE484222325 - (1 << 64)
    assert login_hash64("a") == 0xAF63BD4C8601B7BE - (1 << 64)


async def test_deactivating_the_workspace_tells_members_and_the_wsid_keeper(env: Env) -> None:
    gina, gina_profile = await sign_up_and_in(env.client, "gina@example.com", "gina-pa55")
    invite_id, code = await invite(env, "gina@example.com")
    assert (await join(env, invite_id, code, gina)).status_code == 200
    await wait_state(env, invite_id, InviteState.Joined)
    mine = await joined(env, gina, gina_profile)
    assert mine is not None and mine["sys.IsActive"] is True
    runtime = env.vvm.apps[APP].runtime
    cluster = ws.cluster_id(env.ws)
    app_ws = ws.pseudo_to_app_wsid(
        ws.pseudo_wsid("acme", cluster, owner_wsid=env.owner_profile), runtime.num_app_workspaces, cluster
    )

    async def workspace_id_record() -> dict[str, Any]:
        reader = Pending(runtime.storage)
        key = {"OwnerWSID": env.owner_profile, "WSName": "acme"}
        row = await get_row(reader, runtime.appdef.view("sys.WorkspaceIDIdx"), app_ws, key)
        assert row is not None
        rec = await get_record(reader, app_ws, int(row["IDOfCDocWorkspaceID"]))
        assert rec is not None and rec["WSID"] == env.ws
        return dict(rec)

    assert (await workspace_id_record()).get("sys.IsActive", True) is True

    r = await env.client.post(f"{env.ws_url}/commands/sys.InitiateDeactivateWorkspace", json={}, headers=env.owner)
    assert r.status_code == 200, r.text

    async def member_told() -> bool | None:
        j = await joined(env, gina, gina_profile)
        return True if j is not None and j["sys.IsActive"] is False else None

    await until(member_told)

    async def keeper_told() -> bool | None:
        return True if (await workspace_id_record()).get("sys.IsActive") is False else None

    await until(keeper_told)
    r = await env.client.get(f"{env.ws_url}/cdocs/service.Location", headers=env.owner)
    assert r.status_code == 410, r.text
    # Told again (a replay): nothing changes, no error.
    r = await env.client.post(
        f"{V2}/workspaces/{gina_profile}/commands/sys.OnJoinedWorkspaceDeactivated",
        json={"args": {"InvitedToWSID": env.ws}},
        headers=gina,
    )
    assert r.status_code == 200, r.text


async def test_enrich_principal_token_for_child_workspaces(env: Env) -> None:
    """A workspace made from the restaurant (its owner is the restaurant, not the user): the
    user's own token does nothing there, the token enriched in the restaurant does."""
    args = {
        "WSName": "branch",
        "WSKind": "restaurant.RestaurantDescriptor",
        "WSKindInitializationData": '{"Name":"Branch","Currency":"EUR"}',
    }
    r = await command(env, "InitChildWorkspace", args)
    assert r.status_code == 200, r.text

    async def child() -> int | None:
        r = await env.client.get(
            f"{env.ws_url}/queries/sys.QueryChildWorkspaceByName",
            params={"args": '{"WSName":"branch"}'},
            headers=env.owner,
        )
        assert r.status_code == 200, r.text
        return r.json()["results"][0].get("WSID") or None

    branch = await until(child)
    locations = f"{V2}/workspaces/{branch}/cdocs/service.Location"
    assert (await env.client.get(locations, headers=env.owner)).status_code == 403

    r = await env.client.get(
        f"{env.ws_url}/queries/sys.EnrichPrincipalToken", params={"args": '{"Login":"x"}'}, headers=env.owner
    )
    assert r.status_code == 200, r.text
    enriched = {"Authorization": f"Bearer {r.json()['results'][0]['EnrichedToken']}"}
    assert (await env.client.get(locations, headers=enriched)).status_code == 200
    # Still the same login elsewhere, and it works where the plain token did.
    assert (await env.client.get(f"{env.ws_url}/cdocs/service.Location", headers=enriched)).status_code == 200
    # A member without the owner's rights may not enrich here.
    hal, _ = await sign_up_and_in(env.client, "hal@example.com", "hal-pa55word")
    r = await env.client.get(
        f"{env.ws_url}/queries/sys.EnrichPrincipalToken", params={"args": '{"Login":"x"}'}, headers=hal
    )
    assert r.status_code == 403, r.text


async def test_joining_over_a_membership_no_invite_controls(env: Env) -> None:
    """A Subject the owner made by hand is a membership no invite controls: accepting an invite
    over it is refused with Voedger's 409, and the membership stays as it was."""
    kim, kim_profile = await sign_up_and_in(env.client, "kim@example.com", "kim-pa55word")
    subject = {"Login": "kim@example.com", "SubjectKind": 1, "Roles": "staff.Waiter", "ProfileWSID": kim_profile}
    r = await env.client.post(f"{env.ws_url}/docs/sys.Subject", json=subject, headers=env.owner)
    assert r.status_code == 201, r.text
    invite_id, code = await invite(env, "kim@example.com", roles="staff.Manager")
    r = await join(env, invite_id, code, kim)
    assert r.status_code == 409, r.text
    assert r.json()["message"] == (
        'A workspace membership is already active for canonical login "kim@example.com". The existing accepted '
        "invitation must be cancelled manually before another invitation can be accepted."
    )
    [kept] = await subjects(env, "kim@example.com")
    assert kept["Roles"] == "staff.Waiter" and kept["sys.IsActive"] is True
    assert (await invite_doc(env, invite_id))["State"] == InviteState.Invited
    # The owner deactivates it by hand; now the invite may be accepted, and the same Subject returns.
    r = await env.client.patch(
        f"{env.ws_url}/docs/sys.Subject/{kept['sys.ID']}", json={"sys.IsActive": False}, headers=env.owner
    )
    assert r.status_code == 200, r.text
    r = await join(env, invite_id, code, kim)
    assert r.status_code == 200, r.text
    await wait_state(env, invite_id, InviteState.Joined)
    [back] = await subjects(env, "kim@example.com")
    assert back["sys.ID"] == kept["sys.ID"] and back["sys.IsActive"] is True and back["Roles"] == "staff.Manager"
    assert back["InviteEmail"] == "kim@example.com"
