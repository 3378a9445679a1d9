"""One storage per application, created on first use and recorded in a registry.

The registry lives in the ``sysmeta`` storage. For each application it keeps a descriptor
``{"SafeName", "Status": "Pending"|"Done", "Error"}`` under ``p_key=<app>, c_col=[1]``, and
under ``p_key=<safe name>, c_col=[2]`` it records which application took a safe name. A storage
is marked Pending before it is created and Done after, so a creation cut short by a crash is
seen on the next start: it is tried again, and a failure is kept in the descriptor and
reported until an operator clears it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from voedger.storage.contract import AppStorage, AppStorageFactory, Capabilities
from voedger.storage.errors import (
    StorageAlreadyExistsError,
    StorageDoesNotExistError,
    StorageError,
    StorageInitError,
)
from voedger.storage.safename import mutate_safe_name, safe_app_name

META_STORAGE = "sysmeta"
_DESC = b"\x01"
_TAKEN = b"\x02"
_NAME_TRIES = 4

PENDING = "Pending"
DONE = "Done"


@dataclass(frozen=True, slots=True)
class AppStorageDesc:
    safe_name: str
    status: str
    error: str = ""

    def encode(self) -> bytes:
        return orjson.dumps({"SafeName": self.safe_name, "Status": self.status, "Error": self.error})

    @staticmethod
    def decode(data: bytes) -> AppStorageDesc:
        raw = orjson.loads(data)
        return AppStorageDesc(raw["SafeName"], raw["Status"], raw.get("Error", ""))


CREATION_WAIT = 60.0
"""Seconds a process waits for a storage another process is creating (Cassandra: a keyspace
and its table, a schema change the nodes must agree on)."""


class StorageProvider:
    """Hands out application storages by application name (``owner/app``)."""

    def __init__(self, factory: AppStorageFactory) -> None:
        self.factory = factory
        self._meta: AppStorage | None = None
        self._cache: dict[str, AppStorage] = {}
        self._lock = asyncio.Lock()

    @property
    def capabilities(self) -> Capabilities:
        return self.factory.capabilities

    def requests(self) -> Mapping[str, int]:
        """The factory's requests to storage servers by kind (``AppStorageFactory.requests``)."""
        return self.factory.requests()

    async def open(self, server: bool = False) -> None:
        """Connect and open the registry now, so that a bad configuration fails at start;
        ``server``: as the storage's server process (see ``AppStorageFactory.take``)."""
        if server:
            await self.factory.take()
        await self._meta_storage()

    async def _meta_storage(self) -> AppStorage:
        if self._meta is None:
            await self.factory.open()
            with contextlib.suppress(StorageAlreadyExistsError):
                await self.factory.init(META_STORAGE)
            # Another process may be creating it at this moment: wait until it opens.
            self._meta = await self._wait_until_it_opens("the storage registry", META_STORAGE)
        return self._meta

    async def app_storage(self, app: str) -> AppStorage:
        """The storage of ``app``, created on first use."""
        if not isinstance(app, str) or app.count("/") != 1 or not all(app.split("/")):
            raise StorageError(f"application name {app!r} must look like owner/app")
        if (cached := self._cache.get(app)) is not None:
            return cached
        async with self._lock:
            if (cached := self._cache.get(app)) is not None:
                return cached
            storage = await self._open_or_create(app)
            self._cache[app] = storage
            return storage

    async def describe(self, app: str) -> AppStorageDesc | None:
        """The registry's descriptor of ``app``, or None if it never asked for a storage."""
        meta = await self._meta_storage()
        raw = await meta.get(app.encode(), _DESC)
        return None if raw is None else AppStorageDesc.decode(raw)

    async def _open_or_create(self, app: str) -> AppStorage:
        meta = await self._meta_storage()
        key = app.encode()
        raw = await meta.get(key, _DESC)
        if raw is None:
            desc = await self._register(meta, app)
            raw = desc.encode()
        desc = AppStorageDesc.decode(raw)
        if desc.status == DONE:
            return await self.factory.app_storage(desc.safe_name)
        if desc.error:
            raise StorageInitError(
                f"storage of {app} ({desc.safe_name}) failed to initialise earlier and needs an operator: {desc.error}"
            )
        try:
            await self.factory.init(desc.safe_name)
        except StorageAlreadyExistsError:
            # Another process of the cluster is creating it right now, or one crashed after
            # creating it: either way it is this application's (its name is claimed), so wait
            # until it opens, then record it as done.
            storage = await self._wait_until_it_opens(app, desc.safe_name)
        except Exception as exc:
            failed = AppStorageDesc(desc.safe_name, PENDING, f"{type(exc).__name__}: {exc}")
            await meta.compare_and_swap(key, _DESC, raw, failed.encode())
            raise StorageInitError(f"cannot create the storage of {app} ({desc.safe_name}): {exc}") from exc
        else:
            storage = await self.factory.app_storage(desc.safe_name)
        done = AppStorageDesc(desc.safe_name, DONE)
        if not await meta.compare_and_swap(key, _DESC, raw, done.encode()):
            now = await meta.get(key, _DESC)
            if now is None or AppStorageDesc.decode(now) != done:
                raise StorageInitError(f"the registry entry of {app} changed while its storage was created")
        return storage

    async def _wait_until_it_opens(self, app: str, safe_name: str) -> AppStorage:
        deadline = asyncio.get_running_loop().time() + CREATION_WAIT
        while True:
            try:
                return await self.factory.app_storage(safe_name)
            except StorageDoesNotExistError as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise StorageInitError(
                        f"storage of {app} ({safe_name}) exists but did not become usable within "
                        f"{CREATION_WAIT:.0f} s (a start interrupted half-way?): {exc}"
                    ) from exc
                await asyncio.sleep(0.5)

    async def _register(self, meta: AppStorage, app: str) -> AppStorageDesc:
        """Claim a safe name and write a Pending descriptor; another process may win the race."""
        name = safe_app_name(app)
        for _ in range(_NAME_TRIES):
            if await meta.insert_if_not_exists(name.encode(), _TAKEN, app.encode()):
                break
            if await meta.get(name.encode(), _TAKEN) == app.encode():
                break  # our own claim from an interrupted start
            name = mutate_safe_name(name)
        else:
            raise StorageInitError(f"no free storage name for {app} after {_NAME_TRIES} tries")
        desc = AppStorageDesc(name, PENDING)
        if await meta.insert_if_not_exists(app.encode(), _DESC, desc.encode()):
            return desc
        raw = await meta.get(app.encode(), _DESC)
        if raw is None:
            raise StorageInitError(f"the registry entry of {app} vanished while it was created")
        return AppStorageDesc.decode(raw)

    async def close(self) -> None:
        self._cache.clear()
        self._meta = None
        await self.factory.close()
