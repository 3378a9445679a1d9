"""The local transport hands a command everything the edge learnt about it."""

from __future__ import annotations

from typing import Any, cast

from voedger.appdef import QName
from voedger.processors.command import CommandResult
from voedger.router.local import LocalTransport
from voedger.router.transport import BusRequest
from voedger.vvm.server import VVM


class RecordingVVM:
    """Stands in for the VVM: keeps the arguments of each command."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def command(self, *args: Any, **kwargs: Any) -> CommandResult:
        self.calls.append(kwargs)
        return CommandResult(1, {}, None)


async def test_client_address_and_url_table_reach_the_command() -> None:
    vvm = RecordingVVM()
    transport = LocalTransport(cast(VVM, vvm))
    cud = QName("sys", "CUD")
    await transport.send(BusRequest("a/b", 1, 0, "command", cud, {}, None, ip="127.0.0.2"))
    extra = {"path": "docs", "method": "PATCH", "table": "shop.Item"}
    await transport.send(BusRequest("a/b", 1, 0, "command", cud, {}, None, api_v2=True, ip="127.0.0.3", extra=extra))
    extra = {"path": "docs", "method": "POST", "table": "shop.Item"}
    await transport.send(BusRequest("a/b", 1, 0, "command", cud, {}, None, api_v2=True, ip="127.0.0.4", extra=extra))
    assert [(c["ip"], c["table"]) for c in vvm.calls] == [
        ("127.0.0.2", None),  # rates per IP count commands too
        ("127.0.0.3", QName("shop", "Item")),
        ("127.0.0.4", None),  # a new record's table is in its CUD
    ]
