"""The processes the development tools start and stop, and the ports they wait for.

Every tool here signals only processes it started: a child it holds (:class:`Daemon`,
:func:`stop_child`) or a pid it recorded in a pid file, checked against the process's command
line before it is signalled (:func:`recorded_pid`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Self

# --------------------------------------------------------------------------------------------
# Pids


def pid_is_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie has finished); reaps it if it is our own child."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name.
    return stat.rpartition(")")[2].split()[0] != "Z"


def read_pid(pid_file: Path) -> int | None:
    """The pid written in ``pid_file``, or None if there is none."""
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def recorded_pid(pid_file: Path, marker: str) -> int | None:
    """The pid in ``pid_file`` if that process is alive and its command line holds ``marker``
    (a path only the process this tool started names), else None."""
    pid = read_pid(pid_file)
    if pid is None or not pid_is_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None
    return pid if marker in cmdline else None


def wait_gone(pid: int, timeout: float, poll: float = 0.05) -> bool:
    """Wait up to ``timeout`` seconds for process ``pid`` to end; True if it did."""
    deadline = time.monotonic() + timeout
    while pid_is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def stop_pid(
    pid: int,
    grace: float,
    *,
    signalled: bool = False,
    poll: float = 0.1,
    kill_grace: float | None = None,
    on_kill: Callable[[float], None] | None = None,
) -> None:
    """SIGTERM process ``pid`` (unless ``signalled``: the caller has) and wait for it to end;
    SIGKILL it each time ``grace`` seconds pass (``kill_grace`` after the first SIGKILL, if
    given). ``on_kill`` hears the grace that ran out before each SIGKILL."""
    if not signalled:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pid_is_alive(pid):
        if time.monotonic() > deadline:
            if on_kill is not None:
                on_kill(grace)
            os.kill(pid, signal.SIGKILL)
            if kill_grace is not None:
                grace = kill_grace
            deadline = time.monotonic() + grace
        time.sleep(poll)


# --------------------------------------------------------------------------------------------
# Ports


def port_open(address: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``address``:``port``."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` just now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# Children


def spawn(command: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``command`` as a child with no input, its output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)


def stop_child(proc: subprocess.Popen[bytes], grace: float, kill_wait: float | None) -> int | None:
    """SIGTERM ``proc`` if it runs, SIGKILL it after ``grace`` seconds and wait ``kill_wait``
    more (None: as long as it takes); its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(kill_wait)
    return proc.returncode


def log_tail(log: Path, lines: int, missing: str = "") -> str:
    """The last ``lines`` lines of ``log``; ``missing`` if it cannot be read."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return missing


class Daemon:
    """A program a tool starts in ``workdir``, its output going to ``{name}.log`` there, ready
    once :meth:`ready` says so; stopped by its pid. Subclasses name it, give its command and its
    readiness check, and the error raised when it fails to start."""

    name: ClassVar[str] = ""
    error: ClassVar[type[Exception]] = RuntimeError
    stop_grace: ClassVar[float] = 10.0
    keeps_pid_file: ClassVar[bool] = False
    """Whether ``{name}.pid`` in ``workdir`` records the running process (for a later stop)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.workdir / f"{self.name}.pid"

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The program's environment; None: this process's."""
        return None

    def ready(self) -> bool:
        """Whether the program serves yet; an ``OSError`` (a refused connection) means not yet."""
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(self.command(), self.log, self.environment())
        if self.keeps_pid_file:
            self.pid_file.write_text(f"{self.proc.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self.error(f"{self.name} exited at start:\n{self.tail()}")
            try:
                if self.ready():
                    return
            except OSError:  # urllib's URLError too
                pass
            time.sleep(0.1)
        self.stop()
        raise self.error(f"{self.name} did not get ready in {timeout} s:\n{self.tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if self.keeps_pid_file:
            self.pid_file.unlink(missing_ok=True)
        if proc is not None:
            stop_child(proc, self.stop_grace, self.stop_grace)

    def tail(self, lines: int = 30) -> str:
        return log_tail(self.log, lines)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
