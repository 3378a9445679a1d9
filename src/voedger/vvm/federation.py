"""Calls to other applications and clusters over HTTP, as Voedger's federation makes them:
``POST {federation}/api/{owner}/{app}/{wsid}/{c.pkg.Command}`` with a System token issued for
the target application. Answers 408, 429 (after its Retry-After), 500, 502, 503 and 504 are
retried a few times; other answers are returned as they are for the caller to judge."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from voedger.auth import Tokens
from voedger.processors.tally import Tally
from voedger.state.federation import FederationReply
from voedger.structs.wsid import MAIN_CLUSTER_ID
from voedger.vvm.stats import FederationStats

log = logging.getLogger("voedger.federation")

RETRIED = frozenset({408, 429, 500, 502, 503, 504})
ATTEMPTS = 5


async def counted(stats: Tally, call: Awaitable[FederationReply]) -> FederationReply:
    """The reply of a federation ``call``, counted in ``stats``: one call, its duration, and an
    error when the reply is a 5xx."""
    began = time.perf_counter()
    reply = await call
    stats.count += 1
    stats.observe(time.perf_counter() - began)
    if reply.status >= 500:
        stats.errors += 1
    return reply


class HttpFederation:
    def __init__(
        self,
        base_url: str,
        tokens: Tokens,
        client: httpx.AsyncClient | None = None,
        knows: Callable[[int], bool] | None = None,
        stats: FederationStats | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.client = client or httpx.AsyncClient(timeout=30)
        self._knows = knows
        self.stats = (stats or FederationStats()).target(urlsplit(self.base_url).netloc or self.base_url)
        """This federation's calls (``voedger_federation_*{target="host:port"}``)."""

    def knows_cluster(self, cluster_id: int) -> bool:
        """Whether the federation has this cluster (without a directory: none but the main)."""
        return self._knows(cluster_id) if self._knows is not None else cluster_id == MAIN_CLUSTER_ID

    async def command(self, app: str, wsid: int, command: str, body: dict[str, Any]) -> FederationReply:
        return await counted(self.stats, self._command(app, wsid, command, body))

    async def query(self, app: str, wsid: int, query: str, body: dict[str, Any]) -> FederationReply:
        """An API v1 query of another workspace, retried as a command is; ``result`` is the answer."""
        began = time.perf_counter()
        reply = await self._command(app, wsid, query, body, whole=True)
        stats = self.stats
        stats.count += 1
        stats.observe(time.perf_counter() - began)
        if reply.status >= 500:
            stats.errors += 1
        return reply

    async def _command(
        self, app: str, wsid: int, command: str, body: dict[str, Any], whole: bool = False
    ) -> FederationReply:
        url = f"{self.base_url}/api/{app}/{wsid}/{command}"
        delay = 0.1
        for attempt in range(ATTEMPTS):
            headers = {"Authorization": f"Bearer {self.tokens.issue_system(app)}"}
            try:
                r = await self.client.post(url, content=orjson.dumps(body), headers=headers)
            except httpx.TransportError as exc:
                status, message, data = 503, f"federation call failed: {type(exc).__name__}", {}
            else:
                status = r.status_code
                try:
                    data = r.json()
                except ValueError:
                    data = {}
                message = data.get("sys.Error", {}).get("Message", "") if isinstance(data, dict) else ""
            if status not in RETRIED or attempt == ATTEMPTS - 1:
                break
            wait = delay
            if status == 429 and r.headers.get("Retry-After", "").isdigit():
                wait = float(r.headers["Retry-After"])
            log.info("federation call %s answered %d; retrying in %.1fs", command, status, wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, 5.0)
        if status != 200:
            return FederationReply(status, message)
        if whole:
            return FederationReply(200, "", result=data if isinstance(data, dict) else {})
        return FederationReply(
            200,
            "",
            {k: int(v) for k, v in data.get("NewIDs", {}).items()},
            data.get("Result"),
            int(data.get("CurrentWLogOffset", 0)),
        )

    async def close(self) -> None:
        await self.client.aclose()
