"""The HTTP API served in-process: the real router and VVM, httpx's ASGI transport, no sockets."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.storage.cassandra import CassandraStorageFactory
from voedger.structs.wsid import app_wsid
from voedger.vvm.server import VVM, ServerConfig

SHOP_DIR = Path(__file__).parent / "shop"
APP_WS = app_wsid(1, 0)
V1 = f"/api/test/shop/{APP_WS}"


def storage_urls() -> list[object]:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("cassandra", id="cassandra", marks=pytest.mark.cassandra),
    ]


@pytest.fixture(params=storage_urls())
async def vvm(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VVM]:
    suffix = ""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path}"
    else:
        hosts = os.environ.get("VOEDGER_TEST_CASSANDRA")
        if not hosts:
            pytest.fail("VOEDGER_TEST_CASSANDRA is not set: run the Cassandra tier with `make test-cassandra`")
        # "r" and 4 hex digits: no keyspace but another of these ends so (see drop_all below).
        suffix = "r" + uuid.uuid4().hex[:4]
        url = f"cassandra://{hosts}/?replication=1&keyspace_suffix={suffix}"
    v = VVM(ServerConfig(storage_url=url, apps=[("test/shop", SHOP_DIR)], insecure_dev=True))
    try:
        await v.start()
        yield v
        await v.stop()
    finally:
        if suffix:
            # The VVM's keyspaces (its applications' and the sys ones): left behind, they pile
            # up on the shared cluster until a node runs out of heap.
            assert hosts is not None
            factory = await CassandraStorageFactory.connect(hosts.split(","), keyspace_suffix=suffix)
            try:
                await factory.drop_all()
            finally:
                await factory.close()


@pytest.fixture
async def client(vvm: VVM) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


async def make_shop_ws(client: httpx.AsyncClient, vvm: VVM, wsid: int, ignore_existing: bool = False) -> None:
    """A ShopWS workspace, written the way workspace creation will write it (system, synced)."""
    from voedger.appdef import QName
    from voedger.processors.principal import SYSTEM

    app = vvm.app("test/shop")
    body = {
        "cuds": [
            {
                "fields": {
                    "sys.ID": 1,
                    "sys.QName": "sys.WorkspaceDescriptor",
                    "WSName": "shop1",
                    "WSKind": "shop.ShopDesc",
                    "CreatedAtMs": 1,
                    "InitCompletedAtMs": 1,
                }
            },
            {"fields": {"sys.ID": 2, "sys.QName": "shop.ShopDesc", "Name": "Corner shop"}},
        ]
    }
    from voedger.processors.command import CommandRequest
    from voedger.syserror import SysError

    try:
        await app.partition(wsid).submit(CommandRequest(wsid, QName("sys", "CUD"), body, SYSTEM, synced=True))
    except SysError as err:
        if not (ignore_existing and err.status == 409):
            raise
