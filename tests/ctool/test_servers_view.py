"""``ctool status``'s lines on the servers' own view of the cluster (``GET /api/cluster`` on each
node's metrics port): real servers in this test process, two in a cluster over one shared
in-memory storage on 127.0.0.1 and 127.0.0.2, a third node where nothing listens, and a CE
node's one process (no SSH: unit tier)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support import free_port, share_one_storage
from voedger.ctool import ops
from voedger.ctool.state import Cluster, Node, NodeState
from voedger.metrics.service import metrics_app
from voedger.router.http import HttpServer
from voedger.router.server import make_asgi
from voedger.vvm.server import VVM, ServerConfig


def cluster_of(edition: str, addresses: list[str]) -> Cluster:
    nodes = [
        Node(name=f"node{i}", role="DBAppNode", node_root="/", actual=NodeState(a, "1.0.0"))
        for i, a in enumerate(addresses, start=1)
    ]
    return Cluster(edition, 22, "root", "/k", "/kh", 80, nodes=nodes)


class Servers:
    def __init__(self) -> None:
        self.http: list[HttpServer] = []
        self.vvms: list[VVM] = []
        self.metrics_port = free_port()

    async def start(self, address: str, cluster: bool) -> VVM:
        port = free_port()
        config = ServerConfig(storage_url="mem://", cluster=cluster, advertise=f"http://{address}:{port}", lease_ttl=2)
        app, vvm = make_asgi(config)
        api, metrics = HttpServer(app), HttpServer(metrics_app(vvm, f"{address}:{port}"))
        self.vvms.append(vvm)
        await api.start(address, port)
        self.http.append(api)
        await metrics.start(address, self.metrics_port)
        self.http.append(metrics)
        return vvm

    async def view(self, cluster: Cluster) -> list[str]:
        return await asyncio.to_thread(ops.servers_view, cluster, self.metrics_port, 2.0)


@pytest.fixture
async def servers(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Servers]:
    share_one_storage(monkeypatch)
    s = Servers()
    try:
        yield s
    finally:
        for vvm in s.vvms:
            await vvm.leave()
        for http in reversed(s.http):
            await http.stop(2.0)
        for vvm in s.vvms:
            await vvm.stop()


async def test_each_node_says_whether_the_cluster_is_settled_and_who_owns_what(servers: Servers) -> None:
    for address in ("127.0.0.1", "127.0.0.2"):
        await servers.start(address, cluster=True)
    cluster = cluster_of("SE", ["127.0.0.1", "127.0.0.2", "127.0.0.3"])
    ends = time.monotonic() + 20
    while True:
        lines = await servers.view(cluster)
        settled = all("settled;" in line and "NOT" not in line for line in lines[:2])
        if (settled and lines[3].startswith("views agree")) or time.monotonic() > ends:
            break
        await asyncio.sleep(0.2)
    first, second, third, agreement = lines
    total = len(servers.vvms[0].cluster_status()["partitions"])
    assert agreement == f"views agree: node1, node2 name the same owner and epoch for all {total} partitions"
    for line in (first, second):
        assert line.startswith(("node1: 2 members, settled;", "node2: 2 members, settled;")), lines
        shares = dict(s.split(" ") for s in line.split("owned: ")[1].split(" of ")[0].split(", "))
        assert set(shares) == {"node1", "node2"} and sum(map(int, shares.values())) == total, line
        assert all(int(n) > 0 for n in shares.values()), line
        assert line.endswith(f" of {total}")
    assert third == "node3: no cluster view (ConnectError)"

    # The second leaves: the first takes every partition over.
    await servers.vvms[1].leave()
    ends = time.monotonic() + 20
    while True:
        [line] = await servers.view(cluster_of("SE", ["127.0.0.1"]))
        if line == f"node1: 1 members, settled; partitions owned: node1 {total} of {total}":
            break
        assert time.monotonic() < ends, line
        await asyncio.sleep(0.05)


async def test_a_ce_node_serves_every_partition_itself(servers: Servers) -> None:
    vvm = await servers.start("127.0.0.1", cluster=False)
    total = len(vvm.cluster_status()["partitions"])
    [line] = await servers.view(cluster_of("CE", ["127.0.0.1"]))
    assert line == f"node1: one process serves {total} partitions"


def test_views_that_name_other_owners_are_told_apart() -> None:
    one = {("app", p): "node1 (epoch 1)" for p in range(5)}
    other = dict(one) | {("app", 0): "node2 (epoch 2)", ("app", 3): "none"}
    assert ops.views_compared({"node1": one, "node2": dict(one), "node3": dict(one)}) == (
        "views agree: node1, node2, node3 name the same owner and epoch for all 5 partitions"
    )
    assert ops.views_compared({"node1": one, "node2": other}) == (
        "views differ on 2 of 5 partitions (app/0: node1 says node1 (epoch 1), node2 says node2 (epoch 2);"
        " app/3: node1 says node1 (epoch 1), node2 says none): a move under way, or a server that has not"
        " read the leases since"
    )
    many = {("app", p): "node2 (epoch 2)" for p in range(5)}
    assert ops.views_compared({"node1": one, "node2": many}).startswith("views differ on 5 of 5 partitions (app/0: ")
    assert "; and 2 more): " in ops.views_compared({"node1": one, "node2": many})
    # a partition one server does not list at all (a newer application it has not loaded yet)
    fewer = {k: v for k, v in one.items() if k != ("app", 4)}
    assert ops.views_compared({"node1": one, "node2": fewer}).startswith(
        "views differ on 1 of 5 partitions (app/4: node1 says node1 (epoch 1), node2 says none)"
    )


def test_an_unsettled_view_says_why() -> None:
    """A server mid-takeover (a partition whose owner is no member any more, rows not yet
    agreeing) and one answering something else than a cluster view."""
    views = {
        "/api/cluster": {
            "cluster": True,
            "members": [{"id": "a", "address": "http://127.0.0.1:8822"}],
            "partitions": [{"owner": "a"}, {"owner": "gone"}, {"owner": ""}],
            "settled": False,
            "claims_agree": False,
        }
    }

    class View(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(views.get(self.path, [])).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), View)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        [line] = ops.servers_view(cluster_of("SE", ["127.0.0.1"]), port)
        assert line == (
            "node1: 1 members, NOT settled (2 partitions without a live owner; the members' rows"
            " disagree with the leases); partitions owned: node1 1 of 3"
        )
        views["/api/cluster"] = {"cluster": True, "members": 3}  # not a view of members
        [line] = ops.servers_view(cluster_of("SE", ["127.0.0.1"]), port)
        assert line == "node1: no cluster view (the answer is not one)"
        views["/api/cluster"] = {"cluster": True, "members": [3], "partitions": []}
        [line] = ops.servers_view(cluster_of("SE", ["127.0.0.1"]), port)
        assert line == "node1: no cluster view (the answer is not one)"
    finally:
        server.shutdown()
        server.server_close()
