"""Where the federation directory lives: one row of the main cluster's own storage.

Changes are compare-and-swap on that row (read, change, swap; again if another change won), so
two operators editing at once never lose one's change. A worker keeps the last directory it
fetched in its own storage too, so that it starts and routes while the main cluster is down.

The federation secret, which the routers of all clusters present to each other, is kept like
the cluster secret: generated once on the main cluster, in its storage; a worker is given it
(``voedger federation secret``) and keeps it in its own.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Final

from voedger.auth.secretstore import StorageSecretStore
from voedger.federation.directory import Directory, DirectoryError
from voedger.storage import AppStorage
from voedger.storage.conditional import write_if
from voedger.structs.keys import app_state_key

__all__ = ["FEDERATION_SECRET_LENGTH", "FEDERATION_SECRET_NAME", "DirectoryStore", "federation_secret"]

FEDERATION_SECRET_NAME: Final = "federationSecret"
FEDERATION_SECRET_LENGTH: Final = 32
_KEY: Final = (app_state_key("federation", b"directory"), b"")
_CACHE_KEY: Final = (app_state_key("federation", b"directory-cache"), b"")
MAX_ATTEMPTS: Final = 20


class DirectoryStore:
    """The directory in ``storage`` (the main cluster's ``sys/vvm`` storage)."""

    def __init__(self, storage: AppStorage) -> None:
        self.storage = storage

    async def load(self) -> Directory:
        raw = await self.storage.ttl_get(*_KEY)
        return Directory() if raw is None else Directory.parse(raw)

    async def change(self, step: Callable[[Directory], Directory]) -> Directory:
        """Apply ``step`` to the current directory and store the result, atomically; the new
        directory. ``step`` may raise DirectoryError to refuse the change."""
        for _ in range(MAX_ATTEMPTS):
            raw = await self.storage.ttl_get(*_KEY)
            current = Directory() if raw is None else Directory.parse(raw)
            new = step(current)
            data = new.to_bytes()
            if await write_if(self.storage, *_KEY, raw, data):
                return new
        raise DirectoryError(f"the directory kept changing under {MAX_ATTEMPTS} attempts to change it; try again")

    async def cached(self) -> Directory | None:
        """The copy a worker kept of the last directory it fetched."""
        raw = await self.storage.get(*_CACHE_KEY)
        return None if raw is None else Directory.parse(raw)

    async def keep(self, directory: Directory) -> None:
        await self.storage.put(*_CACHE_KEY, directory.to_bytes())


async def federation_secret(storage: AppStorage, given: bytes | None = None) -> bytes:
    """The federation secret kept in ``storage``: created there on the main cluster (``given``
    None), or the one a worker was given, stored once; a worker given a secret that differs
    from the one it keeps is refused (a cluster joined to another federation by mistake)."""
    store = StorageSecretStore(storage)
    if given is None:
        return await store.get_or_create(FEDERATION_SECRET_NAME, FEDERATION_SECRET_LENGTH)
    if len(given) != FEDERATION_SECRET_LENGTH:
        raise DirectoryError(f"the federation secret must be {FEDERATION_SECRET_LENGTH} bytes")
    kept = await store.read(FEDERATION_SECRET_NAME) or await store.keep(FEDERATION_SECRET_NAME, given)
    if not hmac.compare_digest(kept, given):
        raise DirectoryError("this cluster keeps another federation secret than the one it was given")
    return given
