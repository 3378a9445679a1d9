"""The storage contract every driver implements, modelled on Voedger's ``IAppStorage``.

A storage is a wide-column key/value store: a row is addressed by a byte partition key and a
byte clustering column (which may be empty) and holds a byte value. Rows of one partition are
ordered by their clustering column, compared as unsigned bytes. Rows written with a TTL vanish
when it runs out, for every read method alike.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass

from voedger.storage.errors import InvalidKeyError

#: A row of a batch put: (partition key, clustering column, value).
BatchItem = tuple[bytes, bytes, bytes]

#: A row of a conditional batch, whose partition key the batch names once: (clustering column, value).
PartitionRow = tuple[bytes, bytes]

MAX_KEY_LEN = 65_535
"""Cassandra's limit for a partition key or a clustering value; every driver enforces it."""

MAX_TTL_SECONDS = 630_720_000
"""Cassandra's maximum TTL (20 years); every driver enforces it."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a driver can do; the contract suite skips only what a driver declares it lacks."""

    name: str
    #: Row TTLs expire as the injected clock moves (tests advance it instead of sleeping).
    manual_clock: bool = False
    #: Data written survives the process (and, for sqlite, ``kill -9``).
    persistent: bool = False
    #: Data is replicated over several nodes.
    replicated: bool = False


class AppStorage(ABC):
    """One application's storage. All methods are coroutines and never block the event loop."""

    capabilities: Capabilities

    @abstractmethod
    async def put(self, p_key: bytes, c_col: bytes, value: bytes) -> None:
        """Write one row (no TTL); returns once it is durable."""

    @abstractmethod
    async def put_batch(self, items: Sequence[BatchItem]) -> None:
        """Write several rows atomically (a logged batch); returns once they are durable."""

    async def put_batch_at(self, items: Sequence[BatchItem], at: float) -> None:
        """``put_batch`` as of time ``at`` (seconds since the epoch).

        Where concurrent writes of a row are resolved by their time (Cassandra: the latest wins),
        the rows get that time, so a write that arrives late (its process was paused) loses to
        any newer write of the same rows. Drivers with one writer ignore it.
        """
        await self.put_batch(items)

    async def put_rows_at(self, items: Sequence[BatchItem], at: float) -> None:
        """``put_batch_at`` without atomicity across storage partitions: the rows of each
        partition are written together, the partitions independently (Cassandra: unlogged
        batches of the partitions that share their replicas, sent at once, instead of one logged
        batch with its batch log).

        For rows that can be written again from elsewhere when only some land: the command
        processor's rows derived from a PLog event, which recovery re-applies. Returns once all
        are durable; raises if any write failed (some may have landed). Drivers whose batches
        cost the same either way write one atomic batch.
        """
        await self.put_batch_at(items, at)

    def begin_put_batch(self, items: Sequence[BatchItem]) -> Awaitable[None]:
        """``put_batch`` started at once; await the result for durability (failures show there).

        A coroutine starts only when the event loop next turns to it, and under load a turn
        takes milliseconds: the command processor hands its group's writes over this way, so
        they reach the driver first. Drivers that queue a write synchronously override it.
        """
        return asyncio.ensure_future(self.put_batch(items))

    @abstractmethod
    async def get(self, p_key: bytes, c_col: bytes) -> bytes | None:
        """The value of a row, or None if there is none (or it expired)."""

    @abstractmethod
    async def get_batch(self, p_key: bytes, c_cols: Sequence[bytes]) -> list[bytes | None]:
        """The values of several rows of one partition, in the order asked."""

    @abstractmethod
    def read(self, p_key: bytes, start: bytes = b"", finish: bytes = b"") -> AsyncIterator[tuple[bytes, bytes]]:
        """Stream ``(c_col, value)`` with ``start <= c_col < finish`` in byte order.

        An empty ``start`` or ``finish`` leaves that end open; ``start >= finish`` (both given)
        yields nothing.
        """

    @abstractmethod
    async def insert_if_not_exists(self, p_key: bytes, c_col: bytes, value: bytes, ttl: int = 0) -> bool:
        """Insert the row if it does not exist (an expired row does not); True if inserted."""

    @abstractmethod
    async def compare_and_swap(self, p_key: bytes, c_col: bytes, old: bytes, new: bytes, ttl: int = 0) -> bool:
        """Replace the value if it equals ``old``; the TTL is reset to ``ttl`` (0 = none)."""

    @abstractmethod
    async def compare_and_delete(self, p_key: bytes, c_col: bytes, expected: bytes) -> bool:
        """Delete the row if its value equals ``expected``; True if deleted."""

    async def put_ttl(self, p_key: bytes, c_col: bytes, value: bytes, ttl: int) -> None:
        """Write a row that expires after ``ttl`` seconds, unconditionally: for rows only one
        writer ever writes (a process's own membership), where a conditional write would only
        make several writers' rounds collide in one partition (0: no expiry). Drivers whose
        conditional writes cost nothing more may implement it with them."""
        check_ttl(ttl)
        while True:
            current = await self.ttl_get(p_key, c_col)
            if current is None:
                if await self.insert_if_not_exists(p_key, c_col, value, ttl):
                    return
            elif await self.compare_and_swap(p_key, c_col, current, value, ttl):
                return

    async def ttl_get(self, p_key: bytes, c_col: bytes) -> bytes | None:
        """Like :meth:`get`: expired rows are never returned by any read method."""
        return await self.get(p_key, c_col)

    def ttl_read(self, p_key: bytes, start: bytes = b"", finish: bytes = b"") -> AsyncIterator[tuple[bytes, bytes]]:
        """Like :meth:`read`: expired rows are never returned by any read method."""
        return self.read(p_key, start, finish)

    @abstractmethod
    async def put_batch_if(
        self, p_key: bytes, c_col: bytes, expected: bytes | None, new: bytes, rows: Sequence[PartitionRow]
    ) -> bool:
        """A conditional batch in ONE partition: if the row ``(p_key, c_col)`` holds ``expected``
        (None: it does not exist, or it expired), set it to ``new`` (no TTL) and write ``rows``
        of the same partition, all at once; True if applied, False (nothing written) if not.

        Its use is fencing: the condition row holds an owner's epoch, so a writer that lost its
        ownership cannot append (Cassandra allows a condition only on a single-partition batch).
        Raises StorageUnavailableError when the outcome cannot be learnt; give ``new`` a value
        different from ``expected`` (a counter) so that a driver can learn it after a timeout.
        """

    @abstractmethod
    async def query_ttl(self, p_key: bytes, c_col: bytes) -> int | None:
        """Seconds the row has left (0 if it has no TTL), or None if it does not exist."""


class AppStorageFactory(ABC):
    """Creates and opens application storages by their safe name (a keyspace on Cassandra)."""

    capabilities: Capabilities

    async def open(self) -> None:  # noqa: B027 - optional hook, local drivers need nothing
        """Connect to the backend; called once before first use (nothing to do for local drivers)."""

    async def take(self) -> None:  # noqa: B027 - optional hook: shared backends need nothing
        """Make this process the only server of the storage, where it can have one server only
        (an embedded store); raises StorageLockedError naming the holder otherwise. Readers
        that are not servers (tools, tests) do not take it."""

    def requests(self) -> Mapping[str, int]:
        """Requests sent to the storage's servers so far, by kind (``voedger_storage_requests_total``);
        none for an embedded store, which has no servers to send them to."""
        return {}

    @abstractmethod
    async def init(self, safe_name: str) -> None:
        """Create the storage; raises StorageAlreadyExistsError if it exists."""

    @abstractmethod
    async def app_storage(self, safe_name: str) -> AppStorage:
        """Open an existing storage; raises StorageDoesNotExistError if it is missing."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and threads."""


def by_partition(items: Sequence[BatchItem]) -> dict[bytes, list[BatchItem]]:
    """The rows of ``items`` by storage partition, in the order the partitions first come."""
    out: dict[bytes, list[BatchItem]] = {}
    for item in items:
        out.setdefault(item[0], []).append(item)
    return out


def check_key(p_key: bytes, c_col: bytes) -> None:
    """Reject keys that some driver could not store, so that every driver behaves alike."""
    if not isinstance(p_key, bytes) or not isinstance(c_col, bytes):
        raise InvalidKeyError("partition key and clustering column must be bytes")
    if not p_key:
        raise InvalidKeyError("the partition key must not be empty")
    if len(p_key) > MAX_KEY_LEN:
        raise InvalidKeyError(f"the partition key is {len(p_key)} bytes; at most {MAX_KEY_LEN} are allowed")
    if len(c_col) > MAX_KEY_LEN:
        raise InvalidKeyError(f"the clustering column is {len(c_col)} bytes; at most {MAX_KEY_LEN} are allowed")


def check_conditional_batch(
    p_key: bytes, c_col: bytes, expected: bytes | None, new: bytes, rows: Sequence[PartitionRow]
) -> None:
    """The checks of ``put_batch_if``: valid keys and values, the condition row not among the rows."""
    check_key(p_key, c_col)
    if expected is not None:
        check_value(expected)
    check_value(new)
    for row_col, value in rows:
        check_key(p_key, row_col)
        check_value(value)
        if row_col == c_col:
            raise InvalidKeyError("a conditional batch must not write its condition row as one of its rows")


def check_value(value: bytes) -> None:
    if not isinstance(value, bytes):
        raise InvalidKeyError("a value must be bytes")


def check_ttl(ttl: int) -> None:
    if not isinstance(ttl, int) or ttl < 0 or ttl > MAX_TTL_SECONDS:
        raise InvalidKeyError(f"TTL must be an integer from 0 to {MAX_TTL_SECONDS} seconds, got {ttl!r}")


def range_is_empty(start: bytes, finish: bytes) -> bool:
    """True when a closed range ``[start, finish)`` cannot hold any row."""
    return bool(start) and bool(finish) and start >= finish
