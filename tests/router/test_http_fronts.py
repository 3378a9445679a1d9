"""``voedger server --http-front builtin|uvicorn|hypercorn``: the same API over each front, TLS on
the fallbacks, HTTP/2 on Hypercorn, and a SIGTERM that lets the request in flight finish."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.router.test_crash import start_server
from tests.router.test_http_server import Receive, Scope, Send, app_of, respond
from tests.router.test_tls import self_signed, trusting
from tests.support import free_port
from voedger.router import http
from voedger.router.fronts import FRONTS, front_class
from voedger.structs.wsid import app_wsid

APP_WS = app_wsid(1, 0)
SHOP = "test/shop"


async def _ready(client: httpx.AsyncClient, url: str, proc: object) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert getattr(proc, "poll")() is None, "the server exited during start"  # noqa: B009
        try:
            if (await client.get(f"{url}/api/check")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        await asyncio.sleep(0.2)


async def _command_and_query(client: httpx.AsyncClient, url: str, name: str, version: str) -> None:
    """A command makes a child workspace's record; a query reads it back; a mistake is a 400 in
    Voedger's shape: each answered over ``version``."""
    fields = {
        "sys.ID": 1,
        "sys.QName": "sys.ChildWorkspace",
        "WSName": name,
        "WSKind": "shop.ShopDesc",
        "WSClusterID": 1,
    }
    r = await client.post(f"{url}/api/{SHOP}/{APP_WS}/c.sys.CUD", json={"cuds": [{"fields": fields}]})
    assert (r.status_code, r.http_version) == (200, version), r.text
    assert r.json()["CurrentWLogOffset"] > 0
    query = {"args": {"WSName": name}, "elements": [{"fields": ["WSName", "WSKind"]}]}
    r = await client.post(f"{url}/api/{SHOP}/{APP_WS}/q.sys.QueryChildWorkspaceByName", json=query)
    assert (r.status_code, r.http_version) == (200, version), r.text
    assert r.json()["sections"][0]["elements"] == [[[[name, "shop.ShopDesc"]]]]
    r = await client.post(f"{url}/api/{SHOP}/notanumber/q.sys.QueryChildWorkspaceByName", json=query)
    assert (r.status_code, r.http_version) == (400, version)
    assert r.json()["sys.Error"]["HTTPStatus"] == 400


@pytest.mark.parametrize("front", ["builtin", "uvicorn"])
async def test_the_api_over_http_1_1(tmp_path: Path, front: str) -> None:
    port = free_port()
    proc = start_server(tmp_path, port, None, "--http-front", front)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await _ready(client, url, proc)
            await _command_and_query(client, url, "w", "HTTP/1.1")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@needs_openssl
async def test_uvicorn_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    proc = start_server(tmp_path / "data", port, None, "--http-front", "uvicorn", "--tls-cert", str(cert))
    proc.wait(timeout=60)
    assert proc.returncode == 2  # the key is missing: refused as with the built-in front
    proc = start_server(
        tmp_path / "data", port, None, "--http-front", "uvicorn", "--tls-cert", str(cert), "--tls-key", str(key)
    )
    url = f"https://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(verify=trusting(cert), timeout=30) as client:
            await _ready(client, url, proc)
            await _command_and_query(client, url, "u", "HTTP/1.1")
        # Plain HTTP on the TLS port is not served.
        async with httpx.AsyncClient(timeout=10) as plain:
            with pytest.raises(httpx.TransportError):
                await plain.get(f"http://127.0.0.1:{port}/api/check")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0


@needs_openssl
async def test_hypercorn_speaks_http_2_over_tls_and_http_1_1_too(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    args = ("--http-front", "hypercorn", "--tls-cert", str(cert), "--tls-key", str(key))
    proc = start_server(tmp_path / "data", port, None, *args)
    url = f"https://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(verify=trusting(cert), http2=True, timeout=30) as client:
            await _ready(client, url, proc)
            await _command_and_query(client, url, "h2", "HTTP/2")
            # Several requests at once share the one connection as HTTP/2 streams.
            answers = await asyncio.gather(*(client.get(f"{url}/api/check") for _ in range(8)))
            assert {(r.status_code, r.http_version, r.text) for r in answers} == {(200, "HTTP/2", "ok")}
        async with httpx.AsyncClient(verify=trusting(cert), timeout=30) as client:  # ALPN offers http/1.1 alone
            await _command_and_query(client, url, "h1", "HTTP/1.1")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0


@pytest.mark.parametrize("front", FRONTS)
async def test_sigterm_finishes_the_request_in_flight(front: str) -> None:
    """``http.serve`` with each front: on SIGTERM the listener closes at once, while a request
    the application is still working on is answered in full before the server stops."""
    release = asyncio.Event()
    started = asyncio.Event()

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/slow":
            started.set()
            await release.wait()
        await respond(send, 200, b"done " + scope["path"].encode())

    port = free_port()
    server = asyncio.create_task(http.serve(app_of(handler), "127.0.0.1", port, front=front_class(front), graceful=20))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=30) as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert (await client.get(f"{url}/fast")).text == "done /fast"
                break
            except httpx.TransportError:
                assert not server.done() and time.monotonic() < deadline, "the front did not start"
                await asyncio.sleep(0.05)
        slow = asyncio.create_task(client.get(f"{url}/slow"))
        await asyncio.wait_for(started.wait(), 30)
        os.kill(os.getpid(), signal.SIGTERM)  # serve's handler takes it
        async with httpx.AsyncClient(timeout=5) as other:  # a new connection is not served any more
            while True:
                try:
                    await other.get(f"{url}/fast")
                except httpx.TransportError:
                    break
                await asyncio.sleep(0.05)
        assert not server.done()
        release.set()
        reply = await asyncio.wait_for(slow, 30)
        assert (reply.status_code, reply.text) == (200, "done /slow")
    await asyncio.wait_for(server, 30)


async def test_hypercorn_speaks_h2c_in_clear() -> None:
    """Without TLS, Hypercorn takes HTTP/2 with prior knowledge (h2c) and HTTP/1.1 on one port."""
    server = front_class("hypercorn")(app_of(lambda s, r, send: respond(send, 200, b"hi")))
    [(host, port)] = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=30) as h2c:
            r = await h2c.get(f"http://{host}:{port}/")
            assert (r.status_code, r.http_version, r.text) == (200, "HTTP/2", "hi")
        async with httpx.AsyncClient(timeout=30) as h1:
            r = await h1.get(f"http://{host}:{port}/")
            assert (r.status_code, r.http_version, r.text) == (200, "HTTP/1.1", "hi")
    finally:
        await server.stop(1.0)


@pytest.mark.parametrize("front", ["uvicorn", "hypercorn"])
async def test_a_port_in_use_and_a_failed_startup_are_errors(front: str) -> None:
    """As with the built-in front: a port taken is an OSError (the CLI's clear exit), an
    application whose startup fails a LifespanError, and neither leaves a listener behind."""
    app = app_of(lambda s, r, send: respond(send, 200))
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(OSError):
            await front_class(front)(app).start("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no storage"})

    port = free_port()
    with pytest.raises(http.LifespanError):
        await front_class(front)(failing).start("127.0.0.1", port)
    socket.create_server(("127.0.0.1", port)).close()  # the port is free again


@pytest.mark.parametrize("front", ["uvicorn", "hypercorn"])
async def test_what_the_builtin_front_refuses_on_a_head_the_fallbacks_refuse_too(front: str) -> None:
    """A Host missing or repeated is a 400, a body announced larger than ``max_body`` a 413 (but
    not for a request ``stream`` takes), in Voedger's shape, before the application is called."""
    calls: list[str] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        await respond(send, 200, b"ok")

    server = front_class(front)(app_of(handler), max_body=1000, stream=lambda method, target: target == b"/upload")
    [(host, port)] = await server.start("127.0.0.1", 0)

    async def ask(head: bytes) -> tuple[int, bytes]:
        """The status and body of the answer to ``head`` (which asks the server to close)."""
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(head)
            reply = await asyncio.wait_for(reader.read(), 30)
        finally:
            writer.close()
        head_part, _, body = reply.partition(b"\r\n\r\n")
        if b"transfer-encoding: chunked" in head_part.lower():
            chunks = b""
            while True:
                size, _, rest = body.partition(b"\r\n")
                if int(size, 16) == 0:
                    break
                chunks += rest[: int(size, 16)]
                body = rest[int(size, 16) + 2 :]
            body = chunks
        return int(head_part.split(b" ", 2)[1]), body

    try:
        # Hypercorn's h11 refuses these itself, before the guard, with an empty body.
        one_host = b"" if front == "hypercorn" else None
        status, body = await ask(b"GET /api/x HTTP/1.1\r\nconnection: close\r\n\r\n")
        assert (status, body) == (
            400,
            one_host
            if one_host is not None
            else b'{"sys.Error":{"HTTPStatus":400,"Message":"an HTTP/1.1 request needs exactly one Host header"}}',
        )
        status, body = await ask(b"GET /api/v2/x HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n")
        assert (status, body) == (
            400,
            one_host
            if one_host is not None
            else b'{"status":400,"message":"an HTTP/1.1 request needs exactly one Host header"}',
        )
        status, body = await ask(
            b"POST /api/x HTTP/1.1\r\nhost: a\r\nconnection: close\r\ncontent-length: 1001\r\n\r\n"
        )
        assert (status, body) == (
            413,
            b'{"sys.Error":{"HTTPStatus":413,"Message":"request body larger than 1000 bytes"}}',
        )
        assert calls == []
        status, body = await ask(
            b"POST /upload HTTP/1.1\r\nhost: a\r\nconnection: close\r\ncontent-length: 1001\r\n\r\n" + b"x" * 1001
        )
        assert (status, body, calls) == (200, b"ok", ["/upload"])
        status, body = await ask(b"GET /api/x HTTP/1.0\r\n\r\n")  # HTTP/1.0 needs no Host
        assert (status, body, calls) == (200, b"ok", ["/upload", "/api/x"])
    finally:
        await server.stop(1.0)
