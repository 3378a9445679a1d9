"""Checks of rates, limits, grants and revokes."""

from __future__ import annotations

from voedger.vsql import ast
from voedger.vsql.rules.base import AnalyserBase, kinds
from voedger.vsql.symbols import Ctx, DeclKind

__all__ = ["AclRules"]

_LIMIT_OPS = {
    ast.ResourceKind.COMMAND: frozenset({ast.Operation.EXECUTE}),
    ast.ResourceKind.QUERY: frozenset({ast.Operation.EXECUTE}),
    ast.ResourceKind.VIEW: frozenset({ast.Operation.SELECT}),
    ast.ResourceKind.TABLE: frozenset(
        {
            ast.Operation.INSERT,
            ast.Operation.UPDATE,
            ast.Operation.SELECT,
            ast.Operation.ACTIVATE,
            ast.Operation.DEACTIVATE,
        }
    ),
}
_RESOURCE_DECL = {
    ast.ResourceKind.COMMAND: DeclKind.COMMAND,
    ast.ResourceKind.QUERY: DeclKind.QUERY,
    ast.ResourceKind.VIEW: DeclKind.VIEW,
    ast.ResourceKind.TABLE: DeclKind.TABLE,
}


class AclRules(AnalyserBase):
    """Rate variables, limit operations, and what grants name (roles, resources, tags, columns)."""

    def rate(self, stmt: ast.RateStmt, ctx: Ctx) -> None:
        decl = self.decl_of.get(id(stmt))
        count = stmt.count or 0
        if stmt.variable is not None:
            var = self.resolve(stmt.variable, kinds(DeclKind.DECLARE), ctx)
            if var is None:
                return
            count = self.variables.get(var.qname, var.node.default)
            if count <= 0:
                self.err(stmt.variable.pos, "positive value only allowed")
                return
        if decl is not None and decl.node is stmt:
            self.rate_counts[decl.qname] = count

    def limit(self, stmt: ast.LimitStmt, ctx: Ctx) -> None:
        self.resolve(stmt.rate, kinds(DeclKind.RATE), ctx)
        flt = stmt.filter
        if flt.scope is ast.TargetScope.ONE:
            assert flt.name is not None
            if self.resolve(flt.name, kinds(_RESOURCE_DECL[flt.kind]), ctx) is None:
                return
        allowed = _LIMIT_OPS[flt.kind]
        for op in stmt.ops:
            if op.op not in allowed:
                self.err(op.pos, f"operation {op.op} not allowed")
        if flt.scope is not ast.TargetScope.ONE and flt.tag is not None:  # after the operations, as in Voedger
            self.resolve(flt.tag, kinds(DeclKind.TAG), ctx)

    def grant(self, priv: ast.Privilege, role: ast.DefQName, ctx: Ctx) -> None:
        self.resolve(role, kinds(DeclKind.ROLE), ctx)
        if priv.kind is ast.ResourceKind.ROLE:
            assert priv.name is not None
            self.resolve(priv.name, kinds(DeclKind.ROLE), ctx)
            return
        if priv.scope is not ast.TargetScope.ONE:
            if priv.tag is not None:
                self.resolve(priv.tag, kinds(DeclKind.TAG), ctx)
            return
        assert priv.name is not None
        if priv.kind is ast.ResourceKind.TABLE:
            target = self.resolve(priv.name, kinds(DeclKind.TABLE, DeclKind.DESCRIPTOR), ctx, "undefined table: {}")
            if target is None:
                return
            names = set()
            for item in target.node.items:
                if isinstance(item, ast.FieldItem | ast.RefFieldItem):
                    names.add(item.name)
                elif isinstance(item, ast.NestedTableItem):
                    names.add(item.container)
            columns = [*priv.all_columns, *(c for op in priv.ops for c in op.columns)]
        else:
            target = self.resolve(priv.name, kinds(_RESOURCE_DECL[priv.kind]), ctx)
            if target is None or priv.kind is not ast.ResourceKind.VIEW:
                return
            names = {f.name for f in target.node.fields if not isinstance(f, ast.ViewRecordField)}
            columns = [c for op in priv.ops for c in op.columns]
        for col in columns:
            if "." not in col.value and col.value not in names:
                self.err(col.pos, f"undefined field {col.value}")
