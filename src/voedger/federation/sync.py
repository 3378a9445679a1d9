"""How every router keeps the federation directory current.

- On the main cluster, ``StoredDirectory`` reads it from the main's storage every ``interval``
  (an operator's change, made by any process or by ``voedger federation``, is seen within it).
- On a worker, ``FetchedDirectory`` asks a router of the main cluster for it every
  ``interval`` and keeps the last one it got, in memory and in its own storage: a worker whose
  main cluster is down routes with what it last knew, also after a restart.

Both hold ``current``: a directory with every cluster known so far, never an older version than
one already seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import httpx
import orjson

from voedger.federation.directory import Directory, DirectoryError
from voedger.federation.store import DirectoryStore
from voedger.router.wire import (
    FEDERATION_DIRECTORY_PATH,
    FEDERATION_REFRESH_PATH,
    FEDERATION_SECRET_HEADER,
    secret_text,
)
from voedger.storage import StorageError
from voedger.syserror import SysError
from voedger.tasks import cancelled

__all__ = ["DEFAULT_INTERVAL", "FetchedDirectory", "StoredDirectory"]

log = logging.getLogger("voedger.federation")

DEFAULT_INTERVAL: Final = 1.0
"""Seconds between two reads of the directory: how soon a change reaches every cluster."""


Refreshed = Callable[[Directory], Awaitable[None]]


class _Polling:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.on_refresh: Refreshed | None = None
        """Called with the directory after each read that worked (keys to import or publish)."""
        self.current = Directory()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0
        """Reads that failed in a row (the main cluster or the storage out of reach)."""

    def get(self) -> Directory:
        return self.current

    def _take(self, directory: Directory) -> bool:
        """Keep ``directory`` if it is newer; True if it was."""
        if directory.version > self.current.version:
            if self.current.version:
                log.info("federation directory: version %d -> %d", self.current.version, directory.version)
            self.current = directory
            return True
        return False

    async def _read(self) -> None:
        raise NotImplementedError

    async def refresh(self) -> bool:
        """Read once now; False when the read failed (the last directory stays)."""
        try:
            await self._read()
        except (StorageError, DirectoryError, httpx.HTTPError, OSError) as exc:
            self.failures += 1
            if self.failures in (1, 10) or self.failures % 60 == 0:
                log.warning("federation directory: cannot read it (%d in a row): %s", self.failures, exc)
            return False
        self.failures = 0
        if self.on_refresh is not None:
            try:
                await self.on_refresh(self.current)
            except Exception:  # the next read tries again; routing goes on meanwhile
                log.exception("federation directory: acting on version %d failed", self.current.version)
        return True

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="federation-directory")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.refresh()

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancelled(task)


class StoredDirectory(_Polling):
    """The main cluster's view: its own storage."""

    def __init__(self, store: DirectoryStore, interval: float = DEFAULT_INTERVAL) -> None:
        super().__init__(interval)
        self.store = store

    async def _read(self) -> None:
        self._take(await self.store.load())


class FetchedDirectory(_Polling):
    """A worker's view: fetched from the main cluster's routers, kept in its own storage."""

    def __init__(
        self,
        main_url: str,
        secret: bytes | str,
        cache: DirectoryStore,
        interval: float = DEFAULT_INTERVAL,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(interval)
        self.url = main_url.rstrip("/") + FEDERATION_DIRECTORY_PATH
        self.cache = cache
        self._headers = {FEDERATION_SECRET_HEADER: secret_text(secret)}
        self.client = client if client is not None else httpx.AsyncClient(timeout=5.0, trust_env=False)

    async def start(self) -> None:
        with contextlib.suppress(StorageError, DirectoryError):
            kept = await self.cache.cached()
            if kept is not None:
                self._take(kept)
        await super().start()

    async def _read(self) -> None:
        reply = await self.client.post(self.url, headers=self._headers)
        if reply.status_code != 200:
            raise DirectoryError(f"the main cluster answered {reply.status_code} for the directory")
        if self._take(Directory.parse(reply.content)):
            await self.cache.keep(self.current)

    async def publish(self, cluster_id: int, jwks: list[dict[str, Any]]) -> None:
        """Ask the main cluster to list ``jwks`` as this cluster's keys; the directory it answers
        is taken like a read's."""
        body = orjson.dumps({"cluster": cluster_id, "keys": jwks})
        reply = await self.client.post(self.url, headers=self._headers, content=body)
        if reply.status_code != 200:
            raise DirectoryError(
                f"the main cluster refused this cluster's keys: {reply.status_code} {reply.text[:300]}"
            )
        if self._take(Directory.parse(reply.content)):
            await self.cache.keep(self.current)

    async def refresh_token(self, app: str, token: str) -> str:
        """A fresh principal token from a main router (this cluster may not issue one); the main
        cluster's refusal is raised as it answered it, an unreachable one is a 503."""
        url = self.url.removesuffix(FEDERATION_DIRECTORY_PATH) + FEDERATION_REFRESH_PATH
        try:
            reply = await self.client.post(
                url, headers=self._headers, content=orjson.dumps({"app": app, "token": token})
            )
        except httpx.HTTPError:
            raise SysError(
                503, "the main cluster, which issues tokens, cannot be reached; retry", headers={"Retry-After": "1"}
            ) from None
        try:
            data = orjson.loads(reply.content)
        except orjson.JSONDecodeError:
            data = None
        if reply.status_code == 200 and isinstance(data, dict) and isinstance(data.get("token"), str):
            return str(data["token"])
        message = data.get("message") if isinstance(data, dict) else None
        if reply.status_code in (400, 401, 403) and isinstance(message, str):
            raise SysError(reply.status_code, message)
        log.warning("the main cluster answered %d to a token refresh", reply.status_code)
        raise SysError(503, "the main cluster could not refresh the token; retry", headers={"Retry-After": "1"})

    async def stop(self) -> None:
        await super().stop()
        await self.client.aclose()
