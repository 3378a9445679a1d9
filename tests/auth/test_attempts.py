"""PasswordGuard on its own: delays, forgetting, and a bounded number of keys."""

from __future__ import annotations

import pytest

from voedger.auth.attempts import PasswordGuard
from voedger.auth.errors import RateLimitedError
from voedger.clock import ManualClock


def test_delays_double_up_to_the_maximum_and_are_forgotten() -> None:
    clock = ManualClock(1000.0)
    guard = PasswordGuard(clock, login_free=2, max_delay=5.0, forget=100.0)
    waits = []
    for _ in range(6):
        guard.check("a/b", "x", "")
        guard.failed("a/b", "x", "")
        try:
            guard.check("a/b", "x", "")
            waits.append(0)
        except RateLimitedError as exc:
            waits.append(exc.retry_after)
            assert exc.status == 429 and exc.headers == {"Retry-After": str(exc.retry_after)}
            clock.advance(exc.retry_after)
    assert waits == [0, 0, 1, 2, 4, 5]
    guard.check("a/b", "y", "")  # another login is not held
    guard.check("c/d", "x", "")  # nor the same login of another application
    clock.advance(101)
    guard.failed("a/b", "x", "")
    guard.check("a/b", "x", "")  # forgotten: a free failure again


def test_the_keys_kept_are_bounded() -> None:
    clock = ManualClock(0.0)
    guard = PasswordGuard(clock, max_keys=100)
    for i in range(1000):
        guard.failed("a/b", f"login{i}", f"10.0.{i // 256}.{i % 256}")
    assert len(guard._keys) <= 100
    assert "login" not in repr(guard)


def test_a_success_forgives_the_login_not_the_address() -> None:
    guard = PasswordGuard(ManualClock(0.0), login_free=1, ip_free=1)
    guard.failed("a/b", "x", "1.2.3.4")
    guard.succeeded("a/b", "x")
    guard.failed("a/b", "y", "1.2.3.4")
    with pytest.raises(RateLimitedError):
        guard.check("a/b", "z", "1.2.3.4")
