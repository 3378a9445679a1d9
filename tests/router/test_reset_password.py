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
