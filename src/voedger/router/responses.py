"""JSON responses of the router."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from voedger.router.wire import BusResponse


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def bus_response(reply: BusResponse) -> Response:
    """The owner's answer, sent on as the owner shaped it."""
    return Response(reply.body, status_code=reply.status, headers=reply.headers)
