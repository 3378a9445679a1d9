"""What one hop between clusters costs: a workspace of cluster 3 used through its own router
(direct) and through the main cluster's router (forwarded once, over loopback HTTP).

    python benchmarks/federation.py [--requests 400] [--seconds 8] [--clients 16]

Three clusters as real ``voedger server`` processes (the harness of ``tests/federation``: each
cluster one process with its own SQLite storage, ``--insecure-dev``), a user signed up through
cluster 2 and a workspace made in cluster 3. Then, for reads (``GET .../cdocs/shop.Item``) and
commands (``c.sys.CUD`` inserting a record):

1. latency: ``--requests`` requests one after the other, direct and forwarded, interleaved;
2. throughput: ``--clients`` clients without pause for ``--seconds``, direct, then forwarded.

All on one machine: the client, the router that forwards and the owner share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from tests.federation.harness import SHOP, Federation

from voedger.structs import wsid as ws

V2 = f"/api/v2/apps/{SHOP}"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


async def setup(fed: Federation, c: httpx.AsyncClient, cluster: int = 3) -> int:
    """A user signed up through cluster 2, and a workspace of theirs made in ``cluster``."""
    r2 = fed.clusters[2].url
    r = await c.post(f"{r2}{V2}/users", json={"login": "bench", "password": "pass-word-1"})
    assert r.status_code == 201, r.text
    while True:
        r = await c.post(f"{r2}{V2}/auth/login", json={"login": "bench", "password": "pass-word-1"})
        if r.status_code == 200:
            break
        await asyncio.sleep(0.1)
    profile = int(r.json()["profileWSID"])
    args = {
        "WSName": "b",
        "WSKind": "shop.ShopDesc",
        "WSKindInitializationData": '{"Name":"B"}',
        "WSClusterID": cluster,
    }
    r = await c.post(f"{r2}/api/{SHOP}/{profile}/c.sys.InitChildWorkspace", json={"args": args})
    assert r.status_code == 200, r.text
    query = {"args": {"WSName": "b"}, "elements": [{"fields": ["WSID"]}]}
    while True:
        r = await c.post(f"{r2}/api/{SHOP}/{profile}/q.sys.QueryChildWorkspaceByName", json=query)
        wsid = r.json()["sections"][0]["elements"][0][0][0][0]
        if wsid:
            assert ws.cluster_id(int(wsid)) == cluster
            return int(wsid)
        await asyncio.sleep(0.1)


async def one(c: httpx.AsyncClient, router: str, child: int, kind: str, n: int) -> None:
    if kind == "read":
        r = await c.get(f"{router}{V2}/workspaces/{child}/cdocs/shop.Item?limit=10")
    else:
        cud = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": f"i{n}"}}]}
        r = await c.post(f"{router}/api/{SHOP}/{child}/c.sys.CUD", json=cud)
    assert r.status_code == 200, r.text


async def latency(
    c: httpx.AsyncClient, routes: dict[str, str], child: int, kind: str, n: int
) -> dict[str, list[float]]:
    got: dict[str, list[float]] = {name: [] for name in routes}
    for i in range(n):
        for name, router in routes.items():
            began = time.perf_counter()
            await one(c, router, child, kind, i)
            got[name].append(time.perf_counter() - began)
    return got


async def throughput(router: str, child: int, kind: str, clients: int, seconds: float) -> float:
    done = 0
    stop = time.monotonic() + seconds

    async def client(k: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(timeout=30) as c:
            i = 0
            while time.monotonic() < stop:
                await one(c, router, child, kind, k * 1_000_000 + i)
                done += 1
                i += 1

    await asyncio.gather(*(client(k) for k in range(clients)))
    return done / seconds


class DelayProxy:
    """A TCP proxy on 127.0.0.1 that delays every chunk by ``one_way`` seconds in each
    direction, in order: a link between two regions (the kernel here has no ``netem``)."""

    def __init__(self, upstream_port: int, one_way: float) -> None:
        self.upstream_port = upstream_port
        self.one_way = one_way
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()
            writer.close()

        sender = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.one_way, chunk))
        except ConnectionError:
            pass
        queue.put_nowait((0.0, b""))
        with contextlib.suppress(ConnectionError):
            await sender

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        task.add_done_callback(self.connections.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        except asyncio.CancelledError:  # stop(): end quietly (asyncio's stream callback logs a cancelled task)
            writer.close()
            up_writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)


async def regions(args: argparse.Namespace) -> None:
    """Section 6 of the issue: clusters 1, 2, 3 in regions 1, 2, 3; a workspace of cluster 2."""
    one_way = args.one_way_ms / 1000
    with tempfile.TemporaryDirectory(prefix="voedger-fed-regions-") as tmp:
        fed = Federation(Path(tmp), insecure=True)
        proxies = {i: DelayProxy(c.port, one_way) for i, c in fed.clusters.items()}
        for i, proxy in proxies.items():
            await proxy.start()
            fed.internal_urls[i] = proxy.url  # every hop between clusters crosses regions
            fed.clusters[i].extra = ["--max-queries-per-ws", "0"]
        await fed.start()
        try:
            async with httpx.AsyncClient(timeout=30) as c:
                child = await setup(fed, c, cluster=2)
                paths = {
                    "region 2 -> router 2 (its own cluster)": fed.clusters[2].url,
                    "region 3 -> router 3 -> cluster 2": fed.clusters[3].url,
                    "region 1 -> router 1 (main) -> cluster 2": fed.clusters[1].url,
                    "region 3 -> router 2 across regions": proxies[2].url,
                }
                print(
                    f"\nRegions: a workspace of cluster 2 (region 2); {args.one_way_ms:.0f} ms each way between regions"
                )
                print("(delaying TCP proxies on loopback; the kernel has no netem), ms\n")
                print("| client and path | read p50 | read p99 | command p50 | command p99 |")
                print("| --- | ---: | ---: | ---: | ---: |")
                for name, router in paths.items():
                    row = []
                    for kind in ("read", "command"):
                        got = await latency(c, {name: router}, child, kind, args.requests // 4)
                        row += [pct(got[name], 50), pct(got[name], 99)]
                    print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
        finally:
            fed.stop()
            for proxy in proxies.values():
                await proxy.stop()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--one-way-ms", type=float, default=20.0, help="delay between regions, each way")
    ap.add_argument("--only", choices=("hop", "regions"), default=None)
    args = ap.parse_args()
    if args.only != "hop":
        await regions(args)
    if args.only == "regions":
        return
    with tempfile.TemporaryDirectory(prefix="voedger-fed-bench-") as tmp:
        fed = Federation(Path(tmp), insecure=True)
        for cluster in fed.clusters.values():
            cluster.extra = ["--max-queries-per-ws", "0"]  # the clients all read one workspace
        await fed.start()
        try:
            async with httpx.AsyncClient(timeout=30) as c:
                child = await setup(fed, c)
                routes = {"direct (cluster 3's router)": fed.clusters[3].url, "forwarded (main's router)": fed.main.url}
                print("\nLatency, one request at a time (ms)\n")
                print("| request | via | n | p50 | p90 | p99 | mean |")
                print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
                for kind in ("read", "command"):
                    await latency(c, routes, child, kind, 20)  # warm-up
                    got = await latency(c, routes, child, kind, args.requests)
                    for name, values in got.items():
                        print(
                            f"| {kind} | {name} | {len(values)} | {pct(values, 50):.2f} | {pct(values, 90):.2f} | "
                            f"{pct(values, 99):.2f} | {statistics.mean(values) * 1000:.2f} |"
                        )
            print(f"\nThroughput, {args.clients} clients without pause, {args.seconds:.0f} s each (requests/s)\n")
            print("| request | via | requests/s |")
            print("| --- | --- | ---: |")
            for kind in ("read", "command"):
                for name, router in routes.items():
                    rate = await throughput(router, child, kind, args.clients, args.seconds)
                    print(f"| {kind} | {name} | {rate:.0f} |")
        finally:
            fed.stop()
        bad = fed.tracebacks()
        if bad:
            print(f"\ntracebacks in the logs of {bad}")


if __name__ == "__main__":
    asyncio.run(main())
