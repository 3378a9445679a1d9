"""How the router hands a request to its owner.

Every request is resolved to (cluster, application, partition) and sent through a
``Transport``. Today the only owner is this process (``LocalTransport``); a transport to
another process or another cluster speaks the same interface over HTTP, so the router does not
change when the federation does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from voedger.appdef import QName

Kind = Literal["command", "query"]


@dataclass
class BusRequest:
    app: str
    wsid: int
    partition: int
    kind: Kind
    resource: QName
    body: dict[str, Any]
    principal: object
    """The caller as authenticated: a validated token, None (anonymous), or a Principal."""
    api_v2: bool = False
    ip: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    """API v2 details: the path kind (docs, cdocs, views, queries), the record ID, URL params."""


@dataclass
class BusResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class Transport(Protocol):
    async def send(self, request: BusRequest) -> BusResponse: ...
