"""The per-workspace limit on reads running at once (Voedger's ``MaxQueriesPerWS``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.router.conftest import make_shop_ws
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.router.transport import BusRequest, BusResponse
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM

WS_A = new_wsid(1, 200_010)
WS_B = new_wsid(1, 200_011)
ECHO = {"args": {"Text": "hi"}, "elements": [{"fields": ["Res"]}]}


class HeldReads(LocalTransport):
    """Reads wait until released, so that a test can fill a workspace's slots."""

    def __init__(self, vvm: VVM) -> None:
        super().__init__(vvm)
        self.release = asyncio.Event()
        self.waiting = 0

    async def send(self, request: BusRequest) -> BusResponse:
        if request.is_read and request.resource == "sys.Echo":
            self.waiting += 1
            await self.release.wait()
        return await super().send(request)


@pytest.fixture
async def held(vvm: VVM) -> AsyncIterator[tuple[httpx.AsyncClient, HeldReads]]:
    transport = HeldReads(vvm)
    app = build_app(vvm, {1: transport})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client, transport


async def test_reads_over_the_limit_answer_503_and_commands_pass(
    held: tuple[httpx.AsyncClient, HeldReads], vvm: VVM
) -> None:
    client, transport = held
    limit = vvm.config.max_queries_per_ws
    for ws in (WS_A, WS_B):
        await make_shop_ws(client, vvm, ws)
    running = [asyncio.create_task(client.post(f"/api/test/shop/{WS_A}/q.sys.Echo", json=ECHO)) for _ in range(limit)]
    while transport.waiting < limit:
        await asyncio.sleep(0.01)

    # Answered at once (without the limit it would wait with the others).
    r = await asyncio.wait_for(client.post(f"/api/test/shop/{WS_A}/q.sys.Echo", json=ECHO), 5)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "reads running" in r.json()["sys.Error"]["Message"]
    v2 = f"/api/v2/apps/test/shop/workspaces/{WS_A}/queries/sys.Echo"
    r = await asyncio.wait_for(client.get(v2, params={"args": '{"Text": "hi"}'}), 5)
    assert r.status_code == 503 and r.json()["status"] == 503  # API v2 reads count too
    # Commands are not limited, nor is another workspace.
    cud = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}}]}
    assert (await client.post(f"/api/test/shop/{WS_A}/c.sys.CUD", json=cud)).status_code == 200
    other = asyncio.create_task(client.post(f"/api/test/shop/{WS_B}/q.sys.Echo", json=ECHO))

    transport.release.set()
    for reply in await asyncio.gather(*running, other):
        assert reply.status_code == 200, reply.text
    # The slots are free again.
    assert (await client.post(f"/api/test/shop/{WS_A}/q.sys.Echo", json=ECHO)).status_code == 200


async def test_a_failed_read_gives_its_slot_back(held: tuple[httpx.AsyncClient, HeldReads], vvm: VVM) -> None:
    client, transport = held
    transport.release.set()
    await make_shop_ws(client, vvm, WS_A)
    for _ in range(vvm.config.max_queries_per_ws + 2):
        r = await client.post(f"/api/test/shop/{WS_A}/q.sys.NoSuchQuery", json={})
        assert r.status_code in (400, 404), r.text  # each fails, and none keeps a slot
    assert (await client.post(f"/api/test/shop/{WS_A}/q.sys.Echo", json=ECHO)).status_code == 200
