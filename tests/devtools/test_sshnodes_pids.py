"""The test-node harness signals only the processes its pid files record (no sshd needed)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from voedger.ctool import layout
from voedger.devtools import sshnodes

Sleeper = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def sleeper() -> Iterator[Sleeper]:
    """Starts harmless processes whose command lines end with the given words; ends them after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*words: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *words])
        started.append(proc)
        # Until the child has exec'd, /proc/<pid>/cmdline is still pytest's own (fork, then exec),
        # and the harness reads it: return once the child's own command line is there.
        cmdline = Path(f"/proc/{proc.pid}/cmdline")
        deadline = time.monotonic() + 10
        while words[-1].encode() not in cmdline.read_bytes():
            assert time.monotonic() < deadline, "the child never showed its command line"
            time.sleep(0.01)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_stop_services_stops_the_recorded_supervisord_only(tmp_path: Path, sleeper: Sleeper) -> None:
    node = sshnodes.nodes(tmp_path, 1).nodes[0]
    conf = layout.under(str(node.root), layout.SUPERVISORD_CONF)
    pid_file = Path(layout.under(str(node.root), layout.SUPERVISORD_PID))
    pid_file.parent.mkdir(parents=True)
    assert sshnodes.stop_services(node) is False  # no pid file
    other = sleeper("-c", "/elsewhere/supervisord.conf")
    supervisord = sleeper("-c", conf)
    pid_file.write_text(f"{other.pid}\n")
    assert sshnodes.stop_services(node) is False
    assert other.poll() is None
    pid_file.write_text(f"{supervisord.pid}\n")
    assert sshnodes.stop_services(node, timeout=10) is True
    supervisord.wait(timeout=10)  # reaped by the harness already: the exit code is not ours to see
    assert not Path(f"/proc/{supervisord.pid}").exists()


def test_node_pid_and_stop_node_need_the_nodes_own_config(tmp_path: Path, sleeper: Sleeper) -> None:
    node = sshnodes.nodes(tmp_path, 1).nodes[0]
    node.etc.mkdir(parents=True)
    impostor = sleeper("-f", "/elsewhere/sshd_config")
    listener = sleeper("-f", str(node.config_file))
    node.pid_file.write_text(f"{impostor.pid}\n")
    assert sshnodes.node_pid(node) is None
    assert sshnodes.stop_node(node) is False
    assert impostor.poll() is None
    node.pid_file.write_text(f"{listener.pid}\n")
    assert sshnodes.node_pid(node) == listener.pid
    assert sshnodes.stop_node(node, timeout=10, cut_sessions=False) is True
    assert not node.pid_file.exists()
    listener.wait(timeout=10)
    assert not Path(f"/proc/{listener.pid}").exists()
