"""Which partitions this process owns: joining the cluster, taking a fair share of the
partitions by lease, renewing, handing over gracefully, and letting go of what it lost.

Every ``tick`` the process renews its membership and the leases due (every ``renew_every``,
two ticks), reads the members and, while anything moves, the leases; it computes where every
partition belongs (``leases.assign``, the same answer in every process) and then releases the
partitions that belong to another live member (graceful handover: the partition finishes what it
accepted first) and acquires the free ones that belong to it (or that have been free for longer
than a TTL, whoever they belong to).

The leases are read at a tick only when something may have moved: the members changed, a peer
woke this process, a partition is free, held by a member that is gone or not where it belongs, or
the leases the members say they hold (each member row lists them, with their epochs) are not the
leases as last read. In a settled cluster a process reads one storage partition a tick (the
members), not one per lease (three idle processes with 21 partitions read 63 leases a second,
one by one; reading them only while something moves cut what the idle cluster cost Cassandra by
about a quarter: docs/benchmarks.md, 2026-12-07), and reads the leases once every
``REREAD_TTLS`` TTLs all the same (once a TTL while a member of an older version, whose row
does not list its leases, is live).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from voedger.storage import StorageError
from voedger.vvm.leases import Claim, Deadline, Key, Lease, LeaseStore, Member, assign

log = logging.getLogger("voedger.cluster")

REREAD_TTLS = 10
"""In a settled cluster, the leases are read again after this many TTLs even if nothing says
they moved (the members' rows list them: see the module's docstring)."""

DEFAULT_TTL = 6
"""Seconds a lease lives without renewal: a dead process's partitions serve again elsewhere
within about this long plus a tick and a recovery."""


class Host(Protocol):
    """The process side: starts and stops the partitions the leases give and take."""

    def partition_keys(self) -> Sequence[Key]: ...

    async def acquired(self, lease: Lease, valid: Callable[[], bool]) -> int:
        """Start serving the partition; returns its epoch. Raises if it cannot."""

    async def released(self, key: Key, lost: bool) -> None:
        """Stop serving it: drain what it accepted (``lost``: the lease ran out, so fail it)."""

    async def wake_peers(self, addresses: Sequence[str]) -> None:
        """Tell the processes at ``addresses`` to look at the leases now (a partition was let
        go): best effort, never raises. The others find out at their next tick anyway."""


@dataclass
class OwnershipStats:
    acquired: int = 0
    lost: int = 0
    released: int = 0
    failed_starts: int = 0
    lease_reads: int = 0
    """Times the leases were read (a settled cluster reads them once a TTL)."""


@dataclass
class _Owned:
    lease: Lease
    deadline: Deadline = field(default_factory=Deadline)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    renewing: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Serialises the compare-and-swaps of the lease row (a renewal, the epoch's update)."""


class Ownership:
    def __init__(self, store: LeaseStore, address: str, host: Host, tick: float | None = None) -> None:
        self.store = store
        self.host = host
        self.ttl = store.ttl
        self.tick = tick if tick is not None else min(1.0, self.ttl / 5)
        self.margin = min(max(1.0, self.ttl * 0.3), self.ttl / 2)
        window = self.ttl - self.margin
        self.renew_every = min(2 * self.tick, window / 2)
        """Seconds between the renewals of a lease (each a Paxos round in storage): a lease is
        renewed once less than ``window - renew_every`` of its validity is left, so a renewal
        that fails is tried again at every tick until the lease is renewed or runs out."""
        self._renew_below = window - self.renew_every + self.tick / 2
        self.me = Member(uuid.uuid4().hex[:12], address)
        self._member_deadline = Deadline()
        self.owned: dict[Key, _Owned] = {}
        self.table: dict[Key, Lease] = {}
        """The leases as last read: where requests for partitions of others go."""
        self.members: list[Member] = []
        self.target: dict[Key, str] = {}
        """Where each partition belongs, as last computed."""
        self._free_since: dict[Key, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._releasing: dict[Key, asyncio.Task[None]] = {}
        self._waking: set[asyncio.Task[None]] = set()
        self._refreshing: dict[Key, asyncio.Future[Lease | None]] = {}
        self._stopping = False
        self._stopped = False
        self.started = False
        self.joined = False
        """``start`` has returned: this process carries its share (or gave up waiting for it)."""
        self._wake = asyncio.Event()
        self._woken = True
        """A peer asked this process to look at the leases (or nothing was read yet)."""
        self._read_members: frozenset[tuple[str, str]] = frozenset()
        """The live members as they were when the leases were last read."""
        self._leases_read_at = -math.inf
        self.stats = OwnershipStats()

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Join, take a first share, and serve it; renewals run from here on, in a task of
        their own, so that a slow start (recovering a partition) never lets a lease lapse."""
        self.started = True
        await self._join()
        await self.balance()
        self._tasks = [
            asyncio.create_task(self._loop(self.renew), name="cluster-renewals"),
            asyncio.create_task(self._loop(self.rebalance, self._wake), name="cluster-balance"),
        ]
        await self.converged(max(10.0, 3 * self.ttl))
        self.joined = True

    @property
    def serving(self) -> bool:
        """Joined and not leaving: what a health check reports as ready."""
        return self.joined and not self._stopping

    async def converged(self, timeout: float) -> bool:
        """Wait (at most ``timeout``) until this process serves every partition that belongs to
        it: a process is ready once it carries its share, not while partitions still move to it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mine = [k for k, m in self.target.items() if m == self.me.id]
            if mine and all(k in self.owned and self.owned[k].ready.is_set() for k in mine):
                return True
            await asyncio.sleep(self.tick / 2)
        log.warning("cluster: %s does not serve its whole share yet after %.0f s", self.me.id, timeout)
        return False

    async def settled(self) -> None:
        """Wait until the partitions acquired so far serve."""
        for owned in list(self.owned.values()):
            if owned.task is not None:
                with contextlib.suppress(Exception):
                    await owned.task

    def wake(self) -> None:
        """Look at the members and leases now rather than at the next tick (another process
        let a partition go, or left)."""
        self._wake.set()

    async def stop(self) -> None:
        """Leave: hand every partition over (drained), then release its lease. The others
        are told at once (``Host.wake_peers``), so that they take the partitions over without
        waiting for their next tick. A second call does nothing."""
        if self._stopped:
            return
        self._stopped = self._stopping = True
        balance = self._tasks[1:]
        for task in balance:
            task.cancel()
        await asyncio.gather(*balance, return_exceptions=True)
        # Marked as left for good: the renewals that go on during the drain write this member
        # as it is, and must not list it as live again (the others would leave its partitions
        # alone, since they belong to it, until the leases had been free for a whole TTL).
        self.me = replace(self.me, left=True)
        with contextlib.suppress(StorageError):
            await self.store.leave(self.me)
        self._wake_peers()
        # Renewals go on while the partitions drain: a long drain must not lose them.
        await asyncio.gather(*self._releasing.values(), return_exceptions=True)
        await asyncio.gather(*(self._release(key) for key in list(self.owned)), return_exceptions=True)
        for task in self._tasks[:1]:
            task.cancel()
        await asyncio.gather(*self._tasks[:1], return_exceptions=True)
        self._tasks = []
        await asyncio.gather(*self._waking, return_exceptions=True)

    def crash(self) -> None:
        """Stop renewing and balancing at once, letting go of nothing (tests: a killed or
        paused process)."""
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        for owned in self.owned.values():
            if owned.renewing is not None:
                owned.renewing.cancel()

    async def _loop(self, step: Callable[[], Awaitable[None]], wake: asyncio.Event | None = None) -> None:
        while True:
            if wake is None:
                await asyncio.sleep(self.tick)
            else:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that comes as the event is set (a wake-up while the process stops).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.tick):
                        await wake.wait()
                wake.clear()
            try:
                await step()
            except StorageError as exc:
                log.warning("cluster: %s failed: %s", step.__name__, exc)
            except Exception:  # pragma: no cover - a bug; the loop must go on
                log.exception("cluster: %s failed", step.__name__)

    async def _join(self) -> None:
        """Write this process's member row: a new one, or its own again after it lapsed."""
        self.me = replace(self.me, pid=_pid(), since=time.time(), n=0, holds=self._claims())
        asked = time.monotonic()
        await self.store.join(self.me)
        self._member_deadline.renewed(asked, self.ttl, self.margin)
        log.info("cluster: joined as %s (%s)", self.me.id, self.me.address)

    # --- one round --------------------------------------------------------------------------

    async def balance(self) -> None:
        """One whole round: renewals, then the share."""
        await self.renew()
        await self.rebalance()

    async def renew(self) -> None:
        """Renew the membership and every lease; let go of what may be lost.

        The membership only tells the others where partitions belong; ownership is the
        leases' alone, each with its own deadline. A lapsed membership is taken up again."""
        if not self._member_deadline.valid():
            log.warning("cluster: membership of %s may have lapsed (a pause?); re-joining", self.me.id)
            await self._join()
        else:
            asked = time.monotonic()
            renewed = await self.store.renew_member(replace(self.me, holds=self._claims()))
            if renewed is not None:
                self.me = renewed
                self._member_deadline.renewed(asked, self.ttl, self.margin)
            else:
                log.warning("cluster: membership of %s lapsed; re-joining", self.me.id)
                await self._join()
        await self._renew_leases()

    async def rebalance(self) -> None:
        """Read the members and leases; hand over what belongs to another member, take what
        is free and belongs here (or has been free for longer than a TTL)."""
        if self._stopping:
            return
        self.members = await self.store.members()
        live = {m.id for m in self.members} | {self.me.id}
        target = self.target = assign(sorted(live), self.host.partition_keys())
        now = time.monotonic()
        members = frozenset((m.id, m.address) for m in self.members)
        if self._leases_due(members, live, now):
            self._woken = False
            self.table = await self.store.leases(self.host.partition_keys())
            self._read_members = members
            self._leases_read_at = now
            self.stats.lease_reads += 1
        for key, owned in list(self.owned.items()):
            if target.get(key, self.me.id) != self.me.id and owned.ready.is_set() and key not in self._releasing:
                # Graceful handover to the member it belongs to, in the background: a drain
                # takes as long as the partition's accepted commands.
                task = asyncio.create_task(self._release(key), name=f"release-{key[0]}-{key[1]}")
                self._releasing[key] = task
                task.add_done_callback(lambda _, key=key: self._releasing.pop(key, None))  # type: ignore[misc]
        wanted = []
        for key in self.host.partition_keys():
            if key in self.table or key in self.owned or key in self._releasing:
                self._free_since.pop(key, None)
                continue
            since = self._free_since.setdefault(key, now)
            if target.get(key) == self.me.id or now - since > self.ttl:
                wanted.append(key)
        # At once, not one after another: each is a lightweight transaction of its own, and on a
        # loaded cluster one takes up to a second (measured: a process taking six partitions
        # back after a pause served the last one 6 s after the first was handed to it).
        results = await asyncio.gather(*(self._acquire(key) for key in wanted), return_exceptions=True)
        for key, result in zip(wanted, results, strict=True):
            if isinstance(result, StorageError):
                log.warning("cluster: acquiring %s#%d failed: %s", key[0], key[1], result)
            elif isinstance(result, BaseException):
                raise result

    def _claims(self) -> tuple[Claim, ...]:
        """The leases this process holds, for its member row."""
        return tuple(sorted((k[0], k[1], o.lease.epoch) for k, o in self.owned.items()))

    def _leases_due(self, members: frozenset[tuple[str, str]], live: set[str], now: float) -> bool:
        """Whether the leases must be read now (see the module's docstring)."""
        if self._woken or members != self._read_members:
            return True
        others = [m for m in self.members if m.id != self.me.id]
        every = self.ttl if any(m.holds is None for m in others) else REREAD_TTLS * self.ttl
        if now - self._leases_read_at >= every:
            return True
        for key in self.host.partition_keys():
            lease = self.table.get(key)
            if lease is None or lease.owner not in live or self.target.get(key) != lease.owner:
                return True
        # What the members say they hold (this one: what it holds) against what was read: a
        # lease that moved, or a new epoch, shows here at the tick after its holder renewed its
        # member row.
        return not self.claims_agree()

    def claims(self) -> list[tuple[Key, tuple[str, int]]]:
        """Who holds which lease under which epoch, as the members' rows say (this process: as
        it holds them now); a lease claimed twice (a handover not yet in both rows) is listed
        twice."""
        mine = [((a, p), (self.me.id, e)) for a, p, e in self._claims()]
        others = [m for m in self.members if m.id != self.me.id]
        return mine + [((a, p), (m.id, e)) for m in others for a, p, e in m.holds or ()]

    def claims_agree(self) -> bool:
        """Whether the members' rows say what the leases said when last read."""
        claims = self.claims()
        read = {k: (lease.owner, lease.epoch) for k, lease in self.table.items()}
        return dict(claims) == read and len(claims) == len(read)

    def leases_read_ago(self) -> float:
        """Seconds since the leases were last read (infinite before the first read)."""
        return time.monotonic() - self._leases_read_at

    async def _renew_leases(self) -> None:
        """Let go of the leases whose deadline passed; renew each other one that is due in a task
        of its own (each is its own storage partition), so that a slow renewal delays no other."""
        for key, owned in list(self.owned.items()):
            if not owned.deadline.valid():
                await self._lose(key, "its lease may have run out")
            elif owned.deadline.until - time.monotonic() >= self._renew_below:
                continue  # renewed less than renew_every ago
            elif owned.renewing is None or owned.renewing.done():
                owned.renewing = asyncio.create_task(self._renew(key, owned), name=f"renew-{key[0]}-{key[1]}")

    async def _renew(self, key: Key, owned: _Owned) -> None:
        try:
            async with owned.lock:
                asked = time.monotonic()
                renewed = await self.store.renew(owned.lease)
                if renewed is not None:
                    owned.lease = renewed
        except StorageError as exc:
            log.warning("cluster: renewing %s#%d failed: %s", key[0], key[1], exc)
            return
        if renewed is not None:
            owned.deadline.renewed(asked, self.ttl, self.margin)
        elif self.owned.get(key) is owned:
            await self._lose(key, "its lease is another's now")

    async def _acquire(self, key: Key) -> None:
        lease = Lease(key[0], key[1], self.me.id, self.me.address, 0, time.time())
        asked = time.monotonic()
        if not await self.store.acquire(lease):
            return
        owned = _Owned(lease)
        owned.deadline.renewed(asked, self.ttl, self.margin)
        self.owned[key] = owned
        self.table[key] = lease
        self.stats.acquired += 1
        owned.task = asyncio.create_task(self._start(key, owned), name=f"acquire-{key[0]}-{key[1]}")

    async def _start(self, key: Key, owned: _Owned) -> None:
        try:
            epoch = await self.host.acquired(owned.lease, owned.deadline.valid)
        except Exception as exc:
            self.stats.failed_starts += 1
            log.warning("cluster: could not start %s#%d: %s", key[0], key[1], exc)
            if self.owned.get(key) is owned:
                del self.owned[key]
                with contextlib.suppress(Exception):
                    await self.host.released(key, lost=True)
                with contextlib.suppress(StorageError):
                    await self.store.release(owned.lease)
            return
        with contextlib.suppress(StorageError):
            async with owned.lock:
                asked = time.monotonic()
                renewed = await self.store.renew(owned.lease, epoch)
                if renewed is not None:
                    owned.lease = renewed
                    owned.deadline.renewed(asked, self.ttl, self.margin)
                    self.table[key] = renewed
        owned.ready.set()
        log.info("cluster: serving %s#%d, epoch %d", key[0], key[1], epoch)

    async def _release(self, key: Key) -> None:
        owned = self.owned.get(key)
        if owned is None:
            return
        if owned.task is not None and not owned.task.done():
            with contextlib.suppress(Exception):
                await owned.task
        await self.host.released(key, lost=False)
        self.owned.pop(key, None)
        self.table.pop(key, None)
        self.stats.released += 1
        try:
            async with owned.lock:
                await self.store.release(owned.lease)
        except StorageError as exc:
            log.warning("cluster: releasing %s#%d failed (it runs out by itself): %s", key[0], key[1], exc)
        else:
            self._wake_peers()
        log.info("cluster: handed %s#%d over", key[0], key[1])

    def _wake_peers(self) -> None:
        addresses = sorted({m.address for m in self.members if m.id != self.me.id and m.address != self.me.address})
        if addresses:
            task = asyncio.create_task(self.host.wake_peers(addresses), name="cluster-wake-peers")
            self._waking.add(task)
            task.add_done_callback(self._waking.discard)

    async def _lose(self, key: Key, why: str) -> None:
        owned = self.owned.pop(key, None)
        if owned is None:
            return
        self.table.pop(key, None)
        self.stats.lost += 1
        log.warning("cluster: lost %s#%d: %s", key[0], key[1], why)
        if owned.task is not None and not owned.task.done():
            owned.task.cancel()
        await self.host.released(key, lost=True)

    # --- routing ----------------------------------------------------------------------------

    def local(self, key: Key) -> _Owned | None:
        return self.owned.get(key)

    def owner(self, key: Key) -> Lease | None:
        return self.table.get(key)

    async def refresh(self, key: Key) -> Lease | None:
        """Read one lease again (a forwarded request found the owner moved); requests that
        ask at the same time share one read."""
        reading = self._refreshing.get(key)
        if reading is None:
            reading = self._refreshing[key] = asyncio.ensure_future(self._read_lease(key))
            reading.add_done_callback(lambda _: self._refreshing.pop(key, None))
        return await asyncio.shield(reading)

    async def _read_lease(self, key: Key) -> Lease | None:
        lease = await self.store.lease(key)
        if lease is None:
            self.table.pop(key, None)
        else:
            self.table[key] = lease
        return lease


def _pid() -> int:
    import os

    return os.getpid()
