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

from tests.federation.harness import SHOP, Federation  # noqa: E402
from voedger.structs import wsid as ws  # noqa: E402

V2 = f"/api/v2/apps/{SHOP}"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


async def setup(fed: Federation, c: httpx.AsyncClient) -> int:
    r2 = fed.clusters[2].url
    r = await c.post(f"{r2}{V2}/users", json={"login": "bench", "password": "pass-word-1"})
    assert r.status_code == 201, r.text
    while True:
        r = await c.post(f"{r2}{V2}/auth/login", json={"login": "bench", "password": "pass-word-1"})
        if r.status_code == 200:
            break
        await asyncio.sleep(0.1)
    profile = int(r.json()["profileWSID"])
    args = {"WSName": "b", "WSKind": "shop.ShopDesc", "WSKindInitializationData": '{"Name":"B"}', "WSClusterID": 3}
    r = await c.post(f"{r2}/api/{SHOP}/{profile}/c.sys.InitChildWorkspace", json={"args": args})
    assert r.status_code == 200, r.text
    query = {"args": {"WSName": "b"}, "elements": [{"fields": ["WSID"]}]}
    while True:
        r = await c.post(f"{r2}/api/{SHOP}/{profile}/q.sys.QueryChildWorkspaceByName", json=query)
        wsid = r.json()["sections"][0]["elements"][0][0][0][0]
        if wsid:
            assert ws.cluster_id(int(wsid)) == 3
            return int(wsid)
        await asyncio.sleep(0.1)


async def one(c: httpx.AsyncClient, router: str, child: int, kind: str, n: int) -> None:
    if kind == "read":
        r = await c.get(f"{router}{V2}/workspaces/{child}/cdocs/shop.Item?limit=10")
    else:
        cud = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": f"i{n}"}}]}
        r = await c.post(f"{router}/api/{SHOP}/{child}/c.sys.CUD", json=cud)
    assert r.status_code == 200, r.text


async def latency(c: httpx.AsyncClient, routes: dict[str, str], child: int, kind: str, n: int) -> dict[str, list[float]]:
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


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", type=int, default=16)
    args = ap.parse_args()
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
