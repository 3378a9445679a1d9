"""Applications call each other over HTTP with system tokens: a real server whose federation URL
is itself signs up a user; the profile workspace is made by calls from sys/registry to the
application over the network, each carrying a System token for its target."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.router.conftest import SHOP_DIR
from tests.support import free_port, wait_ready


async def test_profile_is_made_over_http_with_system_tokens(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "voedger.cli.voedger",
        "server",
        "--data-dir",
        str(tmp_path / "data"),
        "--port",
        str(port),
        "--app",
        f"test/shop={SHOP_DIR}",
        "--federation-url",
        f"http://127.0.0.1:{port}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
    try:
        await wait_ready(port, proc)
        v2 = f"http://127.0.0.1:{port}/api/v2/apps/test/shop"
        async with httpx.AsyncClient(timeout=10) as c:
            r = await c.post(f"{v2}/users", json={"login": "dora", "password": "d0ra-pass"})
            assert r.status_code == 201, r.text
            deadline = time.monotonic() + 30
            while True:
                r = await c.post(f"{v2}/auth/login", json={"login": "dora", "password": "d0ra-pass"})
                if r.status_code == 200:
                    break
                assert r.status_code == 409 and time.monotonic() < deadline, r.text
                await asyncio.sleep(0.1)
            token, profile = r.json()["principalToken"], r.json()["profileWSID"]
            r = await c.get(
                f"{v2}/workspaces/{profile}/docs/sys.UserProfile", headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 200, r.text
            # a System token is issued per target application: one for another app is refused
            r = await c.post(
                f"http://127.0.0.1:{port}/api/test/shop/{profile}/c.sys.CUD",
                json={"cuds": []},
                headers={"Authorization": "Bearer not-a-system-token"},
            )
            assert r.status_code == 401
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    text = log.read_bytes().decode(errors="replace")
    assert "Traceback" not in text, text[-3000:]


async def test_federation_url_is_what_applications_use(tmp_path: Path) -> None:
    from voedger.vvm.federation import HttpFederation
    from voedger.vvm.server import VVM, ServerConfig

    vvm = VVM(
        ServerConfig(
            storage_url=f"sqlite://{tmp_path}", apps=[("test/shop", SHOP_DIR)], federation_url="http://127.0.0.1:9"
        )
    )
    await vvm.start()
    try:
        assert isinstance(vvm.federation, HttpFederation)
        assert all(app.runtime.federation is vvm.federation for app in vvm.apps.values())
        reply = await vvm.federation.command("test/shop", 1, "c.sys.CUD", {"cuds": []})
        assert reply.status == 503 and "federation call failed" in reply.message  # nothing listens there
    finally:
        await vvm.stop()
