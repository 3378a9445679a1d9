"""What a reader process of ``--processes`` serves itself and what it sends to the writer
(``router.readers``), with mock transports on both sides."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from voedger.router.readers import ReaderRoutes, served_by_reader
from voedger.router.transport import MockTransport, TransportUnavailable
from voedger.router.wire import BusRequest, BusResponse, Op
from voedger.storage.snapshot import current_scope
from voedger.structs.wsid import new_wsid
from voedger.syserror import SysError
from voedger.vvm.server import VVM

WS = new_wsid(1, 200_000)


def req(op: Op, method: str, resource: str) -> BusRequest:
    return BusRequest(op, method, "test/shop", WS, 0, resource)


@pytest.mark.parametrize(
    ("op", "method", "resource", "here"),
    [
        (Op.V2_DOCS, "GET", "shop.Item", True),
        (Op.V2_CDOCS, "GET", "shop.Item", True),
        (Op.V2_VIEWS, "GET", "shop.Sales", True),
        (Op.V2_SCHEMAS, "GET", "", True),
        (Op.V1_QUERY, "POST", "sys.Collection", True),
        (Op.V2_QUERIES, "GET", "sys.GetCDoc", True),
        (Op.V1_QUERY, "POST", "q.sys.State", True),
        (Op.V1_QUERY, "POST", "not a qname", True),  # 400 here, as at the writer
        (Op.V2_DOCS, "POST", "shop.Item", False),
        (Op.V2_DOCS, "PATCH", "shop.Item", False),
        (Op.V2_DOCS, "DELETE", "shop.Item", False),
        (Op.V1_COMMAND, "POST", "sys.CUD", False),
        (Op.V2_COMMANDS, "POST", "shop.MakeOrder", False),
        (Op.V1_QUERY, "POST", "sys.InitiateEmailVerification", False),  # sends mail
        (Op.V1_QUERY, "POST", "sys.IssueVerifiedValueToken", False),
        (Op.V1_QUERY, "POST", "sys.SqlQuery", False),
        (Op.V1_QUERY, "POST", "sys.GRCount", False),
        (Op.V1_QUERY, "POST", "shop.AppQuery", False),  # an application's own: may have side effects
        (Op.N10N_WATCH, "GET", "shop.Sales", False),
    ],
)
def test_what_a_reader_serves(op: Op, method: str, resource: str, here: bool) -> None:
    assert served_by_reader(req(op, method, resource)) is here


async def test_reads_here_in_one_snapshot_the_rest_to_the_writer() -> None:
    seen: list[tuple[str, bool]] = []

    def local(r: BusRequest) -> BusResponse:
        seen.append(("local", current_scope() is not None))
        return BusResponse(200, {}, b"local")

    vvm = cast(VVM, SimpleNamespace(config=SimpleNamespace(cluster_id=1)))
    routes = ReaderRoutes(vvm, MockTransport(local), "http://127.0.0.1:9")
    writer = MockTransport(lambda r: BusResponse(200, {}, b"writer"))
    routes._writer = cast(Any, writer)
    t = routes.transport_for("test/shop", WS, 0)
    assert (await t.send(req(Op.V2_DOCS, "GET", "shop.Item"))).body == b"local"
    assert (await t.send(req(Op.V1_COMMAND, "POST", "sys.CUD"))).body == b"writer"
    assert seen == [("local", True)] and current_scope() is None
    assert (routes.served, routes.forwarded) == (1, 1)
    with pytest.raises(SysError) as err:
        routes.transport_for("test/shop", new_wsid(2, 200_000), 0)
    assert err.value.status == 400
    await routes.aclose()
    assert writer.closed


async def test_a_writer_that_cannot_be_reached_is_not_a_crash() -> None:
    vvm = cast(VVM, SimpleNamespace(config=SimpleNamespace(cluster_id=1)))
    routes = ReaderRoutes(vvm, MockTransport(lambda r: BusResponse(200, {}, b"")), "http://127.0.0.1:9", b"s")
    t = routes.transport_for("test/shop", WS, 0)
    with pytest.raises(TransportUnavailable):  # the router answers this 503 with Retry-After
        await t.send(req(Op.V1_COMMAND, "POST", "sys.CUD"))
    await routes.aclose()
