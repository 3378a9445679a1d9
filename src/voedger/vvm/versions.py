"""The versions of the applications deployed through ``c.cluster.DeployApp``, as every process
of a cluster reads them from the sys/vvm storage, and the gate between a version's swap and the
partitions the leases move meanwhile.

A *version row* per application names the deployed version: ``{"version": n, "digest": sha256
of the image file}``. It is only ever written by compare-and-swap (inserted for the first
version), so that of two deploys at once exactly one wins. The image itself is kept beside it,
in a row of its own keyed by the application and the digest, written before the version row
that names it: a process that reads a version row always finds its image.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from voedger.storage.conditional import write_if
from voedger.structs.keys import app_state_key

VERSIONS = app_state_key("version", b"")
"""The version rows, by application name (one storage partition: read whole by each poll)."""
IMAGES = app_state_key("image-version", b"")
"""The images the version rows name: clustering column ``name@digest``."""


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Version:
    """One application's deployed version; ``raw`` is the row as read (what a compare-and-swap
    over it expects)."""

    number: int
    digest: str
    raw: bytes = b""

    def encode(self) -> bytes:
        return orjson.dumps({"version": self.number, "digest": self.digest})

    @staticmethod
    def decode(raw: bytes) -> Version:
        data = orjson.loads(raw)
        return Version(int(data["version"]), str(data["digest"]), raw)


class VersionStore:
    """The version rows and images of the sys/vvm storage (``AppStorage``)."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage

    async def current(self, name: str) -> Version | None:
        raw = await self.storage.get(VERSIONS, name.encode())
        return Version.decode(raw) if raw is not None else None

    async def all(self) -> dict[str, Version]:
        versions: dict[str, Version] = {}
        async for c_col, raw in self.storage.read(VERSIONS):
            versions[c_col.decode()] = Version.decode(raw)
        return versions

    async def image(self, name: str, digest: str) -> bytes | None:
        data: bytes | None = await self.storage.get(IMAGES, _image_ccol(name, digest))
        return data

    async def keep_image(self, name: str, digest: str, data: bytes) -> None:
        await self.storage.put(IMAGES, _image_ccol(name, digest), data)

    async def forget_image(self, name: str, digest: str) -> None:
        """Delete an image no version row names any more (by a compare-and-delete of its
        bytes: the storage contract has no plain delete)."""
        data = await self.image(name, digest)
        if data is not None:
            await self.storage.compare_and_delete(IMAGES, _image_ccol(name, digest), data)

    async def advance(self, name: str, current: Version | None, new: Version) -> bool:
        """Make ``new`` the deployed version if ``current`` still is (None: no version yet);
        False if another deploy came first."""
        expected = None if current is None else current.raw
        return await write_if(self.storage, VERSIONS, name.encode(), expected, new.encode())


def _image_ccol(name: str, digest: str) -> bytes:
    return f"{name}@{digest}".encode()


class SwapGate:
    """Partitions starting and stopping (``move``) run side by side; swapping an application's
    version (``swap``) waits until none does, and none starts while it runs: a partition is
    never started on the old version's runtime after the swap took its list."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._moves = 0
        self._swapping = False

    async def begin_move(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._swapping)
            self._moves += 1

    async def end_move(self) -> None:
        async with self._cond:
            self._moves -= 1
            self._cond.notify_all()

    async def begin_swap(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._swapping)
            self._swapping = True
            await self._cond.wait_for(lambda: self._moves == 0)

    async def end_swap(self) -> None:
        async with self._cond:
            self._swapping = False
            self._cond.notify_all()
