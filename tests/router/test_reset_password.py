"""Resetting a forgotten password by e-mail over HTTP, after Voedger's
``pkg/sys/it/impl_resetpassword_test.go``: the registry mails a code, trades it for a verified
value token, and ResetPasswordByEmail sets the new password; signing in then takes it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router.test_identity import APP, V2, sign_in, sign_up_and_in
from tests.router.test_invites import Env, open_env
from tests.support import until
from voedger.structs import wsid as ws

REGISTRY = "/api/sys/registry"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with open_env(tmp_path) as e:
        yield e


def pseudo(login: str) -> int:
    return ws.pseudo_wsid(login, 1)


async def call(env: Env, email: str, name: str, body: dict[str, Any]) -> httpx.Response:
    return await env.client.post(f"{REGISTRY}/{pseudo(email)}/{name}", json=body)


def first_row(r: httpx.Response) -> list[Any]:
    assert r.status_code == 200, r.text
    return r.json()["sections"][0]["elements"][0][0][0]  # type: ignore[no-any-return]


async def initiate(env: Env, email: str) -> httpx.Response:
    body = {
        "args": {"AppName": APP, "Email": email, "Language": "en"},
        "elements": [{"fields": ["VerificationToken", "ProfileWSID", "CanonicalPseudoWSID"]}],
    }
    return await call(env, email, "q.registry.InitiateResetPasswordByEmail", body)


async def issue(env: Env, email: str, token: str, code: str, profile: int) -> httpx.Response:
    body = {
        "args": {"VerificationToken": token, "VerificationCode": code, "ProfileWSID": profile, "AppName": APP},
        "elements": [{"fields": ["VerifiedValueToken"]}],
    }
    return await call(env, email, "q.registry.IssueVerifiedValueTokenForResetPassword", body)


async def reset(env: Env, email: str, verified: str, new_password: str) -> httpx.Response:
    body = {"args": {"AppName": APP}, "unloggedArgs": {"Email": verified, "NewPwd": new_password}}
    return await call(env, email, "c.registry.ResetPasswordByEmail", body)


async def test_reset_password_by_email(env: Env) -> None:
    email = "ivy@example.com"
    _, profile = await sign_up_and_in(env.client, email, "old-pa55word")
    token, got_profile, canonical = first_row(await initiate(env, email))
    assert got_profile == profile and canonical == pseudo(email)
    mail = env.outbox.last_to(email)
    assert mail is not None
    match = re.search(r"\b(\d{6})\b", mail.body)
    assert match is not None
    code = match.group(1)
    assert token not in mail.body

    wrong = "000000" if code != "000000" else "111111"
    r = await issue(env, email, token, wrong, profile)
    assert r.status_code == 400 and r.json()["sys.Error"]["Message"] == "invalid verification code", r.text
    [verified] = first_row(await issue(env, email, token, code, profile))

    # The verification token itself is no verified value.
    r = await reset(env, email, token, "new-pa55word")
    assert r.status_code == 400, r.text
    r = await reset(env, email, verified, "new-pa55word")
    assert r.status_code == 200, r.text
    r = await env.client.post(f"{V2}/auth/login", json={"login": email, "password": "old-pa55word"})
    assert r.status_code == 401, r.text
    await sign_in(env.client, email, "new-pa55word")


async def test_reset_password_refusals(env: Env) -> None:
    r = await initiate(env, "nobody@example.com")
    assert r.status_code == 400 and r.json()["sys.Error"]["Message"] == "login does not exist", r.text
    body = {"args": {"AppName": "no-slash", "Email": "x@example.com"}}
    r = await call(env, "x@example.com", "q.registry.InitiateResetPasswordByEmail", body)
    assert r.status_code == 400, r.text
    # A verified value token for another field (signing up) does not reset a password.
    r = await reset(env, "x@example.com", "not-a-token", "new-pa55word")
    assert r.status_code == 400, r.text


# --- by a login alias, after Voedger's pkg/sys/it/authn_test.go (reset by alias, a disabled
# canonical login) -----------------------------------------------------------------------------


def system(env: Env) -> dict[str, str]:
    assert env.vvm.tokens is not None
    return {"Authorization": f"Bearer {env.vvm.tokens.issue_system('sys/registry')}"}


async def set_alias(env: Env, login: str, alias: str, password: str) -> None:
    """The System gives ``login`` the alias (or clears it); back once signing in shows it."""
    body = {"args": {"Login": login, "AppName": APP, "Alias": alias}}
    r = await env.client.post(
        f"{REGISTRY}/{pseudo(login)}/c.registry.InitiateSetLoginAlias", json=body, headers=system(env)
    )
    assert r.status_code == 200, r.text

    async def applied() -> bool | None:
        r = await env.client.post(f"{V2}/auth/login", json={"login": login, "password": password})
        if r.status_code != 200:
            return None
        token = r.json()["principalToken"]
        assert env.vvm.tokens is not None
        return True if env.vvm.tokens.validate(APP, token).payload.alias == alias else None

    await until(applied)


async def set_enabled(env: Env, login: str, enabled: bool) -> None:
    body = {"args": {"Login": login, "AppName": APP, "Enabled": enabled}}
    r = await call(env, login, "c.registry.SetCanonicalLoginEnablement", {**body})
    assert r.status_code == 403, r.text  # the System's only
    r = await env.client.post(
        f"{REGISTRY}/{pseudo(login)}/c.registry.SetCanonicalLoginEnablement", json=body, headers=system(env)
    )
    assert r.status_code == 200, r.text


async def login_with_alias(env: Env, login: str, alias: str, password: str = "old-pa55word") -> int:
    _, profile = await sign_up_and_in(env.client, login, password)
    await set_alias(env, login, alias, password)
    return profile


async def verified_for(env: Env, identifier: str, profile: int, canonical: str) -> str:
    """Steps 1 and 2 by ``identifier`` (a login or an alias) at its own pseudo WSID."""
    token, got_profile, got_canonical = first_row(await initiate(env, identifier))
    assert (got_profile, got_canonical) == (profile, pseudo(canonical))
    mail = env.outbox.last_to(identifier)
    assert mail is not None
    match = re.search(r"\b(\d{6})\b", mail.body)
    assert match is not None
    [verified] = first_row(await issue(env, identifier, token, match.group(1), profile))
    return str(verified)


def assert_unknown(r: httpx.Response) -> None:
    assert r.status_code == 400 and r.json()["sys.Error"]["Message"] == "login does not exist", r.text


async def test_reset_password_by_alias(env: Env) -> None:
    login, alias = "jsmith@example.com", "j.smith@example.com"
    profile = await login_with_alias(env, login, alias)
    verified = await verified_for(env, alias, profile, login)  # mailed to the alias
    r = await reset(env, login, verified, "alias-pa55word")  # at the login's own pseudo WSID
    assert r.status_code == 200, r.text
    await sign_in(env.client, login, "alias-pa55word")
    await sign_in(env.client, alias, "alias-pa55word")

    # an alias that was replaced, or cleared, resets nothing: an unknown login
    await set_alias(env, login, "js@example.com", "alias-pa55word")
    assert_unknown(await initiate(env, alias))
    await set_alias(env, login, "", "alias-pa55word")
    assert_unknown(await initiate(env, "js@example.com"))


async def test_reset_password_with_the_canonical_login_disabled(env: Env) -> None:
    login, alias = "kate@example.com", "k.ate@example.com"
    profile = await login_with_alias(env, login, alias)

    # a reset begun before the login was disabled still completes
    verified = await verified_for(env, login, profile, login)
    await set_enabled(env, login, False)
    r = await reset(env, login, verified, "second-pa55word")
    assert r.status_code == 200, r.text
    await sign_in(env.client, alias, "second-pa55word")

    # disabled: the login answers as an unknown one, its alias resets as before
    assert_unknown(await initiate(env, login))
    verified = await verified_for(env, alias, profile, login)
    r = await reset(env, login, verified, "third-pa55word")
    assert r.status_code == 200, r.text
    await sign_in(env.client, alias, "third-pa55word")

    # enabled again: the login resets too
    await set_enabled(env, login, True)
    await verified_for(env, login, profile, login)


async def test_change_password_takes_the_login_only(env: Env) -> None:
    """Voedger's ChangePassword finds the login itself (an alias is an unknown login), and a login
    disabled as a sign-in identifier still changes its password."""
    login, alias = "liam@example.com", "l.iam@example.com"
    await login_with_alias(env, login, alias)
    body = {"login": alias, "oldPassword": "old-pa55word", "newPassword": "new-pa55word"}
    r = await env.client.post(f"{V2}/users/change-password", json=body)
    assert r.status_code == 401 and r.json()["message"] == f"login {alias} does not exist", r.text
    await set_enabled(env, login, False)
    env.clock.advance(61)  # ChangePasswordRate: one a minute per partition, the refusal counted
    r = await env.client.post(f"{V2}/users/change-password", json={**body, "login": login})
    assert r.status_code == 200, r.text
    await sign_in(env.client, alias, "new-pa55word")
