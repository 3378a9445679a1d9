"""The API v2 identity endpoints' refusals, after Voedger's ``pkg/sys/it/authn_test.go``
(sign-in, refresh, password change and user creation with malformed bodies): the status codes
and the words Voedger's router and registry answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.router.test_identity import V2, sign_up_and_in
from tests.router.test_invites import Env, open_env
from voedger.apps.registry import REGISTRY_APP, login_hash
from voedger.structs import wsid as ws

EMPTY = "field is empty: Object «registry.IssuePrincipalTokenParams» string-field «{}»: validate error code 4"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with open_env(tmp_path) as e:
        yield e


async def post(env: Env, path: str, body: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    r = await env.client.post(f"{V2}/{path}", content=body, headers=headers or {})
    answer = r.json()
    assert answer["status"] == r.status_code, r.text
    return r.status_code, str(answer["message"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{}", "\n".join(EMPTY.format(f) for f in ("Login", "Password"))),
        ('{"password": "pwd"}', EMPTY.format("Login")),
        ('{"UnknownField": "pat", "password": "pwd"}', EMPTY.format("Login")),
        ('{"login": "", "password": "pwd"}', EMPTY.format("Login")),
        ('{"login": "pat"}', EMPTY.format("Password")),
        ('{"login": "pat", "UnknownField": "pwd"}', EMPTY.format("Password")),
        ('{"login": 42}', 'field "login" must be a string: field type mismatch'),
        ('{"password": 42}', 'field "password" must be a string: field type mismatch'),
    ],
)
async def test_sign_in_refuses_malformed_bodies(env: Env, body: str, message: str) -> None:
    assert await post(env, "auth/login", body) == (400, message)


async def test_refresh_needs_a_token(env: Env) -> None:
    assert await post(env, "auth/refresh", "") == (401, "authorization header is empty")
    auth, _ = await sign_up_and_in(env.client, "pat@example.com", "pa55word")
    r = await env.client.post(f"{V2}/auth/refresh", headers=auth)
    assert r.status_code == 200, r.text
    env.clock.advance(2 * 3600)
    assert await post(env, "auth/refresh", "", auth) == (401, "token expired")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{}", "login field missing"),
        ('{"login": "abc"}', "oldPassword field missing"),
        ('{"login": "abc", "oldPassword": "1"}', "newPassword field missing"),
        ('{"login": "abc", "newPassword": "2"}', "oldPassword field missing"),
        ('{"login": 1, "oldPassword": "1", "newPassword": "2"}', 'field "login" must be a string: field type mismatch'),
        (
            '{"login": "abc", "oldPassword": 1, "newPassword": "2"}',
            'field "oldPassword" must be a string: field type mismatch',
        ),
        (
            '{"login": "abc", "oldPassword": "1", "newPassword": 2}',
            'field "newPassword" must be a string: field type mismatch',
        ),
    ],
)
async def test_change_password_refuses_malformed_bodies(env: Env, body: str, message: str) -> None:
    assert await post(env, "users/change-password", body) == (400, message)


async def test_change_password_of_an_unknown_login(env: Env) -> None:
    body = '{"login": "nobody", "oldPassword": "1", "newPassword": "2"}'
    assert await post(env, "users/change-password", body) == (401, "login nobody does not exist")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"password": "123", "displayName": "x"}', "verifiedEmailToken field missing"),
        ('{"verifiedEmailToken": "t", "password": "123"}', "displayName field missing"),
        ('{"verifiedEmailToken": "t", "displayName": "x"}', "password field missing"),
        ('{"verifiedEmailToken": 1, "displayName": "x", "password": "123"}', "must be a string: field type mismatch"),
    ],
)
async def test_user_creation_refuses_malformed_bodies(env: Env, body: str, message: str) -> None:
    status, text = await post(env, "users", body)
    assert status == 400 and message in text


async def test_user_creation_refuses_an_invalid_token(env: Env) -> None:
    status, text = await post(
        env, "users", '{"verifiedEmailToken": "invalid-token", "password": "1", "displayName": "x"}'
    )
    assert status == 400 and "verifiedEmailToken" in text


async def set_profile_state(env: Env, login: str, wsid: int, error: str) -> None:
    """The System writes the Login's profile WSID and error, as Voedger's test does."""
    assert env.vvm.tokens is not None
    system = {"Authorization": f"Bearer {env.vvm.tokens.issue_system(REGISTRY_APP)}"}
    at = f"/api/{REGISTRY_APP}/{ws.pseudo_wsid(login, 1)}"
    body = {"args": {"Schema": "registry.Login"}, "elements": [{"fields": ["sys.ID", "LoginHash"]}]}
    r = await env.client.post(f"{at}/q.sys.Collection", json=body, headers=system)
    assert r.status_code == 200, r.text
    [login_id] = [e[0][0][0] for e in r.json()["sections"][0]["elements"] if e[0][0][1] == login_hash(login)]
    cud = {"cuds": [{"sys.ID": login_id, "fields": {"WSID": wsid, "WSError": error}}]}
    r = await env.client.post(f"{at}/c.sys.CUD", json=cud, headers=system)
    assert r.status_code == 200, r.text


async def test_sign_in_reports_the_profile_state(env: Env) -> None:
    _, profile = await sign_up_and_in(env.client, "pat@example.com", "pa55word")
    body = '{"login": "pat@example.com", "password": "pa55word"}'
    await set_profile_state(env, "pat@example.com", 0, "")
    assert await post(env, "auth/login", body) == (409, "profile workspace is not yet ready, try again later")
    await set_profile_state(env, "pat@example.com", profile, "profile-create-failed")
    status, message = await post(env, "auth/login", body)
    assert (status, message) == (500, "the login profile is created with an error: profile-create-failed")
