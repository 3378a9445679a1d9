"""What ``GET /api/cluster`` says of a running cluster (issue 13): the leases each member's row
says it holds, who claims each partition, and whether those claims agree with the leases as
this process last read them. Two processes over one shared in-memory storage."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.vvm.conftest import Members
from voedger.vvm.server import VVM


async def agreeing(vvm: VVM, members: int, timeout: float = 15.0) -> dict[str, Any]:
    """``vvm``'s status once it lists ``members`` members, settled: every partition has an owner
    among them, and their rows agree with the leases."""
    ends = time.monotonic() + timeout
    while True:
        status = vvm.cluster_status()
        if len(status["members"]) == members and status["settled"]:
            assert status["claims_agree"]
            return status
        assert time.monotonic() < ends, f"no agreement on {members} members in {timeout} s: {status}"
        await asyncio.sleep(0.1)


def check_claims(status: dict[str, Any]) -> None:
    """Each partition claimed by its owner alone; each member holding what it owns."""
    ids = {m["id"] for m in status["members"]}
    for part in status["partitions"]:
        assert part["owner"] in ids and part["claimed_by"] == [part["owner"]], part
    for m in status["members"]:
        assert m["holds"] == m["partitions"], status["members"]
    assert sum(m["holds"] for m in status["members"]) == len(status["partitions"])
    assert status["leases_read_ago"] is not None and status["leases_read_ago"] >= 0


async def test_the_status_shows_what_each_member_holds_and_that_the_claims_agree(members: Members) -> None:
    first, _ = await members.add(join_later=False, lease_ttl=2)
    second, _ = await members.add(join_later=False, lease_ttl=2)
    assert first.ownership is not None and second.ownership is not None
    both = [await agreeing(vvm, 2) for vvm in (first, second)]
    for status in both:
        check_claims(status)
        assert all(m["holds"] > 0 for m in status["members"]), status["members"]
    # both see the same owners
    assert [p["owner"] for p in both[0]["partitions"]] == [p["owner"] for p in both[1]["partitions"]]

    # One leaves: the other takes every partition over, and its status agrees again.
    await second.leave()
    alone = await agreeing(first, 1)
    check_claims(alone)
    assert alone["members"][0]["id"] == alone["self"]["id"]
    assert alone["members"][0]["holds"] == len(alone["partitions"])
