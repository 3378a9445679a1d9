"""Helpers several test modules share: free loopback ports, polling, a server subprocess."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from typing import Any

import httpx
import pytest

import voedger.vvm.server as vvm_server
from voedger.clock import Clock
from voedger.storage import StorageProvider
from voedger.storage.mem import MemStorageFactory


def share_one_storage(monkeypatch: pytest.MonkeyPatch) -> MemStorageFactory:
    """Every VVM this test starts opens one in-memory storage: the processes of a cluster, in
    one test process."""
    shared = MemStorageFactory()

    def shared_storage(url: str, clock: Clock) -> StorageProvider:
        return StorageProvider(shared)

    monkeypatch.setattr(vvm_server, "open_storage", shared_storage)
    return shared


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(probe: Any, timeout: float = 20.0) -> Any:
    """Call ``probe`` until it answers something other than None (or fail after ``timeout``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (result := await probe()) is None:
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return result


async def wait_ready(where: int | str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until a server subprocess answers ``/api/check`` with 200 (``where``: its port on
    127.0.0.1, or its base URL)."""
    url = f"http://127.0.0.1:{where}" if isinstance(where, int) else where
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as c:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the server exited during start"
            try:
                if (await c.get(f"{url}/api/check", timeout=2)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not start in time")


async def owned_workspace(vvm: Any, app: str, profile: int, wsid: int, kind: str, name: str) -> str:
    """Alice's profile at ``profile`` and her workspace of ``kind`` (a descriptor with a ``Name``)
    at ``wsid``, made by System CUDs; a token of Alice's for ``app``."""
    from datetime import timedelta

    from voedger.appdef import QName
    from voedger.auth import PrincipalPayload
    from voedger.processors.command import CommandRequest
    from voedger.processors.principal import SYSTEM

    async def system_cud(ws: int, *records: dict[str, object]) -> None:
        body = {"cuds": [{"fields": {"sys.ID": i + 1, **r}} for i, r in enumerate(records)]}
        await vvm.app(app).partition(ws).submit(CommandRequest(ws, QName("sys", "CUD"), body, SYSTEM, synced=True))

    desc = {"sys.QName": "sys.WorkspaceDescriptor", "CreatedAtMs": 1, "InitCompletedAtMs": 1}
    await system_cud(
        profile,
        {**desc, "WSName": "alice", "WSKind": "sys.UserProfile"},
        {"sys.QName": "sys.UserProfile", "DisplayName": "alice"},
    )
    await system_cud(
        wsid,
        {**desc, "WSName": name.lower(), "WSKind": kind, "OwnerWSID": profile},
        {"sys.QName": kind, "Name": name},
    )
    assert vvm.tokens is not None
    return str(vvm.tokens.issue(app, PrincipalPayload(login="alice", profile_wsid=profile), timedelta(hours=1)))


ARRAY_READS = ("/queries/", "/views/", "/cdocs/")


def v2_error_of(r: Any) -> dict[str, Any]:
    """The error object of an API v2 error answer (an ``httpx.Response``), checking its shape:
    a read whose answer is an array (queries, views, cdocs) fails as Voedger streams it,
    ``{"results":[],"error":{...}}``; every other answer is the plain ``{"status","message"}``."""
    body = r.json()
    if r.request.method == "GET" and any(part in r.request.url.path for part in ARRAY_READS):
        assert set(body) == {"results", "error"} and body["results"] == [], body
        body = body["error"]
    assert {"status", "message"} <= set(body) <= {"status", "message", "qname", "data"}, body
    assert body["status"] == r.status_code, body
    return body  # type: ignore[no-any-return]
