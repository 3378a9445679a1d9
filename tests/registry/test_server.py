"""Sign-up and sign-in through a real server in-process: the registry (sys/registry) and a target
application (test/shop), the router over httpx's ASGI transport, API v1 at the login's pseudo WSID.

Each test runs twice: with ``insecure_dev`` (no authentication, every ACL check passes) and with
the auth layer (requests without a token are sys.Anonymous, the registry's GRANTs let them sign up
and sign in). The server does not bind the registry's token issuer yet: the fixture does, as the
server is to do at start.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from voedger.apps.registry import (
    REGISTRY_APP,
    create_login_args,
    device_credentials,
)
from voedger.auth.tokens import SubjectKind, Tokens
from voedger.processors.command import WS_DESCRIPTOR
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs import wsid as ws
from voedger.structs.pending import Pending
from voedger.structs.records import get_record
from voedger.vvm.server import VVM, LocalFederation, ServerConfig

SHOP_DIR = Path(__file__).parent.parent / "router" / "shop"
SHOP = "test/shop"
PASSWORD = "pa55word"


class Servers:
    def __init__(self, vvm: VVM, client: httpx.AsyncClient, tokens: Tokens, *, secure: bool) -> None:
        self.vvm = vvm
        self.client = client
        self.tokens = tokens
        self.secure = secure

    async def call(self, login: str, func: str, body: dict[str, Any], wsid: int | None = None) -> httpx.Response:
        at = ws.pseudo_wsid(login) if wsid is None else wsid
        return await self.client.post(f"/api/{REGISTRY_APP}/{at}/{func}", json=body)

    async def create_login(self, login: str, password: str = PASSWORD, **over: Any) -> httpx.Response:
        wsid, body = create_login_args(login, password, SHOP)
        body["args"].update(over)
        return await self.call(login, "c.registry.CreateLogin", body, wsid)

    async def sign_in(self, login: str, password: str = PASSWORD) -> httpx.Response:
        body = {
            "args": {"Login": login, "Password": password, "AppName": SHOP},
            "elements": [{"fields": ["PrincipalToken", "WSID", "WSError"]}],
        }
        return await self.call(login, "q.registry.IssuePrincipalToken", body)

    async def wait_token(self, login: str, password: str = PASSWORD, timeout: float = 20.0) -> tuple[str, int]:
        """Sign in until the profile is ready: the token and the profile's WSID."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            r = await self.sign_in(login, password)
            assert r.status_code == 200, r.text
            token, wsid, error = r.json()["sections"][0]["elements"][0][0][0]
            assert not error, error
            if token:
                assert wsid
                return token, wsid
            assert wsid == 0
            assert asyncio.get_running_loop().time() < deadline, f"the profile of {login} is not ready"
            await asyncio.sleep(0.05)


@pytest.fixture(params=["insecure", "auth"])
async def servers(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Servers]:
    insecure = request.param == "insecure"
    vvm = VVM(
        ServerConfig(
            storage_url=f"sqlite://{tmp_path}",
            apps=[(SHOP, SHOP_DIR)],  # the server deploys sys/registry itself
            insecure_dev=insecure,
        )
    )
    await vvm.start()
    assert vvm.tokens is not None
    app = build_app(vvm, {1: LocalTransport(vvm)})
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield Servers(vvm, client, vvm.tokens, secure=not insecure)
    finally:
        await vvm.stop()


async def profile_kind(vvm: VVM, wsid: int) -> str:
    rt = vvm.apps[SHOP].runtime
    descriptor = await get_record(Pending(rt.storage), wsid, rt.singleton_ids[WS_DESCRIPTOR])
    assert descriptor is not None
    return str(descriptor["WSKind"])


async def test_sign_up_and_sign_in(servers: Servers) -> None:
    r = await servers.create_login("alice@example.com", WSKindInitializationData='{"DisplayName":"Alice"}')
    assert r.status_code == 200, r.text
    token, profile = await servers.wait_token("alice@example.com")
    assert ws.base_wsid(profile) >= ws.FIRST_BASE_USER_WSID and ws.cluster_id(profile) == 1
    info = servers.tokens.validate(SHOP, token)
    assert info.payload.login == "alice@example.com" and info.payload.profile_wsid == profile
    assert info.payload.subject_kind == SubjectKind.USER
    assert await profile_kind(servers.vvm, profile) == "sys.UserProfile"

    # the token opens the profile in the target application
    url = f"/api/v2/apps/{SHOP}/workspaces/{profile}/docs/sys.UserProfile"
    r = await servers.client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["DisplayName"] == "Alice"
    if servers.secure:
        assert (await servers.client.get(url)).status_code == 403
        other = await servers.client.get(url.replace(SHOP, REGISTRY_APP), headers={"Authorization": f"Bearer {token}"})
        assert other.status_code == 401  # a token for test/shop is not one for the registry

    r = await servers.sign_in("alice@example.com", "wrong")
    assert r.status_code == 401 and "login or password is incorrect" in r.text
    r = await servers.sign_in("nobody@example.com")
    assert r.status_code == 401 and "login or password is incorrect" in r.text

    r = await servers.create_login("alice@example.com", "other")
    assert r.status_code == 409 and "sign-in identifier already exists" in r.text


async def test_refusals(servers: Servers) -> None:
    right = ws.pseudo_to_app_wsid(ws.pseudo_wsid("bob"), 10)
    wrong = ws.app_wsid(1, (ws.base_wsid(right) - ws.FIRST_BASE_APP_WSID + 1) % 10)
    _, body = create_login_args("bob", PASSWORD, SHOP)
    r = await servers.call("bob", "c.registry.CreateLogin", body, wrong)
    assert r.status_code == 403 and "wrong AppWSID" in r.text

    r = await servers.create_login("Bad Login")
    assert r.status_code == 400 and "incorrect login format" in r.text

    r = await servers.create_login("bob", AppName="nope/app")
    assert r.status_code == 400 and "target app nope/app is not found" in r.text

    r = await servers.create_login("bob", SubjectKind=7)
    assert r.status_code == 400


async def test_change_password(servers: Servers) -> None:
    assert (await servers.create_login("carol")).status_code == 200
    await servers.wait_token("carol")
    body = {
        "args": {"Login": "carol", "AppName": SHOP},
        "unloggedArgs": {"OldPassword": PASSWORD, "NewPassword": "n3w password"},
    }
    r = await servers.call("carol", "c.registry.ChangePassword", body)
    assert r.status_code == 200, r.text
    token, _ = await servers.wait_token("carol", "n3w password")
    assert servers.tokens.validate(SHOP, token).payload.login == "carol"
    r = await servers.sign_in("carol", PASSWORD)
    assert r.status_code == 401


async def test_device_login(servers: Servers) -> None:
    login, password = device_credentials()
    wsid, body = create_login_args(login, password, SHOP, subject_kind=SubjectKind.DEVICE)
    r = await servers.call(login, "c.registry.CreateLogin", body, wsid)
    assert r.status_code == 200, r.text
    token, profile = await servers.wait_token(login, password)
    info = servers.tokens.validate(SHOP, token)
    assert info.payload.subject_kind == SubjectKind.DEVICE and info.payload.profile_wsid == profile
    assert await profile_kind(servers.vvm, profile) == "sys.DeviceProfile"


@pytest.mark.parametrize("servers", ["auth"], indirect=True)
async def test_what_anonymous_may_not_do(servers: Servers) -> None:
    assert (await servers.create_login("dora")).status_code == 200
    await servers.wait_token("dora")
    body = {"args": {"Login": "dora", "AppName": SHOP, "GlobalRoles": "sys.WorkspaceAdmin"}}
    r = await servers.call("dora", "c.registry.UpdateGlobalRoles", body)
    assert r.status_code == 403, r.text
    collection = {"args": {"Schema": "registry.Login"}, "elements": [{"fields": ["PwdHash", "LoginHash"]}]}
    r = await servers.call("dora", "q.sys.Collection", collection)
    assert r.status_code == 403, r.text
    # the System may: what an operator's tooling does through the federation
    app_ws = ws.pseudo_to_app_wsid(ws.pseudo_wsid("dora"), 10)
    reply = await LocalFederation(servers.vvm).command(REGISTRY_APP, app_ws, "c.registry.UpdateGlobalRoles", body)
    assert reply.status == 200, reply.message
    token, _ = await servers.wait_token("dora")
    assert [str(r) for r in servers.tokens.validate(SHOP, token).payload.global_roles] == ["sys.WorkspaceAdmin"]
