"""Read benchmark over HTTP: ``q.sys.Collection`` of 10 documents, API v2 ``GET docs/{table}/{id}``
and a view read (``GET views/...`` with a partition key), 64 keep-alive clients.

    python benchmarks/reads.py [--storage sqlite|cassandra] [--cassandra 127.0.0.1:9042]
                               [--seconds 10] [--clients 64] [--auth] [--native]
                               [--scenario collection|doc|view|all|check] [--processes N]

Starts ``voedger server`` in a subprocess on a fresh data folder (or fresh keyspaces), makes 10
shop workspaces through the API with 10 ``shop.Item`` documents each, waits for the async
projector's view ``shop.ItemCount`` to count them, then loads each scenario with ``wrk`` for
``--seconds`` and prints a table: reads/s, p50, p99, server CPU per read (user + system time of
the server process over the scenario, all threads, from /proc), the server's peak RSS, and the
load average of the machine before and after the scenario (the load generator shares the cores,
and so does whatever else runs on the machine: read CPU per read first, it depends least on them),
the share of the scenario's time the server's event loop spent runnable but waiting for a
core (from /proc/<pid>/schedstat: how much the machine's load held the server back), and the
loop's stalls: how many of its lag probe's wake-ups (one every 50 ms) came more than 50 ms and
more than 100 ms late (``voedger_event_loop_lag_seconds`` from its metrics port), and the share
of the machine's CPU time the hypervisor gave to others (``steal`` of /proc/stat).

``--processes N`` on SQLite starts ``voedger server --processes N``: the writer and N-1 reader
processes share the port. On Cassandra it starts N ``voedger server`` processes of one cluster
(each its own port and ``--advertise``), which send these reads to the partition's owner
(``--cluster-reads owner``, the server's default) or serve them where they arrive (``here``); the load is
one wrk per process with the clients shared out, reads/s summed, p50 and p99 the highest of the
processes'. CPU is summed over all processes, the loop's wait is the first one's, and the peak
RSS of each process is listed (the writer, or the first, first).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import wrk
from benchmarks.commands import (
    APP_DIR,
    COLLECTION_BODY,
    NATIVE_DIR,
    cpu_seconds,
    create_workspaces,
    free_port,
    peak_rss_mib,
    post,
    server_build,
    sign_in_owner,
    wait_ready,
)
from benchmarks.loadgen import AUTH_HEADER, read_response

DOCS_PER_WS = 10
VIEW_QUERY = "?where=%7B%22Part%22:0%7D"


@dataclass
class Row:
    scenario: str
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    rss_mib: float
    load_before: float
    load_after: float
    loop_waiting: float
    stalls: tuple[int, int]
    steal: float
    note: str
    rss_each: str = ""

    def line(self) -> str:
        return (
            f"| {self.scenario} | {self.rate:,.0f} | {self.p50_ms:.1f} | {self.p99_ms:.1f} | {self.cpu_us:.0f} "
            f"| {self.rss_each or f'{self.rss_mib:.0f}'} | {self.load_before:.1f} / {self.load_after:.1f} "
            f"| {self.loop_waiting:.0f} % | {self.stalls[0]} / {self.stalls[1]} | {self.steal:.1f} % |"
            f"{self.note}"
        )


def consecutive_free_ports(n: int) -> int:
    """The first of ``n`` consecutive free loopback ports (the internal ports of the processes)."""
    for _ in range(50):
        first = free_port()
        ok = True
        for p in range(first + 1, first + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
        if ok:
            return first
    raise SystemExit("no consecutive free ports")


def load_average() -> float:
    return os.getloadavg()[0]


def loop_schedstat(pid: int) -> tuple[float, float]:
    """Seconds the server's main thread (its event loop) has run on a core, and waited runnable
    for one: the second grows with the machine's load, not with the server's work."""
    fields = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    return int(fields[0]) / 1e9, int(fields[1]) / 1e9


async def get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        auth = "".join(f"{k}: {v}\r\n" for k, v in AUTH_HEADER.items())
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode())
        return await read_response(reader)
    finally:
        writer.close()


async def fill(port: int, wsids: list[int]) -> list[str]:
    """10 items in each workspace; the paths (after ``workspaces/``) of every item's document."""
    docs: list[str] = []
    for wsid in wsids:
        for n in range(DOCS_PER_WS):
            fields = {"sys.ID": 1, "sys.QName": "shop.Item", "Name": f"item {n}", "Price": n}
            status, body = await post(
                port, f"/api/test/shop/{wsid}/c.sys.CUD", orjson.dumps({"cuds": [{"fields": fields}]})
            )
            if status != 200:
                raise SystemExit(f"insert failed: {body!r}")
            docs.append(f"{wsid}/docs/shop.Item/{orjson.loads(body)['NewIDs']['1']}")
    deadline = time.monotonic() + 60
    for wsid in wsids:
        while True:
            status, body = await get(port, f"/api/v2/apps/test/shop/workspaces/{wsid}/views/shop.ItemCount{VIEW_QUERY}")
            results = orjson.loads(body).get("results") if status == 200 else None
            if results and results[0].get("Count") == DOCS_PER_WS:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the view of workspace {wsid} did not count its items: {body!r}")
            await asyncio.sleep(0.1)
    return docs


def loop_stalls(metrics_port: int) -> tuple[int, int]:
    """The server's event-loop lag probe so far: its wake-ups over 50 ms late, over 100 ms late."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    buckets: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "voedger_event_loop_lag_seconds_bucket":
                buckets[sample.labels["le"]] = sample.value
    total = buckets["+Inf"]
    return int(total - buckets["0.05"]), int(total - buckets["0.1"])


def cpu_ticks() -> tuple[int, int]:
    """The machine's CPU time stolen by the hypervisor, and all of its CPU time, in ticks
    (/proc/stat): a virtual machine's cores can run slower than they seem."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return fields[7], sum(fields)


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def run_scenario(
    name: str,
    ports: list[int],
    pids: list[int],
    wsids: list[int],
    docs: list[str],
    args: argparse.Namespace,
    metrics_port: int,
) -> Row:
    """One scenario against the servers at ``ports`` (their processes ``pids``, the first one's
    event loop watched, its metrics at ``metrics_port``)."""
    v2 = "/api/v2/apps/test/shop/workspaces/WSID"
    load_before = load_average()
    pid = pids[0]
    cpu0 = sum(cpu_seconds(p) for p in pids)
    sched0 = loop_schedstat(pid)
    stalls0 = loop_stalls(metrics_port)
    ticks0 = cpu_ticks()
    common = {"clients": args.clients, "seconds": args.seconds, "headers": AUTH_HEADER}
    if name == "collection":
        label = "q.sys.Collection of 10 documents"
        r = wrk.run_spread(ports, "/api/test/shop/WSID/q.sys.Collection", COLLECTION_BODY, wsids, **common)
    elif name == "doc":
        label = "GET docs/shop.Item/{id}"
        r = wrk.run_spread(ports, v2, "", docs, method="GET", **common)
    elif name == "check":
        label = "GET /api/check (reads nothing)"
        r = wrk.run_spread(ports, "/api/check", "", wsids, method="GET", **common)
    else:
        label = "GET views/shop.ItemCount (partition key)"
        r = wrk.run_spread(ports, f"{v2}/views/shop.ItemCount{VIEW_QUERY}", "", wsids, method="GET", **common)
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    _, waiting = (b - a for a, b in zip(sched0, loop_schedstat(pid), strict=True))
    stalls = loop_stalls(metrics_port)
    stolen, ticks = (b - a for a, b in zip(ticks0, cpu_ticks(), strict=True))
    note = f" (non-2xx: {r.non_2xx})" if r.non_2xx else ""
    note += f" (socket errors: {r.errors})" if r.errors else ""
    ok = r.requests - r.non_2xx
    rss = [peak_rss_mib(p) for p in pids]
    return Row(
        f"{label} ({args.storage}, {args.processes} process{'es' if args.processes > 1 else ''})",
        ok / r.seconds,
        r.p50_ms,
        r.p99_ms,
        cpu / max(r.requests, 1) * 1e6,
        max(rss),
        load_before,
        load_average(),
        waiting / r.seconds * 100,
        (stalls[0] - stalls0[0], stalls[1] - stalls0[1]),
        stolen / max(ticks, 1) * 100,
        note,
        " + ".join(f"{x:.0f}" for x in rss) if len(rss) > 1 else "",
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", choices=["sqlite", "cassandra"], default="sqlite")
    parser.add_argument("--cassandra", default="127.0.0.1:9042")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per scenario (wrk)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--auth", action="store_true", help="authentication on: requests carry a token")
    parser.add_argument("--native", action="store_true", help="run the server from the native build (make native)")
    parser.add_argument(
        "--scenario",
        choices=["collection", "doc", "view", "all", "check"],
        default="all",
        help="check (not in all): GET /api/check, an answer that reads nothing: the HTTP exchange alone",
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="SQLite: voedger server --processes N; Cassandra: N cluster processes"
    )
    parser.add_argument(
        "--cluster-reads", choices=["owner", "here"], default="owner", help="Cassandra, N processes: the server's flag"
    )
    args = parser.parse_args()
    if not wrk.available():
        raise SystemExit("wrk is not installed: make bench-tools")
    env = dict(os.environ)
    if args.native:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(NATIVE_DIR), env.get("PYTHONPATH")) if p)
    build = server_build(env)
    if args.native and build != "native":
        raise SystemExit("the native build is missing: make native")
    rows: list[Row] = []
    cluster = args.storage == "cassandra" and args.processes > 1
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "voedger.cli.voedger", "server", "--app", f"test/shop={APP_DIR}"]
        cmd += ["--max-queries-per-ws", "0"]
        if not args.auth:
            cmd.append("--insecure-dev")
        if args.storage == "cassandra":
            suffix = uuid.uuid4().hex[:5]
            cmd += ["--storage", f"cassandra://{args.cassandra}/?replication=1&keyspace_suffix={suffix}"]
        ports = [free_port() for _ in range(args.processes if cluster else 1)]
        metrics_port = free_port()
        internal = consecutive_free_ports(args.processes) if args.processes > 1 and not cluster else 0
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for i, port in enumerate(ports):
                own = [*cmd, "--data-dir", f"{tmp}/{i}", "--port", str(port)]
                if i == 0:
                    own += ["--metrics-port", str(metrics_port)]
                if cluster:
                    own += ["--advertise", f"http://127.0.0.1:{port}", "--cluster-reads", args.cluster_reads]
                elif internal:
                    own += ["--processes", str(args.processes), "--internal-port", str(internal)]
                procs.append(subprocess.Popen(own, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
                await wait_ready(port, procs[-1])  # one after the other: each joins the cluster
            for i in range(1, args.processes if internal else 1):  # every reader listens before the load
                await wait_ready(internal + i, procs[0])
            owner = await sign_in_owner(ports[0]) if args.auth else None
            wsids = await create_workspaces(ports[0], 10, owner)
            docs = await fill(ports[0], wsids)
            pids = [p.pid for p in procs] if cluster else [procs[0].pid, *children(procs[0].pid)]
            names = ["collection", "doc", "view"] if args.scenario == "all" else [args.scenario]
            for name in names:
                wrk.run_spread(
                    ports,
                    "/api/test/shop/WSID/q.sys.Collection",
                    COLLECTION_BODY,
                    wsids,
                    clients=args.clients,
                    seconds=1,
                    headers=AUTH_HEADER,
                )
                rows.append(run_scenario(name, ports, pids, wsids, docs, args, metrics_port))
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=60)
    mode = "authentication on (Bearer token, ACL)" if args.auth else "--insecure-dev"
    print(
        f"Reads, {args.clients} clients (wrk, {args.seconds} s each), storage {args.storage}, {mode}, {build} build, "
        f"{args.processes} process(es){f', --cluster-reads {args.cluster_reads}' if cluster else ''}\n"
    )
    print(
        "| scenario | reads/s | p50 ms | p99 ms | server CPU µs/read | server peak RSS MiB | load avg before / after "
        "| loop waiting for a core | loop stalls > 50 / > 100 ms | CPU stolen |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row.line())


if __name__ == "__main__":
    asyncio.run(main())
