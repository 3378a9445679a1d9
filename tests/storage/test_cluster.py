"""Losing a node of a three-node cluster loses no acknowledged write (RF=3, QUORUM).

Runs against the project's own cluster (``make test-cluster``): a node is killed with
``kill -9`` through the pid file that ``voedger.devtools.cassandra`` keeps, writes go on with
two nodes, and the node is started again and must rejoin.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from tests.storage.cassandra_fixtures import cluster_hosts, fresh_storage
from voedger.devtools import cassandra as devcassandra
from voedger.storage.cassandra import CassandraAppStorage, CassandraStorageFactory
from voedger.storage.errors import StorageUnavailableError

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

RF3 = {"class": "SimpleStrategy", "replication_factor": "3"}
ROWS = 200
VICTIM = 2
"""The node that is killed: not the seed, so that it rejoins the ring through node 1."""

REJOIN_TIMEOUT = 240.0
UNAVAILABLE_GRACE = 60.0


def _victim_address() -> str:
    return devcassandra.cluster_node(VICTIM).address


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[CassandraStorageFactory, CassandraAppStorage]]:
    hosts = cluster_hosts()
    if len(hosts) != devcassandra.CLUSTER_SIZE:
        pytest.fail(f"the cluster tier needs the {devcassandra.CLUSTER_SIZE} nodes of `make test-cluster`")
    victim = devcassandra.cluster_node(VICTIM)
    if devcassandra.node_pid(victim) is None:
        pytest.fail(
            f"{victim.name} has no live pid file under {victim.home}: this test kills and restarts the "
            "project's own cluster; start it with `make cluster-start`"
        )
    async with fresh_storage(hosts, replication=RF3, prefix="cluster") as (factory, storage, _name):
        try:
            yield factory, storage
        finally:
            # Leave the cluster whole for whatever runs next, even when the test failed midway.
            if devcassandra.node_pid(victim) is None:
                await asyncio.to_thread(devcassandra.start_node, VICTIM, REJOIN_TIMEOUT)


async def _wait_for_host(factory: CassandraStorageFactory, address: str, up: bool, timeout: float) -> float:
    """Seconds until the driver sees the host ``address`` up (or down); fails after ``timeout``."""
    began = time.monotonic()
    while True:
        hosts = [h for h in factory.session.cluster.metadata.all_hosts() if h.address == address]
        if hosts and all(bool(h.is_up) == up for h in hosts):
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            pytest.fail(f"the driver did not see {address} {'up' if up else 'down'} within {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def _check_all(storage: CassandraAppStorage, expected: dict[tuple[bytes, bytes], bytes]) -> None:
    """Every acknowledged row is there, by point reads and by range reads of each partition.

    Right after a node dies its peers still pick it as a replica until their failure detector
    convicts it, and on a loaded machine a read may then time out. That is a transient
    "unavailable" (the server answers 503 with Retry-After), not a lost write: such reads are
    tried again for up to ``UNAVAILABLE_GRACE`` seconds; a row that comes back wrong or missing
    fails at once.
    """
    deadline = time.monotonic() + UNAVAILABLE_GRACE
    while True:
        try:
            await _compare_all(storage, expected)
            return
        except StorageUnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


async def _compare_all(storage: CassandraAppStorage, expected: dict[tuple[bytes, bytes], bytes]) -> None:
    got = await asyncio.gather(*(storage.get(p, c) for p, c in expected))
    missing = [k for k, v in zip(expected, got, strict=True) if v != expected[k]]
    assert not missing, f"{len(missing)} acknowledged rows are missing or wrong, e.g. {missing[:3]}"
    partitions = sorted({p for p, _ in expected})
    for p in partitions:
        rows = {c: v async for c, v in storage.read(p)}
        want = {c: v for (pp, c), v in expected.items() if pp == p}
        assert rows == want, f"partition {p!r}: range read differs"


async def _read_via(factory: CassandraStorageFactory, storage: CassandraAppStorage, address: str, p: bytes) -> Any:
    """A QUORUM range read coordinated by the node at ``address`` (the restarted one)."""
    host = next(h for h in factory.session.cluster.metadata.all_hosts() if h.address == address)
    stmt = SimpleStatement(
        f'SELECT c_col, value FROM "{storage.keyspace}"."values" WHERE p_key = %s',
        consistency_level=ConsistencyLevel.QUORUM,
    )
    rows = await asyncio.to_thread(lambda: factory.session.execute(stmt, (p,), host=host, timeout=30).all())
    return {bytes(c): bytes(v) for c, v in rows}


async def test_losing_a_node_loses_no_acknowledged_write(
    cluster: tuple[CassandraStorageFactory, CassandraAppStorage],
) -> None:
    factory, storage = cluster
    assert storage.capabilities.replicated
    victim = _victim_address()
    expected: dict[tuple[bytes, bytes], bytes] = {}

    # 1. Acknowledged writes with all three nodes up: plain puts, logged batches, LWT inserts.
    parts = [b"part-%d" % i for i in range(8)]
    for i in range(ROWS):
        p, c, v = parts[i % len(parts)], b"before-%04d" % i, b"v%d" % i
        await storage.put(p, c, v)
        expected[(p, c)] = v
    batch = [(parts[i % len(parts)], b"batch-%04d" % i, b"b%d" % i) for i in range(40)]
    await storage.put_batch(batch)
    expected.update({(p, c): v for p, c, v in batch})
    assert await storage.insert_if_not_exists(b"lease", b"owner", b"node-a", ttl=600)
    expected[(b"lease", b"owner")] = b"node-a"

    # 2. kill -9 one node, by the pid file of the tool that started it.
    pid = await asyncio.to_thread(devcassandra.kill_node, VICTIM)
    assert pid is not None

    # 3. Every acknowledged write is still readable at QUORUM, at once (before the others have
    #    even noticed the node is gone) and after the driver has marked it down.
    await _check_all(storage, expected)
    await _wait_for_host(factory, victim, up=False, timeout=60)
    await _check_all(storage, expected)

    # 4. Writes go on with two nodes: plain, batched and conditional.
    during: dict[tuple[bytes, bytes], bytes] = {}
    for i in range(ROWS // 2):
        p, c, v = parts[i % len(parts)], b"during-%04d" % i, b"d%d" % i
        await storage.put(p, c, v)
        during[(p, c)] = v
    batch = [(parts[i % len(parts)], b"dbatch-%04d" % i, b"db%d" % i) for i in range(20)]
    await storage.put_batch(batch)
    during.update({(p, c): v for p, c, v in batch})
    assert await storage.compare_and_swap(b"lease", b"owner", b"node-a", b"node-b", ttl=600)
    assert not await storage.compare_and_swap(b"lease", b"owner", b"node-a", b"node-c", ttl=600)
    assert await storage.insert_if_not_exists(b"lease", b"second", b"x")
    assert not await storage.insert_if_not_exists(b"lease", b"second", b"y")
    assert await storage.compare_and_delete(b"lease", b"second", b"x")
    during[(b"lease", b"owner")] = b"node-b"
    expected.update(during)
    await _check_all(storage, expected)

    # 5. The node starts again and rejoins: the ring is whole and the driver sees it up.
    await asyncio.to_thread(devcassandra.start_node, VICTIM, REJOIN_TIMEOUT)
    await _wait_for_host(factory, victim, up=True, timeout=REJOIN_TIMEOUT)

    # 6. QUORUM reads see everything, including what was written while the node was down, also
    #    when the restarted node coordinates them (it has missed those writes itself).
    await _check_all(storage, expected)
    assert await storage.get(b"lease", b"second") is None
    for p in parts:
        rows = await _read_via(factory, storage, victim, p)
        assert rows == {c: v for (pp, c), v in expected.items() if pp == p}

    # 7. And the restarted node takes part in new writes, LWT included.
    assert await storage.compare_and_swap(b"lease", b"owner", b"node-b", b"node-a", ttl=600)
    await storage.put(parts[0], b"after", b"a")
    expected[(parts[0], b"after")] = b"a"
    expected[(b"lease", b"owner")] = b"node-a"
    await _check_all(storage, expected)
