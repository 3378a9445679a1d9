"""Who sends a request, and the seam through which the identity layer decides what they may do.

The processors ask an :class:`Authorizer`; they do not know how roles and grants are
evaluated. The identity layer supplies the real one; ``AllowAll`` exists only for a server
started with ``--insecure-dev``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from voedger.appdef import OperationKind, QName, Workspace


@dataclass(frozen=True)
class Principal:
    roles: frozenset[QName] = frozenset()
    profile_wsid: int = 0
    login: str = ""
    is_system: bool = False
    device_id: int = 0
    extra: dict[str, object] = field(default_factory=dict, compare=False)


SYSTEM = Principal(roles=frozenset({QName("sys", "System")}), is_system=True)
ANONYMOUS = Principal(roles=frozenset({QName("sys", "Anonymous"), QName("sys", "Everyone")}))


class Authorizer(Protocol):
    def allowed(
        self,
        ws: Workspace,
        principal: Principal,
        op: OperationKind,
        resource: QName,
        fields: Sequence[str] = (),
    ) -> bool: ...


class AllowAll:
    """Lets everything through: development only, never the default."""

    def allowed(
        self,
        ws: Workspace,
        principal: Principal,
        op: OperationKind,
        resource: QName,
        fields: Sequence[str] = (),
    ) -> bool:
        return True
