"""The storage layer: one contract (``AppStorage``), three drivers (mem, sqlite, cassandra),
and a provider that hands out one storage per application."""

from __future__ import annotations

from voedger.clock import SYSTEM_CLOCK, Clock
from voedger.storage.contract import AppStorage, AppStorageFactory, BatchItem, Capabilities, PartitionRow
from voedger.storage.errors import (
    InvalidKeyError,
    StorageAlreadyExistsError,
    StorageDoesNotExistError,
    StorageError,
    StorageInitError,
    StorageLockedError,
    StorageUnavailableError,
    StorageURLError,
)
from voedger.storage.provider import StorageProvider
from voedger.storage.safename import safe_app_name
from voedger.storage.snapshot import read_snapshot
from voedger.storage.url import CassandraURL, MemURL, SQLiteURL, parse_storage_url

__all__ = [
    "AppStorage",
    "AppStorageFactory",
    "BatchItem",
    "Capabilities",
    "InvalidKeyError",
    "PartitionRow",
    "StorageAlreadyExistsError",
    "StorageDoesNotExistError",
    "StorageError",
    "StorageInitError",
    "StorageLockedError",
    "StorageProvider",
    "StorageURLError",
    "StorageUnavailableError",
    "open_factory",
    "open_storage",
    "parse_storage_url",
    "read_snapshot",
    "safe_app_name",
]


def open_factory(url: str, clock: Clock = SYSTEM_CLOCK, read_only: bool = False) -> AppStorageFactory:
    """The driver's factory for ``url``; it connects when first used (see ``AppStorageFactory.open``).
    ``read_only``: an embedded store written by another process, read beside it (SQLite only)."""
    parsed = parse_storage_url(url)
    if read_only and not isinstance(parsed, SQLiteURL):
        raise StorageURLError("only an embedded SQLite store is opened read-only by a reader process")
    if isinstance(parsed, MemURL):
        from voedger.storage.mem import MemStorageFactory

        return MemStorageFactory(clock)
    if isinstance(parsed, SQLiteURL):
        from voedger.storage.sqlite import SQLiteStorageFactory

        return SQLiteStorageFactory(parsed.directory, clock, read_only=read_only)
    assert isinstance(parsed, CassandraURL)
    from voedger.storage.cassandra import CassandraStorageFactory

    return CassandraStorageFactory.from_url(parsed)


def open_storage(url: str, clock: Clock = SYSTEM_CLOCK, read_only: bool = False) -> StorageProvider:
    """A storage provider for ``url`` (see :mod:`voedger.storage.url` for the forms).

    A malformed URL fails here; an unreachable cluster fails at ``await provider.open()`` or at
    the first ``app_storage``, with :class:`StorageUnavailableError`.
    """
    return StorageProvider(open_factory(url, clock, read_only))
