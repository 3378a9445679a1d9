"""Real ``voedger server`` processes on loopback, and the faults a scenario does to them.

A :class:`Harness` starts N server processes on one storage, each on its own port of 127.0.0.1
with its log in a file of the work directory, and then stops (SIGTERM), kills (SIGKILL),
pauses (SIGSTOP), resumes (SIGCONT), restarts or adds them. It also decides where the load may
go: a process is *routed* while it should get requests, as a load balancer in front of the
cluster would decide from its health checks. A process is taken out of the routing before it is
stopped (with a short drain, as a load balancer deregisters a target), and put back once it
answers ``GET /api/check`` again.

Cluster mode (issue 13) passes ``--advertise http://127.0.0.1:PORT`` and ``--lease-ttl``: the
options by which a process joins a cluster of processes sharing one storage. Until ``voedger
server --help`` lists them, :func:`require_cluster_options` skips what needs them.

Everything started is ended by pid in :meth:`Harness.close`, however the test went.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

import httpx
import pytest

from tests.support import free_port

HOST = "127.0.0.1"
CLUSTER_OPTIONS = ("--advertise", "--lease-ttl")

RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"
KILLED = "killed"
EXITED = "exited"
_HOST_DOWN = re.compile(r"Host (\S+) has been marked down")
"""The process ended by itself (a crash, or a refusal at start)."""


def server_command() -> list[str]:
    """How to run ``voedger server`` with this interpreter (and so the build a tier runs)."""
    return [sys.executable, "-m", "voedger.cli.voedger", "server"]


@functools.cache
def server_help() -> str:
    done = subprocess.run([*server_command(), "--help"], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def missing_cluster_options() -> list[str]:
    """The cluster options ``voedger server --help`` does not list (yet)."""
    text = server_help()
    return [o for o in CLUSTER_OPTIONS if o not in text]


def require_cluster_options() -> None:
    """Skip the calling test until the server can run as one process of several."""
    missing = missing_cluster_options()
    if missing:
        pytest.skip(
            f"`voedger server --help` lists no {', '.join(missing)}: several processes serving one "
            "cluster (issue 13) are not there yet"
        )


class Target(NamedTuple):
    """Where the load may send a request: a routed process (``generation`` counts its starts, so
    that a client drops connections made to an earlier incarnation)."""

    name: str
    url: str
    generation: int


@dataclass
class ServerProcess:
    name: str
    port: int
    log_path: Path
    metrics_port: int | None = None
    """Its ``--metrics-port`` (``/metrics``, ``/api/cluster``, ``/monitor``), if the harness gives one."""
    proc: subprocess.Popen[bytes] | None = None
    state: str = STOPPED
    routed: bool = False
    generation: int = 0
    """How many times it was started."""
    exit_codes: list[int] = field(default_factory=list)
    """The return code of each run that ended."""
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class Harness:
    """Server processes of one cluster (or one process), on one storage URL."""

    def __init__(
        self,
        workdir: Path,
        storage_url: str,
        apps: Sequence[tuple[str, Path]],
        *,
        cluster: bool = False,
        lease_ttl: float | None = None,
        extra_args: Sequence[str] = (),
        ready_timeout: float = 120.0,
        drain: float = 0.5,
        metrics: bool = False,
    ) -> None:
        self.workdir = workdir
        self.storage_url = storage_url
        self.apps = list(apps)
        self.cluster = cluster
        self.lease_ttl = lease_ttl
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.drain = drain
        """Seconds between taking a process out of the routing and stopping it."""
        self.metrics = metrics
        """Give every process a metrics port of its own."""
        self.processes: list[ServerProcess] = []

    # --- starting ------------------------------------------------------------------------------

    def command(self, p: ServerProcess) -> list[str]:
        cmd = [*server_command(), "--storage", self.storage_url, "--host", HOST, "--port", str(p.port)]
        cmd.append("--insecure-dev")
        for name, directory in self.apps:
            cmd += ["--app", f"{name}={directory}"]
        if p.metrics_port is not None:
            cmd += ["--metrics-port", str(p.metrics_port)]
        if self.cluster:
            cmd += ["--advertise", p.url]
            if self.lease_ttl is not None:
                cmd += ["--lease-ttl", f"{self.lease_ttl:g}"]
        return cmd + self.extra_args

    def new_process(self) -> ServerProcess:
        n = len(self.processes)
        p = ServerProcess(f"p{n}", free_port(), self.workdir / f"p{n}.log", free_port() if self.metrics else None)
        self.processes.append(p)
        return p

    def spawn(self, p: ServerProcess) -> None:
        """Start ``p``'s process (not waiting for it); its output is appended to its log."""
        assert not p.alive(), f"{p.name} is running already"
        if p._log is not None:
            p._log.close()
        p._log = open(p.log_path, "ab")  # noqa: SIM115 - the process writes it until it ends
        p.generation += 1
        p._log.write(f"\n===== {p.name} start {p.generation} at {time.strftime('%H:%M:%S')}\n".encode())
        p._log.flush()
        p.proc = subprocess.Popen(self.command(p), stdout=p._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        p.state = RUNNING

    async def wait_ready(self, p: ServerProcess, timeout: float | None = None) -> float:
        """Seconds until ``p`` answers ``GET /api/check`` with 200; fails if it exits first."""
        began = time.monotonic()
        deadline = began + (timeout or self.ready_timeout)
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if not p.alive():
                    self._ended(p, EXITED)
                    raise AssertionError(f"{p.name} exited during its start:\n{p.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{p.url}/api/check")).status_code == 200:
                        return time.monotonic() - began
                if time.monotonic() > deadline:
                    raise AssertionError(f"{p.name} did not get ready in {timeout or self.ready_timeout} s")
                await asyncio.sleep(0.1)

    async def start_process(self, p: ServerProcess) -> ServerProcess:
        self.spawn(p)
        await self.wait_ready(p)
        p.routed = True
        return p

    async def start(self, count: int) -> list[ServerProcess]:
        """Start ``count`` processes: the first alone (it creates the storage), then the others
        together; each is routed once ready."""
        new = [self.new_process() for _ in range(count)]
        if new:
            await self.start_process(new[0])
            await asyncio.gather(*(self.start_process(p) for p in new[1:]))
        return new

    async def add(self) -> ServerProcess:
        """One more process (a node joining)."""
        return await self.start_process(self.new_process())

    # --- faults --------------------------------------------------------------------------------

    def unroute(self, p: ServerProcess) -> None:
        p.routed = False

    async def stop(self, p: ServerProcess, timeout: float = 60.0) -> int:
        """Take ``p`` out of the routing, let the requests sent to it drain, SIGTERM it and wait
        for it to exit; returns its exit code."""
        self.unroute(p)
        await asyncio.sleep(self.drain)
        assert p.proc is not None and p.alive(), f"{p.name} is not running"
        if p.state == PAUSED:
            p.proc.send_signal(signal.SIGCONT)
        p.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(p.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{p.name} did not stop within {timeout} s of SIGTERM:\n{p.log_tail()}") from None
        self._ended(p, STOPPED)
        return code

    def kill(self, p: ServerProcess) -> None:
        """``kill -9``: no drain, no goodbye; the routing forgets it at once."""
        self.unroute(p)
        assert p.proc is not None and p.alive(), f"{p.name} is not running"
        os.kill(p.proc.pid, signal.SIGKILL)
        p.proc.wait()
        self._ended(p, KILLED)

    def pause(self, p: ServerProcess, *, keep_routed: bool = False) -> None:
        """SIGSTOP: the process stays, its sockets accept, nothing answers. A load balancer
        would stop routing to it after a failed health check; ``keep_routed`` does not."""
        assert p.proc is not None and p.alive(), f"{p.name} is not running"
        if not keep_routed:
            self.unroute(p)
        os.kill(p.proc.pid, signal.SIGSTOP)
        p.state = PAUSED

    async def resume(self, p: ServerProcess) -> float:
        """SIGCONT, then route it again once it answers; returns the seconds until it did."""
        assert p.proc is not None and p.state == PAUSED, f"{p.name} is not paused"
        os.kill(p.proc.pid, signal.SIGCONT)
        p.state = RUNNING
        took = await self.wait_ready(p)
        p.routed = True
        return took

    async def restart(self, p: ServerProcess) -> float:
        """Start a stopped or killed process again on its port; returns seconds until ready."""
        self.spawn(p)
        took = await self.wait_ready(p)
        p.routed = True
        return took

    def _ended(self, p: ServerProcess, state: str) -> None:
        p.routed = False
        p.state = state
        if p.proc is not None and p.proc.returncode is not None:
            p.exit_codes.append(p.proc.returncode)

    # --- where the load goes ------------------------------------------------------------------

    def targets(self) -> list[Target]:
        """The routed processes (a paused one only if it was paused with ``keep_routed``)."""
        return [Target(p.name, p.url, p.generation) for p in self.processes if p.routed]

    def running(self) -> list[ServerProcess]:
        return [p for p in self.processes if p.alive()]

    def describe(self) -> str:
        """Each process's state and log file, for an assertion message."""
        return "\n".join(
            f"{p.name} pid {p.pid} {p.state} exits {p.exit_codes} log {p.log_path}" for p in self.processes
        )

    def storage_nodes_down(self) -> list[str]:
        """The Cassandra hosts the servers' driver marked down, from their logs."""
        found: set[str] = set()
        for p in self.processes:
            if p.log_path.exists():
                found.update(_HOST_DOWN.findall(p.log_path.read_text(errors="replace")))
        return sorted(found)

    # --- teardown ------------------------------------------------------------------------------

    async def close(self, timeout: float = 20.0) -> None:
        """End every process still alive, by its pid: SIGTERM (after SIGCONT if paused), and
        SIGKILL for one that does not exit within ``timeout``."""
        alive = [p for p in self.processes if p.alive()]
        for p in alive:
            assert p.proc is not None
            with contextlib.suppress(ProcessLookupError):
                if p.state == PAUSED:
                    os.kill(p.proc.pid, signal.SIGCONT)
                os.kill(p.proc.pid, signal.SIGTERM)

        async def finish(p: ServerProcess) -> None:
            assert p.proc is not None
            try:
                await asyncio.to_thread(p.proc.wait, timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.proc.pid, signal.SIGKILL)
                p.proc.wait()
            self._ended(p, STOPPED)

        try:
            await asyncio.gather(*(finish(p) for p in alive))
        finally:
            for p in self.processes:  # even if waiting was cancelled
                if p.alive() and p.proc is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.proc.pid, signal.SIGKILL)
                    p.proc.wait()
                if p._log is not None:
                    p._log.close()
                    p._log = None
