"""ctool init SE, then upgrade, backup and restore, and replace on that cluster (three nodes, each a
Cassandra node and a server in cluster mode) over real SSH: one cluster for the module, installed
once (minutes), the tests in file order: each one's checks start from the state the previous one left."""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.ctool import appclient
from tests.ctool.conftest import NEW_VERSION
from tests.ctool.test_ce import HTTP_PORT, SCRAPE_INTERVAL, check, cluster_json, ctool, wait_all_up
from voedger import __version__
from voedger.ctool import cassandra
from voedger.devtools import cassandra as dev
from voedger.devtools import sshnodes

pytestmark = pytest.mark.ctool

JMX_PORT = 17000 + 10 * sshnodes.FIRST_HOST
"""Cassandra's JMX ports of the nodes (on 127.0.0.1), apart from every other checkout's."""


@dataclass(frozen=True, slots=True)
class SeCluster:
    nodes: sshnodes.SshCluster
    folder: Path
    urls: list[str]
    storage: str
    init_seconds: float


@pytest.fixture(scope="module")
def se(server_wheel: Path, app_image: Path) -> Iterator[SeCluster]:
    if sshnodes.missing_packages():
        pytest.fail("openssh-server or supervisor missing: run python -m voedger.devtools.sshnodes ensure-packages")
    base = Path(tempfile.mkdtemp(prefix="ctool-se-", dir="/tmp"))
    nodes = sshnodes.nodes(base, 3)
    sshnodes.start(nodes)
    try:
        folder = base / "ops"
        folder.mkdir()
        began = time.monotonic()
        done = ctool(
            folder,
            "init",
            "SE",
            *nodes.hosts,
            "--ssh-key",
            str(nodes.key),
            "--ssh-port",
            str(nodes.nodes[0].port),
            "--known-hosts",
            str(nodes.known_hosts),
            "--node-root",
            nodes.node_root_template,
            "--http-port",
            str(HTTP_PORT),
            "--wheel",
            str(server_wheel),
            "--cassandra-heap",
            "768M",
            "--jmx-port",
            str(JMX_PORT),
            "--scrape-interval",
            SCRAPE_INTERVAL,
            "--app",
            f"{appclient.APP}={app_image}",
            timeout=1200,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        took = time.monotonic() - began
        print(f"ctool init SE on 3 nodes: {took:.1f} s")
        data = cluster_json(folder)
        assert [n["JMXPort"] for n in data["Nodes"]] == [JMX_PORT, JMX_PORT + 1, JMX_PORT + 2]
        hosts = ",".join(nodes.hosts)
        yield SeCluster(
            nodes=nodes,
            folder=folder,
            urls=[f"http://{h}:{HTTP_PORT}" for h in nodes.hosts],
            storage=f"cassandra://{hosts}/?replication=3",
            init_seconds=took,
        )
    finally:
        sshnodes.stop(nodes)
        for node in nodes.nodes:
            sshnodes.stop_services(node)
        shutil.rmtree(base, ignore_errors=True)


def test_init_se_forms_a_ring_and_serves_on_every_node(se: SeCluster) -> None:
    """The module's cluster as ``ctool init SE`` left it: a ring of three, a server per node, and
    monitoring that sees every target."""
    print(f"ctool init SE on 3 nodes: {se.init_seconds:.1f} s")
    data = cluster_json(se.folder)
    assert data["Edition"] == "SE" and data["ActualClusterVersion"] == __version__ and "Cmd" not in data
    assert [n["ActualNodeState"]["Address"] for n in data["Nodes"]] == se.nodes.hosts
    assert {n["NodeRole"] for n in data["Nodes"]} == {"DBAppNode"}

    # Every node serves, and its Cassandra is one of a ring of three that sees all of its peers.
    for node in se.nodes.nodes:
        assert check(node.address) == 200, node.address
        assert (node.root / "var/lib/cassandra/data/system").is_dir()
    ring = [dev.Node(f"node-{i}", a, Path("/"), "voedger", "", 0, None, False) for i, a in enumerate(se.nodes.hosts, 1)]
    deadline = time.monotonic() + 120
    while problems := dev.ring_problems(ring):
        assert time.monotonic() < deadline, problems
        time.sleep(2)

    # The servers keep their data in that ring, three copies of it.
    from cassandra.cluster import Cluster

    logging.getLogger("cassandra").setLevel(logging.ERROR)
    session_cluster = Cluster(se.nodes.hosts, protocol_version=4)
    try:
        rows = session_cluster.connect().execute("SELECT keyspace_name, replication FROM system_schema.keyspaces")
        replication = {r.keyspace_name: dict(r.replication) for r in rows}
    finally:
        session_cluster.shutdown()
    assert replication["sysvvm"]["replication_factor"] == "3", replication
    assert replication["sysregistry"]["replication_factor"] == "3", replication

    # Every node's Prometheus scrapes the three servers, the three node exporters and itself; the
    # three Alertmanagers are one cluster, each with all peers.
    for node in se.nodes.nodes:
        wait_all_up(node.address, se.nodes.hosts)
    peers = {f"{h}:9094" for h in se.nodes.hosts}
    deadline = time.monotonic() + 120
    for node in se.nodes.nodes:
        while True:
            am = httpx.get(f"http://{node.address}:9093/api/v2/status", timeout=5).json()["cluster"]
            if am["status"] == "ready" and {p["address"] for p in am["peers"]} == peers:
                break
            assert time.monotonic() < deadline, am
            time.sleep(1)

    status = ctool(se.folder, "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("7/7 targets up") == 3 and status.stdout.count("ready, 3 peers") == 3, status.stdout
    assert status.stdout.count("cassandra RUNNING") == 3 and status.stdout.count("voedger RUNNING") == 3
    assert status.stdout.count("200 ok") == 3
    assert "database ring: healthy, 3 nodes, each sees the others" in status.stdout
    # each server sees the three processes, and each owns a share of the partitions
    assert status.stdout.count(": 3 members, ") == 3, status.stdout
    # and whether their three views name the same owners (they may differ while a partition moves)
    views = re.compile(r"^voedger views (agree: node-1, node-2, node-3 name|differ on)", re.M)
    assert views.search(status.stdout), status.stdout
    assert ctool(se.folder, "validate").returncode == 0


def test_rolling_upgrade_serves_every_request(se: SeCluster, new_wheel: Path) -> None:
    api = appclient.Client(se.urls, appclient.system_token(se.storage))
    with appclient.Load(api) as load:
        time.sleep(3)
        before = len(load.result.acked)
        began = time.monotonic()
        up = ctool(se.folder, "upgrade", "--wheel", str(new_wheel), timeout=1200)
        took = time.monotonic() - began
        during = len(load.result.acked) - before
        time.sleep(3)
    result = load.result
    assert up.returncode == 0, up.stdout + up.stderr
    print(
        f"SE rolling upgrade: {took:.1f} s; {len(result.acked)} inserts acknowledged ({during} during the upgrade), "
        f"{result.skipped} connections refused and sent to the next node, {len(result.failures)} failures, "
        f"{len(result.moving)} 503s of a moving partition; per node: {result.by_node}"
    )
    print("\n".join(["rollout:", *[ln for ln in up.stderr.splitlines() if " serves; " in ln]]))
    print("\n".join(result.failures[:20] + result.moving[:40]))
    assert result.failures == [], result.failures[:10]
    assert result.moving == [], result.moving[:10]
    assert during > 0
    for i in (1, 2, 3):
        assert f"node-{i}: version {NEW_VERSION} serves" in up.stderr
    # The nodes went one after another: each one's rollout began after the previous one's check.
    log = sorted((se.folder / "log").glob("*-upgrade/upgrade.log"))[-1].read_text().splitlines()
    order = [ln.split(": step ")[0].split()[-1] + " " + ln.split(": step ")[1] for ln in log if ": step " in ln]
    rollouts = [e for e in order if e.startswith("node-") and " rollout started" in e]
    assert [r.split()[0] for r in rollouts] == ["node-1", "node-2", "node-3"], order
    for prev, nxt in (("node-1", "node-2"), ("node-2", "node-3")):
        checked = next(i for i, e in enumerate(order) if e.startswith(f"{prev} check done"))
        assert checked < order.index(f"{nxt} rollout started"), order

    data = cluster_json(se.folder)
    assert data["ActualClusterVersion"] == NEW_VERSION and "Cmd" not in data
    for node in se.nodes.nodes:
        assert check(node.address) == 200
        reported = subprocess.run(
            [str(node.root / "opt/voedger/venv/bin/voedger"), "--version"], capture_output=True, text=True, check=True
        )
        assert NEW_VERSION in reported.stdout, node.address
    assert {n["ActualNodeState"]["NodeVersion"] for n in data["Nodes"]} == {NEW_VERSION}

    # Every acknowledged insert is there, read through every node (over keep-alive connections;
    # a new System token every 5 minutes, one lives 10).
    minted = time.monotonic()
    with appclient.Client(se.urls, appclient.system_token(se.storage)) as reader:
        for i, record in enumerate(result.acked):
            if time.monotonic() - minted > 300:
                reader.use_token(appclient.system_token(se.storage))
                minted = time.monotonic()
            read = reader.read(record, se.urls[i % len(se.urls)])
            assert read is not None and read["Token"] == record.token, record


def test_backup_and_restore_bring_back_the_backup_moment(se: SeCluster) -> None:
    api = appclient.Client(se.urls, appclient.system_token(se.storage))
    first = api.write(15)
    began = time.monotonic()
    backup = ctool(se.folder, "backup", "now", timeout=600)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    print(f"SE backup now: {time.monotonic() - began:.1f} s: {backup.stdout.strip()}")
    name = backup.stdout.split()[1].rstrip(":")
    for node in se.nodes.nodes:
        folder = node.root / "var/backups/voedger" / name
        assert (folder / "backup.json").is_file() and "CREATE TABLE harnessloadtest." in (
            folder / "schema.cql"
        ).read_text()
        assert list(folder.glob("cassandra/harnessloadtest/*/*-Data.db")), node.address
        assert not list((node.root / "var/lib/cassandra/data").glob(f"*/*/snapshots/{name}"))
    later = api.write(6)
    for record in first[:5]:
        api.deactivate(record)
    assert (api.read(first[0]) or {}).get("sys.IsActive") is False

    listed = ctool(se.folder, "backup", "list")
    assert listed.returncode == 0 and name in listed.stdout and "3/3" in listed.stdout, listed.stdout

    began = time.monotonic()
    restored = ctool(se.folder, "restore", name, timeout=1200)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    print(f"SE restore: {time.monotonic() - began:.1f} s")
    for node in se.nodes.nodes:
        assert check(node.address) == 200
    api = appclient.Client(se.urls, appclient.system_token(se.storage))
    for i, record in enumerate(first):
        read = api.read(record, se.urls[i % len(se.urls)])
        assert read is not None and read["Token"] == record.token and read["sys.IsActive"] is True, read
    for record in later:
        assert api.read(record) is None, record
    assert api.write(3)  # the restored cluster takes writes
    data = cluster_json(se.folder)
    assert "Cmd" not in data and data["ActualClusterVersion"] == NEW_VERSION
    status = ctool(se.folder, "status")
    assert status.stdout.count("voedger RUNNING") == 3 and "database ring: healthy" in status.stdout, status.stdout


def test_replace_a_dead_node_by_a_new_host(se: SeCluster) -> None:
    """Node 3 dies; ctool replace rebuilds it on a fourth host, which takes over its place in the
    ring and its data; everything acknowledged before reads back through every node."""
    api = appclient.Client(se.urls, appclient.system_token(se.storage))
    before = api.write(30)
    four = sshnodes.nodes(se.nodes.base, 4)
    first, second, old, new = four.nodes
    sshnodes.prepare(four)  # the fourth host's key joins known_hosts (the others' are kept)
    sshnodes.start_node(new)
    try:
        # Node 3 goes down: its supervisord stopped by pid, and Cassandra and the server with it.
        assert sshnodes.stop_services(old)
        sshnodes.stop_node(old)
        live = ctool(se.folder, "replace", first.address, new.address)
        assert live.returncode == 1 and f"cannot replace a live node {first.address}" in live.stderr, live.stderr
        survivors = appclient.Client(se.urls[:2], appclient.system_token(se.storage))
        during = survivors.write(10)  # the two survivors serve the whole cluster meanwhile

        began = time.monotonic()
        done = ctool(se.folder, "replace", old.address, new.address, timeout=1800)
        took = time.monotonic() - began
        assert done.returncode == 0, done.stdout + done.stderr
        print(f"SE replace of a dead node by a new host: {took:.1f} s")
        assert f"Replaced address: {old.address}" in done.stdout + done.stderr

        hosts = [first.address, second.address, new.address]
        data = cluster_json(se.folder)
        assert "Cmd" not in data and data["ReplacedAddresses"] == [old.address], data
        assert [n["ActualNodeState"]["Address"] for n in data["Nodes"]] == hosts
        assert data["Nodes"][2]["Name"] == "node-3" and data["Nodes"][2]["NodeRoot"] == str(new.root)
        cassandra_yaml = (first.root / "var/lib/cassandra/conf/cassandra.yaml").read_text()
        assert new.address in cassandra_yaml and old.address not in cassandra_yaml
        script = (new.root / "opt/cassandra/bin/cassandra-node").read_text()
        assert "replace_address_first_boot" not in script  # dropped for the later starts

        ring = subprocess.run(
            [*shlex.split(cassandra.nodetool(str(first.root), JMX_PORT)), "status"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        up = [ln.split()[1] for ln in ring.splitlines() if ln.startswith("UN ")]
        assert sorted(up) == sorted(hosts) and old.address not in ring, ring

        status = ctool(se.folder, "status")
        assert status.returncode == 0, status.stderr
        assert new.address in status.stdout and old.address not in status.stdout, status.stdout
        assert status.stdout.count("voedger RUNNING") == 3 and status.stdout.count("200 ok") == 3, status.stdout
        assert "database ring: healthy, 3 nodes" in status.stdout, status.stdout

        urls = [f"http://{h}:{HTTP_PORT}" for h in hosts]
        storage = f"cassandra://{','.join(hosts)}/?replication=3"
        api = appclient.Client(urls, appclient.system_token(storage))
        for record in before + during:
            for url in urls:
                read = api.read(record, url)
                assert read is not None and read["Token"] == record.token, (url, record)
        after = api.write(9)  # round the three nodes, the new one too
        for i, record in enumerate(after):
            read = api.read(record, urls[(i + 1) % len(urls)])
            assert read is not None and read["Token"] == record.token, record

        # The old address is never used again; the replaced node is no longer in the cluster.
        back = ctool(se.folder, "replace", new.address, old.address)
        assert back.returncode == 1 and f"address {old.address} is in replaced list" in back.stderr, back.stderr
        gone = ctool(se.folder, "replace", old.address, "127.0.0.99")
        assert gone.returncode == 1 and f"host {old.address} not found in cluster" in gone.stderr, gone.stderr
    finally:
        sshnodes.stop_node(new)
        sshnodes.stop_services(new)
