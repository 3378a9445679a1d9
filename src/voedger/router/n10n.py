"""Notifications over HTTP: Voedger's API v1 ``/n10n/*`` and API v2 ``notifications``.

A client opens a channel, a server-sent-events stream whose first event names the channel::

    event: channelId
    data: 0b1b2c8e-...

and then gets one event per change of a view it subscribed to, named by the key and carrying the
WLog offset of the event that changed it::

    event: {"App":"owner/app","Projection":"pkg.View","WS":140737488355329}
    data: 7

API v2 (``POST /api/v2/apps/{owner}/{app}/notifications``, with a principal token and a body
``{"subscriptions":[{"entity":"pkg.View","wsid":N}],"expiresIn":seconds}``) checks with the owner
of each workspace that the caller may select from the view there, then opens the channel;
``PUT`` and ``DELETE`` ``.../notifications/{channel}/workspaces/{wsid}/subscriptions/{pkg.View}``
add (200) and drop (204) a subscription of an open channel. API v1 (``GET /n10n/channel``,
``/n10n/subscribe``, ``/n10n/unsubscribe`` with a ``payload`` URL parameter, and
``/n10n/update/{offset}``) takes the subject and keys as given, without a token, and answers its
errors as plain text, all as Voedger's router does. Statuses and texts follow Voedger's
``pkg/router/impl_n10n.go`` and ``pkg/processors/n10n``.

The stream lives in the process the client is connected to; the broker there gets every update
of its cluster (``voedger.n10n.relay``). It ends when the client goes away, the channel's lifetime
ends, or the process leaves the cluster; then the channel and its subscriptions are gone. A stream
of another cluster's workspaces is relayed to a router of that cluster, and so are the later
requests of its channel (``voedger.router.stream_relay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from voedger.appdef import QName, QNameError
from voedger.auth.headers import CredentialsKind, parse_authorization, parse_authorization_cookie
from voedger.n10n import DEFAULT_LIFETIME, Broker, BrokerClosed, Channel, ChannelNotFound, Key, N10nError, QuotaExceeded
from voedger.router.responses import bus_response
from voedger.router.stream_relay import FEDERATED_SCOPE, RelayedStream, StreamUpstream, returned_headers
from voedger.router.transport import TransportUnavailable
from voedger.router.wire import BusRequest, Op
from voedger.structs import wsid as ws
from voedger.syserror import SysError

if TYPE_CHECKING:
    from voedger.router.app import Router
    from voedger.router.transport import Transport

MAX_U64: Final = 2**64 - 1
_OFFSET: Final = re.compile(r"^[0-9]{1,10}$")
_V2_FIELDS: Final = frozenset({"subscriptions", "expiresIn"})
_SUB_FIELDS: Final = frozenset({"entity", "wsid"})
SSE_HEADERS: Final = {"Cache-Control": "no-cache", "Connection": "keep-alive"}


def _status(err: N10nError, v2: bool) -> int:
    if isinstance(err, QuotaExceeded):
        return 429
    if isinstance(err, BrokerClosed):
        return 503
    if isinstance(err, ChannelNotFound):
        return 404 if v2 else 400
    return 400  # pragma: no cover - every N10nError is one of the above


def _sys_error(err: N10nError, prefix: str = "") -> SysError:
    headers = {"Retry-After": "1"} if isinstance(err, BrokerClosed) else None
    return SysError(_status(err, v2=True), prefix + str(err), headers=headers)


def _go_error(message: str, status: int) -> Response:
    """What Go's ``http.Error`` answers."""
    return PlainTextResponse(
        message + "\n", status, headers={"X-Content-Type-Options": "nosniff"}, media_type="text/plain"
    )


class EventStream(Response):
    """A channel's server-sent events, until the channel ends or the client goes away; the
    channel is closed when the stream ends, whichever way."""

    media_type = "text/event-stream"

    def __init__(self, broker: Broker, channel: Channel, head: bytes) -> None:
        self.broker = broker
        self.channel = channel
        self.head = head
        self.status_code = 200
        self.background = None
        self.init_headers(SSE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        listener = asyncio.ensure_future(self._listen(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": self.head, "more_body": True})
            async for batch in self.broker.watch(self.channel):
                data = b"".join(b"event: %s\ndata: %d\n\n" % (k.to_json().encode(), offset) for k, offset in batch)
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            listener.cancel()
            self.broker.close(self.channel)
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.broker.close(self.channel)  # wakes the stream, which ends


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


def channel_id_event(channel: Channel) -> bytes:
    return b"event: channelId\ndata: %s\n\n" % channel.id.encode()


# --- parsing --------------------------------------------------------------------------------------


class PayloadError(ValueError):
    pass


def _field(obj: Mapping[str, Any], name: str) -> Any:
    """A field of a JSON object matched as Go's encoding/json matches it: any letter case."""
    if name in obj:
        return obj[name]
    lower = name.lower()
    for k, v in obj.items():
        if k.lower() == lower:
            return v
    return None


def parse_key(raw: Any) -> Key:
    """A v1 ``ProjectionKey``: ``{"App":"owner/app","Projection":"pkg.Name","WS":N}``."""
    if not isinstance(raw, dict):
        raise PayloadError("a ProjectionKey must be an object")
    app, projection, wsid = _field(raw, "App"), _field(raw, "Projection"), _field(raw, "WS")
    if not isinstance(app, str) or app.count("/") != 1 or not all(app.split("/")):
        raise PayloadError(f"ProjectionKey.App must be a string owner/name, not {app!r}")
    if not isinstance(projection, str):
        raise PayloadError(f"ProjectionKey.Projection must be a string pkg.Name, not {projection!r}")
    try:
        QName.parse(projection)
    except QNameError as exc:
        raise PayloadError(f"ProjectionKey.Projection: {exc}") from None
    if type(wsid) is not int or not 0 <= wsid <= MAX_U64:
        raise PayloadError(f"ProjectionKey.WS must be a number 0..{MAX_U64}, not {wsid!r}")
    return Key(app, projection, wsid)


def parse_v1_payload(request: Request, names: str) -> tuple[dict[str, Any], list[Key]]:
    """The ``payload`` URL parameter: the object and its keys. PayloadError names what is wrong."""
    raw = request.query_params.get("payload")
    if not raw:
        raise LookupError(f"query parameter with payload ({names}) is missing")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(str(exc)) from None
    if not isinstance(obj, dict):
        raise PayloadError("the payload must be a JSON object")
    keys = _field(obj, "ProjectionKey")
    if keys is None:
        keys = []
    if not isinstance(keys, list):
        raise PayloadError("ProjectionKey must be a list")
    return obj, [parse_key(k) for k in keys]


def parse_v2_body(body: bytes) -> tuple[list[tuple[QName, int, str]], float]:
    """``{"subscriptions":[{"entity","wsid"}],"expiresIn":N}``: (entity, WSID, WSID as given)
    per subscription, and the channel's lifetime in seconds. SysError 400 as Voedger words it."""

    def bad(reason: str) -> SysError:
        return SysError(400, f"failed to unmarshal request body: {reason}")

    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad(str(exc)) from None
    if not isinstance(obj, dict):
        raise bad("the body must be a JSON object")
    unknown = sorted(set(obj) - _V2_FIELDS)
    if unknown:
        raise bad(f'unknown field "{unknown[0]}"')
    subs = obj.get("subscriptions")
    expires = obj.get("expiresIn", 0)
    if subs is not None and not isinstance(subs, list):
        raise bad("cannot unmarshal subscriptions: expected a list")
    if type(expires) is not int:
        raise bad("cannot unmarshal expiresIn: expected an integer")
    if expires < 0:
        raise SysError(400, f"invalid expiresIn value {expires}")
    if not subs:
        raise SysError(400, "no subscriptions provided")
    out: list[tuple[QName, int, str]] = []
    for i, sub in enumerate(subs):
        if not isinstance(sub, dict):
            raise bad(f"cannot unmarshal subscriptions[{i}]: expected an object")
        unknown = sorted(set(sub) - _SUB_FIELDS)
        if unknown:
            raise bad(f'unknown field "{unknown[0]}"')
        entity, wsid = sub.get("entity"), sub.get("wsid")
        if entity is not None and not isinstance(entity, str):
            raise bad(f"cannot unmarshal subscriptions[{i}].entity: expected a string")
        if wsid is not None and (isinstance(wsid, bool) or not isinstance(wsid, int | float | str)):
            raise bad(f"cannot unmarshal subscriptions[{i}].wsid: expected a number")
        if not entity or wsid is None or wsid == "":
            raise SysError(400, f"subscriptions[{i}]: entity and/or wsid is not provided")
        text = str(wsid)
        if not isinstance(wsid, int):
            try:
                wsid = int(text)
            except ValueError:
                raise SysError(400, f"subscriptions[{i}]: failed to parse wsid {text}: not an integer") from None
        if not 0 < wsid <= MAX_U64:
            raise SysError(400, f"subscriptions[{i}]: failed to parse wsid {text}: number overflow: {text} to WSID")
        try:
            qname = QName.parse(entity)
        except QNameError as exc:
            raise SysError(400, f"subscriptions[{i}]: failed to parse entity {entity} as a QName: {exc}") from None
        out.append((qname, wsid, text))
    return out, float(expires) if expires else DEFAULT_LIFETIME


# --- the endpoints ----------------------------------------------------------------------------------


class N10nEndpoints:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.notifications = router.vvm.n10n
        self.broker = router.vvm.n10n.broker
        self.relayed: dict[str, StreamUpstream] = {}
        """The channels of the streams relayed to another cluster now, by ID: where their
        subscribe and unsubscribe requests go."""

    # --- streams of other clusters ----------------------------------------------------------------

    def _upstream(self, request: Request, wsids: Iterable[int]) -> StreamUpstream | None:
        """Where the stream of these workspaces is served: None here, or the routers of another
        cluster. A request relayed from another cluster is served here or refused (421)."""
        relays = self.router.stream_relays
        if relays is None:
            return None
        found = {wsid: relays.upstream_for(wsid) for wsid in wsids}
        if FEDERATED_SCOPE in request.scope:
            for wsid, upstream in found.items():
                if upstream is not None:
                    raise SysError(421, f"workspace {wsid} belongs to cluster {ws.cluster_id(wsid)}, not to this one")
            return None
        if len({upstream.cluster if upstream else 0 for upstream in found.values()}) > 1:
            raise SysError(400, "the subscriptions of a channel must be of workspaces of one cluster")
        return next(iter(found.values()), None)

    async def _relay(self, request: Request, upstream: StreamUpstream) -> Response:
        """The request sent on to ``upstream``, its answer streamed back unchanged."""
        raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
        query = request.scope.get("query_string") or b""
        target = (raw_path + (b"?" + query if query else b"")).decode("latin-1")
        body = await request.body()
        try:
            answer = await upstream.open(request.method, target, request.headers.raw, body)
        except TransportUnavailable as exc:
            raise SysError(503, str(exc), headers={"Retry-After": "1"}) from None
        if answer.status_code == 200 and answer.headers.get("content-type", "").startswith("text/event-stream"):
            opened: list[str] = []

            def on_channel(channel: str) -> None:
                opened.append(channel)
                self.relayed[channel] = upstream

            def on_end() -> None:
                for channel in opened:
                    self.relayed.pop(channel, None)

            return RelayedStream(answer, on_channel, on_end)
        try:
            content = await answer.aread()
        finally:
            await answer.aclose()
        return Response(content, answer.status_code, headers=returned_headers(answer))

    # --- API v1 -----------------------------------------------------------------------------------

    async def v1_channel(self, request: Request) -> Response:
        """``GET /n10n/channel?payload={"SubjectLogin":..,"ProjectionKey":[..]}``."""
        try:
            obj, keys = parse_v1_payload(request, "SubjectLogin id and ProjectionKey")
        except LookupError as exc:
            return PlainTextResponse(str(exc.args[0]), 400, media_type="text/plain")
        except PayloadError as exc:
            return PlainTextResponse(f"cannot unmarshal input payload {exc}", 400, media_type="text/plain")
        subject = _field(obj, "SubjectLogin")
        if subject is not None and not isinstance(subject, str):
            return PlainTextResponse("cannot unmarshal input payload SubjectLogin must be a string", 400)
        try:
            upstream = self._upstream(request, (key.wsid for key in keys))
        except SysError as err:
            return PlainTextResponse(err.message, err.status, media_type="text/plain")
        if upstream is not None:
            return await self._relay(request, upstream)
        try:
            channel = self.broker.new_channel(subject or "")
        except N10nError as exc:
            return PlainTextResponse(
                f"create new channel failed: {exc}", _status(exc, v2=False), media_type="text/plain"
            )
        head = channel_id_event(channel)
        for key in keys:
            try:
                self.broker.subscribe(channel.id, key)
            except N10nError as exc:
                head += b"event: error\ndata: subscribe failed: %s\n\n" % str(exc).encode()
                self.broker.close(channel)  # the stream sends the channel ID and the error, and ends
                break
        await self.notifications.announced()  # the other processes send this one the keys' updates
        return EventStream(self.broker, channel, head)

    async def _v1_keys(self, request: Request) -> tuple[str, list[Key]] | Response:
        try:
            obj, keys = parse_v1_payload(request, "channel id and projection key")
        except LookupError as exc:
            return _go_error(str(exc.args[0]).replace("query parameter", "url parameter"), 400)
        except PayloadError as exc:
            return _go_error(f"cannot unmarshal input payload {exc}", 400)
        channel = _field(obj, "Channel")
        if not isinstance(channel, str):
            return _go_error("cannot unmarshal input payload Channel must be a string", 400)
        return channel, keys

    async def v1_subscribe(self, request: Request) -> Response:
        """``GET /n10n/subscribe?payload={"Channel":..,"ProjectionKey":[..]}``: 200, no body."""
        parsed = await self._v1_keys(request)
        if isinstance(parsed, Response):
            return parsed
        channel, keys = parsed
        upstream = self.relayed.get(channel)
        if upstream is not None:
            return await self._relay(request, upstream)
        for key in keys:
            try:
                self.broker.subscribe(channel, key)
            except N10nError as exc:
                return _go_error(f"subscribe failed: {exc}", _status(exc, v2=False))
        await self.notifications.announced()
        return Response(b"", 200)

    async def v1_unsubscribe(self, request: Request) -> Response:
        """``GET /n10n/unsubscribe?payload={"Channel":..,"ProjectionKey":[..]}``: 200, no body."""
        parsed = await self._v1_keys(request)
        if isinstance(parsed, Response):
            return parsed
        channel, keys = parsed
        upstream = self.relayed.get(channel)
        if upstream is not None:
            return await self._relay(request, upstream)
        for key in keys:
            try:
                self.broker.unsubscribe(channel, key)
            except N10nError as exc:
                return _go_error(str(exc), _status(exc, v2=False))
        return Response(b"", 200)

    async def v1_update(self, request: Request) -> Response:
        """``/n10n/update/{offset}`` with a ProjectionKey as the body: the key changed at that
        offset (Voedger's hook for tests), told to the whole cluster."""
        offset = request.path_params["offset"]
        if not _OFFSET.match(offset):
            raise SysError(404, f"no such endpoint: {request.method} {request.url.path}")
        try:
            key = parse_key(orjson.loads(await request.body()))
        except (orjson.JSONDecodeError, PayloadError):
            return _go_error("Error when parse request body", 400)
        self.notifications.publish(key, int(offset))
        return Response(b"", 200)

    # --- API v2 -----------------------------------------------------------------------------------

    def _subject(self, app: str, request: Request) -> str:
        """The login of the caller's principal token: 401 without a valid one."""
        vvm = self.router.vvm
        if vvm.config.insecure_dev:
            return "dev"
        authorization, cookie = self.router.credential(request.headers, request.cookies)
        if authorization.strip():
            creds = parse_authorization(authorization)
        else:
            creds = parse_authorization_cookie(cookie) if cookie else None
        if creds is None:
            raise SysError(401, "a principal token is required to get notifications")
        if creds.kind is not CredentialsKind.TOKEN:
            raise SysError(401, "a login and password are not accepted here: sign in to get a token first")
        assert vvm.tokens is not None
        return vvm.tokens.for_app(app).validate(creds.token).payload.login

    async def _check(
        self, request: Request, app: str, entity: QName, target: tuple[int, int, Transport]
    ) -> Response | None:
        """The owner's refusal if the caller may not watch ``entity`` in the workspace, else None."""
        wsid, partition, transport = target
        authorization, cookie = self.router.credential(request.headers, request.cookies)
        bus = BusRequest(
            Op.N10N_WATCH, "GET", app, wsid, partition, str(entity), 0, authorization, cookie, b"", {}, _ip(request)
        )
        reply = await self.router.send(bus, transport, limit_reads=False)
        return None if reply.status == 200 else bus_response(reply)

    async def v2_open(self, request: Request) -> Response:
        """``POST .../notifications``: check, open the channel, subscribe, stream."""
        p = request.path_params
        app = f"{p['owner']}/{p['app']}"
        self.router.vvm.app(app)
        subject = self._subject(app, request)
        subs, lifetime = parse_v2_body(self.router.check_size(await request.body()))
        targets = [(entity, self.router.resolve(app, str(wsid))) for entity, wsid, _ in subs]
        upstream = self._upstream(request, (target[0] for _, target in targets))
        if upstream is not None:
            return await self._relay(request, upstream)
        keys: list[Key] = []
        for entity, target in targets:
            refusal = await self._check(request, app, entity, target)
            if refusal is not None:
                return refusal
            keys.append(Key(app, str(entity), target[0]))
        try:
            channel = self.broker.new_channel(subject, lifetime)
        except N10nError as exc:
            raise _sys_error(exc) from None
        try:
            for key in keys:
                self.broker.subscribe(channel.id, key)
        except N10nError as exc:
            self.broker.close(channel)
            raise _sys_error(exc, "subscribe failed: ") from None
        await self.notifications.announced()
        return EventStream(self.broker, channel, channel_id_event(channel))

    async def _v2_target(self, request: Request) -> tuple[str, QName, tuple[int, int, Transport]]:
        """Application, view and (WSID, partition, transport) of a subscription's URL, checked in
        Voedger's order: the URL (400), the token (401), no body (400)."""
        p = request.path_params
        app = f"{p['owner']}/{p['app']}"
        target = self.router.resolve(app, p["wsid"])
        try:
            view = QName.parse(p["view"])
        except QNameError as exc:
            raise SysError(400, str(exc)) from None
        self._subject(app, request)
        if await request.body():
            raise SysError(400, "unexpected body")
        if self._upstream(request, (target[0],)) is not None:
            raise SysError(
                400, f"workspace {target[0]} is of another cluster than channel {request.path_params['channel']}"
            )
        return app, view, target

    async def v2_subscribe(self, request: Request) -> Response:
        """``PUT .../notifications/{channel}/workspaces/{wsid}/subscriptions/{view}``: 200."""
        upstream = self.relayed.get(request.path_params["channel"])
        if upstream is not None:
            return await self._relay(request, upstream)
        app, view, target = await self._v2_target(request)
        refusal = await self._check(request, app, view, target)
        if refusal is not None:
            return refusal
        try:
            self.broker.subscribe(request.path_params["channel"], Key(app, str(view), target[0]))
        except N10nError as exc:
            raise _sys_error(exc, "subscribe failed: ") from None
        await self.notifications.announced()
        return Response(b"", 200)

    async def v2_unsubscribe(self, request: Request) -> Response:
        """``DELETE .../notifications/{channel}/workspaces/{wsid}/subscriptions/{view}``: 204."""
        upstream = self.relayed.get(request.path_params["channel"])
        if upstream is not None:
            return await self._relay(request, upstream)
        app, view, target = await self._v2_target(request)
        try:
            self.broker.unsubscribe(request.path_params["channel"], Key(app, str(view), target[0]))
        except N10nError as exc:
            raise _sys_error(exc) from None
        return Response(b"", 204)
