"""Whatever a client sends as a login, a password or an Authorization header, the identity
endpoints answer 2xx or 4xx in Voedger's shape: never a 500, never the secret echoed back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.vvm.server import VVM, ServerConfig

SHOP = Path(__file__).parent / "shop"
V2 = "/api/v2/apps/test/shop"
texts = st.one_of(st.text(max_size=40), st.sampled_from(["", "a", "sys.x", "-a", "a..b", "é", "a b", "x" * 300]))
values = st.one_of(texts, st.integers(), st.none(), st.lists(st.integers(), max_size=2))


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path_factory.mktemp('fuzz')}", apps=[("test/shop", SHOP)]))
    await vvm.start()
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await vvm.stop()


def check(r: httpx.Response, secret: Any) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        body = r.json()
        body = body.get("sys.Error", body)  # API v1 wraps its errors
        assert body.get("status", body.get("HTTPStatus")) == r.status_code
        assert body.get("message") or body.get("Message")
    if isinstance(secret, str) and len(secret) > 6:
        assert secret not in r.text


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(login=values, password=values, endpoint=st.sampled_from(["auth/login", "users"]))
async def test_login_input(client: httpx.AsyncClient, login: Any, password: Any, endpoint: str) -> None:
    r = await client.post(f"{V2}/{endpoint}", json={"login": login, "password": password})
    check(r, password if not (isinstance(login, str) and isinstance(password, str) and password in login) else None)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(header=st.text(max_size=80).filter(lambda h: "\n" not in h and "\r" not in h))
async def test_authorization_header(client: httpx.AsyncClient, header: str) -> None:
    try:
        r = await client.post(
            f"/api/test/shop/{1 << 47 | 0x10000}/q.sys.Echo",
            json={"args": {"Text": "x"}},
            headers={"Authorization": header},
        )
    except (httpx.LocalProtocolError, UnicodeEncodeError):
        return  # not a header a client library sends
    check(r, None)
    r2 = await client.post(f"{V2}/auth/refresh", headers={"Authorization": header})
    check(r2, None)
