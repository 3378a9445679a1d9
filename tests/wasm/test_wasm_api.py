"""WASM extensions served over the HTTP API: the real router and VVM in-process on SQLite. The
guide's example answers its command's result, its record and its projector's view row through
API v2; an endless loop and a memory hog answer 500 in Voedger's format and the partition goes
on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from voedger.appdef import QName
from voedger.processors.command import CommandRequest
from voedger.processors.principal import SYSTEM
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, ServerConfig

WSID = new_wsid(1, 200_000)


async def serve(tmp_path: Path, apps: list[tuple[str, Path]]) -> AsyncIterator[httpx.AsyncClient]:
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path / 'data'}", apps=apps, insecure_dev=True))
    await vvm.start()
    try:
        for name, folder in apps:  # a workspace of the application's kind, as the system makes one
            kind = f"{folder.name}.{folder.name.capitalize()}Desc"
            body = {
                "cuds": [
                    {
                        "fields": {
                            "sys.ID": 1,
                            "sys.QName": "sys.WorkspaceDescriptor",
                            "WSName": "ws",
                            "WSKind": kind,
                            "CreatedAtMs": 1,
                            "InitCompletedAtMs": 1,
                        }
                    },
                    {"fields": {"sys.ID": 2, "sys.QName": kind, "Name": "ws"}},
                ]
            }
            request = CommandRequest(WSID, QName("sys", "CUD"), body, SYSTEM, synced=True)
            await vvm.app(name).partition(WSID).submit(request)
        app = build_app(vvm, {1: LocalTransport(vvm)})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield client
    finally:
        await vvm.stop()


@pytest.fixture
async def shelf(tmp_path: Path, shelf_app: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in serve(tmp_path, [("test/shelf", shelf_app)]):
        yield client


@pytest.fixture
async def sandbox(tmp_path: Path, sandbox_app: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in serve(tmp_path, [("test/sandbox", sandbox_app)]):
        yield client


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


async def test_the_guide_example_over_the_api(shelf: httpx.AsyncClient) -> None:
    v2 = f"/api/v2/apps/test/shelf/workspaces/{WSID}"
    added = ok(
        await shelf.post(f"{v2}/commands/shelf.AddBook", json={"args": {"Title": "Dune", "Genre": "sf", "Copies": 2}})
    )
    book = added["newIDs"]["1"]
    assert ok(await shelf.get(f"{v2}/docs/shelf.Book/{book}"))["Copies"] == 2
    where = orjson.dumps({"Part": 0}).decode()
    rows = ok(await shelf.get(f"{v2}/views/shelf.Stock", params={"where": where}))["results"]
    assert [(r["Genre"], r["Books"], r["Copies"]) for r in rows] == [("sf", 1, 2)]

    lent = ok(await shelf.post(f"{v2}/commands/shelf.Lend", json={"args": {"Book": book}}))
    assert lent["result"]["Left"] == 1
    assert ok(await shelf.get(f"{v2}/docs/shelf.Book/{book}"))["Copies"] == 1
    v1 = f"/api/test/shelf/{WSID}/c.shelf.Lend"
    assert ok(await shelf.post(v1, json={"args": {"Book": book}}))["Result"]["Left"] == 0
    refused = await shelf.post(v1, json={"args": {"Book": book}})
    assert refused.status_code == 409
    assert refused.json()["sys.Error"] == {"HTTPStatus": 409, "Message": "every copy of Dune is lent"}


async def test_a_loop_and_a_hog_answer_500_and_the_partition_goes_on(sandbox: httpx.AsyncClient) -> None:
    v1 = f"/api/test/sandbox/{WSID}"
    for command, says in (("Spin", "ran out of fuel"), ("Hog", "out of memory")):
        r = await sandbox.post(f"{v1}/c.sandbox.{command}", json={})
        assert r.status_code == 500, r.text
        error = r.json()["sys.Error"]
        assert error["HTTPStatus"] == 500
        assert error["Message"].startswith(f"extension sandbox.{command} (sandbox/pkg.wasm) failed: "), error
        assert says in error["Message"], error
        pong = ok(await sandbox.post(f"{v1}/c.sandbox.Ping", json={}))
        assert pong["Result"]["Pong"] == 1
    v2 = f"/api/v2/apps/test/sandbox/workspaces/{WSID}"
    r = await sandbox.post(f"{v2}/commands/sandbox.Spin", json={})
    assert r.status_code == 500 and "ran out of fuel" in r.json()["message"], r.text


async def test_an_async_wasm_projector_follows_the_log(sandbox: httpx.AsyncClient) -> None:
    v2 = f"/api/v2/apps/test/sandbox/workspaces/{WSID}"
    offsets = [ok(await sandbox.post(f"{v2}/commands/sandbox.Ping", json={}))["currentWLogOffset"] for _ in range(3)]
    where = orjson.dumps({"Part": 0}).decode()

    async def tallied() -> list[int]:
        rows = ok(await sandbox.get(f"{v2}/views/sandbox.Pings", params={"where": where}))["results"]
        return [r["Offset"] for r in rows]

    deadline = asyncio.get_running_loop().time() + 10
    while (seen := await tallied()) != offsets:
        assert asyncio.get_running_loop().time() < deadline, f"the projector wrote {seen}, not {offsets}"
        await asyncio.sleep(0.05)
