"""The BLOB store on the embedded drivers: chunks, buckets, limits, failures, temporary BLOBs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from voedger.blobs import (
    CHUNK_SIZE,
    TEMP_BLOB_TTL,
    BlobKey,
    BlobNotFoundError,
    BlobStore,
    BlobTooLargeError,
    is_temp_id,
    new_suuid,
)
from voedger.blobs.store import BATCH_CHUNKS, CHUNKS_PER_BUCKET, BlobCorruptedError
from voedger.clock import ManualClock
from voedger.storage import AppStorage, open_factory

WSID = 140_737_488_486_400


@pytest.fixture(params=["mem", "sqlite"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[AppStorage, ManualClock]]:
    clock = ManualClock()
    factory = open_factory("mem://" if request.param == "mem" else f"sqlite://{tmp_path}", clock)
    await factory.open()
    await factory.init("blobs")
    yield await factory.app_storage("blobs"), clock
    await factory.close()


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


async def rows(storage: AppStorage, key: BlobKey, buckets: Iterable[int]) -> list[bytes]:
    return [v for b in buckets async for _, v in storage.read(key.bucket(b))]


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17])
async def test_round_trip_in_chunks(env: tuple[AppStorage, ManualClock], size: int) -> None:
    storage, clock = env
    store = BlobStore(storage, clock)
    data = os.urandom(size)
    key = BlobKey(WSID, blob_id=65_537)
    assert await store.write(key, "photo.png", "image/png", pieces(data, 7_000)) == size
    state = await store.state(key)
    assert (state.name, state.content_type, state.size) == ("photo.png", "image/png", size)
    chunks = [c async for c in store.read(key, state)]
    assert b"".join(chunks) == data
    assert all(len(c) == CHUNK_SIZE for c in chunks[:-1])
    assert len(chunks) == -(-size // CHUNK_SIZE)


async def test_large_blob_spans_buckets(env: tuple[AppStorage, ManualClock]) -> None:
    storage, clock = env
    store = BlobStore(storage, clock)
    size = (CHUNKS_PER_BUCKET + 3) * CHUNK_SIZE + 5
    data = os.urandom(size)
    key = BlobKey(WSID, blob_id=7)
    await store.write(key, "big", "application/octet-stream", pieces(data, 65_536), max_size=size)
    assert len(await rows(storage, key, [1])) == CHUNKS_PER_BUCKET
    assert len(await rows(storage, key, [2])) == 4
    assert await collect(store.read(key, await store.state(key))) == data


async def test_write_keeps_little_in_memory(env: tuple[AppStorage, ManualClock]) -> None:
    """Rows reach storage while the body still comes: never more than a batch is held back."""
    storage, clock = env
    store = BlobStore(storage, clock)
    key = BlobKey(WSID, blob_id=9)
    seen_behind: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        sent = 0
        for _ in range(40):
            stored = sum(len(v) for v in await rows(storage, key, [1]))
            seen_behind.append(sent - stored)
            piece = os.urandom(CHUNK_SIZE // 2)
            sent += len(piece)
            yield piece

    await store.write(key, "n", "t", body())
    assert max(seen_behind) <= (BATCH_CHUNKS + 1) * CHUNK_SIZE


async def test_too_large_leaves_nothing(env: tuple[AppStorage, ManualClock]) -> None:
    storage, clock = env
    store = BlobStore(storage, clock)
    key = BlobKey(WSID, blob_id=11)
    with pytest.raises(BlobTooLargeError) as info:
        await store.write(key, "n", "t", pieces(os.urandom(20 * CHUNK_SIZE), 50_000), max_size=15 * CHUNK_SIZE)
    assert "max 1536000 allowed" in str(info.value)
    with pytest.raises(BlobNotFoundError):
        await store.state(key)
    assert await rows(storage, key, [0, 1]) == []


async def test_failing_body_leaves_nothing(env: tuple[AppStorage, ManualClock]) -> None:
    storage, clock = env
    store = BlobStore(storage, clock)
    key = BlobKey(WSID, blob_id=12)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(12):
            yield os.urandom(CHUNK_SIZE)
        raise ConnectionError("client gone")

    with pytest.raises(ConnectionError):
        await store.write(key, "n", "t", body())
    assert await rows(storage, key, [0, 1]) == []


async def test_missing_and_corrupted(env: tuple[AppStorage, ManualClock]) -> None:
    storage, clock = env
    store = BlobStore(storage, clock)
    with pytest.raises(BlobNotFoundError):
        await store.state(BlobKey(WSID, blob_id=404))
    key = BlobKey(WSID, blob_id=13)
    await store.write(key, "n", "t", pieces(os.urandom(3 * CHUNK_SIZE), CHUNK_SIZE))
    state = await store.state(key)
    p_key, col = key.bucket(1), (2).to_bytes(8, "big")
    value = await storage.get(p_key, col)
    assert value is not None
    assert await storage.compare_and_delete(p_key, col, value)
    with pytest.raises(BlobCorruptedError):
        await collect(store.read(key, state))


async def test_temporary_blob_expires_after_a_day(env: tuple[AppStorage, ManualClock]) -> None:
    storage, clock = env
    store = BlobStore(storage, clock)
    suuid = new_suuid()
    assert len(suuid) == 43 and is_temp_id(suuid) and not is_temp_id("18446744073709551615")
    key = BlobKey(WSID, suuid=suuid)
    data = os.urandom(2 * CHUNK_SIZE + 1)
    await store.write(key, "tmp.bin", "application/x-binary", pieces(data, 10_000))
    assert await storage.query_ttl(key.bucket(1), (0).to_bytes(8, "big")) == TEMP_BLOB_TTL
    clock.advance(TEMP_BLOB_TTL - 1)
    assert await collect(store.read(key, await store.state(key))) == data
    clock.advance(1)
    with pytest.raises(BlobNotFoundError):
        await store.state(key)


def test_keys_of_blobs_differ() -> None:
    a, b = BlobKey(WSID, blob_id=1), BlobKey(WSID + 1, blob_id=1)
    t = BlobKey(WSID, suuid="x" * 43)
    assert len({a.bucket(0), a.bucket(1), b.bucket(0), t.bucket(0)}) == 4
    with pytest.raises(ValueError):
        BlobKey(WSID)
    with pytest.raises(ValueError):
        BlobKey(WSID, blob_id=1, suuid="y" * 43)
