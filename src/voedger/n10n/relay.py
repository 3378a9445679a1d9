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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import orjson

from voedger.n10n.broker import Broker, Key

log = logging.getLogger("voedger.n10n")

LOG_EVERY: Final = 10.0
"""Seconds between the warnings about one peer that does not take its batches."""
MAX_BATCH: Final = 10_000
"""Updates in one request to a peer; more wait for the next one."""


class RelayError(ValueError):
    """A batch from a peer that is not one."""


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
        if (
            not isinstance(item, list)
            or len(item) != 4
            or not isinstance(item[0], str)
            or not isinstance(item[1], str)
            or type(item[2]) is not int
            or type(item[3]) is not int
        ):
            raise RelayError(f"an update must be [app, projection, wsid, offset], not {str(item)[:100]}")
        out.append((Key(item[0], item[1], item[2]), item[3]))
    return out


Sender = Callable[[str, bytes], Awaitable[bool]]
"""Posts a batch to the peer at an address; False when the peer did not take it."""


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
            pending = self._pending.setdefault(peer, {})
            for key, offset in batch.items():
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
                    now = time.monotonic()
                    if now - self._warned.get(peer, -LOG_EVERY) >= LOG_EVERY:  # not once a request
                        self._warned[peer] = now
                        log.warning(
                            "n10n: %s did not take %d update(s) (%d failures in all): %s",
                            peer,
                            len(items),
                            self.failed,
                            ok,
                        )
                    if self.peers is None or peer not in self.peers():
                        self._pending.pop(peer, None)  # gone from the cluster: what waits for it is dropped
                        break
        finally:
            del self._sending[peer]
            if not self._pending.get(peer):
                self._pending.pop(peer, None)

    async def stop(self) -> None:
        tasks = list(self._sending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()
        await self.broker.stop()
