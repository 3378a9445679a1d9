"""The receiving end of ``HttpTransport``: ``POST /_cluster/bus`` on every server of a cluster.

Only processes that know the cluster secret may forward requests here, since a forwarded request
is served as if this process's own edge had checked it. The secret is compared in constant time
and never logged; a request without it answers 401, with a wrong one 403, and bytes that are not
a BusRequest 400, all in Voedger's error shape and before anything is handled. Anything else is
answered 200 with the owner's BusResponse as the body, whatever its own status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Final

from voedger.n10n import Notifications, RelayError, UnknownSender
from voedger.router.owner import Owner
from voedger.router.peer_guard import PeerGuard, Reply, bus_request, refuse
from voedger.router.wire import BUS_CONTENT_TYPE, SECRET_HEADER, BusRequest
from voedger.syserror import SysError

log = logging.getLogger("voedger.router")

_BUS_HEADERS: Final = [(b"content-type", BUS_CONTENT_TYPE.encode())]


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
        self._guard = PeerGuard(SECRET_HEADER, secret, "a forwarded request", "cluster secret", log)

    def __repr__(self) -> str:
        return "BusEndpoint(<secret>)"

    def wake(self, headers: Iterable[tuple[bytes, bytes]]) -> Reply:
        """``POST /_cluster/wake``: 204 once the hint is taken."""
        refused = self._guard.refusal(headers)
        if refused is not None:
            return refused
        if self.on_wake is not None:
            self.on_wake()
        return 204, [], b""

    def n10n(self, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Reply:
        """``POST /_cluster/n10n``: views changed in another process; 204 once handed to the
        local broker, 400 for a body that is not a batch."""
        return self._to_notifications(headers, body, "notifications", lambda n: n.take(body))

    def n10n_watch(self, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Reply:
        """``POST /_cluster/n10n/watch``: the keys another process's subscribers watch; 204 once
        taken, 409 for a change from a process whose whole set is not held here (it sends it
        then), 400 for a body that is not such a message."""
        return self._to_notifications(headers, body, "watched keys", lambda n: n.take_interest(body))

    def _to_notifications(
        self, headers: Iterable[tuple[bytes, bytes]], body: bytes, what: str, take: Callable[[Notifications], object]
    ) -> Reply:
        refused = self._guard.refusal(headers)
        if refused is not None:
            return refused
        if self.notifications is None:
            return refuse(SysError(404, "notifications are not served here"))
        try:
            take(self.notifications)
        except UnknownSender as exc:
            return refuse(SysError(409, str(exc)))
        except RelayError as exc:
            return refuse(SysError(400, f"malformed {what}: {exc}"))
        return 204, [], b""

    async def handle(self, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Reply:
        """``headers`` as ASGI gives them (lower-case names); the HTTP status, headers and body."""
        refused = self._guard.refusal(headers)
        if refused is not None:
            return refused
        request = bus_request(body)
        if not isinstance(request, BusRequest):
            return request
        reply = await self.owner.handle(request)
        return 200, _BUS_HEADERS, reply.to_bytes()
