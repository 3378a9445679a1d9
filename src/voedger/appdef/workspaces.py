"""Workspaces: the units of data and of ACL; every record and event lives in one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from voedger.appdef.acl import ACLRule
from voedger.appdef.base import Type
from voedger.appdef.kinds import TypeKind
from voedger.appdef.qname import SYS_PACKAGE, QName

if TYPE_CHECKING:
    from voedger.appdef.app import AppDef

__all__ = ["SYS_WORKSPACE", "Workspace"]

SYS_WORKSPACE: Final = QName(SYS_PACKAGE, "Workspace")
"""The abstract workspace every other workspace inherits."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace(Type):
    """A workspace kind.

    ``descriptor`` is the singleton CDoc describing a workspace of this kind; its QName is the
    WSKind clients pass when they create one. Abstract workspaces have none and only serve as
    ancestors. ``ancestors`` are the direct ones, ``sys.Workspace`` included (except for itself).
    ``local_types`` are the types declared in the workspace's body or in ALTER WORKSPACE.
    ``acl`` holds its own rules, GRANTs before REVOKEs, in declaration order.
    """

    kind: TypeKind = TypeKind.Workspace
    abstract: bool = False
    alterable: bool = False
    pool: bool = False
    descriptor: QName | None = None
    ancestors: tuple[QName, ...] = ()
    used_workspaces: tuple[QName, ...] = ()
    local_types: tuple[QName, ...] = ()
    acl: tuple[ACLRule, ...] = ()
    _app: AppDef | None = field(default=None, init=False, repr=False, compare=False)
    _visible: dict[QName, Type] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def app(self) -> AppDef:
        if self._app is None:
            raise RuntimeError(f"workspace {self.qname} is not part of an application yet")
        return self._app

    def bind(self, app: AppDef) -> None:
        """Called once by :class:`AppDef` so that the workspace can resolve its types."""
        if self._app is not None and self._app is not app:
            raise RuntimeError(f"workspace {self.qname} already belongs to an application")
        object.__setattr__(self, "_app", app)

    def lineage(self) -> tuple[Workspace, ...]:
        """This workspace and all its ancestors, farthest first (``sys.Workspace`` leads)."""
        seen: dict[QName, Workspace] = {}
        self._visit(self, seen)
        return tuple(seen.values())

    def _visit(self, ws: Workspace, seen: dict[QName, Workspace]) -> None:
        """Ancestors first. A method, not a recursive closure, which would be a reference cycle."""
        if ws.qname in seen:
            return
        for a in ws.ancestors:
            self._visit(self.app.workspace(a), seen)
        seen[ws.qname] = ws

    def inherits(self, ancestor: QName | str) -> bool:
        """True for the workspace itself and for each of its ancestors, however far."""
        q = ancestor if isinstance(ancestor, QName) else QName.parse(ancestor)
        return any(ws.qname == q for ws in self.lineage())

    def _visible_types(self) -> dict[QName, Type]:
        if not self._visible:
            found: dict[QName, Type] = {}
            for ws in self.lineage():
                for q in ws.local_types:
                    found[q] = self.app.type(q)
                for q in ws.used_workspaces:
                    found[q] = self.app.type(q)
            self._visible.update(sorted(found.items()))
        return self._visible

    def types(self, kind: TypeKind | None = None) -> tuple[Type, ...]:
        """Every type usable in a workspace of this kind: its own and its ancestors', sorted by
        QName, plus the workspaces it USEs (but not their types)."""
        return tuple(t for t in self._visible_types().values() if kind is None or t.kind is kind)

    def type(self, name: QName | str) -> Type | None:
        """A type usable in this workspace, or None."""
        q = name if isinstance(name, QName) else QName.parse(name)
        return self._visible_types().get(q)

    def has_type(self, name: QName | str) -> bool:
        return self.type(name) is not None

    def rules(self) -> Iterator[ACLRule]:
        """The ACL rules in force here: ancestors' first, then its own, as the evaluator scans them."""
        for ws in self.lineage():
            yield from ws.acl

    def expand_roles(self, roles: Iterable[QName]) -> frozenset[QName]:
        """The given roles plus every role they inherit here (``GRANT RoleA TO RoleB`` gives
        RoleB's holders RoleA), however indirectly: e.g. sys.ProfileOwner brings
        sys.WorkspaceOwner, which brings sys.BLOBUploader."""
        inherited: dict[QName, set[QName]] = {}
        for r in self.rules():
            if r.is_inheritance:
                inherited.setdefault(r.principal, set()).update(r.filter.qnames)
        found = set(roles)
        stack = list(found)
        while stack:
            for role in inherited.get(stack.pop(), ()):
                if role not in found:
                    found.add(role)
                    stack.append(role)
        return frozenset(found)
