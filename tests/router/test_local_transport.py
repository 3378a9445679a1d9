"""The local transport hands a command everything the edge learnt about it."""

from __future__ import annotations

from typing import Any, cast

import orjson

from tests.router.conftest import make_shop_ws
from voedger.appdef import QName
from voedger.processors.command import CommandResult
from voedger.router.local import LocalTransport
from voedger.router.wire import BusRequest, Op
from voedger.structs.wsid import new_wsid, partition_of
from voedger.vvm.server import VVM

SHOP_WS = new_wsid(1, 200_100)


class RecordingVVM:
    """A real VVM that keeps the arguments of each command."""

    def __init__(self, vvm: VVM) -> None:
        self.vvm = vvm
        self.calls: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.vvm, name)

    async def command(self, *args: Any, **kwargs: Any) -> CommandResult:
        self.calls.append(kwargs)
        return await self.vvm.command(*args, **kwargs)


async def test_client_address_and_url_table_reach_the_command(vvm: VVM) -> None:
    recording = RecordingVVM(vvm)
    transport = LocalTransport(cast(VVM, recording))
    await make_shop_ws(cast(Any, None), vvm, SHOP_WS)
    part = partition_of(SHOP_WS, vvm.app("test/shop").runtime.num_partitions)
    item = orjson.dumps({"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}}]})
    reply = await transport.send(
        BusRequest(Op.V1_COMMAND, "POST", "test/shop", SHOP_WS, part, "sys.CUD", body=item, ip="127.0.0.2")
    )
    assert reply.status == 200, reply.body
    new_id = orjson.loads(reply.body)["NewIDs"]["1"]
    patch = BusRequest(
        Op.V2_DOCS,
        "PATCH",
        "test/shop",
        SHOP_WS,
        part,
        "shop.Item",
        new_id,
        body=b'{"Name":"mint tea"}',
        ip="127.0.0.3",
    )
    assert (await transport.send(patch)).status == 200
    post = BusRequest(
        Op.V2_DOCS, "POST", "test/shop", SHOP_WS, part, "shop.Item", body=b'{"Name":"coffee"}', ip="127.0.0.4"
    )
    assert (await transport.send(post)).status == 201
    assert [(c["ip"], c.get("table")) for c in recording.calls] == [
        ("127.0.0.2", None),  # rates per IP count commands too
        ("127.0.0.3", QName("shop", "Item")),
        ("127.0.0.4", QName("shop", "Item")),  # the URL's table: the workspace must have it
    ]
