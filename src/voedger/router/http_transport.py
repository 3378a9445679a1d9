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
from typing import Final

import httpx

from voedger.router.bus_client import BusClient, Lost, NotSent
from voedger.router.transport import TransportUnavailable
from voedger.router.wire import (
    BUS_CONTENT_TYPE,
    BUS_PATH,
    N10N_PATH,
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
        self.wake_url = base_url.rstrip("/") + WAKE_PATH
        self.n10n_url = base_url.rstrip("/") + N10N_PATH
        self._headers = {secret_header: secret_text(secret), "content-type": BUS_CONTENT_TYPE}
        self.client = client
        self.bus = (
            None
            if client is not None
            else BusClient(base_url, connect_timeout=timeout.connect or 5.0, timeout=timeout.read or 60.0)
        )

    def __repr__(self) -> str:
        return f"HttpTransport({self.url!r})"

    async def _post(self, path: str, url: str, data: bytes, timeout: float | None = None) -> tuple[int, bytes]:
        """(status, body); raises NotSent or Lost."""
        if self.bus is not None:
            status, _, content = await self.bus.post(path, self._headers, data, timeout)
            return status, content
        assert self.client is not None
        try:
            if timeout is None:
                reply = await self.client.post(url, content=data, headers=self._headers)
            else:
                reply = await self.client.post(url, content=data, headers=self._headers, timeout=timeout)
        except _NOT_SENT as exc:
            raise NotSent(f"{type(exc).__name__}: {exc}") from None
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: the client was closed
            raise Lost(f"{type(exc).__name__}: {exc}") from None
        return reply.status_code, reply.content

    async def send(self, request: BusRequest) -> BusResponse:
        data = dataclasses.replace(request, hops=request.hops + 1).to_bytes()
        try:
            status, content = await self._post(self.path, self.url, data)
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
            status, _ = await self._post(WAKE_PATH, self.wake_url, b"", WAKE_TIMEOUT)
        except (NotSent, Lost):
            return False
        return status == 204

    async def notify(self, batch: bytes) -> bool:
        """Send the peer a batch of notifications; False when it did not take it."""
        try:
            status, _ = await self._post(N10N_PATH, self.n10n_url, batch, NOTIFY_TIMEOUT)
        except (NotSent, Lost):
            return False
        return status == 204

    async def aclose(self) -> None:
        if self.bus is not None:
            await self.bus.aclose()
        if self.client is not None:
            await self.client.aclose()
