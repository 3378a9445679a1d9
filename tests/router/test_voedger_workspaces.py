"""Workspaces over API v1 with authentication on, after Voedger's ``pkg/sys/it`` scenarios
``impl_workspace_test.go``, ``impl_childworkspace_test.go`` and ``impl_deactivateworkspace_test.go``:
a user signs up in the shop application and creates workspaces from the profile and from a
workspace, reads their descriptors, reconfigures them, meets the errors Voedger answers (a taken
name, a wrong kind, malformed initialisation data, a workspace not initialised, a stranger, a token
of another application), works through a ``sys.Subject``, a role token and an API token, and
deactivates a workspace (410 for users, the System still works, 409 on a second deactivation).

Already covered elsewhere, so not repeated here: the workspace kind's template records and BLOBs
(``test_workspaces.py``: ``test_workspace_from_template``, ``..._with_blobs``); a missing
``WSClusterID`` means the current cluster (``test_create_child_workspace_and_work_in_it``); an
unknown ``WSClusterID`` (Voedger's ``TestForeignAuthorization`` passes 42 and gets cluster 1; we
answer 400, on purpose: docs/design.md, "Federation", ``test_unknown_cluster_is_refused_clearly``);
the template validation errors (``test_broken_or_unknown_template_is_reported_to_the_owner``);
the enriched principal token (``test_invites.py``:
``test_enrich_principal_token_for_child_workspaces``); the member's ``sys.JoinedWorkspace`` going
inactive (``test_deactivating_the_workspace_tells_members_and_the_wsid_keeper``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router.test_identity import APP as RESTAURANT_APP
from tests.router.test_identity import sign_up_and_in
from tests.router.test_invites import Env as RestaurantEnv
from tests.router.test_invites import invite, join, open_env, wait_state
from tests.router.test_voedger_answers import error
from tests.support import until, v2_error_of
from voedger.appdef import QName
from voedger.apps.sys.invites import InviteState
from voedger.auth.tokens import PrincipalPayload, RoleInWorkspace
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs import wsid as ws
from voedger.vvm.server import VVM, ServerConfig

APP = "test/shop"
SHOP = Path(__file__).parent / "shop"
CHILD_FIELDS = ["WSName", "WSKind", "WSKindInitializationData", "TemplateName", "TemplateParams", "WSID", "WSError"]
STATUS_INACTIVE = 2  # sys.WorkspaceDescriptor.Status once deactivated (Voedger's WorkspaceStatus_Inactive)


@dataclass
class Env:
    vvm: VVM
    client: httpx.AsyncClient
    owner: dict[str, str]
    profile: int

    def system(self) -> dict[str, str]:
        assert self.vvm.tokens is not None
        return {"Authorization": f"Bearer {self.vvm.tokens.issue_system(APP)}"}

    async def post(self, wsid: int, func: str, body: dict[str, Any], auth: dict[str, str] | None) -> httpx.Response:
        return await self.client.post(f"/api/{APP}/{wsid}/{func}", json=body, headers=auth or {})


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, SHOP)]))
    await vvm.start()
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        owner, profile = await sign_up(client, "ann")
        yield Env(vvm, client, owner, profile)
    await vvm.stop()


async def sign_up(client: httpx.AsyncClient, login: str) -> tuple[dict[str, str], int]:
    """A new login of the shop application, signed in once its profile is ready."""
    v2 = f"/api/v2/apps/{APP}"
    r = await client.post(f"{v2}/users", json={"login": login, "password": "pa55word!"})
    assert r.status_code == 201, r.text

    async def signed_in() -> dict[str, Any] | None:
        r = await client.post(f"{v2}/auth/login", json={"login": login, "password": "pa55word!"})
        return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]

    answer = await until(signed_in)
    return {"Authorization": f"Bearer {answer['principalToken']}"}, int(answer["profileWSID"])


def init_args(name: str, **more: Any) -> dict[str, Any]:
    return {"args": {"WSName": name, "WSKind": "shop.ShopDesc", **more}}


async def child_row(env: Env, parent: int, name: str, auth: dict[str, str]) -> httpx.Response:
    body = {"args": {"WSName": name}, "elements": [{"fields": CHILD_FIELDS}]}
    return await env.post(parent, "q.sys.QueryChildWorkspaceByName", body, auth)


async def wait_child(env: Env, parent: int, name: str, auth: dict[str, str]) -> dict[str, Any]:
    """The child's fields once its creation has ended, with a WSID or with an error."""

    async def probe() -> dict[str, Any] | None:
        r = await child_row(env, parent, name, auth)
        assert r.status_code == 200, r.text
        row = dict(zip(CHILD_FIELDS, r.json()["sections"][0]["elements"][0][0][0], strict=True))
        return row if row["WSID"] or row["WSError"] else None

    return await until(probe)  # type: ignore[no-any-return]


async def make_child(env: Env, parent: int, name: str, auth: dict[str, str], **args: Any) -> int:
    r = await env.post(parent, "c.sys.InitChildWorkspace", init_args(name, **args), auth)
    assert r.status_code == 200, r.text
    row = await wait_child(env, parent, name, auth)
    assert row["WSError"] == "", row
    return int(row["WSID"])


def rows(r: httpx.Response) -> list[list[Any]]:
    assert r.status_code == 200, r.text
    sections = r.json().get("sections") or [{"elements": []}]
    return [e[0][0] for e in sections[0]["elements"]]


async def collection(env: Env, wsid: int, schema: str, fields: list[str], auth: dict[str, str]) -> httpx.Response:
    return await env.post(
        wsid, "q.sys.Collection", {"args": {"Schema": schema}, "elements": [{"fields": fields}]}, auth
    )


def new_item(name: str = "tea") -> dict[str, Any]:
    return {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": name}}]}


# --- impl_workspace_test.go ---------------------------------------------------------------------


async def test_a_workspace_made_from_the_profile(env: Env) -> None:
    """TestBasicUsage_Workspace: 404 before, the child's fields after, its kind's descriptor
    (as the System reads it) reconfigured by the owner, the owner's list, 409 and 400."""
    r = await child_row(env, env.profile, "corner", env.owner)
    error(r, 404, "child workspace corner not found")

    args = {"WSKindInitializationData": '{"Name": "Corner"}', "TemplateName": "starter", "WSClusterID": 1}
    r = await env.post(env.profile, "c.sys.InitChildWorkspace", init_args("corner", **args), env.owner)
    assert r.status_code == 200, r.text
    child = await wait_child(env, env.profile, "corner", env.owner)
    wsid = child.pop("WSID")
    assert child == {
        "WSName": "corner",
        "WSKind": "shop.ShopDesc",
        "WSKindInitializationData": '{"Name": "Corner"}',
        "TemplateName": "starter",
        "TemplateParams": "",
        "WSError": "",
    }
    assert ws.cluster_id(wsid) == 1 and ws.base_wsid(wsid) >= ws.FIRST_BASE_USER_WSID

    # The kind's descriptor is a singleton made from the initialisation data.
    [[desc_id, name]] = rows(await collection(env, wsid, "shop.ShopDesc", ["sys.ID", "Name"], env.system()))
    assert name == "Corner"
    r = await env.post(wsid, "c.sys.CUD", {"cuds": [{"sys.ID": desc_id, "fields": {"Name": "Corner 2"}}]}, env.owner)
    assert r.status_code == 200, r.text
    assert rows(await collection(env, wsid, "shop.ShopDesc", ["sys.ID", "Name"], env.system())) == [
        [desc_id, "Corner 2"]
    ]

    # The name is taken now, whatever the other arguments.
    retry = {"WSKindInitializationData": '{"Name": "Other"}', "TemplateName": "nope", "WSClusterID": 1}
    r = await env.post(env.profile, "c.sys.InitChildWorkspace", init_args("corner", **retry), env.owner)
    error(r, 409, "child workspace with name corner already exists")

    fields = ["WSName", "WSKind", "WSID", "WSError"]
    listed = rows(await collection(env, env.profile, "sys.ChildWorkspace", fields, env.owner))
    assert listed == [["corner", "shop.ShopDesc", wsid, ""]]

    bad_kind = {"args": {"WSName": "items", "WSKind": "shop.Item", "WSClusterID": 1}}
    r = await env.post(env.profile, "c.sys.InitChildWorkspace", bad_kind, env.owner)
    error(r, 400, "provided WSKind shop.Item is not a QName of a workspace descriptor")
    # A taken name is told first, as Voedger checks it before the kind.
    r = await env.post(
        env.profile, "c.sys.InitChildWorkspace", {"args": {**bad_kind["args"], "WSName": "corner"}}, env.owner
    )
    error(r, 409, "child workspace with name corner already exists")


async def test_workspace_authorization(env: Env) -> None:
    """TestWorkspaceAuthorization: a workspace nobody initialised, a stranger's token, a token
    of another application."""
    wsid = await make_child(env, env.profile, "mine", env.owner)
    cud = {"cuds": [{"sys.ID": 1, "fields": {"sys.QName": "shop.ShopDesc"}}]}

    not_made = ws.new_wsid(1, ws.FIRST_BASE_USER_WSID + 987_654)
    error(await env.post(not_made, "c.sys.CUD", cud, env.owner), 403, "workspace is not initialized")
    # Voedger's scenario posts to WSID 1: a pseudo WSID, which both map to an application
    # workspace, where the user may not write either.
    error(await env.post(1, "c.sys.CUD", cud, env.owner), 403)

    stranger, _ = await sign_up(env.client, "bob")
    error(await env.post(wsid, "c.sys.CUD", cud, stranger), 403)

    assert env.vvm.tokens is not None
    elsewhere = env.vvm.tokens.issue("test/other", PrincipalPayload(login="ann", profile_wsid=env.profile))
    error(await env.post(wsid, "c.sys.CUD", cud, {"Authorization": f"Bearer {elsewhere}"}), 401)


async def test_the_owner_may_not_edit_a_child_workspace_record(env: Env) -> None:
    """TestDenyCUDCDocOwnerModification: sys.ChildWorkspace is the platform's to write."""
    await make_child(env, env.profile, "mine", env.owner)
    [[record_id]] = rows(await collection(env, env.profile, "sys.ChildWorkspace", ["sys.ID"], env.owner))
    body = {"cuds": [{"sys.ID": record_id, "fields": {"WSName": "new name"}}]}
    error(await env.post(env.profile, "c.sys.CUD", body, env.owner), 403, "operation forbidden")


async def test_a_workspace_name_with_escapes(env: Env) -> None:
    """TestWSNameEscaping: a backslash in the name and in the initialisation data survive."""
    name = "\\f;jf;GJ"
    data = json.dumps({"Name": name})
    wsid = await make_child(env, env.profile, name, env.owner, WSKindInitializationData=data, WSClusterID=1)
    assert rows(await collection(env, wsid, "shop.ShopDesc", ["Name"], env.system())) == [[name]]
    assert (await wait_child(env, env.profile, name, env.owner))["WSKindInitializationData"] == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{ wrong json }", "failed to unmarshal workspace initialization data: "),
        ('{"Nope": 1}', "failed to validate workspace initialization data: "),
    ],
)
async def test_initialisation_data_errors_reach_the_owner(env: Env, data: str, message: str) -> None:
    """TestWorkspaceInitError: the command succeeds, the child then reports Voedger's error."""
    r = await env.post(
        env.profile, "c.sys.InitChildWorkspace", init_args("bad", WSKindInitializationData=data), env.owner
    )
    assert r.status_code == 200, r.text
    child = await wait_child(env, env.profile, "bad", env.owner)
    assert child["WSID"] == 0 and child["WSError"].startswith(message), child


# --- impl_childworkspace_test.go, and TestCreateChildOfChildWorkspace ---------------------------


async def test_child_workspaces_of_a_workspace(env: Env) -> None:
    """TestBasicUsage_ChildWorkspaces and TestCreateChildOfChildWorkspace: a workspace makes a
    child; its owner is that workspace, so the user works there with a token that gives them
    WorkspaceOwner in the parent (or an API token bound to the child)."""
    parent = await make_child(env, env.profile, "parent", env.owner)
    error(await child_row(env, parent, "kid", env.owner), 404, "child workspace kid not found")

    args = {"WSKindInitializationData": '{"Name": "Kid"}', "TemplateName": "starter", "WSClusterID": 1}
    r = await env.post(parent, "c.sys.InitChildWorkspace", init_args("kid", **args), env.owner)
    assert r.status_code == 200, r.text
    child = await wait_child(env, parent, "kid", env.owner)
    kid = child.pop("WSID")
    assert child == {
        "WSName": "kid",
        "WSKind": "shop.ShopDesc",
        "WSKindInitializationData": '{"Name": "Kid"}',
        "TemplateName": "starter",
        "TemplateParams": "",
        "WSError": "",
    }
    assert ws.cluster_id(kid) == 1
    r = await env.post(parent, "c.sys.InitChildWorkspace", init_args("kid", **args), env.owner)
    error(r, 409, "child workspace with name kid already exists")
    listed = rows(
        await collection(env, parent, "sys.ChildWorkspace", ["WSName", "WSKind", "WSID", "WSError"], env.owner)
    )
    assert listed == [["kid", "shop.ShopDesc", kid, ""]]

    # The user's own token is no owner's in the grandchild.
    error(await env.post(kid, "c.sys.CUD", new_item(), env.owner), 403)
    assert env.vvm.tokens is not None
    owner_of_parent = PrincipalPayload(
        login="ann", profile_wsid=env.profile, roles=(RoleInWorkspace(parent, QName("sys", "WorkspaceOwner")),)
    )
    token = env.vvm.tokens.issue(APP, owner_of_parent)
    r = await env.post(kid, "c.sys.CUD", new_item(), {"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text

    # TestForeignAuthorization, "API token": a role bound to the child opens what it grants.
    # Voedger's role there may execute q.sys.Collection; shop.ApiClient may read shop.Item, so
    # the read is API v2's.
    plain = PrincipalPayload(login="ann", profile_wsid=env.profile)
    api = env.vvm.tokens.issue_api_token(APP, plain, [QName("shop", "ApiClient")], kid)
    items = f"/api/v2/apps/{APP}/workspaces/{kid}/cdocs/shop.Item"
    r = await env.client.get(items, headers=env.owner)
    assert r.status_code == 403 and v2_error_of(r)["status"] == 403, r.text
    r = await env.client.get(items, headers={"Authorization": f"Bearer {api}"})
    assert r.status_code == 200, r.text
    assert sorted(item["Name"] for item in r.json()["results"]) == ["Croissant", "Espresso", "tea"]


async def test_a_foreign_login_works_through_a_subject(env: Env) -> None:
    """TestForeignAuthorization, "subjects": a stranger is refused until the owner makes them a
    subject with WorkspaceOwner, and again once that subject is deactivated."""
    wsid = await make_child(env, env.profile, "shared", env.owner)
    bob, bob_profile = await sign_up(env.client, "bob")
    error(await env.post(wsid, "c.sys.CUD", new_item(), bob), 403)

    subject = {"sys.ID": 1, "sys.QName": "sys.Subject", "Login": "bob", "SubjectKind": 1}
    subject |= {"Roles": "sys.WorkspaceOwner", "ProfileWSID": bob_profile}
    r = await env.post(wsid, "c.sys.CUD", {"cuds": [{"fields": subject}]}, env.owner)
    assert r.status_code == 200, r.text
    subject_id = r.json()["NewIDs"]["1"]
    r = await env.post(wsid, "c.sys.CUD", new_item(), bob)
    assert r.status_code == 200, r.text

    r = await env.post(
        wsid, "c.sys.CUD", {"cuds": [{"sys.ID": subject_id, "fields": {"sys.IsActive": False}}]}, env.owner
    )
    assert r.status_code == 200, r.text
    error(await env.post(wsid, "c.sys.CUD", new_item(), bob), 403)


# --- impl_deactivateworkspace_test.go -----------------------------------------------------------


async def wait_inactive(env: Env, wsid: int) -> None:
    """Until the descriptor's Status is Inactive, as the System reads it."""

    async def probe() -> bool | None:
        [[status]] = rows(await collection(env, wsid, "sys.WorkspaceDescriptor", ["Status"], env.system()))
        return True if status == STATUS_INACTIVE else None

    await until(probe)


async def test_a_deactivated_workspace(env: Env) -> None:
    """TestBasicUsage_InitiateDeactivateWorkspace: 410 for the owner's commands and queries, the
    System still works there, and a second deactivation is a 409."""
    wsid = await make_child(env, env.profile, "closing", env.owner)
    r = await env.post(wsid, "c.sys.InitiateDeactivateWorkspace", {}, env.owner)
    assert r.status_code == 200, r.text
    await wait_inactive(env, wsid)

    error(await env.post(wsid, "c.sys.CUD", new_item(), env.owner), 410, "workspace status is not active")
    r = await collection(env, wsid, "sys.WorkspaceDescriptor", ["Status"], env.owner)
    error(r, 410, "workspace status is not active")

    assert rows(await collection(env, wsid, "sys.WorkspaceDescriptor", ["Status"], env.system())) == [[STATUS_INACTIVE]]
    r = await env.post(wsid, "c.sys.CUD", new_item(), env.system())
    assert r.status_code == 200, r.text

    r = await env.post(wsid, "c.sys.InitiateDeactivateWorkspace", {}, env.system())
    error(r, 409, "Workspace Status is not Active")


async def test_deactivating_a_joined_workspace(tmp_path: Path) -> None:
    """TestDeactivateJoinedWorkspace, the steps ``test_invites.py`` does not take: the member is
    refused before joining and works after, and the application workspace's ``sys.WorkspaceID``
    of the deactivated workspace is found inactive over HTTP, as Voedger's client reads it
    (``q.sys.SqlQuery`` on ``sys.WorkspaceIDIdx`` at the name's pseudo WSID, then ``q.sys.GetCDoc``)."""
    async with open_env(tmp_path) as renv:
        await _deactivate_joined(renv)


async def _deactivate_joined(env: RestaurantEnv) -> None:
    v1 = f"/api/{RESTAURANT_APP}/{env.ws}"
    location = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "service.Location", "Name": "Hall", "TimeZone": "UTC"}}]}
    gina, _ = await sign_up_and_in(env.client, "gina@example.com", "gina-pa55")
    error(await env.client.post(f"{v1}/c.sys.CUD", json=location, headers=gina), 403)
    invite_id, code = await invite(env, "gina@example.com", roles="staff.Manager")
    assert (await join(env, invite_id, code, gina)).status_code == 200
    await wait_state(env, invite_id, InviteState.Joined)
    r = await env.client.post(f"{v1}/c.sys.CUD", json=location, headers=gina)
    assert r.status_code == 200, r.text

    r = await env.client.post(f"{v1}/c.sys.InitiateDeactivateWorkspace", json={}, headers=env.owner)
    assert r.status_code == 200, r.text

    assert env.vvm.tokens is not None
    system = {"Authorization": f"Bearer {env.vvm.tokens.issue_system(RESTAURANT_APP)}"}
    keeper = f"/api/{RESTAURANT_APP}/{ws.pseudo_wsid('acme', 1, owner_wsid=env.owner_profile)}"
    sql = (
        f"select IDOfCDocWorkspaceID from sys.WorkspaceIDIdx where OwnerWSID = {env.owner_profile} and WSName = 'acme'"
    )
    r = await env.client.post(
        f"{keeper}/q.sys.SqlQuery", json={"args": {"Query": sql}, "elements": [{"fields": ["Result"]}]}, headers=system
    )
    [[result]] = rows(r)
    record_id = json.loads(result)["IDOfCDocWorkspaceID"]

    async def inactive() -> bool | None:
        body = {"args": {"ID": record_id}, "elements": [{"fields": ["Result"]}]}
        [[doc]] = rows(await env.client.post(f"{keeper}/q.sys.GetCDoc", json=body, headers=system))
        fields = json.loads(doc)
        assert fields["WSID"] == env.ws, fields
        return True if fields["sys.IsActive"] is False else None

    await until(inactive)
