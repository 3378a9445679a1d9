"""Partition ownership by lease: an even spread, graceful handover, takeover after a death or
a pause, and never two processes serving one partition. Several ``Ownership`` instances share
one in-memory storage (real time: a TTL of 1 s, ticks of 0.1 s)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from voedger.clock import SYSTEM_CLOCK
from voedger.storage import StorageError
from voedger.storage.mem import MemAppStorage
from voedger.vvm.leases import Key, Lease, LeaseStore, Member, assign
from voedger.vvm.ownership import Ownership

KEYS: list[Key] = [("test/app", p) for p in range(10)] + [("sys/registry", 0), ("sys/cluster", 0)]
TTL = 1
TICK = 0.1


class Serving:
    """Who serves what, across every fake host: asserts no partition is ever served twice."""

    def __init__(self) -> None:
        self.by_key: dict[Key, str] = {}
        self.lost: list[tuple[str, Key]] = []
        self.released: list[tuple[str, Key]] = []


PEERS: dict[str, Ownership] = {}
"""The ownership of each fake process by its address: what a wake-up reaches."""


class FakeHost:
    def __init__(self, name: str, serving: Serving) -> None:
        self.name = name
        self.serving = serving
        self.epochs = 0
        self.woken: list[str] = []

    async def wake_peers(self, addresses: Sequence[str]) -> None:
        for address in addresses:
            self.woken.append(address)
            peer = PEERS.get(address)
            if peer is not None:
                peer.wake()

    def partition_keys(self) -> Sequence[Key]:
        return KEYS

    async def acquired(self, lease: Lease, valid: Callable[[], bool]) -> int:
        holder = self.serving.by_key.get(lease.key)
        assert holder is None, f"{lease.key} served by {holder} and {self.name}"
        self.serving.by_key[lease.key] = self.name
        self.epochs += 1
        return self.epochs

    async def released(self, key: Key, lost: bool) -> None:
        if self.serving.by_key.get(key) == self.name:
            del self.serving.by_key[key]
        (self.serving.lost if lost else self.serving.released).append((self.name, key))


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[MemAppStorage, Serving, list[Ownership]]]:
    storage = MemAppStorage(SYSTEM_CLOCK)
    serving = Serving()
    started: list[Ownership] = []
    yield storage, serving, started
    for o in started:
        with contextlib.suppress(Exception):
            await o.stop()


async def _start(
    storage: MemAppStorage, serving: Serving, started: list[Ownership], name: str, tick: float = TICK, ttl: float = TTL
) -> Ownership:
    o = Ownership(LeaseStore(storage, ttl), f"http://{name}", FakeHost(name, serving), tick=tick)
    PEERS[o.me.address] = o
    await o.start()
    started.append(o)
    return o


async def _until(check: Callable[[], bool], timeout: float) -> float:
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, "not reached in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - began


def _die(o: Ownership, serving: Serving, started: list[Ownership]) -> None:
    """Death: the loops stop, nothing is released; the fake host forgets what it served."""
    o.crash()
    started.remove(o)
    name = o.host.name  # type: ignore[attr-defined]
    for key in [k for k, n in serving.by_key.items() if n == name]:
        del serving.by_key[key]


def _holder(o: Ownership, key: Key) -> tuple[str, int] | None:
    lease = o.table.get(key)
    return None if lease is None else (lease.owner, lease.epoch)


def _spread(serving: Serving) -> Counter[str]:
    return Counter(serving.by_key.values())


def test_assign_is_even_deterministic_and_stable() -> None:
    members = ["a", "b", "c"]
    first = assign(members, KEYS)
    assert first == assign(list(reversed(members)), list(reversed(KEYS)))
    assert sorted(Counter(first.values()).values()) == [4, 4, 4]
    after = assign(["a", "b", "c", "d"], KEYS)
    assert max(Counter(after.values()).values()) == 3
    moved = sum(1 for k in KEYS if first[k] != after[k])
    assert moved <= 6, "a joining member takes its share, not a reshuffle"


def test_assign_spreads_each_application_evenly() -> None:
    """The busy application's partitions never gather on some members while another holds the
    idle ones (seen in the cluster benchmark: one of three processes owned none of the ten)."""
    keys: list[Key] = (
        [("test/app", p) for p in range(10)] + [("sys/registry", p) for p in range(10)] + [("sys/cluster", 0)]
    )
    for trial in range(200):
        members = [f"m{trial}-{i}" for i in range(3)]
        placed = assign(members, keys)
        assert set(placed) == set(keys)
        for app in ("test/app", "sys/registry"):
            spread = Counter(placed[k] for k in keys if k[0] == app)
            assert sorted(spread[m] for m in members) == [3, 3, 4], (app, spread)
        assert sorted(Counter(placed.values()).values()) == [7, 7, 7]
    for trial in range(200):  # and the test's own keys: 10 of one application, one of two others
        members = [f"k{trial}-{i}" for i in range(3)]
        assert sorted(Counter(assign(members, KEYS).values()).values()) == [4, 4, 4]
    four = [f"n-{i}" for i in range(4)]
    assert max(Counter(v for k, v in assign(four, keys).items() if k[0] == "test/app").values()) == 3


async def test_three_processes_share_the_partitions_evenly(
    cluster: tuple[MemAppStorage, Serving, list[Ownership]],
) -> None:
    storage, serving, started = cluster
    for name in "abc":
        await _start(storage, serving, started, name)
    await _until(lambda: len(serving.by_key) == len(KEYS) and sorted(_spread(serving).values()) == [4, 4, 4], 5)
    # Every process routes every partition to the same owner.
    await asyncio.sleep(3 * TICK)
    for o in started:
        assert {k: lease.owner for k, lease in o.table.items()} == {
            k: next(x.me.id for x in started if x.host.name == serving.by_key[k])  # type: ignore[attr-defined]
            for k in KEYS
        }


async def test_a_process_that_stops_hands_its_partitions_over(
    cluster: tuple[MemAppStorage, Serving, list[Ownership]],
) -> None:
    storage, serving, started = cluster
    a, _b, _c = [await _start(storage, serving, started, n) for n in "abc"]
    await _until(lambda: len(_spread(serving)) == 3 and len(serving.by_key) == len(KEYS), 5)
    mine = {k for k, n in serving.by_key.items() if n == "a"}
    before = len(serving.released)
    await a.stop()
    started.remove(a)
    took = await _until(lambda: len(serving.by_key) == len(KEYS) and "a" not in _spread(serving), 5)
    assert took < 1.0, f"graceful handover took {took:.2f} s"
    assert {k for n, k in serving.released[before:] if n == "a"} == mine
    assert not serving.lost


async def test_a_stopping_process_wakes_the_others_so_they_take_over_before_their_tick(
    cluster: tuple[MemAppStorage, Serving, list[Ownership]],
) -> None:
    storage, serving, started = cluster
    tick = 3.0  # long: a takeover within it can only come from the wake-up
    a, b, c = [await _start(storage, serving, started, n, tick=tick, ttl=30) for n in "abc"]
    await _until(lambda: len(_spread(serving)) == 3 and len(serving.by_key) == len(KEYS), 4 * tick)
    await asyncio.sleep(tick)  # every process has read every member
    mine = {k for k, n in serving.by_key.items() if n == "a"}
    began = time.monotonic()
    await a.stop()
    took = await _until(lambda: all(serving.by_key.get(k) in ("b", "c") for k in mine), tick)
    assert took < tick / 2, f"the others took {took:.2f} s: they waited for their tick"
    assert time.monotonic() - began < tick
    assert set(a.host.woken) == {b.me.address, c.me.address}  # type: ignore[attr-defined]
    await a.stop()  # a second stop does nothing


async def test_partitions_of_a_dead_process_serve_elsewhere_after_the_ttl(
    cluster: tuple[MemAppStorage, Serving, list[Ownership]],
) -> None:
    storage, serving, started = cluster
    a, _b, _c = [await _start(storage, serving, started, n) for n in "abc"]
    await _until(lambda: len(_spread(serving)) == 3 and len(serving.by_key) == len(KEYS), 5)
    _die(a, serving, started)
    took = await _until(lambda: len(serving.by_key) == len(KEYS), 5)
    assert TTL * 0.5 < took < TTL + 2.0


async def test_a_settled_cluster_reads_no_lease_and_a_dead_members_partitions_at_the_next_tick(
    cluster: tuple[MemAppStorage, Serving, list[Ownership]],
) -> None:
    """Settled, a process reads the members every tick and no lease (the members' rows say which
    they hold, and that is what was read); a member that goes changes the members, and the next
    tick reads the leases and takes its partitions over."""
    storage, serving, started = cluster
    a, b, c = [await _start(storage, serving, started, n) for n in "abc"]
    await _until(lambda: len(_spread(serving)) == 3 and len(serving.by_key) == len(KEYS), 5)
    await asyncio.sleep(4 * TICK)  # the wake-ups of the last handovers, the rows' new epochs
    before = [o.stats.lease_reads for o in (b, c)]
    await asyncio.sleep(2 * TTL)  # 20 ticks
    settled = [o.stats.lease_reads - n for o, n in zip((b, c), before, strict=True)]
    assert all(n <= 1 for n in settled), settled  # not 20 (every tick), nor 2-3 (once a TTL)
    rows = {m.id: m.holds for m in await b.store.members()}
    assert rows[a.me.id] == tuple(sorted((k[0], k[1], o.lease.epoch) for k, o in a.owned.items()))
    _die(a, serving, started)
    took = await _until(lambda: len(serving.by_key) == len(KEYS), 5)
    # a's member row lasts up to a TTL after its last renewal; then one tick reads and takes over
    assert took < TTL + 3 * TICK, f"took {took:.2f} s"
    names = {o.me.id: o.host.name for o in (b, c)}  # type: ignore[attr-defined]
    # and both route every partition to its owner within a few ticks (the other's acquisitions
    # were read at the tick after they were made)
    await _until(
        lambda: all({k: names.get(lease.owner) for k, lease in o.table.items()} == serving.by_key for o in (b, c)),
        3 * TICK,
    )


async def test_a_paused_process_drops_everything_before_the_others_take_over(
    cluster: tuple[MemAppStorage, Serving, list[Ownership]],
) -> None:
    storage, serving, started = cluster
    a, _b = [await _start(storage, serving, started, n) for n in "ab"]
    await _until(lambda: len(_spread(serving)) == 2 and len(serving.by_key) == len(KEYS), 5)
    held = {k for k, n in serving.by_key.items() if n == "a"}
    a.crash()  # paused: no renewals
    # Its validity runs out on its own clock before its rows expire in storage.
    valid_until = max(o.deadline.until for o in a.owned.values())
    for o in a.owned.values():
        assert not o.deadline.valid() or time.monotonic() < valid_until
    await asyncio.sleep(TTL + 0.5)
    assert all(not o.deadline.valid() for o in a.owned.values())
    # Resumed: the first round lets go of everything, as lost.
    serving_before = dict(serving.by_key)
    for key in held:
        if serving_before.get(key) == "a":
            del serving.by_key[key]  # the others may acquire meanwhile; the fake host checks overlap
    await a.balance()
    assert {k for n, k in serving.lost if n == "a"} == held
    await _until(lambda: len(serving.by_key) == len(KEYS), 5)


async def test_members_renew_by_plain_writes_and_one_that_left_is_not_listed() -> None:
    store = LeaseStore(MemAppStorage(SYSTEM_CLOCK), TTL)
    a, b = Member("a", "http://a"), Member("b", "http://b")
    assert await store.join(a) and await store.join(b)
    renewed = await store.renew_member(a)
    assert renewed is not None and renewed.n == 1
    assert sorted((m.id, m.n) for m in await store.members()) == [("a", 1), ("b", 0)]
    await store.leave(b)
    assert [m.id for m in await store.members()] == ["a"]


async def test_a_process_draining_slowly_stays_left_while_it_renews(
    cluster: tuple[MemAppStorage, Serving, list[Ownership]],
) -> None:
    """Renewals go on while a stopping process drains its partitions; they must not list it
    as a live member again, or the others would leave its partitions alone (they belong to
    it) until the leases have been free for a whole TTL."""
    storage, serving, started = cluster
    ttl = 30  # a takeover by "free for longer than a TTL" cannot happen within the test
    a, b, c = [await _start(storage, serving, started, n, ttl=ttl) for n in "abc"]
    await _until(lambda: len(_spread(serving)) == 3 and len(serving.by_key) == len(KEYS), 5)
    await asyncio.sleep(3 * TICK)
    mine = sorted(k for k, n in serving.by_key.items() if n == "a")
    slow = mine[0]
    host = a.host
    assert isinstance(host, FakeHost)
    released = host.released

    async def slow_release(key: Key, lost: bool) -> None:
        if key == slow:
            await asyncio.sleep(10 * TICK)  # a drain over several renewal ticks
        await released(key, lost)

    host.released = slow_release  # type: ignore[method-assign]
    stopping = asyncio.create_task(a.stop())
    await asyncio.sleep(5 * TICK)  # renewals ran while the slow partition drains
    assert a.me.id not in {m.id for m in await b.store.members()}, "a stopping process is listed as live again"
    took = await _until(lambda: all(serving.by_key.get(k) in ("b", "c") for k in mine), 5)
    assert took < 2.0
    await stopping
    assert {m.id for m in await c.store.members()} == {b.me.id, c.me.id}


async def test_leases_are_renewed_every_two_ticks_and_a_failed_renewal_again_at_the_next(
    cluster: tuple[MemAppStorage, Serving, list[Ownership]],
) -> None:
    """Each renewal is a Paxos round in storage: a lease is renewed every ``renew_every`` (two
    ticks at a TTL of 6 s), not at every tick; one that fails is tried again at the next tick,
    and the lease is kept."""
    storage, serving, started = cluster
    tick, ttl = 0.1, 6
    o = await _start(storage, serving, started, "a", tick=tick, ttl=ttl)
    assert o.renew_every == 2 * tick
    await _until(lambda: len(serving.by_key) == len(KEYS), 5)
    store = o.store
    renew = store.renew
    asked: list[tuple[float, Key]] = []
    failing: set[Key] = set()

    async def counted(lease: Lease, epoch: int | None = None) -> Lease | None:
        asked.append((time.monotonic(), lease.key))
        if lease.key in failing:
            failing.discard(lease.key)
            raise StorageError("timed out")
        return await renew(lease, epoch)

    store.renew = counted  # type: ignore[method-assign]
    await asyncio.sleep(20 * tick)
    per_key = Counter(k for _, k in asked)
    assert set(per_key) == set(KEYS)
    assert all(7 <= n <= 12 for n in per_key.values()), per_key  # about 10 in 20 ticks, not 20
    key = KEYS[0]
    failing.add(key)
    asked.clear()
    await asyncio.sleep(8 * tick)
    times = [t for t, k in asked if k == key]
    assert len(times) >= 4  # the failed one, then again a tick later, then every two ticks
    assert times[1] - times[0] < 1.6 * tick, [round(b - a, 2) for a, b in itertools.pairwise(times)]
    assert serving.by_key[key] == "a" and not serving.lost


async def test_a_lease_that_moves_unannounced_is_read_at_the_tick_after_its_holders_row_says_so(
    cluster: tuple[MemAppStorage, Serving, list[Ownership]],
) -> None:
    """A lease lost without a wake-up or a change of members (a renewal refused, say): its
    holder's row stops listing it, so the others read the leases until it is taken again and
    learn its new epoch at once, not at their next periodic read (``REREAD_TTLS`` TTLs)."""
    storage, serving, started = cluster
    a, b, c = [await _start(storage, serving, started, n) for n in "abc"]
    await _until(lambda: len(_spread(serving)) == 3 and len(serving.by_key) == len(KEYS), 5)
    await asyncio.sleep(4 * TICK)
    key = min(k for k, n in serving.by_key.items() if n == "a")
    old = a.owned[key].lease.epoch
    reads = b.stats.lease_reads
    await a._lose(key, "a test")
    # Nobody woke anyone: the row lasts a TTL, then its partition's member takes it again.
    await _until(lambda: key in a.owned and a.owned[key].ready.is_set(), TTL + 1.0)
    served = time.monotonic()
    new = a.owned[key].lease.epoch
    assert new != old
    took = await _until(lambda: all(_holder(o, key) == (a.me.id, new) for o in (b, c)), 1.0)
    assert took < 5 * TICK, f"the others learnt the new epoch {time.monotonic() - served:.2f} s after it served"
    assert b.stats.lease_reads > reads
