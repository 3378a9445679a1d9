"""Notification benchmark: how long after a command's answer its event reaches the subscribers.

    python benchmarks/notifications.py [--commands 500] [--concurrency 1,16] [--subscribers 1,100]

Starts a server in a subprocess (this script with ``--serve``: one VVM on a fresh SQLite folder,
the shop application of the tests, a shop workspace with an item, authentication off, quotas
per subject raised since one subject holds every stream), opens
``--subscribers`` API v2 notification streams on the view ``shop.Sales``, then sends
``--commands`` ``c.shop.MakeOrder`` commands from ``--concurrency`` clients at once; the order's
SYNC projector writes ``shop.Sales``. For every command and every subscriber, the delay is the
time from the command's answer reaching its client to the first event whose offset is at least
the command's WLog offset reaching that subscriber (updates that pile up collapse into the latest
offset, so one event may stand for several commands). A negative delay: the event came first.

``--cluster``: the server subprocess runs two VVMs of one cluster instead (both in that process,
over one shared in-memory storage, each behind its own HTTP port, every hop between them over
loopback HTTP); the subscribers connect to the process that does not own the workspace, the
commands go to the one that does, so every event crosses from one to the other
(``POST /_cluster/n10n``).

Prints a table per scenario: commands, commands per second, and the delay's p50, p99 and max in
milliseconds, over all (command, subscriber) pairs; then how long a stream took to open (from its
request to its ``channelId`` event, the subscribers opening together): p50 and max in ms. In a
cluster that answer waits until the other process holds the watched key.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROOT = Path(__file__).resolve().parent.parent
APP = "test/shop"
APP_DIR = ROOT / "tests" / "router" / "shop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server ---------------------------------------------------------------------------------


async def serve(port: int, data: str) -> None:
    from voedger.appdef import QName
    from voedger.n10n import Quotas
    from voedger.processors.command import CommandRequest
    from voedger.processors.principal import SYSTEM
    from voedger.router.app import MAX_FRAME, build_app
    from voedger.router.http import serve as http_serve
    from voedger.router.local import LocalTransport
    from voedger.structs.wsid import new_wsid
    from voedger.vvm.server import VVM, ServerConfig

    # One subject (authentication is off) holds every stream: room for all of them.
    quotas = Quotas(channels_per_subject=10_000, subscriptions_per_subject=10_000)
    config = ServerConfig(storage_url=f"sqlite://{data}", apps=[(APP, APP_DIR)], insecure_dev=True, n10n_quotas=quotas)
    vvm = VVM(config)
    await vvm.start()
    shop = new_wsid(1, 500_001)
    desc = {"sys.QName": "sys.WorkspaceDescriptor", "CreatedAtMs": 1, "InitCompletedAtMs": 1}
    body = {
        "cuds": [
            {"fields": {"sys.ID": 1, **desc, "WSName": "shop", "WSKind": "shop.ShopDesc"}},
            {"fields": {"sys.ID": 2, "sys.QName": "shop.ShopDesc", "Name": "Corner shop"}},
            {"fields": {"sys.ID": 3, "sys.QName": "shop.Item", "Name": "tea"}},
        ]
    }
    result = await vvm.app(APP).partition(shop).submit(CommandRequest(shop, QName("sys", "CUD"), body, SYSTEM))
    print(json.dumps({"wsid": shop, "item": result.new_ids["3"]}), flush=True)
    app = build_app(vvm, {1: LocalTransport(vvm)})
    try:
        await http_serve(app, "127.0.0.1", port, max_body=MAX_FRAME, before_stop=vvm.leave, graceful=2.0)
    finally:
        await vvm.stop()


async def serve_cluster(port: int) -> None:
    """Two VVMs of a cluster over one in-memory storage; prints where the shop lives."""
    import voedger.vvm.server as vvm_server
    from voedger.appdef import QName
    from voedger.n10n import Quotas
    from voedger.processors.command import CommandRequest
    from voedger.processors.principal import SYSTEM
    from voedger.router.http import HttpServer
    from voedger.router.server import make_asgi
    from voedger.storage import StorageProvider
    from voedger.storage.mem import MemStorageFactory
    from voedger.structs.wsid import new_wsid, partition_of

    shared = MemStorageFactory()
    vvm_server.open_storage = lambda url, clock: StorageProvider(shared)  # type: ignore[assignment]
    quotas = Quotas(channels_per_subject=10_000, subscriptions_per_subject=10_000)
    started = []
    for p in (port, free_port()):
        base = f"http://127.0.0.1:{p}"
        config = vvm_server.ServerConfig(
            storage_url="mem://",
            apps=[(APP, APP_DIR)],
            insecure_dev=True,
            cluster=True,
            advertise=base,
            n10n_quotas=quotas,
        )
        app, vvm = make_asgi(config)
        server = HttpServer(app)
        await server.start("127.0.0.1", p)
        started.append((server, vvm, base))
    for _, vvm, _ in started:
        assert vvm.ownership is not None and await vvm.ownership.converged(30)
    shop = new_wsid(1, 500_001)
    [(_, owner, owner_url)] = [
        s for s in started if partition_of(shop, s[1].app(APP).runtime.num_partitions) in s[1].app(APP).partitions
    ]
    other_url = next(b for _, _, b in started if b != owner_url)
    desc = {"sys.QName": "sys.WorkspaceDescriptor", "CreatedAtMs": 1, "InitCompletedAtMs": 1}
    body = {
        "cuds": [
            {"fields": {"sys.ID": 1, **desc, "WSName": "shop", "WSKind": "shop.ShopDesc"}},
            {"fields": {"sys.ID": 2, "sys.QName": "shop.ShopDesc", "Name": "Corner shop"}},
            {"fields": {"sys.ID": 3, "sys.QName": "shop.Item", "Name": "tea"}},
        ]
    }
    result = await owner.app(APP).partition(shop).submit(CommandRequest(shop, QName("sys", "CUD"), body, SYSTEM))
    setup = {"wsid": shop, "item": result.new_ids["3"], "commands": owner_url, "subscribers": other_url}
    print(json.dumps(setup), flush=True)
    try:
        await asyncio.Event().wait()  # until terminated
    finally:
        for server, vvm, _ in started:
            await vvm.leave()
            await server.stop(2.0)


# --- the client ---------------------------------------------------------------------------------


class Subscriber:
    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.times: list[float] = []
        self.ready = asyncio.Event()
        self.opened = 0.0
        """Seconds from the request to its ``channelId`` event: the subscription's answer, which
        in a cluster waits until the other process holds the watched key."""

    async def run(self, client: httpx.AsyncClient, wsid: int) -> None:
        body = {"subscriptions": [{"entity": "shop.Sales", "wsid": wsid}]}
        started = time.perf_counter()
        async with client.stream("POST", f"/api/v2/apps/{APP}/notifications", json=body) as r:
            assert r.status_code == 200, r.status_code
            buf = b""
            async for chunk in r.aiter_raw():
                now = time.perf_counter()
                buf += chunk
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    event, data = (line.split(b": ", 1)[1] for line in block.split(b"\n"))
                    if event == b"channelId":
                        self.opened = now - started
                        self.ready.set()
                    else:
                        self.offsets.append(int(data))
                        self.times.append(now)

    def seen(self, offset: int) -> float | None:
        i = bisect.bisect_left(self.offsets, offset)
        return self.times[i] if i < len(self.times) else None


async def scenario(
    bases: tuple[str, str], wsid: int, item: int, commands: int, concurrency: int, subscribers: int
) -> list[str]:
    limits = httpx.Limits(max_connections=subscribers + concurrency + 8)
    async with (
        httpx.AsyncClient(base_url=bases[0], timeout=30, limits=limits) as client,
        httpx.AsyncClient(base_url=bases[1], timeout=30, limits=limits) as listener,
    ):
        subs = [Subscriber() for _ in range(subscribers)]
        tasks = [asyncio.create_task(s.run(listener, wsid)) for s in subs]
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in subs)), 30)
        answers: list[tuple[int, float]] = []
        counter = iter(range(commands))
        order = {"args": {"sys.ID": 1, "Item": item, "Qty": 1}}

        async def worker() -> None:
            for _ in counter:
                r = await client.post(f"/api/{APP}/{wsid}/c.shop.MakeOrder", json=order)
                answered = time.perf_counter()
                assert r.status_code == 200, r.text
                answers.append((r.json()["CurrentWLogOffset"], answered))

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
        last = max(o for o, _ in answers)
        deadline = time.perf_counter() + 10
        while any(s.seen(last) is None for s in subs) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        delays: list[float] = []
        missing = 0
        for offset, answered in answers:
            for s in subs:
                at = s.seen(offset)
                if at is None:
                    missing += 1
                else:
                    delays.append((at - answered) * 1000)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    delays.sort()
    q = statistics.quantiles(delays, n=100, method="inclusive")
    opened = sorted(s.opened * 1000 for s in subs)
    return [
        str(commands),
        str(concurrency),
        str(subscribers),
        f"{commands / elapsed:.0f}",
        f"{q[49]:.1f}",
        f"{q[98]:.1f}",
        f"{delays[-1]:.1f}",
        str(missing),
        f"{statistics.median(opened):.1f}",
        f"{opened[-1]:.1f}",
    ]


async def main(args: argparse.Namespace) -> int:
    port = free_port()
    data = tempfile.mkdtemp(prefix="voedger-n10n-bench-")
    cmd = [sys.executable, os.path.abspath(__file__), "--serve", str(port), "--data", data]
    if args.cluster:
        cmd.append("--cluster")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        assert proc.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
        setup = json.loads(line)
        base = f"http://127.0.0.1:{port}"
        bases = (setup.get("commands", base), setup.get("subscribers", base))
        async with httpx.AsyncClient(base_url=base) as c:
            for _ in range(200):
                try:
                    if (await c.get("/api/check")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        head = [
            "commands",
            "concurrency",
            "subscribers",
            "cmd/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "missing",
            "open p50 ms",
            "open max ms",
        ]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for concurrency in (int(x) for x in args.concurrency.split(",")):
            for subscribers in (int(x) for x in args.subscribers.split(",")):
                row = await scenario(bases, setup["wsid"], setup["item"], args.commands, concurrency, subscribers)
                print("| " + " | ".join(row) + " |", flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--subscribers", default="1,100")
    parser.add_argument("--cluster", action="store_true", help="two processes' VVMs; events cross between them")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_cluster(args.serve) if args.cluster else serve(args.serve, args.data))
        raise SystemExit(0)
    raise SystemExit(asyncio.run(main(args)))
