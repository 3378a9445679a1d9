from __future__ import annotations

import orjson

from voedger.syserror import SysError


def test_v1_and_v2_shapes() -> None:
    e = SysError(400, "field x is missing", qname="app.T", data="x")
    assert orjson.loads(e.to_v1()) == {
        "sys.Error": {"HTTPStatus": 400, "Message": "field x is missing", "QName": "app.T", "Data": "x"}
    }
    assert orjson.loads(e.to_v2()) == {
        "status": 400,
        "message": "field x is missing",
        "qname": "app.T",
        "data": "x",
    }


def test_empty_parts_are_left_out_and_default_message() -> None:
    e = SysError(404)
    assert orjson.loads(e.to_v1()) == {"sys.Error": {"HTTPStatus": 404, "Message": "404 Not Found"}}
    assert orjson.loads(e.to_v2()) == {"status": 404, "message": "404 Not Found"}
