"""A drill: lose one Cassandra node of three under command load, and measure what it cost.

One real ``voedger server`` runs against the development cluster (``devtools.cassandra``,
three nodes, RF=3, QUORUM) serving a small application; client tasks send ``c.sys.CUD``
commands to its application workspaces and note the moment of every acknowledgement. One node
is killed with ``kill -9`` while they do. Afterwards every acknowledged command is looked up in
its workspace's WLog.

What counts is the longest time without any acknowledgement after the kill: two replicas of
three are still a quorum, so the loss of one should cost seconds at most.

Used by ``tests/cluster/test_cassandra_node_loss.py`` and ``benchmarks/cassandra_node_loss.py``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from voedger.devtools import cassandra as devcassandra
from voedger.devtools.processes import free_port, log_tail, spawn, stop_child
from voedger.storage import open_storage
from voedger.storage.cassandra import CassandraStorageFactory
from voedger.structs.logs import read_wlog
from voedger.structs.wsid import app_wsid

APP = "test/nodeloss"
TABLE = "nodeloss.Beat"
NUM_PARTITIONS = 4
NUM_APP_WORKSPACES = 4

APP_VSQL = """\
-- The node-loss drill's application: one table in the application workspaces.
APPLICATION nodeloss();

ALTER WORKSPACE sys.AppWorkspaceWS (
    TABLE Beat INHERITS sys.WDoc (
        Client int32 NOT NULL,
        Seq int32 NOT NULL
    );
);
"""

REQUEST_TIMEOUT = 30.0
"""Seconds a client waits for one answer: longer than any gap the drill is meant to find."""


def write_app(folder: Path) -> Path:
    """The drill's application folder (a VSQL package and its descriptor) under ``folder``."""
    app = folder / "nodeloss"  # the folder names the package: nodeloss.Beat
    app.mkdir(parents=True, exist_ok=True)
    (app / "app.vsql").write_text(APP_VSQL)
    (app / "descriptor.json").write_text(
        f'{{"NumParts": {NUM_PARTITIONS}, "NumAppWorkspaces": {NUM_APP_WORKSPACES}}}\n'
    )
    return app


def cluster_url(hosts: Sequence[str], suffix: str, options: str = "") -> str:
    """A ``cassandra://`` URL for all the nodes, RF=3 and QUORUM, keyspaces ending in ``suffix``."""
    extra = f"&{options}" if options else ""
    return f"cassandra://{','.join(hosts)}/?replication=3&consistency=QUORUM&keyspace_suffix={suffix}{extra}"


def fresh_suffix() -> str:
    """A keyspace suffix (5 characters) no other run uses."""
    return "n" + uuid.uuid4().hex[:4]


@dataclass(frozen=True, slots=True)
class Ack:
    """One acknowledged command: when the answer came, and where its event is."""

    at: float
    wsid: int
    offset: int
    client: int
    seq: int


@dataclass(slots=True)
class Load:
    """What the clients saw: acknowledgements in order, and the failures by kind."""

    acks: list[Ack] = field(default_factory=list)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    first_failure: str = ""
    """What the first failure said (the answer's body, or the exception)."""

    def fail(self, kind: str, detail: str) -> None:
        self.failures[kind] += 1
        if not self.first_failure:
            self.first_failure = f"{kind}: {detail[:300]}"


@dataclass(frozen=True, slots=True)
class KillReport:
    """One kill: the longest time without an acknowledgement, and the rates around it."""

    victim: int
    longest_gap: float
    gap_began: float
    """Seconds after the kill at which the longest gap began (negative: before it)."""
    rate_before: float
    rate_during: float
    acked_during: int
    failures: dict[str, int]


def longest_gap(acks: Sequence[Ack], killed_at: float, ended_at: float) -> tuple[float, float]:
    """The longest stretch without an acknowledgement from the last one before the kill up to
    ``ended_at`` (a stretch still open at the end counts); and where it began, from the kill."""
    times = sorted(a.at for a in acks)
    before = [t for t in times if t < killed_at]
    previous = before[-1] if before else killed_at
    gap, began = 0.0, previous
    for t in [t for t in times if t >= killed_at] + [ended_at]:
        if t - previous > gap:
            gap, began = t - previous, previous
        previous = max(previous, t)
    return gap, began - killed_at


def rate(acks: Sequence[Ack], start: float, end: float) -> float:
    """Acknowledgements per second within [start, end)."""
    if end <= start:
        return 0.0
    return sum(1 for a in acks if start <= a.at < end) / (end - start)


class Server:
    """One ``voedger server`` process on the cluster, with its log in ``workdir``."""

    def __init__(self, workdir: Path, url: str, python: str = sys.executable) -> None:
        self.workdir = workdir
        self.url = url
        self.port = free_port()
        self.log = workdir / "server.log"
        self.app_dir = write_app(workdir)
        self._python = python
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 180.0) -> None:
        cmd = [
            self._python,
            "-m",
            "voedger.cli.voedger",
            "server",
            "--data-dir",
            str(self.workdir / "data"),
            "--storage",
            self.url,
            "--port",
            str(self.port),
            "--insecure-dev",
            "--app",
            f"{APP}={self.app_dir}",
        ]
        self.proc = spawn(cmd, self.log)
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited during start:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{self.base_url}/api/check")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start within {timeout:.0f} s:\n{self.log_tail()}")
                await asyncio.sleep(0.2)

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace``; the exit code (None if it never started)."""
        if self.proc is None:
            return None
        return stop_child(self.proc, grace, None)

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log, lines, "(no server log)")


def workspaces() -> list[int]:
    """The application workspaces the clients write to (one per partition here)."""
    return [app_wsid(1, n) for n in range(NUM_APP_WORKSPACES)]


async def run_load(base_url: str, clients: int, stop: asyncio.Event, load: Load) -> None:
    """``clients`` tasks sending commands one after another until ``stop`` is set."""
    targets = workspaces()

    async def client(k: int) -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT, limits=limits) as c:
            seq = 0
            while not stop.is_set():
                wsid = targets[(k + seq) % len(targets)]
                body = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": TABLE, "Client": k, "Seq": seq}}]}
                try:
                    r = await c.post(f"/api/{APP}/{wsid}/c.sys.CUD", json=body)
                except httpx.HTTPError as exc:
                    load.fail(type(exc).__name__, str(exc))
                    await asyncio.sleep(0.05)
                    continue
                if r.status_code == 200:
                    load.acks.append(Ack(time.monotonic(), wsid, int(r.json()["CurrentWLogOffset"]), k, seq))
                else:
                    load.fail(f"HTTP {r.status_code}", r.text)
                    await asyncio.sleep(0.05)
                seq += 1

    await asyncio.gather(*(client(k) for k in range(clients)))


@contextlib.asynccontextmanager
async def loaded(base_url: str, clients: int) -> AsyncIterator[Load]:
    """Load running for the body of the ``async with``; stopped (and awaited) after it."""
    load = Load()
    stop = asyncio.Event()
    task = asyncio.create_task(run_load(base_url, clients, stop, load))
    try:
        yield load
    finally:
        stop.set()
        await task


async def kill(victim: int) -> float:
    """``kill -9`` node ``victim`` of the cluster; the moment of the kill (monotonic)."""
    killed_at = time.monotonic()
    pid = await asyncio.to_thread(devcassandra.kill_node, victim)
    if pid is None:
        raise RuntimeError(f"node{victim} was not running: the drill needs the whole cluster")
    return killed_at


async def restart(victim: int, timeout: float = devcassandra.DEFAULT_TIMEOUT) -> None:
    """Start the node again and wait until the ring is whole (every node sees every other)."""
    if devcassandra.node_pid(devcassandra.cluster_node(victim)) is None:
        await asyncio.to_thread(devcassandra.start_node, victim, timeout)


async def wait_for_whole_ring(timeout: float = devcassandra.DEFAULT_TIMEOUT) -> None:
    nodes = devcassandra.cluster_nodes()
    await asyncio.to_thread(devcassandra.wait_for_ring, nodes, time.monotonic() + timeout)


async def lost_acks(url: str, acks: Sequence[Ack]) -> list[Ack]:
    """The acknowledged commands whose event is not in their workspace's WLog (at QUORUM)."""
    provider = open_storage(url)
    try:
        storage = await provider.app_storage(APP)
        by_ws: dict[int, dict[int, tuple[int, int]]] = {}
        for wsid in {a.wsid for a in acks}:
            events: dict[int, tuple[int, int]] = {}
            async for event in read_wlog(storage, wsid):
                for cud in event.cuds:
                    if cud.qname == TABLE and cud.is_new:
                        events[event.wlog_offset] = (int(cud.fields["Client"]), int(cud.fields["Seq"]))
            by_ws[wsid] = events
        return [a for a in acks if by_ws.get(a.wsid, {}).get(a.offset) != (a.client, a.seq)]
    finally:
        await provider.close()


async def drop_keyspaces(hosts: Sequence[str], suffix: str) -> list[str]:
    """Drop every keyspace ending in ``suffix`` (all of them made by one drill)."""
    factory = await CassandraStorageFactory.connect(list(hosts), keyspace_suffix=suffix)
    try:
        return await factory.drop_all()
    finally:
        await factory.close()


def report(victim: int, load: Load, killed_at: float, ended_at: float, before: float) -> KillReport:
    """The figures of one kill, from the acknowledgements of the load around it."""
    gap, began = longest_gap(load.acks, killed_at, ended_at)
    return KillReport(
        victim=victim,
        longest_gap=gap,
        gap_began=began,
        rate_before=rate(load.acks, killed_at - before, killed_at),
        rate_during=rate(load.acks, killed_at, ended_at),
        acked_during=sum(1 for a in load.acks if killed_at <= a.at < ended_at),
        failures=dict(load.failures),
    )


def cluster_hosts_from_env(env: str = "VOEDGER_TEST_CLUSTER") -> list[str]:
    value = os.environ.get(env, "")
    return [h.strip() for h in value.split(",") if h.strip()]
