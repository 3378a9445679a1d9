"""ctool init CE on a test node over real SSH, status, validate, --dry-run, an interrupted init."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from voedger import __version__
from voedger.devtools import sshnodes

FIRST = f"127.0.0.{sshnodes.FIRST_HOST}"
"""The first test node's address."""

pytestmark = pytest.mark.ctool

HTTP_PORT = 8822
SCRAPE_INTERVAL = "2s"
"""Short, so that a test sees a target go down (and VoedgerServerDown fire) quickly."""
PASSWORD = "monitor-Pa55word"
CTOOL = str(Path(sys.executable).with_name("ctool"))
Nodes = Callable[[int], sshnodes.SshCluster]


def init_args(cluster: sshnodes.SshCluster, *extra: str) -> list[str]:
    return [
        "init",
        "CE",
        cluster.hosts[0],
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
        "--scrape-interval",
        SCRAPE_INTERVAL,
        *extra,
    ]


def ctool(folder: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CTOOL, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def cluster_json(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "cluster.json").read_text())
    return data


def check(address: str) -> int:
    try:
        return httpx.get(f"http://{address}:{HTTP_PORT}/api/check", timeout=3).status_code
    except httpx.HTTPError:
        return 0


def active_targets(address: str, auth: tuple[str, str] | None = None) -> dict[str, str]:
    """``job@instance``: health, of the node's Prometheus's active targets."""
    reply = httpx.get(f"http://{address}:9090/api/v1/targets?state=active", auth=auth, timeout=5)
    reply.raise_for_status()
    return {
        f"{t['labels']['job']}@{t['labels']['instance']}": t["health"] for t in reply.json()["data"]["activeTargets"]
    }


def wait_all_up(address: str, hosts: list[str], auth: tuple[str, str] | None = None) -> None:
    """Until the node's Prometheus scrapes every server, every node exporter and itself."""
    expected = {f"voedger@{h}:8000" for h in hosts} | {f"node@{h}:9100" for h in hosts} | {f"prometheus@{address}:9090"}
    deadline = time.monotonic() + 120
    while True:
        try:
            health = active_targets(address, auth)
        except httpx.HTTPError as exc:
            health = {"error": str(exc)}
        if set(health) == expected and set(health.values()) == {"up"}:
            return
        assert time.monotonic() < deadline, health
        time.sleep(1)


def test_init_ce_installs_a_serving_node(ssh_nodes: Nodes, short_tmp: Path) -> None:
    cluster = ssh_nodes(1)
    node = cluster.nodes[0]
    folder = short_tmp / "ops"
    folder.mkdir()
    began = time.monotonic()
    done = ctool(folder, *init_args(cluster), timeout=900)  # the wheel is built from this checkout
    took = time.monotonic() - began
    assert done.returncode == 0, done.stdout + done.stderr
    assert "init done" in done.stderr
    for step in ("prepare", "server", "service", "monitoring", "check"):
        assert f"n1-node: {step} (" in done.stderr
    print(f"ctool init CE: {took:.1f} s")

    data = cluster_json(folder)
    assert data["ActualClusterVersion"] == __version__ and "Cmd" not in data
    assert data["Nodes"][0]["ActualNodeState"] == {"Address": node.address, "NodeVersion": __version__}
    assert data["Nodes"][0]["DesiredNodeState"] is None
    assert check(node.address) == 200

    # Everything went under the node's root: the venv, supervisord's files, the SQLite data.
    root = node.root
    assert (root / "opt/voedger/venv/bin/voedger").exists()
    assert (root / "run/voedger/supervisord.pid").exists()
    assert any((root / "var/lib/voedger").iterdir())
    assert (root / "var/tmp/ansible").is_dir()  # even Ansible's temporary files
    supervisord = int((root / "run/voedger/supervisord.pid").read_text())
    assert f"{root}/etc/voedger/supervisord.conf" in Path(f"/proc/{supervisord}/cmdline").read_bytes().decode()

    # One log per command, with every step of the node.
    logs = list((folder / "log").glob("*-init/init.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "n1-node: step server done" in text and "The server answers /api/check: ok" in text
    assert "PRIVATE KEY" not in text

    status = ctool(folder, "status")
    assert status.returncode == 0, status.stderr
    assert "installed 0.1.0" in status.stdout and "voedger RUNNING" in status.stdout and "200 ok" in status.stdout
    assert "voedger n1-node: one process serves " in status.stdout, status.stdout
    assert ctool(folder, "validate").returncode == 0

    # A second init is refused; repeat has nothing to do; the server survives both.
    again = ctool(folder, *init_args(cluster))
    assert again.returncode == 1 and "the cluster configuration already exists" in again.stderr
    nothing = ctool(folder, "repeat")
    assert nothing.returncode == 0 and "Nothing to repeat" in nothing.stdout

    check_monitoring(folder, node)

    # status sees a stopped server.
    assert sshnodes.stop_services(node)
    assert check(node.address) == 0
    down = ctool(folder, "status")
    assert down.returncode == 0 and "no answer" in down.stdout and "voedger RUNNING" not in down.stdout
    assert "voedger n1-node: no cluster view" in down.stdout, down.stdout


def test_dry_run_changes_nothing_on_the_node(ssh_nodes: Nodes, short_tmp: Path, server_wheel: Path) -> None:
    cluster = ssh_nodes(1)
    folder = short_tmp / "ops"
    folder.mkdir()
    done = ctool(folder, *init_args(cluster, "--wheel", str(server_wheel), "--dry-run"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dry run: nothing was changed on the nodes" in done.stderr
    assert not (folder / "cluster.json").exists()
    assert cluster_json(folder / ".dry-run")["ActualClusterVersion"] == __version__
    root = cluster.nodes[0].root
    assert not (root / "opt").exists() and not (root / "etc").exists()
    # The verbose output of a dry run shows what would change.
    assert "The virtual environment of this version exists: changed" in done.stderr


def test_failures_name_the_node_and_the_step_and_repeat_finishes(
    ssh_nodes: Nodes, short_tmp: Path, server_wheel: Path
) -> None:
    cluster = ssh_nodes(2)
    folder = short_tmp / "ops"
    folder.mkdir()
    first = cluster.nodes[0]
    # known_hosts gives node 2's key for node 1's address: ctool must not connect.
    good = cluster.known_hosts.read_text()
    lines = good.splitlines()
    cluster.known_hosts.write_text(f"[{first.address}]:{first.port} " + " ".join(lines[1].split()[1:]) + "\n")
    done = ctool(folder, *init_args(cluster, "--wheel", str(server_wheel)))
    assert done.returncode == 1
    assert f"node n1-node ({FIRST}) is unreachable over SSH (port 2214) at step 'prepare'" in done.stderr
    assert "Host key verification failed" in done.stderr or "HOST IDENTIFICATION HAS CHANGED" in done.stderr
    assert "run: ctool repeat" in done.stderr
    data = cluster_json(folder)
    assert data["Cmd"]["Kind"] == "init" and "prepare" in data["Nodes"][0]["Error"]
    assert "LastAttemptError" in data
    assert not (first.root / "opt").exists()

    # The right host key, but the server's port is taken: the service step fails and says why.
    cluster.known_hosts.write_text(good)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((first.address, HTTP_PORT))
        squatter.listen()
        failed = ctool(folder, "repeat")
    assert failed.returncode == 1
    assert f"node n1-node ({FIRST}) failed at step 'service'" in failed.stderr, failed.stderr
    assert "the server does not run" in failed.stderr
    assert cluster_json(folder)["Nodes"][0]["DesiredNodeState"]["StepsDone"] == ["prepare", "server"]

    # The port is free again: repeat redoes the service step only, and the server serves.
    repeated = ctool(folder, "repeat")
    assert repeated.returncode == 0, repeated.stdout + repeated.stderr
    assert "n1-node: service (" in repeated.stderr and "n1-node: server (" not in repeated.stderr
    assert check(first.address) == 200
    data = cluster_json(folder)
    assert "Cmd" not in data and "LastAttemptError" not in data and "Error" not in data["Nodes"][0]


def test_an_init_cut_by_a_stopped_sshd_is_finished_by_repeat(
    ssh_nodes: Nodes, short_tmp: Path, server_wheel: Path
) -> None:
    cluster = ssh_nodes(1)
    node = cluster.nodes[0]
    folder = short_tmp / "ops"
    folder.mkdir()
    running = subprocess.Popen(
        [CTOOL, *init_args(cluster, "--wheel", str(server_wheel))],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Stop the node's sshd as soon as the server is installed, i.e. in the middle of init.
        deadline = time.monotonic() + 300
        while True:
            try:
                steps = cluster_json(folder)["Nodes"][0]["DesiredNodeState"]["StepsDone"]
            except (OSError, ValueError, KeyError, TypeError):
                steps = []
            if "server" in steps:
                break
            assert running.poll() is None, running.communicate()
            assert time.monotonic() < deadline, "init did not reach the service step"
            time.sleep(0.1)
        assert sshnodes.stop_node(node)
        out, err = running.communicate(timeout=300)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert running.returncode == 1, out + err
    assert f"node n1-node ({FIRST})" in err and "step 'service'" in err, err
    assert "run: ctool repeat" in err

    data = cluster_json(folder)
    assert data["Cmd"] == {"Kind": "init", "Args": ["CE", node.address]}
    desired = data["Nodes"][0]["DesiredNodeState"]
    assert desired["StepsDone"] == ["prepare", "server"]
    assert "step service" in data["Nodes"][0]["Error"]
    assert data["Nodes"][0]["ActualNodeState"] is None
    status = ctool(folder, "status")
    assert "unreachable" in status.stdout and "2/5 steps done" in status.stdout, status.stdout

    # While the node is down, repeat fails the same way and keeps the steps done.
    still = ctool(folder, "repeat")
    assert still.returncode == 1 and "unreachable over SSH" in still.stderr
    assert cluster_json(folder)["Nodes"][0]["DesiredNodeState"]["StepsDone"] == ["prepare", "server"]

    sshnodes.start_node(node)
    began = time.monotonic()
    repeated = ctool(folder, "repeat")
    assert repeated.returncode == 0, repeated.stdout + repeated.stderr
    print(f"ctool repeat: {time.monotonic() - began:.1f} s")
    # The failed repeat above may have begun in the same second: then this one's folder is
    # "<stamp>-repeat-2" (CommandLog), so the newest log is taken by time, not by name.
    log = max((folder / "log").glob("*-repeat*/repeat.log"), key=lambda p: p.stat().st_mtime_ns).read_text()
    assert "step prepare already done, skipped" in log and "step server already done, skipped" in log
    assert "step service done" in log and "step check done" in log
    data = cluster_json(folder)
    assert "Cmd" not in data and data["ActualClusterVersion"] == __version__
    assert data["Nodes"][0]["ActualNodeState"]["Address"] == node.address
    assert "Error" not in data["Nodes"][0]
    assert check(node.address) == 200


def check_monitoring(folder: Path, node: sshnodes.SshNode) -> None:
    """Prometheus, Alertmanager and the node exporter init installed: all targets up, a password
    on their web UIs, an alert of a stopped server delivered to a webhook ``ctool alert add`` set."""
    from tests.monitoring.webhook import WebhookReceiver

    root, address = node.root, node.address
    wait_all_up(address, [address])
    assert httpx.get(f"http://{address}:9093/-/ready", timeout=5).status_code == 200
    conf = root / "etc/voedger/monitoring"
    assert (conf / "voedger.rules.yml").is_file() and (conf / "web.yml").read_text() == ""
    assert len(list((root / "etc/voedger/grafana/dashboards").glob("*.json"))) == 4
    status = ctool(folder, "status")
    assert "3/3 targets up" in status.stdout and "up, no cluster" in status.stdout, status.stdout
    for program in ("prometheus RUNNING", "alertmanager RUNNING", "node-exporter RUNNING"):
        assert program in status.stdout

    # A password: the web UIs answer 401 without it, 200 with it; ctool and Prometheus use their token.
    began = time.monotonic()
    done = ctool(folder, "mon", "password", PASSWORD)
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"ctool mon password: {time.monotonic() - began:.1f} s")
    for port, path in ((9090, "/api/v1/targets"), (9093, "/api/v2/status")):
        assert httpx.get(f"http://{address}:{port}{path}", timeout=5).status_code == 401
        assert httpx.get(f"http://{address}:{port}{path}", auth=("admin", PASSWORD), timeout=5).status_code == 200
        assert httpx.get(f"http://{address}:{port}{path}", auth=("admin", "wrong-pass"), timeout=5).status_code == 401
    assert (conf / "web.yml").stat().st_mode & 0o777 == 0o600
    assert (folder / "monitoring.token").stat().st_mode & 0o777 == 0o600
    wait_all_up(address, [address], auth=("admin", PASSWORD))  # its own scrape authenticates
    written = [p for base in (folder, root / "etc") for p in base.rglob("*") if p.is_file()]
    assert not [p for p in written if PASSWORD.encode() in p.read_bytes()]
    status = ctool(folder, "status")
    assert "3/3 targets up" in status.stdout and "up, no cluster" in status.stdout, status.stdout

    with WebhookReceiver() as receiver:
        added = ctool(folder, "alert", "add", "webhook", receiver.url)
        assert added.returncode == 0, added.stdout + added.stderr
        assert cluster_json(folder)["Monitoring"]["Receivers"] == [{"Kind": "webhook", "Target": receiver.url}]
        downloaded = folder / "am.yml"
        assert ctool(folder, "alert", "configs", "download", str(downloaded)).returncode == 0
        assert receiver.url in downloaded.read_text()
        assert downloaded.read_text() == (conf / "alertmanager.yml").read_text()

        # The server stops: VoedgerServerDown fires (after its 30 s) and reaches the webhook.
        stopped = subprocess.run(
            ["supervisorctl", "-c", str(root / "etc/voedger/supervisord.conf"), "stop", "voedger"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        began = time.monotonic()
        deadline = began + 180
        while True:
            fired = [
                a
                for _t, status_, a in receiver.alerts()
                if status_ == "firing" and a["labels"]["alertname"] == "VoedgerServerDown"
            ]
            if fired:
                break
            assert time.monotonic() < deadline, receiver.received
            time.sleep(1)
        print(f"VoedgerServerDown at the webhook {time.monotonic() - began:.1f} s after the server stopped")
        assert fired[0]["labels"]["instance"] == f"{address}:8000"
        assert fired[0]["annotations"]["runbook"]

    removed = ctool(folder, "alert", "remove", "webhook", receiver.url)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert receiver.url not in (conf / "alertmanager.yml").read_text()
    again = ctool(folder, "alert", "remove", "webhook", receiver.url)
    assert again.returncode == 1 and "no webhook receiver" in again.stderr
