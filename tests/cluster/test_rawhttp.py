"""The load generator's lean HTTP client against small servers on loopback: what it reads of an
answer, and how each failure is told (not sent, or sent with the outcome unknown)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.cluster.rawhttp import Broken, NotConnected, RawConnection
from tests.support import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
    return await reader.readexactly(length)


@contextlib.asynccontextmanager
async def _connected(handler: Handler, request_timeout: float = 2.0) -> AsyncIterator[RawConnection]:
    """A RawConnection to a server on loopback that answers with ``handler``; both closed after."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    conn = RawConnection(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", 1.0, request_timeout)
    try:
        yield conn
    finally:
        await conn.aclose()
        server.close()


async def test_answers_over_one_kept_alive_connection() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        n = 0
        while not reader.at_eof():
            try:
                body = await _read_request(reader)
            except asyncio.IncompleteReadError:
                break
            n += 1
            if n == 1:
                answer = b'{"echo":' + body + b"}"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))
            else:
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 4\r\n\r\nbusy")
            await writer.drain()
        writer.close()

    async with _connected(handler) as conn:
        first = await conn.post("/api/x", b"[1]")
        second = await conn.post("/api/x", b"[2]")
    assert (first.status, first.retry_after, first.body) == (200, None, b'{"echo":[1]}')
    assert (second.status, second.retry_after, second.body) == (503, "2", b"busy")
    assert connections == 1


async def test_a_refused_connection_is_not_sent() -> None:
    conn = RawConnection(f"http://127.0.0.1:{free_port()}", 1.0, 2.0)
    with pytest.raises(NotConnected):
        await conn.post("/api/x", b"{}")


async def test_a_connection_closed_before_the_answer_is_broken_and_then_made_again() -> None:
    calls = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        await _read_request(reader)
        if calls == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")  # then closes: cut short
        else:
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    async with _connected(handler) as conn:
        with pytest.raises(Broken):
            await conn.post("/api/x", b"{}")
        again = await conn.post("/api/x", b"{}")
    assert again.status == 201 and calls == 2


async def test_no_answer_in_time_is_a_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)
        writer.close()

    async with _connected(handler, request_timeout=0.2) as conn:
        with pytest.raises(TimeoutError):
            await conn.post("/api/x", b"{}")


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError):
        RawConnection("https://127.0.0.1:1", 1.0, 1.0)
