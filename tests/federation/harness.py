"""A federation of real server processes on loopback: a main cluster and workers, each one
process with its own SQLite data directory, set up with ``voedger federation`` as an operator
would (directory entries and the secret file), then started with ``voedger server``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.router.conftest import SHOP_DIR
from tests.support import free_port, wait_ready

SHOP = "test/shop"


def voedger(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``voedger`` CLI; its output and exit code."""
    return subprocess.run(
        [sys.executable, "-m", "voedger.cli.voedger", *args], capture_output=True, text=True, timeout=60
    )


@dataclass
class ClusterProcess:
    cluster_id: int
    home: Path
    port: int
    insecure: bool
    main_port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    extra: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    cassandra: str | None = None
    """Cassandra contact points: the cluster keeps its data in keyspaces of its own there
    (a suffix per cluster); None: SQLite in its home."""

    @property
    def storage(self) -> str:
        if self.cassandra is not None:
            return f"cassandra://{self.cassandra}/?replication=1&keyspace_suffix={self.keyspace_suffix}"
        return f"sqlite://{self.home / 'data'}"

    tag: str = ""
    """Makes this federation's keyspaces its own (3 hex digits)."""

    @property
    def keyspace_suffix(self) -> str:
        return f"f{self.tag}{self.cluster_id}"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    async def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "voedger.cli.voedger",
            "server",
            "--data-dir",
            str(self.home / "data"),
            *(["--storage", self.storage] if self.cassandra is not None else []),
            "--port",
            str(self.port),
            "--app",
            f"{SHOP}={SHOP_DIR}",
            "--cluster-id",
            str(self.cluster_id),
            *self.extra,
        ]
        if self.insecure:
            cmd.append("--insecure-dev")
        if self.main_port is None:
            cmd.append("--federated")
        else:
            cmd += ["--main", f"http://127.0.0.1:{self.main_port}", "--federation-secret-file", str(self.secret_file)]
        self.starts += 1
        with open(self.log, "ab") as out:
            out.write(f"\n===== start {self.starts}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=out)
        await wait_ready(self.port, self.proc)

    @property
    def secret_file(self) -> Path:
        return self.home.parent / "federation.secret"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=60)
        self.proc = None


class Federation:
    """Clusters 1 (main), 2, 3, ... of one federation under ``root``."""

    def __init__(self, root: Path, size: int = 3, insecure: bool = False, cassandra: str | None = None) -> None:
        self.root = root
        ports = [free_port() for _ in range(size)]
        tag = uuid.uuid4().hex[:3]
        self.clusters: dict[int, ClusterProcess] = {}
        self.internal_urls: dict[int, str] = {}
        """Where other clusters forward to, when not the cluster's own URL (a delaying proxy)."""
        for i in range(1, size + 1):
            home = root / f"cluster{i}"
            home.mkdir(parents=True)
            self.clusters[i] = ClusterProcess(i, home, ports[i - 1], insecure, None if i == 1 else ports[0])
            self.clusters[i].cassandra = cassandra
            self.clusters[i].tag = tag

    @property
    def main(self) -> ClusterProcess:
        return self.clusters[1]

    def configure(self) -> None:
        """The operator's steps on the main cluster's storage: every cluster in the directory,
        the secret in a file for the workers."""
        regions = {1: "eu-central", 2: "us-east", 3: "ap-south"}
        for c in self.clusters.values():
            done = voedger(
                "federation",
                "add-cluster",
                "--storage",
                self.main.storage,
                "--id",
                str(c.cluster_id),
                "--name",
                f"cluster{c.cluster_id}",
                "--region",
                regions.get(c.cluster_id, f"region{c.cluster_id}"),
                "--public-url",
                c.url,
                "--internal-url",
                self.internal_urls.get(c.cluster_id, c.url),
            )
            assert done.returncode == 0, done.stderr
        done = voedger("federation", "secret", "--storage", self.main.storage, "--out", str(self.main.secret_file))
        assert done.returncode == 0, done.stderr

    async def start(self) -> None:
        self.configure()
        for c in self.clusters.values():
            await c.start()

    def stop(self) -> None:
        for c in reversed(list(self.clusters.values())):
            c.stop()

    async def drop_keyspaces(self) -> None:
        """The Cassandra keyspaces of every cluster (left behind, they pile up on the shared node)."""
        from voedger.storage.cassandra import CassandraStorageFactory

        for c in self.clusters.values():
            if c.cassandra is None:
                continue
            factory = await CassandraStorageFactory.connect(c.cassandra.split(","), keyspace_suffix=c.keyspace_suffix)
            try:
                await factory.drop_all()
            finally:
                await factory.close()

    def tracebacks(self) -> list[str]:
        return [
            f"cluster {c.cluster_id}"
            for c in self.clusters.values()
            if c.log.exists() and "Traceback" in c.log.read_text(errors="replace")
        ]
