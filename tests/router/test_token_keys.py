"""The server signs tokens with its cluster's Ed25519 key and verifies them with its key ring, over
HTTP: a worker cluster's System token is accepted, a user token a worker signed is a 401, and a
server upgraded from HS256 still accepts the tokens it issued before, for the upgrade window."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import orjson
import pytest

from tests.router.test_auth import system_cud
from voedger.auth import ClusterKeys, PrincipalPayload, StorageSecretStore, Tokens, generate_secret, jwt_secret
from voedger.auth.keystore import LEGACY_HMAC_WINDOW
from voedger.clock import ManualClock
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.storage import open_storage
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, VVM_APP, ServerConfig

APP = "untill/restaurant"
RESTAURANT = Path(__file__).resolve().parents[2] / "examples" / "restaurant"
ALICE_PROFILE = new_wsid(1, 300_001)
WS = new_wsid(1, 300_003)
LOCATION = {
    "cuds": [{"fields": {"sys.ID": 1, "sys.QName": "service.Location", "Name": "Centre", "TimeZone": "Europe/Rome"}}]
}
Env = tuple[VVM, httpx.AsyncClient, ManualClock]


async def _env(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Env]:
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, RESTAURANT)], clock=clock))
    await vvm.start()
    desc = {"sys.QName": "sys.WorkspaceDescriptor", "CreatedAtMs": 1, "InitCompletedAtMs": 1}
    await system_cud(
        vvm,
        WS,
        {**desc, "WSName": "trattoria", "WSKind": "restaurant.RestaurantDescriptor", "OwnerWSID": ALICE_PROFILE},
        {"sys.QName": "restaurant.RestaurantDescriptor", "Name": "Trattoria", "Currency": "EUR"},
    )
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield vvm, client, clock
    await vvm.stop()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async for e in _env(tmp_path, ManualClock(1_790_000_000)):
        yield e


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    decoded: dict[str, object] = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


async def test_tokens_are_eddsa_of_the_servers_key(env: Env) -> None:
    vvm, client, _ = env
    assert vvm.tokens is not None
    r = await client.post(
        "/api/v2/apps/sys/registry/auth/login", json={"login": "nobody", "password": "x" * 8, "wsid": 1}
    )
    assert r.status_code in (400, 401, 404), r.text  # the surface is unchanged: a wrong login is refused
    token = vvm.tokens.issue_system(APP)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": vvm.tokens.keys.signing.kid, "typ": "JWT"}
    assert vvm.tokens.keys.cluster_id == 1 and vvm.tokens.may_issue_principals
    r = await client.post(f"/api/{APP}/{WS}/c.sys.CUD", json=LOCATION, headers=_bearer(token))
    assert r.status_code == 200, r.text


async def test_a_workers_system_token_passes_its_user_token_is_401(env: Env) -> None:
    vvm, client, clock = env
    assert vvm.tokens is not None
    worker = Tokens(generate_secret(), clock, ClusterKeys.ephemeral(2, clock))
    vvm.tokens.keys.ring.update_cluster(2, worker.keys.jwks())  # as the federation directory does

    r = await client.post(f"/api/{APP}/{WS}/c.sys.CUD", json=LOCATION, headers=_bearer(worker.issue_system(APP)))
    assert r.status_code == 200, r.text

    alice = _claims(vvm.tokens.issue(APP, PrincipalPayload(login="alice", profile_wsid=ALICE_PROFILE)))
    forged = worker.keys.signing.sign(alice | {"IssuerClusterID": 2})
    for path in (f"/api/{APP}/{WS}/c.sys.CUD", f"/api/v2/apps/{APP}/workspaces/{WS}/commands/sys.CUD"):
        r = await client.post(path, json=LOCATION, headers=_bearer(forged))
        assert r.status_code == 401, r.text
        assert "may not issue the tokens of users" in r.text

    vvm.tokens.keys.ring.remove_cluster(2)
    r = await client.post(f"/api/{APP}/{WS}/c.sys.CUD", json=LOCATION, headers=_bearer(worker.issue_system(APP)))
    assert r.status_code == 401, r.text


async def test_an_upgraded_server_accepts_its_hs256_tokens_for_a_week(tmp_path: Path) -> None:
    clock = ManualClock(1_790_000_000)
    provider = open_storage(f"sqlite://{tmp_path}", clock)  # the data directory of before the upgrade
    await provider.open(server=True)
    secret = await jwt_secret(StorageSecretStore(await provider.app_storage(VVM_APP)))
    await provider.close()
    old = jwt.encode(
        PrincipalPayload(login="system", profile_wsid=0).to_claims()
        | {
            "iat": int(clock.now()) - 60,
            "exp": int(clock.now()) + 168 * 3600,
            "aud": "payloads.PrincipalPayload",
            "Duration": 168 * 3600 * 10**9,
            "AppQName": APP,
            "IssuedAt": "2026-09-21T13:45:20Z",
        },
        secret,
        algorithm="HS256",
    )
    clock.advance(120)
    async for vvm, client, _ in _env(tmp_path, clock):
        assert vvm.tokens is not None
        assert vvm.tokens.keys.hmac_until == clock.now() + LEGACY_HMAC_WINDOW
        r = await client.post(f"/api/{APP}/{WS}/c.sys.CUD", json=LOCATION, headers=_bearer(old))
        assert r.status_code == 200, r.text
        fresh = jwt.encode(_claims(old) | {"iat": int(clock.now())}, secret, algorithm="HS256")
        r = await client.post(f"/api/{APP}/{WS}/c.sys.CUD", json=LOCATION, headers=_bearer(fresh))
        assert r.status_code == 401, r.text  # HS256 issued after the upgrade
        clock.advance(timedelta(hours=168).total_seconds())
        r = await client.post(f"/api/{APP}/{WS}/c.sys.CUD", json=LOCATION, headers=_bearer(old))
        assert r.status_code == 401, r.text


async def test_processes_of_a_cluster_reload_the_keys(tmp_path: Path) -> None:
    vvm = VVM(
        ServerConfig(storage_url=f"sqlite://{tmp_path}", cluster=True, advertise="http://127.0.0.1:9", join_later=True)
    )
    await vvm.start()
    task = vvm.key_reloads
    try:
        assert task is not None and not task.done()
    finally:
        await vvm.stop()
    await asyncio.sleep(0)
    assert task.cancelled() and vvm.key_reloads is None


async def test_a_single_server_does_not(env: Env) -> None:
    assert env[0].key_reloads is None
