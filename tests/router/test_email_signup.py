"""Signing up by a verified e-mail over HTTP, as in Voedger: q.sys.InitiateEmailVerification
mails a code (here to an in-memory outbox), q.sys.IssueVerifiedValueToken trades it for a verified
value token, and ``POST /users {"verifiedEmailToken","displayName","password"}`` creates the login
through c.registry.CreateEmailLogin."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router.test_identity import APP, RESTAURANT, V2, sign_in, sign_up_and_in
from tests.support import until, v2_error_of
from voedger.apps.sys.mail import Outbox
from voedger.clock import ManualClock
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.vvm.server import VVM, ServerConfig

ENTITY = "registry.CreateEmailLoginParams"


@dataclass
class Env:
    client: httpx.AsyncClient
    outbox: Outbox
    clock: ManualClock
    vvm: VVM


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    outbox = Outbox()
    clock = ManualClock(1_790_000_000)
    config = ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, RESTAURANT)], clock=clock, mailer=outbox)
    vvm = VVM(config)
    await vvm.start()
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield Env(c, outbox, clock, vvm)
    await vvm.stop()


async def query(env: Env, profile: int, auth: dict[str, str], name: str, args: dict[str, Any]) -> httpx.Response:
    return await env.client.get(
        f"{V2}/workspaces/{profile}/queries/sys.{name}", params={"args": json.dumps(args)}, headers=auth
    )


async def initiate(env: Env, profile: int, auth: dict[str, str], email: str, field: str = "Email") -> tuple[str, str]:
    """The verification token and the code mailed to ``email``."""
    args = {"Entity": ENTITY, "Field": field, "Email": email, "TargetWSID": 0, "ForRegistry": True, "Language": "en"}
    r = await query(env, profile, auth, "InitiateEmailVerification", args)
    assert r.status_code == 200, r.text
    token = r.json()["results"][0]["VerificationToken"]
    mail = env.outbox.last_to(email)
    assert mail is not None and mail.subject == "Your verification code"
    match = re.search(r"\b(\d{6})\b", mail.body)
    assert match is not None
    assert token not in mail.body
    return token, match.group(1)


async def issue(env: Env, profile: int, auth: dict[str, str], token: str, code: str) -> httpx.Response:
    args = {"VerificationToken": token, "VerificationCode": code, "ForRegistry": True}
    return await query(env, profile, auth, "IssueVerifiedValueToken", args)


async def test_sign_up_by_verified_email(env: Env) -> None:
    # Somebody with a profile (Voedger grants the verifier to ProfileOwner) verifies the address.
    alice, profile = await sign_up_and_in(env.client, "alice", "pa55word!")
    token, code = await initiate(env, profile, alice, "dave@example.com")
    assert len(code) == 6 and code.isdigit()

    wrong = "000000" if code != "000000" else "111111"
    r = await issue(env, profile, alice, token, wrong)
    assert r.status_code == 400 and v2_error_of(r)["message"] == "invalid verification code", r.text

    r = await issue(env, profile, alice, token, code)
    assert r.status_code == 200, r.text
    verified = r.json()["results"][0]["VerifiedValueToken"]

    body = {"verifiedEmailToken": verified, "displayName": "Dave", "password": "d4ve-secret"}
    r = await env.client.post(f"{V2}/users", json=body)
    assert r.status_code == 201, r.text
    _, dave_profile = await sign_in(env.client, "dave@example.com", "d4ve-secret")
    assert dave_profile > 0 and dave_profile != profile
    r = await env.client.post(f"{V2}/users", json=body)
    assert r.status_code == 409, r.text  # the login exists
    # Email is VERIFIABLE: the registry's log keeps the e-mail, never the token that proved it.
    rows = [v async for p in _plogs(env) for _, v in p]
    assert any(b"dave@example.com" in v for v in rows)
    assert not any(verified.encode() in v for v in rows)

    # The login/password form still works beside it.
    r = await env.client.post(f"{V2}/users", json={"login": "erin", "password": "x"})
    assert r.status_code == 201, r.text


async def test_expired_and_foreign_tokens_are_refused(env: Env) -> None:
    alice, profile = await sign_up_and_in(env.client, "alice", "pa55word!")

    # A code entered after the verification token's 10 minutes.
    token, code = await initiate(env, profile, alice, "frank@example.com")
    env.clock.advance(10 * 60 + 1)
    r = await issue(env, profile, alice, token, code)
    assert r.status_code == 400 and v2_error_of(r)["message"] == "your verification code has expired", r.text

    # A value verified for another field does not create a login.
    token, code = await initiate(env, profile, alice, "frank@example.com", field="Login")
    r = await issue(env, profile, alice, token, code)
    assert r.status_code == 200, r.text
    verified = r.json()["results"][0]["VerifiedValueToken"]
    body = {"verifiedEmailToken": verified, "displayName": "Frank", "password": "fr4nk"}
    r = await env.client.post(f"{V2}/users", json=body)
    assert r.status_code == 400 and "«Login», but «Email» expected" in r.json()["message"], r.text

    # A verified value token expires too; garbage is no token at all.
    token, code = await initiate(env, profile, alice, "frank@example.com")
    r = await issue(env, profile, alice, token, code)
    assert r.status_code == 200, r.text
    verified = r.json()["results"][0]["VerifiedValueToken"]
    env.clock.advance(10 * 60 + 1)
    r = await env.client.post(f"{V2}/users", json={**body, "verifiedEmailToken": verified})
    assert r.status_code == 400 and "verifiedEmailToken validation failed" in r.json()["message"], r.text
    r = await env.client.post(f"{V2}/users", json={**body, "verifiedEmailToken": "not-a-token"})
    assert r.status_code == 400, r.text
    r = await env.client.post(f"{V2}/users", json={"verifiedEmailToken": verified, "password": "x"})
    assert r.status_code == 400 and "displayName" in r.json()["message"], r.text


async def _plogs(env: Env) -> Any:
    """Every PLog entry of sys/registry, partition by partition."""
    from voedger.structs.logs import read_plog_raw

    app = env.vvm.app("sys/registry")
    for pid in app.partitions:
        yield [(o, v) async for o, v in read_plog_raw(app.runtime.storage, pid)]


async def test_send_email_verification_code_command(env: Env) -> None:
    """Voedger's c.sys.SendEmailVerificationCode: the async ApplySendEmailVerificationCode mails
    the code the command carries."""
    alice, profile = await sign_up_and_in(env.client, "alice", "pa55word!")
    url = f"{V2}/workspaces/{profile}/commands/sys.SendEmailVerificationCode"
    args = {"VerificationCode": "424242", "Email": "erin@example.com", "Reason": "to test.", "Language": "en"}
    r = await env.client.post(url, json={"args": args}, headers=alice)
    assert r.status_code == 200, r.text

    async def mailed() -> bool | None:
        return True if env.outbox.last_to("erin@example.com") is not None else None

    await until(mailed)
    mail = env.outbox.last_to("erin@example.com")
    assert mail is not None and mail.subject == "Your verification code"
    assert "424242" in mail.body and "to test." in mail.body
    r = await env.client.post(url, json={"args": {**args, "Email": "not-an-address"}}, headers=alice)
    assert r.status_code == 400 and r.json()["message"].startswith("email validation failed"), r.text
