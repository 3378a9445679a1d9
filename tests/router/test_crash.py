"""Nothing acknowledged is lost: ``kill -9`` the server in the middle of a stream of commands,
restart it, and every acknowledged command is in the log, offsets continuing with no gap and no
duplicate."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.router.conftest import SHOP_DIR
from tests.support import free_port, wait_ready
from voedger.storage import open_storage
from voedger.structs.logs import read_wlog
from voedger.structs.wsid import app_wsid

WORKSPACES = [app_wsid(1, n) for n in range(3)]


def start_server(data: Path, port: int, log: Path | None = None, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "voedger.cli.voedger", "server", "--data-dir", str(data), "--port", str(port)]
    cmd += ["--insecure-dev", "--app", f"test/shop={SHOP_DIR}", *extra]
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    return subprocess.Popen(cmd, stdout=out, stderr=out)


def body(name: str) -> dict[str, object]:
    fields = {"sys.ID": 1, "sys.QName": "sys.ChildWorkspace", "WSName": name, "WSKind": "shop.ShopDesc"}
    return {"cuds": [{"fields": {**fields, "WSClusterID": 1}}]}


async def test_kill_9_loses_no_acknowledged_command(tmp_path: Path) -> None:
    port = free_port()
    proc = start_server(tmp_path, port)
    acked: dict[int, dict[int, str]] = {w: {} for w in WORKSPACES}  # wsid -> wlog offset -> WSName
    stop = asyncio.Event()
    try:
        await wait_ready(port, proc)

        async def client(k: int) -> None:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
                n = 0
                while not stop.is_set():
                    wsid = WORKSPACES[(k + n) % len(WORKSPACES)]
                    name = f"c{k}-{n}"
                    try:
                        r = await c.post(f"/api/test/shop/{wsid}/c.sys.CUD", json=body(name))
                    except httpx.TransportError:
                        return
                    if r.status_code == 200:
                        offset = r.json()["CurrentWLogOffset"]
                        assert offset not in acked[wsid], "an offset was acknowledged twice"
                        acked[wsid][offset] = name
                    n += 1

        tasks = [asyncio.create_task(client(k)) for k in range(16)]
        while sum(len(a) for a in acked.values()) < 300:
            await asyncio.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    # Restart: the server recovers, and new commands continue each workspace's offsets.
    log = tmp_path / "server.log"
    proc = start_server(tmp_path, port, log)
    try:
        await wait_ready(port, proc)
        after: dict[int, int] = {}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            for wsid in WORKSPACES:
                r = await c.post(f"/api/test/shop/{wsid}/c.sys.CUD", json=body("after-restart"))
                assert r.status_code == 200, r.text
                after[wsid] = r.json()["CurrentWLogOffset"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    # A graceful shutdown: the server exits cleanly, and the log shows that it drained the
    # partitions and closed storage.
    assert proc.returncode == 0, log.read_text()
    assert b"voedger.server: stopped" in log.read_bytes()

    provider = open_storage(f"sqlite://{tmp_path}")
    storage = await provider.app_storage("test/shop")
    for wsid in WORKSPACES:
        events = [e async for e in read_wlog(storage, wsid)]
        offsets = [e.wlog_offset for e in events]
        assert offsets == list(range(1, len(offsets) + 1)), "a gap or a duplicate in the WLog"
        names = {e.wlog_offset: e.cuds[0].fields.get("WSName") for e in events if e.cuds}
        # Async projectors (workspace creation) also write here, so later offsets may be theirs;
        # the first command after restart comes after everything acknowledged before the crash.
        assert after[wsid] > max(acked[wsid], default=0)
        assert names[after[wsid]] == "after-restart"
        for offset, name in acked[wsid].items():
            assert names.get(offset) == name, f"acknowledged command {name} at offset {offset} is lost"
    await provider.close()
