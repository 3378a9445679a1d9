"""The registry's helpers that others call (router, server) and q.sys.RefreshPrincipalToken."""

from __future__ import annotations

import zlib
from datetime import timedelta
from typing import Any

import pytest

from tests.registry.conftest import TARGET_APP
from voedger.appdef import QName
from voedger.apps.registry import (
    REGISTRY_APP,
    REGISTRY_APP_DIR,
    AuthServices,
    bind_services,
    bound_services,
    check_login_format,
    create_login_args,
    device_credentials,
    expected_app_wsid,
    profile_ws_name,
    refresh_principal_token,
    unbind_services,
)
from voedger.auth.tokens import PrincipalPayload, SubjectKind, Tokens
from voedger.clock import ManualClock
from voedger.state import Intents, QueryContext
from voedger.state.access import Access
from voedger.structs import wsid as ws
from voedger.structs.pending import Pending
from voedger.syserror import SysError
from voedger.testkit import ExtensionTestKit
from voedger.vvm.image import load_image

PROFILE = ws.new_wsid(1, ws.FIRST_BASE_USER_WSID + 7)


def test_the_image_loads_with_voedgers_numbers() -> None:
    image = load_image(REGISTRY_APP, REGISTRY_APP_DIR)
    assert (image.num_partitions, image.num_app_workspaces) == (10, 10)
    assert sorted(str(i.qname) for i in image.impls) == [
        "registry.ApplySetLoginAlias",
        "registry.ChangePassword",
        "registry.CreateEmailLogin",
        "registry.CreateLogin",
        "registry.DeactivateLoginAliasIndex",
        "registry.InitiateResetPasswordByEmail",
        "registry.InitiateSetLoginAlias",
        "registry.InvokeCreateWorkspaceID_registry",
        "registry.IssuePrincipalToken",
        "registry.IssueVerifiedValueTokenForResetPassword",
        "registry.ProjectorLoginIdx",
        "registry.PutLoginAliasIndex",
        "registry.ResetPasswordByEmail",
        "registry.SetCanonicalLoginEnablement",
        "registry.UpdateGlobalRoles",
    ]
    # Not Voedger's rate of one password change a minute per partition (see voedger.auth.attempts).
    assert image.appdef.find(QName("registry", "ChangePasswordLimit")) is None


def test_app_workspace_of_a_login_as_voedger() -> None:
    # the reference's example: "alice" -> crc16 48199 -> app workspace 9 of 10
    assert ws.crc16(b"alice") == 48199
    assert expected_app_wsid("alice", ws.app_wsid(1, 0), 10) == 140737488420873
    assert expected_app_wsid("alice", ws.app_wsid(3, 5), 10) == ws.app_wsid(3, 9)  # the request's cluster


def test_profile_name_is_crc32_of_the_login_hash() -> None:
    assert profile_ws_name("abc") == str(zlib.crc32(b"abc"))


def test_device_credentials() -> None:
    seen = set()
    for _ in range(20):
        login, password = device_credentials()
        assert login.startswith("device") and len(login) == 32 and len(password) == 26
        check_login_format(login)
        seen.add((login, password))
    assert len(seen) == 20


def test_create_login_args() -> None:
    wsid, body = create_login_args("devicex", "pw", TARGET_APP, subject_kind=SubjectKind.DEVICE)
    assert wsid == ws.pseudo_wsid("devicex") and ws.is_pseudo(wsid)
    assert body == {
        "args": {
            "Login": "devicex",
            "AppName": TARGET_APP,
            "SubjectKind": 2,
            "WSKindInitializationData": "{}",
            "ProfileCluster": 1,
        },
        "unloggedArgs": {"Password": "pw"},
    }


def test_binding_is_per_application_definition() -> None:
    a = ExtensionTestKit(REGISTRY_APP_DIR).app
    b = ExtensionTestKit(REGISTRY_APP_DIR).app
    services = AuthServices(Tokens(b"k" * 64))
    bind_services(a, services)
    try:
        assert bound_services(a) is services and bound_services(b) is None
        assert "k" * 8 not in repr(services)
    finally:
        unbind_services(a)
    assert bound_services(a) is None


# --- q.sys.RefreshPrincipalToken ------------------------------------------------------------------


async def refresh(kit: ExtensionTestKit, caller: Any) -> str:
    query = kit.app.query("sys.RefreshPrincipalToken")
    access = Access.of(kit.app, query, unrestricted=True)
    principal = {"login": "sam", "token": caller}
    state = kit.runtime.state(
        access, Pending(kit.runtime.storage), PROFILE, query=QueryContext(PROFILE, None, principal)
    )
    intents = Intents(access)
    await refresh_principal_token(state, intents)
    [row] = intents.results
    token = row["NewPrincipalToken"]
    assert isinstance(token, str)
    return token


async def test_refresh_keeps_payload_and_ttl(kit: ExtensionTestKit, tokens: Tokens, clock: ManualClock) -> None:
    app = kit.runtime.name
    payload = PrincipalPayload(login="sam", profile_wsid=PROFILE, global_roles=(QName("x", "Y"),))
    old = tokens.issue(app, payload, timedelta(hours=3))
    clock.advance(3600)
    for caller in (tokens.validate(app, old), old):
        info = tokens.validate(app, await refresh(kit, caller))
        assert info.payload == payload and info.duration == timedelta(hours=3)
        assert info.expires_at == clock.now() + 3 * 3600


async def test_refresh_refuses_what_is_not_this_apps_token(kit: ExtensionTestKit, tokens: Tokens) -> None:
    other = tokens.issue("other/app", PrincipalPayload(login="sam", profile_wsid=PROFILE))
    for caller in (None, "", "not a token", other, tokens.validate("other/app", other)):
        with pytest.raises(SysError) as err:
            await refresh(kit, caller)
        assert err.value.status == 401
