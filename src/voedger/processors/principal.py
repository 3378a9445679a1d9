"""Who sends a request, and the seam through which the identity layer decides what they may do.

The processors ask an :class:`Authorizer`; they do not know how roles and grants are
evaluated. The identity layer supplies the real one; ``AllowAll`` exists only for a server
started with ``--insecure-dev``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from voedger.appdef import OperationKind, QName, Workspace


@dataclass(frozen=True)
class Principal:
    roles: frozenset[QName] = frozenset()
    profile_wsid: int = 0
    login: str = ""
    is_system: bool = False
    device_id: int = 0
    subject_kind: int = 1
    """1 for a user, 2 for a device."""
    extra: dict[str, object] = field(default_factory=dict, compare=False)


class PrincipalMemo:
    """Principals by the identity of the authenticated caller the edge passed (it hands the same
    object for the same valid token), with the caller kept to check that identity; starts over
    when ``limit`` are held. A principal passed through as the caller is not remembered."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._known: dict[int, tuple[object, Principal]] = {}

    def get(self, caller: object) -> Principal | None:
        hit = self._known.get(id(caller))
        return hit[1] if hit is not None and hit[0] is caller else None

    def remember(self, caller: object, principal: Principal) -> bool:
        """Keep ``principal`` for ``caller``; True if the memo was full and started over."""
        if isinstance(caller, Principal):
            return False
        full = len(self._known) >= self.limit
        if full:
            self._known.clear()
        self._known[id(caller)] = (caller, principal)
        return full

    def clear(self) -> None:
        self._known.clear()

    def __len__(self) -> int:
        return len(self._known)


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


class PrincipalResolver(Protocol):
    """Turns what the edge authenticated (the *caller*: a validated token, or None) into the
    principal of one workspace: roles depend on the workspace's descriptor and its
    ``sys.Subject`` records, which only the partition reads consistently."""

    def subject_logins(self, caller: object) -> Sequence[str]:
        """Logins whose ``sys.Subject`` records the principal needs."""
        ...

    def principal(
        self,
        caller: object,
        wsid: int,
        ws: Workspace,
        descriptor: Mapping[str, Any] | None,
        subjects: Sequence[Mapping[str, Any]],
    ) -> Principal: ...


class DirectResolver:
    """The caller already is a principal (the platform's own calls, ``--insecure-dev``)."""

    def subject_logins(self, caller: object) -> Sequence[str]:
        return ()

    def principal(
        self,
        caller: object,
        wsid: int,
        ws: Workspace,
        descriptor: Mapping[str, Any] | None,
        subjects: Sequence[Mapping[str, Any]],
    ) -> Principal:
        if not isinstance(caller, Principal):
            raise TypeError("no principal resolver is configured for authenticated callers")
        return caller


class RateLimiter(Protocol):
    """RATE and LIMIT of the application: raises a 429 SysError (with Retry-After) when a call
    is over its limit."""

    def check(
        self,
        resource: QName,
        op: OperationKind = OperationKind.Execute,
        *,
        partition: int = 0,
        wsid: int = 0,
        login: str = "",
        ip: str = "",
    ) -> None: ...

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
        """Forget what earlier calls took from the limits ``check`` looks at for the same
        caller (a verification code found right)."""
        ...
