"""The wire contract: requests and responses round-trip exactly, and anything else is refused
with an error that says what is wrong."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voedger.router.transport import MockTransport
from voedger.router.wire import (
    BusRequest,
    BusResponse,
    Op,
    WireError,
    error_of,
    error_reply,
    json_reply,
)
from voedger.syserror import SysError

METHODS = {
    Op.V1_COMMAND: ["POST", "PATCH"],
    Op.V1_QUERY: ["POST", "PATCH"],
    Op.V2_COMMANDS: ["POST"],
    Op.V2_QUERIES: ["GET"],
    Op.V2_VIEWS: ["GET"],
    Op.V2_DOCS: ["GET", "POST", "PATCH", "DELETE"],
    Op.V2_CDOCS: ["GET"],
    Op.V2_SCHEMAS: ["GET"],
    Op.V2_SCHEMAS_ROLES: ["GET"],
    Op.V2_SCHEMAS_ROLE: ["GET"],
    Op.N10N_WATCH: ["GET"],
}
u63 = st.integers(min_value=0, max_value=(1 << 63) - 1)


@st.composite
def requests(draw: st.DrawFn) -> BusRequest:
    op = draw(st.sampled_from(list(Op)))
    return BusRequest(
        op,
        draw(st.sampled_from(METHODS[op])),
        draw(st.text()),
        draw(u63),
        draw(u63),
        draw(st.text()),
        draw(u63),
        draw(st.text()),
        draw(st.text()),
        draw(st.binary()),
        draw(st.dictionaries(st.text(), st.text())),
        draw(st.text()),
        draw(u63),
    )


responses = st.builds(
    BusResponse,
    st.integers(min_value=100, max_value=599),
    st.dictionaries(st.text(), st.text()),
    st.binary(),
)


@given(requests())
def test_a_request_round_trips_exactly(request: BusRequest) -> None:
    data = request.to_bytes()
    back = BusRequest.from_bytes(data)
    assert back == request
    assert back.to_bytes() == data


@given(responses)
def test_a_response_round_trips_exactly(response: BusResponse) -> None:
    data = response.to_bytes()
    assert BusResponse.from_bytes(data) == response
    assert BusResponse.from_bytes(data).to_bytes() == data


def test_the_body_travels_as_it_is() -> None:
    body = b'{"a":1}\n\x00\xff\nnot even JSON'
    request = BusRequest(Op.V1_COMMAND, "POST", "a/b", 1, 0, "sys.CUD", body=body)
    assert request.to_bytes().endswith(b"\n" + body)  # no escaping, no base64
    assert BusRequest.from_bytes(request.to_bytes()).body == body


def good_head() -> dict[str, object]:
    data = BusRequest(Op.V2_DOCS, "GET", "a/b", 1, 0, "shop.Item", 5, params={"keys": "Name"}).to_bytes()
    head: dict[str, object] = orjson.loads(data.split(b"\n", 1)[0])
    return head


def framed(head: dict[str, object], body: bytes = b"") -> bytes:
    return orjson.dumps(head) + b"\n" + body


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"v": 2}, "wire version 2"),
        ({"op": "v3.things"}, "unknown op"),
        ({"op": 7}, "unknown op"),
        ({"method": "PUT"}, "method 'PUT'"),
        ({"wsid": -1}, "wsid must be an integer"),
        ({"wsid": "1"}, "wsid must be an integer"),
        ({"wsid": True}, "wsid must be an integer"),
        ({"wsid": 1 << 63}, "wsid must be an integer"),
        ({"partition": 1.5}, "partition must be an integer"),
        ({"app": None}, "app must be a string"),
        ({"params": {"a": 1}}, "params must be an object of strings"),
        ({"params": ["a"]}, "params must be an object of strings"),
        ({"principal": {"login": "admin"}}, "unknown field(s) principal"),
    ],
)
def test_a_malformed_request_says_what_is_wrong(change: dict[str, object], words: str) -> None:
    with pytest.raises(WireError) as info:
        BusRequest.from_bytes(framed({**good_head(), **change}))
    assert words in str(info.value)


def test_missing_fields_and_broken_frames_are_refused() -> None:
    head = good_head()
    del head["hops"]
    with pytest.raises(WireError, match="missing hops"):
        BusRequest.from_bytes(framed(head))
    with pytest.raises(WireError, match="no newline"):
        BusRequest.from_bytes(orjson.dumps(good_head()))
    with pytest.raises(WireError, match="not JSON"):
        BusRequest.from_bytes(b"\x00garbage\nbody")
    with pytest.raises(WireError, match="not a JSON object"):
        BusRequest.from_bytes(b"[1,2]\n")
    with pytest.raises(WireError, match="bytes expected"):
        BusRequest.from_bytes("text")  # type: ignore[arg-type]
    with pytest.raises(WireError, match="not an HTTP status"):
        BusResponse.from_bytes(framed({"v": 1, "status": 99, "headers": {}}))
    with pytest.raises(WireError, match="headers must be an object of strings"):
        BusResponse.from_bytes(framed({"v": 1, "status": 200, "headers": {"a": 1}}))
    with pytest.raises(WireError, match="unknown field"):
        BusResponse.from_bytes(framed({"v": 1, "status": 200, "headers": {}, "trailers": {}}))


def test_text_that_is_not_utf8_cannot_be_sent() -> None:
    with pytest.raises(WireError, match="cannot encode"):
        BusRequest(Op.V1_QUERY, "POST", "a/b", 1, 0, "sys.Echo", authorization="\ud800").to_bytes()


def test_requests_are_frozen_values() -> None:
    request = BusRequest(Op.V1_COMMAND, "POST", "a/b", 1, 0, "sys.CUD")
    with pytest.raises(AttributeError):
        request.wsid = 2  # type: ignore[misc]
    assert request.is_read is False and request.v2 is False
    assert BusRequest(Op.V1_QUERY, "POST", "a/b", 1, 0, "sys.Echo").is_read
    assert BusRequest(Op.V2_DOCS, "GET", "a/b", 1, 0, "shop.Item").is_read
    assert not BusRequest(Op.V2_DOCS, "DELETE", "a/b", 1, 0, "shop.Item", 5).is_read


def test_errors_take_the_shape_of_their_api_and_come_back() -> None:
    err = SysError(429, "slow down", qname="shop.Order", headers={"Retry-After": "7"})
    v1, v2 = error_reply(err, v2=False), error_reply(err, v2=True)
    assert v1.headers == v2.headers == {"content-type": "application/json", "retry-after": "7"}
    assert orjson.loads(v1.body) == {"sys.Error": {"HTTPStatus": 429, "Message": "slow down", "QName": "shop.Order"}}
    assert orjson.loads(v2.body) == {"status": 429, "message": "slow down", "qname": "shop.Order"}
    for reply in (v1, v2):
        again = error_of(reply)
        assert (again.status, again.message, again.qname, again.headers) == (
            429,
            "slow down",
            "shop.Order",
            {"retry-after": "7"},
        )
    assert error_of(json_reply(502, [1])).status == 500  # not an error body: an internal error
    assert error_of(BusResponse(400, {}, b"\xff")).message == "internal error"


async def test_the_mock_transport_answers_with_its_handler() -> None:
    seen: list[BusRequest] = []

    def handler(request: BusRequest) -> BusResponse:
        seen.append(request)
        return json_reply(200, {"echo": request.resource})

    async def async_handler(request: BusRequest) -> BusResponse:
        return json_reply(201, {})

    request = BusRequest(Op.V1_QUERY, "POST", "a/b", 1, 0, "sys.Echo")
    mock = MockTransport(handler)
    reply = await mock.send(request)
    assert (reply.status, orjson.loads(reply.body), seen) == (200, {"echo": "sys.Echo"}, [request])
    assert (await MockTransport(async_handler).send(request)).status == 201
    await mock.aclose()
    assert mock.closed
