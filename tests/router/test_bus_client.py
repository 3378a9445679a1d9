"""The lean client of the hops: answers, connection reuse, and the two kinds of failure (not sent:
nothing reached the server; lost: it went out and no whole answer came back)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.support import free_port
from voedger.router.bus_client import BusClient, Lost, NotSent

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.AbstractServer] = []

    async def start(handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()


async def _request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


async def test_answers_come_back_and_connections_are_reused(serve: Callable[[Handler], Awaitable[str]]) -> None:
    connections = 0
    seen: list[bytes] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                request = await _request(reader)
            except asyncio.IncompleteReadError:
                return
            seen.append(request)
            body = request.split(b"\r\n\r\n", 1)[1]
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: x/y\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    client = BusClient(await serve(echo))
    for i in range(5):
        status, headers, body = await client.post("/p", {"x-secret": "s"}, b"body %d" % i)
        assert (status, headers["content-type"], body) == (200, "x/y", b"body %d" % i)
    assert connections == 1  # one keep-alive connection for requests one after the other
    assert seen[0].startswith(b"POST /p HTTP/1.1\r\n") and b"x-secret: s\r\n" in seen[0]
    answers = await asyncio.gather(*(client.post("/p", {}, b"%d" % i) for i in range(4)))
    assert [a[2] for a in answers] == [b"0", b"1", b"2", b"3"]
    await client.aclose()
    with pytest.raises(NotSent):
        await client.post("/p", {}, b"")


async def test_nothing_listening_is_not_sent() -> None:
    client = BusClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(NotSent):
        await client.post("/p", {}, b"x")


async def test_a_server_that_reads_and_closes_is_lost(serve: Callable[[Handler], Awaitable[str]]) -> None:
    async def vanish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.close()  # read it, maybe acted on it, never answered

    client = BusClient(await serve(vanish))
    with pytest.raises(Lost):
        await client.post("/p", {}, b"command")


async def test_a_half_answer_or_garbage_or_silence_is_lost(serve: Callable[[Handler], Awaitable[str]]) -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ]

    async def bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(answers.pop(0) if answers else b"")
        await writer.drain()
        writer.close()

    url = await serve(bad)
    for _ in range(3):
        with pytest.raises(Lost):
            await BusClient(url).post("/p", {}, b"x")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        await asyncio.sleep(5)

    with pytest.raises(Lost):
        await BusClient(await serve(silent), timeout=0.3).post("/p", {}, b"x")


async def test_connection_close_and_old_idle_connections_are_not_reused(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    connections = 0

    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                await _request(reader)
            except asyncio.IncompleteReadError:
                return
            close = connections == 1
            writer.write(b"HTTP/1.1 204 No Content\r\n%s\r\n" % (b"Connection: close\r\n" if close else b""))
            await writer.drain()
            if close:
                writer.close()
                return

    client = BusClient(await serve(once), reuse_seconds=0.2)
    assert (await client.post("/p", {}, b""))[0] == 204
    assert (await client.post("/p", {}, b""))[0] == 204
    assert connections == 2  # the first answer said close
    await asyncio.sleep(0.3)
    assert (await client.post("/p", {}, b""))[0] == 204
    assert connections == 3  # idle longer than reuse_seconds: not trusted any more
    await client.aclose()


def test_only_http_urls() -> None:
    with pytest.raises(ValueError):
        BusClient("ftp://x")
