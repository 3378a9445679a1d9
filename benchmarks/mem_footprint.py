"""Memory of a server on ``mem://`` against the bytes it holds: the target is at most 3x.

    python benchmarks/mem_footprint.py [--inserts 100000] [--concurrency 64]

Starts a VVM on ``mem://`` in process (``--insecure-dev``), makes 10 shop workspaces, then sends
``--inserts`` ``c.sys.CUD`` inserts of a ``shop.Item`` (the document of ``benchmarks/commands.py``)
to the application (the router, the command processor, the async projectors; no sockets),
``--concurrency`` at a time, and waits for the projectors to catch up. It prints the rows the
driver holds, their bytes (keys and values: the payload), the bytes of the Python objects
holding them, and how much the process's resident memory grew over the inserts, each against the
payload. ``PYTHONPATH=.native`` runs the native build.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.reads_inproc import call, make_workspaces

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "tests" / "router" / "shop"
NUM_WS = 10
MIB = 1024 * 1024


def rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def insert(app: Any, wsids: list[int], count: int, concurrency: int) -> None:
    counter = iter(range(count))

    async def worker() -> None:
        for n in counter:
            fields = {"sys.ID": 1, "sys.QName": "shop.Item", "Name": f"item {n}", "Price": n % 1000}
            body = orjson.dumps({"cuds": [{"fields": fields}]})
            status, answer = await call(app, "POST", f"/api/test/shop/{wsids[n % len(wsids)]}/c.sys.CUD", body)
            if status != 200:
                raise SystemExit(f"insert failed: {status} {answer!r}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inserts", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    from voedger.router.app import build_app
    from voedger.router.local import LocalTransport
    from voedger.router.server import settle_heap
    from voedger.storage.mem import MemStorageFactory
    from voedger.vvm.server import VVM, ServerConfig

    config = ServerConfig(storage_url="mem://", apps=[("test/shop", APP_DIR)], insecure_dev=True)
    vvm = VVM(config)
    await vvm.start()
    try:
        assert vvm.provider is not None and isinstance(vvm.provider.factory, MemStorageFactory)
        factory = vvm.provider.factory
        app = build_app(vvm, {1: LocalTransport(vvm)})
        wsids = await make_workspaces(vvm)
        settle_heap()
        before = factory.footprint()
        rss_before = rss_mib()
        began = time.perf_counter()
        await insert(app, wsids, args.inserts, args.concurrency)
        took = time.perf_counter() - began
        # The async projectors write their views after the answers: wait until the rows stop growing.
        rows = -1
        while rows != (rows := factory.footprint().rows):
            await asyncio.sleep(1.0)
        gc.collect()
        after = factory.footprint()
        rss_after, hwm = rss_mib(), rss_mib("VmHWM")
    finally:
        await vvm.stop()

    payload = (after.payload - before.payload) / MIB
    held = (after.held - before.held) / MIB
    grew = rss_after - rss_before
    build = "native" if any(".native" in p for p in sys.path) else "Python"
    print(
        f"mem://, {args.inserts:,} c.sys.CUD inserts of shop.Item in {NUM_WS} workspaces, "
        f"{args.concurrency} at a time ({args.inserts / took:,.0f}/s in process), {build} build\n"
    )
    print("| what | MiB | x payload |")
    print("|---|---:|---:|")
    print(f"| payload: keys and values of {after.rows - before.rows:,} new rows | {payload:.1f} | 1.0 |")
    print(f"| the driver's objects holding them | {held:.1f} | {held / payload:.2f} |")
    print(f"| the process's resident memory grew by | {grew:.1f} | {grew / payload:.2f} |")
    print(f"\nresident memory: {rss_before:.0f} MiB before the inserts, {rss_after:.0f} after, peak {hwm:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
