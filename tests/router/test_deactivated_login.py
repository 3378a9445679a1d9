"""A user deactivates their profile, after Voedger's ``pkg/sys/it/authn_test.go`` (a deactivated
profile, and a login made again): the profile's owner, the registry's Login, goes inactive too,
so the login answers as a missing one everywhere, and its name may be registered again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router.test_identity import APP, V2, sign_up_and_in
from tests.router.test_invites import Env, open_env
from tests.router.test_reset_password import REGISTRY, initiate, pseudo, reset, system, verified_for
from tests.support import until


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with open_env(tmp_path) as e:
        yield e


async def registry(env: Env, login: str, func: str, body: dict[str, Any], system_call: bool = False) -> httpx.Response:
    headers = system(env) if system_call else {}
    return await env.client.post(f"{REGISTRY}/{pseudo(login)}/{func}", json=body, headers=headers)


def refused(r: httpx.Response, status: int, message: str) -> None:
    assert r.status_code == status and r.json()["sys.Error"]["Message"] == message, r.text


async def test_a_deactivated_profile_deactivates_the_login(env: Env) -> None:
    login, password = "dora@example.com", "dora-pa55"
    auth, profile = await sign_up_and_in(env.client, login, password)
    verified = await verified_for(env, login, profile, login)  # a reset begun before

    r = await env.client.post(
        f"{V2}/workspaces/{profile}/commands/sys.InitiateDeactivateWorkspace", json={}, headers=auth
    )
    assert r.status_code == 200, r.text
    sign_in = {
        "args": {"Login": login, "Password": password, "AppName": APP},
        "elements": [{"fields": ["PrincipalToken"]}],
    }

    async def login_gone() -> httpx.Response | None:
        r = await registry(env, login, "q.registry.IssuePrincipalToken", sign_in)
        return r if r.status_code != 200 else None

    refused(await until(login_gone), 401, "login or password is incorrect")
    r = await env.client.get(f"{V2}/workspaces/{profile}/cdocs/sys.UserProfile", headers=auth)
    assert r.status_code == 410, r.text

    missing = f"login {login} does not exist"
    body = {"args": {"Login": login, "AppName": APP}, "unloggedArgs": {"OldPassword": password, "NewPassword": "new"}}
    refused(await registry(env, login, "c.registry.ChangePassword", body), 401, missing)
    r = await initiate(env, login)
    refused(r, 400, "login does not exist")
    refused(await reset(env, login, verified, "new-pa55"), 401, missing)
    body = {"args": {"Login": login, "AppName": APP, "GlobalRoles": ""}}
    refused(await registry(env, login, "c.registry.UpdateGlobalRoles", body, system_call=True), 401, missing)

    # the name may be registered again: a new Login, a new profile
    _, new_profile = await sign_up_and_in(env.client, login, "other-pa55")
    assert new_profile != profile
