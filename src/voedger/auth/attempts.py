"""Password guessing made slow: failed attempts counted by login and by client address.

Signing in (``registry.IssuePrincipalToken``) and changing a password (``registry.ChangePassword``)
both check a password, so both count against the same keys:

- a **login** (of an application) may fail ``login_free`` times; each failure after that locks it
  for twice as long as the one before (1 s, 2 s, 4 s, ... up to ``max_delay``);
- a **client address** may fail ``ip_free`` times (more: one address may serve many users), then
  the same growing delays;
- while a key is locked, an attempt is refused before its password is looked at: 429 with
  ``Retry-After``, the seconds left;
- a correct password clears its login's failures (not its address's: an attacker must not
  reset the count by signing in to an account of their own between guesses);
- a key is forgotten ``forget`` seconds after its last failure, and at most ``max_keys`` are
  kept (the oldest go first).

Changing a password is also limited to one failed attempt a minute per login (Voedger's
``ChangePasswordRate`` is one a minute per application partition: one stranger's wrong attempt
then blocked every user of the partition; here it blocks guessing at that login only). A correct
change is never held back by another login's attempts.

The counts are in memory, in the process that owns the login's registry workspace (every
attempt for a login goes there), and start empty when the process starts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

from voedger.auth.errors import RateLimitedError
from voedger.clock import SYSTEM_CLOCK, Clock

__all__ = ["PasswordGuard"]

_LOGIN: Final = "l"
_IP: Final = "i"
_CHANGE: Final = "c"
CHANGE_PERIOD: Final = 60.0
"""Seconds a failed password change locks further changes of the login."""
_MESSAGE: Final = "too many failed attempts; try again later"


@dataclass(slots=True)
class _Failures:
    count: int
    locked_until: float
    last: float


class PasswordGuard:
    """Failed password attempts by login and by client address (see the module's text)."""

    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        *,
        login_free: int = 5,
        ip_free: int = 20,
        max_delay: float = 900.0,
        forget: float = 3600.0,
        max_keys: int = 100_000,
    ) -> None:
        self.clock = clock
        self.login_free = login_free
        self.ip_free = ip_free
        self.max_delay = max_delay
        self.forget = forget
        self.max_keys = max_keys
        self._keys: dict[tuple[str, str], _Failures] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PasswordGuard({len(self._keys)} keys)"  # never the logins or addresses

    @staticmethod
    def _keys_of(app: str, login: str, ip: str, change: bool) -> list[tuple[str, str]]:
        keys = [(_LOGIN, f"{app}\0{login}")]
        if ip:
            keys.append((_IP, ip))
        if change:
            keys.append((_CHANGE, f"{app}\0{login}"))
        return keys

    def check(self, app: str, login: str, ip: str, *, change: bool = False) -> None:
        """Raise a 429 (``RateLimitedError``) if the login or the address is locked now."""
        now = self.clock.now()
        wait = 0.0
        with self._lock:
            for key in self._keys_of(app, login, ip, change):
                hit = self._keys.get(key)
                if hit is not None:
                    wait = max(wait, hit.locked_until - now)
        if wait > 0:
            raise RateLimitedError(_MESSAGE, wait)

    def failed(self, app: str, login: str, ip: str, *, change: bool = False) -> None:
        """A wrong password (or an unknown login): count it, lock whatever is due."""
        now = self.clock.now()
        with self._lock:
            if len(self._keys) >= self.max_keys:
                self._evict(now)
            for kind, key in self._keys_of(app, login, ip, change):
                hit = self._keys.get((kind, key))
                if hit is None or now - hit.last > self.forget:
                    hit = _Failures(0, 0.0, now)
                self._keys.pop((kind, key), None)
                self._keys[(kind, key)] = hit  # the most recent last: eviction takes the oldest
                hit.count += 1
                hit.last = now
                if kind == _CHANGE:
                    hit.locked_until = now + CHANGE_PERIOD
                    continue
                free = self.login_free if kind == _LOGIN else self.ip_free
                if hit.count > free:
                    hit.locked_until = now + min(self.max_delay, 2.0 ** min(hit.count - free - 1, 30))

    def succeeded(self, app: str, login: str) -> None:
        """The right password: the login's failures are forgiven."""
        with self._lock:
            self._keys.pop((_LOGIN, f"{app}\0{login}"), None)

    def _evict(self, now: float) -> None:
        stale = [k for k, v in self._keys.items() if now - v.last > self.forget and v.locked_until <= now]
        for key in stale:
            del self._keys[key]
        excess = len(self._keys) - self.max_keys * 9 // 10
        if excess > 0:
            for key in list(self._keys)[:excess]:
                del self._keys[key]
