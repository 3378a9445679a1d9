"""Reads in process, for profiles and instruction counts: the ASGI application called directly.

    python benchmarks/reads_inproc.py [--reads 2000] [--concurrency 64] [--scenario collection|doc|view|all]
                                      [--profile cprofile|callgrind|none]

Starts a VVM on SQLite in a scratch folder (``--insecure-dev``), makes 10 shop workspaces with
10 ``shop.Item`` documents each, then sends ``--reads`` reads of a scenario to the application
(the router, the owner, the query processor, storage; no sockets, no HTTP parsing), ``--concurrency``
at a time, after 200 reads of warm-up. It prints the CPU per read and how long its event loop's
thread ran and waited for a core. ``PYTHONPATH=.native`` runs the native build.

``--profile cprofile`` prints where the reads' time goes (``SORT=cumtime TOP=60`` to change the
listing). ``--profile callgrind``, under valgrind, zeroes callgrind's counters before the
measured reads and dumps them after (``callgrind_control``), and prints the instructions per
read (all threads), free of the VM's speed and of the machine's load:

    valgrind --tool=callgrind --callgrind-out-file=callgrind.out.%p \
        python benchmarks/reads_inproc.py --scenario all --reads 500 --profile callgrind

(run it in a scratch folder: the dumps land in the current one and are removed once read).
Every answer is checked: status 200 and, after the first, the same bytes as the first of its kind.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "tests" / "router" / "shop"
NUM_WS = 10
DOCS_PER_WS = 10
COLLECTION_BODY = b'{"args":{"Schema":"shop.Item"},"elements":[{"fields":["Name","Price"]}],"count":10}'
VIEW_WHERE = quote('{"Part":0}')


HEADERS: list[tuple[bytes, bytes]] = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")]
"""Every request's headers (``--auth`` adds the owner's token)."""


async def call(app: Any, method: str, path: str, body: bytes = b"", query: bytes = b"") -> tuple[int, bytes]:
    """One request to the ASGI application; (status, body)."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": HEADERS,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8822),
    }
    sent = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 0
    chunks: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def make_workspaces(vvm: Any, count: int = NUM_WS, owner: int = 0) -> list[int]:
    """``count`` shop workspaces, made by System CUDs at their partitions (owned by the profile
    at ``owner`` if given); their WSIDs."""
    from voedger.appdef import QName
    from voedger.processors.command import CommandRequest
    from voedger.processors.principal import SYSTEM
    from voedger.structs.wsid import new_wsid

    shop = vvm.app("test/shop")
    wsids = [new_wsid(1, 0x20000 + n) for n in range(count)]
    for wsid in wsids:
        descriptor = {
            "sys.ID": 1,
            "sys.QName": "sys.WorkspaceDescriptor",
            "WSName": f"bench{wsid}",
            "WSKind": "shop.ShopDesc",
            "CreatedAtMs": 1,
            "InitCompletedAtMs": 1,
            **({"OwnerWSID": owner} if owner else {}),
        }
        cuds = [{"fields": descriptor}, {"fields": {"sys.ID": 2, "sys.QName": "shop.ShopDesc", "Name": "shop"}}]
        await shop.partition(wsid).submit(
            CommandRequest(wsid, QName("sys", "CUD"), {"cuds": cuds}, SYSTEM, synced=True)
        )
    return wsids


async def sign_in_owner(vvm: Any) -> int:
    """``--auth``: a profile for the owner and the owner's token on every request from now on;
    the profile's WSID."""
    from datetime import timedelta

    from voedger.appdef import QName
    from voedger.auth import PrincipalPayload
    from voedger.processors.command import CommandRequest
    from voedger.processors.principal import SYSTEM
    from voedger.structs.wsid import new_wsid

    profile = new_wsid(1, 0x1FFFF)
    descriptor = {"sys.ID": 1, "sys.QName": "sys.WorkspaceDescriptor", "WSName": "owner", "WSKind": "sys.UserProfile"}
    cuds = [
        {"fields": {**descriptor, "CreatedAtMs": 1, "InitCompletedAtMs": 1}},
        {"fields": {"sys.ID": 2, "sys.QName": "sys.UserProfile", "DisplayName": "owner"}},
    ]
    await (
        vvm.app("test/shop")
        .partition(profile)
        .submit(CommandRequest(profile, QName("sys", "CUD"), {"cuds": cuds}, SYSTEM, synced=True))
    )
    token = vvm.tokens.issue("test/shop", PrincipalPayload(login="owner", profile_wsid=profile), timedelta(hours=1))
    HEADERS.append((b"authorization", f"Bearer {token}".encode()))
    return int(profile)


class Statements:
    """Storage statements of the application's storage, counted by kind (point reads, batches of
    point reads, range reads)."""

    def __init__(self, storage: Any) -> None:
        self.counts = {"get": 0, "get_batch": 0, "read": 0}
        for name in self.counts:
            setattr(storage, name, self._counting(name, getattr(storage, name)))

    def _counting(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] += 1
            return method(*args, **kwargs)

        return counted

    def taken(self) -> dict[str, int]:
        counts = dict(self.counts)
        for name in self.counts:
            self.counts[name] = 0
        return counts


async def prepare(app: Any, vvm: Any, owner: int = 0) -> tuple[list[int], list[tuple[int, int]]]:
    """The workspaces and their documents: (WSIDs, [(WSID, document ID)])."""
    wsids = await make_workspaces(vvm, owner=owner)
    docs: list[tuple[int, int]] = []
    for wsid in wsids:
        for n in range(DOCS_PER_WS):
            fields = {"sys.ID": 1, "sys.QName": "shop.Item", "Name": f"item {n}", "Price": n}
            status, body = await call(
                app, "POST", f"/api/test/shop/{wsid}/c.sys.CUD", orjson.dumps({"cuds": [{"fields": fields}]})
            )
            if status != 200:
                raise SystemExit(f"insert failed: {status} {body!r}")
            docs.append((wsid, int(orjson.loads(body)["NewIDs"]["1"])))
    # The async projector's view: wait until it counted every workspace's items.
    deadline = time.monotonic() + 30
    for wsid in wsids:
        while True:
            status, body = await call(app, "GET", view_path(wsid), query=b"where=" + VIEW_WHERE.encode())
            results = orjson.loads(body).get("results") if status == 200 else None
            if results and results[0].get("Count") == DOCS_PER_WS:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the view of {wsid} did not fill: {status} {body!r}")
            await asyncio.sleep(0.05)
    return wsids, docs


def view_path(wsid: int) -> str:
    return f"/api/v2/apps/test/shop/workspaces/{wsid}/views/shop.ItemCount"


Request = tuple[str, str, bytes, bytes]


def scenario_requests(name: str, wsids: list[int], docs: list[tuple[int, int]]) -> Callable[[int], Request]:
    if name == "collection":
        return lambda n: ("POST", f"/api/test/shop/{wsids[n % len(wsids)]}/q.sys.Collection", COLLECTION_BODY, b"")
    if name == "doc":

        def doc(n: int) -> Request:
            wsid, doc_id = docs[n % len(docs)]
            return ("GET", f"/api/v2/apps/test/shop/workspaces/{wsid}/docs/shop.Item/{doc_id}", b"", b"")

        return doc
    if name == "view":
        return lambda n: ("GET", view_path(wsids[n % len(wsids)]), b"", b"where=" + VIEW_WHERE.encode())
    raise SystemExit(f"unknown scenario {name}")


async def run_reads(app: Any, make: Callable[[int], Request], reads: int, concurrency: int) -> None:
    first: dict[str, bytes] = {}
    counter = iter(range(reads))

    async def worker() -> None:
        for n in counter:
            method, path, body, query = make(n)
            status, answer = await call(app, method, path, body, query)
            if status != 200:
                raise SystemExit(f"{method} {path}: {status} {answer!r}")
            key = path.rsplit("/", 1)[0] if method == "GET" and "/docs/" in path else path
            if method == "POST" or "/views/" in path:
                key = "any"  # every workspace's collection (and view) answers the same bytes
            expected = first.setdefault(key, answer)
            if "/docs/" not in path and answer != expected:
                raise SystemExit(f"{path}: answered {answer!r}, before {expected!r}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def schedstat() -> tuple[float, float]:
    """Seconds this thread has run on a core, and waited runnable for one (the machine's load)."""
    fields = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat").read_text().split()
    return int(fields[0]) / 1e9, int(fields[1]) / 1e9


def callgrind_control(command: str) -> int:
    """Zero or dump this process's callgrind counters (it runs under valgrind); after a dump,
    the instructions counted since the last zero (the dump's totals, all threads)."""
    before = set(Path.cwd().glob("callgrind.out.*"))
    # Valgrind takes the command while this process runs code, not while it waits in a call.
    control = subprocess.Popen(["callgrind_control", command, str(os.getpid())], stdout=subprocess.DEVNULL)
    while control.poll() is None:
        time.sleep(0.005)
    if not command.startswith("--dump"):
        return 0
    total = 0
    for dump in set(Path.cwd().glob("callgrind.out.*")) - before:
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:") or line.startswith("summary:"):
                total += int(line.split()[1])
                break
        dump.unlink()
    return total


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--scenario", choices=["collection", "doc", "view", "all"], default="collection")
    parser.add_argument("--profile", choices=["cprofile", "callgrind", "none"], default="none")
    parser.add_argument("--auth", action="store_true", help="authentication on: requests carry the owner's token")
    parser.add_argument(
        "--statements", action="store_true", help="count the storage statements per read (Python build only)"
    )
    args = parser.parse_args()

    from voedger.router.app import build_app
    from voedger.router.local import LocalTransport
    from voedger.router.server import settle_heap
    from voedger.vvm.server import VVM, ServerConfig

    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(
            storage_url=f"sqlite://{tmp}",
            apps=[("test/shop", APP_DIR)],
            insecure_dev=not args.auth,
            max_queries_per_ws=0,
        )
        vvm = VVM(config)
        await vvm.start()
        try:
            app = build_app(vvm, {1: LocalTransport(vvm)})
            owner = await sign_in_owner(vvm) if args.auth else 0
            wsids, docs = await prepare(app, vvm, owner)
            statements = Statements(vvm.app("test/shop").runtime.storage) if args.statements else None
            settle_heap()
            names = ["collection", "doc", "view"] if args.scenario == "all" else [args.scenario]
            for name in names:
                make = scenario_requests(name, wsids, docs)
                await run_reads(app, make, 200, args.concurrency)  # warm-up: caches, first answers
                profiler = cProfile.Profile() if args.profile == "cprofile" else None
                if args.profile == "callgrind":
                    callgrind_control("--zero")
                if statements is not None:
                    statements.taken()
                sched0 = schedstat()
                cpu0, t0 = time.process_time(), time.perf_counter()
                if profiler is not None:
                    profiler.enable()
                await run_reads(app, make, args.reads, args.concurrency)
                if profiler is not None:
                    profiler.disable()
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
                on_cpu, waiting = (b - a for a, b in zip(sched0, schedstat(), strict=True))
                if args.profile == "callgrind":
                    instructions = callgrind_control("--dump=" + name)
                    print(f"{name}: {args.reads} reads, {instructions / args.reads / 1000:.0f}k instructions per read")
                    continue
                print(
                    f"{name}: {args.reads} reads, {cpu / args.reads * 1e6:.0f} us of CPU per read, {wall:.2f} s "
                    f"(event loop's thread: {on_cpu:.2f} s on a core, {waiting:.2f} s waiting for one)"
                )
                if statements is not None:
                    each = ", ".join(f"{k} {v / args.reads:.2f}" for k, v in statements.taken().items())
                    print(f"{name}: storage statements per read: {each}")
                if profiler is not None:
                    pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(
                        int(os.environ.get("TOP", "45"))
                    )
        finally:
            await vvm.stop()


if __name__ == "__main__":
    asyncio.run(main())
