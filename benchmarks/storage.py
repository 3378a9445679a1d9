"""Storage benchmark: throughput and latency of each driver's operations.

    python benchmarks/storage.py [--drivers mem,sqlite,cassandra] [--cassandra 127.0.0.1:9042]

Each scenario runs a fixed number of operations with 1 and with 64 concurrent callers and
prints a table (throughput, p50, p99, peak memory). Cassandra needs a running node
(``make cassandra-start``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.report import Result, max_rss_mib, table
from voedger.storage import AppStorage, open_factory

Op = Callable[[int], Awaitable[object]]


async def run(driver: str, name: str, callers: int, total: int, op: Op, rows_per_op: int = 1) -> Result:
    latencies: list[float] = []
    counter = iter(range(total))

    async def caller() -> None:
        for i in counter:
            t = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    seconds = time.perf_counter() - start
    return Result(driver, name, callers, total, rows_per_op, seconds, latencies)


async def bench_callers(
    driver: str, s: AppStorage, callers: int, tag: bytes, rows: bytes, n: Callable[[int], int]
) -> list[Result]:
    """Every scenario with ``callers`` concurrent callers; ``tag`` keeps their keys apart."""
    value = b"v" * 100

    def batch(i: int) -> Awaitable[None]:
        p = tag + b"b%d" % i
        return s.put_batch([(p, j.to_bytes(2, "big"), value) for j in range(100)])

    async def read(i: int) -> None:
        count = 0
        async for _ in s.read(rows):
            count += 1
        assert count == 1000, count

    cas_key = tag + b"cas"
    puts = n(2000)
    results = [
        await run(driver, "put", callers, puts, lambda i: s.put(tag + b"p%d" % i, b"", value)),
        await run(driver, "put_batch(100)", callers, n(300), batch, rows_per_op=100),
        await run(driver, "get", callers, n(4000), lambda i: s.get(tag + b"p%d" % (i % puts), b"")),
        await run(driver, "read(1000 rows)", callers, n(100), read, rows_per_op=1000),
        await run(
            driver,
            "insert_if_not_exists",
            callers,
            n(1000),
            lambda i: s.insert_if_not_exists(tag + b"i%d" % i, b"", value),
        ),
    ]
    await s.put_batch([(cas_key + b"%d" % i, b"", b"0") for i in range(n(1000))])
    results.append(
        await run(
            driver,
            "compare_and_swap",
            callers,
            n(1000),
            lambda i: s.compare_and_swap(cas_key + b"%d" % i, b"", b"0", b"1"),
        )
    )
    return results


async def bench_driver(driver: str, url: str, scale: float) -> list[Result]:
    factory = open_factory(url)
    await factory.open()
    safe = "bench" + uuid.uuid4().hex[:10]
    await factory.init(safe)
    s = await factory.app_storage(safe)
    run_id = uuid.uuid4().bytes[:4]
    rows = run_id + b"read1000"
    for k in range(0, 1000, 100):
        await s.put_batch([(rows, j.to_bytes(2, "big"), b"r" * 100) for j in range(k, k + 100)])

    def n(base: int) -> int:
        return max(1, int(base * scale))

    results: list[Result] = []
    for callers in (1, 64):
        results += await bench_callers(driver, s, callers, run_id + bytes([callers]), rows, n)
    await factory.close()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drivers", default="mem,sqlite,cassandra")
    parser.add_argument("--cassandra", default="127.0.0.1:9042", help="host:port of a running node")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every operation count")
    args = parser.parse_args()
    all_results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        urls = {
            "mem": "mem://",
            "sqlite": f"sqlite://{tmp}",
            "cassandra": f"cassandra://{args.cassandra}/?replication=1",
        }
        for driver in args.drivers.split(","):
            print(f"running {driver} ...", file=sys.stderr)
            all_results += await bench_driver(driver, urls[driver], args.scale)
    print(table(all_results))
    print(f"\npeak RSS of the benchmark process: {max_rss_mib():.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
