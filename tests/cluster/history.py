"""What the load generator sent and what came back: the history the checker verifies.

A *request* is one logical command a client wanted done; an *attempt* is one HTTP request for
it, each with a token of its own. Retrying under the same token would make a lost answer and a
duplicate indistinguishable, so a retry always carries a new token, and an attempt whose fate
is unknown stays in the history as "unknown": the checker then allows its token at most once.

Every attempt is classified when its answer (or its failure) arrives:

- ``acked``: a 2xx; the command must be in the log exactly once;
- ``refused``: a definite "not applied": a 4xx (except 408), or a connection that was never
  established; the command must not be in the log;
- ``unknown``: anything else (5xx, 408, a broken connection, a timeout), and an attempt still
  in flight when the history was read (``pending``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

ACKED = "acked"
REFUSED = "refused"
UNKNOWN = "unknown"
PENDING = "pending"
"""In flight: no answer yet. The checker treats it as unknown."""

OUTCOMES = (ACKED, REFUSED, UNKNOWN, PENDING)

NOT_CONNECTED = "not-connected"
"""``Attempt.error`` of a request that never reached a server (connection refused)."""


def classify(status: int | None, error: str | None = None) -> str:
    """The outcome of an answer with HTTP ``status``, or of a failure ``error`` (no status).

    Only a refusal the client can be sure of counts as refused: a 4xx says the command was
    judged and not applied, and a connection never made carried nothing. A 503 does not: a
    partition answers 503 when its storage write failed, and on Cassandra such a write may
    still land (a logged batch is applied eventually).
    """
    if status is not None:
        if 200 <= status < 300:
            return ACKED
        if 400 <= status < 500 and status != 408:
            return REFUSED
        return UNKNOWN
    return REFUSED if error == NOT_CONNECTED else UNKNOWN


@dataclass(slots=True)
class Attempt:
    """One HTTP request of the load and its answer; times are seconds since the history began."""

    request: int
    """The logical request it belongs to (retries share it)."""
    attempt: int
    """1 for the first try, 2 for the first retry, ..."""
    token: str
    """The LoadItem's Token: unique over the whole history."""
    target: str
    """The server process it was sent to (its harness name)."""
    wsid: int
    started: float
    ended: float | None = None
    status: int | None = None
    outcome: str = PENDING
    error: str | None = None
    """The exception's class name (or ``NOT_CONNECTED``) when no answer came."""
    retry_after: float | None = None
    """The answer's ``Retry-After`` in seconds, if it had one."""
    new_id: int | None = None
    """The ID the server gave the new LoadItem (``NewIDs["1"]``) in a 2xx."""
    wlog_offset: int | None = None
    """``CurrentWLogOffset`` of a 2xx: the event's offset in its workspace's WLog."""
    message: str | None = None
    """The start of a non-2xx answer's body, for reading failures."""


@dataclass
class History:
    """Every attempt of a load run, in the order they were started."""

    attempts: list[Attempt] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` at the start: attempt times count from it."""
    marks: dict[str, float] = field(default_factory=dict)
    """Named moments (a fault injected, a process back), on the same clock as the attempts."""
    load_started: float | None = None
    load_ended: float | None = None

    def now(self) -> float:
        return time.monotonic() - self.began

    def mark(self, name: str) -> float:
        """Note that ``name`` happens now (e.g. "kill p1"); returns the moment."""
        moment = self.now()
        self.marks[name] = moment
        return moment

    def add(self, attempt: Attempt) -> Attempt:
        self.attempts.append(attempt)
        return attempt

    # --- views of the history ---------------------------------------------------------------

    def requests(self) -> dict[int, list[Attempt]]:
        """The attempts of each logical request, in order."""
        out: dict[int, list[Attempt]] = {}
        for a in self.attempts:
            out.setdefault(a.request, []).append(a)
        return out

    def failed_requests(self) -> list[list[Attempt]]:
        """Requests none of whose attempts got a 2xx (after all their retries)."""
        return [tries for tries in self.requests().values() if not any(a.outcome == ACKED for a in tries)]

    def acked(self) -> list[Attempt]:
        return [a for a in self.attempts if a.outcome == ACKED]

    def by_outcome(self) -> Counter[str]:
        return Counter(a.outcome for a in self.attempts)

    def by_status(self) -> Counter[str]:
        """Attempts by HTTP status, or by the error's name when no answer came."""
        return Counter(str(a.status) if a.status is not None else (a.error or a.outcome) for a in self.attempts)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "marks": self.marks,
                "load_started": self.load_started,
                "load_ended": self.load_ended,
                "attempts": [asdict(a) for a in self.attempts],
            },
            option=orjson.OPT_INDENT_2,
        )

    def save(self, path: Path) -> Path:
        """Write the history as JSON (kept next to the server logs for a post-mortem)."""
        path.write_bytes(self.to_json())
        return path

    @staticmethod
    def from_json(data: bytes) -> History:
        raw: dict[str, Any] = orjson.loads(data)
        history = History(marks=raw["marks"], load_started=raw["load_started"], load_ended=raw["load_ended"])
        history.attempts = [Attempt(**a) for a in raw["attempts"]]
        return history
