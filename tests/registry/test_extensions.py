"""The registry's extensions under the test kit: no server, the federation a recording stand-in."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import zlib
from datetime import timedelta
from typing import Any

import bcrypt
import orjson
import pytest

from tests.registry.conftest import PASSWORD, TARGET_APP, TARGET_APP_WORKSPACES, RecordingFederation, app_ws_of
from voedger.appdef import QName
from voedger.apps.registry import LOGIN_IDX, LOGIN_TABLE, AuthServices, bind_services, unbind_services
from voedger.auth.tokens import SubjectKind, Tokens
from voedger.clock import ManualClock
from voedger.state import StateError
from voedger.structs import wsid as ws
from voedger.syserror import SysError
from voedger.testkit import CommandOutcome, ExtensionTestKit

PROFILE_WSID = ws.new_wsid(1, ws.FIRST_BASE_USER_WSID + 42)


def login_args(login: str, **over: Any) -> dict[str, Any]:
    args = {"Login": login, "AppName": TARGET_APP, "SubjectKind": 1, "ProfileCluster": 1}
    args.update(over)
    return args


async def create(
    kit: ExtensionTestKit, login: str, password: str = PASSWORD, *, wsid: int | None = None, **over: Any
) -> CommandOutcome:
    """CreateLogin, then its SYNC projector, as the command processor runs them."""
    out = await kit.run_command(
        "registry.CreateLogin",
        login_args(login, **over),
        unlogged_args={"Password": password},
        wsid=app_ws_of(login) if wsid is None else wsid,
    )
    await kit.run_projector("registry.ProjectorLoginIdx", out.event)
    return out


async def sign_in(kit: ExtensionTestKit, login: str, password: str = PASSWORD, **over: Any) -> dict[str, Any]:
    args = {"Login": login, "Password": password, "AppName": TARGET_APP, **over}
    rows = await kit.run_query("registry.IssuePrincipalToken", args, wsid=app_ws_of(login))
    assert len(rows) == 1
    return rows[0]


async def profile_ready(kit: ExtensionTestKit, login_id: int, login: str, **fields: Any) -> None:
    """What c.sys.CUD from the end of the workspace chain does to the Login."""
    rec = await kit.record(login_id, wsid=app_ws_of(login))
    assert rec is not None
    kit.put_record(LOGIN_TABLE, {**rec, "WSID": PROFILE_WSID, **fields}, wsid=app_ws_of(login))


# --- CreateLogin ----------------------------------------------------------------------------------


async def test_create_login_keeps_only_hashes(kit: ExtensionTestKit) -> None:
    out = await create(kit, "alice@example.com", WSKindInitializationData='{"DisplayName":"Alice"}')
    [insert] = out.inserts
    f = insert.fields
    assert insert.table == QName("registry", "Login")
    assert f["LoginHash"] == hashlib.sha256(b"alice@example.com").hexdigest()
    assert f["AppName"] == TARGET_APP and f["SubjectKind"] == 1 and f["ProfileCluster"] == 1
    assert f["WSKindInitializationData"] == '{"DisplayName":"Alice"}'
    pwd_hash = base64.b64decode(f["PwdHash"])
    assert pwd_hash.startswith(b"$2b$") and bcrypt.checkpw(PASSWORD.encode(), pwd_hash)
    # the record keeps no plain login, and the event no password
    assert "alice@example.com" not in orjson.dumps(f).decode()
    assert PASSWORD not in orjson.dumps(out.event.to_json()).decode()
    login_id = out.new_ids[insert.raw_id]
    key = f"{TARGET_APP}/{f['LoginHash']}"
    row = await kit.view_row(LOGIN_IDX, wsid=app_ws_of("alice@example.com"), AppWSID=out.event.wsid, AppIDLoginHash=key)
    assert row is not None and row["CDocLoginID"] == login_id


async def test_taken_login_is_409_in_the_same_app_only(kit: ExtensionTestKit) -> None:
    await create(kit, "bob")
    with pytest.raises(SysError) as err:
        await create(kit, "bob", "another password")
    assert err.value.status == 409 and err.value.message == "sign-in identifier already exists"
    bind_services(kit.app, AuthServices(Tokens(b"s" * 64), apps=lambda name: 10))
    await create(kit, "bob", AppName="test/other")  # the same login for another application is another login


async def test_deactivated_login_may_be_registered_again(kit: ExtensionTestKit) -> None:
    out = await create(kit, "carol")
    rec = await kit.record(out.new_ids[1], wsid=app_ws_of("carol"))
    assert rec is not None
    kit.put_record(LOGIN_TABLE, rec, wsid=app_ws_of("carol"), **{"sys.IsActive": False})
    again = await create(kit, "carol")
    assert again.new_ids[1] != out.new_ids[1]


async def test_wrong_app_workspace_is_403(kit: ExtensionTestKit) -> None:
    right = app_ws_of("dave")
    wrong = ws.app_wsid(1, (ws.base_wsid(right) - ws.FIRST_BASE_APP_WSID + 1) % 10)
    with pytest.raises(SysError) as err:
        await create(kit, "dave", wsid=wrong)
    assert err.value.status == 403
    assert err.value.message == f"wrong AppWSID: {right} expected, {wrong} got"


@pytest.mark.parametrize(
    "login",
    ["Alice", "al ice", "алиса", "-alice", "alice-", ".alice", "alice.", "al..ice", "sys.alice", "a,b", "x" * 256],
)
async def test_bad_login_is_400(kit: ExtensionTestKit, login: str) -> None:
    with pytest.raises(SysError) as err:
        await create(kit, login)
    assert err.value.status == 400
    assert "login" in err.value.message.lower() or "Login" in err.value.message


@pytest.mark.parametrize("login", ["a", "alice@example.com", "a!#$%&'*+-/=?^_{|}~z", "x.y-z", "x" * 255])
async def test_good_logins(kit: ExtensionTestKit, login: str) -> None:
    await create(kit, login)


@pytest.mark.parametrize(
    ("over", "password", "message"),
    [
        ({"SubjectKind": 0}, PASSWORD, "SubjectKind"),
        ({"SubjectKind": 3}, PASSWORD, "SubjectKind"),
        ({"AppName": "noslash"}, PASSWORD, "app qualified name"),
        ({"AppName": "a/b/c"}, PASSWORD, "app qualified name"),
        ({"AppName": "nope/app"}, PASSWORD, "target app nope/app is not found"),
        ({"ProfileCluster": 0}, PASSWORD, "ProfileCluster"),
        ({"ProfileCluster": 65536}, PASSWORD, "ProfileCluster"),
        ({"ProfileCluster": 3}, PASSWORD, "cluster 3 is not known to this federation"),
        ({}, "p" * 73, "password is too long"),
    ],
)
async def test_bad_arguments_are_400(kit: ExtensionTestKit, over: dict[str, Any], password: str, message: str) -> None:
    with pytest.raises(SysError) as err:
        await create(kit, "erin", password, **over)
    assert err.value.status == 400 and message in err.value.message
    assert password not in err.value.message


async def test_without_deployed_apps_known_any_owner_app_is_taken(kit: ExtensionTestKit, tokens: Tokens) -> None:
    bind_services(kit.app, AuthServices(tokens))
    await create(kit, "frank", AppName="any/app")
    unbind_services(kit.app)
    await create(kit, "frank", AppName="other/app")  # no services at all: CreateLogin needs none


# --- the profile ----------------------------------------------------------------------------------


async def test_invoke_create_workspace_id_calls_the_target_app(
    kit: ExtensionTestKit, federation: RecordingFederation
) -> None:
    out = await create(kit, "grace", WSKindInitializationData='{"DisplayName":"G"}')
    # a Login whose profile is to be in cluster 3 (CreateLogin refuses that for now: see below)
    [cud] = out.event.cuds
    elsewhere = dataclasses.replace(cud, fields={**cud.fields, "ProfileCluster": 3})
    event = dataclasses.replace(out.event, cuds=(elsewhere,))
    await kit.run_projector("registry.InvokeCreateWorkspaceID_registry", event)
    [(app, wsid, cmd, body)] = federation.calls
    login_hash = hashlib.sha256(b"grace").hexdigest()
    ws_name = str(zlib.crc32(login_hash.encode()))
    assert (app, cmd) == (TARGET_APP, "c.sys.CreateWorkspaceID")
    pseudo = ws.pseudo_wsid(ws_name, 3)
    assert wsid == ws.pseudo_to_app_wsid(pseudo, TARGET_APP_WORKSPACES, 3)
    assert ws.cluster_id(wsid) == 3 and ws.is_app_wsid(wsid, TARGET_APP_WORKSPACES)
    assert body == {
        "args": {
            "OwnerWSID": app_ws_of("grace"),
            "OwnerQName2": "registry.Login",
            "OwnerID": out.new_ids[1],
            "OwnerApp": kit.runtime.name,
            "WSName": ws_name,
            "WSKind": "sys.UserProfile",
            "WSKindInitializationData": '{"DisplayName":"G"}',
        }
    }


async def test_a_device_gets_a_device_profile(kit: ExtensionTestKit, federation: RecordingFederation) -> None:
    out = await create(kit, "device1", SubjectKind=2)
    await kit.run_projector("registry.InvokeCreateWorkspaceID_registry", out.event)
    assert federation.calls[0][3]["args"]["WSKind"] == "sys.DeviceProfile"


async def test_existing_profile_id_is_success(kit: ExtensionTestKit, federation: RecordingFederation) -> None:
    federation.status = 409
    out = await create(kit, "heidi")
    await kit.run_projector("registry.InvokeCreateWorkspaceID_registry", out.event)
    assert len(federation.calls) == 1


async def test_transient_failure_is_retried(kit: ExtensionTestKit, federation: RecordingFederation) -> None:
    federation.status = 503
    out = await create(kit, "ivan")
    with pytest.raises((StateError, SysError)):
        await kit.run_projector("registry.InvokeCreateWorkspaceID_registry", out.event)
    assert [c[2] for c in federation.calls] == ["c.sys.CreateWorkspaceID"]


async def test_target_app_not_deployed_yet_is_retried(kit: ExtensionTestKit, federation: RecordingFederation) -> None:
    out = await create(kit, "judy")
    bind_services(kit.app, AuthServices(Tokens(b"s" * 64), apps=lambda name: None))
    with pytest.raises((StateError, SysError)):
        await kit.run_projector("registry.InvokeCreateWorkspaceID_registry", out.event)
    assert federation.calls == []


async def test_permanent_refusal_becomes_wserror(kit: ExtensionTestKit, federation: RecordingFederation) -> None:
    federation.answers["c.sys.CreateWorkspaceID"] = 400
    out = await create(kit, "ken")
    await kit.run_projector("registry.InvokeCreateWorkspaceID_registry", out.event)
    assert [c[2] for c in federation.calls] == ["c.sys.CreateWorkspaceID", "c.sys.CUD"]
    app, wsid, _, body = federation.calls[1]
    assert (app, wsid) == (kit.runtime.name, app_ws_of("ken"))
    assert body == {
        "cuds": [{"sys.ID": out.new_ids[1], "fields": {"WSError": "c.sys.CreateWorkspaceID failed: 400 answered 400"}}]
    }


# --- IssuePrincipalToken --------------------------------------------------------------------------


async def test_sign_in_before_and_after_the_profile_is_ready(kit: ExtensionTestKit, tokens: Tokens) -> None:
    out = await create(kit, "liam")
    assert await sign_in(kit, "liam") == {
        "sys.QName": "registry.IssuePrincipalTokenResult",
        "PrincipalToken": "",
        "WSID": 0,
        "WSError": "",
    }
    await profile_ready(kit, out.new_ids[1], "liam")
    answer = await sign_in(kit, "liam")
    assert answer["WSID"] == PROFILE_WSID and answer["WSError"] == ""
    info = tokens.validate(TARGET_APP, answer["PrincipalToken"])
    assert info.payload.login == "liam" and info.payload.profile_wsid == PROFILE_WSID
    assert info.payload.subject_kind == SubjectKind.USER and info.payload.global_roles == ()
    assert info.duration == timedelta(hours=1) and info.app == TARGET_APP
    with pytest.raises(SysError) as err:
        tokens.validate("sys/registry", answer["PrincipalToken"])
    assert err.value.status == 401


async def test_profile_error_is_answered_without_a_token(kit: ExtensionTestKit) -> None:
    out = await create(kit, "mia")
    await profile_ready(kit, out.new_ids[1], "mia", WSID=0, WSError="boom")
    answer = await sign_in(kit, "mia")
    assert (answer["PrincipalToken"], answer["WSID"], answer["WSError"]) == ("", 0, "boom")


@pytest.mark.parametrize(
    ("login", "password", "app"),
    [("nina", "wrong", TARGET_APP), ("nobody", PASSWORD, TARGET_APP), ("nina", PASSWORD, "test/other")],
)
async def test_wrong_credentials_are_401(kit: ExtensionTestKit, login: str, password: str, app: str) -> None:
    await create(kit, "nina")
    with pytest.raises(SysError) as err:
        await sign_in(kit, login, password, AppName=app)
    assert (err.value.status, err.value.message) == (401, "login or password is incorrect")


async def test_token_ttl(kit: ExtensionTestKit, tokens: Tokens, clock: ManualClock) -> None:
    out = await create(kit, "oscar")
    await profile_ready(kit, out.new_ids[1], "oscar")
    info = tokens.validate(TARGET_APP, (await sign_in(kit, "oscar", TTLHours=168))["PrincipalToken"])
    assert info.duration == timedelta(hours=168)
    for hours in (169, -1):
        with pytest.raises(SysError) as err:
            await sign_in(kit, "oscar", TTLHours=hours)
        assert err.value.status == 400
    token = (await sign_in(kit, "oscar", TTLHours=2))["PrincipalToken"]
    clock.advance(2 * 3600 + 1)
    with pytest.raises(SysError) as err:
        tokens.validate(TARGET_APP, token)
    assert err.value.status == 401


async def test_no_token_issuer_is_500_not_a_token(kit: ExtensionTestKit) -> None:
    out = await create(kit, "pat")
    await profile_ready(kit, out.new_ids[1], "pat")
    unbind_services(kit.app)
    with pytest.raises(SysError) as err:
        await sign_in(kit, "pat")
    assert err.value.status == 500 and "token issuer" in err.value.message


# --- ChangePassword, UpdateGlobalRoles ------------------------------------------------------------


async def change(kit: ExtensionTestKit, login: str, old: str, new: str) -> CommandOutcome:
    return await kit.run_command(
        "registry.ChangePassword",
        {"Login": login, "AppName": TARGET_APP},
        unlogged_args={"OldPassword": old, "NewPassword": new},
        wsid=app_ws_of(login),
    )


async def test_change_password(kit: ExtensionTestKit) -> None:
    out = await create(kit, "quinn")
    await profile_ready(kit, out.new_ids[1], "quinn")
    with pytest.raises(SysError) as err:
        await change(kit, "quinn", "not it", "new secret")
    assert (err.value.status, err.value.message) == (401, "password is incorrect")
    with pytest.raises(SysError) as err:
        await change(kit, "nobody", PASSWORD, "new secret")
    assert err.value.status == 401 and "does not exist" in err.value.message
    with pytest.raises(SysError) as err:
        await change(kit, "quinn", PASSWORD, "n" * 73)
    assert err.value.status == 400
    changed = await change(kit, "quinn", PASSWORD, "new secret")
    assert "new secret" not in orjson.dumps(changed.event.to_json()).decode()
    assert (await sign_in(kit, "quinn", "new secret"))["PrincipalToken"]
    with pytest.raises(SysError) as err:
        await sign_in(kit, "quinn", PASSWORD)
    assert err.value.status == 401


async def test_global_roles_go_into_the_token(kit: ExtensionTestKit, tokens: Tokens) -> None:
    out = await create(kit, "rita")
    await profile_ready(kit, out.new_ids[1], "rita")
    args = {"Login": "rita", "AppName": TARGET_APP}
    with pytest.raises(SysError) as err:
        await kit.run_command(
            "registry.UpdateGlobalRoles", {**args, "GlobalRoles": "shop.Admin,bad role"}, wsid=app_ws_of("rita")
        )
    assert err.value.status == 400
    with pytest.raises(SysError) as err:
        await kit.run_command("registry.UpdateGlobalRoles", {**args, "Login": "nobody"}, wsid=app_ws_of("nobody"))
    assert err.value.status == 401
    await kit.run_command(
        "registry.UpdateGlobalRoles", {**args, "GlobalRoles": "shop.Admin,sys.WorkspaceAdmin"}, wsid=app_ws_of("rita")
    )
    info = tokens.validate(TARGET_APP, (await sign_in(kit, "rita"))["PrincipalToken"])
    assert info.payload.global_roles == (QName("shop", "Admin"), QName("sys", "WorkspaceAdmin"))
    await kit.run_command("registry.UpdateGlobalRoles", args, wsid=app_ws_of("rita"))
    info = tokens.validate(TARGET_APP, (await sign_in(kit, "rita"))["PrincipalToken"])
    assert info.payload.global_roles == ()
