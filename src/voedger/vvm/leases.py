"""Membership and partition leases of a cluster's server processes, kept in shared storage.

Rows of the ``sys/vvm`` storage, all with a TTL:

- a *member* row per live process (its ID, the address others forward requests to, and the
  leases it holds), renewed by its process alone with plain writes;
- a *lease* row per (application, partition): which member owns it, under which epoch, renewed
  by compare-and-swap.

A process that stops renewing (killed, paused, cut off) loses both when the TTL runs out, and
the others take its partitions over. A process also tracks, on its monotonic clock, until when
each lease is surely still its own (the renewal's start plus the TTL less a margin): after a
pause it knows it may have lost everything before it asks storage, and writes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import orjson

from voedger.storage import AppStorage
from voedger.structs.keys import app_state_key

MEMBERS = app_state_key("members", b"")
"""One storage partition: the members are listed by reading it."""

Key = tuple[str, int]
"""(application, partition)."""

Claim = tuple[str, int, int]
"""(application, partition, epoch): a lease as its holder says it holds it."""


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    address: str
    """Where other processes forward requests to (``http://host:port``)."""
    pid: int = 0
    since: float = 0.0
    n: int = 0
    """Renewals so far."""
    left: bool = False
    """The process left: its row stays until its TTL runs out, marked so (a row is written by
    its member alone, never deleted: see ``LeaseStore``)."""
    holds: tuple[Claim, ...] | None = ()
    """The leases the process held when it wrote its row, with their epochs: the others read
    the leases only when these disagree with what they last read (``Ownership``). None: a
    process of a version that did not say (the others then read the leases once a TTL)."""

    def encode(self) -> bytes:
        d: dict[str, object] = {"id": self.id, "address": self.address, "pid": self.pid, "since": self.since}
        d["n"] = self.n
        if self.left:
            d["left"] = True
        if self.holds is not None:
            d["holds"] = [list(c) for c in self.holds]
        return orjson.dumps(d)

    @staticmethod
    def decode(raw: bytes) -> Member:
        d = orjson.loads(raw)
        holds = d.get("holds")
        return Member(
            str(d["id"]),
            str(d["address"]),
            int(d.get("pid", 0)),
            float(d.get("since", 0.0)),
            int(d.get("n", 0)),
            bool(d.get("left", False)),
            None if holds is None else tuple((str(a), int(p), int(e)) for a, p, e in holds),
        )


@dataclass(frozen=True, slots=True)
class Lease:
    app: str
    partition: int
    owner: str
    address: str
    epoch: int = 0
    since: float = 0.0
    n: int = 0
    """Renewals so far (see ``Member.n``)."""

    @property
    def key(self) -> Key:
        return (self.app, self.partition)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "app": self.app,
                "partition": self.partition,
                "owner": self.owner,
                "address": self.address,
                "epoch": self.epoch,
                "since": self.since,
                "n": self.n,
            }
        )

    @staticmethod
    def decode(raw: bytes) -> Lease:
        d = orjson.loads(raw)
        return Lease(
            str(d["app"]),
            int(d["partition"]),
            str(d["owner"]),
            str(d["address"]),
            int(d.get("epoch", 0)),
            float(d.get("since", 0.0)),
            int(d.get("n", 0)),
        )


def lease_key(key: Key) -> tuple[bytes, bytes]:
    """A storage partition per lease: lightweight transactions on one partition queue behind
    each other (Paxos), so leases renewed every tick must not share one."""
    return app_state_key("lease", f"{key[0]}#{key[1]}".encode()), b""


class LeaseStore:
    """The rows, read and written with the storage's conditional writes."""

    def __init__(self, storage: AppStorage, ttl: int) -> None:
        self.storage = storage
        self.ttl = ttl

    # Member rows share one storage partition (they are listed by reading it) and each is
    # written by its own process alone: plain writes with a TTL. Compare-and-swap renewals of
    # several processes, one Paxos round each per second in that partition, collided there
    # (measured: "CAS operation timed out after N contention retries"), memberships lapsed and
    # partitions moved back and forth. A lapse is told on the monotonic clock instead
    # (``Ownership``), and the leases, which do decide ownership, stay conditional.

    async def join(self, member: Member) -> bool:
        await self.storage.put_ttl(MEMBERS, member.id.encode(), member.encode(), self.ttl)
        return True

    async def renew_member(self, member: Member) -> Member | None:
        """The member as renewed (a new row value every time)."""
        new = replace(member, n=member.n + 1)
        await self.storage.put_ttl(MEMBERS, member.id.encode(), new.encode(), self.ttl)
        return new

    async def leave(self, member: Member) -> None:
        """Marked as left at once; the row goes when its TTL runs out."""
        await self.storage.put_ttl(MEMBERS, member.id.encode(), replace(member, left=True).encode(), self.ttl)

    async def members(self) -> list[Member]:
        """The live members (not those that left)."""
        found = [Member.decode(v) async for _, v in self.storage.ttl_read(MEMBERS)]
        return [m for m in found if not m.left]

    async def leases(self, keys: Iterable[Key]) -> dict[Key, Lease]:
        wanted = list(keys)
        found = await asyncio.gather(*(self.lease(key) for key in wanted))
        return {key: lease for key, lease in zip(wanted, found, strict=True) if lease is not None}

    async def lease(self, key: Key) -> Lease | None:
        raw = await self.storage.ttl_get(*lease_key(key))
        return Lease.decode(raw) if raw is not None else None

    async def acquire(self, lease: Lease) -> bool:
        return await self.storage.insert_if_not_exists(*lease_key(lease.key), lease.encode(), self.ttl)

    async def renew(self, lease: Lease, epoch: int | None = None) -> Lease | None:
        """The lease as renewed (with ``epoch``, if given), or None if it is not ``lease`` any more."""
        new = replace(lease, n=lease.n + 1, epoch=lease.epoch if epoch is None else epoch)
        ok = await self.storage.compare_and_swap(*lease_key(lease.key), lease.encode(), new.encode(), self.ttl)
        return new if ok else None

    async def release(self, lease: Lease) -> bool:
        return await self.storage.compare_and_delete(*lease_key(lease.key), lease.encode())


def _score(member: str, key: Key) -> int:
    digest = hashlib.blake2b(f"{member}|{key[0]}|{key[1]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def assign(members: Sequence[str], keys: Iterable[Key]) -> dict[Key, str]:
    """Where each partition belongs: rendezvous hashing with bounded loads.

    Every process computes the same answer from the same members. Each member gets
    ``n // members`` of the ``n`` partitions of each application, or one more, so that every
    application's load is spread evenly (a bound over all keys alone once gave one of three
    processes seven partitions of the idle ``sys/registry`` and none of the busy application's),
    and, where the first bound leaves a choice, at most ``ceil(keys / members)`` in all. A
    change of membership moves few partitions (a key keeps its best-scoring member while that
    one has room).
    """
    ordered = sorted(keys)
    if not members:
        return {}
    cap = math.ceil(len(ordered) / len(members))
    # Per application: ``base`` each, and ``extra`` members one more (10 over 3: 4, 3, 3).
    sizes = Counter(k[0] for k in ordered)
    shares = {app: divmod(count, len(members)) for app, count in sizes.items()}
    extras: Counter[str] = Counter()
    load = dict.fromkeys(members, 0)
    app_load: Counter[tuple[str, str]] = Counter()
    out: dict[Key, str] = {}

    def has_room(member: str, app: str) -> bool:
        base, extra = shares[app]
        held = app_load[member, app]
        return held < base or (held == base and extras[app] < extra)

    # The larger applications first, the small ones then fill in where room is left; within an
    # application, keys whose best choice is strongest go first, so that the bounds displace few.
    ranked = {k: sorted(members, key=lambda m, k=k: _score(m, k), reverse=True) for k in ordered}  # type: ignore[misc]
    for key in sorted(ordered, key=lambda k: (-sizes[k[0]], k[0], -_score(ranked[k][0], k), k)):
        app = key[0]
        # Never empty: the shares of an application add up to its partitions.
        room = [m for m in ranked[key] if has_room(m, app)]
        member = next((m for m in room if load[m] < cap), None) or min(room, key=lambda m: load[m])
        if app_load[member, app] == shares[app][0]:
            extras[app] += 1
        out[key] = member
        load[member] += 1
        app_load[member, app] += 1
    return out


class Deadline:
    """Until when a lease is surely ours, on the monotonic clock (which runs on while the
    process is stopped, so a resumed process sees at once that it may have lost it)."""

    __slots__ = ("until",)

    def __init__(self) -> None:
        self.until = 0.0

    def renewed(self, asked_at: float, ttl: int, margin: float) -> None:
        self.until = asked_at + ttl - margin

    def valid(self) -> bool:
        return time.monotonic() < self.until
