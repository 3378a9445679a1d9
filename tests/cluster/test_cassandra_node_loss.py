"""Losing one Cassandra node of three costs a server seconds, not tens of seconds.

A real ``voedger server`` process runs on the project's three-node cluster (RF=3, QUORUM) while
eight clients send commands; one node is killed with ``kill -9``. Two replicas of three are
still a quorum, so: nothing acknowledged is lost, and acknowledgements never stop for more than
``MAX_GAP`` seconds. Before the driver wrote batches through a batch log of its own while the
coordinators still counted on the dead node, they stopped for ~18 s (20 s when node 1, the
first contact point, was the one killed). The killed node is started again, whatever happens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.storage.cassandra_fixtures import cluster_hosts
from voedger.devtools import cassandra as devcassandra
from voedger.devtools import nodeloss

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

MAX_GAP = 3.0
"""Seconds without an acknowledgement the loss of one node may cost at most."""

CLIENTS = 8
BEFORE = 5.0
AFTER = 15.0


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[nodeloss.Server]:
    """A server on the whole cluster, in keyspaces of its own (dropped afterwards)."""
    hosts = cluster_hosts()
    if len(hosts) != devcassandra.CLUSTER_SIZE:
        pytest.fail(f"the cluster tier needs the {devcassandra.CLUSTER_SIZE} nodes of `make test-cluster`")
    missing = [n.name for n in devcassandra.cluster_nodes() if devcassandra.node_pid(n) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not running (no live pid file): this test kills and restarts the cluster's nodes"
        )
    await nodeloss.wait_for_whole_ring(timeout=120)
    suffix = nodeloss.fresh_suffix()
    srv = nodeloss.Server(tmp_path, nodeloss.cluster_url(hosts, suffix))
    try:
        await srv.start()
        yield srv
    finally:
        srv.stop()
        await nodeloss.drop_keyspaces(hosts, suffix)


@pytest.fixture
async def victim(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    """The node to kill; started again (and the ring waited for) even if the test failed."""
    index: int = request.param
    try:
        yield index
    finally:
        await nodeloss.restart(index)


@pytest.mark.parametrize("victim", [1, 3], indirect=True, ids=["node1-first-contact", "node3"])
async def test_losing_a_node_costs_seconds_and_nothing_acknowledged(server: nodeloss.Server, victim: int) -> None:
    async with nodeloss.loaded(server.base_url, CLIENTS) as load:
        await asyncio.sleep(BEFORE)
        assert load.acks, f"no command was acknowledged with the whole cluster up: {load.first_failure}"
        killed_at = await nodeloss.kill(victim)
        await asyncio.sleep(max(0.0, killed_at + AFTER - time.monotonic()))
        ended_at = time.monotonic()
    kill = nodeloss.report(victim, load, killed_at, ended_at, BEFORE)
    print(f"\nnode{victim} killed: {kill}")

    # The load went on: commands were acknowledged after the kill, never MAX_GAP apart.
    assert kill.acked_during > 0, f"nothing acknowledged after the kill: {load.first_failure}"
    assert kill.longest_gap <= MAX_GAP, (
        f"no acknowledgement for {kill.longest_gap:.2f} s from {kill.gap_began:+.2f} s after the kill of "
        f"node{victim} ({kill.rate_before:.0f} cmd/s before, {kill.rate_during:.0f} during; failures "
        f"{kill.failures}, first: {load.first_failure})\n{server.log_tail()}"
    )

    # Every acknowledged command is in its workspace's WLog, read at QUORUM from the two nodes left.
    lost = await nodeloss.lost_acks(server.url, load.acks)
    assert not lost, f"{len(lost)} of {len(load.acks)} acknowledged commands are lost, e.g. {lost[:3]}"
