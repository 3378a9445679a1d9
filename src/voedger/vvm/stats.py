"""What a process's processors have done: plain counters, read by the metrics service.

Counted in the VVM, where every command and read of an application passes (from the router,
from another workspace, from a job), with nothing on the hot path but additions; the metrics
service turns them into Voedger's ``voedger_*`` series when it is scraped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voedger.processors.tally import Tally


@dataclass(slots=True)
class ProcessorStats:
    """One application's commands and reads in this process since it started."""

    commands: Tally = field(default_factory=Tally)
    """From a command's arrival at its partition to its durable result."""
    queries: Tally = field(default_factory=Tally)


@dataclass(slots=True)
class ForwardStats:
    """Requests this process forwarded to another process of its cluster (the partition's owner)."""

    count: int = 0
    seconds: float = 0.0
    """Time spent waiting for the owners' answers."""
    retried: int = 0
    """Forwards that found the owner gone or moved and went to the lease's new holder."""
    unavailable: int = 0
    """Requests answered 503 because no owner could be reached."""
    reads_here: int = 0
    """Reads of another process's partitions served here, from storage, instead of forwarded."""
    reads_at_owner: int = 0
    """Reads of another process's partitions answered by their owner (not in ``count``)."""
    read_hops_failed: int = 0
    """Reads sent to the owner that it did not answer in time, or could not take: served here."""


@dataclass(slots=True)
class HttpStats:
    """HTTP requests this process answered, by route family and status (``voedger_http_*``)."""

    requests: dict[tuple[str, int], int] = field(default_factory=dict)
    """(route family, status) -> requests answered."""
    listeners: list[Any] = field(default_factory=list)
    """The HTTP servers of the API (``router.http.HttpServer``), for their connections."""

    def connections(self) -> tuple[int, int]:
        """(connections open now, connections refused so far) of the API's listeners."""
        return sum(len(s.connections) for s in self.listeners), sum(s.refused for s in self.listeners)

    def count(self, family: str, status: int) -> None:
        key = (family, status)
        self.requests[key] = self.requests.get(key, 0) + 1


@dataclass(slots=True)
class FederationStats:
    """Calls this process made to applications through the federation, by target (``local`` for
    calls served in this process, else the host and port of the federation's URL): how many, how
    many failed (a 5xx answer after the retries, or no answer), and how long they took."""

    calls: dict[str, Tally] = field(default_factory=dict)

    def target(self, name: str) -> Tally:
        tally = self.calls.get(name)
        if tally is None:
            tally = self.calls[name] = Tally()
        return tally
