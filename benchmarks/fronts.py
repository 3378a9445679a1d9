"""The cost of a request through each HTTP front (``voedger server --http-front``): a cheap GET
(``/api/check``) over keep-alive connections, the same client for every front.

    python benchmarks/fronts.py [--rounds 3] [--seconds 5] [--clients 16] [--no-tls]

Starts one ``voedger server`` a front and a transport (plain HTTP, and TLS with a self-signed
certificate made by the openssl command), then runs the scenarios one after another, round after
round, so that the machine's other load falls on each alike. The client is ``h2load`` (Debian
package ``nghttp2-client``, a C load generator): ``--h1`` for HTTP/1.1, HTTP/2 with prior
knowledge in clear (h2c) or by ALPN over TLS; one request in flight a connection either way.
Each run prints requests/s, p50 and p99 (from h2load's per-request log), the server's CPU per
request (user + system time of the server process over the run, from /proc: it depends least on
the machine's load) and the load average before the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.commands import cpu_seconds, free_port

SCENARIOS = [
    # (front, tls, protocol)
    ("builtin", False, "h1"),
    ("uvicorn", False, "h1"),
    ("hypercorn", False, "h1"),
    ("hypercorn", False, "h2"),
    ("builtin", True, "h1"),
    ("uvicorn", True, "h1"),
    ("hypercorn", True, "h1"),
    ("hypercorn", True, "h2"),
]


@dataclass
class Run:
    round: int
    front: str
    tls: bool
    protocol: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    failed: int
    load: float

    def line(self) -> str:
        transport = ("HTTP/2" if self.protocol == "h2" else "HTTP/1.1") + (" TLS" if self.tls else "")
        return (
            f"| {self.round} | {self.front} | {transport} | {self.requests / self.seconds:,.0f} | {self.p50_ms:.2f} "
            f"| {self.p99_ms:.2f} | {self.cpu_us:.0f} | {self.failed} | {self.load:.1f} |"
        )


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def check(url: str, protocol: str) -> None:
    """The scenario's answer is a 200 over the protocol it names."""
    async with httpx.AsyncClient(verify=False, http1=protocol == "h1", http2=protocol == "h2") as client:
        r = await client.get(f"{url}/api/check")
    expected = "HTTP/2" if protocol == "h2" else "HTTP/1.1"
    if (r.status_code, r.http_version) != (200, expected):
        raise SystemExit(f"{url}: {r.status_code} over {r.http_version}, not 200 over {expected}")


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(verify=False) as client:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server for {url} exited")
            try:
                if (await client.get(f"{url}/api/check")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server for {url} did not start")
            await asyncio.sleep(0.2)


def measure(url: str, protocol: str, pid: int, args: argparse.Namespace, round_: int, scenario: tuple) -> Run:
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        cmd = ["h2load", "-t1", f"-c{args.clients}", "-m1", f"-D{args.seconds}", "--warm-up-time=1"]
        cmd += [f"--log-file={log.name}", f"{url}/api/check"]
        if protocol == "h1":
            cmd.append("--h1")
        load = os.getloadavg()[0]
        cpu_before = cpu_seconds(pid)
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        cpu = cpu_seconds(pid) - cpu_before
        rows = [line.split("\t") for line in Path(log.name).read_text().splitlines() if line]
    latencies = sorted(int(r[2]) / 1000 for r in rows if r[1] != "-1")
    # Status -1: a stream that failed (or was cut at the end of the run). h2load reads the status
    # line of Hypercorn's HTTP/1.1 answers ("HTTP/1.1 200 ", no reason phrase) as status 0:
    # answered, as ``check`` saw.
    failed = sum(1 for r in rows if r[1] not in ("200", "0"))
    if not latencies:
        raise SystemExit(f"no answers from {url}:\n{out}")
    # The CPU counts the warm-up second too: spread it over the requests of both.
    warm_and_measured = len(rows) * (args.seconds + 1) / args.seconds
    return Run(
        round_,
        scenario[0],
        scenario[1],
        protocol,
        len(rows),
        float(args.seconds),
        latencies[len(latencies) // 2],
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        cpu / warm_and_measured * 1e6,
        failed,
        load,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="seconds a run (after a second of warm-up)")
    parser.add_argument("--clients", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--no-tls", action="store_true", help="plain HTTP only")
    args = parser.parse_args()
    if shutil.which("h2load") is None:
        raise SystemExit("needs h2load (Debian package nghttp2-client)")
    scenarios = [s for s in SCENARIOS if not (args.no_tls and s[1])]
    servers: dict[tuple[str, bool], tuple[subprocess.Popen[bytes], str]] = {}
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = self_signed(Path(tmp)) if not args.no_tls else (Path(), Path())
        try:
            for front, tls, _ in scenarios:
                if (front, tls) in servers:
                    continue
                port = free_port()
                data = Path(tmp) / f"{front}-{'tls' if tls else 'plain'}"
                cmd = [sys.executable, "-m", "voedger.cli.voedger", "server", "--data-dir", str(data)]
                cmd += ["--port", str(port), "--insecure-dev", "--http-front", front]
                if tls:
                    cmd += ["--tls-cert", str(cert), "--tls-key", str(key)]
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
                servers[front, tls] = proc, url
                await wait_ready(url, proc)
            for front, tls, protocol in scenarios:
                await check(servers[front, tls][1], protocol)
            for round_ in range(1, args.rounds + 1):
                for scenario in scenarios:
                    front, tls, protocol = scenario
                    proc, url = servers[front, tls]
                    run = measure(url, protocol, proc.pid, args, round_, scenario)
                    print(run.line(), file=sys.stderr, flush=True)  # progress; the table comes at the end
                    runs.append(run)
        finally:
            for proc, _ in servers.values():
                proc.send_signal(signal.SIGTERM)
            for proc, _ in servers.values():
                proc.wait(timeout=60)
    print(f"\nGET /api/check, {args.clients} keep-alive connections, h2load, {args.seconds} s a run\n")
    print("| round | front | transport | requests/s | p50 ms | p99 ms | server CPU µs/request | failed | load avg |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(run.line())


if __name__ == "__main__":
    asyncio.run(main())
