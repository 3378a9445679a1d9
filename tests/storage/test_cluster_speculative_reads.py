"""Speculative execution never garbles a read (three nodes: a second coordinator to ask).

With a 1 ms delay nearly every read is also sent to a second coordinator. Reads of one page
(``get``, ``get_batch``) take whichever answer comes first; paged reads (``read``) must not be
speculated at all: scylla-driver then handed back the first page again in the middle of the
range (25 reads in 30 went wrong before ``_Bridge.pages`` stopped using that profile).
"""

from __future__ import annotations

import pytest

from tests.storage.cassandra_fixtures import cluster_hosts, unique_name
from voedger.storage.cassandra import CassandraStorageFactory

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

RF3 = {"class": "SimpleStrategy", "replication_factor": "3"}
ROWS = 4500  # several pages of READ_PAGE_SIZE


async def test_reads_stay_exact_when_speculated() -> None:
    factory = await CassandraStorageFactory.connect(
        cluster_hosts(), replication=RF3, consistency="QUORUM", speculative_delay=0.001
    )
    name = unique_name("spec")
    try:
        await factory.init(name)
        storage = await factory.app_storage(name)
        rows = [(b"part", b"%06d" % i, b"v%d" % i) for i in range(ROWS)]
        for i in range(0, ROWS, 500):
            await storage.put_batch(rows[i : i + 500])
        want = [(c, v) for _, c, v in rows]
        for _ in range(10):
            assert [(c, v) async for c, v in storage.read(b"part")] == want
        cols = [c for _, c, _ in rows[::7]]
        for _ in range(5):
            assert await storage.get_batch(b"part", cols) == [v for _, _, v in rows[::7]]
            assert await storage.get(b"part", b"%06d" % 1234) == b"v1234"
    finally:
        await factory.drop(name)
        await factory.close()
