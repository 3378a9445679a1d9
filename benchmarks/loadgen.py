"""A small HTTP/1.1 keep-alive load generator on raw asyncio streams.

A general-purpose client (httpx) spends more CPU per request than the server under test on
this 2-core machine; this one writes a prepared request and reads just enough of the answer
(status line, Content-Length, body) to time it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    seconds: float = 0.0


AUTH_HEADER: dict[str, str] = {}
"""Headers every request carries (the benchmarks' auth mode puts a Bearer token here)."""


def request_bytes(method: str, path: str, body: bytes, host: str = "127.0.0.1") -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in AUTH_HEADER.items())
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def run_load(
    port: int,
    make_request: Callable[[int, int], bytes],
    clients: int,
    total: int,
    keep_bodies: bool = False,
) -> LoadResult:
    """Send ``total`` requests over ``clients`` keep-alive connections; ``make_request(client, n)``."""
    result = LoadResult()
    counter = iter(range(total))

    async def client(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for n in counter:
                t = time.perf_counter()
                writer.write(make_request(k, n))
                status, body = await read_response(reader)
                result.latencies.append(time.perf_counter() - t)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if keep_bodies:
                    result.bodies.append(body)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    result.seconds = time.perf_counter() - start
    return result
