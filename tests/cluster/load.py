"""The load generator: K client tasks sending commands for a bounded time, recording each.

Each command inserts one ``loadtest.LoadItem`` by ``c.sys.CUD`` in an application workspace;
requests go round the workspaces (so every partition gets its share) and round the processes
the harness routes to (every process accepts every request: it forwards to the owner). Each
attempt is in the :class:`History` before it is sent, so an attempt cut short still counts as
"pending" (unknown).

Retries are bounded (``max_attempts``) and only for answers that say the command may be sent
again: a connection that was never made, a 429, a 503 with ``Retry-After`` (the platform's "try
again" for a partition that is moving or a queue that is full). A retry carries a NEW token; the
old attempt keeps its outcome, "unknown" for the 503. Other failures (a broken connection, a
timeout, a 5xx without Retry-After) end the request unless ``retry_unknown`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
import orjson

from tests.cluster.checker import LOAD_ITEM
from tests.cluster.harness import Target
from tests.cluster.history import ACKED, NOT_CONNECTED, UNKNOWN, Attempt, History, classify
from tests.cluster.rawhttp import NotConnected, RawConnection

logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would bury the checker's report


@dataclass(frozen=True)
class LoadConfig:
    clients: int = 16
    """Concurrent client tasks, each with one request in flight."""
    request_timeout: float = 30.0
    """Longer than the platform's longest stall by design: while Cassandra convicts a node that
    just died, a command's logged batch is retried for up to about 24 s (``storage/cassandra.py``,
    ``_WriteRetryPolicy``), and a client that gives up earlier learns nothing ("unknown")."""
    connect_timeout: float = 2.0
    max_attempts: int = 8
    """Attempts of one request at most (the first and its retries)."""
    retry_unknown: bool = False
    """Also retry (with a new token) after a broken connection, a timeout or a plain 5xx."""
    retry_delay: float = 0.2
    """Seconds before a retry whose answer named no Retry-After."""
    max_retry_delay: float = 1.0
    """A longer Retry-After is cut to this, to keep scenarios short."""
    no_target_wait: float = 0.05
    """Seconds between looks for a routed process when there is none."""
    no_target_grace: float = 30.0
    """How long after the load's end a retry still waits for a routed process."""
    pace: float = 0.0
    """Seconds each client waits between its requests (0: as fast as answers come)."""
    raw_http: bool = False
    """Send with :class:`RawConnection` (a few times less CPU per request than httpx, for the
    benchmark, where the load shares the cores with the servers) instead of httpx."""


def retryable(a: Attempt, config: LoadConfig) -> bool:
    """May the request of ``a`` be tried again (under a new token)?"""
    if a.outcome == ACKED:
        return False
    if a.error == NOT_CONNECTED or a.status == 429:
        return True
    if a.status == 503 and a.retry_after is not None:
        return True
    return config.retry_unknown and a.outcome == UNKNOWN


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0  # an HTTP date: wait a little, as for any Retry-After


class Load:
    """Commands to ``app`` over ``wsids``, sent to the processes ``targets()`` names."""

    def __init__(
        self,
        history: History,
        app: str,
        wsids: Sequence[int],
        targets: Callable[[], Sequence[Target]],
        config: LoadConfig | None = None,
        prefer: Callable[[int], str | None] | None = None,
    ) -> None:
        self.history = history
        self.app = app
        self.wsids = list(wsids)
        self.targets = targets
        self.config = config or LoadConfig()
        self.prefer = prefer
        """The name of the process a workspace's commands go to while it is routed (a
        partition-aware balancer: the owner of the workspace's partition); else round robin."""
        self.run_id = uuid.uuid4().hex[:8]
        self._requests = itertools.count(len(history.requests()))
        self._round_robin = itertools.count()
        self._deadline = 0.0

    async def run(self, duration: float) -> History:
        """Send commands for ``duration`` seconds, then let the requests in flight finish
        (their retries included); returns the history."""
        history = self.history
        history.load_started = history.now() if history.load_started is None else history.load_started
        self._deadline = history.now() + duration
        try:
            await asyncio.gather(*(self._client(k) for k in range(self.config.clients)))
        finally:
            history.load_ended = history.now()
        return history

    def finish(self) -> None:
        """End the load now: no new requests; those in flight finish (with their retries)."""
        self._deadline = min(self._deadline, self.history.now())

    def _pick(self, wsid: int) -> Target | None:
        targets = self.targets()
        if not targets:
            return None
        if self.prefer is not None:
            name = self.prefer(wsid)
            chosen = next((t for t in targets if t.name == name), None)
            if chosen is not None:
                return chosen
        return targets[next(self._round_robin) % len(targets)]

    async def _client(self, k: int) -> None:
        config = self.config
        timeout = httpx.Timeout(config.request_timeout, connect=config.connect_timeout)
        clients: dict[Target, httpx.AsyncClient | RawConnection] = {}
        seq = 0
        try:
            while self.history.now() < self._deadline:
                wsid = self.wsids[(seq * config.clients + k) % len(self.wsids)]
                await self._request(k, seq, wsid, clients, timeout)
                seq += 1
                if config.pace:
                    await asyncio.sleep(config.pace)
        finally:
            for client in clients.values():
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _request(
        self,
        k: int,
        seq: int,
        wsid: int,
        clients: dict[Target, httpx.AsyncClient | RawConnection],
        timeout: httpx.Timeout,
    ) -> None:
        """One logical request: attempts until one is acknowledged or may not be retried."""
        config = self.config
        request = next(self._requests)
        attempt = 0
        while attempt < config.max_attempts:
            target = self._pick(wsid)
            if target is None:
                now = self.history.now()
                if attempt == 0 and now >= self._deadline:
                    return  # the load is over and nothing was sent: no request
                if now >= self._deadline + config.no_target_grace:
                    return  # no process came back for its retry: the request failed
                await asyncio.sleep(config.no_target_wait)
                continue
            attempt += 1
            client = clients.get(target)
            if client is None:
                for old in [t for t in clients if t.name == target.name]:  # an earlier incarnation
                    await clients.pop(old).aclose()
                client = clients[target] = (
                    RawConnection(target.url, config.connect_timeout, config.request_timeout)
                    if config.raw_http
                    else httpx.AsyncClient(base_url=target.url, timeout=timeout)
                )
            a = await self._send(client, request, attempt, f"{self.run_id}.{k}.{seq}.{attempt}", target, wsid, k, seq)
            if not retryable(a, config) or attempt >= config.max_attempts:
                return
            delay = config.retry_delay if a.retry_after is None else a.retry_after
            await asyncio.sleep(min(delay, config.max_retry_delay))

    async def _send(
        self,
        client: httpx.AsyncClient | RawConnection,
        request: int,
        attempt: int,
        token: str,
        target: Target,
        wsid: int,
        k: int,
        seq: int,
    ) -> Attempt:
        fields = {"sys.ID": 1, "sys.QName": LOAD_ITEM, "Token": token, "Client": k, "Seq": seq}
        body = orjson.dumps({"cuds": [{"fields": fields}]})
        a = self.history.add(
            Attempt(request, attempt, token, target.name, wsid, started=self.history.now()),
        )
        path = f"/api/{self.app}/{wsid}/c.sys.CUD"
        if isinstance(client, RawConnection):
            try:
                raw = await client.post(path, body)
            except NotConnected:
                a.error = NOT_CONNECTED
            except Exception as exc:  # a timeout or a broken connection: the outcome is unknown
                a.error = type(exc).__name__
            else:
                self._answered(a, raw.status, raw.body, raw.retry_after)
        else:
            try:
                r = await client.post(path, content=body, headers={"Content-Type": "application/json"})
            except (httpx.ConnectError, httpx.ConnectTimeout):
                a.error = NOT_CONNECTED
            except httpx.HTTPError as exc:
                a.error = type(exc).__name__
            else:
                self._answered(a, r.status_code, r.content, r.headers.get("Retry-After"))
        a.ended = self.history.now()
        a.outcome = classify(a.status, a.error)
        return a

    @staticmethod
    def _answered(a: Attempt, status: int, body: bytes, retry_after: str | None) -> None:
        a.status = status
        if 200 <= status < 300:
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                answer = orjson.loads(body)
                a.wlog_offset = answer.get("CurrentWLogOffset")
                a.new_id = (answer.get("NewIDs") or {}).get("1")
        else:
            a.retry_after = _retry_after(retry_after)
            a.message = body[:300].decode("utf-8", "replace")
