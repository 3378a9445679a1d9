"""What a process's processors have done: plain counters, read by the metrics service.

Counted in the VVM, where every command and read of an application passes (from the router,
from another workspace, from a job), with nothing on the hot path but additions; the metrics
service turns them into Voedger's ``voedger_*`` series when it is scraped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ProcessorStats:
    """One application's commands and reads in this process since it started."""

    commands: int = 0
    command_errors: int = 0
    """Commands answered with an error (any status)."""
    command_seconds: float = 0.0
    """Time from a command's arrival at its partition to its durable result, summed."""
    queries: int = 0
    query_errors: int = 0
    query_seconds: float = 0.0
