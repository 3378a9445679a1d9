"""Command benchmark: durable ``c.sys.CUD`` inserts over HTTP with 64 concurrent clients.

    python benchmarks/commands.py [--storage sqlite|cassandra] [--cassandra 127.0.0.1:9042]
                                  [--total 20000] [--clients 64]

Starts ``voedger server`` in a subprocess on a fresh data folder (or fresh keyspaces), loads it
from this process and prints a table: throughput, p50, p99, and the server's peak memory.
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
from pathlib import Path

import orjson

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.loadgen import LoadResult, request_bytes, run_load  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "tests" / "router" / "shop"
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


def cud_request(client: int, n: int) -> bytes:
    wsid = app_wsid((client + n) % NUM_APP_WS)
    fields = {
        "sys.ID": 1,
        "sys.QName": "sys.ChildWorkspace",
        "WSName": f"w{client}-{n}",
        "WSKind": "shop.ShopDesc",
        "WSClusterID": 1,
    }
    return request_bytes("POST", f"/api/test/shop/{wsid}/c.sys.CUD", orjson.dumps({"cuds": [{"fields": fields}]}))


def row(name: str, r: LoadResult, rss: float) -> str:
    ok = sum(c for s, c in r.statuses.items() if s == 200)
    bad = {s: c for s, c in r.statuses.items() if s != 200}
    note = f" (non-200: {bad})" if bad else ""
    return (
        f"| {name} | {ok / r.seconds:,.0f} | {pct(r.latencies, 0.5):.1f} | {pct(r.latencies, 0.99):.1f} "
        f"| {rss:.0f} |{note}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", choices=["sqlite", "cassandra"], default="sqlite")
    parser.add_argument("--cassandra", default="127.0.0.1:9042")
    parser.add_argument("--total", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "voedger.cli.voedger",
            "server",
            "--data-dir",
            tmp,
            "--insecure-dev",
            "--app",
            f"test/shop={APP_DIR}",
        ]
        if args.storage == "cassandra":
            suffix = uuid.uuid4().hex[:5]
            cmd += ["--storage", f"cassandra://{args.cassandra}/?replication=1&keyspace_suffix={suffix}"]
        port = free_port()
        cmd += ["--port", str(port)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await wait_ready(port, proc)
            await run_load(port, cud_request, args.clients, 500)  # warm-up
            result = await run_load(port, cud_request, args.clients, args.total)
            rss = peak_rss_mib(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    print(f"{args.total} c.sys.CUD inserts, {args.clients} clients, storage {args.storage}\n")
    print("| scenario | commands/s | p50 ms | p99 ms | server peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    print(row(f"c.sys.CUD insert ({args.storage})", result, rss))


if __name__ == "__main__":
    asyncio.run(main())
