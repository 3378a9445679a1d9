"""The transport to this process's own partitions."""

from __future__ import annotations

from voedger.appdef import QName
from voedger.router.transport import BusRequest, BusResponse
from voedger.vvm.server import VVM


class LocalTransport:
    def __init__(self, vvm: VVM) -> None:
        self.vvm = vvm

    async def send(self, request: BusRequest) -> BusResponse:
        if request.kind == "command":
            table = request.extra.get("table") if request.extra.get("method") in ("PATCH", "DELETE") else None
            result = await self.vvm.command(
                request.app,
                request.wsid,
                request.resource,
                request.body,
                request.principal,
                ip=request.ip,
                table=QName.parse(table) if table else None,
            )
            if request.api_v2:
                status = 201 if request.extra.get("path") == "docs" and request.extra.get("method") == "POST" else 200
                return BusResponse(status, result.to_v2())
            return BusResponse(200, result.to_v1())
        extra = request.extra
        body = await self.vvm.query(
            request.app,
            request.wsid,
            request.resource,
            request.principal,
            body=request.body,
            api_v2=request.api_v2,
            path=extra.get("path", "queries"),
            params=extra.get("params"),
            doc_id=extra.get("id", 0),
            ip=request.ip,
        )
        return BusResponse(200, body)
