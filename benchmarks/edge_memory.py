"""The server's memory under hostile clients: peak RSS with ~1,000 slow or pipelining connections.

Each scenario starts a fresh server process on 127.0.0.1, measures its resident memory (VmRSS
from /proc, sampled every 0.1 s) before and while the clients run, and counts what the clients
were answered and how many connections the server still held at the end:

- ``slow-head``: N connections each send a request line and then one header byte every 2 s;
- ``slow-body``: N connections each send the head and all but the last 1 KiB of a 1 MiB body at
  once, then one byte every 2 s;
- ``pipelined``: N connections each send 17 pipelined POSTs of 64 KiB and read no answer;
- ``pipelined-big``: 4 connections each send 17 pipelined POSTs of 4 MiB and read no answer.

The first two run against ``voedger server`` (SQLite, the built-in applications); the pipelining
ones against the HTTP server alone with an application that reads the body and answers after
a second (a slow command), since what piles up there is the server's queue, not the application's.

    .venv/bin/python benchmarks/edge_memory.py                     # every scenario, 1,000 connections
    .venv/bin/python benchmarks/edge_memory.py --src OTHER/src     # the same against another checkout
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
SLOW_GAP = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# --- the bare server (a subprocess) -------------------------------------------------------------


def serve_bare(port: int) -> None:
    """The HTTP server alone, with an application that answers after a second."""
    from voedger.router import http

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        more = True
        size = 0
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await asyncio.sleep(1.0)
        body = b"%d" % size
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    print("serving with", http.__file__, flush=True)
    http.run(app, HOST, port)


# --- measuring ----------------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Outcome:
    statuses: Counter[str] = field(default_factory=Counter)
    open_at_end: int = 0


async def _status(reader: asyncio.StreamReader) -> str:
    line = await reader.readline()
    return line.split(b" ")[1].decode() if line.startswith(b"HTTP/") else "closed"


async def _watch(reader: asyncio.StreamReader, outcome: Outcome, done: asyncio.Event) -> None:
    """The first answer of a connection whose client reads answers (or its close)."""
    try:
        outcome.statuses[await _status(reader)] += 1
    except (ConnectionError, OSError):
        outcome.statuses["reset"] += 1
    done.set()


async def _connect(port: int, gate: asyncio.Semaphore) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with gate:  # a listen backlog's worth at a time
        return await asyncio.open_connection(HOST, port)


async def slow_head(port: int, n: int, seconds: float, outcome: Outcome) -> None:
    async def one() -> None:
        reader, writer = await _connect(port, gate)
        done = asyncio.Event()
        watcher = asyncio.create_task(_watch(reader, outcome, done))
        writer.write(b"GET /api/check HTTP/1.1\r\nhost: bench\r\nx-slow: ")
        await _trickle(writer, done, stop)
        if not done.is_set():
            outcome.open_at_end += 1
        watcher.cancel()
        writer.close()

    gate = asyncio.Semaphore(64)
    stop = time.monotonic() + seconds
    await asyncio.gather(*(one() for _ in range(n)))


async def slow_body(port: int, n: int, seconds: float, outcome: Outcome) -> None:
    size = 1024 * 1024
    head = b"POST /api/v2/apps/sys/registry/auth/login HTTP/1.1\r\nhost: bench\r\ncontent-length: %d\r\n\r\n" % size
    most = b"x" * (size - 1024)

    async def one() -> None:
        reader, writer = await _connect(port, gate)
        done = asyncio.Event()
        watcher = asyncio.create_task(_watch(reader, outcome, done))
        try:
            writer.write(head + most)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        await _trickle(writer, done, stop)
        if not done.is_set():
            outcome.open_at_end += 1
        watcher.cancel()
        writer.close()

    gate = asyncio.Semaphore(64)
    stop = time.monotonic() + seconds
    await asyncio.gather(*(one() for _ in range(n)))


async def _trickle(writer: asyncio.StreamWriter, done: asyncio.Event, stop: float) -> None:
    while not done.is_set() and time.monotonic() < stop:
        try:
            writer.write(b"a")
        except (ConnectionError, OSError):
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), SLOW_GAP)


async def pipelined(port: int, n: int, seconds: float, outcome: Outcome, body_size: int = 64 * 1024) -> None:
    body = b"p" * body_size
    request = b"POST /x HTTP/1.1\r\nhost: bench\r\ncontent-length: %d\r\n\r\n%s" % (body_size, body)

    async def one() -> None:
        _reader, writer = await _connect(port, gate)
        sent = 0
        try:
            for _ in range(17):
                writer.write(request)
                await asyncio.wait_for(writer.drain(), max(0.1, stop - time.monotonic()))
                sent += 1
        except (TimeoutError, ConnectionError, OSError):
            pass
        outcome.statuses[f"{sent} of 17 sent"] += 1
        await asyncio.sleep(max(0.0, stop - time.monotonic()))
        writer.close()

    gate = asyncio.Semaphore(64)
    stop = time.monotonic() + seconds
    await asyncio.gather(*(one() for _ in range(n)))


Scenario = Callable[[int, int, float, Outcome], Awaitable[None]]


async def pipelined_big(port: int, n: int, seconds: float, outcome: Outcome) -> None:
    await pipelined(port, 4, seconds, outcome, 4 * 1024 * 1024)


SCENARIOS: dict[str, tuple[str, Scenario]] = {
    "slow-head": ("voedger", slow_head),
    "slow-body": ("voedger", slow_body),
    "pipelined": ("bare", pipelined),
    "pipelined-big": ("bare", pipelined_big),
}


# --- running ------------------------------------------------------------------------------------


def start_server(kind: str, port: int, src: str | None, data_dir: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    if kind == "voedger":
        cmd = [sys.executable, "-m", "voedger.cli.voedger", "server", "--data-dir", data_dir, "--port", str(port)]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "serve-bare", str(port)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                s.sendall(b"GET /api/check HTTP/1.1\r\nhost: bench\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not start")


async def run_one(name: str, n: int, seconds: float, src: str | None) -> dict[str, Any]:
    kind, scenario = SCENARIOS[name]
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        proc = start_server(kind, port, src, data_dir)
        try:
            wait_listening(port, proc)
            await asyncio.sleep(1.0)
            baseline = rss_mib(proc.pid)
            peak = baseline
            outcome = Outcome()
            task = asyncio.create_task(scenario(port, n, seconds, outcome))
            while not task.done():
                peak = max(peak, rss_mib(proc.pid))
                await asyncio.wait([task], timeout=0.1)
            task.result()
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {
        "scenario": name,
        "server": kind,
        "connections": 4 if name == "pipelined-big" else n,
        "baseline": baseline,
        "peak": peak,
        "open": outcome.open_at_end if name.startswith("slow") else "",
        "answers": ", ".join(f"{k}: {v}" for k, v in sorted(outcome.statuses.items())),
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "serve-bare":
        serve_bare(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=25.0, help="How long the clients keep at it.")
    parser.add_argument("--src", default=None, help="Run the server from this source tree (PYTHONPATH).")
    args = parser.parse_args()
    print("| scenario | server | connections | RSS before MiB | peak RSS MiB | held at the end | answers |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name in args.scenarios.split(","):
        r = asyncio.run(run_one(name, args.connections, args.seconds, args.src))
        print(
            f"| {r['scenario']} | {r['server']} | {r['connections']} | {r['baseline']:.0f} | {r['peak']:.0f} "
            f"| {r['open']} | {r['answers']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
