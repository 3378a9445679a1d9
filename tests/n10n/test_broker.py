"""The broker and the relay without HTTP: quotas, delivery rules, clean-up, batching."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from voedger.n10n import (
    HEARTBEAT_KEY,
    Broker,
    BrokerClosed,
    ChannelNotFound,
    Key,
    Notifications,
    QuotaExceeded,
    Quotas,
    RelayError,
)
from voedger.n10n.relay import decode_batch, encode_batch

K1 = Key("o/a", "pkg.V1", 1)
K2 = Key("o/a", "pkg.V2", 1)


async def next_batch(broker: Broker, channel: object, timeout: float = 1.0) -> list[tuple[Key, int]]:
    it = broker.watch(channel)  # type: ignore[arg-type]
    return await asyncio.wait_for(anext(it), timeout)


async def test_quotas() -> None:
    b = Broker(Quotas(channels=3, channels_per_subject=2, subscriptions=3, subscriptions_per_subject=2), heartbeat=0)
    a1, a2 = b.new_channel("a"), b.new_channel("a")
    with pytest.raises(QuotaExceeded, match="channels per subject"):
        b.new_channel("a")
    c = b.new_channel("c")
    with pytest.raises(QuotaExceeded, match=r"number of channels$"):
        b.new_channel("d")
    b.subscribe(a1.id, K1)
    b.subscribe(a1.id, K1)  # again: nothing changes
    b.subscribe(a2.id, K2)
    assert b.num_subscriptions == 2
    with pytest.raises(QuotaExceeded, match="subscriptions per subject"):
        b.subscribe(a2.id, K1)
    b.subscribe(c.id, K1)
    with pytest.raises(QuotaExceeded, match=r"number of subscriptions$"):
        b.subscribe(c.id, K2)
    b.close(a1)
    b.close(a1)  # idempotent
    assert (b.num_channels, b.num_subscriptions, b.watched(K1)) == (2, 2, 1)
    with pytest.raises(ChannelNotFound):
        b.subscribe(a1.id, K2)
    with pytest.raises(ChannelNotFound):
        b.unsubscribe("nope", K2)
    b.new_channel("a")  # a freed place is taken again
    await b.stop()
    assert (b.num_channels, b.num_subscriptions) == (0, 0)
    with pytest.raises(BrokerClosed):
        b.new_channel("a")


async def test_updates_collapse_and_go_only_forward() -> None:
    b = Broker(heartbeat=0)
    ch = b.new_channel("s")
    b.subscribe(ch.id, K1)
    b.subscribe(ch.id, K2)
    b.update(Key("o/a", "pkg.Other", 1), 5)  # nobody watches it: not kept
    b.update(K1, 3)
    b.update(K1, 7)
    b.update(K1, 6)
    b.update(K2, 1)
    assert sorted(await next_batch(b, ch)) == [(K1, 7), (K2, 1)]
    b.update(K1, 7)  # not above what was delivered
    b.update(K1, 2)
    b.update(K2, 2)
    assert await next_batch(b, ch) == [(K2, 2)]
    b.unsubscribe(ch.id, K2)
    b.update(K2, 9)
    b.update(K1, 8)
    assert await next_batch(b, ch) == [(K1, 8)]
    assert b.watched(K2) == 0


async def test_a_channel_ends_when_closed_or_expired() -> None:
    b = Broker(heartbeat=0)
    ch = b.new_channel("s", lifetime=0.1)
    b.subscribe(ch.id, K1)
    began = asyncio.get_running_loop().time()
    assert [x async for x in b.watch(ch)] == []
    assert asyncio.get_running_loop().time() - began >= 0.09
    other = b.new_channel("s")
    asyncio.get_running_loop().call_later(0.05, b.close, other)
    assert [x async for x in b.watch(other)] == []
    b.close(ch)
    assert b.num_channels == 0


async def test_heartbeat_key_is_shared() -> None:
    b = Broker(heartbeat=0.05)
    b.start()
    try:
        ch = b.new_channel("s")
        b.subscribe(ch.id, Key("x/y", "sys.Heartbeat30", 42))
        assert b.watched(HEARTBEAT_KEY) == 1
        [(key, offset)] = await next_batch(b, ch)
        assert key == HEARTBEAT_KEY and offset >= 1
        b.unsubscribe(ch.id, Key("o/a", "sys.Heartbeat30", 7))
        assert b.num_subscriptions == 0
    finally:
        await b.stop()


def test_batches_round_trip_and_refuse_garbage() -> None:
    updates = [(K1, 1), (Key("o/b", "p.Q", 2**63), 2**40)]
    assert decode_batch(encode_batch(updates)) == updates
    for bad in (b"", b"{}", b"[[1,2,3,4]]", b'[["a","b",1]]', b'[["a","b",1,true]]', b'[["a","b",1.5,1]]'):
        with pytest.raises(RelayError):
            decode_batch(bad)


async def test_relay_batches_while_a_send_is_in_flight() -> None:
    local = Broker(heartbeat=0)
    n = Notifications(local)
    sent: list[tuple[str, bytes]] = []
    gate = asyncio.Event()

    async def sender(peer: str, batch: bytes) -> bool:
        sent.append((peer, batch))
        await gate.wait()
        return peer != "bad"

    peers: Sequence[str] = ["p1", "bad"]
    n.peers = lambda: peers
    n.sender = sender
    ch = local.new_channel("s")
    local.subscribe(ch.id, K1)
    n.publish(K1, 1)  # to the local broker at once, and to the peers after this turn of the loop
    n.publish(K2, 1)
    assert await next_batch(local, ch) == [(K1, 1)]
    await spin()
    assert sorted((p, decode_batch(b)) for p, b in sent) == [("bad", [(K1, 1), (K2, 1)]), ("p1", [(K1, 1), (K2, 1)])]
    n.publish(K1, 2)  # while the requests are in flight: they wait, collapsed
    n.publish(K1, 3)
    n.publish(K2, 2)
    await spin()
    assert len(sent) == 2
    gate.set()
    await spin()
    assert sorted((p, decode_batch(b)) for p, b in sent[2:]) == [
        ("bad", [(K1, 3), (K2, 2)]),
        ("p1", [(K1, 3), (K2, 2)]),
    ]
    await spin()
    assert n.sent == 4 and n.failed == 2  # the "bad" peer refused both
    assert not n._sending and not n._pending
    # what a peer sends goes to the local broker only
    other = Notifications(Broker(heartbeat=0))
    c2 = other.broker.new_channel("s")
    other.broker.subscribe(c2.id, K2)
    assert other.take(encode_batch([(K2, 5)])) == 1
    assert await next_batch(other.broker, c2) == [(K2, 5)]
    assert other.received == 1 and not other.outbox
    await n.stop()


async def test_a_hung_peer_delays_nobody_and_a_departed_one_is_dropped() -> None:
    n = Notifications(Broker(heartbeat=0))
    got: list[tuple[str, list[tuple[Key, int]]]] = []
    hang = asyncio.Event()
    peers = ["slow", "fast"]

    async def sender(peer: str, batch: bytes) -> bool:
        got.append((peer, decode_batch(batch)))
        if peer == "slow":
            await hang.wait()
            return False
        return True

    n.peers = lambda: peers
    n.sender = sender
    for offset in (1, 2, 3):
        n.publish(K1, offset)
        await spin()
    assert [b for p, b in got if p == "fast"] == [[(K1, 1)], [(K1, 2)], [(K1, 3)]]
    assert [b for p, b in got if p == "slow"] == [[(K1, 1)]]  # its next waits: [(K1, 3)]
    peers.remove("slow")  # it left the cluster, and its request fails
    hang.set()
    await spin()
    assert [b for p, b in got if p == "slow"] == [[(K1, 1)]] and n.failed == 1
    assert not n._sending and not n._pending
    await n.stop()


async def spin() -> None:
    for _ in range(10):
        await asyncio.sleep(0)
