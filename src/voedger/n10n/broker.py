"""The notification broker of one server process (Voedger's ``in10n``).

A client opens a *channel* (one server-sent-events stream) and subscribes it to *keys*: an
application, a view (or any projection QName) and a workspace. ``update(key, offset)`` says that
the view of that workspace changed with the event at that WLog offset; every channel subscribed
to the key is woken and gets the offset once. Updates of one key that pile up while a channel's
client is slow collapse into the latest offset (a client re-reads the view; it needs to know
that, not how many times, it changed). A channel delivers an offset only when it is greater than
the last one it delivered for that key, as in Voedger.

Bounded: at most ``Quotas`` channels and subscriptions, in all and per subject (the login the
channel was opened for); a channel lives until its client goes away, it is closed, or its
lifetime ends. Offsets are kept only for keys somebody is subscribed to, so the memory is
bounded by the subscriptions, not by the views and workspaces ever updated. A heartbeat key
(``sys.Heartbeat30``) is updated every ``heartbeat`` seconds for the channels that want one.

Everything runs on the event loop: no locks; ``update`` is synchronous and costs a dictionary
look-up when nobody watches the key.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from voedger.tasks import cancelled


class Key(NamedTuple):
    """What a channel subscribes to: Voedger's ``ProjectionKey``."""

    app: str
    """``owner/name``"""
    projection: str
    """``pkg.Name``: a view, or ``sys.Heartbeat30``."""
    wsid: int

    def to_json(self) -> str:
        """The key as Voedger writes it in an SSE event's name."""
        app, projection = json.dumps(self.app), json.dumps(self.projection)  # quoted, escaped
        return f'{{"App":{app},"Projection":{projection},"WS":{self.wsid}}}'


HEARTBEAT30: Final = "sys.Heartbeat30"
HEARTBEAT_KEY: Final = Key("/", HEARTBEAT30, 0)
"""Every subscription to ``sys.Heartbeat30`` is to this key, whatever application and workspace
it named (Voedger's ``Heartbeat30ProjectionKey``: an empty application, workspace 0)."""
HEARTBEAT_SECONDS: Final = 30.0
DEFAULT_LIFETIME: Final = 24 * 3600.0
"""Seconds a channel lives when its client did not say (Voedger's 24 hours)."""


class N10nError(Exception):
    """A refusal of the broker; its text is Voedger's."""


class ChannelNotFound(N10nError):
    def __init__(self) -> None:
        super().__init__("channel does not exist")


class BrokerClosed(N10nError):
    def __init__(self) -> None:
        super().__init__("the server is stopping: no new channels; connect again")


class QuotaExceeded(N10nError):
    def __init__(self, what: str) -> None:
        super().__init__(f"quota exceeded: number of {what}")


@dataclass(frozen=True)
class Quotas:
    """Voedger's defaults with its 10 command processors: 1000 channels and subscriptions per
    processor, 50 channels and 100 subscriptions per subject."""

    channels: int = 10_000
    channels_per_subject: int = 50
    subscriptions: int = 10_000
    subscriptions_per_subject: int = 100


@dataclass(eq=False)
class Channel:
    id: str
    subject: str
    expires_at: float
    """Loop time after which the channel ends."""
    delivered: dict[Key, int] = field(default_factory=dict)
    """Its subscriptions, each with the last offset sent for it (0: none yet)."""
    pending: dict[Key, int] = field(default_factory=dict)
    """Offsets to send, the latest per key."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False


@dataclass
class _Subject:
    channels: int = 0
    subscriptions: int = 0


class Broker:
    """Channels, subscriptions and updates of one process (see the module's docstring)."""

    def __init__(self, quotas: Quotas = Quotas(), heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.quotas = quotas
        self.heartbeat = heartbeat
        self._channels: dict[str, Channel] = {}
        self._watchers: dict[Key, set[Channel]] = {}
        """The channels subscribed to each key; a key nobody watches is not here."""
        self._subjects: dict[str, _Subject] = {}
        self._subscriptions = 0
        self._beats = 0
        self._heart: asyncio.Task[None] | None = None
        self.updates = 0
        """Updates received so far (metrics, tests)."""
        self.closing = False
        """Set by ``shut``: no new channels."""
        self.on_watch: Callable[[Key, bool], None] | None = None
        """Told when a key gets its first watcher (True) and loses its last (False): the other
        processes of a cluster send a process the updates of the keys it watches only."""

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._heart is None and self.heartbeat > 0:
            self._heart = asyncio.get_running_loop().create_task(self._beat(), name="n10n-heartbeat")

    def shut(self) -> None:
        """End every channel (their streams finish) and refuse new ones: the process is leaving,
        and a stream would hold its graceful stop to the end."""
        self.closing = True
        for channel in list(self._channels.values()):
            self.close(channel)

    async def stop(self) -> None:
        """``shut``, and stop the heartbeat."""
        self.shut()
        heart, self._heart = self._heart, None
        await cancelled(heart)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            self._beats += 1
            self.update(HEARTBEAT_KEY, self._beats)

    # --- channels and subscriptions ---------------------------------------------------------------

    @property
    def num_channels(self) -> int:
        return len(self._channels)

    @property
    def num_subscriptions(self) -> int:
        return self._subscriptions

    def watched(self, key: Key) -> int:
        """How many channels are subscribed to ``key``."""
        return len(self._watchers.get(key, ()))

    def watched_keys(self) -> list[Key]:
        """The keys some channel is subscribed to (but this process's own heartbeat)."""
        return [key for key in self._watchers if key != HEARTBEAT_KEY]

    def new_channel(self, subject: str, lifetime: float = DEFAULT_LIFETIME) -> Channel:
        """A new channel for ``subject``; QuotaExceeded when there are too many."""
        if self.closing:
            raise BrokerClosed()
        if len(self._channels) >= self.quotas.channels:
            raise QuotaExceeded("channels")
        counts = self._subjects.get(subject)
        if counts is not None and counts.channels >= self.quotas.channels_per_subject:
            raise QuotaExceeded("channels per subject")
        if counts is None:
            counts = self._subjects[subject] = _Subject()
        counts.channels += 1
        expires = asyncio.get_running_loop().time() + lifetime
        channel = Channel(str(uuid.uuid4()), subject, expires)
        self._channels[channel.id] = channel
        return channel

    def channel(self, channel_id: str) -> Channel:
        channel = self._channels.get(channel_id)
        if channel is None or channel.closed:
            raise ChannelNotFound()
        return channel

    def subscribe(self, channel_id: str, key: Key) -> None:
        """Subscribe a channel to ``key`` (again: nothing changes). ChannelNotFound, QuotaExceeded."""
        channel = self.channel(channel_id)
        if key.projection == HEARTBEAT30:
            key = HEARTBEAT_KEY
        if key in channel.delivered:
            return
        counts = self._subjects[channel.subject]
        if self._subscriptions >= self.quotas.subscriptions:
            raise QuotaExceeded("subscriptions")
        if counts.subscriptions >= self.quotas.subscriptions_per_subject:
            raise QuotaExceeded("subscriptions per subject")
        counts.subscriptions += 1
        self._subscriptions += 1
        channel.delivered[key] = 0
        watchers = self._watchers.get(key)
        if watchers is None:
            watchers = self._watchers[key] = set()
            if self.on_watch is not None and key != HEARTBEAT_KEY:
                self.on_watch(key, True)
        watchers.add(channel)

    def unsubscribe(self, channel_id: str, key: Key) -> None:
        """End a subscription; one that does not exist is no error. ChannelNotFound."""
        self._drop(self.channel(channel_id), HEARTBEAT_KEY if key.projection == HEARTBEAT30 else key)

    def _drop(self, channel: Channel, key: Key) -> None:
        if key not in channel.delivered:
            return
        del channel.delivered[key]
        channel.pending.pop(key, None)
        self._subscriptions -= 1
        self._subjects[channel.subject].subscriptions -= 1
        watchers = self._watchers.get(key)
        if watchers is not None:
            watchers.discard(channel)
            if not watchers:
                del self._watchers[key]
                if self.on_watch is not None and key != HEARTBEAT_KEY:
                    self.on_watch(key, False)

    def close(self, channel: Channel) -> None:
        """End a channel: its subscriptions go, its stream finishes. Idempotent."""
        if channel.closed:
            return
        for key in list(channel.delivered):
            self._drop(channel, key)
        channel.closed = True
        channel.wake.set()
        if self._channels.get(channel.id) is channel:
            del self._channels[channel.id]
            counts = self._subjects[channel.subject]
            counts.channels -= 1
            if not counts.channels:
                del self._subjects[channel.subject]

    # --- updates --------------------------------------------------------------------------------

    def update(self, key: Key, offset: int) -> None:
        """The projection ``key`` changed at ``offset``: wake the channels subscribed to it."""
        self.updates += 1
        watchers = self._watchers.get(key)
        if not watchers:
            return
        for channel in watchers:
            if offset > channel.delivered.get(key, 0) and offset > channel.pending.get(key, 0):
                channel.pending[key] = offset
                channel.wake.set()

    @staticmethod
    def _ended(channel: Channel) -> bool:
        return channel.closed

    async def watch(self, channel: Channel) -> AsyncIterator[list[tuple[Key, int]]]:
        """The channel's updates as they come, a batch at a time, until it is closed or its
        lifetime ends. The caller closes the channel when it stops iterating."""
        loop = asyncio.get_running_loop()
        while not channel.closed:
            left = channel.expires_at - loop.time()
            if left <= 0:
                return
            if not channel.pending:
                try:
                    await asyncio.wait_for(channel.wake.wait(), left)
                except TimeoutError:
                    return
            channel.wake.clear()
            if self._ended(channel):
                return
            batch = [(k, o) for k, o in channel.pending.items() if k in channel.delivered]
            channel.pending.clear()
            for key, offset in batch:
                channel.delivered[key] = offset
            if batch:
                yield batch
