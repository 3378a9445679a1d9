"""Counts the HTTP requests a server answers, by route family and status (``voedger_http_*``).

An ASGI wrapper around the whole front: it sees the status of every answer, the router's own
refusals included, and adds one to ``HttpStats``. The family is a small fixed set read from the
path's first segments, so the series stay few whatever the clients send.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voedger.router.wire import BUS_PATH, WAKE_PATH
from voedger.vvm.stats import HttpStats

FAMILIES = ("api_v1", "api_v2", "auth", "blob", "check", "cluster", "other")
"""Route families: API v1 resources, API v2 (apps/workspaces), v2 sign-in and users, BLOBs,
``/api/check``, requests between the processes of a cluster, anything else."""


def route_family(path: str) -> str:
    """The family of a request path (one of ``FAMILIES``)."""
    if path.startswith("/api/v2/"):
        parts = path.split("/", 7)  # "", "api", "v2", "apps", owner, name, what
        if len(parts) > 6 and parts[6] in ("auth", "users", "devices"):
            return "auth"
        return "api_v2"
    if path == "/api/check":
        return "check"
    if path.startswith("/api/"):
        return "api_v1"
    if path.startswith("/blob/"):
        return "blob"
    if path in (BUS_PATH, WAKE_PATH):
        return "cluster"
    return "other"


class CountRequests:
    """Wraps an ASGI app; every HTTP answer it starts is counted in ``stats``."""

    def __init__(self, app: ASGIApp, stats: HttpStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        family = route_family(scope["path"])
        stats = self.stats

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                stats.count(family, int(message["status"]))
            await send(message)

        await self.app(scope, receive, counted)
