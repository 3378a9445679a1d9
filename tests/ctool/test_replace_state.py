"""``ctool replace OLD NEW`` before any node is touched: its preconditions and errors, the
ReplacedAddresses record, and the first-boot files of the new node (no SSH: unit tier)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from voedger import __version__
from voedger.cli import ctool
from voedger.ctool import engine, ops, state
from voedger.ctool.state import Cluster, Command, Node, NodeState

HOSTS = ["127.0.0.241", "127.0.0.242", "127.0.0.243"]
"""Loopback addresses nothing listens on: the nodes of a cluster that is down."""


def installed_se(folder: Path, ssh_port: int = 22, http_port: int = 80) -> Cluster:
    cluster = Cluster(
        edition="SE",
        ssh_port=ssh_port,
        ssh_user="root",
        ssh_key="/k",
        known_hosts="/kh",
        http_port=http_port,
        cassandra_heap="1G",
        actual_version=__version__,
        nodes=[
            Node(
                name=f"node-{i + 1}",
                role="DBAppNode",
                node_root=f"/nodes/{host}/root",
                actual=NodeState(host, __version__),
                jmx_port=7199 + i,
            )
            for i, host in enumerate(HOSTS)
        ],
    )
    state.save(cluster, folder)
    return cluster


LIVE = "127.0.0.213"
"""A live node's address: not 127.0.0.1, where a developer's own Cassandra may answer too."""


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port that accepts, on LIVE: a node's server that answers."""
    sock = socket.socket()
    sock.bind((LIVE, 0))
    sock.listen()
    yield sock
    sock.close()


def replace(folder: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(ctool.main, ["replace", *args, "--cluster-dir", str(folder)])
    return result.exit_code, result.output


def test_replaced_addresses_round_trip_and_are_checked() -> None:
    cluster = Cluster("SE", 22, "root", "/k", "/kh", 80, cassandra_heap="1G", actual_version=__version__)
    cluster.nodes = [Node(f"node-{i}", "DBAppNode", "/", actual=NodeState(h, __version__)) for i, h in enumerate(HOSTS)]
    cluster.replaced_addresses = ["10.0.0.13"]
    data = json.loads(json.dumps(cluster.to_json()))
    assert data["ReplacedAddresses"] == ["10.0.0.13"]
    assert Cluster.from_json(data).replaced_addresses == ["10.0.0.13"]
    assert state.problems(cluster) == []
    cluster.replaced_addresses = [HOSTS[0], "not-an-address"]
    found = state.problems(cluster)
    assert f"ReplacedAddresses: {HOSTS[0]} is the address of a node of the cluster" in found
    assert "ReplacedAddresses: 'not-an-address' is not an IP address" in found
    cluster.replaced_addresses = []
    assert "ReplacedAddresses" not in cluster.to_json()
    cluster.cmd, cluster.desired_version = Command("replace", [HOSTS[2]]), __version__
    assert "Cmd replace takes two addresses: the old node's and the new one's" in state.problems(cluster)
    with pytest.raises(state.StateError, match="ReplacedAddresses must be a list"):
        Cluster.from_json({**data, "ReplacedAddresses": "10.0.0.13"})


def test_refusals_leave_cluster_json_as_it_was(tmp_path: Path, listener: socket.socket) -> None:
    cluster = installed_se(tmp_path)
    cluster.replaced_addresses = ["127.0.0.240"]
    state.save(cluster, tmp_path)
    before = state.cluster_file(tmp_path).read_text()

    cases = [
        (("127.0.0.9", "127.0.0.250"), "host 127.0.0.9 not found in cluster: host not found"),
        (("node-3", HOSTS[0]), f"host {HOSTS[0]} already exists in cluster"),
        ((HOSTS[2], "127.0.0.240"), "address 127.0.0.240 is in replaced list: address cannot be used"),
        ((HOSTS[2], "new-host"), "'new-host' is not an IP address"),
        # Nothing answers on the new host's SSH port (the old node is down: nothing answers either).
        ((HOSTS[2], "127.0.0.250"), "host 127.0.0.250 is not available: host is not available (SSH port 22)"),
    ]
    for args, message in cases:
        code, output = replace(tmp_path, *args)
        assert code == 1 and message in output, (args, output)
        assert state.cluster_file(tmp_path).read_text() == before

    # A node whose server answers is alive: not replaced.
    port = listener.getsockname()[1]
    cluster = installed_se(tmp_path, http_port=port)
    cluster.nodes[2].actual = NodeState(LIVE, __version__)
    state.save(cluster, tmp_path)
    code, output = replace(tmp_path, LIVE, "127.0.0.250")
    assert code == 1 and f"cannot replace a live node {LIVE}: its server answer(s)" in output, output
    assert "Cmd" not in json.loads(state.cluster_file(tmp_path).read_text())


def test_ce_and_a_pending_command_are_refused(tmp_path: Path) -> None:
    ce = Cluster("CE", 22, "root", "/k", "/kh", 80, actual_version=__version__)
    ce.nodes = [Node("n1-node", "N1Node", "/", actual=NodeState("127.0.0.241", __version__))]
    state.save(ce, tmp_path)
    code, output = replace(tmp_path, "127.0.0.241", "127.0.0.250")
    assert code == 1 and "ctool replace is for SE clusters" in output, output

    cluster = installed_se(tmp_path)
    cluster.cmd, cluster.desired_version = Command("upgrade", [__version__]), __version__
    for node in cluster.nodes:
        node.desired = NodeState(node.address, __version__)
    state.save(cluster, tmp_path)
    code, output = replace(tmp_path, HOSTS[2], "127.0.0.250")
    assert code == 1 and "the command 'upgrade" in output and "ctool repeat" in output, output


def test_replace_records_itself_before_the_steps(
    tmp_path: Path, listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command and the desired states are written before any step runs (here the engine
    refuses to run at all), so cluster.json keeps the pending replace for ctool repeat."""
    ssh_port = listener.getsockname()[1]  # the new host's "sshd" answers
    installed_se(tmp_path, ssh_port=ssh_port)
    monkeypatch.setattr(engine, "environment_ok", lambda: "no engine in this test")
    with pytest.raises(ops.CtoolError, match="no engine in this test"):
        ops.replace(ops.Options(folder=tmp_path), "node-3", LIVE)
    data = json.loads(state.cluster_file(tmp_path).read_text())
    assert data["Cmd"] == {"Kind": "replace", "Args": [HOSTS[2], LIVE]}
    assert data["DesiredClusterVersion"] == __version__
    new = data["Nodes"][2]
    assert new["Name"] == "node-3" and new["ActualNodeState"] is None and new["JMXPort"] == 7201
    assert new["DesiredNodeState"] == {"Address": LIVE, "NodeVersion": __version__}
    assert new["NodeRoot"] == f"/nodes/{LIVE}/root"  # the old node's root, with the new address
    for other in data["Nodes"][:2]:
        assert other["DesiredNodeState"]["StepsDone"] == list(ops.REPLACE_NEW_NODE_ONLY)
    assert ops.steps_of(state.load(tmp_path)) == ops.REPLACE_STEPS
    assert "ReplacedAddresses" not in data  # recorded only when the replace is done


def test_first_boot_files_of_the_new_node() -> None:
    """The new node's first boot: the replacement flag, auto_bootstrap on, not its own seed;
    its usual files (written by the seeds step) have none of that."""
    from voedger.ctool import cassandra
    from voedger.devtools import cassandra as dev

    if not (dev.lib_dir() / ".complete").is_file():
        pytest.skip("Cassandra's jars are not fetched here (the Cassandra tests fetch them)")
    addresses = ["10.0.0.11", "10.0.0.12", "10.0.0.16"]
    first = cassandra.node_files("/", "10.0.0.16", 2, addresses, "1G", 7201, replace_address="10.0.0.13")
    usual = cassandra.node_files("/", "10.0.0.16", 2, addresses, "1G", 7201)
    assert "-Dcassandra.replace_address_first_boot=10.0.0.13" in first["cassandra_script"]
    assert "replace_address" not in usual["cassandra_script"]
    assert "auto_bootstrap: true" in first["cassandra_yaml"] and "auto_bootstrap: false" in usual["cassandra_yaml"]
    assert '"10.0.0.11:7000,10.0.0.12:7000"' in first["cassandra_yaml"], first["cassandra_yaml"]
    assert '"10.0.0.11:7000,10.0.0.12:7000,10.0.0.16:7000"' in usual["cassandra_yaml"]
    # The same token as the node it replaces had: the ring keeps its even spread.
    token = cassandra.tokens(3)[2]
    assert f'initial_token: "{token}"' in first["cassandra_yaml"]
    assert f'initial_token: "{token}"' in usual["cassandra_yaml"]


def test_an_se_command_ends_when_the_ring_is_whole_and_stays_pending_until_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every step of a replace is done, but the ring is not whole yet: the command stays in
    cluster.json with the ring's problem; ``ctool repeat`` waits again and, once the ring is
    whole, finishes it (nothing re-run: the steps are recorded as done)."""
    from voedger.devtools import cassandra as dev

    cluster = installed_se(tmp_path)
    new = "127.0.0.250"
    cluster.cmd, cluster.desired_version = Command("replace", [HOSTS[2], new]), __version__
    for node in cluster.nodes:
        address = new if node.name == "node-3" else node.address
        node.desired = NodeState(address, __version__, steps_done=list(ops.REPLACE_STEPS))
    cluster.nodes[2].actual = None
    state.save(cluster, tmp_path)

    monkeypatch.setattr(engine, "environment_ok", lambda: "")
    monkeypatch.setattr(engine, "run_step", lambda *a, **k: pytest.fail("no step is left to run"))
    monkeypatch.setattr(ops, "RING_SECONDS", 0.1)
    asked: list[list[str]] = []

    def down(nodes: list[dev.Node]) -> list[str]:
        asked.append([n.address for n in nodes])
        return [f"the driver does not see {HOSTS[0]} up"]

    monkeypatch.setattr(dev, "ring_problems", down)
    with pytest.raises(ops.CtoolError, match="every step is done, but the database ring is not whole") as raised:
        ops.repeat(ops.Options(folder=tmp_path))
    assert "ctool repeat" in str(raised.value) and f"does not see {HOSTS[0]} up" in str(raised.value)
    assert asked[0] == [HOSTS[0], HOSTS[1], new]  # the ring as the replace leaves it
    data = json.loads(state.cluster_file(tmp_path).read_text())
    assert data["Cmd"]["Kind"] == "replace" and "ReplacedAddresses" not in data
    assert data["LastAttemptError"] == f"database ring: the driver does not see {HOSTS[0]} up"

    monkeypatch.setattr(dev, "ring_problems", lambda nodes: [])
    done = ops.repeat(ops.Options(folder=tmp_path))
    assert done is not None and done.cmd is None and done.replaced_addresses == [HOSTS[2]]
    assert [n.address for n in done.nodes] == [HOSTS[0], HOSTS[1], new]
    assert "LastAttemptError" not in json.loads(state.cluster_file(tmp_path).read_text())
