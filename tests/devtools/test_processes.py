"""The development tools' process helpers, on harmless Python children started and ended here."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voedger.devtools import processes as pr

_SLEEP = "import time; time.sleep(60)"
_STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", _SLEEP, "--marker=sleeper"])
    # Until the child has exec'd, /proc/<pid>/cmdline is still pytest's own (fork, then exec):
    # the test reads the command line, so it starts once the child's is there.
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    deadline = time.monotonic() + 10
    while b"--marker=sleeper" not in cmdline.read_bytes():
        assert time.monotonic() < deadline, "the child never showed its command line"
        time.sleep(0.01)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_recorded_pid_needs_a_live_process_naming_the_marker(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    pid_file = tmp_path / "x.pid"
    assert pr.read_pid(pid_file) is None and pr.recorded_pid(pid_file, "--marker") is None
    pid_file.write_text("not a pid\n")
    assert pr.read_pid(pid_file) is None and pr.recorded_pid(pid_file, "--marker") is None
    pid_file.write_text(f"{sleeper.pid}\n")
    assert pr.read_pid(pid_file) == sleeper.pid
    assert pr.recorded_pid(pid_file, "--marker=sleeper") == sleeper.pid
    assert pr.recorded_pid(pid_file, "--marker=other") is None
    sleeper.kill()
    assert pr.wait_gone(sleeper.pid, 10)  # reaps our own child: no zombie counts as alive
    assert not pr.pid_is_alive(sleeper.pid)
    assert pr.recorded_pid(pid_file, "--marker=sleeper") is None


def test_wait_gone_gives_up_after_its_timeout(sleeper: subprocess.Popen[bytes]) -> None:
    began = time.monotonic()
    assert not pr.wait_gone(sleeper.pid, 0.3)
    assert time.monotonic() - began >= 0.3
    assert pr.pid_is_alive(sleeper.pid)


def test_stop_pid_ends_a_process_with_sigterm(sleeper: subprocess.Popen[bytes]) -> None:
    kills: list[float] = []
    pr.stop_pid(sleeper.pid, 10, poll=0.02, on_kill=kills.append)
    assert not pr.pid_is_alive(sleeper.pid)
    assert kills == []


def test_stop_pid_kills_what_ignores_sigterm_after_the_grace() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _STUBBORN], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"up\n"  # SIGTERM is ignored from here
        kills: list[float] = []
        began = time.monotonic()
        pr.stop_pid(proc.pid, 0.3, poll=0.02, kill_grace=5, on_kill=kills.append)
        assert time.monotonic() - began >= 0.3
        assert kills == [0.3]
        assert not pr.pid_is_alive(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_stop_pid_after_the_caller_signalled(sleeper: subprocess.Popen[bytes]) -> None:
    kills: list[float] = []
    pr.stop_pid(sleeper.pid, 0.3, signalled=True, poll=0.02, on_kill=kills.append)  # no SIGTERM: SIGKILL at 0.3 s
    assert kills == [0.3]
    assert not pr.pid_is_alive(sleeper.pid)


def test_stop_child_terminates_then_kills(tmp_path: Path) -> None:
    proc = pr.spawn([sys.executable, "-c", "print('hello', flush=True); " + _SLEEP], tmp_path / "out.log")
    while not pr.log_tail(tmp_path / "out.log", 5):
        time.sleep(0.02)
    assert pr.stop_child(proc, 5, None) == -15
    assert pr.log_tail(tmp_path / "out.log", 5) == "hello"
    stubborn = pr.spawn([sys.executable, "-c", _STUBBORN], tmp_path / "stubborn.log")
    try:
        while "up" not in pr.log_tail(tmp_path / "stubborn.log", 1):
            time.sleep(0.02)
        assert pr.stop_child(stubborn, 0.3, 5) == -9
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
        stubborn.wait()
    assert pr.log_tail(tmp_path / "missing.log", 5, "(none)") == "(none)"


def test_ports() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = int(server.getsockname()[1])
        assert pr.port_open("127.0.0.1", port)
    free = pr.free_port()
    assert not pr.port_open("127.0.0.1", free, timeout=0.5)


class _Error(RuntimeError):
    pass


class _Touch(pr.Daemon):
    """A daemon that is ready once it has written ``ready`` in its folder (after ``delay`` s)."""

    name = "touch"
    error = _Error
    keeps_pid_file = True
    stop_grace = 5.0

    def __init__(self, workdir: Path, script: str) -> None:
        super().__init__(workdir)
        self.script = script

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script, str(self.workdir / "ready")]

    def ready(self) -> bool:
        if not (self.workdir / "ready").exists():
            raise ConnectionRefusedError  # an OSError: not yet
        return True


def test_daemon_starts_records_its_pid_and_stops(tmp_path: Path) -> None:
    script = "import pathlib, sys, time; print('starting', flush=True); pathlib.Path(sys.argv[1]).touch(); " + _SLEEP
    with _Touch(tmp_path / "d", script) as daemon:
        assert daemon.proc is not None
        pid = daemon.proc.pid
        assert pr.read_pid(daemon.pid_file) == pid
        assert daemon.tail() == "starting"
    assert daemon.proc is None and not daemon.pid_file.exists()
    assert not pr.pid_is_alive(pid)


def test_daemon_that_exits_or_never_gets_ready_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(_Error, match=r"touch exited at start:\nbroken"):
        _Touch(tmp_path / "a", "print('broken'); raise SystemExit(3)").start(timeout=10)
    slow = _Touch(tmp_path / "b", _SLEEP)
    with pytest.raises(_Error, match=r"touch did not get ready in 0\.5 s"):
        slow.start(timeout=0.5)
    assert slow.proc is None and not slow.pid_file.exists()
