"""Writing and reading BLOBs in an application's storage, a chunk at a time.

A write takes the body as an async iterable of byte pieces (the HTTP request as it arrives)
and keeps at most a few chunks of it in memory; a read yields the chunks as storage gives them.
The state row says whether a BLOB is complete: it is written "in process" before the first
chunk and "completed", with the size, after the last. A write that fails (the body too large,
the client gone, storage failing) deletes what it wrote, so a BLOB is either whole or absent.

Temporary BLOBs are written with a TTL (one day) on every row, so they vanish by themselves.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import orjson

from voedger.blobs.keys import STATE_COL, BlobKey, chunk_col
from voedger.clock import SYSTEM_CLOCK, Clock
from voedger.storage import AppStorage, BatchItem

log = logging.getLogger("voedger.blobs")

CHUNK_SIZE: Final = 102_400
"""Bytes of a data row (Voedger's chunk size)."""
CHUNKS_PER_BUCKET: Final = 100
"""Data rows of one storage partition: about 10 MiB."""
BATCH_CHUNKS: Final = 8
"""Data rows of a persistent BLOB written in one batch: what a write keeps in memory at most."""
DEFAULT_MAX_SIZE: Final = 20 * 1024 * 1024
"""Voedger's default ``BLOBMaxSize``: 20 MiB."""
TEMP_BLOB_TTL: Final = 86_400
"""Seconds a temporary BLOB is kept: one day, the only duration Voedger offers (``1d``)."""

STATUS_UNKNOWN: Final = 0
STATUS_IN_PROCESS: Final = 1
STATUS_COMPLETED: Final = 2


class BlobError(Exception):
    pass


class BlobNotFoundError(BlobError):
    def __init__(self) -> None:
        super().__init__("BLOB not found")


class BlobTooLargeError(BlobError):
    def __init__(self, max_size: int) -> None:
        # Voedger's words, its spelling included: clients may match them.
        super().__init__(f"BLOB size quote exceeded (max {max_size} allowed)")
        self.max_size = max_size


class BlobCorruptedError(BlobError):
    pass


@dataclass(frozen=True, slots=True)
class BlobState:
    name: str
    content_type: str
    size: int = 0
    status: int = STATUS_IN_PROCESS
    started_at_ms: int = 0
    finished_at_ms: int = 0
    ttl: int = 0
    owner_record: str = ""
    owner_record_field: str = ""

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "Name": self.name,
                "ContentType": self.content_type,
                "Size": self.size,
                "Status": self.status,
                "StartedAt": self.started_at_ms,
                "FinishedAt": self.finished_at_ms,
                "TTL": self.ttl,
                "OwnerRecord": self.owner_record,
                "OwnerRecordField": self.owner_record_field,
            }
        )

    @staticmethod
    def decode(raw: bytes) -> BlobState:
        d: dict[str, Any] = orjson.loads(raw)
        return BlobState(
            name=str(d.get("Name", "")),
            content_type=str(d.get("ContentType", "")),
            size=int(d.get("Size", 0)),
            status=int(d.get("Status", STATUS_UNKNOWN)),
            started_at_ms=int(d.get("StartedAt", 0)),
            finished_at_ms=int(d.get("FinishedAt", 0)),
            ttl=int(d.get("TTL", 0)),
            owner_record=str(d.get("OwnerRecord", "")),
            owner_record_field=str(d.get("OwnerRecordField", "")),
        )


class BlobStore:
    """The BLOBs of one application's storage."""

    def __init__(self, storage: AppStorage, clock: Clock = SYSTEM_CLOCK) -> None:
        self.storage = storage
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    # --- writing ------------------------------------------------------------------------------

    async def write(
        self,
        key: BlobKey,
        name: str,
        content_type: str,
        body: AsyncIterable[bytes],
        max_size: int = DEFAULT_MAX_SIZE,
        *,
        owner_record: str = "",
        owner_record_field: str = "",
    ) -> int:
        """Store ``body`` as the BLOB ``key``; its size. Raises BlobTooLargeError as soon as
        the body passes ``max_size`` bytes, and then (as on any failure) leaves nothing behind."""
        ttl = TEMP_BLOB_TTL if key.temporary else 0
        state = BlobState(
            name,
            content_type,
            started_at_ms=self._now_ms(),
            ttl=ttl,
            owner_record=owner_record,
            owner_record_field=owner_record_field,
        )
        initial = state.encode()
        state_key = key.bucket(0)
        if key.temporary:
            if not await self.storage.insert_if_not_exists(state_key, STATE_COL, initial, ttl):
                raise BlobError(f"temporary BLOB {key} exists already")
        else:
            await self.storage.put(state_key, STATE_COL, initial)
        writer = _ChunkWriter(self.storage, key, ttl)
        try:
            size = 0
            async for piece in body:
                if not piece:
                    continue
                size += len(piece)
                if size > max_size:
                    raise BlobTooLargeError(max_size)
                await writer.add(piece)
            await writer.finish()
            done = BlobState(
                name,
                content_type,
                size=size,
                status=STATUS_COMPLETED,
                started_at_ms=state.started_at_ms,
                finished_at_ms=self._now_ms(),
                ttl=ttl,
                owner_record=owner_record,
                owner_record_field=owner_record_field,
            ).encode()
            if key.temporary:
                if not await self.storage.compare_and_swap(state_key, STATE_COL, initial, done, ttl):
                    raise BlobCorruptedError(f"the state of temporary BLOB {key} changed while it was written")
            else:
                await self.storage.put(state_key, STATE_COL, done)
            writer.done = True
            return size
        finally:
            if not writer.done:  # failed, or cancelled (the client went away)
                await self._remove(key, writer.written)

    async def write_bytes(
        self,
        key: BlobKey,
        name: str,
        content_type: str,
        data: bytes,
        *,
        owner_record: str = "",
        owner_record_field: str = "",
    ) -> int:
        """``write`` of a BLOB already in memory (a workspace template's file)."""
        return await self.write(
            key,
            name,
            content_type,
            _pieces(data),
            max(len(data), 1),
            owner_record=owner_record,
            owner_record_field=owner_record_field,
        )

    async def _remove(self, key: BlobKey, chunks: int) -> None:
        """Delete what a failed write left: its data rows, then its state row (best effort)."""
        try:
            for number in range(chunks):
                p_key = key.bucket(1 + number // CHUNKS_PER_BUCKET)
                col = chunk_col(number)
                value = await self.storage.get(p_key, col)
                if value is not None:
                    await self.storage.compare_and_delete(p_key, col, value)
            value = await self.storage.get(key.bucket(0), STATE_COL)
            if value is not None:
                await self.storage.compare_and_delete(key.bucket(0), STATE_COL, value)
        except Exception:
            log.exception("could not remove the rows of the failed BLOB %s of workspace %d", key, key.wsid)

    # --- reading ------------------------------------------------------------------------------

    async def state(self, key: BlobKey) -> BlobState:
        """The state of a complete BLOB; BlobNotFoundError if there is none (or it is still
        being written, or its write failed)."""
        raw = await self.storage.ttl_get(key.bucket(0), STATE_COL)
        if raw is None:
            raise BlobNotFoundError()
        state = BlobState.decode(raw)
        if state.status != STATUS_COMPLETED:
            raise BlobNotFoundError()
        return state

    async def read(self, key: BlobKey, state: BlobState) -> AsyncIterator[bytes]:
        """The BLOB's bytes, a chunk at a time; BlobCorruptedError (after what there was) when
        storage holds other than ``state.size`` bytes."""
        expected_chunks = -(-state.size // CHUNK_SIZE)
        total = 0
        number = 0
        while number < expected_chunks:
            # A few chunks per read: a driver may fetch a whole range before it yields a row.
            first, last = number, min(number + BATCH_CHUNKS, expected_chunks)
            p_key = key.bucket(1 + first // CHUNKS_PER_BUCKET)
            last = min(last, (first // CHUNKS_PER_BUCKET + 1) * CHUNKS_PER_BUCKET)
            found = 0
            async for _, value in self.storage.ttl_read(p_key, chunk_col(first), chunk_col(last)):
                found += 1
                total += len(value)
                yield value
            if found != last - first:
                break
            number = last
        if total != state.size:
            raise BlobCorruptedError(f"BLOB {key}: {state.size} bytes stored, {total} read")


async def _pieces(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), CHUNK_SIZE):
        yield data[i : i + CHUNK_SIZE]


class _ChunkWriter:
    """Cuts the pieces of a body into chunks and writes them: a persistent BLOB's in batches of
    one bucket, a temporary BLOB's one by one with their TTL."""

    def __init__(self, storage: AppStorage, key: BlobKey, ttl: int) -> None:
        self.storage = storage
        self.key = key
        self.ttl = ttl
        self.buffer = bytearray()
        self.pending: list[BatchItem] = []
        self.written = 0
        """Chunks handed to storage (some may not have reached it, if it failed)."""
        self.done = False
        """The whole BLOB is stored and its state says so."""

    async def add(self, piece: bytes) -> None:
        self.buffer += piece
        while len(self.buffer) >= CHUNK_SIZE:
            chunk = bytes(self.buffer[:CHUNK_SIZE])
            del self.buffer[:CHUNK_SIZE]
            await self._chunk(chunk)

    async def finish(self) -> None:
        if self.buffer:
            chunk = bytes(self.buffer)
            self.buffer.clear()
            await self._chunk(chunk)
        await self._flush()

    async def _chunk(self, chunk: bytes) -> None:
        number = self.written
        bucket = 1 + number // CHUNKS_PER_BUCKET
        p_key = self.key.bucket(bucket)
        self.written += 1
        if self.ttl:
            if not await self.storage.insert_if_not_exists(p_key, chunk_col(number), chunk, self.ttl):
                raise BlobCorruptedError(f"chunk {number} of temporary BLOB {self.key} exists already")
            return
        if self.pending and self.pending[0][0] != p_key:
            await self._flush()
        self.pending.append((p_key, chunk_col(number), chunk))
        if len(self.pending) >= BATCH_CHUNKS:
            await self._flush()

    async def _flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            await self.storage.put_batch(batch)
