"""The access log: a line per HTTP request with its app, WSID, resource, status and duration.

Logged by logger ``voedger.access`` at INFO, the fields in ``extra={"fields": ...}`` (keys of
their own in JSON lines, ``key=value`` in text). Never a header, body or query string: tokens
travel in the Authorization header or a cookie, passwords in bodies, and a download link may
carry a token in its query.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("voedger.access")


def request_fields(path: str) -> dict[str, Any]:
    """What a path says: ``app`` (owner/name), ``wsid`` and ``resource`` where it has them."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v2", "apps"] and len(parts) >= 5:
        fields: dict[str, Any] = {"app": f"{parts[3]}/{parts[4]}"}
        if len(parts) >= 7 and parts[5] == "workspaces" and parts[6].isdigit():
            fields["wsid"] = int(parts[6])
            fields["resource"] = "/".join(parts[7:9])
        else:
            fields["resource"] = "/".join(parts[5:7])
        return fields
    if parts[0] == "api" and len(parts) == 5 and parts[3].isdigit():
        return {"app": f"{parts[1]}/{parts[2]}", "wsid": int(parts[3]), "resource": parts[4]}
    if parts[0] == "blob" and len(parts) >= 4 and parts[3].isdigit():
        return {"app": f"{parts[1]}/{parts[2]}", "wsid": int(parts[3]), "resource": "blob"}
    return {}


class AccessLog:
    """Wraps an ASGI app; logs every HTTP request it answers once the answer has been sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began = time.perf_counter()
        status = 0

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            path = scope["path"]
            ms = round((time.perf_counter() - began) * 1000, 2)
            client = scope.get("client")
            fields = {
                "method": scope["method"],
                "path": path,
                **request_fields(path),
                "status": status,
                "duration_ms": ms,
                "client": client[0] if client else "",
            }
            text = " ".join(f"{k}={v}" for k, v in fields.items())
            log.info(text, extra={"fields": fields})
