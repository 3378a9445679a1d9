"""Runs a real Apache Cassandra 5.0 (one node, or a cluster of three) for development and tests.

The project's principle is that tests needing Cassandra run the real program, so this module
fetches ``cassandra-all`` and its runtime dependencies with Maven (cached under ``.devdata/``),
writes each node's ``cassandra.yaml`` and logback configuration itself, and launches
``CassandraDaemon`` directly on the machine's Java 17 with small heaps.

Usage::

    python -m voedger.devtools.cassandra start|stop|status [--nodes 1|3]
    python -m voedger.devtools.cassandra kill --node 2        # kill -9, for failure tests
    python -m voedger.devtools.cassandra start-node --node 2  # restart one node of the cluster

The single node listens on 127.0.0.1:9042; the cluster's nodes on 127.0.0.1, 127.0.0.2 and
127.0.0.3, all on port 9042, so the two cannot run at once. Only processes recorded in this
module's pid files are ever signalled.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voedger.devtools.processes import port_open, recorded_pid, stop_pid, wait_gone

CASSANDRA_VERSION = "5.0.9"
"""The newest 5.0.x that Maven Central serves with all its dependencies (checked when written)."""

CQL_PORT = 9042
STORAGE_PORT = 7000
CLUSTER_SIZE = 3
DEFAULT_TIMEOUT = 240.0
"""Seconds to wait for one node's CQL port (and, for the cluster, for the ring to form)."""

STOP_GRACE = 30.0
"""Seconds between SIGTERM and SIGKILL: Cassandra drains on SIGTERM, which is quick when idle."""

_POM = Path(__file__).with_name("cassandra-pom.xml")

# Initial tokens spread evenly over the Murmur3 ring: with one token per node and RF=3 every node
# holds everything anyway, and fixed tokens let nodes 2 and 3 join at the same time without
# bootstrapping (the ring starts empty, so there is nothing to stream).
_CLUSTER_TOKENS = ("-9223372036854775808", "-3074457345618258603", "3074457345618258602")

# The JPMS flags from Cassandra's jvm17-server.options (plus the few opens its 5.0 libraries use),
# needed because Cassandra reaches into JDK internals on Java 17.
_JPMS_FLAGS = (
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-exports=java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.management/com.sun.jmx.remote.security=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.nio.charset=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
)
JPMS_FLAGS = _JPMS_FLAGS
"""The JVM flags Cassandra's classes need on Java 17 (its tools', such as nodetool, too)."""


class CassandraDevError(RuntimeError):
    """Starting, stopping or probing the development Cassandra failed; the message says why."""


@dataclass(frozen=True, slots=True)
class Node:
    """One Cassandra process of the single-node setup or of the three-node cluster."""

    name: str
    address: str
    home: Path
    cluster_name: str
    seeds: str
    jmx_port: int
    initial_token: str | None
    auto_bootstrap: bool

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def yaml_file(self) -> Path:
        return self.conf_dir / "cassandra.yaml"

    @property
    def pid_file(self) -> Path:
        return self.home / "cassandra.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "system.log"

    @property
    def console_file(self) -> Path:
        """The JVM's stdout and stderr: crashes before logging starts land here."""
        return self.home / "logs" / "console.log"


# --------------------------------------------------------------------------------------------
# Locations


def devdata_dir() -> Path:
    """The project's ignored ``.devdata`` folder (``VOEDGER_DEVDATA`` overrides it).

    The project root is the nearest folder above this file (editable install) or above the
    working directory that holds ``pyproject.toml``.
    """
    override = os.environ.get("VOEDGER_DEVDATA")
    if override:
        return Path(override).resolve()
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            if (folder / "pyproject.toml").is_file() and (folder / "src" / "voedger").is_dir():
                return folder / ".devdata"
    return Path.cwd().resolve() / ".devdata"


def cassandra_dir() -> Path:
    return devdata_dir() / "cassandra"


def single_node() -> Node:
    """The one-node setup used by the contract tests and ``make run`` with Cassandra."""
    return Node(
        name="single",
        address="127.0.0.1",
        home=cassandra_dir() / "single",
        cluster_name="voedger-dev-single",
        seeds=f"127.0.0.1:{STORAGE_PORT}",
        jmx_port=7199,
        initial_token=None,
        auto_bootstrap=True,
    )


def cluster_nodes() -> list[Node]:
    """The three nodes of the cluster.

    Every node is a seed, so that any of them restarts on its own without waiting for another
    to answer its gossip (a small dev cluster has no reason to single one out).
    """
    return [
        Node(
            name=f"node{i}",
            address=f"127.0.0.{i}",
            home=cassandra_dir() / "cluster" / f"node{i}",
            cluster_name="voedger-dev-cluster",
            seeds=",".join(f"127.0.0.{j}:{STORAGE_PORT}" for j in range(1, CLUSTER_SIZE + 1)),
            jmx_port=7199 + 100 * (i - 1),
            initial_token=_CLUSTER_TOKENS[i - 1],
            auto_bootstrap=False,
        )
        for i in range(1, CLUSTER_SIZE + 1)
    ]


def nodes_for(count: int) -> list[Node]:
    if count == 1:
        return [single_node()]
    if count == CLUSTER_SIZE:
        return cluster_nodes()
    raise CassandraDevError(f"--nodes must be 1 or {CLUSTER_SIZE}, got {count}")


def cluster_node(index: int) -> Node:
    """Node ``index`` (1-based) of the cluster."""
    if not 1 <= index <= CLUSTER_SIZE:
        raise CassandraDevError(f"--node must be from 1 to {CLUSTER_SIZE}, got {index}")
    return cluster_nodes()[index - 1]


# --------------------------------------------------------------------------------------------
# Jars and Java


def lib_dir(version: str = CASSANDRA_VERSION) -> Path:
    return cassandra_dir() / "lib" / version


def ensure_jars(version: str = CASSANDRA_VERSION) -> list[Path]:
    """Fetch ``cassandra-all`` and its runtime dependencies once; later calls reuse them."""
    target = lib_dir(version)
    marker = target / ".complete"
    if not marker.is_file():
        mvn = shutil.which("mvn")
        if mvn is None:
            raise CassandraDevError("Maven (mvn) is needed to fetch Cassandra's jars; install it first")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        _say(f"fetching Apache Cassandra {version} and its dependencies with Maven ...")
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(_POM),
            f"-Dcassandra.version={version}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            output = (done.stdout + done.stderr).strip().splitlines()[-25:]
            raise CassandraDevError(
                f"Maven could not fetch org.apache.cassandra:cassandra-all:{version}:\n" + "\n".join(output)
            )
        (staging / ".complete").write_text(version + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    jars = sorted(target.glob("*.jar"))
    if not any(j.name.startswith("cassandra-all-") for j in jars):
        raise CassandraDevError(f"{target} holds no cassandra-all jar; remove the folder and start again")
    return jars


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` or ``java`` on PATH, checked to be Java 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise CassandraDevError("Java 17 is needed to run Cassandra; none was found (set JAVA_HOME)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    if match is None or int(match.group(1)) < 17:
        raise CassandraDevError(f"Cassandra 5.0 runs here on Java 17; {java} says: {out.strip()}")
    return java


# --------------------------------------------------------------------------------------------
# Configuration


def _q(value: str) -> str:
    """A YAML scalar: JSON strings are valid YAML and need no escaping rules of our own."""
    return json.dumps(value)


def render_yaml(node: Node) -> str:
    """A ``cassandra.yaml`` tuned for 1-3 nodes on a small machine, quick to start."""
    home = node.home
    token = f"initial_token: {_q(node.initial_token)}\n" if node.initial_token else ""
    return f"""\
# Written by voedger.devtools.cassandra on every start; edits are overwritten.
cluster_name: {_q(node.cluster_name)}
num_tokens: 1
{token}auto_bootstrap: {str(node.auto_bootstrap).lower()}
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
storage_compatibility_mode: NONE

authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
network_authorizer: AllowAllNetworkAuthorizer

data_file_directories: [{_q(str(home / "data"))}]
commitlog_directory: {_q(str(home / "commitlog"))}
saved_caches_directory: {_q(str(home / "saved_caches"))}
hints_directory: {_q(str(home / "hints"))}
cdc_raw_directory: {_q(str(home / "cdc_raw"))}

seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: {_q(node.seeds)}

listen_address: {node.address}
rpc_address: {node.address}
storage_port: {STORAGE_PORT}
native_transport_port: {CQL_PORT}
start_native_transport: true

commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_total_space: 512MiB

# A group commit of the platform is one logged batch and may carry large values: the stock
# 50KiB limit would refuse it. A mutation may be half a commitlog segment (32MiB): 16MiB.
batch_size_warn_threshold: 1MiB
batch_size_fail_threshold: 8MiB

concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 4
concurrent_materialized_view_writes: 2
concurrent_compactors: 1
native_transport_max_threads: 32
memtable_heap_space: 128MiB
memtable_offheap_space: 128MiB
key_cache_size: 16MiB
counter_cache_size: 4MiB
prepared_statements_cache_size: 8MiB
compaction_throughput: 64MiB/s

# Tests create and drop many keyspaces: snapshots on drop would only fill the disk.
auto_snapshot: false
snapshot_before_compaction: false

hinted_handoff_enabled: true
max_hint_window: 3h

read_request_timeout: 5000ms
range_request_timeout: 10000ms
write_request_timeout: 2000ms
cas_contention_timeout: 1000ms
truncate_request_timeout: 60000ms
request_timeout: 10000ms
"""


def render_logback(node: Node) -> str:
    """Logs to ``logs/system.log`` only; warnings also reach the console file."""
    return f"""\
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>{node.log_file}</file>
    <append>true</append>
    <encoder>
      <pattern>%-5level [%thread] %date{{ISO8601}} %logger{{0}} - %msg%n</pattern>
    </encoder>
  </appender>
  <appender name="CONSOLE" class="ch.qos.logback.core.ConsoleAppender">
    <filter class="ch.qos.logback.classic.filter.ThresholdFilter">
      <level>ERROR</level>
    </filter>
    <encoder>
      <pattern>%-5level %date{{ISO8601}} %logger{{0}} - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="FILE"/>
    <appender-ref ref="CONSOLE"/>
  </root>
</configuration>
"""


def write_config(node: Node) -> None:
    for sub in ("conf", "data", "commitlog", "saved_caches", "hints", "cdc_raw", "logs", "triggers"):
        (node.home / sub).mkdir(parents=True, exist_ok=True)
    node.yaml_file.write_text(render_yaml(node))
    (node.conf_dir / "logback.xml").write_text(render_logback(node))


def jvm_command(node: Node, java: str, jars: Sequence[Path], heap: str, ring_delay_ms: int) -> list[str]:
    """The ``java`` command line that Cassandra's own scripts would build, trimmed for tests."""
    jamm = [j for j in jars if j.name.startswith("jamm-")]
    return [
        java,
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-Xss256k",
        "-ea",
        "-da:net.openhft...",
        "-XX:+UseThreadPriorities",
        # C1 only: a node starts in about half the time on two cores (three nodes share them),
        # and test workloads are too short for C2 to pay off. VOEDGER_CASSANDRA_JVM_OPTS=
        # -XX:TieredStopAtLevel=4 restores the full JIT, e.g. for benchmarks.
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseG1GC",
        "-XX:+ParallelRefProcEnabled",
        "-XX:MaxTenuringThreshold=1",
        "-XX:MaxGCPauseMillis=300",
        "-XX:InitiatingHeapOccupancyPercent=70",
        "-XX:ParallelGCThreads=2",
        "-XX:ConcGCThreads=1",
        "-XX:MaxDirectMemorySize=512M",
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:+UseTLAB",
        "-XX:+ResizeTLAB",
        "-XX:+PerfDisableSharedMem",
        "-Djava.net.preferIPv4Stack=true",
        "-Djdk.attach.allowAttachSelf=true",
        *_JPMS_FLAGS,
        "-Dio.netty.tryReflectionSetAccessible=true",
        "-Dio.netty.allocator.useCacheForAllThreads=true",
        "-Dio.netty.allocator.maxOrder=11",
        *(f"-javaagent:{j}" for j in jamm[:1]),
        f"-Dcassandra.config={node.yaml_file.as_uri()}",
        f"-Dlogback.configurationFile={node.conf_dir / 'logback.xml'}",
        f"-Dcassandra.logdir={node.log_file.parent}",
        f"-Dcassandra.storagedir={node.home}",
        f"-Dcassandra.triggers_dir={node.home / 'triggers'}",
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.jmx.local.port={node.jmx_port}",
        "-Dcom.sun.management.jmxremote.authenticate=false",
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        f"-Dcassandra.ring_delay_ms={ring_delay_ms}",
        "-Dcassandra.shutdown_announce_in_ms=500",
        # Cassandra's own test runs use this: the startup estimate of a memtable row's size
        # otherwise builds 100000 rows, seconds of CPU on a small machine.
        "-Dcassandra.memtable_row_overhead_computation_step=100",
        *os.environ.get("VOEDGER_CASSANDRA_JVM_OPTS", "").split(),
        "-cp",
        os.pathsep.join(str(j) for j in jars),
        "org.apache.cassandra.service.CassandraDaemon",
    ]


# --------------------------------------------------------------------------------------------
# Processes


def node_pid(node: Node) -> int | None:
    """The pid in the node's pid file if that process is alive and is this node's Cassandra."""
    return recorded_pid(node.pid_file, node.yaml_file.as_uri())


def cql_answers(address: str, port: int = CQL_PORT, timeout: float = 2.0) -> bool:
    """True if a CQL server answers an OPTIONS request (protocol v4) at address:port."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">BBhBi", 0x04, 0, 1, 0x05, 0))  # OPTIONS
            header = _recv_exactly(sock, 9)
            return header[0] & 0x80 != 0 and header[4] in (0x06, 0x00)  # SUPPORTED or ERROR
    except OSError:
        return False


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _clip(line: str, width: int = 300) -> str:
    return line if len(line) <= width else line[:width] + " ..."


def log_tail(node: Node, lines: int = 40) -> str:
    """The last lines of the node's log and console output, for error messages."""
    parts: list[str] = []
    for path in (node.log_file, node.console_file):
        try:
            # Cassandra logs its whole configuration and classpath on one line each: cut those.
            text = [_clip(line) for line in path.read_text(errors="replace").splitlines()[-lines:]]
        except OSError:
            continue
        if text:
            parts.append(f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text))
    return "\n".join(parts) or f"(no log under {node.home / 'logs'})"


def launch(node: Node, heap: str = "1G", ring_delay_ms: int = 1000) -> int:
    """Start the node's JVM detached from this process and record its pid; does not wait."""
    jars = ensure_jars()
    java = java_executable()
    write_config(node)
    cmd = jvm_command(node, java, jars, heap, ring_delay_ms)
    with node.console_file.open("ab") as console:
        console.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {node.name} ===\n".encode())
    # `sh` starts the JVM in the background and exits at once, so the JVM is not our child:
    # it outlives this process and never lingers as our zombie after a kill -9.
    script = 'exec "$@" </dev/null >>"$CONSOLE" 2>&1 & echo $!'
    env = {**os.environ, "CONSOLE": str(node.console_file)}
    done = subprocess.run(
        ["sh", "-c", script, "sh", *cmd],
        cwd=node.home,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,
    )
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise CassandraDevError(f"could not launch {node.name}: {done.stderr.strip()}")
    pid = int(done.stdout.strip())
    node.pid_file.write_text(f"{pid}\n")
    return pid


def wait_for_cql(node: Node, deadline: float) -> None:
    """Wait until the node answers CQL; fail early, with its log, if its process dies."""
    while True:
        if cql_answers(node.address):
            return
        if node_pid(node) is None:
            raise CassandraDevError(f"{node.name} ({node.address}) exited while starting\n{log_tail(node)}")
        if time.monotonic() > deadline:
            raise CassandraDevError(
                f"{node.name} ({node.address}) did not answer CQL on port {CQL_PORT} in time\n" + log_tail(node)
            )
        time.sleep(0.5)


PEER_COLUMNS = ("peer", "rpc_address", "host_id", "data_center", "rack", "tokens")
"""What a row of ``system.peers`` needs to name a node of the ring (the drivers ask the same)."""


def peer_problems(address: str, rows: Sequence[Mapping[str, object]], ring: Sequence[str]) -> list[str]:
    """What is wrong with the peers the node at ``address`` lists (its ``system.peers`` rows,
    ``PEER_COLUMNS``) when the ring is the nodes at ``ring``; empty when it lists every other one
    and no stranger.

    A row counts the way the drivers count it: with an address, a host ID, a data center, a rack
    and tokens. Gossip can leave an incomplete row behind for a node that was removed or replaced
    (a late state of the old node written after its row was deleted); the drivers pass it over, and
    so does this check. A complete row of an address outside the ring is a problem: clients would
    be told of a node that is not there."""
    listed = {str(r["peer"]) for r in rows if all(r.get(c) for c in PEER_COLUMNS)}
    others = {a for a in ring if a != address}
    problems = [f"{address} does not list {a} among its peers" for a in sorted(others - listed)]
    problems += [f"{address} lists {a} among its peers, a node not in the ring" for a in sorted(listed - others)]
    return problems


def ring_problems(nodes: Sequence[Node]) -> list[str]:
    """What keeps the cluster from serving QUORUM and ALL everywhere; empty when it is whole.

    Each node, as coordinator, must list the other nodes as peers (``peer_problems``) and read
    one partition of ``system_distributed`` (replicated to all three nodes) at consistency ALL,
    which fails with Unavailable while it still considers a peer down. The driver must also see every node up.
    """
    from cassandra import ConsistencyLevel
    from cassandra.cluster import Cluster
    from cassandra.query import SimpleStatement

    for name in ("cassandra", "cassandra.cluster", "cassandra.pool", "cassandra.connection"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    problems: list[str] = []
    cluster = Cluster(
        contact_points=[n.address for n in nodes],
        port=CQL_PORT,
        connect_timeout=5,
        control_connection_timeout=5,
        protocol_version=4,
    )
    try:
        session = cluster.connect()
        hosts = {h.address: h for h in cluster.metadata.all_hosts()}
        probe = SimpleStatement(
            "SELECT * FROM system_distributed.view_build_status WHERE keyspace_name = 'voedger' "
            "AND view_name = 'ring_check'",
            consistency_level=ConsistencyLevel.ALL,
        )
        for node in nodes:
            host = hosts.get(node.address)
            if host is None or not host.is_up:
                problems.append(f"the driver does not see {node.address} up")
                continue
            rows = session.execute(f"SELECT {', '.join(PEER_COLUMNS)} FROM system.peers", host=host, timeout=5)
            wrong = peer_problems(node.address, [r._asdict() for r in rows], [n.address for n in nodes])
            if wrong:
                problems += wrong
                continue
            session.execute(probe, host=host, timeout=10)
    except Exception as exc:  # any driver error means "not yet"; the caller retries until its deadline
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        cluster.shutdown()
    return problems


def wait_for_ring(nodes: Sequence[Node], deadline: float) -> None:
    while True:
        problems = ring_problems(nodes)
        if not problems:
            return
        for node in nodes:
            if node_pid(node) is None:
                raise CassandraDevError(f"{node.name} ({node.address}) exited\n{log_tail(node)}")
        if time.monotonic() > deadline:
            raise CassandraDevError(
                "the cluster did not form in time: "
                + "; ".join(problems)
                + "\n"
                + "\n".join(log_tail(n, 15) for n in nodes)
            )
        time.sleep(1.0)


def _start_nodes(nodes: Sequence[Node], deadline: float) -> None:
    """Launch the nodes that are not running and wait for their CQL port, in parallel."""
    errors: list[BaseException] = []

    def run(node: Node) -> None:
        try:
            began = time.monotonic()
            pid = node_pid(node)
            if pid is not None and cql_answers(node.address):
                _say(f"{node.name} ({node.address}) is already running, pid {pid}")
                return
            if pid is None:
                if cql_answers(node.address) or port_open(node.address, CQL_PORT):
                    raise CassandraDevError(
                        f"{node.address}:{CQL_PORT} is taken by a process this tool did not start; stop it first"
                    )
                pid = launch(node)
                _say(f"{node.name} ({node.address}) launched, pid {pid}")
            wait_for_cql(node, deadline)
            _say(f"{node.name} ({node.address}) answers CQL after {time.monotonic() - began:.1f} s")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,), name=f"start-{n.name}") for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _refuse_if_other_setup_runs(count: int) -> None:
    """The single node and the cluster share 127.0.0.1:9042 and :7000, so only one may run."""
    other = cluster_nodes() if count == 1 else [single_node()]
    running = [n for n in other if node_pid(n) is not None]
    if running:
        what = "the 3-node cluster" if count == 1 else "the single node"
        stop_count = CLUSTER_SIZE if count == 1 else 1
        raise CassandraDevError(
            f"{what} is running (pid {node_pid(running[0])}) and uses 127.0.0.1:{CQL_PORT}; "
            f"stop it first: python -m voedger.devtools.cassandra stop --nodes {stop_count}"
        )


def _has_joined_before(node: Node) -> bool:
    """True once the node has written its system keyspace, i.e. it knows the ring."""
    return any((node.home / "data" / "system").glob("local-*"))


def start(count: int = 1, timeout: float = DEFAULT_TIMEOUT) -> float:
    """Start the single node or the cluster (reusing running nodes); returns the seconds taken."""
    began = time.monotonic()
    nodes = nodes_for(count)
    _refuse_if_other_setup_runs(count)
    ensure_jars()
    java_executable()
    already = {n.name for n in nodes if node_pid(n) is not None}
    try:
        if len(nodes) == 1 or all(_has_joined_before(n) for n in nodes):
            # On a restart every node knows the ring already; started together, each one finds
            # its peers at once instead of waiting for them (shadow round, block_for_peers).
            _start_nodes(nodes, time.monotonic() + timeout)
        else:
            # The first time, node 1 forms the ring and the others join it (all at once: each
            # has its own token and streams nothing, so they do not race each other).
            _start_nodes(nodes[:1], time.monotonic() + timeout)
            _start_nodes(nodes[1:], time.monotonic() + timeout)
        if len(nodes) > 1:
            wait_for_ring(nodes, time.monotonic() + timeout)
    except BaseException:
        # Leave nothing half-started behind (a CI run would carry a stray JVM to its end).
        for node in nodes:
            if node.name not in already:
                stop_node(node, grace=10)
        raise
    took = time.monotonic() - began
    _say(f"Cassandra {CASSANDRA_VERSION} ready on {len(nodes)} node(s) in {took:.1f} s")
    return took


def start_node(index: int, timeout: float = DEFAULT_TIMEOUT) -> None:
    """(Re)start node ``index`` of the cluster and wait until the whole ring is up again."""
    _refuse_if_other_setup_runs(CLUSTER_SIZE)
    node = cluster_node(index)
    _start_nodes([node], time.monotonic() + timeout)
    wait_for_ring(cluster_nodes(), time.monotonic() + timeout)


def kill_node(index: int) -> int | None:
    """``kill -9`` node ``index`` of the cluster by its pid file; returns the pid, None if down."""
    node = cluster_node(index)
    pid = node_pid(node)
    if pid is None:
        return None
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid, 10)
    return pid


def stop_node(node: Node, grace: float = STOP_GRACE) -> bool:
    """SIGTERM the node's recorded process, SIGKILL it after ``grace``; False if it was down."""
    pid = node_pid(node)
    if pid is None:
        node.pid_file.unlink(missing_ok=True)
        return False

    def killing(waited: float) -> None:
        _say(f"{node.name} did not stop in {waited:.0f} s; killing it")

    stop_pid(pid, grace, poll=0.1, kill_grace=10, on_kill=killing)
    node.pid_file.unlink(missing_ok=True)
    return True


def stop(count: int = 1) -> None:
    """Stop the single node or every node of the cluster, in parallel."""
    nodes = nodes_for(count)
    results: dict[str, bool] = {}

    def run(node: Node) -> None:
        results[node.name] = stop_node(node)

    threads = [threading.Thread(target=run, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for node in nodes:
        _say(f"{node.name} ({node.address}): {'stopped' if results.get(node.name) else 'was not running'}")


def node_state(node: Node) -> str:
    pid = node_pid(node)
    if pid is None:
        return "stopped"
    return f"running, pid {pid}, " + ("CQL answers" if cql_answers(node.address) else "CQL not answering yet")


def status(count: int = 1) -> list[str]:
    lines = [f"{n.name} ({n.address}:{CQL_PORT}): {node_state(n)}" for n in nodes_for(count)]
    for line in lines:
        _say(line)
    return lines


# --------------------------------------------------------------------------------------------
# Command line


def _say(message: str) -> None:
    print(f"[cassandra] {message}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m voedger.devtools.cassandra",
        description="Run Apache Cassandra for development and tests.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("start", "start and wait until ready"), ("stop", "stop"), ("status", "show")):
        p = sub.add_parser(name, help=f"{text} the single node or the cluster")
        p.add_argument("--nodes", type=int, choices=(1, CLUSTER_SIZE), default=1)
        if name == "start":
            p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per stage")
    p = sub.add_parser("kill", help="kill -9 one node of the cluster (for failure tests)")
    p.add_argument("--node", type=int, required=True)
    p = sub.add_parser("start-node", help="start one node of the cluster and wait for the ring")
    p.add_argument("--node", type=int, required=True)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    sub.add_parser("fetch", help="only fetch the jars")
    args: Any = parser.parse_args(argv)
    try:
        if args.command == "start":
            start(args.nodes, args.timeout)
        elif args.command == "stop":
            stop(args.nodes)
        elif args.command == "status":
            status(args.nodes)
        elif args.command == "kill":
            pid = kill_node(args.node)
            _say(f"node{args.node}: " + (f"killed pid {pid}" if pid else "was not running"))
        elif args.command == "start-node":
            start_node(args.node, args.timeout)
        elif args.command == "fetch":
            _say(f"{len(ensure_jars())} jars in {lib_dir()}")
    except CassandraDevError as exc:
        print(f"[cassandra] error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
