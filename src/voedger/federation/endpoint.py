"""The receiving end of routing across clusters, on every router of every cluster:

- ``POST /_federation/bus``: a request another cluster's router forwards; routed on inside this
  cluster (to this process's partition, or the process that owns it), never to a third cluster:
  a WSID of another cluster answers 421;
- ``POST /_federation/directory`` (main cluster only): the federation directory, for workers;
- ``POST /_federation/stream``: a notification request (API v2 ``notifications``, API v1
  ``/n10n/*``) another cluster's router relays, served as if its client had called this router
  (``voedger.router.stream_relay``), the answer streamed back.

Only routers that present the federation secret are served (compared in constant time, never
logged): without it 401, a wrong one 403, bytes that are not a ``BusRequest`` 400, all before
anything runs. Anything the owner answers, errors included, comes back as 200 with the owner's
``BusResponse``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from voedger.auth.keys import KeyRing
from voedger.federation.directory import Directory
from voedger.router.app import Router
from voedger.router.peer_guard import JSON_HEADERS, PeerGuard, Reply, bus_request, refuse
from voedger.router.stream_relay import FEDERATED_SCOPE, FORWARDED_METHOD_HEADER, FORWARDED_TARGET_HEADER
from voedger.router.wire import BUS_CONTENT_TYPE, FEDERATION_SECRET_HEADER, BusRequest, error_reply
from voedger.structs import wsid as ws
from voedger.syserror import SysError

__all__ = ["FederationEndpoint"]

log = logging.getLogger("voedger.federation")

_BUS_HEADERS: Final = [(b"content-type", BUS_CONTENT_TYPE.encode())]
_STREAMED: Final = re.compile(
    r"^(?:/n10n/(?:channel|subscribe|unsubscribe)|/api/v2/apps/[^/]+/[^/]+/notifications(?:/[^?#]*)?)$"
)
"""What may be relayed here: the notification endpoints."""
_STREAM_METHODS: Final = frozenset({"GET", "POST", "PUT", "DELETE"})
_DROPPED: Final = frozenset(
    {FEDERATION_SECRET_HEADER.lower().encode(), FORWARDED_METHOD_HEADER.lower().encode(),
     FORWARDED_TARGET_HEADER.lower().encode()}
)  # fmt: skip


class FederationEndpoint:
    def __init__(
        self,
        router: Router,
        cluster_id: int,
        secret: bytes | str,
        directory: Callable[[], Directory] | None = None,
        publish: Callable[[int, list[dict[str, Any]]], Awaitable[Directory]] | None = None,
    ) -> None:
        self.router = router
        self.cluster_id = cluster_id
        self.directory = directory
        """The directory to answer (the main cluster); None on a worker."""
        self.publish = publish
        """Lists a worker's keys in the directory (the main cluster); the new directory."""
        self._guard = PeerGuard(
            FEDERATION_SECRET_HEADER, secret, "a request from another cluster", "federation secret", log
        )

    def __repr__(self) -> str:
        return f"FederationEndpoint(cluster {self.cluster_id}, <secret>)"

    async def bus(self, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Reply:
        refused = self._guard.refusal(headers)
        if refused is not None:
            return refused
        request = bus_request(body)
        if not isinstance(request, BusRequest):
            return request
        cluster = ws.cluster_id(request.wsid)
        if cluster != self.cluster_id:
            # The sender's directory is wrong or stale; one hop between clusters at most.
            err = SysError(
                421, f"workspace {request.wsid} belongs to cluster {cluster}, not to this one ({self.cluster_id})"
            )
            return 200, _BUS_HEADERS, error_reply(err, request.v2).to_bytes()
        try:
            app = self.router.vvm.app(request.app)
            # This cluster's own partitioning: another cluster's router computed the sender's.
            request = dataclasses.replace(request, partition=ws.partition_of(request.wsid, app.runtime.num_partitions))
            transport = self.router.routes.transport_for(request.app, request.wsid, request.partition)
            # The read slot was taken by the router the client called.
            reply = await self.router.send(request, transport, limit_reads=False)
        except SysError as err:
            reply = error_reply(err, request.v2)
        return 200, _BUS_HEADERS, reply.to_bytes()

    async def stream(
        self,
        app: ASGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Serve a relayed notification request with ``app`` (this router's own routes), as the
        client's request it carries, marked as relayed (see ``FEDERATED_SCOPE``)."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        reply = self._guard.refusal(headers)
        method = next((v for k, v in headers if k == FORWARDED_METHOD_HEADER.lower().encode()), b"").decode()
        target = next((v for k, v in headers if k == FORWARDED_TARGET_HEADER.lower().encode()), b"").decode()
        url = urlsplit(target)
        if reply is None and (method not in _STREAM_METHODS or not _STREAMED.match(url.path)):
            reply = refuse(SysError(400, f"not a notification request: {method} {url.path}"))
        if reply is not None:
            status, reply_headers, body = reply
            length = (b"content-length", b"%d" % len(body))
            await send({"type": "http.response.start", "status": status, "headers": [*reply_headers, length]})
            await send({"type": "http.response.body", "body": body})
            return
        relayed = dict(scope)
        relayed.update(
            method=method,
            path=unquote(url.path),
            raw_path=url.path.encode(),
            query_string=url.query.encode(),
            headers=[(k, v) for k, v in headers if k not in _DROPPED],
        )
        relayed[FEDERATED_SCOPE] = self.cluster_id
        await app(relayed, receive, send)

    async def directory_of(self, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Reply:
        refused = self._guard.refusal(headers)
        if refused is not None:
            return refused
        if self.directory is None:
            return refuse(SysError(421, f"cluster {self.cluster_id} is not the main cluster: it keeps no directory"))
        if not body.strip():
            return 200, JSON_HEADERS, self.directory().to_bytes()
        # A worker publishes its public keys.
        try:
            cluster, keys = _published_keys(body)
            if cluster == self.cluster_id or not self.directory().knows(cluster):
                raise ValueError(f"cluster {cluster} is not a worker of this federation")
            KeyRing(self.cluster_id).update_cluster(cluster, keys)  # validates: scope, cluster, shape
        except ValueError as exc:
            return refuse(SysError(400, f"keys not published: {exc}"))
        assert self.publish is not None
        directory = await self.publish(cluster, keys)
        log.info("cluster %d published its keys: %s", cluster, ", ".join(str(k.get("kid")) for k in keys))
        return 200, JSON_HEADERS, directory.to_bytes()

    async def refresh(self, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Reply:
        """A worker asks for a fresh principal token: checked here as any token is (signature,
        application, expiry), and issued again with the same payload and TTL."""
        refused = self._guard.refusal(headers)
        if refused is not None:
            return refused
        tokens = self.router.vvm.tokens
        if self.directory is None or tokens is None:
            return refuse(SysError(421, f"cluster {self.cluster_id} is not the main cluster: it issues no tokens"))
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("app"), str) or not isinstance(data.get("token"), str):
            return refuse(SysError(400, 'the body must be {"app": ..., "token": ...}'))
        try:
            fresh = tokens.refresh(data["app"], data["token"])
        except (SysError, ValueError) as exc:
            err = exc if isinstance(exc, SysError) else SysError(400, str(exc))
            return err.status, JSON_HEADERS, err.to_v2()
        return 200, JSON_HEADERS, orjson.dumps({"token": fresh})


def _published_keys(body: bytes) -> tuple[int, list[dict[str, Any]]]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(data, dict) or set(data) != {"cluster", "keys"}:
        raise ValueError("the body must be an object of cluster and keys")
    cluster, keys = data["cluster"], data["keys"]
    if isinstance(cluster, bool) or not isinstance(cluster, int):
        raise ValueError("cluster must be an integer")
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise ValueError("keys must be a list of JWK objects")
    return cluster, keys
