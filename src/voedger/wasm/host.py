"""What a WASM extension's host functions do: the JSON requests of ``abi.py`` turned into the
same ``State`` reads and ``Intents`` a Python extension makes, checked the same way.

A call runs in a worker thread while the event loop goes on; a read is a coroutine of the
``State``, run on the loop (``run_coroutine_threadsafe``) and waited for by the worker.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Coroutine
from typing import Any

import orjson

from voedger.appdef import Extension, TypeKind
from voedger.state import Intents, State, StateError
from voedger.syserror import SysError

__all__ = ["CallHost", "HostCallError"]

_READ_TIMEOUT = 60.0
"""How long a host read may wait for the event loop before the call fails."""
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class HostCallError(StateError):
    """The guest asked for something malformed (not JSON, an unknown request, a missing field)."""


def _bytes_as_base64(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value: object) -> bytes:
    return orjson.dumps(value, default=_bytes_as_base64)


class CallHost:
    """The host side of one call of an extension."""

    def __init__(self, ext: Extension, state: State, intents: Intents, loop: asyncio.AbstractEventLoop) -> None:
        self._ext = ext
        self._state = state
        self._intents = intents
        self._loop = loop
        self._input: bytes | None = None
        self._records: dict[int, Any] = {}
        """Records this call read, by ID: an update of one needs no second read."""
        self._last_outside: tuple[bytes, bytes] | None = None
        """The last HTTP or mail read and its answer: the same request again right after it is
        a guest whose buffer was too small asking again, not a second request or message."""

    def _wait(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_READ_TIMEOUT)

    def _request(self, raw: bytes, what: str) -> dict[str, Any]:
        try:
            req = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise HostCallError(f"{self._ext.qname}: the {what} request is not JSON: {exc}") from None
        if not isinstance(req, dict) or not req:
            raise HostCallError(f"{self._ext.qname}: the {what} request must be a JSON object, got {raw[:80]!r}")
        return req

    def _field(self, req: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
        value = req.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise HostCallError(f"{self._ext.qname}: the {what} request needs {name!r} ({req!r:.120})")
        return value

    # --- Host ----------------------------------------------------------------------------------

    def input(self) -> bytes:
        if self._input is None:
            out: dict[str, Any] = {"wsid": self._state.wsid}
            if self._ext.kind is TypeKind.Projector:
                out["event"] = self._state.event.to_json(with_extra=False)
            elif self._ext.kind in (TypeKind.Command, TypeKind.Query):
                out["args"] = self._state.arg
            self._input = _dumps(out)
        return self._input

    def read(self, request: bytes) -> bytes:
        last, self._last_outside = self._last_outside, None
        req = self._request(request, "read")
        if "http" in req or "send_mail" in req:
            answer = last[1] if last is not None and last[0] == request else _dumps(self._outside(req))
            self._last_outside = (request, answer)
            return answer
        if "record" in req:
            record_id = self._field(req, "record", int, "read")
            found: Any = self._wait(self._state.record(record_id))
            if found is not None:
                self._records[record_id] = found
        elif "singleton" in req:
            found = self._wait(self._state.singleton(self._field(req, "singleton", str, "read")))
        elif "view" in req:
            key = req.get("key", {})
            if not isinstance(key, dict):
                raise HostCallError(f"{self._ext.qname}: the key of a view read must be an object")
            found = self._wait(self._state.view(self._field(req, "view", str, "read"), **key))
        else:
            raise HostCallError(
                f"{self._ext.qname}: unknown read {sorted(req)}: record, singleton, view, http or send_mail"
            )
        return _dumps(found)

    def _outside(self, req: dict[str, Any]) -> dict[str, Any]:
        """``{"http": {Url, Method, Body, Header, HTTPClientTimeoutMilliseconds, HandleErrors}}``
        and ``{"send_mail": {...}}``, with the field names of Voedger's storages."""
        if "http" in req:
            h = self._field(req, "http", dict, "http")
            answer = self._wait(
                self._state.http(
                    str(h.get("Url", "")),
                    method=str(h.get("Method") or "GET"),
                    body=str(h.get("Body") or ""),
                    headers=h.get("Header") or None,
                    timeout_ms=h.get("HTTPClientTimeoutMilliseconds") or 0,
                    handle_errors=h.get("HandleErrors") is True,
                )
            )
            return {
                "StatusCode": answer.status_code,
                "Body": answer.text,
                "Header": answer.header,
                "Error": answer.error,
            }
        outcome = self._wait(self._state.send_mail(**self._mail(req)))
        return {"Success": outcome.success, "ErrorMessage": outcome.error_message}

    def _mail(self, req: dict[str, Any]) -> dict[str, Any]:
        m = self._field(req, "send_mail", dict, "send_mail")
        names = {"Host": "host", "Port": "port", "From": "sender", "To": "to", "CC": "cc", "BCC": "bcc"}
        names |= {"Subject": "subject", "Body": "body", "Username": "username", "Password": "password"}
        unknown = sorted(set(m) - set(names))
        if unknown:
            raise HostCallError(f"{self._ext.qname}: send_mail does not know {unknown}: {sorted(names)}")
        return {names[k]: v for k, v in m.items()}

    def intent(self, request: bytes) -> int:
        self._last_outside = None
        req = self._request(request, "intent")
        intents = self._intents
        if "insert" in req:
            return intents.insert(self._field(req, "insert", str, "insert"), **self._fields(req))
        if "update" in req:
            record_id = self._field(req, "update", int, "update")
            record = self._records.get(record_id)
            if record is None:
                record = self._wait(self._state.record(record_id))
            if record is None:
                raise SysError(404, f"{self._ext.qname}: no record {record_id} to update")
            intents.update(record, **self._fields(req))
        elif "view" in req:
            row = self._field(req, "row", dict, "view")
            intents.put_view(self._field(req, "view", str, "view"), **row)
        elif "result" in req:
            intents.result(**self._field(req, "result", dict, "result"))
        elif "respond" in req:
            answer = self._field(req, "respond", dict, "respond")
            status = answer.get("status")
            if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
                raise HostCallError(f"{self._ext.qname}: respond needs a status from 400 to 599, got {status!r}")
            intents.respond(status, str(answer.get("message", "")))
        elif "log" in req:
            level = _LEVELS.get(str(req.get("level", "info")), logging.INFO)
            intents.log(str(req["log"]), level)
        elif "send_mail" in req:
            intents.send_mail(**self._mail(req))
        else:
            raise HostCallError(
                f"{self._ext.qname}: unknown intent {sorted(req)}: insert, update, view, result, respond, log"
                " or send_mail"
            )
        return 0

    def _fields(self, req: dict[str, Any]) -> dict[str, Any]:
        fields = req.get("fields", {})
        if not isinstance(fields, dict):
            raise HostCallError(f"{self._ext.qname}: 'fields' must be an object")
        return fields
