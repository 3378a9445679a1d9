"""ACL evaluation: may these roles perform this operation on this resource in this workspace?

The algorithm is Voedger's ``pkg/appdef/acl``:

- ``sys.System`` may do anything;
- the roles are expanded through ``GRANT role TO role`` of the workspace and its ancestors;
- the rules of the workspace's lineage are scanned ancestors first, each workspace's GRANTs
  before its REVOKEs, and every rule that speaks about the operation, matches the resource and
  names one of the roles takes effect in turn, so the last one wins;
- on a resource with fields (tables, views), a GRANT adds its columns (all fields if it names
  none; a column-level SELECT also brings the ``sys.*`` fields), a REVOKE of columns removes them
  (the operation stays allowed while any field is left), a full REVOKE denies; every requested
  field must end up allowed;
- ``ALL TABLES`` without a tag covers the tables declared in the rule's workspace, ``WITH TAG``
  any type carrying the tag (that is :meth:`Filter.match`).

The operation must apply to the resource (EXECUTE to a command or query, SELECT/INSERT/UPDATE to a
table or view, ACTIVATE/DEACTIVATE to a record) and the resource and the requested fields must
exist in the workspace; otherwise the answer is a denial that says why.

Decisions are memoised per (application, workspace, roles, operation, resource): the application
definition is immutable, so they never go stale.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from voedger.appdef import (
    SYS_IS_ACTIVE,
    Command,
    OperationKind,
    PolicyKind,
    QName,
    Query,
    Structure,
    Type,
    View,
    Workspace,
)
from voedger.appdef.fields import Field
from voedger.auth.errors import AccessDeniedError
from voedger.processors.principal import Principal

__all__ = ["ACL", "Decision"]

_ROLE_SYSTEM: Final = QName("sys", "System")
_FIELD_OPS: Final = frozenset({OperationKind.Select, OperationKind.Insert, OperationKind.Update})
_ACTIVATION_OPS: Final = frozenset({OperationKind.Activate, OperationKind.Deactivate})


@dataclass(frozen=True, slots=True)
class Decision:
    """An ACL answer with its reasons: for a 403 message, a log line or a test."""

    allowed: bool
    workspace: QName
    op: OperationKind
    resource: QName
    roles: frozenset[QName]
    """The roles evaluated, inheritance expanded."""
    allowed_fields: frozenset[str] | None = None
    """On a resource with fields: those allowed (None: all of them, or no fields apply)."""
    denied_field: str | None = None
    """The first requested field that is not allowed, when that is why."""
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def message(self) -> str:
        """The client-facing text of a denial: operation, resource (and field), workspace."""
        what = f"field {self.denied_field} of {self.resource}" if self.denied_field else str(self.resource)
        return f"{self.op} on {what} is forbidden in workspace {self.workspace}"


@dataclass(frozen=True, slots=True)
class _Verdict:
    """A memoised answer for (workspace, roles, op, resource), before requested fields are checked."""

    allowed: bool
    roles: frozenset[QName]
    fields: frozenset[str] | None  # allowed fields; None = all (or not applicable)
    known_fields: frozenset[str] | None  # every field of the resource; None = it has none
    reason: str


class ACL:
    """The :class:`~voedger.processors.principal.Authorizer` that reads the application's ACL.

    One instance may serve several applications: answers are memoised per application and
    workspace kind. ``cache_size`` bounds the memo (it is cleared when full). Thread-safe.
    """

    def __init__(self, *, cache_size: int = 100_000) -> None:
        self._cache_size = cache_size
        self._verdicts: dict[tuple[object, QName, frozenset[QName], OperationKind, QName], _Verdict] = {}
        self._expanded: dict[tuple[object, QName, frozenset[QName]], frozenset[QName]] = {}
        self._lock = threading.Lock()

    # --- the Authorizer protocol

    def allowed(
        self,
        ws: Workspace,
        principal: Principal,
        op: OperationKind,
        resource: QName,
        fields: Sequence[str] = (),
    ) -> bool:
        """True if the principal may perform ``op`` on ``resource`` (and on each of ``fields``)
        in a workspace of kind ``ws``."""
        if principal.is_system:
            return True
        v = self._verdict(ws, principal.roles, op, resource)
        if not v.allowed:
            return False
        if fields and v.fields is not None:
            return all(f in v.fields for f in fields)
        if fields and v.known_fields is not None:
            return all(f in v.known_fields for f in fields)
        return True

    # --- explanations and helpers

    def decide(
        self,
        ws: Workspace,
        principal: Principal | Iterable[QName],
        op: OperationKind,
        resource: QName,
        fields: Sequence[str] = (),
    ) -> Decision:
        """The answer of :meth:`allowed` with its reasons. ``principal`` may be a bare role set."""
        if isinstance(principal, Principal):
            if principal.is_system:
                return Decision(True, ws.qname, op, resource, principal.roles, reason="the System may do anything")
            roles = principal.roles
        else:
            roles = frozenset(principal)
        v = self._verdict(ws, roles, op, resource)
        base = Decision(v.allowed, ws.qname, op, resource, v.roles, v.fields, None, v.reason)
        if not v.allowed or not fields:
            return base
        for f in fields:
            if v.known_fields is not None and f not in v.known_fields:
                return Decision(False, ws.qname, op, resource, v.roles, v.fields, f, f"{resource} has no field {f!r}")
            if v.fields is not None and f not in v.fields:
                reason = f"{op} is granted on {resource} but not on its field {f}"
                return Decision(False, ws.qname, op, resource, v.roles, v.fields, f, reason)
        return base

    def check(
        self,
        ws: Workspace,
        principal: Principal,
        op: OperationKind,
        resource: QName,
        fields: Sequence[str] = (),
    ) -> None:
        """Raise :class:`AccessDeniedError` (HTTP 403) unless :meth:`allowed`."""
        if self.allowed(ws, principal, op, resource, fields):
            return
        d = self.decide(ws, principal, op, resource, fields)
        raise AccessDeniedError(d.message, qname=str(resource))

    def expand_roles(self, ws: Workspace, roles: Iterable[QName]) -> frozenset[QName]:
        """The roles plus all they inherit in workspaces of kind ``ws`` (memoised)."""
        given = roles if isinstance(roles, frozenset) else frozenset(roles)
        key = (ws.app, ws.qname, given)
        found = self._expanded.get(key)
        if found is None:
            found = ws.expand_roles(given)
            with self._lock:
                if len(self._expanded) >= self._cache_size:
                    self._expanded.clear()
                self._expanded[key] = found
        return found

    def allowed_fields(
        self, ws: Workspace, roles: Iterable[QName], op: OperationKind, resource: QName
    ) -> frozenset[str] | None:
        """The fields of ``resource`` the roles may ``op`` (None: all of them); an empty set when
        the operation is denied. For API v2 reads that return only what may be seen."""
        v = self._verdict(ws, frozenset(roles), op, resource)
        if not v.allowed:
            return frozenset()
        return v.fields

    def clear(self) -> None:
        """Forget every memoised answer."""
        with self._lock:
            self._verdicts.clear()
            self._expanded.clear()

    # --- evaluation

    def _verdict(self, ws: Workspace, roles: frozenset[QName], op: OperationKind, resource: QName) -> _Verdict:
        key = (ws.app, ws.qname, roles, op, resource)
        v = self._verdicts.get(key)
        if v is None:
            v = self._evaluate(ws, roles, op, resource)
            with self._lock:
                if len(self._verdicts) >= self._cache_size:
                    self._verdicts.clear()
                self._verdicts[key] = v
        return v

    def _evaluate(self, ws: Workspace, given: frozenset[QName], op: OperationKind, resource: QName) -> _Verdict:
        roles = self.expand_roles(ws, given) if given else given
        t = ws.type(resource)
        if t is None:
            return _Verdict(False, roles, None, None, f"{resource} does not exist in workspace {ws.qname}")
        type_fields = _fields(t)
        known = frozenset(f.name for f in type_fields) if type_fields is not None else None
        problem = _inapplicable(op, t, type_fields)
        if problem:
            return _Verdict(False, roles, None, known, problem)
        if not roles:
            return _Verdict(False, roles, None, known, "the principal has no roles")
        if _ROLE_SYSTEM in roles:
            return _Verdict(True, roles, None, known, "the System may do anything")

        with_fields = type_fields is not None and op in _FIELD_OPS | _ACTIVATION_OPS
        all_names = tuple(f.name for f in type_fields) if type_fields is not None else ()
        sys_names = tuple(f.name for f in type_fields if f.is_sys) if type_fields is not None else ()
        allowed = False
        fields: set[str] = set()
        last = ""
        for rule in ws.rules():
            if op not in rule.ops or rule.principal not in roles or not rule.filter.match(t):
                continue
            last = str(rule)
            if rule.policy is PolicyKind.Allow:
                allowed = True
                if with_fields:
                    if rule.fields:
                        fields.update(rule.fields)
                        if op is OperationKind.Select:
                            fields.update(sys_names)
                    else:
                        fields.update(all_names)
            elif with_fields:
                if rule.fields:
                    fields.difference_update(rule.fields)
                    allowed = bool(fields)
                else:
                    fields.clear()
                    allowed = False
            else:
                allowed = False

        if not last:
            return _Verdict(False, roles, None, known, f"no rule grants {op} on {resource} to the principal's roles")
        if not allowed:
            return _Verdict(False, roles, None, known, f"denied by: {last}")
        result_fields: frozenset[str] | None = None
        if with_fields and not fields.issuperset(all_names):
            result_fields = frozenset(fields)
        return _Verdict(True, roles, result_fields, known, f"allowed by: {last}")


def _fields(t: Type) -> tuple[Field, ...] | None:
    if isinstance(t, Structure | View):
        return t.fields
    return None


def _inapplicable(op: OperationKind, t: Type, fields: tuple[Field, ...] | None) -> str:
    """Why ``op`` makes no sense on ``t`` ("" if it does), as Voedger's IsOperationAllowed checks."""
    if op in _FIELD_OPS:
        return "" if fields is not None else f"{op} does not apply to {t.kind} {t.qname}: it has no fields"
    if op in _ACTIVATION_OPS:
        if not t.kind.is_record or fields is None or not any(f.name == SYS_IS_ACTIVE for f in fields):
            return f"{op} does not apply to {t.kind} {t.qname}: it is not a record that can be deactivated"
        return ""
    if op is OperationKind.Execute:
        return "" if isinstance(t, Command | Query) else f"{op} does not apply to {t.kind} {t.qname}"
    return f"operation {op} is not checked by the ACL"
