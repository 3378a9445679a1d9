"""How extensions call a command or a query of another workspace or application (Voedger's
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

    def rows(self) -> list[list[Any]]:
        """The rows of a query's answer (API v1: the first element of each section's elements)."""
        out: list[list[Any]] = []
        for section in (self.result or {}).get("sections") or []:
            for element in section.get("elements") or []:
                if element and element[0] and isinstance(element[0][0], list):
                    out.append(element[0][0])
        return out


class Federation(Protocol):
    """Also, in every server: ``knows_cluster(cluster_id) -> bool``, whether the federation has
    that cluster (``State.cluster_known``); test doubles may leave it out."""

    async def command(self, app: str, wsid: int, command: str, body: dict[str, Any]) -> FederationReply: ...

    async def query(self, app: str, wsid: int, query: str, body: dict[str, Any]) -> FederationReply:
        """Run an API v1 query (``q.pkg.Name``) as the System principal; ``result`` is the
        answer's JSON (``{"sections": [...]}``) when the status is 200."""
        ...
