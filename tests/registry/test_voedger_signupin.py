"""Voedger's sign-up, sign-in, token, password and verifier scenarios (``pkg/sys/it``:
``impl_signupin_test.go``, ``impl_changepassword_test.go``, ``impl_verifier_test.go``,
``authn_test.go``) against a whole server in-process, with authentication on: the registry and a
small target application (``signupin/``), over API v1 and v2 as Voedger's client sends them.

Steps already covered elsewhere are not repeated here; each test says which it leaves to whom.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support import until
from voedger.appdef import QName
from voedger.apps.registry import REGISTRY_APP, expected_app_wsid, login_hash
from voedger.apps.sys.mail import Outbox
from voedger.apps.sys.verifier import VERIFIED_VALUE_AUDIENCE
from voedger.auth.tokens import PrincipalPayload, RoleInWorkspace, SubjectKind, Tokens
from voedger.clock import ManualClock
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs import wsid as ws
from voedger.vvm.server import VVM, ServerConfig

APP = "test/signupin"
APP_DIR = Path(__file__).parent / "signupin"
V2 = f"/api/v2/apps/{APP}"
CONTACT = "signupin.Contact"
INCORRECT = "login or password is incorrect"


@dataclass
class Env:
    vvm: VVM
    client: httpx.AsyncClient
    clock: ManualClock
    outbox: Outbox

    @property
    def tokens(self) -> Tokens:
        assert self.vvm.tokens is not None
        return self.vvm.tokens

    def system(self, app: str = REGISTRY_APP) -> str:
        return self.tokens.issue_system(app)


@dataclass
class Principal:
    login: str
    password: str
    token: str
    profile: int


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = ManualClock(1_790_000_000)
    outbox = Outbox()
    config = ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, APP_DIR)], clock=clock, mailer=outbox)
    vvm = VVM(config)
    await vvm.start()
    app = build_app(vvm, {1: LocalTransport(vvm)})
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield Env(vvm, client, clock, outbox)
    finally:
        await vvm.stop()


# --- helpers, after Voedger's VIT --------------------------------------------------------------


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def v1(
    env: Env, app: str, wsid: int, func: str, body: dict[str, Any], token: str | None = None
) -> httpx.Response:
    return await env.client.post(f"/api/{app}/{wsid}/{func}", json=body, headers=auth(token))


async def registry(
    env: Env, at: str | int, func: str, body: dict[str, Any], token: str | None = None
) -> httpx.Response:
    """A call of the registry at the pseudo WSID of a login (or at a WSID)."""
    wsid = ws.pseudo_wsid(at) if isinstance(at, str) else at
    return await v1(env, REGISTRY_APP, wsid, func, body, token)


def message(r: httpx.Response) -> str:
    """The message of an API v1 error."""
    return str(r.json()["sys.Error"]["Message"])


def rows(r: httpx.Response) -> list[list[Any]]:
    """The rows of an API v1 query answer."""
    assert r.status_code == 200, r.text
    sections = r.json().get("sections") or [{"elements": []}]
    return [e[0][0] for e in sections[0]["elements"]]


def app_ws(login: str, app_workspaces: int = 10) -> int:
    return expected_app_wsid(login, ws.new_wsid(ws.MAIN_CLUSTER_ID, 0), app_workspaces)


async def sign_up(env: Env, login: str, password: str, expect: int = 201) -> httpx.Response:
    """Voedger's ``vit.SignUp``: ``POST /users`` with a verified e-mail token the test issues
    itself for ``registry.CreateEmailLoginParams.Email``, the login as its display name."""
    payload = {
        "VerificationKind": 0,
        "WSID": app_ws(login),
        "ID": 0,
        "Entity": "registry.CreateEmailLoginParams",
        "Field": "Email",
        "Value": login,
    }
    verified = env.tokens.issue_claims(REGISTRY_APP, VERIFIED_VALUE_AUDIENCE, payload, timedelta(minutes=10))
    body = {"verifiedEmailToken": verified, "password": password, "displayName": login}
    r = await env.client.post(f"{V2}/users", json=body)
    assert r.status_code == expect, r.text
    return r


def sign_in_body(identifier: str, password: str, **args: Any) -> dict[str, Any]:
    return {
        "args": {"Login": identifier, "Password": password, "AppName": APP, **args},
        "elements": [{"fields": ["PrincipalToken", "WSID", "WSError"]}],
    }


async def issue_token(env: Env, identifier: str, password: str, **args: Any) -> httpx.Response:
    return await registry(env, identifier, "q.registry.IssuePrincipalToken", sign_in_body(identifier, password, **args))


async def sign_in(env: Env, identifier: str, password: str) -> Principal:
    """Voedger's ``vit.SignIn``: sign in until the profile is ready."""

    async def attempt() -> Principal | None:
        [[token, profile, error]] = rows(await issue_token(env, identifier, password))
        assert not error, error
        return Principal(identifier, password, token, profile) if token else None

    return await until(attempt)  # type: ignore[no-any-return]


async def new_user(env: Env, login: str, password: str = "pwd1") -> Principal:
    await sign_up(env, login, password)
    return await sign_in(env, login, password)


async def collection(env: Env, prn: Principal, schema: str, *fields: str, token: str | None = None) -> httpx.Response:
    body = {"args": {"Schema": schema}, "elements": [{"fields": list(fields)}]}
    return await v1(env, APP, prn.profile, "q.sys.Collection", body, token or prn.token)


# --- impl_signupin_test.go -------------------------------------------------------------------


async def test_basic_usage_sign_up_in(env: Env) -> None:
    """TestBasicUsage_SignUpIn. The v1 CreateLogin path is tests/registry/test_server.py's."""
    prn1 = await new_user(env, "login1")
    prn2 = await new_user(env, "login2", "pwd2")
    assert prn1.token != prn2.token
    for prn in (prn1, prn2):
        assert ws.cluster_id(prn.profile) == 1 and ws.base_wsid(prn.profile) >= ws.FIRST_BASE_USER_WSID
    assert prn1.profile != prn2.profile

    # the profile's sys.UserProfile was made with the display name given at sign-up
    [[profile_id, display_name]] = rows(await collection(env, prn1, "sys.UserProfile", "sys.ID", "DisplayName"))
    assert display_name == "login1"
    cud = {"cuds": [{"sys.ID": profile_id, "fields": {"DisplayName": "new name"}}]}
    r = await v1(env, APP, prn1.profile, "c.sys.CUD", cud, prn1.token)
    assert r.status_code == 200, r.text
    [[_, display_name]] = rows(await collection(env, prn1, "sys.UserProfile", "sys.ID", "DisplayName"))
    assert display_name == "new name"

    # special JSON characters in the password
    await new_user(env, "special", 'p"a\\ss')


async def test_ttl(env: Env) -> None:
    """TestTTL, and the TTL above the maximum of authnSignInErrors (its unknown login and wrong
    password are tests/registry/test_server.py's)."""
    prn = await new_user(env, "ttl")
    [[token, _, _]] = rows(await issue_token(env, "ttl", "pwd1", TTLHours=15))
    assert env.tokens.validate(APP, token).duration == timedelta(hours=15)
    assert prn.token != token

    r = await issue_token(env, "ttl", "pwd1", TTLHours=1000)
    assert r.status_code == 400 and message(r) == "max token TTL hours is 168 hours", r.text


async def test_work_in_a_foreign_profile_with_an_enriched_token(env: Env) -> None:
    """TestWorkInForeignProfileWithEnrichedToken: a token carrying sys.ProfileOwner for the
    owner of another's profile opens that profile."""
    newcomer = await new_user(env, "newcomer", "1")
    existing = await new_user(env, "existing")
    r = await collection(env, existing, "sys.UserProfile", "sys.ID", "DisplayName", token=newcomer.token)
    assert r.status_code == 403, r.text

    [[owner_wsid]] = rows(await collection(env, existing, "sys.WorkspaceDescriptor", "OwnerWSID"))
    payload = env.tokens.validate(APP, newcomer.token).payload
    role = RoleInWorkspace(owner_wsid, QName("sys", "ProfileOwner"))
    enriched = env.tokens.issue(APP, replace(payload, roles=(role,)))
    r = await collection(env, existing, "sys.UserProfile", "sys.ID", "DisplayName", token=enriched)
    assert r.status_code == 200, r.text


async def test_global_roles(env: Env) -> None:
    """TestGlobalRoles: only the System sets them; the next token carries them, and a role
    granted nothing to the profile's owner opens what it is granted."""
    prn = await new_user(env, "globe")
    assert env.tokens.validate(APP, prn.token).payload.global_roles == ()
    r = await collection(env, prn, "signupin.Restricted", "sys.ID")
    assert r.status_code == 403, r.text

    body = {"args": {"Login": "globe", "AppName": APP, "GlobalRoles": "signupin.LimitedAccessRole,sys.role2"}}
    r = await registry(env, "globe", "c.registry.UpdateGlobalRoles", body, prn.token)
    assert r.status_code in (401, 403), r.text  # a token of the target application is no registry token
    r = await registry(env, "globe", "c.registry.UpdateGlobalRoles", body)
    assert r.status_code == 403, r.text
    wrong = {"args": {**body["args"], "GlobalRoles": "LimitedAccessRole,sys.role2"}}
    r = await registry(env, "globe", "c.registry.UpdateGlobalRoles", wrong, env.system())
    assert r.status_code == 400, r.text
    r = await registry(env, "globe", "c.registry.UpdateGlobalRoles", body, env.system())
    assert r.status_code == 200, r.text

    prn2 = await sign_in(env, "globe", "pwd1")
    roles = env.tokens.validate(APP, prn2.token).payload.global_roles
    assert sorted(map(str, roles)) == ["signupin.LimitedAccessRole", "sys.role2"]
    r = await collection(env, prn2, "signupin.Restricted", "sys.ID")
    assert r.status_code == 200, r.text


async def test_login_alias_command_edge_cases(env: Env) -> None:
    """TestLoginAliasCommandEdgeCases: clearing an alias a login never had completes. Its
    unknown login, wrong pseudo WSID and change in progress are tests/registry/test_aliases.py's."""
    await new_user(env, "clear", "pwd-clear")
    body = {"args": {"Login": "clear", "AppName": APP, "Alias": ""}}
    r = await registry(env, "clear", "c.registry.InitiateSetLoginAlias", body, env.system())
    assert r.status_code == 200, r.text
    doc = await until(lambda: settled_login(env, "clear"))
    assert not doc.get("Alias") and not doc.get("AliasError")


# --- the Login record, as the System and registry workspace owners read it ------------------


async def login_id(env: Env, login: str) -> int:
    body = {"args": {"Schema": "registry.Login"}, "elements": [{"fields": ["sys.ID", "LoginHash"]}]}
    found = [
        i for i, h in rows(await registry(env, login, "q.sys.Collection", body, env.system())) if h == login_hash(login)
    ]
    assert len(found) == 1, found
    return int(found[0])


async def get_login(env: Env, login: str, token: str) -> httpx.Response:
    body = {"args": {"ID": await login_id(env, login)}, "elements": [{"fields": ["Result"]}]}
    return await registry(env, login, "q.sys.GetCDoc", body, token)


async def login_doc(env: Env, login: str) -> dict[str, Any]:
    [[doc]] = rows(await get_login(env, login, env.system()))
    return orjson.loads(doc)  # type: ignore[no-any-return]


async def settled_login(env: Env, login: str) -> dict[str, Any] | None:
    """The Login once no alias change is under way."""
    doc = await login_doc(env, login)
    return None if doc.get("AliasInProc") else doc


def registry_token(env: Env, login: str, profile: int) -> str:
    """Voedger's ``issueRegistryPrincipalToken``: a user's token for the registry itself, whose
    profile is ``profile``."""
    return env.tokens.issue(REGISTRY_APP, PrincipalPayload(login=login, profile_wsid=profile), timedelta(minutes=1))


def set_alias_body(login: str, alias: str) -> dict[str, Any]:
    return {"args": {"Login": login, "AppName": APP, "Alias": alias}}


async def set_alias(env: Env, login: str, alias: str) -> dict[str, Any]:
    r = await registry(env, login, "c.registry.InitiateSetLoginAlias", set_alias_body(login, alias), env.system())
    assert r.status_code == 200, r.text
    return await until(lambda: settled_login(env, login))  # type: ignore[no-any-return]


async def test_login_state_visibility(env: Env) -> None:
    """authnLoginStateVisibility: the System and an owner of the registry workspace that keeps
    the Login read it whole; an owner of another registry workspace and the user do not."""
    prn = await new_user(env, "jsmith")
    target = app_ws("jsmith")
    other = ws.app_wsid(1, (ws.base_wsid(target) - ws.FIRST_BASE_APP_WSID + 1) % 10)
    for token in (env.system(), registry_token(env, "target-registry-owner", target)):
        r = await get_login(env, "jsmith", token)
        assert r.status_code == 200, r.text
        doc = orjson.loads(rows(r)[0][0])
        assert "PwdHash" in doc and "LoginHash" in doc and "CanonicalLoginDisabled" not in doc
    for token in (registry_token(env, "other-registry-owner", other), registry_token(env, "jsmith", prn.profile)):
        r = await get_login(env, "jsmith", token)
        assert r.status_code == 403, r.text

    await set_alias(env, "jsmith", "j.smith")
    body = {"args": {"Login": "jsmith", "AppName": APP, "Enabled": False}}
    r = await registry(env, "jsmith", "c.registry.SetCanonicalLoginEnablement", body, env.system())
    assert r.status_code == 200, r.text
    r = await get_login(env, "jsmith", registry_token(env, "target-registry-owner", target))
    doc = orjson.loads(rows(r)[0][0])
    assert doc["CanonicalLoginDisabled"] is True and doc["Alias"] == "j.smith"
    assert doc["AliasInProc"] == 0 and not doc["AliasError"]


async def test_canonical_login_enablement_management(env: Env) -> None:
    """authnCanonicalLoginEnablementManagement: a user's own registry token may neither disable
    nor enable (403, nothing stored); the System's stays idempotent from either state. Disabled
    sign-in and the alias that still works are tests/registry/test_aliases.py's."""
    caller = await new_user(env, "caller", "pwd-enable")
    caller_token = registry_token(env, "caller", caller.profile)
    await new_user(env, "target", "pwd-enable")

    async def enable(enabled: bool, token: str) -> int:
        body = {"args": {"Login": "target", "AppName": APP, "Enabled": enabled}}
        return (await registry(env, "target", "c.registry.SetCanonicalLoginEnablement", body, token)).status_code

    for enabled in (False, True):
        assert await enable(enabled, caller_token) == 403
    assert "CanonicalLoginDisabled" not in await login_doc(env, "target")

    for enabled in (True, True, False, False, False, True, True):
        assert await enable(enabled, env.system()) == 200
        assert (await login_doc(env, "target"))["CanonicalLoginDisabled"] is (not enabled)
    await sign_in(env, "target", "pwd-enable")


async def test_alias_snapshot_and_update_collisions(env: Env) -> None:
    """authnLoginAlias's token that keeps the alias it was issued with (also when refreshed by
    q.sys.RefreshPrincipalToken after the alias is cleared) and
    authnLoginAliasCollisionsAndValidation's collisions on *updating* an alias. The first alias,
    sign-in by alias and the collisions on creating one are tests/registry/test_aliases.py's."""
    prn = await new_user(env, "snap", "pwd-snapshot")
    await set_alias(env, "snap", "s.nap")
    issued = await sign_in(env, "s.nap", "pwd-snapshot")
    await set_alias(env, "snap", "")
    payload = env.tokens.validate(APP, issued.token).payload
    assert (payload.login, payload.alias) == ("snap", "s.nap")
    env.clock.advance(60)
    body = {"args": {}, "elements": [{"fields": ["NewPrincipalToken"]}]}
    [[refreshed]] = rows(await v1(env, APP, prn.profile, "q.sys.RefreshPrincipalToken", body, issued.token))
    assert refreshed != issued.token
    payload = env.tokens.validate(APP, refreshed).payload
    assert (payload.login, payload.alias) == ("snap", "s.nap")

    await new_user(env, "taken", "pwd2")
    await set_alias(env, "taken", "t.aken")
    await new_user(env, "mover", "pwd-update")
    await set_alias(env, "mover", "m.over")
    for colliding in ("taken", "t.aken"):  # another login, another login's active alias
        doc = await set_alias(env, "mover", colliding)
        assert "sign-in identifier already exists" in doc["AliasError"], doc
        assert doc["Alias"] == "m.over", doc
    await sign_in(env, "m.over", "pwd-update")
    await sign_in(env, "t.aken", "pwd2")


# --- impl_changepassword_test.go, and authn_test.go's password change over API v2 ------------


def change_password_body(login: str, old: str, new: str) -> dict[str, Any]:
    return {"args": {"Login": login, "AppName": APP}, "unloggedArgs": {"OldPassword": old, "NewPassword": new}}


async def test_change_password_errors(env: Env) -> None:
    """TestChangePasswordErrors. Voedger's one change a minute per partition answers the second
    wrong attempt 429 and the next minute's 401 again; ours (docs/design.md, "Password guessing":
    a wrong old password locks that login's changes for a minute) answers the same here."""
    await new_user(env, "changer", "1")
    r = await registry(env, "nobody", "c.registry.ChangePassword", change_password_body("nobody", "1", "2"))
    assert r.status_code == 401 and message(r) == "login nobody does not exist", r.text

    wrong = change_password_body("changer", "2", "3")
    env.clock.advance(60)
    r = await registry(env, "changer", "c.registry.ChangePassword", wrong)
    assert r.status_code == 401, r.text
    env.clock.advance(60)
    r = await registry(env, "changer", "c.registry.ChangePassword", wrong)
    assert r.status_code == 401, r.text  # not 429: a wrong password
    r = await registry(env, "changer", "c.registry.ChangePassword", wrong)
    assert r.status_code == 429 and r.json()["sys.Error"]["HTTPStatus"] == 429, r.text
    env.clock.advance(60)
    r = await registry(env, "changer", "c.registry.ChangePassword", wrong)
    assert r.status_code == 401, r.text  # again not 429
    await sign_in(env, "changer", "1")


async def test_change_password_api_v2(env: Env) -> None:
    """authnBasicUsageChangePasswordAPIv2: 200 with an empty body, the new password signs in,
    special JSON characters included. The malformed bodies and the unknown login are
    tests/router/test_identity_errors.py's."""
    await sign_up(env, "v2changer", "1")
    r = await env.client.post(
        f"{V2}/users/change-password", json={"login": "v2changer", "oldPassword": "1", "newPassword": "2"}
    )
    assert r.status_code == 200 and r.content == b"", r.text
    await sign_in(env, "v2changer", "2")

    special = 'p"a\\ss'
    await new_user(env, "v2special", special)
    body = {"login": "v2special", "oldPassword": special, "newPassword": special + "x"}
    r = await env.client.post(f"{V2}/users/change-password", content=json.dumps(body))
    assert r.status_code == 200 and r.content == b"", r.text
    await sign_in(env, "v2special", special + "x")

    r = await env.client.post(f"{V2}/users/change-password", json={**body, "oldPassword": "wrong"})
    assert r.status_code == 401, r.text


# --- authn_test.go: API v2 sign-in, refresh, devices ------------------------------------------


async def v2_sign_in(env: Env, login: str, password: str) -> httpx.Response:
    return await env.client.post(f"{V2}/auth/login", json={"login": login, "password": password})


async def test_api_v2_sign_in_and_refresh(env: Env) -> None:
    """authnAPIAuthLogin and authnAPIAuthRefresh: the answer's fields and the token's claims.
    The malformed bodies, refresh without a token or with an expired one are
    tests/router/test_identity_errors.py's."""
    await new_user(env, "v2user", "pwd1")
    r = await v2_sign_in(env, "v2user", "pwd1")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["expiresInSeconds"] == 3600 and answer["profileWSID"] > ws.pseudo_wsid("v2user")
    payload = env.tokens.validate(APP, answer["principalToken"]).payload
    assert (payload.login, payload.subject_kind, payload.profile_wsid) == ("v2user", 1, answer["profileWSID"])

    r = await v2_sign_in(env, "v2user", "badpwd")
    assert r.status_code == 401 and r.json() == {"status": 401, "message": INCORRECT}, r.text

    env.clock.advance(60)
    r = await env.client.post(f"{V2}/auth/refresh", headers=auth(answer["principalToken"]))
    assert r.status_code == 200, r.text
    refreshed = r.json()
    assert refreshed["expiresInSeconds"] == 3600 and refreshed["profileWSID"] == answer["profileWSID"]
    assert refreshed["principalToken"] != answer["principalToken"]
    payload = env.tokens.validate(APP, refreshed["principalToken"]).payload
    assert (payload.login, payload.alias, payload.subject_kind) == ("v2user", "", 1)
    assert payload.profile_wsid == answer["profileWSID"]


async def test_devices(env: Env) -> None:
    """authnCreateDevice: a device works in its profile and refreshes its token; a body is
    refused. Creating and signing in are tests/registry/test_server.py's and
    tests/router/test_identity.py's."""
    r = await env.client.post(f"{V2}/devices")
    assert r.status_code == 201, r.text
    device = await sign_in(env, r.json()["login"], r.json()["password"])
    payload = env.tokens.validate(APP, device.token).payload
    assert payload.subject_kind == SubjectKind.DEVICE and payload.profile_wsid == device.profile
    assert rows(await collection(env, device, "sys.WorkspaceDescriptor", "sys.ID"))

    env.clock.advance(60)
    body = {"args": {}, "elements": [{"fields": ["NewPrincipalToken"]}]}
    [[refreshed]] = rows(await v1(env, APP, device.profile, "q.sys.RefreshPrincipalToken", body, device.token))
    assert refreshed != device.token

    r = await env.client.post(f"{V2}/devices", content=b"body")
    assert r.status_code == 400, r.text


# --- authn_test.go: creating logins ------------------------------------------------------------


def create_login_body(login: str, app: str = APP, password: str = "password") -> dict[str, Any]:
    return {
        "args": {
            "Login": login,
            "AppName": app,
            "SubjectKind": 1,
            "WSKindInitializationData": "{}",
            "ProfileCluster": 1,
        },
        "unloggedArgs": {"Password": password},
    }


async def test_create_login_coverage(env: Env) -> None:
    """authnCreateLoginCoverage (and authnLoginAliasCollisionsAndValidation's login made of an
    active alias, which is tests/registry/test_aliases.py's)."""
    wrong = ws.pseudo_wsid("login1") - 1  # as if the client's crc16 were off by one
    r = await registry(env, wrong, "c.registry.CreateLogin", create_login_body("login1"))
    expected, got = app_ws("login1"), ws.pseudo_to_app_wsid(wrong, 10)
    assert r.status_code == 403 and message(r) == f"wrong AppWSID: {expected} expected, {got} got", r.text

    r = await registry(env, "newbie", "c.registry.CreateLogin", create_login_body("newbie", "my/unknown"))
    assert r.status_code == 400 and "my/unknown is not found" in message(r), r.text
    r = await registry(env, "newbie", "c.registry.CreateLogin", create_login_body("newbie", "wrong-AppName"))
    assert r.status_code == 400 and "failed to parse app qualified name" in message(r), r.text

    await new_user(env, "newbie", "1")
    await sign_up(env, "newbie", "1", expect=409)

    wrong_logins = [
        "哇",
        "test@tesT.com",
        "test@test.com ",
        " test@test.com",
        " test@test.com ",
        ".test@test.com",
        "test@test.com.",
        ".test@test.com.",
        "test@test..com",
        "-test@test.com",
        "test@test.com-",
        "-test@test.com-",
        "sys.test@test.com",
        ",",
        "test,foo@test.com",
    ]
    for login in wrong_logins:
        r = await registry(env, login, "c.registry.CreateLogin", create_login_body(login, password="1"))
        assert r.status_code == 400 and "incorrect login format" in message(r), (login, r.text)

    for n, c in enumerate("!#$%&'*+-/=.?^_{|}~@"):
        login = f"special{n}{c}x"
        await sign_up(env, login, "1")
        await sign_in(env, login, "1")


# --- impl_verifier_test.go ---------------------------------------------------------------------


EMAIL = "verifier@example.com"
EMAIL2 = "verifier2@example.com"


def initiate_body(email: str, target: int, field: str = "EmailField", **more: Any) -> dict[str, Any]:
    args = {"Entity": CONTACT, "Field": field, "Email": email, "TargetWSID": target, **more}
    return {"args": args, "elements": [{"fields": ["VerificationToken"]}]}


def issue_body(token: str, code: str, **more: Any) -> dict[str, Any]:
    return {
        "args": {"VerificationToken": token, "VerificationCode": code, **more},
        "elements": [{"fields": ["VerifiedValueToken"]}],
    }


async def initiate(env: Env, prn: Principal, email: str, target: int, **more: Any) -> tuple[str, str]:
    """q.sys.InitiateEmailVerification in the caller's profile: the verification token and the
    code mailed to ``email``."""
    r = await v1(
        env, APP, prn.profile, "q.sys.InitiateEmailVerification", initiate_body(email, target, **more), prn.token
    )
    [[token]] = rows(r)
    mail = env.outbox.last_to(email)
    assert mail is not None
    match = re.search(r"\b(\d{6})\b", mail.body)
    assert match is not None, mail.body
    return token, match.group(1)


async def issue(env: Env, prn: Principal, token: str, code: str, **more: Any) -> httpx.Response:
    return await v1(env, APP, prn.profile, "q.sys.IssueVerifiedValueToken", issue_body(token, code, **more), prn.token)


async def add_contact(env: Env, prn: Principal, **fields: str) -> httpx.Response:
    cud = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": CONTACT, **fields}}]}
    return await v1(env, APP, prn.profile, "c.sys.CUD", cud, prn.token)


async def test_basic_usage_verifier(env: Env) -> None:
    """TestBasicUsage_Verifier: the code mailed in the language asked for, the verified value
    token it buys, and a document whose VERIFIABLE field takes that token and keeps the value."""
    prn = await new_user(env, EMAIL)
    token, code = await initiate(env, prn, EMAIL, prn.profile, Language="fr")
    mail = env.outbox.last_to(EMAIL)
    assert mail is not None and mail.subject == "Votre code de vérification"
    assert "Voici votre code de vérification" in mail.body and code in mail.body

    [[verified]] = rows(await issue(env, prn, token, code))
    claims = env.tokens.validate_claims(APP, VERIFIED_VALUE_AUDIENCE, verified)
    assert (claims["Entity"], claims["Field"], claims["Value"]) == (CONTACT, "EmailField", EMAIL)
    assert claims["iat"] == int(env.clock.now()) and claims["exp"] - claims["iat"] == 600

    r = await add_contact(env, prn, EmailField=verified)
    assert r.status_code == 200, r.text
    # as in Voedger, the token is not bound to the workspace it was verified for
    other = await new_user(env, "other-verifier")
    r = await add_contact(env, other, EmailField=verified)
    assert r.status_code == 200, r.text

    for who in (prn, other):
        assert rows(await collection(env, who, CONTACT, "EmailField")) == [[EMAIL]]


async def test_verifier_errors(env: Env) -> None:
    """TestVerifierErrors. The expired code is tests/router/test_email_signup.py's."""
    prn = await new_user(env, EMAIL)
    token, code = await initiate(env, prn, EMAIL, prn.profile)

    r = await add_contact(env, prn, EmailField=EMAIL)  # the raw value, not a token
    assert r.status_code == 400 and "invalid token" in message(r), r.text

    [[verified]] = rows(await issue(env, prn, token, code))
    r = await add_contact(env, prn, PhoneField=verified)  # the e-mail's token for another field
    assert r.status_code == 400, r.text

    for wrong in ("a", "sdsd@", "@sdsd"):
        env.clock.advance(600)  # a new VerifierRate period (Voedger: an hour, past our 1 h token)
        r = await v1(
            env, APP, prn.profile, "q.sys.InitiateEmailVerification", initiate_body(wrong, prn.profile), prn.token
        )
        assert r.status_code == 400, r.text


async def test_verification_limits(env: Env) -> None:
    """TestVerificationLimits: VerifierRate (5 per 10 minutes per profile) on both queries, and a
    right code fills the profile's IssueVerifiedValueToken allowance again."""
    prn = await new_user(env, EMAIL)
    other = await new_user(env, EMAIL2)
    body = initiate_body(EMAIL, 1)
    for _ in range(5):
        await initiate(env, prn, EMAIL, 1)
    r = await v1(env, APP, prn.profile, "q.sys.InitiateEmailVerification", body, prn.token)
    assert r.status_code == 429, r.text
    await initiate(env, other, EMAIL2, 1)  # per profile
    env.clock.advance(600)
    token, code = await initiate(env, prn, EMAIL, 1)

    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        r = await issue(env, prn, token, wrong)
        assert r.status_code == 400 and message(r) == "invalid verification code", r.text
    r = await issue(env, prn, token, code)
    assert r.status_code == 429, r.text  # the right code too, once the allowance is spent

    env.clock.advance(600)
    token, code = await initiate(env, prn, EMAIL, 1)
    for _ in range(6):
        r = await issue(env, prn, token, code)
        assert r.status_code == 200, r.text


async def test_for_registry(env: Env) -> None:
    """TestForRegistry: with ForRegistry both tokens are the registry's."""
    prn = await new_user(env, EMAIL)
    token, code = await initiate(env, prn, EMAIL, prn.profile, ForRegistry=True)
    [[verified]] = rows(await issue(env, prn, token, code, ForRegistry=True))
    claims = env.tokens.validate_claims(REGISTRY_APP, VERIFIED_VALUE_AUDIENCE, verified)
    assert claims["Value"] == EMAIL


async def test_issue_reset_password_token_for_a_bad_app(env: Env) -> None:
    """authnIssueResetPasswordTokenErrors's bad AppName (its wrong code, and the rest of the
    reset scenarios, are tests/router/test_reset_password.py's)."""
    await new_user(env, EMAIL)
    body = {"args": {"AppName": APP, "Email": EMAIL}, "elements": [{"fields": ["VerificationToken", "ProfileWSID"]}]}
    [[token, profile]] = rows(await registry(env, EMAIL, "q.registry.InitiateResetPasswordByEmail", body))
    mail = env.outbox.last_to(EMAIL)
    assert mail is not None
    match = re.search(r"\b(\d{6})\b", mail.body)
    assert match is not None
    args = {"VerificationToken": token, "VerificationCode": match.group(1), "ProfileWSID": profile}
    body = {"args": {**args, "AppName": "wrong app"}, "elements": [{"fields": ["VerifiedValueToken"]}]}
    r = await registry(env, EMAIL, "q.registry.IssueVerifiedValueTokenForResetPassword", body)
    assert r.status_code == 400, r.text
    body["args"]["AppName"] = APP
    assert rows(await registry(env, EMAIL, "q.registry.IssueVerifiedValueTokenForResetPassword", body))
