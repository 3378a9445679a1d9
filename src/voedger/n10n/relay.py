"""Notifications across the processes of a cluster.

A view changes in the process that owns the workspace's partition (its writer and its async
projectors run there), but a client's stream may be held by any process. ``Notifications`` is a
process's entry point for updates: it hands each one to the local broker and, in a cluster,
sends it on to the other processes, which hand it to theirs (and send it nowhere else).

Sending is batched without any timer: the first update finds nothing in flight and starts a
send; updates that come while a send is in flight wait in ``outbox``, collapsed to the latest
offset per key, and go together in the next one. Under load that is one request per peer per
round trip, however many commands; when idle, an update leaves at once. A batch a peer does not
take (it is down or slow) is dropped: a notification is a hint to re-read, and a process that is
down holds no streams.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import orjson

from voedger.n10n.broker import Broker, Key

log = logging.getLogger("voedger.n10n")

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
        self._sending: asyncio.Task[None] | None = None
        self.sent = 0
        """Batches sent to peers (each to every peer)."""
        self.failed = 0
        """Batches a peer did not take."""
        self.received = 0
        """Updates received from peers."""

    def views_changed(self, app: str, changes: list[tuple[int, str, int]]) -> None:
        """(WSID, view, WLog offset) of rows of ``app`` made durable here."""
        for wsid, view, offset in changes:
            self.publish(Key(app, view, wsid), offset)

    def publish(self, key: Key, offset: int) -> None:
        """An update made in this process: here and, in a cluster, to every other process."""
        self.broker.update(key, offset)
        if self.sender is None or self.peers is None:
            return
        if self.outbox.get(key, 0) < offset:
            self.outbox[key] = offset
        if self._sending is None:
            self._sending = asyncio.get_running_loop().create_task(self._send(), name="n10n-relay")

    def take(self, data: bytes) -> int:
        """A batch another process sent: to the local broker only. RelayError if malformed."""
        updates = decode_batch(data)
        for key, offset in updates:
            self.broker.update(key, offset)
        self.received += len(updates)
        return len(updates)

    async def _send(self) -> None:
        try:
            while self.outbox and self.sender is not None and self.peers is not None:
                items = list(self.outbox.items())[:MAX_BATCH]
                for key, _ in items:
                    del self.outbox[key]
                peers = self.peers()
                if not peers:
                    continue
                payload = encode_batch(items)
                sender = self.sender
                results = await asyncio.gather(*(sender(p, payload) for p in peers), return_exceptions=True)
                self.sent += 1
                for peer, ok in zip(peers, results, strict=True):
                    if ok is not True:
                        self.failed += 1
                        log.warning("n10n: %s did not take %d update(s): %s", peer, len(items), ok)
        finally:
            self._sending = None

    async def stop(self) -> None:
        task = self._sending
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.broker.stop()
