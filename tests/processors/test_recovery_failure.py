"""A failed group write followed by a failed recovery must not leave a hole in the PLog.

Found by the cluster harness (tests/cluster): while a Cassandra node came back without the
application's keyspace in its schema yet, a group's write failed, the recovery after it failed
too, and the partition went on from its in-memory PLog offset, which counted the failed group.
The PLog got a hole of that group's size, and every async projector of the partition stopped at
it for good (a PLog reader ends at a gap).
"""

from __future__ import annotations

import pytest

from tests.processors.conftest import WS, Shop
from voedger.structs import keys
from voedger.structs.wsid import partition_of
from voedger.syserror import SysError


@pytest.mark.xfail(strict=True, reason="the partition goes on after a failed recovery, past the failed group's offsets")
async def test_a_failed_recovery_leaves_no_hole_in_the_plog(shop: Shop) -> None:
    await shop.create_ws(WS)
    storage = shop.runtime.storage
    real_put_batch, real_get = storage.put_batch, storage.get
    failing = {"write": False, "recovery": False}

    async def put_batch(items):  # type: ignore[no-untyped-def]
        if failing["write"] and any(p[:2] == keys.plog_key(0, 0)[0][:2] for p, _, _ in items):
            failing["write"] = False
            failing["recovery"] = True  # the next read is the recovery's: it fails as well
            raise OSError("keyspace does not exist (on this coordinator, for now)")
        await real_put_batch(items)

    async def get(p_key, c_col):  # type: ignore[no-untyped-def]
        if failing["recovery"]:
            failing["recovery"] = False
            raise OSError("keyspace does not exist (on this coordinator, for now)")
        return await real_get(p_key, c_col)

    storage.put_batch = put_batch  # type: ignore[method-assign]
    storage.get = get  # type: ignore[method-assign]
    body = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}}]}
    await shop.cmd(WS, "sys.CUD", body)
    failing["write"] = True
    with pytest.raises(SysError):
        await shop.cmd(WS, "sys.CUD", body)
    for _ in range(3):  # the partition serves again (its recovery failed, the next one works)
        await shop.cmd(WS, "sys.CUD", body)
    partition = partition_of(WS, shop.runtime.num_partitions)
    p_key, _ = keys.plog_key(partition, 1)
    offsets = [keys.offset_from_key(p_key, c) async for c, _ in storage.read(p_key)]
    assert offsets == list(range(1, len(offsets) + 1)), f"the PLog of partition {partition} has a hole: {offsets}"
