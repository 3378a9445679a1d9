"""Relaying a notification stream of another cluster's workspace through this router.

The SSE stream of a workspace lives where its updates are: in the workspace's cluster (its
processes send each other every update, see ``voedger.n10n.relay``). A router asked for a stream
of another cluster's workspace (API v2 ``notifications``, API v1 ``/n10n/channel``) forwards the
client's request, as it came (method, path, URL parameters, body, ``Authorization`` header or
cookie), to a router of that cluster (its ``internal_url``) at ``POST /_federation/stream`` with
the federation secret; that router serves it as if the client had called it, with the same
checks (token, SELECT on the view at the workspace's owner), and never forwards it again: a
workspace of a third cluster answers 421. The answer comes back unchanged: its status, its error
body, or the events, chunk by chunk as they arrive (nothing buffered). When the client goes
away, the upstream connection is closed, which ends the channel there.

A forwarded channel's later requests (subscribe, unsubscribe) go to the same cluster: the
router remembers the channel IDs of the streams it relays (the first event names the channel).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Final, Protocol

import httpx
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from voedger.router.transport import TransportUnavailable
from voedger.router.wire import FEDERATION_SECRET_HEADER, FEDERATION_STREAM_PATH, secret_text

__all__ = [
    "FEDERATED_SCOPE",
    "FORWARDED_METHOD_HEADER",
    "FORWARDED_TARGET_HEADER",
    "RelayedStream",
    "StreamRelays",
    "StreamUpstream",
]

FORWARDED_METHOD_HEADER: Final = "X-Voedger-Forwarded-Method"
FORWARDED_TARGET_HEADER: Final = "X-Voedger-Forwarded-Target"
"""The client's request line, path and URL parameters, as the forwarding router received it."""
FEDERATED_SCOPE: Final = "voedger.federated_from"
"""Set in the ASGI scope of a request another cluster forwarded (the federation secret checked):
such a request is served here or refused, never forwarded again."""
_PASSED: Final = frozenset({b"authorization", b"cookie", b"content-type"})
"""The client's headers the forwarded request carries."""
_RETURNED: Final = frozenset({"content-type", "cache-control", "x-content-type-options", "retry-after"})
"""The upstream answer's headers the client gets (the CORS headers are this router's own)."""
TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0, read=None)
"""A stream may be quiet for long (a heartbeat every 30 s); connecting and sending may not."""


class StreamUpstream:
    """The routers of another cluster, for relayed streams: ``open`` sends the client's request."""

    def __init__(self, cluster: int, base_url: str, secret: bytes | str, client: httpx.AsyncClient | None) -> None:
        self.cluster = cluster
        self.url = base_url.rstrip("/") + FEDERATION_STREAM_PATH
        self.secret = secret
        self.client = client or httpx.AsyncClient(timeout=TIMEOUT)

    def __repr__(self) -> str:
        return f"StreamUpstream(cluster {self.cluster}, {self.url!r})"

    async def open(
        self, method: str, target: str, headers: Iterable[tuple[bytes, bytes]], body: bytes
    ) -> httpx.Response:
        """The upstream answer, its body not read yet (the caller closes it); TransportUnavailable
        when the cluster cannot be reached."""
        sent = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k.lower() in _PASSED}
        sent[FEDERATION_SECRET_HEADER] = secret_text(self.secret)
        sent[FORWARDED_METHOD_HEADER] = method
        sent[FORWARDED_TARGET_HEADER] = target
        request = self.client.build_request("POST", self.url, headers=sent, content=body)
        try:
            return await self.client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransportUnavailable(f"cluster {self.cluster} cannot be reached: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        await self.client.aclose()


class StreamRelays(Protocol):
    """Which cluster's routers serve the streams of a workspace (the federation's routes)."""

    def upstream_for(self, wsid: int) -> StreamUpstream | None:
        """The upstream of a workspace of another cluster; None for one of this cluster.
        SysError 400 for a cluster the federation does not know."""
        ...


def returned_headers(upstream: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in upstream.headers.items() if k.lower() in _RETURNED}


class RelayedStream(Response):
    """An upstream's streamed answer, chunk by chunk, until it ends or the client goes away; the
    upstream is closed however it ends. ``on_channel`` is told the channel ID the first event
    names; ``on_end`` is called at the end."""

    def __init__(
        self,
        upstream: httpx.Response,
        on_channel: Callable[[str], None] | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.on_channel = on_channel
        self.on_end = on_end
        self.status_code = upstream.status_code
        self.background = None
        self.init_headers(returned_headers(upstream))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = asyncio.ensure_future(self._relay(send))
        listener = asyncio.ensure_future(self._listen(receive))
        try:
            await asyncio.wait((relay, listener), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (relay, listener):
                task.cancel()
            for task in (relay, listener):
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError, OSError):
                    await task
            await self.upstream.aclose()
            if self.on_end is not None:
                self.on_end()

    async def _relay(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        head = b""
        async for chunk in self.upstream.aiter_raw():
            if self.on_channel is not None:
                head += chunk
                channel = _channel_id(head)
                if channel is not None or len(head) > 4096:
                    if channel:
                        self.on_channel(channel)
                    self.on_channel, head = None, b""
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _listen(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass


def _channel_id(head: bytes) -> str | None:
    """The channel the first event names once it is whole (``""`` if it names none), else None."""
    if b"\n\n" not in head:
        return None
    block = head.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
    return fields.get("data", "") if fields.get("event") == "channelId" else ""
