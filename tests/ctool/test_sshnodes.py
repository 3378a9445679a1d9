"""The test-node harness: real sshd's with key authentication and checked host keys."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from voedger.devtools import sshnodes

pytestmark = pytest.mark.ctool


def ssh(cluster: sshnodes.SshCluster, node: sshnodes.SshNode, command: str, known_hosts: str | None = None) -> str:
    done = subprocess.run(
        [
            "ssh",
            "-i",
            str(cluster.key),
            "-p",
            str(node.port),
            "-o",
            f"UserKnownHostsFile={known_hosts or cluster.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            f"root@{node.address}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ssh exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def test_nodes_answer_on_their_own_addresses(ssh_nodes: Callable[[int], sshnodes.SshCluster]) -> None:
    cluster = ssh_nodes(2)
    for node in cluster.nodes:
        assert sshnodes.node_pid(node) is not None
        # Each sshd listens on its own address only: the connection's local end tells which.
        assert ssh(cluster, node, "echo $SSH_CONNECTION").split()[2] == node.address
    assert not sshnodes.port_open(f"127.0.0.{sshnodes.FIRST_HOST + 2}", cluster.nodes[0].port)


def test_host_keys_are_checked(ssh_nodes: Callable[[int], sshnodes.SshCluster]) -> None:
    cluster = ssh_nodes(2)
    first, second = cluster.nodes
    # A known_hosts that gives node 2's key for node 1: the client must refuse node 1.
    lines = cluster.known_hosts.read_text().splitlines()
    forged = cluster.base / "forged_known_hosts"
    forged.write_text(f"[{first.address}]:{first.port} " + " ".join(lines[1].split()[1:]) + "\n")
    with pytest.raises(RuntimeError, match=r"Host key verification failed|HOST IDENTIFICATION"):
        ssh(cluster, first, "true", known_hosts=str(forged))
    assert ssh(cluster, second, "echo ok").strip() == "ok"


def test_stopping_a_node_cuts_its_sessions_and_restarting_it_serves_again(
    ssh_nodes: Callable[[int], sshnodes.SshCluster],
) -> None:
    cluster = ssh_nodes(1)
    node = cluster.nodes[0]
    waiting = subprocess.Popen(
        [
            "ssh",
            "-i",
            str(cluster.key),
            "-p",
            str(node.port),
            "-o",
            f"UserKnownHostsFile={cluster.known_hosts}",
            "-o",
            "BatchMode=yes",
            f"root@{node.address}",
            "sleep 20",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            # Wait for the authenticated session ("sshd: root@notty"), not a connection being set up.
            if sshnodes.sessions(node):
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert sshnodes.stop_node(node)
        assert waiting.wait(timeout=15) != 0
        assert not sshnodes.port_open(node.address, node.port)
        with pytest.raises(RuntimeError):
            ssh(cluster, node, "true")
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    sshnodes.start_node(node)
    assert ssh(cluster, node, "echo back").strip() == "back"
