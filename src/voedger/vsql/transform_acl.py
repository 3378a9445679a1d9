"""Building GRANT, REVOKE, RATE and LIMIT, with the combinations Voedger's grammar allows."""

from __future__ import annotations

import dataclasses
from typing import Any

from lark import Token
from lark.tree import Meta

from voedger.vsql import ast
from voedger.vsql.transform_base import BuilderBase, Marker, Ops, QNames, Target

__all__ = ["SYS_COLUMNS", "AclBuilder"]

SYS_COLUMNS = frozenset({"ID", "ParentID", "IsActive", "QName", "Container"})

PLURAL = {
    "COMMANDS": ast.ResourceKind.COMMAND,
    "QUERIES": ast.ResourceKind.QUERY,
    "VIEWS": ast.ResourceKind.VIEW,
    "TABLES": ast.ResourceKind.TABLE,
}


class AclBuilder(BuilderBase):
    """Rules of privileges, rates and limits."""

    def grant_stmt(self, meta: Meta, children: list[Any]) -> ast.GrantStmt:
        return ast.GrantStmt(pos=self._pos(meta), doc=self._doc(meta), privilege=children[0], to=children[1])

    def revoke_stmt(self, meta: Meta, children: list[Any]) -> ast.RevokeStmt:
        return ast.RevokeStmt(pos=self._pos(meta), doc=self._doc(meta), privilege=children[0], from_=children[1])

    def privilege_role(self, meta: Meta, children: list[ast.DefQName]) -> ast.Privilege:
        return ast.Privilege(pos=self._pos(meta), kind=ast.ResourceKind.ROLE, name=children[0])

    def privilege_on(self, meta: Meta, children: list[Any]) -> ast.Privilege:
        ops: Ops = children[0]
        target: Target = children[1]
        self._check_privilege(ops, target)
        return ast.Privilege(
            pos=self._pos(meta),
            kind=target.kind,
            scope=target.scope,
            name=target.name,
            tag=target.tag,
            ops=ops.ops,
            all_ops=ops.all_ops,
            all_columns=ops.all_columns,
        )

    def _check_privilege(self, ops: Ops, target: Target) -> None:
        """The combinations that Voedger's grammar allows, checked here with a readable message."""
        plural = next(p for p, k in PLURAL.items() if k is target.kind)
        on = f"{target.kind} {target.name}" if target.scope is ast.TargetScope.ONE else f"ALL {plural}"
        if target.kind in (ast.ResourceKind.COMMAND, ast.ResourceKind.QUERY):
            allowed = {ast.Operation.EXECUTE}
        elif target.kind is ast.ResourceKind.VIEW:
            allowed = {ast.Operation.SELECT}
        else:
            allowed = set(ast.Operation) - {ast.Operation.EXECUTE}
        if ops.all_ops and target.kind is not ast.ResourceKind.TABLE:
            self._err(ops.pos, f"operation ALL not allowed on {on}")
        for op in ops.ops:
            if op.op not in allowed:
                self._err(op.pos, f"operation {op.op} not allowed on {on}")
        columns_ok = target.scope is ast.TargetScope.ONE and target.kind in (
            ast.ResourceKind.TABLE,
            ast.ResourceKind.VIEW,
        )
        with_columns = [op for op in ops.ops if op.columns]
        if not columns_ok and (ops.all_columns or with_columns):
            pos = with_columns[0].pos if with_columns else ops.pos
            self._err(pos, f"columns not allowed on {on}")
        if target.kind is ast.ResourceKind.VIEW:
            for op in ops.ops:
                for col in op.columns:
                    if "." in col.value:
                        self._err(col.pos, f"system field {col.value} not allowed on {on}")

    def ops_all(self, meta: Meta, children: list[Any]) -> Ops:
        cols: tuple[ast.Ident, ...] = children[0] if children else ()
        for col in cols:
            if "." in col.value:
                self._err(col.pos, f"system field {col.value} not allowed with ALL")
        return Ops(True, cols, (), self._pos(meta))

    def ops_list(self, meta: Meta, children: list[ast.PrivilegeOp]) -> Ops:
        return Ops(False, (), tuple(children), self._pos(meta))

    def op_item(self, meta: Meta, children: list[Any]) -> ast.PrivilegeOp:
        op: ast.PrivilegeOp = children[0]
        return dataclasses.replace(op, columns=children[1]) if len(children) > 1 else op

    def columns(self, meta: Meta, children: list[QNames]) -> tuple[ast.Ident, ...]:
        out: list[ast.Ident] = []
        for qn in children[0].items:
            if qn.package and (qn.package != "sys" or qn.name not in SYS_COLUMNS):
                self._err(qn.pos, f"invalid column {qn}: expected a field name or one of sys.ID, "
                          "sys.ParentID, sys.IsActive, sys.QName, sys.Container")  # fmt: skip
            out.append(ast.Ident(pos=qn.pos, value=str(qn)))
        return tuple(out)

    def operation(self, meta: Meta, children: list[Token]) -> ast.PrivilegeOp:
        return ast.PrivilegeOp(pos=self._pos(meta), op=ast.Operation(str(children[0])))

    def target_one(self, meta: Meta, children: list[Any]) -> Target:
        return Target(children[0], ast.TargetScope.ONE, children[1], None, self._pos(meta))

    def target_all(self, meta: Meta, children: list[Any]) -> Target:
        tag = self._marker(children, "tag")
        return Target(children[0], ast.TargetScope.ALL, None, tag.value if tag else None, self._pos(meta))

    def resource(self, meta: Meta, children: list[Token]) -> ast.ResourceKind:
        return ast.ResourceKind(str(children[0]))

    def resources(self, meta: Meta, children: list[Token]) -> ast.ResourceKind:
        return PLURAL[str(children[0])]

    def with_tag(self, meta: Meta, children: list[ast.DefQName]) -> Marker:
        return Marker("tag", self._pos(meta), children[0])

    def rate_stmt(self, meta: Meta, children: list[Any]) -> ast.RateStmt:
        name: ast.Ident = children[0]
        count = children[1]
        amount = 1
        rest = children[2:]
        if isinstance(rest[0], Token):
            amount = int(str(rest[0]))
            if amount <= 0:
                self._err(self._tpos(rest[0]), "positive value only allowed")
            rest = rest[1:]
        unit: ast.TimeUnit = rest[0]
        obj: ast.RateObjectScope | None = None
        subj: ast.RateSubjectScope | None = None
        for scope in rest[1:]:
            if isinstance(scope.value, ast.RateObjectScope):
                if obj is not None or subj is not None:
                    self._err(
                        scope.pos,
                        "PER APP PARTITION or PER WORKSPACE must come once, before PER SUBJECT or PER IP",
                    )
                obj = scope.value
            else:
                if subj is not None:
                    self._err(scope.pos, "PER SUBJECT or PER IP must come once")
                subj = scope.value
        return ast.RateStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=name.value,
            unit=unit,
            count=count if isinstance(count, int) else None,
            variable=count if isinstance(count, ast.DefQName) else None,
            per_amount=amount,
            object_scope=obj,
            subject_scope=subj,
        )

    def rate_count_int(self, meta: Meta, children: list[Token]) -> int:
        value = int(str(children[0]))
        if value <= 0:
            self._err(self._tpos(children[0]), "positive value only allowed")
        return value

    def rate_count_var(self, meta: Meta, children: list[ast.DefQName]) -> ast.DefQName:
        return children[0]

    def time_unit(self, meta: Meta, children: list[Token]) -> ast.TimeUnit:
        return ast.TimeUnit(str(children[0]).removesuffix("S"))

    def per_app_partition(self, meta: Meta, children: list[Any]) -> Marker:
        return Marker("scope", self._pos(meta), ast.RateObjectScope.APP_PARTITION)

    def per_workspace(self, meta: Meta, children: list[Any]) -> Marker:
        return Marker("scope", self._pos(meta), ast.RateObjectScope.WORKSPACE)

    def per_subject(self, meta: Meta, children: list[Any]) -> Marker:
        return Marker("scope", self._pos(meta), ast.RateSubjectScope.SUBJECT)

    def per_ip(self, meta: Meta, children: list[Any]) -> Marker:
        return Marker("scope", self._pos(meta), ast.RateSubjectScope.IP)

    def limit_stmt(self, meta: Meta, children: list[Any]) -> ast.LimitStmt:
        ops = self._marker(children, "limit_ops")
        target: Target = self._pick(children, Target)
        tag = self._marker(children, "tag")
        if tag is not None and target.scope is ast.TargetScope.ONE:
            self._err(tag.pos, f"WITH TAG not allowed on a single {target.kind}")
        lim_filter = ast.LimitFilter(
            pos=target.pos,
            kind=target.kind,
            scope=target.scope,
            name=target.name,
            tag=tag.value if tag else None,
        )
        return ast.LimitStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            ops=ops.value if ops else (),
            filter=lim_filter,
            rate=children[-1],
        )

    def limit_ops(self, meta: Meta, children: list[ast.PrivilegeOp]) -> Marker:
        return Marker("limit_ops", self._pos(meta), tuple(children))

    def limit_one(self, meta: Meta, children: list[Any]) -> Target:
        return Target(children[0], ast.TargetScope.ONE, children[1], None, self._pos(meta))

    def limit_all(self, meta: Meta, children: list[Any]) -> Target:
        return Target(children[0], ast.TargetScope.ALL, None, None, self._pos(meta))

    def limit_each(self, meta: Meta, children: list[Any]) -> Target:
        return Target(children[0], ast.TargetScope.EACH, None, None, self._pos(meta))

    def limit_tag(self, meta: Meta, children: list[ast.DefQName]) -> Marker:
        return Marker("tag", self._pos(meta), children[0])
