"""API v2 reads on the fast path (``FastPath._v2_read``) answer what Starlette's routes answer:
the same status, the same headers in the same order, the same body, for answers and errors."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest

from tests.router.conftest import make_shop_ws
from voedger.router.app import V2_READ_PATH, FastPath, build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM

SHOP_WS = new_wsid(1, 200_000)
V2_SHOP = f"/api/v2/apps/test/shop/workspaces/{SHOP_WS}"

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


async def call(app: Any, path: str, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> Answer:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"test"), *(headers or [])],
        "client": ("127.0.0.9", 40000),
        "server": ("127.0.0.1", 8822),
    }
    sent = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": b"", "more_body": False}

    out: dict[str, Any] = {"body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"], out["headers"] = message["status"], list(message["headers"])
        else:
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["headers"], out["body"]


@pytest.fixture
async def apps(vvm: VVM) -> tuple[FastPath, Any]:
    """The application with the fast path, and Starlette's application behind it."""
    app = build_app(vvm, {1: LocalTransport(vvm)})
    return app, app.app


def test_the_fast_path_takes_the_v2_reads_only() -> None:
    base = "/api/v2/apps/o/a/workspaces/1"
    for path in ("docs/p.T", "docs/p.T/5", "cdocs/p.T", "queries/p.Q", "views/p.V"):
        assert V2_READ_PATH.match(f"{base}/{path}") is not None, path
    for path in ("docs/p.T/5/blobs/f", "tblobs/x", "commands/p.C", "docs/p.T/", "docs"):
        assert V2_READ_PATH.match(f"{base}/{path}") is None, path


async def test_fast_path_reads_answer_as_the_starlette_routes(apps: tuple[FastPath, Any], vvm: VVM) -> None:
    fast, starlette = apps
    await make_shop_ws(httpx.AsyncClient(), vvm, SHOP_WS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fast), base_url="http://test") as client:
        r = await client.post(f"{V2_SHOP}/docs/shop.Item", json={"Name": "coffee", "Price": 5})
        item = r.json()["newIDs"]["1"]
        r = await client.post(
            f"{V2_SHOP}/commands/shop.MakeOrder", json={"args": {"sys.ID": 1, "Item": item, "Qty": 2}}
        )
        assert r.status_code == 200, r.text
    where = b"where=%7B%22Item%22%3A" + str(item).encode() + b"%7D"
    cases: list[tuple[str, bytes, list[tuple[bytes, bytes]]]] = [
        (f"{V2_SHOP}/docs/shop.Item/{item}", b"", []),
        (f"{V2_SHOP}/docs/shop.Item/{item}", b"keys=Name&keys=Price", []),  # the last value of a key counts
        (f"{V2_SHOP}/docs/shop.Item/{item}", b"include=Barcodes", [(b"authorization", b"  ")]),
        (f"{V2_SHOP}/docs/shop.Item/99999999", b"", []),  # 404
        (f"{V2_SHOP}/docs/shop.Item/abc", b"", []),  # 400: not a number
        (f"{V2_SHOP}/docs/shop.Item/0", b"", []),  # 404: no record has ID 0
        (f"{V2_SHOP}/docs/shop.Item", b"", []),  # not a singleton
        (f"{V2_SHOP}/docs/nope/5", b"", []),  # 400: not a QName
        (f"{V2_SHOP}/cdocs/shop.Item", b"order=Name&limit=5", []),
        (f"{V2_SHOP}/views/shop.Sales", where, [(b"cookie", b"a=b; Authorization=x")]),
        (f"{V2_SHOP}/views/shop.Sales", b"", []),  # 400: no constraints
        (f"{V2_SHOP}/queries/sys.Echo", b"args=%7B%22Text%22%3A%22hi%22%7D&blank=", []),
        ("/api/v2/apps/test/shop/workspaces/x1/docs/shop.Item/5", b"", []),  # a WSID that is no number
        ("/api/v2/apps/test/nope/workspaces/1/docs/shop.Item/5", b"", []),  # no such application
    ]
    for path, query, headers in cases:
        assert V2_READ_PATH.match(path) is not None
        expected = await call(starlette, path, query, headers)
        got = await call(fast, path, query, headers)
        assert got == expected, (path, query)
    status, raw_headers, body = await call(fast, f"{V2_SHOP}/docs/shop.Item/{item}")
    assert status == 200 and b'"coffee"' in body
    assert raw_headers[0] == (b"content-type", b"application/json")
    assert (b"access-control-allow-origin", b"*") in raw_headers


async def test_a_token_in_a_cookie_reaches_the_owner_as_on_the_starlette_route(apps: tuple[FastPath, Any]) -> None:
    fast, starlette = apps
    # The insecure server takes anybody without a System token for the developer; a bad cookie
    # and a bad header are both ignored, on either path, the same way.
    path = f"{V2_SHOP}/docs/shop.Item/5"
    for headers in ([(b"cookie", b"Authorization=Bearer%20x")], [(b"authorization", b"Bearer x"), (b"cookie", b"y=1")]):
        assert await call(fast, path, b"", headers) == await call(starlette, path, b"", headers)
