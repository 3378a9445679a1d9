"""The storage's own batch log: atomic batches while the coordinators' batch log is stuck.

Cassandra makes a logged batch atomic by first writing it to the batch log of two other nodes.
The coordinator picks them among the nodes its failure detector believes alive, so for the
~18 s until it convicts a node that just died, every logged batch times out at BATCH_LOG (on a
three-node cluster each coordinator's only two candidates include the dead node). Two replicas
of three are still a quorum, so nothing else needs to wait.

Meanwhile (see ``cassandra_nodes``) a batch is written the way Cassandra itself does it, with
the log kept at QUORUM in a table of the keyspace:

1. the whole batch, with the write timestamp chosen for it, as one row of ``batchlog``
   (a single-partition write: it needs only a quorum of the replicas of one partition);
2. its rows, grouped by partition, written concurrently ``USING TIMESTAMP`` that timestamp;
3. the log row deleted (in the background; a failed delete only costs a harmless replay).

A batch whose step 2 failed is completed later, here in the background and by whoever opens the
storage next (:meth:`BatchLog.replay`, before anyone reads; if the log cannot be read then, as
with too few replicas up, in the background until it can: no later than Cassandra replays its
own batch log, which is always in the background). Replaying is always safe: every row
carries the batch's own timestamp, so a replay writes the same values at the same time and
loses to anything written since. That also makes it safe for two servers sharing a keyspace to
replay each other's entries. The table has ``gc_grace_seconds = 0`` (as Cassandra's own
``system.batches``): a purged deletion that resurrects an entry only causes such a replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from cassandra.query import BatchStatement, BatchType, BoundStatement

from voedger.storage.contract import BatchItem, by_partition
from voedger.storage.errors import StorageError

log = logging.getLogger(__name__)

TABLE = "batchlog"
SHARDS = 32
"""Partitions the log rows are spread over, so that no one replica set takes them all, and
the deletions of a busy minute leave each partition few tombstones to read past when replaying.
Replaying names them (``shard IN``): the coordinator reads each as a single partition, which it
retries on another replica (speculative retry), where a range scan would wait out its timeout on
a dead node it has not convicted yet."""

REPLAY_PAGE = 20
"""Log rows per page when replaying: each holds a whole batch, possibly megabytes."""

RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
"""Seconds between background attempts to complete a batch (the last one repeats)."""

_FORMAT = 1
_LEN = struct.Struct(">I")
_TIMESTAMP = struct.Struct(">q")


def create_table_cql(keyspace: str) -> str:
    return (
        f'CREATE TABLE IF NOT EXISTS "{keyspace}"."{TABLE}" '
        "(shard int, id uuid, ts bigint, rows blob, PRIMARY KEY ((shard), id)) "
        "WITH gc_grace_seconds = 0"
    )


def encode_rows(items: Sequence[BatchItem]) -> bytes:
    """A batch's rows as one blob: a format byte, then each field length-prefixed."""
    parts: list[bytes] = [bytes([_FORMAT])]
    for row in items:
        for field in row:
            parts.append(_LEN.pack(len(field)))
            parts.append(field)
    return b"".join(parts)


def decode_rows(blob: bytes) -> list[BatchItem]:
    """The rows :func:`encode_rows` wrote; raises ValueError on anything else."""
    if not blob or blob[0] != _FORMAT:
        raise ValueError("not a batch log entry of a known format")
    view = memoryview(blob)
    pos, end = 1, len(blob)
    rows: list[BatchItem] = []
    fields: list[bytes] = []
    while pos < end:
        if pos + _LEN.size > end:
            raise ValueError("truncated batch log entry")
        (size,) = _LEN.unpack_from(view, pos)
        pos += _LEN.size
        if pos + size > end:
            raise ValueError("truncated batch log entry")
        fields.append(bytes(view[pos : pos + size]))
        pos += size
        if len(fields) == 3:
            rows.append((fields[0], fields[1], fields[2]))
            fields = []
    if fields:
        raise ValueError("truncated batch log entry")
    return rows


class _Entry:
    __slots__ = ("id", "items", "shard", "ts")

    def __init__(self, shard: int, entry_id: uuid.UUID, ts: int, items: Sequence[BatchItem]) -> None:
        self.shard = shard
        self.id = entry_id
        self.ts = ts
        self.items = items


class BatchLog:
    """One keyspace's batch log (see the module's docstring)."""

    def __init__(self, bridge: Any, statements: dict[str, Any], timestamp: Callable[[], int]) -> None:
        self._bridge = bridge
        self._add = statements["add"]
        self._remove = statements["remove"]
        self._scan = statements["scan"]
        self._put_at = statements["put_at"]
        self._timestamp = timestamp
        self._shards = itertools.count()
        self._unfinished: list[_Entry] = []
        self._completer: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.written = 0
        """Batches written through this log (for tests and logs)."""

    @classmethod
    async def prepare(cls, session: Any, bridge: Any, keyspace: str, values_table: str, consistency: int) -> BatchLog:
        table = f'"{keyspace}"."{TABLE}"'
        queries = {
            "add": f"INSERT INTO {table} (shard, id, ts, rows) VALUES (?, ?, ?, ?)",
            "remove": f"DELETE FROM {table} WHERE shard = ? AND id = ?",
            "scan": f"SELECT shard, id, ts, rows FROM {table} WHERE shard IN ?",
            "put_at": (
                f'INSERT INTO "{keyspace}"."{values_table}" (p_key, c_col, value) VALUES (?, ?, ?) USING TIMESTAMP ?'
            ),
        }

        def prepare_all() -> dict[str, Any]:
            prepared: dict[str, Any] = {}
            for name, query in queries.items():
                stmt = session.prepare(query)
                stmt.consistency_level = consistency
                stmt.is_idempotent = True  # every one of them may run twice to the same effect
                prepared[name] = stmt
            return prepared

        statements = await asyncio.to_thread(prepare_all)
        return cls(bridge, statements, session.cluster.timestamp_generator)

    async def write(self, items: Sequence[BatchItem], ts: int | None = None) -> None:
        """Write ``items`` atomically (eventually, as a logged batch is) without Cassandra's log;
        ``ts``: the rows' write time in microseconds (default: now)."""
        entry = _Entry(next(self._shards) % SHARDS, uuid.uuid4(), self._timestamp() if ts is None else ts, items)
        what = f"write a batch of {len(items)} rows"
        await self._bridge.run(
            self._add, (entry.shard, entry.id, entry.ts, encode_rows(items)), f"log a batch ({what})"
        )
        self.written += 1
        try:
            await self._apply(entry.items, entry.ts, what)
        except StorageError:
            # Logged: it will be complete eventually, as a logged batch that timed out after its
            # batch log was written. The caller hears of the failure now.
            self._unfinished.append(entry)
            if self._completer is None or self._completer.done():
                self._completer = asyncio.create_task(self._complete_unfinished())
            raise
        self._spawn(self._forget(entry.shard, entry.id))

    async def replay(self) -> int:
        """Complete every batch left in the log (by a crash, or still in flight elsewhere)."""
        scan = self._scan.bind((list(range(SHARDS)),))
        scan.fetch_size = REPLAY_PAGE
        replayed = 0
        async for page in self._bridge.pages(scan, "read the batch log"):
            for shard, entry_id, ts, blob in page:
                try:
                    items = decode_rows(bytes(blob))
                except ValueError as exc:
                    log.error("batch log entry %s is unreadable (%s); left in place", entry_id, exc)
                    continue
                await self._apply(items, int(ts), f"replay a logged batch of {len(items)} rows")
                await self._forget(shard, entry_id)
                replayed += 1
        return replayed

    def replay_later(self) -> None:
        """Replay in the background, again and again until it succeeds (or :meth:`close`)."""

        async def keep_trying() -> None:
            for attempt in itertools.count():
                await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
                try:
                    replayed = await self.replay()
                except StorageError as exc:
                    log.debug("the batch log still cannot be replayed: %s", exc)
                    continue
                log.info("replayed %d batch(es) left in the batch log", replayed)
                return

        self._spawn(keep_trying())

    async def close(self) -> None:
        """Stop the background work; what is left in the log is replayed at the next open."""
        tasks = [*self._background, *([self._completer] if self._completer else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._unfinished:
            log.warning("%d logged batch(es) still to complete; the next open replays them", len(self._unfinished))

    async def _apply(self, items: Sequence[BatchItem], ts: int, what: str) -> None:
        """Write the rows at timestamp ``ts``: one unlogged single-partition batch per partition."""
        stamp = _TIMESTAMP.pack(ts)
        statements: list[Any] = []
        for rows in by_partition(items).values():
            bounds = []
            for p_key, c_col, value in rows:
                bound = BoundStatement(self._put_at)
                bound.values = [p_key, c_col, value, stamp]  # blobs and a bigint, already serialized
                bounds.append(bound)
            if len(bounds) == 1:
                statements.append(bounds[0])
                continue
            batch = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=self._put_at.consistency_level)
            batch.is_idempotent = True
            for bound in bounds:
                batch.add(bound)
            statements.append(batch)
        results = await asyncio.gather(
            *(self._bridge.run(stmt, None, what) for stmt in statements), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _forget(self, shard: int, entry_id: uuid.UUID) -> None:
        try:
            await self._bridge.run(self._remove, (shard, entry_id), "delete a batch log entry")
        except StorageError as exc:
            log.debug("a batch log entry stays until the next replay: %s", exc)

    async def _complete_unfinished(self) -> None:
        for attempt in itertools.count():
            await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            pending, self._unfinished = self._unfinished, []
            for entry in pending:
                try:
                    await self._apply(entry.items, entry.ts, "complete a logged batch")
                except StorageError:
                    self._unfinished.append(entry)
                    continue
                await self._forget(entry.shard, entry.id)
                log.info("completed a logged batch of %d rows that had failed", len(entry.items))
            if not self._unfinished:
                return

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
