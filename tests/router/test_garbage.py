"""Serving requests leaves no reference cycles behind.

Under load the cycle collector's pauses cost about a tenth of the command benchmark's
throughput, and all of it came from recursive closures (a reference cycle per call). Refcounting
frees everything a request makes once the request is done; this keeps it so.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.router.conftest import SHOP_DIR, make_shop_ws
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, ServerConfig

SHOP_WS = new_wsid(1, 200_001)
V1_SHOP = f"/api/test/shop/{SHOP_WS}"
V2_SHOP = f"/api/v2/apps/test/shop/workspaces/{SHOP_WS}"


class Caller:
    """Calls the ASGI application directly: an HTTP client keeps cycles of its own."""

    def __init__(self, vvm: VVM) -> None:
        self.app = build_app(vvm, {1: LocalTransport(vvm)})

    async def __call__(self, method: str, path: str, body: object = None, query: bytes = b"") -> tuple[int, Any]:
        sent: list[MutableMapping[str, Any]] = []
        messages = [{"type": "http.request", "body": orjson.dumps(body) if body is not None else b""}]

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "headers": [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "scheme": "http",
            "root_path": "",
        }
        await self.app(scope, receive, send)
        data = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return sent[0]["status"], orjson.loads(data)


async def _requests(call: Caller, n: int) -> None:
    item = {"sys.ID": 1, "sys.QName": "shop.Item", "Name": f"tea {n}", "Price": 3}
    barcode = {"sys.ID": 2, "sys.QName": "shop.Barcode", "sys.ParentID": 1, "sys.Container": "Barcodes", "Code": "X"}
    status, reply = await call("POST", f"{V1_SHOP}/c.sys.CUD", {"cuds": [{"fields": item}, {"fields": barcode}]})
    assert status == 200, reply
    item_id = reply["NewIDs"]["1"]
    status, reply = await call(
        "POST", f"{V1_SHOP}/c.shop.MakeOrder", {"args": {"sys.ID": 1, "Item": item_id, "Qty": 2}}
    )
    assert status == 200, reply
    query = {
        "args": {"Schema": "shop.Item"},
        "elements": [{"fields": ["sys.ID", "Name"]}],
        "filters": [{"expr": "and", "args": [{"expr": "gt", "args": {"field": "sys.ID", "value": 0}}]}],
    }
    status, reply = await call("POST", f"{V1_SHOP}/q.sys.Collection", query)
    assert status == 200, reply
    status, reply = await call("GET", f"{V2_SHOP}/docs/shop.Item/{item_id}", query=b"include=Barcodes")
    assert status == 200, reply
    assert reply["Barcodes"][0]["Code"] == "X"


@pytest.fixture
async def sqlite_vvm(tmp_path: Path) -> AsyncIterator[VVM]:
    """SQLite only: the Cassandra driver keeps cycles of its own (each request's ResponseFuture
    and its timeout timer refer to each other), which this test cannot speak for."""
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[("test/shop", SHOP_DIR)], insecure_dev=True))
    await vvm.start()
    yield vvm
    await vvm.stop()


async def test_requests_leave_no_cyclic_garbage(sqlite_vvm: VVM) -> None:
    vvm = sqlite_vvm
    call = Caller(vvm)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=call.app), base_url="http://test") as client:
        await make_shop_ws(client, vvm, SHOP_WS)
    for n in range(3):  # warm up: caches and memos fill once
        await _requests(call, n)
    await asyncio.sleep(0.3)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for n in range(3, 13):
            await _requests(call, n)
        await asyncio.sleep(0.3)  # async projectors handle the events too
        gc.collect()
        garbage = Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not garbage, f"reference cycles left by requests: {garbage.most_common(10)}"
