"""RATE and LIMIT: how often a command, query, table or view may be used, as Voedger counts it.

``RATE r n PER unit [PER WORKSPACE|APP PARTITION] [PER SUBJECT|IP]`` is a token bucket: it holds
at most ``n`` tokens, starts full, and refills at ``n`` per period (one every ``period / n``). A
``LIMIT l ON <resources> WITH RATE r`` takes one token of ``r`` per operation on a matched resource:

- ``ON COMMAND x`` / ``ON QUERY x`` / ``ON TABLE x`` / ``ON VIEW x`` limits that resource;
- ``ON EACH COMMAND|QUERY|... [WITH TAG t]`` gives every matched resource its own bucket;
- ``ON ALL COMMANDS|QUERIES|... [WITH TAG t]`` makes all matched resources share one bucket.

Buckets are separate per application partition (Voedger keeps one limiter per partition) and,
as the rate declares, per workspace, per subject (login) and per IP address. When several limits
match, a token is taken from each bucket or from none. Limits are application-wide: a LIMIT
declared in one workspace counts its resources wherever they are used.

A refused request gets a 429 whose ``Retry-After`` is the time until the exhausted bucket holds a
token again (whole seconds, at least 1; Voedger sends ``ceil(period / n)``, which is never less).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Final

from voedger.appdef import AppDef, Limit, LimitOption, OperationKind, QName, Rate, RateScope, TypeKind
from voedger.appdef.kinds import LIMITABLE_OPERATIONS
from voedger.auth.errors import RateLimitedError
from voedger.clock import SYSTEM_CLOCK, Clock

__all__ = ["Limiter", "RateDecision"]

_EPSILON: Final = 1e-9
_GC_EVERY: Final = 4096


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The limiter's answer. ``retry_after`` is in seconds (0.0 when allowed); ``limit`` names the
    first exceeded limit."""

    allowed: bool
    retry_after: float = 0.0
    limit: QName | None = None

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def retry_after_seconds(self) -> int:
        """``Retry-After`` as the header carries it: whole seconds, at least 1 (0 when allowed)."""
        return 0 if self.allowed else max(1, math.ceil(self.retry_after - _EPSILON))


ALLOWED = RateDecision(True)


_BucketKey = tuple[QName, int, int, str, str, QName | None]
"""(limit, partition, workspace, login, IP, resource) with 0/"" / None where the rate does not count per it."""


class _Bucket:
    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = float(burst)
        self.rate = rate  # tokens per second
        self.tokens = float(burst)
        self.last = now

    def level(self, now: float) -> float:
        elapsed = max(0.0, now - self.last)
        return min(self.burst, self.tokens + elapsed * self.rate)

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0.0 if one is)."""
        missing = 1.0 - self.level(now)
        return 0.0 if missing <= _EPSILON else missing / self.rate

    def take(self, now: float) -> None:
        self.tokens = self.level(now) - 1.0
        self.last = max(now, self.last)

    def give_back(self, now: float) -> None:
        self.tokens = min(self.burst, self.level(now) + 1.0)
        self.last = max(now, self.last)


@dataclass(frozen=True, slots=True)
class _BoundLimit:
    limit: Limit
    rate: Rate
    per_workspace: bool
    per_user: bool
    per_ip: bool
    each: bool


class Limiter:
    """The limits of one application (all its partitions), with an injectable clock. Thread-safe.

    Call :meth:`take` (or :meth:`check`) once per operation: on EXECUTE of a command or query, and
    on each INSERT/UPDATE/ACTIVATE/DEACTIVATE/SELECT of a table or view when limits name them.
    """

    def __init__(self, app: AppDef, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[_BucketKey, _Bucket] = {}
        self._takes = 0
        bound = [self._bind(app, lim) for lim in app.limits()]
        self._limits: dict[QName, tuple[_BoundLimit, ...]] = {}
        if bound:
            limitable = [t for t in app.types() if t.kind.is_record or t.kind.is_function or t.kind is TypeKind.View]
            for t in limitable:
                matched = tuple(b for b in bound if b.limit.filter.match(t))
                if matched:
                    self._limits[t.qname] = matched

    @staticmethod
    def _bind(app: AppDef, lim: Limit) -> _BoundLimit:
        rate = app.rate(lim.rate)
        return _BoundLimit(
            limit=lim,
            rate=rate,
            per_workspace=RateScope.Workspace in rate.scopes,
            per_user=RateScope.User in rate.scopes,
            per_ip=RateScope.IP in rate.scopes,
            each=lim.option is LimitOption.EACH,
        )

    def resources(self) -> tuple[QName, ...]:
        """The resources some limit applies to."""
        return tuple(self._limits)

    def limits_of(self, resource: QName, op: OperationKind | None = None) -> tuple[Limit, ...]:
        """The limits that count ``op`` (any operation if None) on ``resource``."""
        return tuple(b.limit for b in self._limits.get(resource, ()) if op is None or op in b.limit.ops)

    def take(
        self,
        resource: QName,
        op: OperationKind = OperationKind.Execute,
        *,
        partition: int = 0,
        wsid: int = 0,
        login: str = "",
        ip: str = "",
    ) -> RateDecision:
        """Take one token from every bucket that limits ``op`` on ``resource`` for this partition,
        workspace, login and IP; all or none. Allowed when no limit applies."""
        if op not in LIMITABLE_OPERATIONS:
            return ALLOWED
        bound = self._bound(resource, op)
        if not bound:
            return ALLOWED
        keys = [self._key(b, resource, partition, wsid, login, ip) for b in bound]
        with self._lock:
            now = self._clock.now()
            buckets = [self._bucket(k, b, now) for k, b in zip(keys, bound, strict=True)]
            waits = [bucket.wait(now) for bucket in buckets]
            exceeded = [i for i, w in enumerate(waits) if w > 0.0]
            if exceeded:
                return RateDecision(False, max(waits), bound[exceeded[0]].limit.qname)
            for bucket in buckets:
                bucket.take(now)
            self._takes += 1
            if self._takes % _GC_EVERY == 0:
                self._collect(now)
        return ALLOWED

    def check(
        self,
        resource: QName,
        op: OperationKind = OperationKind.Execute,
        *,
        partition: int = 0,
        wsid: int = 0,
        login: str = "",
        ip: str = "",
    ) -> None:
        """:meth:`take`, raising :class:`RateLimitedError` (429 with ``Retry-After``) when refused."""
        d = self.take(resource, op, partition=partition, wsid=wsid, login=login, ip=ip)
        if not d.allowed:
            raise RateLimitedError(
                f"too many requests: {op} on {resource} is limited by {d.limit}",
                d.retry_after,
                limit=str(d.limit),
            )

    def give_back(
        self,
        resource: QName,
        op: OperationKind = OperationKind.Execute,
        *,
        partition: int = 0,
        wsid: int = 0,
        login: str = "",
        ip: str = "",
    ) -> None:
        """Return the token :meth:`take` took, e.g. when the request failed before it did any work."""
        bound = self._bound(resource, op)
        with self._lock:
            now = self._clock.now()
            for b in bound:
                bucket = self._buckets.get(self._key(b, resource, partition, wsid, login, ip))
                if bucket is not None:
                    bucket.give_back(now)

    def reset(
        self,
        resource: QName,
        op: OperationKind = OperationKind.Execute,
        *,
        partition: int = 0,
        wsid: int = 0,
        login: str = "",
        ip: str = "",
    ) -> None:
        """Fill the buckets of ``op`` on ``resource`` again (Voedger's ``ResetLimits``, e.g. after
        a successful sign-in)."""
        bound = self._bound(resource, op)
        with self._lock:
            for b in bound:
                self._buckets.pop(self._key(b, resource, partition, wsid, login, ip), None)

    # --- internals

    def _bound(self, resource: QName, op: OperationKind) -> list[_BoundLimit]:
        """The limits that count ``op`` on ``resource``."""
        return [b for b in self._limits.get(resource, ()) if op in b.limit.ops]

    @staticmethod
    def _key(b: _BoundLimit, resource: QName, partition: int, wsid: int, login: str, ip: str) -> _BucketKey:
        return (
            b.limit.qname,
            partition,
            wsid if b.per_workspace else 0,
            login if b.per_user else "",
            ip if b.per_ip else "",
            resource if b.each else None,
        )

    def _bucket(self, key: _BucketKey, b: _BoundLimit, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            period = b.rate.period.total_seconds()
            bucket = _Bucket(b.rate.count, b.rate.count / period, now)
            self._buckets[key] = bucket
        return bucket

    def _collect(self, now: float) -> None:
        """Drop full buckets: a new one would be the same, and per-IP keys would pile up."""
        full = [k for k, bucket in self._buckets.items() if bucket.level(now) >= bucket.burst - _EPSILON]
        for k in full:
            del self._buckets[k]

    @property
    def bucket_count(self) -> int:
        """Buckets held (for tests and metrics)."""
        return len(self._buckets)
