"""Command benchmark: durable ``c.sys.CUD`` inserts over HTTP with 64 concurrent clients.

    python benchmarks/commands.py [--storage sqlite|cassandra] [--cassandra 127.0.0.1:9042]
                                  [--loadgen auto|wrk|python] [--seconds 15] [--total 20000]
                                  [--clients 64] [--auth] [--native]

Starts ``voedger server`` in a subprocess on a fresh data folder (or fresh keyspaces), loads it
and prints a table: throughput, p50, p99, and the server's peak memory. The load comes from
``wrk`` when it is installed (``make bench-tools``; it runs ``--seconds`` per scenario), else
from the Python generator in ``loadgen.py`` (``--total`` requests per scenario), which takes
several times more of the shared CPU per request. ``--native`` runs the server from the native
build (``make native``: the command path compiled by mypyc) instead of the Python source.
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
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import wrk
from benchmarks.loadgen import AUTH_HEADER, LoadResult, read_response, request_bytes, run_load

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "tests" / "router" / "shop"
NATIVE_DIR = ROOT / ".native"
NUM_APP_WS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_wsid(n: int) -> int:
    return (1 << 47) + 0x10000 + n


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited during start")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /api/check HTTP/1.1\r\nHost: x\r\n\r\n")
            line = await reader.readline()
            writer.close()
            if b" 200 " in line:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the server did not start in 120 s")


async def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    r = await run_load(port, lambda c, n: request_bytes("POST", path, body), 1, 1, keep_bodies=True)
    return next(iter(r.statuses)), r.bodies[0]


async def sign_in_owner(port: int) -> int:
    """Auth mode: sign up and in as the owner-to-be; every request carries the token from now on.
    Returns the profile WSID, where the owner creates workspaces."""
    creds = orjson.dumps({"login": "bench-owner", "password": "bench-pa55"})
    status, body = await post(port, "/api/v2/apps/test/shop/users", creds)
    if status != 201:
        raise SystemExit(f"sign-up failed: {body!r}")
    deadline = time.monotonic() + 60
    while True:
        status, body = await post(port, "/api/v2/apps/test/shop/auth/login", creds)
        if status == 200:
            answer = orjson.loads(body)
            AUTH_HEADER["Authorization"] = f"Bearer {answer['principalToken']}"
            return int(answer["profileWSID"])
        if status != 409 or time.monotonic() > deadline:
            raise SystemExit(f"sign-in failed: {body!r}")
        await asyncio.sleep(0.1)


async def create_workspaces(port: int, count: int, owner: int | None = None) -> list[int]:
    """Shop workspaces made through the API (InitChildWorkspace, then polling for the WSID), in an
    application workspace (insecure mode) or in the owner's profile (auth mode)."""
    base = f"/api/test/shop/{owner or app_wsid(0)}"
    for i in range(count):
        status, body = await post(
            port,
            f"{base}/c.sys.InitChildWorkspace",
            orjson.dumps({"args": {"WSName": f"bench{i}", "WSKind": "shop.ShopDesc"}}),
        )
        if status != 200:
            raise SystemExit(f"InitChildWorkspace failed: {body!r}")
    wsids: list[int] = []
    deadline = time.monotonic() + 60
    for i in range(count):
        query = orjson.dumps({"args": {"WSName": f"bench{i}"}, "elements": [{"fields": ["WSID"]}]})
        while True:
            status, body = await post(port, f"{base}/q.sys.QueryChildWorkspaceByName", query)
            sections = orjson.loads(body).get("sections") if status == 200 else None
            wsid = sections[0]["elements"][0][0][0][0] if sections and sections[0]["elements"] else 0
            if wsid:
                wsids.append(int(wsid))
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"workspace bench{i} was not created: {body!r}")
            await asyncio.sleep(0.05)
    return wsids


def cud_request(wsids: list[int]) -> Callable[[int, int], bytes]:
    def make(client: int, n: int) -> bytes:
        wsid = wsids[(client + n) % len(wsids)]
        fields = {"sys.ID": 1, "sys.QName": "shop.Item", "Name": f"item {client}-{n}", "Price": n}
        return request_bytes("POST", f"/api/test/shop/{wsid}/c.sys.CUD", orjson.dumps({"cuds": [{"fields": fields}]}))

    return make


def collection_request(wsids: list[int]) -> Callable[[int, int], bytes]:
    body = orjson.dumps({"args": {"Schema": "shop.Item"}, "elements": [{"fields": ["Name", "Price"]}], "count": 10})

    def make(client: int, n: int) -> bytes:
        return request_bytes("POST", f"/api/test/shop/{wsids[(client + n) % len(wsids)]}/q.sys.Collection", body)

    return make


async def projector_lag(port: int, wsid: int, rate: float, seconds: float) -> list[float]:
    """Send inserts at ``rate`` per second; sample the async projector's view; return each
    command's lag: from its acknowledgement until the view shows its WLog offset."""
    acks: list[tuple[int, float]] = []
    samples: list[tuple[float, int]] = []
    done = asyncio.Event()
    total = int(rate * seconds)
    senders = 8

    async def sender(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.perf_counter()
        for n in range(k, total, senders):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(cud_request([wsid])(k, n))
            status, body = await read_response(reader)
            if status == 200:
                acks.append((orjson.loads(body)["CurrentWLogOffset"], time.perf_counter()))
        writer.close()

    async def sampler() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        path = f"/api/v2/apps/test/shop/workspaces/{wsid}/views/shop.ItemCount?where=%7B%22Part%22:0%7D"
        auth = "".join(f"{k}: {v}\r\n" for k, v in AUTH_HEADER.items())
        req = f"GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode()
        while not done.is_set() or (acks and (not samples or samples[-1][1] < max(a for a, _ in acks))):
            writer.write(req)
            status, body = await read_response(reader)
            results = orjson.loads(body).get("results") if status == 200 else None
            samples.append((time.perf_counter(), results[0].get("LastOffset", 0) if results else 0))
            await asyncio.sleep(0.005)
        writer.close()

    sampling = asyncio.create_task(sampler())
    await asyncio.gather(*(sender(k) for k in range(senders)))
    done.set()
    await asyncio.wait_for(sampling, 60)
    lags = []
    for offset, acked_at in acks:
        seen = next((t for t, last in samples if last >= offset and t >= acked_at), None)
        if seen is not None:
            lags.append(seen - acked_at)
    return lags


CUD_BODY = '{"cuds":[{"fields":{"sys.ID":1,"sys.QName":"shop.Item","Name":"item N_","Price":N_}}]}'
COLLECTION_BODY = '{"args":{"Schema":"shop.Item"},"elements":[{"fields":["Name","Price"]}],"count":10}'


@dataclass
class Scenario:
    """One scenario's figures, whichever tool generated the load."""

    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    note: str = ""

    @staticmethod
    def of_wrk(r: wrk.WrkResult) -> Scenario:
        note = f" (non-2xx: {r.non_2xx})" if r.non_2xx else ""
        note += f" (socket errors: {r.errors})" if r.errors else ""
        return Scenario(r.requests, (r.requests - r.non_2xx) / r.seconds, r.p50_ms, r.p99_ms, note)

    @staticmethod
    def of_load(r: LoadResult) -> Scenario:
        ok = sum(c for s, c in r.statuses.items() if s == 200)
        bad = {s: c for s, c in r.statuses.items() if s != 200}
        note = f" (non-200: {bad})" if bad else ""
        requests = sum(r.statuses.values())
        return Scenario(requests, ok / r.seconds, pct(r.latencies, 0.5), pct(r.latencies, 0.99), note)

    def row(self, name: str, rss: float) -> str:
        return f"| {name} | {self.rate:,.0f} | {self.p50_ms:.1f} | {self.p99_ms:.1f} | {rss:.0f} |{self.note}"


def server_build(env: dict[str, str]) -> str:
    """The build a server started with ``env`` runs: "native" when its command processor is compiled."""
    probe = "import voedger.processors.command as m; print(m.__file__)"
    origin = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    return "Python" if origin.strip().endswith(".py") else "native"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", choices=["sqlite", "cassandra"], default="sqlite")
    parser.add_argument("--cassandra", default="127.0.0.1:9042")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--seconds", type=int, default=15, help="seconds per scenario with wrk")
    parser.add_argument("--total", type=int, default=20000, help="requests per scenario with the Python generator")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--auth", action="store_true", help="authentication on: requests carry a token")
    parser.add_argument("--lag-rate", type=float, default=230.0, help="commands/s while measuring projector lag")
    parser.add_argument("--native", action="store_true", help="run the server from the native build (make native)")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.native:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(NATIVE_DIR), env.get("PYTHONPATH")) if p)
    build = server_build(env)
    if args.native and build != "native":
        raise SystemExit("the native build is missing: make native")
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and wrk.available())
    if use_wrk and not wrk.available():
        raise SystemExit("wrk is not installed: make bench-tools, or --loadgen python")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "voedger.cli.voedger",
            "server",
            "--data-dir",
            tmp,
            "--app",
            f"test/shop={APP_DIR}",
            # The query scenario reads one workspace from every client at once; the default
            # per-workspace limit on running reads (10) would answer most of them 503.
            "--max-queries-per-ws",
            "0",
        ]
        if not args.auth:
            cmd.append("--insecure-dev")
        if args.storage == "cassandra":
            suffix = uuid.uuid4().hex[:5]
            cmd += ["--storage", f"cassandra://{args.cassandra}/?replication=1&keyspace_suffix={suffix}"]
        port = free_port()
        cmd += ["--port", str(port)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            await wait_ready(port, proc)
            owner = await sign_in_owner(port) if args.auth else None
            wsids = await create_workspaces(port, 11, owner)
            query_ws = wsids.pop()  # a workspace with a 10-document collection, for the query scenario
            await run_load(port, cud_request([query_ws]), 1, 10)
            await run_load(port, cud_request(wsids), args.clients, 500)  # warm-up
            cpu0 = cpu_seconds(proc.pid)
            if use_wrk:
                cud_path = "/api/test/shop/WSID/c.sys.CUD"
                cud = Scenario.of_wrk(wrk.run(port, cud_path, CUD_BODY, wsids, args.clients, args.seconds, AUTH_HEADER))
            else:
                cud = Scenario.of_load(await run_load(port, cud_request(wsids), args.clients, args.total))
            cpu_per_command = (cpu_seconds(proc.pid) - cpu0) / cud.requests
            if use_wrk:
                coll_path = "/api/test/shop/WSID/q.sys.Collection"
                seconds = max(5, args.seconds // 2)
                coll = wrk.run(port, coll_path, COLLECTION_BODY, [query_ws], args.clients, seconds, AUTH_HEADER)
                queries = Scenario.of_wrk(coll)
            else:
                n_queries = max(1000, args.total // 10)
                queries = Scenario.of_load(
                    await run_load(port, collection_request([query_ws]), args.clients, n_queries)
                )
            lags = await projector_lag(port, wsids[0], args.lag_rate, 10)
            rss = peak_rss_mib(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    mode = "authentication on (Bearer token, ACL)" if args.auth else "--insecure-dev"
    tool = f"wrk, {args.seconds} s" if use_wrk else f"Python load generator, {args.total} requests"
    print(f"c.sys.CUD inserts, {args.clients} clients ({tool}), storage {args.storage}, {mode}, {build} build\n")
    print("| scenario | commands/s | p50 ms | p99 ms | server peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    print(cud.row(f"c.sys.CUD insert ({args.storage})", rss))
    print(queries.row(f"q.sys.Collection of 10 documents ({args.storage})", rss))
    extra_note = f"server CPU per command: {cpu_per_command * 1e6:.0f} us (all threads, async projectors included)"
    print(f"\n{extra_note}")
    print(
        f"async projector lag at {args.lag_rate:.0f} commands/s over 10 s: "
        f"p50 {pct(lags, 0.5):.1f} ms, p99 {pct(lags, 0.99):.1f} ms, max {pct(lags, 1.0):.1f} ms ({len(lags)} commands)"
    )


if __name__ == "__main__":
    asyncio.run(main())
