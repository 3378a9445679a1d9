"""The development Cassandra tool without Java: configuration, and that it only ever signals the
processes it started. (Starting real nodes is exercised by the cassandra and cluster tiers.)"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voedger.devtools import cassandra as dc


@pytest.fixture(autouse=True)
def devdata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own .devdata, so it never sees the project's real nodes."""
    monkeypatch.setenv("VOEDGER_DEVDATA", str(tmp_path / ".devdata"))
    return tmp_path / ".devdata"


@pytest.fixture
def impostor() -> Iterator[subprocess.Popen[bytes]]:
    """A harmless process, started here and ended here by its pid."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def _fake_node(node: dc.Node) -> subprocess.Popen[bytes]:
    """A process whose command line names the node's cassandra.yaml, as a real node's does."""
    dc.write_config(node)
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", f"-Dcassandra.config={node.yaml_file.as_uri()}"]
    )
    node.pid_file.write_text(f"{proc.pid}\n")
    # Until the child has exec'd, its command line is still pytest's: wait for the real one (a
    # busy machine may take a while), as a pid file is only written for a started node.
    deadline = time.monotonic() + 30
    while dc.node_pid(node) != proc.pid:
        assert time.monotonic() < deadline, "the fake node did not start"
        time.sleep(0.01)
    return proc


def test_layout(devdata: Path) -> None:
    single = dc.single_node()
    assert single.home == devdata / "cassandra" / "single"
    assert single.address == "127.0.0.1"
    nodes = dc.cluster_nodes()
    assert [n.address for n in nodes] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert [n.home for n in nodes] == [devdata / "cassandra" / "cluster" / f"node{i}" for i in (1, 2, 3)]
    assert len({n.jmx_port for n in nodes}) == 3
    assert dc.nodes_for(1) == [single] and dc.nodes_for(3) == nodes
    with pytest.raises(dc.CassandraDevError):
        dc.nodes_for(2)
    with pytest.raises(dc.CassandraDevError):
        dc.cluster_node(4)


def test_yaml_and_command_line() -> None:
    node = dc.cluster_node(2)
    text = dc.render_yaml(node)
    assert "listen_address: 127.0.0.2" in text and "rpc_address: 127.0.0.2" in text
    assert "native_transport_port: 9042" in text and "storage_port: 7000" in text
    assert '"127.0.0.1:7000,127.0.0.2:7000,127.0.0.3:7000"' in text
    assert "initial_token:" in text and "auto_bootstrap: false" in text
    assert "storage_compatibility_mode: NONE" in text  # TTLs past 2038 (the contract allows 20 years)
    assert str(node.home / "data") in text
    jars = [Path("/x/cassandra-all-5.0.9.jar"), Path("/x/jamm-0.4.0.jar")]
    cmd = dc.jvm_command(node, "java", jars, "1G", 1000)
    assert cmd[0] == "java" and cmd[-1] == "org.apache.cassandra.service.CassandraDaemon"
    assert "-Xmx1G" in cmd and "-javaagent:/x/jamm-0.4.0.jar" in cmd
    assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in cmd
    assert f"-Dcassandra.config={node.yaml_file.as_uri()}" in cmd
    assert f"-Dcassandra.jmx.local.port={node.jmx_port}" in cmd


def test_an_unrelated_process_in_a_pid_file_is_never_signalled(impostor: subprocess.Popen[bytes]) -> None:
    node = dc.single_node()
    dc.write_config(node)
    node.pid_file.write_text(f"{impostor.pid}\n")
    assert dc.node_pid(node) is None
    assert dc.stop_node(node) is False
    assert impostor.poll() is None  # still alive
    assert not node.pid_file.exists()
    node.pid_file.write_text(f"{os.getpid()}\n")
    assert dc.node_state(node) == "stopped"


def test_single_node_and_cluster_exclude_each_other() -> None:
    proc = _fake_node(dc.cluster_node(1))
    try:
        with pytest.raises(dc.CassandraDevError, match=r"3-node cluster is running.*stop --nodes 3"):
            dc.start(1)
    finally:
        proc.kill()
        proc.wait()
    proc = _fake_node(dc.single_node())
    try:
        with pytest.raises(dc.CassandraDevError, match=r"single node is running.*stop --nodes 1"):
            dc.start(3)
        with pytest.raises(dc.CassandraDevError, match="single node is running"):
            dc.start_node(2)
    finally:
        proc.kill()
        proc.wait()


def test_stop_and_kill_end_the_recorded_process() -> None:
    node = dc.cluster_node(3)
    proc = _fake_node(node)
    assert dc.node_pid(node) == proc.pid
    assert dc.kill_node(3) == proc.pid
    proc.wait(timeout=10)  # the tool may have reaped it already, so the exit code is not ours to see
    assert not Path(f"/proc/{proc.pid}").exists()
    assert dc.kill_node(3) is None
    proc = _fake_node(node)
    assert dc.stop_node(node, grace=5) is True
    proc.wait(timeout=10)
    assert not Path(f"/proc/{proc.pid}").exists()
    assert not node.pid_file.exists()


def _serve_once(reply: bytes) -> tuple[int, threading.Thread]:
    server = socket.create_server(("127.0.0.1", 0))
    port = int(server.getsockname()[1])

    def run() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                conn.recv(9)
                conn.sendall(reply)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, thread


def test_cql_probe() -> None:
    supported = struct.pack(">BBhBi", 0x84, 0, 1, 0x06, 0)
    port, thread = _serve_once(supported)
    assert dc.cql_answers("127.0.0.1", port)
    thread.join(5)
    port, thread = _serve_once(b"HTTP/1.1 400 Bad\r\n")
    assert not dc.cql_answers("127.0.0.1", port)
    thread.join(5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = int(s.getsockname()[1])
    assert not dc.cql_answers("127.0.0.1", free, timeout=1)


def _peer(address: str, **missing: None) -> dict[str, object]:
    row: dict[str, object] = {
        "peer": address,
        "rpc_address": address,
        "host_id": f"host-{address}",
        "data_center": "datacenter1",
        "rack": "rack1",
        "tokens": {"42"},
    }
    return {**row, **missing}


def test_peers_count_as_the_drivers_count_them() -> None:
    """A node must list every other node of the ring with a complete row; an incomplete row that
    gossip left for a replaced node is passed over, a complete one of a stranger is not."""
    ring = ["127.0.0.11", "127.0.0.12", "127.0.0.14"]
    whole = [_peer("127.0.0.11"), _peer("127.0.0.12")]
    assert dc.peer_problems("127.0.0.14", whole, ring) == []
    leftover = [*whole, _peer("127.0.0.13", host_id=None, tokens=None)]
    assert dc.peer_problems("127.0.0.14", leftover, ring) == []
    stranger = [*whole, _peer("127.0.0.13")]
    assert dc.peer_problems("127.0.0.14", stranger, ring) == [
        "127.0.0.14 lists 127.0.0.13 among its peers, a node not in the ring"
    ]
    partial = [_peer("127.0.0.11"), _peer("127.0.0.12", tokens=set())]
    assert dc.peer_problems("127.0.0.14", partial, ring) == ["127.0.0.14 does not list 127.0.0.12 among its peers"]
