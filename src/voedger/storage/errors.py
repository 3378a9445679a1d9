"""Errors of the storage layer. Each carries a message that names what is wrong."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every storage error."""


class StorageURLError(StorageError, ValueError):
    """A storage URL is malformed or names an unknown scheme."""


class StorageUnavailableError(StorageError):
    """The storage cannot be reached (for example no Cassandra node answers)."""


class StorageDoesNotExistError(StorageError):
    """An application storage was asked for before it was created."""


class StorageAlreadyExistsError(StorageError):
    """An application storage was created twice."""


class StorageInitError(StorageError):
    """Creating an application storage failed, or an earlier creation was left half-done."""


class InvalidKeyError(StorageError, ValueError):
    """A partition key, clustering column or value breaks the contract's limits."""


class StorageLockedError(StorageError):
    """An embedded store is in use by another process."""
