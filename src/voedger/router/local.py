"""The transport to this process's own partitions: the owner's handler, called in process.

Nothing is encoded or copied: the request's body bytes reach the owner as the edge read them,
and the answer's bytes go back the same way. The answer is the one a forwarded request gets.
"""

from __future__ import annotations

from voedger.router.owner import Owner
from voedger.router.wire import BusRequest, BusResponse
from voedger.vvm.server import VVM


class LocalTransport:
    def __init__(self, vvm: VVM, owner: Owner | None = None) -> None:
        self.vvm = vvm
        self.owner = owner if owner is not None else Owner(vvm)

    async def send(self, request: BusRequest) -> BusResponse:
        return await self.owner.handle(request)

    async def aclose(self) -> None:
        pass
