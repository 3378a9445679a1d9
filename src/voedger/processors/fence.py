"""Fencing a partition's writer: every group it writes is conditional on its owner's epoch.

Several server processes share one Cassandra; each partition is owned through a lease, and a
new owner gets a higher epoch. A process that only thinks it still owns a partition (it was
paused longer than its lease, or cut off) must be unable to write. The PLog is the truth of a
partition (records, WLog entries and view rows are re-applied from its events on recovery), so
the fence guards the PLog:

- Each storage partition of the PLog (a "chunk" of 4,096 offsets) holds a *head* row beside its
  events: the epoch and the owner that last wrote there, and the next offset after that write.
- A group's PLog rows go in one conditional batch with the head: "if the head is what I last
  wrote, write these events and the new head" (one lightweight transaction per group; a group
  never spans two chunks). The group's other rows (WLog, records, views, sequences) follow in a
  plain batch, and the commands are acknowledged only after both.
- A new owner *claims* the chunk where the PLog ends and the next one: it sets their heads to
  its own epoch (compare-and-swap), then reads the PLog again, and repeats while the end moved.
  From then on a writer of an older epoch fails its condition in either chunk, and it cannot
  reach a later chunk without writing one of these two first.
- Epochs come from a counter row per partition, raised by compare-and-swap at every claim, so
  two claimants never share one.

The derived rows of an event are written only after its PLog batch applied, so a fenced writer
leaves no trace: what it wrote before being fenced is a legitimate part of the log, which the
new owner re-applies. Storage without other writers (SQLite, which a process locks, or mem)
needs no fence and writes plainly (:class:`PlainWriter`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from voedger.storage import AppStorage, BatchItem, StorageUnavailableError
from voedger.storage.conditional import write_if
from voedger.structs.keys import CRACK_BITS, app_state_key, plog_key

HEAD_CCOL = b"\xff\xff"
"""The head row's clustering column in a PLog chunk: above every event's (0..4095)."""

CLAIM_ATTEMPTS = 20


class FencedError(Exception):
    """The writer's epoch is no longer the partition's: another process owns it now.

    ``written``: the group's PLog rows may be in storage all the same (they applied before the
    fence was found, or an unknown outcome was settled by a newer owner's claim): its events
    are then part of the log, which the new owner re-applies, so its commands must not be
    answered as unserved (a router would send them again: applied twice)."""

    def __init__(self, message: str, written: bool = False) -> None:
        super().__init__(message)
        self.written = written


@dataclass(frozen=True, slots=True)
class Head:
    epoch: int
    owner: str
    plog: int
    """The next PLog offset after the write that set this head (0 for a claim)."""

    def encode(self) -> bytes:
        return orjson.dumps({"epoch": self.epoch, "owner": self.owner, "plog": self.plog})

    @staticmethod
    def decode(raw: bytes) -> Head:
        d = orjson.loads(raw)
        return Head(int(d["epoch"]), str(d["owner"]), int(d["plog"]))


def chunk_of(offset: int) -> int:
    return offset >> CRACK_BITS


def chunk_key(partition: int, chunk: int) -> bytes:
    return plog_key(partition, chunk << CRACK_BITS)[0]


def epoch_key(partition: int) -> tuple[bytes, bytes]:
    return app_state_key("epoch", b""), partition.to_bytes(2, "big")


class PartitionWriter(Protocol):
    """How a partition hands its group's rows to storage."""

    fenced: bool
    """Set once the partition is known to be another process's: nothing more is written."""

    def begin(self, items: Sequence[BatchItem], next_plog: int) -> Awaitable[None]:
        """Start writing a group (``next_plog``: the PLog offset after it); await for durability.
        Raises FencedError if the partition is no longer this writer's."""

    async def resync(self) -> None:
        """After a write whose outcome is unknown: learn what storage holds now."""


class PlainWriter:
    """For storage that no other process writes: the rows in one batch."""

    def __init__(self, storage: AppStorage) -> None:
        self.storage = storage
        self.fenced = False

    def begin(self, items: Sequence[BatchItem], next_plog: int) -> Awaitable[None]:
        return self.storage.begin_put_batch(items)

    async def resync(self) -> None:
        return None


async def next_epoch(storage: AppStorage, partition: int) -> int:
    """Raise the partition's epoch counter by one (compare-and-swap); the new value."""
    p_key, c_col = epoch_key(partition)
    for _ in range(CLAIM_ATTEMPTS):
        raw = await storage.get(p_key, c_col)
        epoch = 1 if raw is None else int(raw) + 1
        if await write_if(storage, p_key, c_col, raw, str(epoch).encode()):
            return epoch
    raise StorageUnavailableError(f"partition {partition}: could not raise the epoch (contended)")


class FencedWriter:
    """A partition's writer under one epoch (see the module's docstring)."""

    def __init__(
        self,
        storage: AppStorage,
        partition: int,
        epoch: int,
        owner: str,
        valid: Callable[[], bool] = lambda: True,
    ) -> None:
        self.storage = storage
        self.partition = partition
        self.epoch = epoch
        self.owner = owner
        self.valid = valid
        """False once the lease may have run out (checked on the monotonic clock before each
        write, so a process resumed after a long pause does not even try)."""
        self.heads: dict[int, Head] = {}
        """The head of each chunk as this writer last wrote or claimed it."""
        self.fenced = False
        self.lwt_seconds = 0.0

    # --- claiming ---------------------------------------------------------------------------

    async def claim(self, next_plog: int) -> None:
        """Set the heads of the chunk of ``next_plog`` and the one after to this epoch."""
        first = chunk_of(next_plog)
        for chunk in (first, first + 1):
            if chunk not in self.heads:
                await self._claim_chunk(chunk)

    async def _claim_chunk(self, chunk: int) -> None:
        p_key = chunk_key(self.partition, chunk)
        for _ in range(CLAIM_ATTEMPTS):
            raw = await self.storage.get(p_key, HEAD_CCOL)
            current = Head.decode(raw) if raw is not None else None
            if current is not None and (current.epoch, current.owner) == (self.epoch, self.owner):
                self.heads[chunk] = current
                return
            if current is not None and current.epoch >= self.epoch:
                self.fenced = True
                raise FencedError(
                    f"partition {self.partition}: epoch {current.epoch} of {current.owner} is not older than ours"
                )
            head = Head(self.epoch, self.owner, 0)
            if await self.storage.put_batch_if(p_key, HEAD_CCOL, raw, head.encode(), []):
                self.heads[chunk] = head
                return
        raise StorageUnavailableError(f"partition {self.partition}: could not claim PLog chunk {chunk}")

    # --- writing ----------------------------------------------------------------------------

    def begin(self, items: Sequence[BatchItem], next_plog: int) -> Awaitable[None]:
        return asyncio.ensure_future(self._write(items, next_plog))

    async def _write(self, items: Sequence[BatchItem], next_plog: int) -> None:
        if self.fenced:
            raise FencedError(f"partition {self.partition}: fenced")
        if not self.valid():
            self.fenced = True
            raise FencedError(f"partition {self.partition}: the lease may have run out")
        chunk = chunk_of(next_plog - 1)
        p_key = chunk_key(self.partition, chunk)
        plog_rows = [(c, v) for p, c, v in items if p == p_key]
        rest = [item for item in items if item[0] != p_key]
        old = self.heads.get(chunk)
        new = Head(self.epoch, self.owner, next_plog)
        at = time.time()  # before the condition: see the end of this method
        began = time.perf_counter()
        applied = await self.storage.put_batch_if(
            p_key, HEAD_CCOL, old.encode() if old is not None else None, new.encode(), plog_rows
        )
        self.lwt_seconds += time.perf_counter() - began
        if not applied:
            self.fenced = True
            written = await self._landed(p_key, plog_rows)
            raise FencedError(f"partition {self.partition}: PLog chunk {chunk} has a newer owner", written)
        self.heads[chunk] = new
        if not self.valid():
            # Paused between the two writes for longer than the lease: a new owner may be
            # writing. The events are in the PLog; it re-applies them. Nothing is acknowledged,
            # and nothing is answered as unserved either.
            self.fenced = True
            raise FencedError(f"partition {self.partition}: the lease may have run out", written=True)
        if rest:
            # Dated before the condition applied: should this batch still arrive late, a new
            # owner's writes (made after the lease ran out, so later) win over it row by row.
            # Not atomic across partitions: if some rows do not land, the group fails, and the
            # recovery that follows (here, or by the next owner) re-applies the events from the
            # PLog, from the start of the last group on (the partition's sequence row says where).
            await self.storage.put_rows_at(rest, at)

    async def _landed(self, p_key: bytes, plog_rows: Sequence[tuple[bytes, bytes]]) -> bool:
        """Whether a conditional write that did not apply landed all the same: a write whose
        outcome was unknown is settled by the next compare-and-swap of the row (Paxos completes
        a proposal a replica accepted), which may be a newer owner's claim, after which the
        head is the claimant's and the events ours. True when the first event is there as we
        wrote it, or when storage cannot tell."""
        if not plog_rows:
            return False
        c_col, value = plog_rows[0]
        try:
            return await self.storage.get(p_key, c_col) == value
        except Exception:  # unreadable: it may have landed
            return True

    async def resync(self) -> None:
        """Reload the heads this writer knows: a write whose outcome was unknown may have
        applied. A head that is no longer ours means another owner: fenced."""
        for chunk in list(self.heads):
            raw = await self.storage.get(chunk_key(self.partition, chunk), HEAD_CCOL)
            head = Head.decode(raw) if raw is not None else None
            if head is None or (head.epoch, head.owner) != (self.epoch, self.owner):
                self.fenced = True
                raise FencedError(f"partition {self.partition}: PLog chunk {chunk} has a newer owner")
            self.heads[chunk] = head
