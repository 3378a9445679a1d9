"""How extensions call a command of another workspace or application (Voedger's
``sys.FederationCommand`` storage and ``federation.Func``).

The processors only know this protocol. The server supplies the implementation: today one that
calls this process's own partitions as the System principal; a federation of clusters supplies
one that goes over HTTP with system tokens, and extensions do not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class FederationReply:
    status: int
    message: str = ""
    new_ids: dict[str, int] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    wlog_offset: int = 0


class Federation(Protocol):
    """Also, in every server: ``knows_cluster(cluster_id) -> bool``, whether the federation has
    that cluster (``State.cluster_known``); test doubles may leave it out."""

    async def command(self, app: str, wsid: int, command: str, body: dict[str, Any]) -> FederationReply: ...
