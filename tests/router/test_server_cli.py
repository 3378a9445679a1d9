"""``voedger server`` as a newcomer runs it: the HTTP front with the router's limits."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import orjson

from tests.router.test_crash import start_server
from tests.support import free_port, wait_ready
from voedger.router.app import MAX_BODY, MAX_FRAME


async def test_a_body_the_router_would_refuse_is_refused_on_its_headers(tmp_path: Path) -> None:
    """The server's body limit is the router's and a forwarded request's head: a client
    announcing more gets 413 at once, in Voedger's shape, without sending (or the server reading)
    the body."""
    assert MAX_BODY < MAX_FRAME <= MAX_BODY + 1024 * 1024
    port = free_port()
    proc = start_server(tmp_path, port)
    try:
        await wait_ready(port, proc)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST /api/test/shop/140737488420864/c.sys.CUD HTTP/1.1\r\nhost: t\r\n"
            f"content-type: application/json\r\ncontent-length: {MAX_FRAME + 1}\r\n\r\n"
        )
        writer.write(head.encode())
        reply = await asyncio.wait_for(reader.read(), 10)  # the server answers and closes
        writer.close()
        status_line, _, rest = reply.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
        body = orjson.loads(rest.split(b"\r\n\r\n", 1)[1])
        assert body == {"sys.Error": {"HTTPStatus": 413, "Message": f"request body larger than {MAX_FRAME} bytes"}}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0


async def test_the_metrics_service_listens_on_its_own_port(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    proc = start_server(tmp_path, port, None, "--metrics-port", str(metrics_port))
    try:
        await wait_ready(port, proc)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}", timeout=10) as c:
            assert (await c.get("/metrics/check")).text == "ok"
            text = (await c.get("/metrics")).text
        assert 'voedger_cp_commands_total{app="test/shop",vvm="' in text
        assert "voedger_projectors_in_error{" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0


async def test_the_admin_endpoint_serves_the_api_on_loopback(tmp_path: Path) -> None:
    """``--admin-port``: the same API on 127.0.0.1 only (Voedger's admin endpoint)."""
    port, admin_port = free_port(), free_port()
    proc = start_server(tmp_path, port, None, "--admin-port", str(admin_port))
    try:
        await wait_ready(port, proc)
        body = {"args": {"Text": "world"}, "elements": [{"fields": ["Res"]}]}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{admin_port}", timeout=10) as c:
            r = await c.post("/api/test/shop/1/q.sys.Echo", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["sections"][0]["elements"] == [[[["world"]]]]
        listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        local = {(entry[1], entry[3]) for entry in listening}
        assert (f"0100007F:{admin_port:04X}", "0A") in local  # 127.0.0.1, LISTEN
        assert not any(addr.endswith(f":{admin_port:04X}") and not addr.startswith("0100007F") for addr, _ in local)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
