"""The keys each process watches, told to the others, so that updates go only where they are
watched (``voedger.n10n.relay``). Several ``Notifications`` in this test process, joined by a
tiny in-memory network that hands a message straight to the addressed one (or drops it, for a
peer that is down); the HTTP hop itself is tested in ``test_cluster.py``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from voedger.n10n import Broker, Key, Notifications, RelayError, UnknownSender
from voedger.n10n.relay import decode_interest, encode_interest

K1 = Key("test/app", "app.View", 140737488355329)
K2 = Key("test/app", "app.Other", 140737488355330)


class Net:
    """Processes by address; ``down`` ones take nothing."""

    def __init__(self) -> None:
        self.nodes: dict[str, Notifications] = {}
        self.down: set[str] = set()
        self.told: list[tuple[str, bool]] = []
        """(to whom, whole set?) of each message of watched keys taken."""
        self.attempts: list[str] = []
        """To whom each message of watched keys was sent, taken or not."""

    def add(self, address: str, ready: Callable[[], bool] | None = None) -> Notifications:
        n = Notifications(Broker(heartbeat=0))
        n.peers = lambda: sorted(a for a in self.nodes if a != address)

        async def send(peer: str, batch: bytes) -> bool:
            if peer in self.down:
                return False
            self.nodes[peer].take(batch)
            return True

        async def announce(peer: str, message: bytes) -> bool | None:
            self.attempts.append(peer)
            if peer in self.down:
                return False
            try:
                self.nodes[peer].take_interest(message)
            except UnknownSender:
                return None
            self.told.append((peer, decode_interest(message)[1]))
            return True

        n.sender = send
        self.nodes[address] = n
        n.start_telling(address, announce, ready)
        return n


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    n = Net()
    yield n
    for node in n.nodes.values():
        await node.stop()


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    ends = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < ends, "not reached in time"
        await asyncio.sleep(0.01)


def watch(n: Notifications, key: Key) -> str:
    channel = n.broker.new_channel("alice")
    n.broker.subscribe(channel.id, key)
    return channel.id


async def test_updates_go_to_the_peers_that_watch_their_keys(net: Net) -> None:
    a, b, c = net.add("a"), net.add("b"), net.add("c")
    await a.announced()  # a knows its peers and has told them
    await until(lambda: all(len(n.interest) == 2 for n in (a, b, c)))
    watch(b, K1)
    assert await b.announced()
    assert a.interest["b"] == {K1} and c.interest["b"] == {K1}  # told before announced() returned
    a.publish(K1, 7)
    a.publish(K2, 8)
    await until(lambda: b.received == 1)
    await asyncio.sleep(0.05)
    assert (b.received, c.received) == (1, 0)  # K2 went nowhere; K1 to b alone
    assert b.broker.watched(K1) == 1
    # the last watcher goes: the peers forget the key
    for channel_id in list(b.broker._channels):
        b.broker.close(b.broker.channel(channel_id))
    await until(lambda: a.interest["b"] == set() and c.interest["b"] == set())
    a.publish(K1, 9)
    await asyncio.sleep(0.05)
    assert b.received == 1


async def test_a_peer_that_has_not_told_is_sent_everything(net: Net) -> None:
    a = net.add("a")
    b = Notifications(Broker(heartbeat=0))  # an older process: takes updates, tells nothing
    b.peers = lambda: ["a"]
    net.nodes["b"] = b
    await a.announced()
    assert "b" not in a.interest
    a.publish(K1, 1)
    await until(lambda: b.received == 1)


async def test_a_restarted_process_replaces_what_its_peers_held_of_it(net: Net) -> None:
    a, b = net.add("a"), net.add("b")
    watch(b, K1)
    await b.announced()
    assert a.interest["b"] == {K1}
    # b restarts at the same address: its first message is its whole set, which replaces the old
    await b.stop()
    b2 = net.add("b")
    watch(b2, K2)
    assert await b2.announced()
    assert a.interest["b"] == {K2}
    # and a restarted receiver asks for the whole set (409) when a change comes first
    await a.stop()
    a2 = net.add("a")
    assert "b" not in a2.interest
    b2._sync(time.monotonic())  # b2 still holds a as told: it sends a change next
    watch(b2, K1)
    assert await b2.announced()
    assert a2.interest["b"] == {K1, K2}
    assert ("a", True) in net.told[-2:]


async def test_a_peer_that_is_down_is_told_the_whole_set_when_back(net: Net) -> None:
    a, b = net.add("a"), net.add("b")
    await b.announced()
    net.down.add("a")
    watch(b, K1)
    began = time.monotonic()
    assert await b.announced()  # a did not take the change: the subscription does not wait for it
    assert time.monotonic() - began < 1.0
    assert a.interest["b"] == set()
    net.down.discard("a")
    await until(lambda: a.interest["b"] == {K1}, 3.0)  # the next look sends the whole set


async def test_the_retries_to_a_peer_that_takes_nothing_come_less_and_less_often(net: Net) -> None:
    """A peer of an older version answers 404 to every message: it is asked 1, 2, 4 ... s apart,
    up to once a minute, not once a second."""
    a, b = net.add("a"), net.add("b")
    await b.announced()
    net.down.add("a")
    watch(b, K1)
    await b.announced()
    told = b._told["a"]
    await until(lambda: told.task is not None and told.task.done())
    assert (told.failed, told.failures) == (True, 1)
    for failures, wait in ((1, 1.0), (4, 8.0), (9, 60.0)):
        told.failures, told.failed_at = failures, 1000.0
        count = len(net.attempts)
        b._sync(1000.0 + wait - 0.01)  # not yet
        await asyncio.sleep(0.02)
        assert len(net.attempts) == count
        b._sync(1000.0 + wait)
        await until(lambda: len(net.attempts) == count + 1)  # noqa: B023 - awaited here
    net.down.discard("a")
    told.failed_at = 0.0
    b._sync(1000.0)
    await until(lambda: a.interest["b"] == {K1})
    assert (told.failed, told.failures) == (False, 0)


async def test_a_process_tells_nothing_until_it_knows_its_peers(net: Net) -> None:
    joined = False
    a = net.add("a", ready=lambda: joined)
    b = net.add("b")
    watch(a, K1)
    assert not await a.announced(timeout=0.3)
    assert "a" not in b.interest
    joined = True
    assert await a.announced()
    assert b.interest["a"] == {K1}


def test_malformed_messages_are_refused() -> None:
    n = Notifications(Broker(heartbeat=0))
    for bad in (
        b"nope",
        b"[]",
        b'{"from": "", "full": true, "watch": [], "unwatch": []}',
        b'{"from": "a", "full": 1, "watch": [], "unwatch": []}',
        b'{"from": "a", "full": true, "watch": [["x", "y"]], "unwatch": []}',
        b'{"from": "a", "full": true, "watch": [["x", "y", "1"]], "unwatch": []}',
    ):
        with pytest.raises(RelayError):
            n.take_interest(bad)
    with pytest.raises(UnknownSender):
        n.take_interest(encode_interest("a", False, [K1], []))
    n.take_interest(encode_interest("a", True, [K1, K2], []))
    assert n.interest == {"a": {K1, K2}}


async def test_a_peer_that_leaves_is_forgotten_with_what_it_watched(net: Net) -> None:
    a, b = net.add("a"), net.add("b")
    watch(b, K1)
    await b.announced()
    await a.announced()
    assert a.interest["b"] == {K1} and "b" in a._told
    await b.stop()
    del net.nodes["b"]
    a._sync(time.monotonic())
    assert "b" not in a.interest and "b" not in a._told
