"""Where the node keeps its secrets, above all the JWT signing secret.

Every node of a cluster must sign and verify tokens with the same secret, so it is generated once
(64 random bytes from :mod:`secrets`) and kept where all of them find it:

- :class:`StorageSecretStore` keeps it in an :class:`~voedger.storage.AppStorage` (the cluster's
  shared storage): the first node to start writes it with ``insert_if_not_exists``; any node that
  loses that race reads the winner's.
- :class:`FileSecretStore` keeps it in a file of a data directory (mode 0600), for one node; the
  first process to create the file wins in the same way.

Secret values never appear in a ``repr``, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Final, Protocol

from voedger.auth.errors import SecretStoreError
from voedger.auth.privatefiles import fsync_dir, write_private_tmp
from voedger.auth.tokens import SECRET_KEY_LENGTH
from voedger.storage import AppStorage
from voedger.storage.conditional import insert_or_get
from voedger.structs.keys import app_state_key

__all__ = [
    "CLUSTER_SECRET_NAME",
    "JWT_SECRET_NAME",
    "FileSecretStore",
    "SecretStore",
    "StorageSecretStore",
    "cluster_secret",
    "generate_secret",
    "jwt_secret",
]

JWT_SECRET_NAME: Final = "secretKeyJWT"
"""The JWT secret's name, as Voedger's ``itokensjwt.SecretKeyJWTName``."""

CLUSTER_SECRET_NAME: Final = "clusterSecret"
"""The secret the processes of a cluster present to each other when they forward requests."""
CLUSTER_SECRET_LENGTH: Final = 32

_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_log = logging.getLogger(__name__)


class SecretStore(Protocol):
    """Named secrets of a node or cluster."""

    async def read(self, name: str) -> bytes | None:
        """The secret, or None if there is none yet."""
        ...

    async def get_or_create(self, name: str, length: int = SECRET_KEY_LENGTH) -> bytes:
        """The secret; generated (``length`` random bytes) and stored if there is none yet. When
        several nodes race, all of them get the one that was stored first."""
        ...


def generate_secret(length: int = SECRET_KEY_LENGTH) -> bytes:
    """``length`` bytes from the operating system's CSPRNG."""
    if length <= 0:
        raise ValueError("a secret needs at least one byte")
    return secrets.token_bytes(length)


async def jwt_secret(store: SecretStore) -> bytes:
    """The cluster's JWT signing secret, created on first start."""
    return await store.get_or_create(JWT_SECRET_NAME, SECRET_KEY_LENGTH)


async def cluster_secret(store: SecretStore) -> bytes:
    """The cluster's secret for forwarded requests (``X-Voedger-Cluster-Secret``), created by the
    first process to start and read by the others, like the JWT secret."""
    return await store.get_or_create(CLUSTER_SECRET_NAME, CLUSTER_SECRET_LENGTH)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"invalid secret name {name!r}: letters, digits, '_', '-' and '.' only")


def _check_value(name: str, value: bytes, length: int) -> bytes:
    if len(value) < length:
        raise SecretStoreError(f"stored secret {name!r} is {len(value)} bytes; at least {length} are needed")
    return value


class StorageSecretStore:
    """Secrets in an application storage, one row each (``app_state_key("secret", name)``).

    Use the storage every node of the cluster shares (e.g. the ``sys/vvm`` or ``sys/cluster``
    one); each secret is written once and never changed.
    """

    __slots__ = ("_storage",)

    def __init__(self, storage: AppStorage) -> None:
        self._storage = storage

    def __repr__(self) -> str:
        return "StorageSecretStore(<storage>)"

    @staticmethod
    def _key(name: str) -> tuple[bytes, bytes]:
        _check_name(name)
        return app_state_key("secret", name.encode()), b""

    async def read(self, name: str) -> bytes | None:
        p_key, c_col = self._key(name)
        return await self._storage.get(p_key, c_col)

    async def get_or_create(self, name: str, length: int = SECRET_KEY_LENGTH) -> bytes:
        existing = await self.read(name)
        if existing is not None:
            return _check_value(name, existing, length)
        fresh = generate_secret(length)
        kept = await self.keep(name, fresh)
        if kept is fresh:
            _log.info("generated secret %s", name)
        return _check_value(name, kept, length)

    async def keep(self, name: str, value: bytes) -> bytes:
        """Store ``value`` as secret ``name`` unless it exists; the secret kept, which is another
        value when the name was taken before (by an earlier start or another process)."""
        vanished = SecretStoreError(f"secret {name!r} vanished while it was being created")
        return await insert_or_get(self._storage, *self._key(name), value, vanished)


class FileSecretStore:
    """Secrets as files of a directory, each readable by the owner only (0600; the directory 0700
    when this store creates it).

    A secret is written to a temporary file first, then hard-linked to its name: linking fails if
    the name exists, so of several processes starting at once exactly one secret survives, and
    nobody ever reads a half-written file.
    """

    __slots__ = ("directory",)

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileSecretStore({str(self.directory)!r})"

    def _path(self, name: str) -> Path:
        _check_name(name)
        return self.directory / name

    async def read(self, name: str) -> bytes | None:
        return await asyncio.to_thread(self.read_sync, name)

    async def get_or_create(self, name: str, length: int = SECRET_KEY_LENGTH) -> bytes:
        return await asyncio.to_thread(self.get_or_create_sync, name, length)

    def read_sync(self, name: str) -> bytes | None:
        path = self._path(name)
        try:
            st = path.stat()
            value = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretStoreError(f"cannot read secret {name!r}: {exc.strerror}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            _log.warning("secret file %s is accessible to other users; chmod 600 it", path)
        return value

    def get_or_create_sync(self, name: str, length: int = SECRET_KEY_LENGTH) -> bytes:
        existing = self.read_sync(name)
        if existing is not None:
            return _check_value(name, existing, length)
        path = self._path(name)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise SecretStoreError(f"cannot create the secrets directory: {exc.strerror}") from None
        fresh = generate_secret(length)
        try:
            tmp = write_private_tmp(self.directory, name, fresh)
            try:
                os.link(tmp, path)
            except FileExistsError:
                winner = self.read_sync(name)
                if winner is None:  # pragma: no cover - a secret file is never deleted
                    raise SecretStoreError(f"secret {name!r} vanished while it was being created") from None
                return _check_value(name, winner, length)
            finally:
                tmp.unlink(missing_ok=True)
            fsync_dir(self.directory)
            _log.info("generated secret %s", name)
            return fresh
        except OSError as exc:
            raise SecretStoreError(f"cannot write secret {name!r}: {exc.strerror}") from None
