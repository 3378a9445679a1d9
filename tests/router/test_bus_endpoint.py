"""Forwarding over HTTP: the owner's endpoint takes only requests that carry the cluster secret
and decode, and the forwarding side tells a request that never left from one whose answer was
lost: a command of unknown fate is a 503 with Retry-After, never sent twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import pytest

from tests.router.conftest import APP_WS, SHOP_DIR, make_shop_ws
from tests.support import free_port, wait_ready
from voedger.auth import StorageSecretStore, cluster_secret
from voedger.router.app import build_app
from voedger.router.bus_endpoint import BusEndpoint
from voedger.router.http_transport import HttpTransport
from voedger.router.local import LocalTransport
from voedger.router.owner import Owner
from voedger.router.transport import MockTransport, TransportUnavailable
from voedger.router.wire import BUS_PATH, MAX_HOPS, SECRET_HEADER, BusRequest, BusResponse, Op, json_reply
from voedger.storage import open_storage
from voedger.structs.wsid import DEFAULT_NUM_PARTITIONS, new_wsid, partition_of
from voedger.vvm.server import VVM, VVM_APP, ServerConfig

SECRET = b"\xab" * 32
ECHO = orjson.dumps({"args": {"Text": "hi"}, "elements": [{"fields": ["Res"]}]})
CUD = orjson.dumps({"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}}]})
SHOP_WS = new_wsid(1, 200_200)


@pytest.fixture
async def vvm(tmp_path: Path) -> AsyncIterator[VVM]:
    """On SQLite only: what is tested here does not depend on the storage."""
    v = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[("test/shop", SHOP_DIR)], insecure_dev=True))
    await v.start()
    await make_shop_ws(cast(Any, None), v, SHOP_WS)
    yield v
    await v.stop()


def shop_request(vvm: VVM, op: Op, resource: str, body: bytes) -> BusRequest:
    part = partition_of(SHOP_WS, vvm.app("test/shop").runtime.num_partitions)
    return BusRequest(op, "POST", "test/shop", SHOP_WS, part, resource, body=body)


def echo_request(vvm: VVM, hops: int = 0) -> BusRequest:
    part = partition_of(APP_WS, vvm.app("test/shop").runtime.num_partitions)
    return BusRequest(Op.V1_QUERY, "POST", "test/shop", APP_WS, part, "sys.Echo", body=ECHO, hops=hops)


@pytest.fixture
async def owner_client(vvm: VVM) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the owner's application, which serves forwarded requests."""
    owner = Owner(vvm)
    app = build_app(vvm, {1: LocalTransport(vvm, owner)}, bus=BusEndpoint(owner, SECRET))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://owner") as client:
        yield client


async def test_a_forwarded_request_is_answered_with_the_owners_bytes(owner_client: httpx.AsyncClient, vvm: VVM) -> None:
    request = echo_request(vvm)
    r = await owner_client.post(BUS_PATH, content=request.to_bytes(), headers={SECRET_HEADER: SECRET.hex()})
    assert r.status_code == 200, r.text
    reply = BusResponse.from_bytes(r.content)
    assert reply == await LocalTransport(vvm).send(request)
    assert orjson.loads(reply.body) == {"sections": [{"type": "", "elements": [[[["hi"]]]]}]}


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({}, 401, SECRET_HEADER),
        ({SECRET_HEADER: ""}, 403, "secret is wrong"),
        ({SECRET_HEADER: "ab" * 31}, 403, "secret is wrong"),
        ({SECRET_HEADER: SECRET.hex().upper()}, 403, "secret is wrong"),
    ],
)
async def test_no_secret_or_a_wrong_one_is_refused_before_anything_runs(
    owner_client: httpx.AsyncClient, vvm: VVM, headers: dict[str, str], status: int, words: str
) -> None:
    cud = shop_request(vvm, Op.V1_COMMAND, "sys.CUD", CUD)
    r = await owner_client.post(BUS_PATH, content=cud.to_bytes(), headers=headers)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    error = r.json()["sys.Error"]  # Voedger's error shape
    assert error["HTTPStatus"] == status and words in error["Message"], r.text
    assert SECRET.hex() not in r.text
    # Nothing was done: the same command, forwarded properly, is the workspace's first event.
    r = await owner_client.post(BUS_PATH, content=cud.to_bytes(), headers={SECRET_HEADER: SECRET.hex()})
    assert orjson.loads(BusResponse.from_bytes(r.content).body)["CurrentWLogOffset"] == 2  # after the descriptor


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"garbage",
        b"{}\n",
        b'{"v":1,"op":"v1.query"}\n',
        b"\xff\xfe\n\x00",
    ],
)
async def test_garbage_is_400(owner_client: httpx.AsyncClient, frame: bytes) -> None:
    r = await owner_client.post(BUS_PATH, content=frame, headers={SECRET_HEADER: SECRET.hex()})
    assert r.status_code == 400, r.text
    assert r.json()["sys.Error"]["Message"].startswith("malformed bus request: request:")


async def test_a_request_forwarded_too_often_is_a_loop(owner_client: httpx.AsyncClient, vvm: VVM) -> None:
    r = await owner_client.post(
        BUS_PATH, content=echo_request(vvm, hops=MAX_HOPS + 1).to_bytes(), headers={SECRET_HEADER: SECRET.hex()}
    )
    assert r.status_code == 508 and "loop" in r.text
    r = await owner_client.post(
        BUS_PATH, content=echo_request(vvm, hops=MAX_HOPS).to_bytes(), headers={SECRET_HEADER: SECRET.hex()}
    )
    assert r.status_code == 200


async def test_a_server_without_a_bus_has_no_such_endpoint(client: httpx.AsyncClient, vvm: VVM) -> None:
    r = await client.post(BUS_PATH, content=echo_request(vvm).to_bytes(), headers={SECRET_HEADER: SECRET.hex()})
    assert r.status_code == 404


async def test_the_transport_forwards_with_the_secret_and_counts_the_hop(vvm: VVM) -> None:
    seen: list[httpx.Request] = []
    request = echo_request(vvm, hops=1)
    expected = await LocalTransport(vvm).send(request)

    def owner(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        return httpx.Response(200, content=expected.to_bytes())

    client = httpx.AsyncClient(transport=httpx.MockTransport(owner))
    transport = HttpTransport("http://owner:1/", SECRET, client=client)
    assert await transport.send(request) == expected
    [sent] = seen
    assert str(sent.url) == f"http://owner:1{BUS_PATH}" and sent.method == "POST"
    assert sent.headers[SECRET_HEADER] == SECRET.hex()
    assert BusRequest.from_bytes(sent.content).hops == 2
    assert SECRET.hex() not in repr(transport)
    await transport.aclose()
    assert client.is_closed


async def test_a_refused_connection_is_unavailable_and_the_edge_answers_503(vvm: VVM) -> None:
    transport = HttpTransport(f"http://127.0.0.1:{free_port()}", SECRET)  # nobody listens there
    with pytest.raises(TransportUnavailable):
        await transport.send(echo_request(vvm))
    app = build_app(vvm, {1: transport})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as edge:
        r = await edge.post(f"/api/test/shop/{APP_WS}/c.sys.CUD", content=CUD)
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        assert "cannot be reached" in r.json()["sys.Error"]["Message"]
        r = await edge.get(f"/api/v2/apps/test/shop/workspaces/{APP_WS}/queries/sys.Echo")
        assert r.status_code == 503 and r.json()["status"] == 503  # API v2's shape
    await transport.aclose()


@contextlib.asynccontextmanager
async def hanging_up_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """Reads each request whole, then closes the connection without an answer."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        received.append(await reader.readexactly(length))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], received
    finally:
        server.close()
        await server.wait_closed()


async def test_a_command_whose_answer_is_lost_is_503_and_not_repeated(vvm: VVM) -> None:
    async with hanging_up_server() as (port, received):
        transport = HttpTransport(f"http://127.0.0.1:{port}", SECRET)
        command = shop_request(vvm, Op.V1_COMMAND, "sys.CUD", CUD)
        reply = await transport.send(command)
        assert reply.status == 503 and reply.headers["retry-after"] == "1"
        message = orjson.loads(reply.body)["sys.Error"]["Message"]
        assert "may or may not have been done" in message
        assert len(received) == 1  # sent once, never again
        assert BusRequest.from_bytes(received[0]).body == CUD

        read = await transport.send(echo_request(vvm))
        assert read.status == 503 and read.headers["retry-after"] == "1"
        v2 = shop_request(vvm, Op.V2_COMMANDS, "shop.MakeOrder", b"{}")
        assert orjson.loads((await transport.send(v2)).body)["status"] == 503  # API v2's shape
        await transport.aclose()


async def test_a_garbled_or_failed_answer_to_a_command_is_503(vvm: VVM) -> None:
    command = shop_request(vvm, Op.V1_COMMAND, "sys.CUD", CUD)
    for answer in (httpx.Response(200, content=b"not a frame"), httpx.Response(502, content=b"bad gateway")):
        client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _, a=answer: a))
        reply = await HttpTransport("http://owner", SECRET, client=client).send(command)
        assert reply.status == 503 and reply.headers["retry-after"] == "1"
        await client.aclose()


async def test_an_endpoint_that_refuses_us_is_an_internal_error(
    owner_client: httpx.AsyncClient, vvm: VVM, caplog: pytest.LogCaptureFixture
) -> None:
    transport = HttpTransport("http://owner", b"\x02" * 32, client=owner_client)
    with caplog.at_level(logging.ERROR, "voedger.router"):
        reply = await transport.send(echo_request(vvm))
    assert reply.status == 500 and orjson.loads(reply.body) == {
        "sys.Error": {"HTTPStatus": 500, "Message": "internal error"}
    }
    assert "refused a forwarded request: 403" in caplog.text
    assert ("02" * 32) not in caplog.text and SECRET.hex() not in caplog.text


async def test_routes_are_a_seam(vvm: VVM) -> None:
    """The edge asks its Routes for a transport per request; any Routes will do."""
    asked: list[tuple[str, int, int]] = []
    mock = MockTransport(lambda r: json_reply(200, {"forwarded": r.resource, "wsid": r.wsid}))

    class Everything:
        def transport_for(self, app: str, wsid: int, partition: int) -> MockTransport:
            asked.append((app, wsid, partition))
            return mock

        async def aclose(self) -> None:
            pass

    app = build_app(vvm, Everything())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as edge:
        r = await edge.post(f"/api/test/shop/{APP_WS}/q.sys.Echo", content=ECHO)
    assert r.json() == {"forwarded": "sys.Echo", "wsid": APP_WS}
    assert asked == [("test/shop", APP_WS, partition_of(APP_WS, vvm.app("test/shop").runtime.num_partitions))]


async def test_a_server_serves_forwarded_requests_with_the_secret_in_its_storage(tmp_path: Path) -> None:
    """``voedger server``: the first process to start creates the cluster secret (here the test,
    before the server), the others read it; with it, a request is forwarded over a real socket."""
    data = tmp_path / "data"
    provider = open_storage(f"sqlite://{data.resolve()}")
    await provider.open()
    secret = await cluster_secret(StorageSecretStore(await provider.app_storage(VVM_APP)))
    await provider.close()
    port = free_port()
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "voedger.cli.voedger", "server", "--data-dir", str(data), "--port", str(port)]
    cmd += ["--app", f"test/shop={SHOP_DIR}", "--insecure-dev"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
    try:
        await wait_ready(port, proc)
        transport = HttpTransport(f"http://127.0.0.1:{port}", secret)
        part = partition_of(APP_WS, DEFAULT_NUM_PARTITIONS)  # the shop declares no number of its own
        reply = await transport.send(BusRequest(Op.V1_QUERY, "POST", "test/shop", APP_WS, part, "sys.Echo", body=ECHO))
        assert reply.status == 200 and orjson.loads(reply.body)["sections"][0]["elements"] == [[[["hi"]]]]
        await transport.aclose()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as c:
            assert (await c.post(BUS_PATH, content=b"x")).status_code == 401
            assert (await c.post(BUS_PATH, content=b"x", headers={SECRET_HEADER: "00" * 32})).status_code == 403
            assert (await c.post(BUS_PATH, content=b"x", headers={SECRET_HEADER: secret.hex()})).status_code == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    text = log.read_bytes().decode(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert secret.hex() not in text
