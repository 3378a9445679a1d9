"""The receiving end of ``HttpTransport``: ``POST /_cluster/bus`` on every server of a cluster.

Only processes that know the cluster secret may forward requests here, since a forwarded request
is served as if this process's own edge had checked it. The secret is compared in constant time
and never logged; a request without it answers 401, with a wrong one 403, and bytes that are not
a BusRequest 400, all in Voedger's error shape and before anything is handled. Anything else is
answered 200 with the owner's BusResponse as the body, whatever its own status.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable
from typing import Final

from voedger.n10n import Notifications, RelayError
from voedger.router.owner import Owner
from voedger.router.wire import BUS_CONTENT_TYPE, MAX_HOPS, SECRET_HEADER, BusRequest, WireError, secret_text
from voedger.syserror import SysError

log = logging.getLogger("voedger.router")

Reply = tuple[int, list[tuple[bytes, bytes]], bytes]

_SECRET_HEADER: Final = SECRET_HEADER.lower().encode("latin-1")
_BUS_HEADERS: Final = [(b"content-type", BUS_CONTENT_TYPE.encode())]
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]


class BusEndpoint:
    """Serves forwarded requests with ``owner``, for callers that present ``secret``."""

    def __init__(
        self,
        owner: Owner,
        secret: bytes | str,
        on_wake: Callable[[], None] | None = None,
        notifications: Notifications | None = None,
    ) -> None:
        self.owner = owner
        self.notifications = notifications
        """Takes the batches of notifications other processes send (``POST /_cluster/n10n``)."""
        self.on_wake = on_wake
        """What ``POST /_cluster/wake`` does (look at the leases now)."""
        self._secret = secret_text(secret).encode("latin-1")
        if not self._secret:
            raise ValueError("the cluster secret is empty")

    def __repr__(self) -> str:
        return "BusEndpoint(<secret>)"

    def _check(self, headers: Iterable[tuple[bytes, bytes]]) -> Reply | None:
        """The refusal of a caller without the right secret, or None."""
        given = next((v for k, v in headers if k == _SECRET_HEADER), None)
        if given is None:
            return _refuse(SysError(401, f"a forwarded request needs the {SECRET_HEADER} header"))
        if not hmac.compare_digest(given, self._secret):
            log.warning("refused a forwarded request with a wrong cluster secret")
            return _refuse(SysError(403, "the cluster secret is wrong"))
        return None

    def wake(self, headers: Iterable[tuple[bytes, bytes]]) -> Reply:
        """``POST /_cluster/wake``: 204 once the hint is taken."""
        refused = self._check(headers)
        if refused is not None:
            return refused
        if self.on_wake is not None:
            self.on_wake()
        return 204, [], b""

    def n10n(self, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Reply:
        """``POST /_cluster/n10n``: views changed in another process; 204 once handed to the
        local broker, 400 for a body that is not a batch."""
        refused = self._check(headers)
        if refused is not None:
            return refused
        if self.notifications is None:
            return _refuse(SysError(404, "notifications are not served here"))
        try:
            self.notifications.take(body)
        except RelayError as exc:
            return _refuse(SysError(400, f"malformed notifications: {exc}"))
        return 204, [], b""

    async def handle(self, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Reply:
        """``headers`` as ASGI gives them (lower-case names); the HTTP status, headers and body."""
        refused = self._check(headers)
        if refused is not None:
            return refused
        try:
            request = BusRequest.from_bytes(body)
        except WireError as exc:
            return _refuse(SysError(400, f"malformed bus request: {exc}"))
        if request.hops > MAX_HOPS:
            return _refuse(SysError(508, f"the request was forwarded {request.hops} times: a loop"))
        reply = await self.owner.handle(request)
        return 200, _BUS_HEADERS, reply.to_bytes()


def _refuse(err: SysError) -> Reply:
    return err.status, _JSON_HEADERS, err.to_v1()
