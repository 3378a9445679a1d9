"""Notifications across the processes of a cluster.

A view changes in the process that owns the workspace's partition (its writer and its async
projectors run there), but a client's stream may be held by any process. ``Notifications`` is a
process's entry point for updates: it hands each one to the local broker and, in a cluster,
sends it on to the other processes, which hand it to theirs (and send it nowhere else).

Sending is batched without any timer. The updates of one turn of the event loop (all the events
of a group commit) are handed together to each peer's queue; a peer's sender, when idle, sends
its queue at once; updates that come while its request is in flight wait, collapsed to the
latest offset per key, and go together in its next one. Under load that is one request per peer
per round trip, however many commands; when idle, an update leaves at once. Each peer has its own
sender, so one that is slow or gone delays nobody else. A batch a peer does not take is dropped
(and counted): a notification is a hint to re-read, and a process that is down holds no streams;
what waits for a peer that has left the cluster is dropped too.

A peer is sent the updates of the keys it watches only, once it has said which: each process
tells the others the keys its subscribers watch (the whole set first, then what changes, a
message at a time per peer, so they arrive in order). A peer that has not said, or whose last
message was lost, is sent every update, as before. A subscription is answered once every peer
knows of it (or did not take the message, or ``ANNOUNCE_TIMEOUT`` passed), so an update made
after the subscription's answer reaches it. A process tells its peers only once it knows them
(``ready``); a peer that gets a change from a process whose whole set it does not hold answers
409, and is sent the whole set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from voedger.n10n.broker import Broker, Key

log = logging.getLogger("voedger.n10n")

LOG_EVERY: Final = 10.0
"""Seconds between the warnings about one peer that does not take its batches."""
MAX_BATCH: Final = 10_000
"""Updates in one request to a peer; more wait for the next one."""


INTEREST_SYNC: Final = 1.0
"""Seconds between looks at the peers: a new one is told the whole set of watched keys, one
whose message was not taken is told it again."""
INTEREST_REFRESH: Final = 60.0
"""Seconds after which a peer is told the whole set again all the same."""
ANNOUNCE_TIMEOUT: Final = 2.0
"""How long a subscription waits for the peers to know of it before it is answered anyway."""
WARN_AFTER: Final = 3
"""Messages of watched keys a peer refuses in a row (about 7 s of retries) before a warning."""
MAX_WATCHED: Final = 1_000_000
"""Keys in one message of watched keys, at most."""


class RelayError(ValueError):
    """A batch from a peer that is not one."""


class UnknownSender(RelayError):
    """A change of watched keys from a process whose whole set this one does not hold."""


def encode_batch(updates: Sequence[tuple[Key, int]]) -> bytes:
    return orjson.dumps([[k.app, k.projection, k.wsid, offset] for k, offset in updates])


def decode_batch(data: bytes) -> list[tuple[Key, int]]:
    try:
        raw: Any = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RelayError(f"not JSON: {exc}") from None
    if not isinstance(raw, list) or len(raw) > MAX_BATCH:
        raise RelayError(f"expected a list of at most {MAX_BATCH} updates")
    out: list[tuple[Key, int]] = []
    for item in raw:
        key = _key(item, 4, "an update must be [app, projection, wsid, offset]")
        out.append((key, item[3]))
    return out


def _key(item: Any, length: int, shape: str) -> Key:
    """The key at the head of ``item``: a list of ``length`` values, two strings then integers
    (a key: [app, projection, wsid]; an update adds its offset); RelayError naming ``shape``."""
    if (
        not isinstance(item, list)
        or len(item) != length
        or not isinstance(item[0], str)
        or not isinstance(item[1], str)
        or any(type(v) is not int for v in item[2:])
    ):
        raise RelayError(f"{shape}, not {str(item)[:100]}")
    return Key(item[0], item[1], item[2])


def encode_interest(sender: str, full: bool, watch: Sequence[Key], unwatch: Sequence[Key]) -> bytes:
    return orjson.dumps(
        {
            "from": sender,
            "full": full,
            "watch": [[k.app, k.projection, k.wsid] for k in watch],
            "unwatch": [[k.app, k.projection, k.wsid] for k in unwatch],
        }
    )


def decode_interest(data: bytes) -> tuple[str, bool, list[Key], list[Key]]:
    """(sender, whole set?, keys watched, keys no longer watched); RelayError if malformed."""
    try:
        raw: Any = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RelayError(f"not JSON: {exc}") from None
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("from"), str)
        or not raw["from"]
        or not isinstance(raw.get("full"), bool)
        or not isinstance(raw.get("watch"), list)
        or not isinstance(raw.get("unwatch"), list)
        or len(raw["watch"]) + len(raw["unwatch"]) > MAX_WATCHED
    ):
        raise RelayError('expected {"from": address, "full": bool, "watch": [keys], "unwatch": [keys]}')
    shape = "a key must be [app, projection, wsid]"
    return (
        raw["from"],
        raw["full"],
        [_key(k, 3, shape) for k in raw["watch"]],
        [_key(k, 3, shape) for k in raw["unwatch"]],
    )


Sender = Callable[[str, bytes], Awaitable[bool]]
"""Posts a batch to the peer at an address; False when the peer did not take it."""
Announcer = Callable[[str, bytes], Awaitable[bool | None]]
"""Posts a message of watched keys to the peer at an address: True when taken, None when the peer
asks for the whole set (it does not hold it), False when it did not take it."""


@dataclass
class _Told:
    """What one peer has been told of the keys this process watches."""

    full: bool = True
    """The next message carries the whole set."""
    changes: dict[Key, bool] = field(default_factory=dict)
    """Keys watched (True) or not any more (False) since the last message."""
    acked: int = -1
    """The generation of the watched keys the peer holds."""
    failed: bool = False
    """Its last message was not taken: subscriptions do not wait for it; a later look retries."""
    failures: int = 0
    """Messages not taken in a row: the retries come 1, 2, 4 ... up to 60 s apart (a peer of an
    older version, which does not take them at all, is not asked every second)."""
    failed_at: float = 0.0
    refreshed: float = 0.0
    """When it last took the whole set (monotonic)."""
    task: asyncio.Task[None] | None = None


class Notifications:
    """Updates into the local broker and, given ``peers`` and ``sender``, to the other processes."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.peers: Callable[[], Sequence[str]] | None = None
        """The addresses of the other processes of the cluster now; None: a process alone."""
        self.sender: Sender | None = None
        self.outbox: dict[Key, int] = {}
        """Updates of this turn of the event loop, not yet handed to the peers' queues."""
        self._scheduled = False
        self._pending: dict[str, dict[Key, int]] = {}
        """Per peer: the updates waiting for its next request (while one is in flight)."""
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._warned: dict[str, float] = {}
        """When a peer's failure was last logged."""
        self.sent = 0
        """Requests sent to peers (one batch each)."""
        self.failed = 0
        """Requests a peer did not take."""
        self.received = 0
        """Updates received from peers."""
        self.me = ""
        """This process's address as its peers know it (``start_telling``)."""
        self.announcer: Announcer | None = None
        """Tells a peer the keys watched here; None: nothing is told (peers send everything)."""
        self.ready: Callable[[], bool] = lambda: True
        """Whether ``peers`` lists the cluster yet (a process still joining does not know it)."""
        self.interest: dict[str, set[Key]] = {}
        """Per peer, the keys its subscribers watch, once it has told them in full."""
        self._told: dict[str, _Told] = {}
        self._generation = 0
        """Raised at each change of the keys watched here."""
        self._progress = asyncio.Condition()
        self._syncing: asyncio.Task[None] | None = None
        self.skipped = 0
        """Requests not sent: the peer watches none of the batch's keys."""
        broker.on_watch = self._watched

    def views_changed(self, app: str, changes: list[tuple[int, str, int]]) -> None:
        """(WSID, view, WLog offset) of rows of ``app`` made durable here. Called by the
        partition's writer and the actualizers: never raises into them."""
        try:
            for wsid, view, offset in changes:
                self.publish(Key(app, view, wsid), offset)
        except Exception:  # pragma: no cover - a bug here must not stop a writer
            log.exception("n10n: publishing %d update(s) of %s failed", len(changes), app)

    def publish(self, key: Key, offset: int) -> None:
        """An update made in this process: here and, in a cluster, to every other process."""
        self.broker.update(key, offset)
        if self.sender is None or self.peers is None:
            return
        if self.outbox.get(key, 0) < offset:
            self.outbox[key] = offset
        if not self._scheduled:
            # Once this turn of the loop is over: the updates of a whole group go together.
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        """Hand this turn's updates to each peer's queue; start a peer's sender if it is idle.
        Each peer has its own: one that is slow or gone delays nobody else."""
        self._scheduled = False
        batch, self.outbox = self.outbox, {}
        if not batch or self.peers is None:
            return
        for peer in self.peers():
            watched = self.interest.get(peer)
            if watched is not None:
                mine = [(key, offset) for key, offset in batch.items() if key in watched]
                if not mine:
                    self.skipped += 1
                    continue
            else:
                mine = list(batch.items())
            pending = self._pending.setdefault(peer, {})
            for key, offset in mine:
                if pending.get(key, 0) < offset:
                    pending[key] = offset
            if peer not in self._sending:
                self._sending[peer] = asyncio.get_running_loop().create_task(self._send(peer), name="n10n-relay")

    def take(self, data: bytes) -> int:
        """A batch another process sent: to the local broker only. RelayError if malformed."""
        updates = decode_batch(data)
        for key, offset in updates:
            self.broker.update(key, offset)
        self.received += len(updates)
        return len(updates)

    async def _send(self, peer: str) -> None:
        """Send ``peer`` its waiting updates, a request at a time, until none wait."""
        try:
            while (pending := self._pending.get(peer)) and self.sender is not None:
                items = list(pending.items())[:MAX_BATCH]
                for key, _ in items:
                    del pending[key]
                try:
                    ok: object = await self.sender(peer, encode_batch(items))
                except Exception as exc:  # a sender reports failures with False; this is a bug
                    ok = exc
                self.sent += 1
                if ok is not True:
                    self.failed += 1
                    self._warn(peer, f"did not take {len(items)} update(s) ({self.failed} failures in all): {ok}")
                    if self.peers is None or peer not in self.peers():
                        self._pending.pop(peer, None)  # gone from the cluster: what waits for it is dropped
                        break
        finally:
            del self._sending[peer]
            if not self._pending.get(peer):
                self._pending.pop(peer, None)

    # --- the keys watched here, told to the peers; theirs, told here --------------------------------

    def take_interest(self, data: bytes) -> None:
        """A peer's message of the keys it watches. RelayError if malformed; UnknownSender for a
        change from a peer whose whole set is not held here (it is then sent everything)."""
        sender, full, watch, unwatch = decode_interest(data)
        if full:
            self.interest[sender] = set(watch)
            return
        known = self.interest.get(sender)
        if known is None:
            raise UnknownSender(f"{sender} has not told its whole set here")
        known.update(watch)
        known.difference_update(unwatch)

    def start_telling(self, me: str, announcer: Announcer, ready: Callable[[], bool] | None = None) -> None:
        """Tell the peers, from now on, the keys watched here (``me``: this process's address)."""
        self.me, self.announcer = me, announcer
        if ready is not None:
            self.ready = ready
        if self._syncing is None:
            self._syncing = asyncio.get_running_loop().create_task(self._sync_loop(), name="n10n-interest")

    def _watched(self, key: Key, watched: bool) -> None:
        """The broker: ``key`` got its first watcher here, or lost its last."""
        if self.announcer is None:
            return
        self._generation += 1
        for peer, told in self._told.items():
            told.changes[key] = watched
            self._kick(peer, told)

    async def announced(self, timeout: float = ANNOUNCE_TIMEOUT) -> bool:
        """Wait until every peer holds the keys watched here now (but those that did not take
        their message); False if ``timeout`` passed first."""
        if self.announcer is None or self.peers is None:
            return True
        target = self._generation
        try:
            async with asyncio.timeout(timeout):
                while not self.ready():
                    await asyncio.sleep(0.05)
                self._sync(time.monotonic())
                peers = [p for p in self.peers() if p in self._told]
                async with self._progress:
                    await self._progress.wait_for(lambda: self._hold(peers, target))
        except TimeoutError:
            return False
        return True

    def _hold(self, peers: Sequence[str], generation: int) -> bool:
        """Whether each of ``peers`` holds the watched keys of ``generation`` (or failed to take
        its message, or left)."""
        for peer in peers:
            told = self._told.get(peer)
            if told is not None and told.acked < generation and not told.failed:
                return False
        return True

    async def _sync_loop(self) -> None:
        while True:
            try:
                if self.ready():
                    self._sync(time.monotonic())
            except Exception:  # pragma: no cover - a bug here must not end the loop
                log.exception("n10n: telling the peers what is watched here failed")
            await asyncio.sleep(INTEREST_SYNC)

    def _sync(self, now: float) -> None:
        """Tell a new peer, one whose message was not taken, and one due a refresh the whole set;
        forget the peers that left (and what they watched: back, they are sent everything until
        they tell it again)."""
        peers = set(self.peers()) if self.peers is not None else set()
        for gone in [p for p in self._told if p not in peers]:
            del self._told[gone]
            self.interest.pop(gone, None)
        for peer in peers:
            told = self._told.get(peer)
            if told is None:
                told = self._told[peer] = _Told()
            elif told.failed:
                if now - told.failed_at < min(INTEREST_REFRESH, INTEREST_SYNC * 2 ** (told.failures - 1)):
                    continue
                told.full = True
            elif now - told.refreshed >= INTEREST_REFRESH:
                told.full = True
            self._kick(peer, told)

    def _kick(self, peer: str, told: _Told) -> None:
        if (told.full or told.changes) and (told.task is None or told.task.done()):
            told.task = asyncio.get_running_loop().create_task(self._tell(peer, told), name="n10n-interest")

    async def _tell(self, peer: str, told: _Told) -> None:
        """Send ``peer`` what it was not told yet, a message at a time, until nothing is left."""
        while self._told.get(peer) is told and (told.full or told.changes) and self.announcer is not None:
            generation, full = self._generation, told.full
            if full:
                watch, unwatch = self.broker.watched_keys(), []
            else:
                watch = [k for k, on in told.changes.items() if on]
                unwatch = [k for k, on in told.changes.items() if not on]
            told.full, told.changes = False, {}
            try:
                ok: object = await self.announcer(peer, encode_interest(self.me, full, watch, unwatch))
            except Exception as exc:  # an announcer reports failures with False; this is a bug
                ok = exc
            if ok is None:  # the peer does not hold the whole set: send it now
                told.full = True
                continue
            if ok is not True:
                told.full, told.failed = True, True  # a later look sends the whole set again
                told.failures, told.failed_at = told.failures + 1, time.monotonic()
                if told.failures >= WARN_AFTER:  # a peer still starting refuses the first ones
                    self._warn(peer, f"did not take the keys watched here {told.failures} times in a row: {ok}")
            else:
                told.acked, told.failed, told.failures = max(told.acked, generation), False, 0
                if full:
                    told.refreshed = time.monotonic()
            async with self._progress:
                self._progress.notify_all()
            if ok is not True:
                return

    def _warn(self, peer: str, what: str) -> None:
        """A warning about ``peer``, at most one every ``LOG_EVERY`` seconds (not once a request)."""
        now = time.monotonic()
        if now - self._warned.get(peer, -LOG_EVERY) >= LOG_EVERY:  # not once a request
            self._warned[peer] = now
            log.warning("n10n: %s %s", peer, what)

    async def stop(self) -> None:
        syncing, self._syncing = self._syncing, None
        if syncing is not None:
            syncing.cancel()
            await asyncio.gather(syncing, return_exceptions=True)
        telling = [t.task for t in self._told.values() if t.task is not None]
        for task in telling:
            task.cancel()
        await asyncio.gather(*telling, return_exceptions=True)
        self._told.clear()
        tasks = list(self._sending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()
        await self.broker.stop()
