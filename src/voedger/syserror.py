"""The error every layer raises for a client to see, and its two wire shapes.

API v1 answers ``{"sys.Error":{"HTTPStatus":N,"Message":"...","QName":"...","Data":"..."}}``,
API v2 answers ``{"status":N,"message":"...","qname":"...","data":"..."}``; QName and Data are
left out when empty, as Voedger does.
"""

from __future__ import annotations

from http import HTTPStatus

import orjson


class SysError(Exception):
    """An error with the HTTP status the client gets; the message is for the client to read."""

    def __init__(
        self,
        status: int,
        message: str = "",
        *,
        qname: str = "",
        data: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        if not message:
            message = f"{status} {HTTPStatus(status).phrase}" if status in HTTPStatus._value2member_map_ else ""
        super().__init__(message)
        self.status = status
        self.message = message
        self.qname = qname
        self.data = data
        self.headers = dict(headers or {})

    def v1_fields(self) -> dict[str, object]:
        """The API v1 answer as an object: ``{"sys.Error": {...}}``."""
        body: dict[str, object] = {"HTTPStatus": self.status, "Message": self.message}
        if self.qname:
            body["QName"] = self.qname
        if self.data:
            body["Data"] = self.data
        return {"sys.Error": body}

    def to_v1(self) -> bytes:
        return orjson.dumps(self.v1_fields())

    def v2_fields(self) -> dict[str, object]:
        """The API v2 error object: ``{"status": ..., "message": ...}`` (and qname, data)."""
        body: dict[str, object] = {"status": self.status, "message": self.message}
        if self.qname:
            body["qname"] = self.qname
        if self.data:
            body["data"] = self.data
        return body

    def to_v2(self) -> bytes:
        return orjson.dumps(self.v2_fields())

    def to_v2_array(self) -> bytes:
        """The API v2 answer of a read whose answer is an array (queries, views, cdocs) that
        failed before any result: ``{"results":[],"error":{...}}``, as Voedger streams it."""
        return orjson.dumps({"results": [], "error": self.v2_fields()})

    def __repr__(self) -> str:
        return f"SysError({self.status}, {self.message!r})"


def bad_request(message: str, qname: str = "") -> SysError:
    return SysError(400, message, qname=qname)


def not_found(message: str, qname: str = "") -> SysError:
    return SysError(404, message, qname=qname)


def forbidden(message: str, qname: str = "") -> SysError:
    return SysError(403, message, qname=qname)


def conflict(message: str, qname: str = "") -> SysError:
    return SysError(409, message, qname=qname)
