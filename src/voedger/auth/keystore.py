"""Where a cluster keeps its private signing keys, and :class:`ClusterKeys`: the keys a cluster
signs with plus the :class:`~voedger.auth.keys.KeyRing` it verifies with.

The key set is one record (JSON: the cluster ID, the Ed25519 seeds with their IDs and creation
times, which key signs, until when HS256 tokens of before the upgrade are still accepted). It is
created once per cluster, like the JWT secret (:mod:`voedger.auth.secretstore`), and changed only
by compare-and-swap, so that processes rotating at once never lose a key:

- :class:`StorageKeySetStore`: in the cluster's shared storage (``insert_if_not_exists`` and
  ``compare_and_swap``);
- :class:`FileKeySetStore`: a 0600 file of a data directory, for one node (created by linking a
  temporary file, changed under an exclusive lock by an atomic rename).

Rotation without downtime: :meth:`ClusterKeys.stage` adds a key that verifies but does not sign
yet (publish it to the federation directory and let it reach every ring), :meth:`ClusterKeys.activate`
makes it the signing key while the previous one still verifies, and :meth:`ClusterKeys.remove`
drops the old one once no token it signed can still be valid (the longest TTL is 168 h);
:meth:`ClusterKeys.rotate` is stage + activate for one cluster. Other processes of the cluster
see the change on :meth:`ClusterKeys.reload`; until then they sign with the previous key, which
still verifies.

The record's content never appears in a ``repr``, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import orjson

from voedger.auth.errors import SecretStoreError
from voedger.auth.keys import MAX_KEYS_PER_CLUSTER, KeyRing, KeyScope, SigningKey
from voedger.auth.privatefiles import fsync_dir, write_private_tmp
from voedger.clock import SYSTEM_CLOCK, Clock
from voedger.storage import AppStorage
from voedger.storage.conditional import insert_or_get
from voedger.structs.keys import app_state_key
from voedger.structs.wsid import MAIN_CLUSTER_ID

try:  # pragma: no cover - every POSIX system has it
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "KEY_RELOAD_INTERVAL",
    "KEY_SET_NAME",
    "LEGACY_HMAC_WINDOW",
    "ClusterKeys",
    "FileKeySetStore",
    "KeySetStore",
    "StorageKeySetStore",
]

KEY_SET_NAME: Final = "signingKeysEd25519"
"""The name of the key-set record (beside ``secretKeyJWT`` in the same place)."""

LEGACY_HMAC_WINDOW: Final = 168 * 3600.0
"""Seconds HS256 tokens of before the upgrade are still accepted: the longest a principal token
lives (168 h), so that every token issued before the upgrade stays valid until it expires."""

KEY_RELOAD_INTERVAL: Final = 10.0
"""Seconds between two reads of the key set by each process of a cluster (:meth:`ClusterKeys.run_reloads`):
stage a key at least this long before activating it, so that every process verifies it first."""

_VERSION: Final = 1
_MAX_RETRIES: Final = 32
_MAX_RECORD: Final = 64 * 1024
_log = logging.getLogger(__name__)


class KeySetStore(Protocol):
    """One record a cluster's processes share: created once, changed by compare-and-swap."""

    async def load(self) -> bytes | None:
        """The record, or None if there is none yet."""
        ...

    async def create(self, value: bytes) -> bytes:
        """Store ``value`` if there is no record yet; the record stored (``value`` or the one
        another process stored first)."""
        ...

    async def replace(self, old: bytes, new: bytes) -> bool:
        """Replace the record with ``new`` if it still is ``old``; False if it changed."""
        ...


class StorageKeySetStore:
    """The key set in an application storage every process of the cluster shares (the
    ``sys/vvm`` one, beside the JWT secret)."""

    __slots__ = ("_key", "_storage")

    def __init__(self, storage: AppStorage, name: str = KEY_SET_NAME) -> None:
        self._storage = storage
        self._key = app_state_key("secret", name.encode())

    def __repr__(self) -> str:
        return "StorageKeySetStore(<storage>)"

    async def load(self) -> bytes | None:
        return await self._storage.get(self._key, b"")

    async def create(self, value: bytes) -> bytes:
        vanished = SecretStoreError("the signing keys vanished while they were being created")
        return await insert_or_get(self._storage, self._key, b"", value, vanished)

    async def replace(self, old: bytes, new: bytes) -> bool:
        return await self._storage.compare_and_swap(self._key, b"", old, new)


class FileKeySetStore:
    """The key set as a file of a directory, readable by the owner only (0600; the directory
    0700 when this store creates it)."""

    __slots__ = ("directory", "name")

    def __init__(self, directory: str | os.PathLike[str], name: str = KEY_SET_NAME) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}", name):
            raise ValueError("invalid key-set name")
        self.directory = Path(directory)
        self.name = name

    def __repr__(self) -> str:
        return f"FileKeySetStore({str(self.directory)!r})"

    @property
    def path(self) -> Path:
        return self.directory / self.name

    async def load(self) -> bytes | None:
        return await asyncio.to_thread(self.load_sync)

    async def create(self, value: bytes) -> bytes:
        return await asyncio.to_thread(self.create_sync, value)

    async def replace(self, old: bytes, new: bytes) -> bool:
        return await asyncio.to_thread(self.replace_sync, old, new)

    def load_sync(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretStoreError(f"cannot read the signing keys: {exc.strerror}") from None

    def create_sync(self, value: bytes) -> bytes:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = write_private_tmp(self.directory, self.name, value)
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                winner = self.load_sync()
                if winner is None:  # pragma: no cover - the file is never deleted
                    raise SecretStoreError("the signing keys vanished while they were being created") from None
                return winner
            finally:
                tmp.unlink(missing_ok=True)
            fsync_dir(self.directory)
            return value
        except OSError as exc:
            raise SecretStoreError(f"cannot write the signing keys: {exc.strerror}") from None

    def replace_sync(self, old: bytes, new: bytes) -> bool:
        try:
            lock = os.open(self.directory / f".{self.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if fcntl is not None:
                    fcntl.flock(lock, fcntl.LOCK_EX)
                current = self.load_sync()
                if current is None or not hmac.compare_digest(current, old):
                    return False
                tmp = write_private_tmp(self.directory, self.name, new)
                try:
                    os.replace(tmp, self.path)
                finally:
                    tmp.unlink(missing_ok=True)
                fsync_dir(self.directory)
                return True
            finally:
                os.close(lock)  # releases the lock
        except OSError as exc:
            raise SecretStoreError(f"cannot write the signing keys: {exc.strerror}") from None


# --- the record


@dataclass(frozen=True, slots=True)
class _KeySet:
    cluster_id: int
    active: str
    keys: tuple[tuple[SigningKey, float], ...]
    """(key, created at), oldest first."""
    hmac_until: float

    def kids(self) -> list[str]:
        return [k.kid for k, _ in self.keys]

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "version": _VERSION,
                "cluster": self.cluster_id,
                "active": self.active,
                "hmac_until": self.hmac_until,
                "keys": [
                    {"kid": k.kid, "d": base64.urlsafe_b64encode(k.private_bytes()).decode(), "created": created}
                    for k, created in self.keys
                ],
            }
        )

    @staticmethod
    def decode(raw: bytes, cluster_id: int) -> _KeySet:
        def bad(what: str) -> SecretStoreError:
            return SecretStoreError(f"the stored signing keys are malformed: {what}")

        if len(raw) > _MAX_RECORD:
            raise bad("too large")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise bad("not JSON") from None
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise bad(f"not a version {_VERSION} key set")
        stored = data.get("cluster")
        if not isinstance(stored, int) or isinstance(stored, bool):
            raise bad("no cluster ID")
        if stored != cluster_id:
            raise SecretStoreError(
                f"the stored signing keys are of cluster {stored}, not of cluster {cluster_id}:"
                " is this server given another cluster's storage?"
            )
        items, active, until = data.get("keys"), data.get("active"), data.get("hmac_until")
        if not isinstance(items, list) or not items or not isinstance(active, str):
            raise bad("no keys, or no signing key")
        if not isinstance(until, int | float) or isinstance(until, bool) or math.isnan(until):
            raise bad("hmac_until")
        keys: list[tuple[SigningKey, float]] = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("d"), str) or not isinstance(item.get("kid"), str):
                raise bad("a key without 'kid' or 'd'")
            created = item.get("created")
            if not isinstance(created, int | float) or isinstance(created, bool):
                raise bad("a key without a creation time")
            try:
                key = SigningKey.from_private_bytes(base64.urlsafe_b64decode(item["d"]), cluster_id)
            except (ValueError, binascii.Error):
                raise bad("a key is not an Ed25519 seed") from None
            if key.kid != item["kid"]:
                raise bad("a key ID does not match its key")
            keys.append((key, float(created)))
        result = _KeySet(cluster_id, active, tuple(keys), float(until))
        if active not in result.kids():
            raise bad("the signing key is not among the keys")
        return result


class ClusterKeys:
    """This cluster's private signing keys and the key ring that verifies every token here.

    Build it with :meth:`open` (keys kept in a :class:`KeySetStore`, created on first start) or
    :meth:`ephemeral` (one key in memory: tests and tools). :attr:`ring` holds this cluster's
    public keys; the federation code feeds the other clusters' into it
    (:meth:`KeyRing.update_cluster`) and publishes :meth:`jwks`.
    """

    __slots__ = ("_raw", "_set", "_store", "clock", "cluster_id", "ring")

    def __init__(
        self, key_set: _KeySet, raw: bytes | None, store: KeySetStore | None, clock: Clock, ring: KeyRing | None
    ) -> None:
        self.cluster_id = key_set.cluster_id
        self.clock = clock
        self.ring = ring if ring is not None else KeyRing(key_set.cluster_id)
        if self.ring.local_cluster != self.cluster_id:
            raise ValueError("the key ring serves another cluster")
        self._store = store
        self._raw = raw
        self._set = key_set
        self._apply(key_set, raw)

    def __repr__(self) -> str:
        return f"ClusterKeys(cluster_id={self.cluster_id}, signing={self.signing.kid!r}, keys={self.kids()})"

    # --- building

    @classmethod
    def ephemeral(
        cls,
        cluster_id: int = MAIN_CLUSTER_ID,
        clock: Clock = SYSTEM_CLOCK,
        *,
        hmac_until: float = 0.0,
        ring: KeyRing | None = None,
    ) -> ClusterKeys:
        """One new key kept in memory only. ``hmac_until``: until when (seconds since the epoch)
        HS256 tokens are accepted; 0, never."""
        key = SigningKey.generate(cluster_id)
        return cls(_KeySet(cluster_id, key.kid, ((key, clock.now()),), hmac_until), None, None, clock, ring)

    @classmethod
    async def open(
        cls,
        store: KeySetStore,
        cluster_id: int = MAIN_CLUSTER_ID,
        clock: Clock = SYSTEM_CLOCK,
        *,
        legacy_hmac: bool = False,
        ring: KeyRing | None = None,
    ) -> ClusterKeys:
        """The cluster's keys from ``store``; on the cluster's first start, a new key is made and
        stored (of processes starting at once, all get the one stored first).

        ``legacy_hmac``: the cluster signed HS256 tokens before (its JWT secret existed before
        these keys); those stay accepted for :data:`LEGACY_HMAC_WINDOW` after the keys were
        made, on the main cluster only: a worker never accepts HS256 tokens, since its secret
        would let it mint them. Read only when the keys are first made.
        """
        raw = await store.load()
        if raw is None:
            key = SigningKey.generate(cluster_id)
            now = clock.now()
            until = now + LEGACY_HMAC_WINDOW if legacy_hmac and cluster_id == MAIN_CLUSTER_ID else 0.0
            fresh = _KeySet(cluster_id, key.kid, ((key, now),), until).encode()
            raw = await store.create(fresh)
            if raw is fresh:
                _log.info("generated the signing key %s of cluster %d", key.kid, cluster_id)
        return cls(_KeySet.decode(raw, cluster_id), raw, store, clock, ring)

    # --- reading

    @property
    def signing(self) -> SigningKey:
        """The key new tokens are signed with."""
        for key, _ in self._set.keys:
            if key.kid == self._set.active:
                return key
        raise AssertionError("the signing key is among the keys")  # pragma: no cover - checked by decode

    @property
    def scope(self) -> KeyScope:
        return self.signing.scope

    @property
    def hmac_until(self) -> float:
        """Until when (seconds since the epoch) HS256 tokens issued before the upgrade are
        accepted; 0 if never."""
        return self._set.hmac_until

    def accepts_hmac(self, now: float) -> bool:
        return now < self._set.hmac_until

    def kids(self) -> list[str]:
        """The IDs of this cluster's keys, oldest first."""
        return self._set.kids()

    def jwks(self) -> list[dict[str, Any]]:
        """This cluster's public keys as JWKs, for the federation directory."""
        return [k.verification_key.to_jwk() for k, _ in self._set.keys]

    def created_at(self, kid: str) -> float:
        for key, created in self._set.keys:
            if key.kid == kid:
                return created
        raise KeyError(kid)

    # --- changing

    async def reload(self) -> None:
        """Read the key set again: what another process of the cluster rotated."""
        if self._store is None:
            return
        raw = await self._store.load()
        if raw is None:
            raise SecretStoreError("the signing keys are gone from the key store")
        if self._raw is None or not hmac.compare_digest(raw, self._raw):
            self._apply(_KeySet.decode(raw, self.cluster_id), raw)

    async def run_reloads(self, interval: float = KEY_RELOAD_INTERVAL) -> None:
        """:meth:`reload` every ``interval`` seconds until cancelled (a task of each process of a
        cluster); a failed read is logged and tried again at the next turn."""
        if interval <= 0:
            raise ValueError("the reload interval must be positive")
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload()
            except Exception as exc:
                _log.warning("cannot reload the signing keys of cluster %d: %s", self.cluster_id, exc)

    async def stage(self) -> str:
        """Add a new key that verifies but does not sign yet; its ID. Publish :meth:`jwks` and
        let it reach every cluster before :meth:`activate`."""
        key = SigningKey.generate(self.cluster_id)

        def add(s: _KeySet) -> _KeySet:
            if len(s.keys) >= MAX_KEYS_PER_CLUSTER:
                raise ValueError(f"a cluster keeps at most {MAX_KEYS_PER_CLUSTER} keys: remove old ones first")
            return _KeySet(s.cluster_id, s.active, (*s.keys, (key, self.clock.now())), s.hmac_until)

        await self._update(add)
        _log.info("staged the signing key %s of cluster %d", key.kid, self.cluster_id)
        return key.kid

    async def activate(self, kid: str) -> None:
        """Sign new tokens with key ``kid``; the previous signing key still verifies."""

        def choose(s: _KeySet) -> _KeySet:
            if kid not in s.kids():
                raise KeyError(f"no key {kid!r} in cluster {s.cluster_id}")
            return _KeySet(s.cluster_id, kid, s.keys, s.hmac_until)

        await self._update(choose)
        _log.info("the signing key of cluster %d is now %s", self.cluster_id, kid)

    async def rotate(self) -> str:
        """A new key signs from now on, the previous one still verifies: :meth:`stage` then
        :meth:`activate`. In a federation, prefer the two steps with the directory's propagation
        in between, so that no cluster sees a token of a key it does not know yet."""
        kid = await self.stage()
        await self.activate(kid)
        return kid

    async def remove(self, kid: str) -> None:
        """Drop key ``kid``: tokens it signed are refused from now on. The signing key cannot be
        removed."""

        def drop(s: _KeySet) -> _KeySet:
            if kid not in s.kids():
                raise KeyError(f"no key {kid!r} in cluster {s.cluster_id}")
            if kid == s.active:
                raise ValueError("the signing key cannot be removed: activate another one first")
            return _KeySet(s.cluster_id, s.active, tuple(e for e in s.keys if e[0].kid != kid), s.hmac_until)

        await self._update(drop)
        _log.info("removed the key %s of cluster %d", kid, self.cluster_id)

    async def _update(self, change: Callable[[_KeySet], _KeySet]) -> None:
        for _ in range(_MAX_RETRIES):
            changed = change(self._set)
            raw = changed.encode()
            if self._store is None:
                self._apply(changed, None)
                return
            assert self._raw is not None
            if await self._store.replace(self._raw, raw):
                self._apply(changed, raw)
                return
            await self.reload()  # another process changed the keys: apply the change to theirs
        raise SecretStoreError("the signing keys keep changing under this process")

    def _apply(self, key_set: _KeySet, raw: bytes | None) -> None:
        self.ring.set_local(k.verification_key for k, _ in key_set.keys)
        self._set = key_set
        self._raw = raw
