"""ctool init SE on three test nodes: a Cassandra ring and a server process per node."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest

from tests.ctool.test_ce import HTTP_PORT, SCRAPE_INTERVAL, Nodes, check, cluster_json, ctool, wait_all_up
from voedger import __version__
from voedger.devtools import cassandra as dev
from voedger.devtools import sshnodes

pytestmark = pytest.mark.ctool


def test_init_se_forms_a_ring_and_serves_on_every_node(ssh_nodes: Nodes, short_tmp: Path, server_wheel: Path) -> None:
    cluster = ssh_nodes(3)
    folder = short_tmp / "ops"
    folder.mkdir()
    began = time.monotonic()
    done = ctool(
        folder,
        "init",
        "SE",
        *cluster.hosts,
        "--ssh-key",
        str(cluster.key),
        "--ssh-port",
        str(cluster.nodes[0].port),
        "--known-hosts",
        str(cluster.known_hosts),
        "--node-root",
        cluster.node_root_template,
        "--http-port",
        str(HTTP_PORT),
        "--wheel",
        str(server_wheel),
        "--cassandra-heap",
        "768M",
        "--scrape-interval",
        SCRAPE_INTERVAL,
        "--jmx-port",  # on 127.0.0.1: apart from other checkouts' and the Cassandra tier's 7199
        str(17005 + 10 * sshnodes.FIRST_HOST),
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"ctool init SE on 3 nodes: {time.monotonic() - began:.1f} s")

    data = cluster_json(folder)
    assert data["Edition"] == "SE" and data["ActualClusterVersion"] == __version__ and "Cmd" not in data
    assert [n["ActualNodeState"]["Address"] for n in data["Nodes"]] == cluster.hosts
    assert {n["NodeRole"] for n in data["Nodes"]} == {"DBAppNode"}

    # Every node serves, and its Cassandra is one of a ring of three that sees all of its peers.
    for node in cluster.nodes:
        assert check(node.address) == 200, node.address
        assert (node.root / "var/lib/cassandra/data/system").is_dir()
    ring = [dev.Node(f"node-{i}", a, Path("/"), "voedger", "", 0, None, False) for i, a in enumerate(cluster.hosts, 1)]
    deadline = time.monotonic() + 120
    while problems := dev.ring_problems(ring):
        assert time.monotonic() < deadline, problems
        time.sleep(2)

    # The servers keep their data in that ring, three copies of it.
    from cassandra.cluster import Cluster

    logging.getLogger("cassandra").setLevel(logging.ERROR)
    session_cluster = Cluster(cluster.hosts, protocol_version=4)
    try:
        rows = session_cluster.connect().execute("SELECT keyspace_name, replication FROM system_schema.keyspaces")
        replication = {r.keyspace_name: dict(r.replication) for r in rows}
    finally:
        session_cluster.shutdown()
    assert replication["sysvvm"]["replication_factor"] == "3", replication
    assert replication["sysregistry"]["replication_factor"] == "3", replication

    # Every node's Prometheus scrapes the three servers, the three node exporters and itself; the
    # three Alertmanagers are one cluster, each with all peers.
    for node in cluster.nodes:
        wait_all_up(node.address, cluster.hosts)
    peers = {f"{h}:9094" for h in cluster.hosts}
    deadline = time.monotonic() + 120
    for node in cluster.nodes:
        while True:
            am = httpx.get(f"http://{node.address}:9093/api/v2/status", timeout=5).json()["cluster"]
            if am["status"] == "ready" and {p["address"] for p in am["peers"]} == peers:
                break
            assert time.monotonic() < deadline, am
            time.sleep(1)

    status = ctool(folder, "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("7/7 targets up") == 3 and status.stdout.count("ready, 3 peers") == 3, status.stdout
    assert status.stdout.count("cassandra RUNNING") == 3 and status.stdout.count("voedger RUNNING") == 3
    assert status.stdout.count("200 ok") == 3
    assert "database ring: healthy, 3 nodes, each sees the others" in status.stdout
    assert ctool(folder, "validate").returncode == 0
