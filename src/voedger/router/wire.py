"""The wire contract between the edge and the owner of a partition.

A request reaches its owner as a :class:`BusRequest` and comes back as a :class:`BusResponse`,
whether the owner is this process, another process of the cluster or another cluster. Both
hold plain values only (text, integers, bytes): the caller's credential as the client sent it,
the body as the client sent it, so nothing the edge computed (a principal, a parsed body) can
make an in-process answer differ from a forwarded one.

On the wire each is one frame: a JSON head (orjson, never containing a raw newline), a newline,
then the body bytes as they are, so a body is neither escaped nor base64-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import orjson

from voedger.syserror import SysError

WIRE_VERSION: Final = 1
BUS_PATH: Final = "/_cluster/bus"
"""Where a server takes requests forwarded to it over HTTP: outside Voedger's ``/api`` space, so a
proxy that publishes ``/api`` does not publish it."""
WAKE_PATH: Final = "/_cluster/wake"
"""Where a server is told to look at the partitions' leases now (another process let one go);
an empty POST with the cluster secret, answered 204."""
FEDERATION_BUS_PATH: Final = "/_federation/bus"
"""Where a cluster's routers take requests forwarded from another cluster's router (the
federation secret); each is routed on inside this cluster, never to a third one."""
FEDERATION_DIRECTORY_PATH: Final = "/_federation/directory"
"""Where the main cluster's routers answer the federation directory (a POST with the federation
secret; its body, if any, is a worker's key set to publish)."""
FEDERATION_REFRESH_PATH: Final = "/_federation/refresh"
"""Where the main cluster's routers refresh a principal token for a worker (which may not issue
one): a POST with the federation secret and ``{"app", "token"}``."""
FEDERATION_STREAM_PATH: Final = "/_federation/stream"
"""Where a router serves a stream (notifications) of its cluster's workspace that a router of
another cluster relays: a POST with the federation secret (``voedger.router.stream_relay``)."""
FEDERATION_SECRET_HEADER: Final = "X-Voedger-Federation-Secret"
N10N_PATH: Final = "/_cluster/n10n"
"""Where a process sends the other processes of its cluster the views changed in it (a batch
of notifications, ``voedger.n10n.relay``), with the cluster secret."""
N10N_WATCH_PATH: Final = "/_cluster/n10n/watch"
"""Where a process tells the other processes of its cluster the keys its subscribers watch
(``voedger.n10n.relay``), with the cluster secret: 204, or 409 when the receiver wants the
whole set."""
SECRET_HEADER: Final = "X-Voedger-Cluster-Secret"
"""The header that carries the cluster secret (hex) on a forwarded request."""
BUS_CONTENT_TYPE: Final = "application/x-voedger-bus"
MAX_HOPS: Final = 4
"""Forwards a request may have gone through; more is a loop (508)."""
JSON_HEADERS: Final[dict[str, str]] = {"content-type": "application/json"}
"""The headers of almost every answer. Shared: a BusResponse's headers are never changed in place."""


class WireError(ValueError):
    """Bytes that are not a frame of this contract: the message says what is wrong."""


class Op(StrEnum):
    """What a request asks of the owner: the API and the URL's kind of resource."""

    V1_COMMAND = "v1.command"
    """``POST /api/{owner}/{app}/{wsid}/c.{pkg}.{Command}``"""
    V1_QUERY = "v1.query"
    """``POST /api/{owner}/{app}/{wsid}/q.{pkg}.{Query}``"""
    V2_COMMANDS = "v2.commands"
    """``POST .../workspaces/{wsid}/commands/{pkg}.{Command}``"""
    V2_QUERIES = "v2.queries"
    """``GET .../queries/{pkg}.{Query}``"""
    V2_VIEWS = "v2.views"
    """``GET .../views/{pkg}.{View}``"""
    V2_DOCS = "v2.docs"
    """``GET|POST .../docs/{pkg}.{Table}``, ``GET|PATCH|DELETE .../docs/{pkg}.{Table}/{id}``"""
    V2_CDOCS = "v2.cdocs"
    """``GET .../cdocs/{pkg}.{Table}``"""
    V2_SCHEMAS = "v2.schemas"
    """``GET /api/v2/apps/{owner}/{app}/schemas``: sent to the first application workspace."""
    V2_SCHEMAS_ROLES = "v2.schemas.roles"
    """``GET .../schemas/{pkg}.{Workspace}/roles``: ``resource`` names the workspace."""
    V2_SCHEMAS_ROLE = "v2.schemas.role"
    """``GET .../schemas/{pkg}.{Workspace}/roles/{pkg}.{Role}``: ``resource`` names the workspace,
    ``params["role"]`` the role."""
    N10N_WATCH = "n10n.watch"
    """May the caller watch ``resource`` (a view) of the workspace: asked by the router of the
    process a client subscribes at (API v2 ``notifications``), answered 200 ``{}`` or the
    refusal (401, 403, the workspace's state)."""


_METHODS: Final[dict[Op, frozenset[str]]] = {
    Op.V1_COMMAND: frozenset({"POST", "PATCH"}),
    Op.V1_QUERY: frozenset({"POST", "PATCH"}),
    Op.V2_COMMANDS: frozenset({"POST"}),
    Op.V2_QUERIES: frozenset({"GET"}),
    Op.V2_VIEWS: frozenset({"GET"}),
    Op.V2_DOCS: frozenset({"GET", "POST", "PATCH", "DELETE"}),
    Op.V2_CDOCS: frozenset({"GET"}),
    Op.V2_SCHEMAS: frozenset({"GET"}),
    Op.V2_SCHEMAS_ROLES: frozenset({"GET"}),
    Op.V2_SCHEMAS_ROLE: frozenset({"GET"}),
    Op.N10N_WATCH: frozenset({"GET"}),
}
SCHEMA_OPS: Final = frozenset({Op.V2_SCHEMAS, Op.V2_SCHEMAS_ROLES, Op.V2_SCHEMAS_ROLE})
_OPS: Final[dict[str, Op]] = {op.value: op for op in Op}
_MAX_INT: Final = (1 << 63) - 1

_REQUEST_FIELDS: Final = (
    "v",
    "op",
    "method",
    "app",
    "wsid",
    "partition",
    "resource",
    "id",
    "authorization",
    "cookie",
    "params",
    "ip",
    "hops",
)
_RESPONSE_FIELDS: Final = ("v", "status", "headers")


@dataclass(frozen=True, slots=True)
class BusRequest:
    """One request for the owner of a workspace's partition."""

    op: Op
    method: str
    """The HTTP method of the client's request (API v1 takes ``PATCH`` as ``POST``)."""
    app: str
    """``owner/name``"""
    wsid: int
    """The workspace, already an application workspace if the client named a pseudo WSID."""
    partition: int
    resource: str
    """The QName the URL names (``pkg.Name``): command, query, view or table."""
    record_id: int = 0
    """API v2 ``docs/{table}/{id}``; 0 when the URL names no record (a singleton, a new record)."""
    authorization: str = ""
    """The ``Authorization`` header exactly as the client sent it; "" when there was none."""
    cookie: str = ""
    """The ``Authorization`` cookie's value exactly as sent, when the header gave no credential."""
    body: bytes = b""
    """The request body exactly as sent."""
    params: dict[str, str] = field(default_factory=dict)
    """API v2 reads: the URL's query parameters, decoded."""
    ip: str = ""
    """The client's address, for rates per IP."""
    hops: int = 0
    """How many times the request was forwarded between processes or clusters (loops stop)."""

    @property
    def v2(self) -> bool:
        return self.op is not Op.V1_COMMAND and self.op is not Op.V1_QUERY

    @property
    def is_read(self) -> bool:
        """A read changes nothing: one whose answer was lost may be asked again."""
        return self.op is Op.V1_QUERY or self.method == "GET"

    def to_bytes(self) -> bytes:
        head = {
            "v": WIRE_VERSION,
            "op": self.op.value,
            "method": self.method,
            "app": self.app,
            "wsid": self.wsid,
            "partition": self.partition,
            "resource": self.resource,
            "id": self.record_id,
            "authorization": self.authorization,
            "cookie": self.cookie,
            "params": self.params,
            "ip": self.ip,
            "hops": self.hops,
        }
        return _frame(head, self.body)

    @classmethod
    def from_bytes(cls, data: bytes) -> BusRequest:
        """The request ``to_bytes`` wrote; raises WireError naming the first thing wrong."""
        head, body = _unframe(data, _REQUEST_FIELDS, "request")
        op = _OPS.get(head["op"]) if isinstance(head["op"], str) else None
        if op is None:
            raise WireError(f"request: unknown op {head['op']!r}")
        method = _text(head, "method")
        if method not in _METHODS[op]:
            raise WireError(f"request: method {method!r} is not one of {op.value}")
        params = head["params"]
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            raise WireError("request: params must be an object of strings")
        return cls(
            op,
            method,
            _text(head, "app"),
            _int(head, "wsid"),
            _int(head, "partition"),
            _text(head, "resource"),
            _int(head, "id"),
            _text(head, "authorization"),
            _text(head, "cookie"),
            body,
            params,
            _text(head, "ip"),
            _int(head, "hops"),
        )


@dataclass(frozen=True, slots=True)
class BusResponse:
    """The owner's answer, ready for the client: the edge sends it on as it is."""

    status: int
    headers: dict[str, str]
    """Lower-case names; ``content-type`` included."""
    body: bytes

    def to_bytes(self) -> bytes:
        return _frame({"v": WIRE_VERSION, "status": self.status, "headers": self.headers}, self.body)

    @classmethod
    def from_bytes(cls, data: bytes) -> BusResponse:
        head, body = _unframe(data, _RESPONSE_FIELDS, "response")
        status = _int(head, "status")
        if not 100 <= status <= 599:
            raise WireError(f"response: status {status} is not an HTTP status")
        headers = head["headers"]
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise WireError("response: headers must be an object of strings")
        return cls(status, headers, body)


def secret_text(secret: bytes | str) -> str:
    """The cluster secret as the header carries it: hex of its bytes (text is taken as it is)."""
    return secret if isinstance(secret, str) else secret.hex()


def json_reply(status: int, body: Any) -> BusResponse:
    """A JSON answer."""
    return BusResponse(status, JSON_HEADERS, orjson.dumps(body))


def error_reply(err: SysError, v2: bool) -> BusResponse:
    """Voedger's error body for ``err``, in API v2's shape or v1's, with the error's headers."""
    headers = JSON_HEADERS
    if err.headers:
        headers = {**JSON_HEADERS, **{k.lower(): v for k, v in err.headers.items()}}
    return BusResponse(err.status, headers, err.to_v2() if v2 else err.to_v1())


def error_of(reply: BusResponse) -> SysError:
    """The error an error reply carries (either API's shape), to raise it again at the edge; a body
    that is neither shape becomes an internal error."""
    try:
        body = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("sys.Error"), dict):
        e = body["sys.Error"]
        message, qname, data = e.get("Message"), e.get("QName", ""), e.get("Data", "")
    elif isinstance(body, dict):
        if isinstance(body.get("error"), dict):  # an array read's: {"results":[...],"error":{...}}
            body = body["error"]
        message, qname, data = body.get("message"), body.get("qname", ""), body.get("data", "")
    else:
        message = qname = data = None
    if not isinstance(message, str) or not isinstance(qname, str) or not isinstance(data, str):
        return SysError(500, "internal error")
    headers = {k: v for k, v in reply.headers.items() if k != "content-type"}
    return SysError(reply.status, message, qname=qname, data=data, headers=headers)


def _frame(head: dict[str, Any], body: bytes) -> bytes:
    try:
        return orjson.dumps(head) + b"\n" + body
    except TypeError as exc:  # orjson.JSONEncodeError: text that is not UTF-8 (a lone surrogate)
        raise WireError(f"cannot encode: {exc}") from None


def _unframe(data: bytes, names: tuple[str, ...], what: str) -> tuple[dict[str, Any], bytes]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError(f"{what}: bytes expected, not {type(data).__name__}")
    raw, newline, body = (data if isinstance(data, bytes) else bytes(data)).partition(b"\n")
    if not newline:
        raise WireError(f"{what}: no newline after the head")
    try:
        head = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"{what}: the head is not JSON: {exc}") from None
    if not isinstance(head, dict):
        raise WireError(f"{what}: the head is not a JSON object")
    if head.get("v") != WIRE_VERSION:
        raise WireError(f"{what}: wire version {head.get('v')!r}; this process speaks {WIRE_VERSION}")
    missing = [n for n in names if n not in head]
    if missing:
        raise WireError(f"{what}: missing {', '.join(missing)}")
    unknown = sorted(set(head) - set(names))
    if unknown:
        raise WireError(f"{what}: unknown field(s) {', '.join(unknown)}")
    return head, body


def _text(head: dict[str, Any], name: str) -> str:
    value = head[name]
    if not isinstance(value, str):
        raise WireError(f"{name} must be a string")
    return value


def _int(head: dict[str, Any], name: str) -> int:
    value = head[name]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_INT:
        raise WireError(f"{name} must be an integer in 0..2^63-1")
    return value
