"""The transport to an owner in another process or cluster: the wire contract over HTTP.

``send`` POSTs ``request.to_bytes()`` to the owner's ``/_cluster/bus`` with the cluster secret
and returns the BusResponse the owner encoded, so the client gets the bytes a local owner would
have given. What can go wrong in between is told apart by whether the request may have reached
the owner:

- not sent (connection refused, connect or pool timeout): ``TransportUnavailable``; nothing was
  done, so the caller may send it elsewhere or later;
- sent, answer lost (reset, timeout, a broken or garbled reply): the owner may have done it. A
  command is never repeated here: the client gets 503 with ``Retry-After`` and a message that
  says the outcome is unknown; a read gets the same 503 (it is safe to retry, by the client);
- refused by the owner's endpoint (a wrong secret, a request it cannot decode): nothing was done,
  but it is a misconfiguration, not a passing failure: logged, 500 to the client.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Final, Protocol

import httpx

from voedger.router.bus_client import BusClient, Lost, NotSent
from voedger.router.transport import TransportUnavailable
from voedger.router.wire import (
    BUS_CONTENT_TYPE,
    BUS_PATH,
    N10N_PATH,
    N10N_WATCH_PATH,
    SECRET_HEADER,
    WAKE_PATH,
    BusRequest,
    BusResponse,
    WireError,
    error_reply,
    secret_text,
)
from voedger.syserror import SysError

log = logging.getLogger("voedger.router")

DEFAULT_TIMEOUT: Final = httpx.Timeout(60.0, connect=5.0)
WAKE_TIMEOUT: Final = 1.0
"""A wake-up is a hint: the peer looks at the leases at its next tick anyway."""
"""A command may wait for its group's durable write; a connection should come at once."""
NOTIFY_TIMEOUT: Final = 5.0
"""Notifications are hints: a peer that takes longer loses the batch."""
RETRY_AFTER: Final = {"Retry-After": "1"}
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Poster(Protocol):
    """What sends the transport's POSTs: :class:`BusClient`, or :class:`HttpxPoster`."""

    async def post(
        self, path: str, headers: Mapping[str, str], body: bytes, timeout: float | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body); raises ``NotSent`` or ``Lost``."""
        ...

    async def aclose(self) -> None: ...


class HttpxPoster:
    """POSTs through an httpx client (``httpx.ASGITransport`` for a whole federation in one test
    process, ``httpx.MockTransport``), failing as :class:`BusClient` does."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")

    async def post(
        self, path: str, headers: Mapping[str, str], body: bytes, timeout: float | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        url = self.base_url + path
        try:
            if timeout is None:
                reply = await self.client.post(url, content=body, headers=dict(headers))
            else:
                reply = await self.client.post(url, content=body, headers=dict(headers), timeout=timeout)
        except _NOT_SENT as exc:
            raise NotSent(f"{type(exc).__name__}: {exc}") from None
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: the client was closed
            raise Lost(f"{type(exc).__name__}: {exc}") from None
        return reply.status_code, dict(reply.headers), reply.content

    async def aclose(self) -> None:
        await self.client.aclose()


class HttpTransport:
    """Forwards requests to the server at ``base_url`` (``http://host:port``): to its ``path``
    with the secret in ``secret_header`` (a process of this cluster: the defaults; another
    cluster: the federation's), over a pool of keep-alive connections (``BusClient``). An httpx
    ``client`` may be given instead (a whole federation in one test process, through
    ``httpx.ASGITransport``). The transport closes what it uses in ``aclose``."""

    def __init__(
        self,
        base_url: str,
        secret: bytes | str,
        client: httpx.AsyncClient | None = None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        path: str = BUS_PATH,
        secret_header: str = SECRET_HEADER,
    ) -> None:
        self.url = base_url.rstrip("/") + path
        self.path = path
        self._headers = {secret_header: secret_text(secret), "content-type": BUS_CONTENT_TYPE}
        self.bus: Poster = (
            HttpxPoster(client, base_url)
            if client is not None
            else BusClient(base_url, connect_timeout=timeout.connect or 5.0, timeout=timeout.read or 60.0)
        )

    def __repr__(self) -> str:
        return f"HttpTransport({self.url!r})"

    async def send(self, request: BusRequest) -> BusResponse:
        data = dataclasses.replace(request, hops=request.hops + 1).to_bytes()
        try:
            status, _, content = await self.bus.post(self.path, self._headers, data)
        except NotSent as exc:
            raise TransportUnavailable(f"{self.url} is unreachable: {exc}") from None
        except Lost as exc:
            return self._lost(request, str(exc))
        if status != 200:
            if 400 <= status < 500:
                text = content[:200].decode("utf-8", "replace").strip()
                log.error("%s refused a forwarded request: %d %s", self.url, status, text)
                return error_reply(SysError(500, "internal error"), request.v2)
            return self._lost(request, f"HTTP {status}")
        try:
            return BusResponse.from_bytes(content)
        except WireError as exc:
            return self._lost(request, str(exc))

    def _lost(self, request: BusRequest, reason: str) -> BusResponse:
        """The request went out and no answer came back: its outcome is unknown."""
        log.warning(
            "no answer from %s for %s %s/%d %s: %s",
            self.url,
            request.op.value,
            request.app,
            request.wsid,
            request.resource,
            reason,
        )
        if request.is_read:
            message = f"the owner of workspace {request.wsid} did not answer; retry"
        else:
            message = (
                f"the owner of workspace {request.wsid} did not answer: the command may or may not have been "
                "done; check before sending it again"
            )
        return error_reply(SysError(503, message, headers=RETRY_AFTER), request.v2)

    async def wake(self) -> bool:
        """Ask the peer to look at the leases now; False when it did not take the hint."""
        try:
            status, _, _ = await self.bus.post(WAKE_PATH, self._headers, b"", WAKE_TIMEOUT)
        except (NotSent, Lost):
            return False
        return status == 204

    async def notify(self, batch: bytes) -> bool:
        """Send the peer a batch of notifications; False when it did not take it."""
        try:
            status, _, _ = await self.bus.post(N10N_PATH, self._headers, batch, NOTIFY_TIMEOUT)
        except (NotSent, Lost):
            return False
        return status == 204

    async def tell_watched(self, message: bytes) -> bool | None:
        """Tell the peer the keys watched here: True when taken, None when it asks for the whole
        set, False when it did not take the message."""
        try:
            status, _, _ = await self.bus.post(N10N_WATCH_PATH, self._headers, message, NOTIFY_TIMEOUT)
        except (NotSent, Lost):
            return False
        return True if status == 204 else None if status == 409 else False

    async def aclose(self) -> None:
        await self.bus.aclose()
