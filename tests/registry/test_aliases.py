"""Login aliases and the canonical login's enablement through a real server in-process, over API
v1 at the pseudo WSIDs of logins and aliases, as Voedger's scenarios (``pkg/sys/it``, authn and
sign-up tests) run them: the System sets aliases, anybody signs in by them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from tests.registry import test_server
from tests.registry.test_server import PASSWORD, SHOP, Servers
from voedger.apps.registry import REGISTRY_APP, expected_app_wsid, login_hash
from voedger.structs import wsid as ws

servers = test_server.servers  # the fixture: a server with the registry and test/shop
pytestmark = pytest.mark.parametrize("servers", ["auth"], indirect=True)


def system(servers: Servers) -> dict[str, str]:
    return {"Authorization": f"Bearer {servers.tokens.issue_system(REGISTRY_APP)}"}


def app_ws(identifier: str) -> int:
    return expected_app_wsid(identifier, ws.new_wsid(ws.MAIN_CLUSTER_ID, 0), 10)


async def post(
    servers: Servers, at: str | int, func: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    wsid = ws.pseudo_wsid(at) if isinstance(at, str) else at
    return await servers.client.post(f"/api/{REGISTRY_APP}/{wsid}/{func}", json=body, headers=headers or {})


async def set_alias(
    servers: Servers, login: str, alias: str, *, as_system: bool = True, at: int | None = None
) -> httpx.Response:
    body = {"args": {"Login": login, "AppName": SHOP, "Alias": alias}}
    headers = system(servers) if as_system else None
    return await post(servers, login if at is None else at, "c.registry.InitiateSetLoginAlias", body, headers)


async def set_enabled(
    servers: Servers, login: str, enabled: bool, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"args": {"Login": login, "AppName": SHOP, "Enabled": enabled}}
    return await post(servers, login, "c.registry.SetCanonicalLoginEnablement", body, headers)


async def login_id(servers: Servers, login: str) -> int:
    body = {"args": {"Schema": "registry.Login"}, "elements": [{"fields": ["sys.ID", "LoginHash"]}]}
    r = await post(servers, login, "q.sys.Collection", body, system(servers))
    assert r.status_code == 200, r.text
    for element in r.json()["sections"][0]["elements"]:
        if element[0][0][1] == login_hash(login):
            return int(element[0][0][0])
    raise AssertionError(f"no Login of {login}")


async def login_doc(servers: Servers, login: str) -> dict[str, Any]:
    body = {"args": {"ID": await login_id(servers, login)}, "elements": [{"fields": ["Result"]}]}
    r = await post(servers, login, "q.sys.GetCDoc", body, system(servers))
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = orjson.loads(r.json()["sections"][0]["elements"][0][0][0][0])
    return doc


async def wait_alias(servers: Servers, login: str, alias: str) -> dict[str, Any]:
    """Until ApplySetLoginAlias is done with the Login: it names ``alias``, AliasInProc 0."""
    for _ in range(200):
        doc = await login_doc(servers, login)
        if not doc.get("AliasInProc") and (doc.get("Alias") or "") == alias:
            return doc
        await asyncio.sleep(0.05)
    raise AssertionError(f"the alias of {login} did not become {alias!r}: {doc}")


async def wait_alias_error(servers: Servers, login: str) -> str:
    for _ in range(200):
        doc = await login_doc(servers, login)
        if doc.get("AliasError") and not doc.get("AliasInProc"):
            return str(doc["AliasError"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no AliasError on {login}")


async def new_login(servers: Servers, login: str, password: str = PASSWORD) -> None:
    r = await servers.create_login(login, password)
    assert r.status_code == 200, r.text
    await servers.wait_token(login, password)


def other_ws_name(login: str, prefix: str) -> str:
    """A fresh identifier kept in another application workspace than ``login``: the Login is then
    read through the federation when one signs in by it."""
    n = 0
    while app_ws(f"{prefix}{n}") == app_ws(login):
        n += 1
    return f"{prefix}{n}"


async def test_sign_in_by_alias_names_the_login(servers: Servers) -> None:
    await new_login(servers, "jsmith")
    alias = other_ws_name("jsmith", "j.smith")
    r = await set_alias(servers, "jsmith", alias)
    assert r.status_code == 200, r.text
    doc = await wait_alias(servers, "jsmith", alias)
    assert doc["AliasError"] == "" and doc["AliasInProc"] == 0

    for identifier in (alias, "jsmith"):
        token, profile = await servers.wait_token(identifier)
        payload = servers.tokens.validate(SHOP, token).payload
        assert (payload.login, payload.alias, payload.profile_wsid) == ("jsmith", alias, profile)
    r = await servers.sign_in(alias, "wrong")
    assert r.status_code == 401 and r.json()["sys.Error"]["Message"] == "login or password is incorrect"

    # the same alias again changes nothing
    assert (await set_alias(servers, "jsmith", alias)).status_code == 200
    await wait_alias(servers, "jsmith", alias)
    await servers.wait_token(alias)

    # replaced: the old alias no longer signs in; an alias in the login's own workspace works too
    same_ws = next(f"js{n}" for n in range(10_000) if app_ws(f"js{n}") == app_ws("jsmith"))
    assert (await set_alias(servers, "jsmith", same_ws)).status_code == 200
    await wait_alias(servers, "jsmith", same_ws)
    assert (await servers.sign_in(alias)).status_code == 401
    token, _ = await servers.wait_token(same_ws)
    assert servers.tokens.validate(SHOP, token).payload.alias == same_ws

    # cleared: nobody signs in by it, and another login may take it
    assert (await set_alias(servers, "jsmith", "")).status_code == 200
    await wait_alias(servers, "jsmith", "")
    assert (await servers.sign_in(same_ws)).status_code == 401
    token, _ = await servers.wait_token("jsmith")
    assert servers.tokens.validate(SHOP, token).payload.alias == ""
    await new_login(servers, "kate", "kate-pa55")
    assert (await set_alias(servers, "kate", same_ws)).status_code == 200
    await wait_alias(servers, "kate", same_ws)
    assert (await servers.sign_in(same_ws)).status_code == 401  # jsmith's password
    token, _ = await servers.wait_token(same_ws, "kate-pa55")
    payload = servers.tokens.validate(SHOP, token).payload
    assert (payload.login, payload.alias) == ("kate", same_ws)


async def test_alias_refusals(servers: Servers) -> None:
    await new_login(servers, "lena")
    await new_login(servers, "mike")
    r = await set_alias(servers, "lena", "l.ena", as_system=False)
    assert r.status_code == 403, r.text
    r = await set_alias(servers, "nobody", "n.obody")
    assert r.status_code == 401 and r.json()["sys.Error"]["Message"] == "login nobody does not exist"
    wrong = ws.app_wsid(1, (ws.base_wsid(app_ws("lena")) - ws.FIRST_BASE_APP_WSID + 1) % 10)
    r = await set_alias(servers, "lena", "l.ena", at=wrong)
    assert r.status_code == 403 and "wrong AppWSID" in r.text
    r = await set_alias(servers, "lena", "test@test..com")
    assert r.status_code == 400 and r.json()["sys.Error"]["Message"] == "incorrect login format: test@test..com"

    # one change at a time
    cud = {"cuds": [{"sys.ID": await login_id(servers, "lena"), "fields": {"AliasInProc": 1}}]}
    assert (await post(servers, "lena", "c.sys.CUD", cud, system(servers))).status_code == 200
    r = await set_alias(servers, "lena", "l.ena")
    assert r.status_code == 409 and r.json()["sys.Error"]["Message"] == "login alias update is already in progress"
    cud["cuds"][0]["fields"]["AliasInProc"] = 0
    assert (await post(servers, "lena", "c.sys.CUD", cud, system(servers))).status_code == 200

    # an identifier taken by a login or by another login's alias: AliasError, nothing changes
    assert (await set_alias(servers, "lena", "mike")).status_code == 200
    assert "sign-in identifier already exists" in await wait_alias_error(servers, "lena")
    assert (await login_doc(servers, "lena")).get("Alias") in (None, "")
    await servers.wait_token("mike")
    assert (await set_alias(servers, "mike", "m.ike")).status_code == 200
    await wait_alias(servers, "mike", "m.ike")
    assert (await set_alias(servers, "lena", "m.ike")).status_code == 200
    assert "sign-in identifier already exists" in await wait_alias_error(servers, "lena")
    token, _ = await servers.wait_token("m.ike")
    assert servers.tokens.validate(SHOP, token).payload.login == "mike"

    # a login cannot be made of an active alias
    r = await servers.create_login("m.ike")
    assert r.status_code == 409 and r.json()["sys.Error"]["Message"] == "sign-in identifier already exists"

    # DeactivateLoginAliasIndex refuses to drop another login's alias
    body = {"args": {"AppName": SHOP, "SourceAppWSID": app_ws("lena"), "Alias": "m.ike", "CDocLoginID": 1}}
    r = await post(servers, "m.ike", "c.registry.DeactivateLoginAliasIndex", body, system(servers))
    assert r.status_code == 409 and r.json()["sys.Error"]["Message"] == "login alias belongs to another login"


async def test_canonical_login_disabled(servers: Servers) -> None:
    await new_login(servers, "nora")
    assert "CanonicalLoginDisabled" not in await login_doc(servers, "nora")
    token, _ = await servers.wait_token("nora")
    r = await set_enabled(servers, "nora", False, {"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 or r.status_code == 403, r.text  # a token of the shop, not the registry
    assert (await set_enabled(servers, "nora", False)).status_code == 403
    assert "CanonicalLoginDisabled" not in await login_doc(servers, "nora")

    assert (await set_alias(servers, "nora", "n.ora")).status_code == 200
    await wait_alias(servers, "nora", "n.ora")
    for _ in range(2):
        assert (await set_enabled(servers, "nora", False, system(servers))).status_code == 200
    doc = await login_doc(servers, "nora")
    assert doc["CanonicalLoginDisabled"] is True and doc["Alias"] == "n.ora"
    r = await servers.sign_in("nora")
    assert r.status_code == 401 and r.json()["sys.Error"]["Message"] == "login or password is incorrect"
    token, _ = await servers.wait_token("n.ora")
    payload = servers.tokens.validate(SHOP, token).payload
    assert (payload.login, payload.alias) == ("nora", "n.ora")
    r = await servers.create_login("nora", "other")
    assert r.status_code == 409, r.text  # still reserved

    r = await set_enabled(servers, "ghost", True, system(servers))
    assert r.status_code == 401 and "does not exist" in r.text
    assert (await set_enabled(servers, "nora", True, system(servers))).status_code == 200
    assert (await login_doc(servers, "nora"))["CanonicalLoginDisabled"] is False
    token, _ = await servers.wait_token("nora")
    assert servers.tokens.validate(SHOP, token).payload.alias == "n.ora"
