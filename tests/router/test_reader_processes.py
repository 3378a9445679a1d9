"""``voedger server --processes N`` over real processes: one writer holding the SQLite directory,
readers beside it serving reads from the files and forwarding the rest.

Every process also answers alone on an internal port (the writer on ``--internal-port``, reader
i on ``--internal-port + i``), which is how these tests address one process: the shared
``--port`` spreads connections over them (``SO_REUSEPORT``).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.n10n.sse import EventReader
from tests.router.conftest import SHOP_DIR
from tests.support import free_port, wait_ready
from voedger.structs.wsid import app_wsid

APP_WS = app_wsid(1, 0)


@dataclass
class Node:
    proc: subprocess.Popen[bytes]
    port: int
    internal: int
    log: Path

    @property
    def writer(self) -> str:
        return f"http://127.0.0.1:{self.internal}"

    def reader(self, i: int = 1) -> str:
        return f"http://127.0.0.1:{self.internal + i}"


def server_command(data: Path, port: int, internal: int, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "voedger.cli.voedger", "server", "--data-dir", str(data), "--port", str(port)]
    cmd += ["--internal-port", str(internal), "--insecure-dev", "--app", f"test/shop={SHOP_DIR}", *extra]
    return cmd


def free_ports(n: int) -> int:
    """The first of ``n`` consecutive free loopback ports."""
    for _ in range(50):
        first = free_port()
        if all(_free(first + i) for i in range(1, n)):
            return first
    raise AssertionError("no consecutive free ports")


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def alive(pid: int) -> bool:
    """Running (a zombie, ended and not yet reaped by its new parent, is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


async def start_node(tmp: Path, processes: int = 2, *extra: str) -> Node:
    first = free_ports(processes + 1)
    port, internal = first, first + 1
    log = tmp / "server.log"
    out = open(log, "wb")  # noqa: SIM115 - the child owns it
    cmd = server_command(tmp / "data", port, internal, "--processes", str(processes), *extra)
    node = Node(subprocess.Popen(cmd, stdout=out, stderr=out), port, internal, log)
    await wait_ready(node.writer, node.proc, timeout=90)
    for i in range(1, processes):
        await wait_ready(node.reader(i), node.proc, timeout=90)
    return node


async def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    n = await start_node(tmp_path)
    try:
        yield n
    finally:
        pids = children(n.proc.pid)
        await stop(n.proc)
        for pid in pids:  # should be gone with the writer; never leave one behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


async def make_workspace(c: httpx.AsyncClient, base: str, name: str) -> int:
    r = await c.post(
        f"{base}/api/test/shop/{APP_WS}/c.sys.InitChildWorkspace",
        json={"args": {"WSName": name, "WSKind": "shop.ShopDesc"}},
    )
    assert r.status_code == 200, r.text
    query = {"args": {"WSName": name}, "elements": [{"fields": ["WSID"]}]}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = await c.post(f"{base}/api/test/shop/{APP_WS}/q.sys.QueryChildWorkspaceByName", json=query)
        sections = r.json().get("sections") if r.status_code == 200 else None
        if sections and sections[0]["elements"] and sections[0]["elements"][0][0][0][0]:
            wsid = int(sections[0]["elements"][0][0][0][0])
            # the workspace is made by async projectors: wait until it takes commands
            while time.monotonic() < deadline:
                r = await c.get(f"{base}/api/v2/apps/test/shop/workspaces/{wsid}/cdocs/shop.Item")
                if r.status_code == 200:
                    return wsid
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)
    raise AssertionError(f"workspace {name} was not made")


def v2(base: str, wsid: int) -> str:
    return f"{base}/api/v2/apps/test/shop/workspaces/{wsid}"


async def test_a_reader_never_sees_part_of_a_group(node: Node) -> None:
    """Each MakeOrder writes an ODoc and (sync projector) a row of shop.Sales in one group. The
    reader reads the view, then the order the view counts last: it is always there."""
    orders = 40
    async with httpx.AsyncClient(timeout=30) as c:
        wsid = await make_workspace(c, node.writer, "groups")
        r = await c.post(f"{v2(node.writer, wsid)}/docs/shop.Item", json={"Name": "tea", "Price": 3})
        item = r.json()["newIDs"]["1"]
        order = {"args": {"sys.ID": 1, "sys.QName": "shop.Order", "Item": item, "Qty": 1}}
        r = await c.post(f"{node.writer}/api/test/shop/{wsid}/c.shop.MakeOrder", json=order)
        assert r.status_code == 200, r.text
        first = r.json()["NewIDs"]["1"]  # the orders' IDs follow it one by one
        acked = [first]
        where = {"where": orjson.dumps({"Item": item}).decode()}
        seen_between = 0

        async def write() -> None:
            for _ in range(orders - 1):
                r = await c.post(f"{node.writer}/api/test/shop/{wsid}/c.shop.MakeOrder", json=order)
                assert r.status_code == 200, r.text
                acked.append(r.json()["NewIDs"]["1"])

        async def read() -> None:
            nonlocal seen_between
            while True:
                r = await c.get(f"{v2(node.reader(), wsid)}/views/shop.Sales", params=where)
                assert r.status_code == 200, r.text
                qty = r.json()["results"][0]["Qty"]
                # the qty-th order is in the same group as the row that counted it
                d = await c.get(f"{v2(node.reader(), wsid)}/docs/shop.Order/{first + qty - 1}")
                assert d.status_code == 200, (qty, d.text)
                assert d.json()["Item"] == item
                # and the next order, when it is there, was counted by then
                n = await c.get(f"{v2(node.reader(), wsid)}/docs/shop.Order/{first + qty}")
                if n.status_code == 200:
                    r = await c.get(f"{v2(node.reader(), wsid)}/views/shop.Sales", params=where)
                    assert r.json()["results"][0]["Qty"] >= qty + 1
                else:
                    assert n.status_code == 404, n.text
                if qty == orders:
                    return
                seen_between += 1

        await asyncio.gather(write(), read())
        assert acked == list(range(first, first + orders))  # what the reader assumed
        assert seen_between > 0  # the reads ran while the orders were being written


async def test_read_your_writes_through_another_process(node: Node) -> None:
    async with httpx.AsyncClient(timeout=30) as c:
        wsid = await make_workspace(c, node.writer, "ryw")
        for n in range(20):
            r = await c.post(f"{v2(node.writer, wsid)}/docs/shop.Item", json={"Name": f"item {n}", "Price": n})
            assert r.status_code == 201, r.text
            new_id = r.json()["newIDs"]["1"]
            got = await c.get(f"{v2(node.reader(), wsid)}/docs/shop.Item/{new_id}")  # at once, elsewhere
            assert got.status_code == 200 and got.json()["Name"] == f"item {n}", got.text
            body = {"args": {"Schema": "shop.Item"}, "elements": [{"fields": ["Name"]}]}
            coll = await c.post(f"{node.reader()}/api/test/shop/{wsid}/q.sys.Collection", json=body)
            assert coll.status_code == 200 and len(coll.json()["sections"][0]["elements"]) == n + 1, coll.text


async def test_a_command_sent_to_a_reader_is_answered_as_by_the_writer(node: Node) -> None:
    async with httpx.AsyncClient(timeout=30) as c:
        wsid = await make_workspace(c, node.reader(), "forwarded")  # InitChildWorkspace through the reader
        answers = []
        for base in (node.reader(), node.writer):
            r = await c.post(f"{v2(base, wsid)}/docs/shop.Item", json={"Name": "x", "Price": 1})
            assert r.status_code == 201, r.text
            item = r.json()["newIDs"]["1"]
            order = {"args": {"sys.ID": 1, "sys.QName": "shop.Order", "Item": item, "Qty": 2}}
            r = await c.post(f"{base}/api/test/shop/{wsid}/c.shop.MakeOrder", json=order)
            answers.append((r.status_code, r.headers["content-type"], set(r.json()), r.json()["Result"]))
            # errors too: a command the app does not have, a bad body
            r = await c.post(f"{base}/api/test/shop/{wsid}/c.shop.Nope", json={})
            answers.append((r.status_code, r.content))
            r = await c.post(f"{base}/api/test/shop/{wsid}/c.sys.CUD", content=b"{not json")
            answers.append((r.status_code, r.content))
            r = await c.patch(f"{v2(base, wsid)}/docs/shop.Item/{item}", json={"Price": 7})
            answers.append((r.status_code, r.json().get("currentWLogOffset") is not None))
        half = len(answers) // 2
        assert answers[:half] == answers[half:]
        assert answers[0][0] == 200 and answers[0][3] == {"Total": 20, "sys.QName": "shop.TotalResult"}
        assert answers[1][0] == 404 and answers[2][0] == 400 and answers[3] == (200, True)
        # BLOBs: an upload at a reader is refused before anything is done; a download is served
        blob = f"/blob/test/shop/{wsid}"
        params = {"name": "a.txt", "mimeType": "text/plain"}
        r = await c.post(f"{node.reader()}{blob}", params=params, content=b"hello")
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "writer" in r.text, r.text
        r = await c.post(f"{node.writer}{blob}", params=params, content=b"hello")
        assert r.status_code == 200, r.text
        got = await c.get(f"{node.reader()}{blob}/{r.text}")
        assert got.status_code == 200 and got.content == b"hello", got.text


async def test_a_reader_serves_reads_while_the_writer_restarts(tmp_path: Path) -> None:
    """A reader started on its own beside a writer: while the writer is down, reads go on and
    commands answer 503 with Retry-After; once it is back, commands pass again."""
    first = free_ports(3)
    port, internal = first, first + 1
    data = tmp_path / "data"
    wlog = open(tmp_path / "writer.log", "wb")  # noqa: SIM115 - the child owns it
    writer = subprocess.Popen(server_command(data, port, internal), stdout=wlog, stderr=wlog)
    w_url, r_url = f"http://127.0.0.1:{internal}", f"http://127.0.0.1:{internal + 1}"
    reader: subprocess.Popen[bytes] | None = None
    try:
        # a writer of one process listens on --port only: give the reader its address there
        await wait_ready(f"http://127.0.0.1:{port}", writer, timeout=90)
        rlog = open(tmp_path / "reader.log", "wb")  # noqa: SIM115 - the child owns it
        cmd = server_command(data, free_port(), internal + 1, "--reader-of", f"http://127.0.0.1:{port}")
        reader = subprocess.Popen(cmd, stdout=rlog, stderr=rlog)
        await wait_ready(r_url, reader, timeout=90)
        async with httpx.AsyncClient(timeout=30) as c:
            wsid = await make_workspace(c, r_url, "restart")
            r = await c.post(f"{v2(r_url, wsid)}/docs/shop.Item", json={"Name": "kept", "Price": 1})
            assert r.status_code == 201, r.text
            item = r.json()["newIDs"]["1"]
            await stop(writer)
            for _ in range(3):
                got = await c.get(f"{v2(r_url, wsid)}/docs/shop.Item/{item}")
                assert got.status_code == 200 and got.json()["Name"] == "kept", got.text
                down = await c.post(f"{v2(r_url, wsid)}/docs/shop.Item", json={"Name": "lost", "Price": 1})
                assert down.status_code == 503 and down.headers["retry-after"] == "1", down.text
                assert "message" in down.json()
            writer = subprocess.Popen(server_command(data, port, internal), stdout=wlog, stderr=wlog)
            await wait_ready(f"http://127.0.0.1:{port}", writer, timeout=90)
            r = await c.post(f"{v2(r_url, wsid)}/docs/shop.Item", json={"Name": "after", "Price": 2})
            assert r.status_code == 201, r.text
            got = await c.get(f"{v2(r_url, wsid)}/docs/shop.Item/{r.json()['newIDs']['1']}")
            assert got.status_code == 200 and got.json()["Name"] == "after", got.text
        assert w_url  # the writer's internal port is not used by a writer of one process
    finally:
        if reader is not None:
            await stop(reader)
        await stop(writer)


async def test_sigterm_to_the_writer_ends_every_reader(tmp_path: Path) -> None:
    node = await start_node(tmp_path, processes=3)
    readers = children(node.proc.pid)
    assert len(readers) == 2 and all(alive(p) for p in readers)
    async with httpx.AsyncClient(timeout=10) as c:  # the shared port answers, whoever takes it
        assert (await c.get(f"http://127.0.0.1:{node.port}/api/check")).status_code == 200
    await stop(node.proc)
    assert node.proc.returncode == 0
    assert not [p for p in readers if alive(p)]


async def test_a_reader_whose_writer_is_killed_stops(tmp_path: Path) -> None:
    node = await start_node(tmp_path, processes=2)
    readers = children(node.proc.pid)
    assert len(readers) == 1
    node.proc.kill()
    node.proc.wait(10)
    deadline = time.monotonic() + 20
    while alive(readers[0]) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not alive(readers[0]), "an orphaned reader kept running"


async def test_processes_refuse_what_they_do_not_serve(tmp_path: Path) -> None:
    cmd = server_command(tmp_path, free_port(), free_port(), "--processes", "2", "--storage", "mem://")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "embedded SQLite" in done.stderr


async def _relayed(c: httpx.AsyncClient, metrics: str) -> tuple[float, float]:
    """The writer's batches of notifications sent to readers, and those it did not send."""
    text = (await c.get(f"{metrics}/metrics")).text
    found = dict(re.findall(r"^(voedger_n10n_relay_(?:requests|skipped)_total)(?:\{[^}]*\})? (\S+)$", text, re.M))
    return float(found["voedger_n10n_relay_requests_total"]), float(found["voedger_n10n_relay_skipped_total"])


async def _until(
    done: Callable[[tuple[float, float]], bool], c: httpx.AsyncClient, metrics: str
) -> tuple[float, float]:
    deadline = time.monotonic() + 10
    while not done(relayed := await _relayed(c, metrics)):
        assert time.monotonic() < deadline, relayed
        await asyncio.sleep(0.05)
    return relayed


async def test_a_subscriber_at_a_reader_is_sent_the_keys_it_watches_only(tmp_path: Path) -> None:
    """A channel opened at the reader (API v1, no token) on shop.Sales of one workspace gets the
    writer's orders there; the reader told the writer that key, so orders in another workspace
    send the reader nothing (the writer's relay skips them)."""
    metrics_port = free_port()
    node = await start_node(tmp_path, 2, "--metrics-port", str(metrics_port))
    metrics = f"http://127.0.0.1:{metrics_port}"
    try:
        async with httpx.AsyncClient(timeout=30) as c:
            watched, other = [await make_workspace(c, node.writer, name) for name in ("watched", "other")]
            items = {}
            for wsid in (watched, other):
                r = await c.post(f"{v2(node.writer, wsid)}/docs/shop.Item", json={"Name": "tea", "Price": 3})
                items[wsid] = r.json()["newIDs"]["1"]

            async def order(wsid: int) -> int:
                body = {"args": {"sys.ID": 1, "sys.QName": "shop.Order", "Item": items[wsid], "Qty": 1}}
                r = await c.post(f"{node.writer}/api/test/shop/{wsid}/c.shop.MakeOrder", json=body)
                assert r.status_code == 200, r.text
                offset: int = r.json()["CurrentWLogOffset"]
                return offset

            key = {"App": "test/shop", "Projection": "shop.Sales", "WS": watched}
            payload = orjson.dumps({"SubjectLogin": "paa", "ProjectionKey": [key]}).decode()
            async with c.stream("GET", f"{node.reader()}/n10n/channel", params={"payload": payload}) as stream:
                assert stream.status_code == 200
                events = EventReader(stream)
                assert (await events.next())[0] == "channelId"  # answered once the writer holds the key
                sent, skipped = await _relayed(c, metrics)
                for _ in range(3):
                    await order(other)
                await _until(lambda r: r[1] >= skipped + 3, c, metrics)
                assert (await _relayed(c, metrics))[0] == sent  # nothing went to the reader
                offset = await order(watched)
                assert await events.next() == (orjson.dumps(key).decode(), str(offset))
                # counted once the reader has answered the writer, which may come after the event
                assert (await _until(lambda r: r[0] >= sent + 1, c, metrics))[0] == sent + 1
    finally:
        pids = children(node.proc.pid)
        await stop(node.proc)
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
