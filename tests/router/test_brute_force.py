"""Password guessing over HTTP: sign-in and password change count failures by login and by
client address, and answer 429 with Retry-After, in Voedger's error shape, while locked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router.test_identity import APP, CLOCK, RESTAURANT, V2, sign_in
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs import wsid as ws
from voedger.vvm.server import VVM, ServerConfig

Clients = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[Clients]:
    """HTTP clients of one server, each from the client address it is asked for."""
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, RESTAURANT)], clock=CLOCK))
    await vvm.start()
    app = build_app(vvm, {1: LocalTransport(vvm)})
    made: list[httpx.AsyncClient] = []

    def client(ip: str) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url="http://t")
        made.append(c)
        return c

    yield client
    for c in made:
        await c.aclose()
    await vvm.stop()


async def login(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    return await client.post(f"{V2}/auth/login", json={"login": name, "password": password})


def refused(r: httpx.Response) -> int:
    """The seconds a 429 in API v2's shape asks to wait."""
    assert r.status_code == 429, r.text
    body: Any = r.json()
    assert body["status"] == 429 and body["message"], body
    return int(r.headers["Retry-After"])


async def test_sign_in_failures_of_a_login_lock_it_for_growing_times(clients: Clients) -> None:
    alice, mallory = clients("10.0.0.1"), clients("10.0.0.66")
    r = await alice.post(f"{V2}/users", json={"login": "erin", "password": "erin-pa55"})
    assert r.status_code == 201, r.text
    await sign_in(alice, "erin", "erin-pa55")
    for _ in range(6):  # five free failures, the sixth locks for a second
        assert (await login(mallory, "erin", "guess")).status_code == 401
    assert refused(await login(mallory, "erin", "guess")) == 1
    assert refused(await login(alice, "erin", "erin-pa55")) == 1  # the right password waits too
    # API v1 reaches the same query: the same lock, in v1's shape.
    registry_ws = ws.pseudo_to_app_wsid(ws.pseudo_wsid("erin"), 10)
    r = await mallory.post(
        f"/api/sys/registry/{registry_ws}/q.registry.IssuePrincipalToken",
        json={"args": {"Login": "erin", "Password": "guess", "AppName": APP}, "elements": [{"fields": ["WSID"]}]},
    )
    assert r.status_code == 429 and r.json()["sys.Error"]["HTTPStatus"] == 429, r.text
    CLOCK.advance(3601)  # an hour after the last failure, the count starts again
    for _ in range(6):
        assert (await login(mallory, "erin", "guess")).status_code == 401
    waits = [refused(await login(mallory, "erin", "guess"))]
    for _ in range(3):
        CLOCK.advance(waits[-1])  # the lock is over: the next guess is looked at, fails, locks longer
        assert (await login(mallory, "erin", "guess")).status_code == 401
        waits.append(refused(await login(mallory, "erin", "guess")))
    assert waits == [1, 2, 4, 8], waits
    CLOCK.advance(8)
    await sign_in(alice, "erin", "erin-pa55")  # the right password clears the login's failures
    for _ in range(5):
        assert (await login(mallory, "erin", "guess")).status_code == 401


async def test_sign_in_failures_from_one_address_lock_that_address(clients: Clients) -> None:
    bot, user = clients("10.0.0.99"), clients("10.0.0.2")
    for i in range(21):  # a different login each time: only the address counts
        assert (await login(bot, f"nobody{i}", "guess")).status_code == 401
    assert refused(await login(bot, "someone-else", "guess")) >= 1
    assert (await login(user, "someone-else", "guess")).status_code == 401  # another address is not held


def _same_partition(login: str) -> str:
    """Another login whose registry workspace is in the partition of ``login``'s."""

    def partition(name: str) -> int:
        return ws.partition_of(ws.pseudo_to_app_wsid(ws.pseudo_wsid(name), 10), 10)

    return next(f"dave{i}" for i in range(1000) if partition(f"dave{i}") == partition(login))


async def test_a_wrong_password_change_of_one_login_does_not_block_another(clients: Clients) -> None:
    carol_client, stranger = clients("10.0.0.3"), clients("10.0.0.77")
    dave = _same_partition("carol")
    for name in ("carol", dave):
        r = await carol_client.post(f"{V2}/users", json={"login": name, "password": "old-password"})
        assert r.status_code == 201, r.text
    body = {"login": dave, "oldPassword": "wrong", "newPassword": "new-password"}
    assert (await stranger.post(f"{V2}/users/change-password", json=body)).status_code == 401
    body = {"login": "carol", "oldPassword": "old-password", "newPassword": "new-password"}
    r = await carol_client.post(f"{V2}/users/change-password", json=body)
    assert r.status_code == 200, r.text  # Voedger's one-a-minute-per-partition rate answered 429
    # Guessing at carol's old password is one attempt a minute.
    body = {"login": "carol", "oldPassword": "wrong", "newPassword": "x-password"}
    assert (await stranger.post(f"{V2}/users/change-password", json=body)).status_code == 401
    assert refused(await stranger.post(f"{V2}/users/change-password", json=body)) == 60
