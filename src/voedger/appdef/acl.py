"""Roles and ACL rules (GRANT/REVOKE); the auth layer evaluates them, this module only holds them."""

from __future__ import annotations

from dataclasses import dataclass

from voedger.appdef.base import Type
from voedger.appdef.filters import Filter
from voedger.appdef.kinds import ACL_OPERATIONS, OperationKind, PolicyKind, TypeKind
from voedger.appdef.qname import QName

__all__ = ["ACLRule", "Role"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Role(Type):
    """A role principals get. A published role exposes what it may do in the API schema."""

    kind: TypeKind = TypeKind.Role
    published: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLRule:
    """One GRANT (Allow) or REVOKE (Deny): operations on the types the filter selects, limited to
    ``fields`` when given, for the principal role, declared in ``workspace``.

    Role inheritance (``GRANT RoleA TO RoleB``) is an Allow rule with the Inherits operation and a
    filter naming RoleA: whoever has RoleB also has RoleA.
    """

    ops: frozenset[OperationKind]
    policy: PolicyKind
    filter: Filter
    principal: QName
    workspace: QName
    fields: tuple[str, ...] = ()
    comment: str = ""

    def __post_init__(self) -> None:
        if not self.ops:
            raise ValueError("an ACL rule needs an operation")
        if not self.ops <= ACL_OPERATIONS:
            raise ValueError(f"operations {sorted(self.ops - ACL_OPERATIONS)} are not ACL operations")
        if OperationKind.Inherits in self.ops and (self.policy is PolicyKind.Deny or len(self.ops) > 1):
            raise ValueError("role inheritance can only be granted, and alone")
        if self.fields and self.ops & {OperationKind.Execute, OperationKind.Inherits}:
            raise ValueError("fields can only restrict operations on tables and views")

    @property
    def is_inheritance(self) -> bool:
        return OperationKind.Inherits in self.ops

    def covers(self, op: OperationKind, t: Type) -> bool:
        """Does the rule speak about this operation on this type (whatever its fields)?"""
        return op in self.ops and self.filter.match(t)

    def __str__(self) -> str:
        verb = "GRANT" if self.policy is PolicyKind.Allow else "REVOKE"
        prep = "TO" if self.policy is PolicyKind.Allow else "FROM"
        ops = ", ".join(sorted(self.ops))
        cols = f"({', '.join(self.fields)})" if self.fields else ""
        return f"{verb} [{ops}]{cols} ON {self.filter} {prep} {self.principal}"
