"""An application's store of short-lived values (Voedger's ``IAppTTLStorage``): text under a text
key, each written with a lifetime, for what extensions keep between calls without an event
(a one-time code, a lock, a nonce).

Every workspace of the application sees the same keys. A write is a conditional write of the
storage, so two callers never both insert a key or both swap it; it is not part of the command's
event (a command refused after it still wrote). An expired value reads as absent, at once.
"""

from __future__ import annotations

from typing import Final

from voedger.storage import AppStorage
from voedger.structs.keys import app_state_key
from voedger.syserror import SysError

__all__ = ["MAX_KEY_LENGTH", "MAX_TTL_SECONDS", "MAX_VALUE_LENGTH", "AppTTL"]

MAX_KEY_LENGTH: Final = 1024
"""Bytes of a key's UTF-8, as in Voedger."""
MAX_VALUE_LENGTH: Final = 65536
MAX_TTL_SECONDS: Final = 365 * 86_400

_PARTITION: Final = app_state_key("ttl", b"")
_ERR: Final = "app TTL storage validation error"


def _invalid(reason: str) -> SysError:
    """A 400 in Voedger's words: its storage's validation error, which its functions answer 400."""
    return SysError(400, f"{_ERR}: {reason}")


def _key(key: str) -> bytes:
    if not key:
        raise _invalid("key is empty")
    try:
        encoded = key.encode()
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 for it
        raise _invalid("key is not valid UTF-8") from None
    if len(encoded) > MAX_KEY_LENGTH:
        raise _invalid("key exceeds maximum length")
    return encoded


def _value(value: str) -> bytes:
    try:
        encoded = value.encode()
    except UnicodeEncodeError:
        raise _invalid("value is not valid UTF-8") from None
    if len(encoded) > MAX_VALUE_LENGTH:
        raise _invalid("value exceeds maximum length")
    return encoded


def _expected(value: str) -> bytes:
    """What a value is compared with: text no value could be (a lone surrogate) matches none."""
    return value.encode(errors="surrogatepass")


def _ttl(seconds: int) -> int:
    if not 0 < seconds <= MAX_TTL_SECONDS:
        raise _invalid(f"TTL must be between 1 and {MAX_TTL_SECONDS} seconds")
    return seconds


class AppTTL:
    """The store of one application (``state.app_ttl``). Invalid keys, values and lifetimes are
    a 400 :class:`SysError`; the operations answer whether they happened."""

    def __init__(self, storage: AppStorage) -> None:
        self._storage = storage

    async def get(self, key: str) -> str | None:
        """The value under ``key``, or None (never written, deleted or expired)."""
        raw = await self._storage.ttl_get(_PARTITION, _key(key))
        return None if raw is None else raw.decode()

    async def insert_if_not_exists(self, key: str, value: str, ttl_seconds: int) -> bool:
        """Write ``value`` for ``ttl_seconds`` unless ``key`` holds a live value; whether it did."""
        k, v, ttl = _key(key), _value(value), _ttl(ttl_seconds)
        return await self._storage.insert_if_not_exists(_PARTITION, k, v, ttl)

    async def compare_and_swap(self, key: str, expected: str, value: str, ttl_seconds: int) -> bool:
        """Replace the live value ``expected`` by ``value``, living ``ttl_seconds`` from now."""
        k, v, ttl = _key(key), _value(value), _ttl(ttl_seconds)
        return await self._storage.compare_and_swap(_PARTITION, k, _expected(expected), v, ttl)

    async def compare_and_delete(self, key: str, expected: str) -> bool:
        """Delete the live value ``expected``; whether it did."""
        return await self._storage.compare_and_delete(_PARTITION, _key(key), _expected(expected))
