"""What the Cassandra driver knows about the nodes, turned into a decision for logged batches.

A logged batch is first written to the batch log of two *other* nodes that the coordinator's
failure detector believes alive; a node killed a moment ago is believed alive for ~18 s (phi
convict threshold 8 at one gossip a second), so every logged batch times out (write type
BATCH_LOG) until the coordinators convict it. The driver learns of the loss much sooner, from
its own connection to that node (a reset, a refused reconnection): that is the signal here.

:class:`NodeWatch` is registered as the driver's host-state listener. While a node is down, and
for ``bypass`` seconds after the driver saw one go down or a batch timed out at BATCH_LOG, the
storage writes batches through its own batch log instead (``cassandra_batchlog``); by then the
coordinators have convicted the node and pick only live ones, so logged batches work again even
if it stays down (a BATCH_LOG timeout would trip the bypass once more). Logged
batches in flight when a node goes down are told at once (:meth:`subscribe`), so that they need
not wait out the coordinator's write timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from cassandra.policies import HostStateListener

log = logging.getLogger(__name__)


class NodeWatch(HostStateListener):  # type: ignore[misc]
    """Tracks which nodes the driver sees down; thread-safe where the driver calls it."""

    def __init__(self, bypass: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.bypass = bypass
        self._clock = clock
        self._down: set[str] = set()
        self._until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[Callable[[], None]] = set()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop that subscribers live on (the loop that opened the storage)."""
        self._loop = loop

    # --- the driver's callbacks (its own threads) ----------------------------------------------

    def on_up(self, host: Any) -> None:
        self._down.discard(str(host.endpoint))
        log.info("Cassandra node %s is up", host.endpoint)

    def on_down(self, host: Any) -> None:
        self._down.add(str(host.endpoint))
        log.warning("Cassandra node %s is down", host.endpoint)
        self.trip()
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(self._wake)

    def on_add(self, host: Any) -> None:
        pass

    def on_remove(self, host: Any) -> None:
        self._down.discard(str(host.endpoint))

    # --- the storage's side (the event loop) -------------------------------------------------

    def trip(self) -> None:
        """A sign that some coordinator may still pick a dead node: bypass for a while."""
        self._until = self._clock() + self.bypass

    def bypassing(self) -> bool:
        """True while batches should go through the storage's own batch log."""
        return self.bypass > 0 and self._clock() < self._until

    @property
    def down(self) -> frozenset[str]:
        """The endpoints the driver sees down now."""
        return frozenset(self._down)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (on the loop) when a node goes down; returns the unsubscribe."""
        self._waiters.add(callback)
        return lambda: self._waiters.discard(callback)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for callback in waiters:
            try:
                callback()
            except Exception:  # pragma: no cover - a bug in a subscriber; the others still run
                log.exception("a node-down subscriber failed")
