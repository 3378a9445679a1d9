"""A storage opened read-only beside its writer (the reader processes of ``--processes``), and
one snapshot per read (``read_snapshot``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voedger.storage import StorageDoesNotExistError, StorageError, read_snapshot
from voedger.storage.sqlite import SQLiteStorageFactory


async def test_a_reader_takes_no_lock_sees_commits_and_cannot_write(tmp_path: Path) -> None:
    writer = SQLiteStorageFactory(tmp_path)
    await writer.take()
    await writer.init("app")
    w = await writer.app_storage("app")
    await w.put(b"p", b"a", b"1")
    reader = SQLiteStorageFactory(tmp_path, read_only=True)
    await reader.take()  # the writer holds the directory's lock: a reader does not need it
    with pytest.raises(StorageDoesNotExistError):
        await reader.init("other")
    assert not (tmp_path / "other.db").exists()
    r = await reader.app_storage("app")
    assert await r.get(b"p", b"a") == b"1"
    await w.put(b"p", b"b", b"2")
    assert [row async for row in r.read(b"p")] == [(b"a", b"1"), (b"b", b"2")]  # the writer's commit, at once
    with pytest.raises(StorageError, match="read-only"):
        await r.put(b"p", b"c", b"3")
    with pytest.raises(StorageError, match="read-only"):
        await r.insert_if_not_exists(b"p", b"c", b"3")
    assert await w.get(b"p", b"c") is None
    await reader.close()
    await writer.close()


async def test_a_snapshot_holds_for_the_whole_read(tmp_path: Path) -> None:
    writer = SQLiteStorageFactory(tmp_path)
    await writer.take()
    await writer.init("app")
    w = await writer.app_storage("app")
    await w.put_batch([(b"p", b"doc", b"v1"), (b"q", b"row", b"v1")])
    reader = SQLiteStorageFactory(tmp_path, read_only=True)
    r = await reader.app_storage("app")
    with read_snapshot():
        assert await r.get(b"p", b"doc") == b"v1"
        await w.put_batch([(b"p", b"doc", b"v2"), (b"q", b"row", b"v2")])
        # Inside the snapshot the second statement sees what the first saw; outside, the new rows.
        assert await r.get(b"q", b"row") == b"v1"
        assert [v async for _, v in r.read(b"p")] == [b"v1"]
    assert await r.get(b"q", b"row") == b"v2"
    with read_snapshot():  # a new snapshot starts after the commit
        assert await r.get(b"p", b"doc") == b"v2"
    await reader.close()
    await writer.close()
