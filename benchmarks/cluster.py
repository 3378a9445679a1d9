"""Several ``voedger server`` processes on one Cassandra (issue 13): throughput, the forwarding
hop, failover after ``kill -9`` and handover after SIGTERM.

    python benchmarks/cluster.py [--seconds 15] [--kills 10] [--stops 3] [--clients 16]
                                 [--lease-ttl 6] [--hosts 127.0.0.1,127.0.0.2,127.0.0.3]

Needs the three-node development cluster (RF=3, QUORUM); it never starts or stops a node. It
reuses the cluster harness of ``tests/cluster`` (processes, load, history, checker) on fresh
keyspaces, dropped afterwards. Each process serves its metrics on a port of its own, whose
``GET /api/cluster`` tells who owns each partition.

1. ``--seconds`` of load through 1 process, then (two more joined, the partitions spread)
   through 3, the load round robin over the processes, then through the same 3 with each
   command sent to its partition's owner (a partition-aware balancer; no hop): commands/s,
   p50/p99 latency, commands per group write, CPU per command of servers, load and Cassandra,
   and what the Cassandra nodes did per command (rows written, Paxos and batch log rows, tasks
   of their stages: ``system_views``).
2. From the same 3-process run: the latency of commands sent to the owner of the workspace's
   partition (direct) and of those sent to another process (forwarded once to the owner).
3. ``--kills`` rounds: load, ``kill -9`` of one process (p0, p1, p2, ...), load on. For each
   workspace of a partition the victim owned: the time from the kill to the first 2xx of an
   attempt started after the kill. Per kill, the first and the last such workspace; the victim
   is restarted and the partitions spread again before the next round.
4. ``--stops`` rounds of the same with SIGTERM (after the process was taken out of the routing,
   as a load balancer would): the handover of each moved workspace.

After each phase the history checker reads the storage back and verifies every attempt so far
(no acknowledged command lost, none applied twice, logs without gaps).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.cluster.checker import APP_DIR, APP_NAME
from tests.cluster.harness import Harness, ServerProcess
from tests.cluster.history import Attempt
from tests.cluster.load import LoadConfig
from tests.cluster.scenario import Scenario, cassandra_url, drop_keyspaces, fresh_suffix
from tests.support import free_port

from benchmarks.commands import cpu_seconds
from voedger.storage.cassandra import REQUEST_KINDS
from voedger.structs.wsid import partition_of
from voedger.vvm.image import load_image

DEFAULT_HOSTS = "127.0.0.1,127.0.0.2,127.0.0.3"
BEFORE = 3.0
"""Seconds of load before a kill or a stop."""
AFTER = 12.0
"""Seconds of load after a kill or stop, beyond the lease TTL."""


class MetricsHarness(Harness):
    """The test harness, each process with ``--metrics-port`` of its own (for ``/api/cluster``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics_ports: dict[str, int] = {}

    def command(self, p: ServerProcess) -> list[str]:
        port = self.metrics_ports.setdefault(p.name, free_port())
        return [*super().command(p), "--metrics-port", str(port)]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def pct(values: Sequence[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


async def owners(h: MetricsHarness, client: httpx.AsyncClient) -> dict[str, dict[int, str]]:
    """Each running process's view of the load application's partitions: partition -> owner's name."""
    names = {p.url: p.name for p in h.processes}
    views: dict[str, dict[int, str]] = {}
    for p in h.running():
        try:
            r = await client.get(f"http://127.0.0.1:{h.metrics_ports[p.name]}/api/cluster")
            body = r.json()
        except (httpx.HTTPError, ValueError):
            continue
        views[p.name] = {
            int(x["partition"]): names.get(str(x["address"]), "?")
            for x in body.get("partitions", [])
            if x.get("app") == APP_NAME and x.get("owner")
        }
    return views


async def settled_owners(h: MetricsHarness, partitions: int, members: int, timeout: float = 120.0) -> dict[int, str]:
    """Wait until every running process agrees that every partition is owned by one of
    ``members`` distinct processes, twice in a row a second apart; returns that ownership."""
    deadline = time.monotonic() + timeout
    last: dict[int, str] | None = None
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            views = await owners(h, client)
            running = {p.name for p in h.running()}
            agreed = list(views.values())
            current = agreed[0] if agreed else None
            if (
                current is not None
                and set(views) == running
                and all(v == current for v in agreed)
                and len(current) == partitions
                and len(set(current.values())) == members
                and set(current.values()) <= running
            ):
                if current == last:
                    return current
                last = current
            else:
                last = None
            await asyncio.sleep(1.0)
    raise SystemExit(f"the partitions did not settle over {members} processes in {timeout:.0f} s:\n{h.describe()}")


SERVER_SERIES = (
    "voedger_cp_commands_total",
    "voedger_cp_commands_seconds",
    "voedger_cp_group_writes_total",
    "voedger_cp_group_write_seconds",
    "voedger_cp_fence_seconds",
)
CPU_SERIES = ("cpu servers", "cpu load", "cpu busy", "cpu all")
"""CPU seconds: of the server processes, of this process (the load), of the whole machine busy
(not idle, not waiting for I/O) and in all (busy or not, both cores)."""
REQUEST_SERIES = tuple(f"requests {kind}" for kind in REQUEST_KINDS)
"""The servers' requests to Cassandra by kind (``voedger_storage_requests_total``), all applications."""
CASSANDRA_SERIES = (
    "rows written",
    "paxos rows written",
    "batch log rows written",
    "MutationStage",
    "RequestResponseStage",
    "Native-Transport-Requests",
    "ReadStage",
)
"""What the Cassandra nodes did, summed over them (their ``system_views``): local writes (one a
storage partition a mutation, at each replica) to the keyspaces of the run, to ``system.paxos``
(lightweight transactions) and ``system.batches`` (logged batches); tasks their stages completed
(mutations applied, replicas' answers taken, client requests, reads)."""


def cassandra_work(hosts: Sequence[str]) -> dict[str, float]:
    """``CASSANDRA_SERIES`` so far, read from each node over CQL (blocking: run it in a thread)."""
    from cassandra.cluster import Cluster
    from cassandra.policies import WhiteListRoundRobinPolicy

    totals = dict.fromkeys(CASSANDRA_SERIES, 0.0)
    tables = {("system", "paxos"): "paxos rows written", ("system", "batches"): "batch log rows written"}
    for host in hosts:
        cluster = Cluster([host], load_balancing_policy=WhiteListRoundRobinPolicy([host]), protocol_version=5)
        try:
            session = cluster.connect()
            for row in session.execute("SELECT keyspace_name, table_name, count FROM system_views.local_write_latency"):
                name = tables.get((row.keyspace_name, row.table_name))
                if name is None and not row.keyspace_name.startswith("system"):
                    name = "rows written"
                if name is not None:
                    totals[name] += row.count
            for row in session.execute("SELECT name, completed_tasks FROM system_views.thread_pools"):
                if row.name in totals:
                    totals[row.name] += row.completed_tasks
        finally:
            cluster.shutdown()
    return totals


def machine_cpu() -> tuple[float, float]:
    """The machine's busy CPU seconds and all of its CPU seconds so far (/proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


async def server_totals(h: MetricsHarness) -> dict[str, float]:
    """The load application's command and group-write counters, summed over the live processes."""
    totals = dict.fromkeys(SERVER_SERIES + CPU_SERIES + REQUEST_SERIES, 0.0)
    totals["cpu servers"] = sum(cpu_seconds(p.proc.pid) for p in h.processes if p.proc is not None and p.alive())
    totals["cpu load"] = time.process_time()
    totals["cpu busy"], totals["cpu all"] = machine_cpu()
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        for p in h.processes:
            if not p.alive():
                continue
            r = await client.get(f"http://127.0.0.1:{h.metrics_ports[p.name]}/metrics")
            for family in text_string_to_metric_families(r.text):
                for sample in family.samples:
                    if sample.name in totals and sample.labels.get("app") == APP_NAME:
                        totals[sample.name] += sample.value
                    elif sample.name == "voedger_storage_requests_total":
                        totals[f"requests {sample.labels['kind']}"] += sample.value
    return totals


def acked_latencies(attempts: Sequence[Attempt]) -> list[float]:
    return [a.ended - a.started for a in attempts if a.outcome == "acked" and a.ended is not None]


def recovery(scenario: Scenario, event: float, moved: set[int]) -> list[float]:
    """Per workspace in ``moved``: seconds from ``event`` to the end of the first 2xx of an
    attempt started at or after it (inf if none came)."""
    first: dict[int, float] = {}
    for a in scenario.history.attempts:
        if a.wsid in moved and a.outcome == "acked" and a.started >= event and a.ended is not None:
            first[a.wsid] = min(first.get(a.wsid, a.ended), a.ended)
    return [first.get(w, float("inf")) - event for w in sorted(moved)]


async def checked(scenario: Scenario, phase: str, verdicts: list[tuple[str, str]]) -> None:
    report = await scenario.check()
    stats = report.stats
    verdict = "passed" if report.ok else "FAILED: " + ", ".join(sorted(report.kinds()))
    verdicts.append(
        (
            phase,
            f"{verdict} ({stats['requests']} requests, {stats['failed requests']} failed, "
            f"outcomes {stats['by outcome']})",
        )
    )
    print(f"checker after {phase}: {verdicts[-1][1]}", flush=True)
    if not report.ok:
        print(report.summary(), flush=True)


async def sigterm(h: Harness, p: ServerProcess, timeout: float = 60.0) -> float:
    """``Harness.stop`` with the moment of the SIGTERM returned (monotonic clock)."""
    h.unroute(p)
    await asyncio.sleep(h.drain)
    assert p.proc is not None
    sent = time.monotonic()
    p.proc.send_signal(signal.SIGTERM)
    await asyncio.to_thread(p.proc.wait, timeout)
    h._ended(p, "stopped")
    return sent


async def moves(
    scenario: Scenario,
    h: MetricsHarness,
    rounds: int,
    graceful: bool,
    ttl: float,
    config: LoadConfig,
    out: list[tuple[str, int, float, float]],
) -> None:
    """Rounds of a kill (or a stop) under load; per round (victim, moved workspaces, first and
    last workspace back in seconds)."""
    image = scenario.image
    for i in range(rounds):
        before = await settled_owners(h, image.num_partitions, 3)
        victim = h.processes[i % len(h.processes)]
        parts = {pid for pid, owner in before.items() if owner == victim.name}
        moved = {w for w in scenario.wsids if partition_of(w, image.num_partitions) in parts}
        load = scenario.new_load(config)
        task = asyncio.create_task(load.run(BEFORE + ttl + AFTER + 5))
        await asyncio.sleep(BEFORE)
        if graceful:
            at = await sigterm(h, victim) - scenario.history.began
        else:
            at = scenario.history.mark(f"kill {victim.name} #{i + 1}")
            h.kill(victim)
        await asyncio.sleep(ttl + AFTER)
        load.finish()
        await task
        back = recovery(scenario, at, moved)
        out.append((victim.name, len(moved), min(back), max(back)))
        kind = "SIGTERM" if graceful else "kill -9"
        print(
            f"{kind} {victim.name} (round {i + 1}): {len(parts)} partitions, {len(moved)} workspaces moved, "
            f"first back after {min(back):.2f} s, last after {max(back):.2f} s",
            flush=True,
        )
        await restart(h, victim)
    await settled_owners(h, image.num_partitions, 3)


async def restart(h: Harness, p: ServerProcess, tries: int = 3) -> None:
    """``Harness.restart``, tried again if the process exits during its start (a Cassandra node
    of the shared cluster just restarted by someone else may disagree on the schema for a while)."""
    for attempt in range(1, tries + 1):
        try:
            await h.restart(p)
            return
        except AssertionError as exc:
            if attempt == tries:
                raise
            print(f"restart of {p.name} failed (attempt {attempt}): {str(exc).splitlines()[-1][:200]}", flush=True)
            await asyncio.sleep(5)


def moves_table(title: str, rows: list[tuple[str, int, float, float]]) -> None:
    if not rows:
        return
    print(f"\n{title}\n")
    print(_row(["round", "process", "workspaces moved", "first back, s", "all back, s"]))
    print(_row(["---:", "---", "---:", "---:", "---:"]))
    for i, (name, n, first, last) in enumerate(rows, 1):
        print(_row([str(i), name, str(n), f"{first:.2f}", f"{last:.2f}"]))
    firsts = [r[2] for r in rows]
    lasts = [r[3] for r in rows]
    print(_row(["p50", "", "", f"{statistics.median(firsts):.2f}", f"{statistics.median(lasts):.2f}"]))
    print(_row(["max", "", "", f"{max(firsts):.2f}", f"{max(lasts):.2f}"]))


def per_command_table(
    title: str, columns: Sequence[str], series: Sequence[str], profiles: list[tuple[str, dict[str, float]]]
) -> None:
    """A table of ``series`` (headed ``columns``) per acknowledged command, a row per run."""
    print(f"\n{title}\n")
    print(_row(["processes", *columns]))
    print(_row(["---:"] * (1 + len(columns))))
    for n, d in profiles:
        commands = d["voedger_cp_commands_total"]
        print(_row([n, *(f"{d[k] / commands:.3f}" if commands else "-" for k in series)]))


async def main(args: argparse.Namespace) -> int:
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    suffix = await fresh_suffix(hosts)
    url = cassandra_url(hosts, suffix)
    workdir = Path(tempfile.mkdtemp(prefix="voedger-cluster-bench-"))
    print(f"logs and histories: {workdir}", flush=True)
    image = load_image(APP_NAME, APP_DIR)
    h = MetricsHarness(
        workdir, url, [(APP_NAME, APP_DIR)], cluster=True, lease_ttl=args.lease_ttl, ready_timeout=args.ready_timeout
    )
    scenario = Scenario(workdir, url, h, image)
    config = LoadConfig(clients=args.clients, raw_http=args.http == "raw")
    busy = LoadConfig(clients=args.throughput_clients, raw_http=args.http == "raw")
    verdicts: list[tuple[str, str]] = []
    throughput: list[tuple[str, int, float, list[float]]] = []
    profiles: list[tuple[str, dict[str, float]]] = []
    direct: list[Attempt] = []
    forwarded: list[Attempt] = []
    kills: list[tuple[str, int, float, float]] = []
    stops: list[tuple[str, int, float, float]] = []
    stable = True
    error = ""

    async def measured(label: str, prefer: Callable[[int], str | None] | None = None) -> list[Attempt]:
        """``--seconds`` of the throughput load, its CPU and its latencies under ``label``; the
        attempts it made."""
        began = scenario.history.now()
        db_before = await asyncio.to_thread(cassandra_work, hosts)
        before = await server_totals(h)
        await scenario.load(args.seconds, busy, prefer)
        after = await server_totals(h)
        after.update(await asyncio.to_thread(cassandra_work, hosts))
        before.update(db_before)
        series = SERVER_SERIES + CPU_SERIES + REQUEST_SERIES + CASSANDRA_SERIES
        profiles.append((label, {k: after[k] - before[k] for k in series}))
        attempts = [a for a in scenario.history.attempts if a.started >= began]
        latencies = acked_latencies(attempts)
        throughput.append((label, len(latencies), scenario.history.now() - began, latencies))
        return attempts

    try:
        # 1. One process, then three.
        await h.start(1)
        await settled_owners(h, image.num_partitions, 1)
        await measured("1")
        await checked(scenario, "1 process", verdicts)

        await asyncio.gather(*(h.start_process(h.new_process()) for _ in range(2)))
        ownership = await settled_owners(h, image.num_partitions, 3)
        three = await measured("3")
        after = await settled_owners(h, image.num_partitions, 3)
        stable = after == ownership
        await checked(scenario, "3 processes", verdicts)

        # The same three with every command sent to its partition's owner (a partition-aware
        # balancer): what the processes cost without the hop.
        await measured("3, to owners", lambda w: after.get(partition_of(w, image.num_partitions)))
        await checked(scenario, "3 processes, to owners", verdicts)

        # 2. Direct vs forwarded, from the 3-process run.
        direct = [a for a in three if ownership.get(partition_of(a.wsid, image.num_partitions)) == a.target]
        forwarded = [a for a in three if ownership.get(partition_of(a.wsid, image.num_partitions)) != a.target]

        # 3. kill -9, 4. SIGTERM.
        if args.kills:
            await moves(scenario, h, args.kills, False, args.lease_ttl, config, kills)
            await checked(scenario, f"{args.kills} kills", verdicts)
        if args.stops:
            await moves(scenario, h, args.stops, True, args.lease_ttl, config, stops)
            await checked(scenario, f"{args.stops} graceful stops", verdicts)
    except Exception as exc:  # print what was measured before it
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        verdicts.append(("the run", f"ABORTED: {error}"))
    finally:
        down = h.storage_nodes_down()
        await h.close()
        try:
            dropped = await drop_keyspaces(url, suffix)
            print(f"dropped {len(dropped)} keyspaces", flush=True)
        except Exception as exc:
            print(f"could not drop the keyspaces of suffix {suffix}: {exc}", flush=True)
        if down:
            print(f"Cassandra nodes the servers saw go down: {', '.join(down)}", flush=True)

    print(
        f"\nThroughput ({args.throughput_clients} clients ({args.http} HTTP), {args.seconds:g} s each, "
        "load round robin over the processes, or each command to its partition's owner)\n"
    )
    print(_row(["processes", "commands acknowledged", "commands/s", "p50 ms", "p99 ms"]))
    print(_row(["---:"] * 5))
    for n, acks, seconds, lat in throughput:
        print(_row([n, str(acks), f"{acks / seconds:.0f}", ms(pct(lat, 50)), ms(pct(lat, 99))]))

    print("\nWhere a command's time went on the servers (their metrics, summed over the processes; means)\n")
    print(_row(["processes", "commands", "commands per group write", "command ms", "group write ms", "fence LWT ms"]))
    print(_row(["---:"] * 6))
    for n, d in profiles:
        commands, writes = d["voedger_cp_commands_total"], d["voedger_cp_group_writes_total"]
        print(
            _row(
                [
                    n,
                    f"{commands:.0f}",
                    f"{commands / writes:.1f}" if writes else "-",
                    f"{1000 * d['voedger_cp_commands_seconds'] / commands:.1f}" if commands else "-",
                    f"{1000 * d['voedger_cp_group_write_seconds'] / writes:.1f}" if writes else "-",
                    f"{1000 * d['voedger_cp_fence_seconds'] / writes:.1f}" if writes else "-",
                ]
            )
        )

    print("\nWhat shares the two cores (CPU per acknowledged command, over each throughput run)\n")
    print(_row(["processes", "servers ms", "load generator ms", "the rest (Cassandra) ms", "machine busy"]))
    print(_row(["---:"] * 5))
    for n, d in profiles:
        commands = d["voedger_cp_commands_total"]
        rest = d["cpu busy"] - d["cpu servers"] - d["cpu load"]
        print(
            _row(
                [
                    n,
                    f"{1000 * d['cpu servers'] / commands:.2f}" if commands else "-",
                    f"{1000 * d['cpu load'] / commands:.2f}" if commands else "-",
                    f"{1000 * rest / commands:.2f}" if commands else "-",
                    f"{100 * d['cpu busy'] / d['cpu all']:.0f}%" if d["cpu all"] else "-",
                ]
            )
        )

    per_command_table(
        "Requests to Cassandra per acknowledged command (voedger_storage_requests_total, all applications)",
        REQUEST_KINDS,
        REQUEST_SERIES,
        profiles,
    )
    per_command_table(
        "What the Cassandra nodes did per acknowledged command (system_views, summed over the nodes)",
        CASSANDRA_SERIES,
        CASSANDRA_SERIES,
        profiles,
    )

    print("\nThe forwarding hop (the 3-process run; owner from GET /api/cluster)\n")
    print(_row(["sent to", "commands acknowledged", "p50 ms", "p99 ms"]))
    print(_row(["---", "---:", "---:", "---:"]))
    for label, group in (("the owner (direct)", direct), ("another process (forwarded)", forwarded)):
        lat = acked_latencies(group)
        print(_row([label, str(len(lat)), ms(pct(lat, 50)), ms(pct(lat, 99))]))
    if not stable:
        print("(the ownership changed during the run: the split is by the ownership before it)")

    moves_table(
        f"Failover after kill -9 of one of 3 processes (lease TTL {args.lease_ttl} s): from the kill to the "
        "first 2xx of each moved workspace",
        kills,
    )
    moves_table(
        "Handover after SIGTERM of one of 3 processes: from the SIGTERM to the first 2xx of each moved workspace",
        stops,
    )
    print("\nHistory checker\n")
    print(_row(["after", "verdict"]))
    print(_row(["---", "---"]))
    for phase, verdict in verdicts:
        print(_row([phase, verdict]))
    return 0 if all(v.startswith("passed") for _, v in verdicts) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of load through 1 and through 3")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--stops", type=int, default=3, help="graceful stops (SIGTERM)")
    parser.add_argument("--clients", type=int, default=16, help="clients of the kill and stop rounds")
    parser.add_argument(
        "--throughput-clients", type=int, default=512, help="clients of the throughput runs (commands in flight)"
    )
    parser.add_argument(
        "--http",
        choices=["raw", "httpx"],
        default="raw",
        help="the load's HTTP client: raw asyncio streams (default; least CPU) or httpx",
    )
    parser.add_argument("--lease-ttl", type=int, default=6)
    parser.add_argument("--ready-timeout", type=float, default=300.0, help="seconds a process may take to start")
    parser.add_argument("--hosts", default=DEFAULT_HOSTS)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("VOEDGER_DEVDATA", str(Path(__file__).resolve().parent.parent / ".devdata"))
    sys.exit(asyncio.run(main(parser.parse_args())))
