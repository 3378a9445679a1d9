"""The own batch log on a real Cassandra: used while a lost node stalls logged batches, written
atomically in the end, replayed when a storage is opened, never undoing a newer write."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from cassandra import WriteTimeout, WriteType
from cassandra.query import BatchStatement, BatchType, BoundStatement

from tests.storage.cassandra_fixtures import cassandra_hosts, fresh_storage
from voedger.storage import StorageUnavailableError
from voedger.storage import cassandra_batchlog as batchlog_module
from voedger.storage.cassandra import CassandraAppStorage, CassandraStorageFactory, _Bridge
from voedger.storage.cassandra_batchlog import SHARDS, BatchLog, encode_rows

pytestmark = pytest.mark.cassandra

ROWS = [(b"bl-a", b"1", b"one"), (b"bl-a", b"2", b"two"), (b"bl-b", b"1", b"three")]


class _Host:
    endpoint = "127.0.0.9:9042"


class _Logged(_Bridge):
    """Answers logged batches itself (``answer`` returns the future); everything else goes on."""

    def __init__(self, inner: _Bridge, answer: Any) -> None:
        super().__init__(inner.session)
        self.answer = answer
        self.logged = 0

    def start(
        self, statement: Any, params: Sequence[Any] | None, *args: Any, **kwargs: Any
    ) -> asyncio.Future[list[Any]]:
        if isinstance(statement, BatchStatement) and statement.batch_type == BatchType.LOGGED:
            self.logged += 1
            fut: asyncio.Future[list[Any]] = self.answer()
            return fut
        return super().start(statement, params, *args, **kwargs)


def _own_log(storage: CassandraAppStorage) -> BatchLog:
    assert storage.batchlog is not None, "a keyspace made by init has its batch log"
    return storage.batchlog


async def _rows(storage: CassandraAppStorage) -> list[bytes | None]:
    return [await storage.get(p, c) for p, c, _ in ROWS]


async def _log_entries(factory: CassandraStorageFactory, storage: CassandraAppStorage) -> int:
    query = f'SELECT id FROM "{storage.keyspace}"."batchlog" WHERE shard IN ({",".join(map(str, range(SHARDS)))})'
    return len(await asyncio.to_thread(lambda: factory.session.execute(query).all()))


async def _until_log_is_empty(factory: CassandraStorageFactory, storage: CassandraAppStorage) -> None:
    deadline = time.monotonic() + 10
    while await _log_entries(factory, storage):
        assert time.monotonic() < deadline, "the batch log kept its entries"
        await asyncio.sleep(0.1)


async def test_batches_go_through_the_own_log_while_bypassing() -> None:
    async with fresh_storage(cassandra_hosts()) as (factory, storage, _name):
        await storage.put_batch(ROWS[:1])
        assert _own_log(storage).written == 0  # all nodes up: a logged batch
        factory.watch.trip()
        await storage.put_batch(ROWS)
        assert _own_log(storage).written == 1
        assert await _rows(storage) == [v for _, _, v in ROWS]
        await _until_log_is_empty(factory, storage)


async def test_a_logged_batch_stalled_by_a_lost_node_is_written_again_at_once() -> None:
    async with fresh_storage(cassandra_hosts()) as (factory, storage, _name):
        loop = asyncio.get_running_loop()
        stalled = _Logged(storage._bridge, loop.create_future)  # never answers, like a dead node
        storage._bridge = stalled
        write = asyncio.create_task(storage.put_batch(ROWS))
        await asyncio.sleep(0.2)
        assert not write.done() and stalled.logged == 1
        # The driver's thread reports the node down: the batch goes through the own log now.
        threading.Thread(target=factory.watch.on_down, args=(_Host(),)).start()
        await asyncio.wait_for(write, 5)
        assert _own_log(storage).written == 1
        assert await _rows(storage) == [v for _, _, v in ROWS]
        # And so do the next batches, without trying a logged batch first.
        await storage.put_batch([(b"bl-c", b"1", b"four")])
        assert stalled.logged == 1 and _own_log(storage).written == 2


async def test_a_batch_log_timeout_falls_back_to_the_own_log() -> None:
    async with fresh_storage(cassandra_hosts()) as (factory, storage, _name):
        loop = asyncio.get_running_loop()

        def timeout(write_type: int) -> Any:
            def answer() -> asyncio.Future[Any]:
                fut = loop.create_future()
                fut.set_exception(WriteTimeout("simulated", write_type=write_type, consistency=4, required_responses=2))
                return fut

            return answer

        storage._bridge = _Logged(storage._bridge, timeout(WriteType.SIMPLE))
        with pytest.raises(StorageUnavailableError):
            await storage.put_batch(ROWS)
        assert _own_log(storage).written == 0 and not factory.watch.bypassing()

        storage._bridge = _Logged(storage._bridge, timeout(WriteType.BATCH_LOG))
        await storage.put_batch(ROWS)
        assert _own_log(storage).written == 1 and factory.watch.bypassing()
        assert await _rows(storage) == [v for _, _, v in ROWS]


async def test_left_entries_are_replayed_on_open_and_never_undo_newer_writes() -> None:
    hosts = cassandra_hosts()
    async with fresh_storage(hosts) as (factory, storage, name):
        own = _own_log(storage)
        # A batch whose writer crashed after logging it: only its entry is there. One of its rows
        # has been written again since, later.
        stamp = factory.session.cluster.timestamp_generator()
        await storage.put(b"bl-b", b"1", b"newer")
        await storage._bridge.run(own._add, (3, __import__("uuid").uuid4(), stamp, encode_rows(ROWS)), "log")
        assert await _log_entries(factory, storage) == 1
        assert await storage.get(b"bl-a", b"1") is None

        other = await CassandraStorageFactory.connect(hosts)
        try:
            reopened = await other.app_storage(name)
            assert isinstance(reopened, CassandraAppStorage)
            assert await _rows(reopened) == [b"one", b"two", b"newer"]
            assert await _log_entries(factory, storage) == 0
        finally:
            await other.close()


class _RowsFail(_Bridge):
    """The batch log's rows fail ``times`` times (the log entry itself goes through)."""

    def __init__(self, inner: _Bridge, times: int) -> None:
        super().__init__(inner.session)
        self.times = times

    def start(
        self, statement: Any, params: Sequence[Any] | None, *args: Any, **kwargs: Any
    ) -> asyncio.Future[list[Any]]:
        if params is None and isinstance(statement, BoundStatement | BatchStatement) and self.times > 0:
            self.times -= 1
            fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
            fut.set_exception(
                WriteTimeout("simulated", write_type=WriteType.SIMPLE, consistency=4, required_responses=2)
            )
            return fut
        return super().start(statement, params, *args, **kwargs)


async def test_a_batch_whose_rows_failed_is_completed_in_the_background(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batchlog_module, "RETRY_DELAYS", (0.05,))
    async with fresh_storage(cassandra_hosts()) as (factory, storage, _name):
        own = _own_log(storage)
        own._bridge = _RowsFail(storage._bridge, times=4)  # the first write's 2 partitions, then a retry's
        with pytest.raises(StorageUnavailableError):
            await own.write(ROWS)
        deadline = time.monotonic() + 10
        while await _rows(storage) != [v for _, _, v in ROWS]:
            assert time.monotonic() < deadline, "the failed batch was never completed"
            await asyncio.sleep(0.05)
        await _until_log_is_empty(factory, storage)


async def test_a_log_that_cannot_be_read_at_open_is_replayed_in_the_background(monkeypatch: pytest.MonkeyPatch) -> None:
    """Too few replicas up to read the log: the storage opens all the same, and completes the
    batches left in the log once it can read it."""
    monkeypatch.setattr(batchlog_module, "RETRY_DELAYS", (0.05,))
    original = BatchLog.replay
    calls = 0

    async def unreadable_at_first(self: BatchLog) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StorageUnavailableError("simulated: Cannot achieve consistency level QUORUM")
        return await original(self)

    hosts = cassandra_hosts()
    async with fresh_storage(hosts) as (factory, storage, name):
        own = _own_log(storage)
        stamp = factory.session.cluster.timestamp_generator()
        await storage._bridge.run(own._add, (5, __import__("uuid").uuid4(), stamp, encode_rows(ROWS)), "log")
        monkeypatch.setattr(BatchLog, "replay", unreadable_at_first)
        other = await CassandraStorageFactory.connect(hosts)
        try:
            reopened = await other.app_storage(name)
            assert isinstance(reopened, CassandraAppStorage)
            deadline = time.monotonic() + 10
            while await _rows(reopened) != [v for _, _, v in ROWS]:
                assert time.monotonic() < deadline, "the log was never replayed"
                await asyncio.sleep(0.05)
            assert calls >= 2
            await _until_log_is_empty(factory, storage)
        finally:
            await other.close()
