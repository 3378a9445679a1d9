"""Checks of views: fields, primary key and the projector that fills the view."""

from __future__ import annotations

from voedger.vsql import ast
from voedger.vsql.rules.base import kinds
from voedger.vsql.rules.tables import TableRules
from voedger.vsql.symbols import Ctx, DeclKind

__all__ = ["ViewRules"]


class ViewRules(TableRules):
    """A view needs a primary key with clustering columns, and a projector or job that writes it."""

    def view(self, stmt: ast.ViewStmt, ctx: Ctx) -> None:
        fields: dict[str, ast.ViewField | ast.ViewRefField | ast.ViewRecordField] = {}
        pk: ast.PrimaryKey | None = None
        for item in stmt.items:
            if isinstance(item, ast.PrimaryKey):
                if pk is not None:
                    self.err(item.pos, "redefinition of primary key")
                else:
                    pk = item
                continue
            if item.name in fields and not isinstance(item, ast.ViewRecordField):
                self.err(item.pos, f"redefinition of {item.name}")
            else:
                fields[item.name] = item
            if isinstance(item, ast.ViewField):
                self.data_type(item.type, is_table=False)
            elif isinstance(item, ast.ViewRecordField):
                if not ctx.pkg.is_sys:
                    self.err(item.pos, "record fields are only allowed in sys package")
            else:
                self.ref_targets(item.refs, ctx, None, f"view {ctx.pkg.name}.{stmt.name}")
        # the key first, then the result and the WITH clause, as Voedger checks a view (an undefined
        # key, or one without clustering columns, ends the checks of the view there)
        if pk is None:
            self.err(stmt.pos, "primary key not defined")
            return
        for f in pk.partition:
            fld = fields.get(f.value)
            if fld is None:
                self.err(f.pos, f"undefined field {f.value}")
            elif isinstance(fld, ast.ViewRecordField):
                self.err(f.pos, f"record field {f.value} not supported in partition key")
            elif isinstance(fld, ast.ViewField) and fld.type.kind is ast.DataKind.VARCHAR:
                self.err(f.pos, f"varchar field {f.value} not supported in partition key")
            elif isinstance(fld, ast.ViewField) and fld.type.kind is ast.DataKind.BYTES:
                self.err(f.pos, f"bytes field {f.value} not supported in partition key")
        if not pk.clustering:
            self.err(pk.pos, "clustering columns not defined")
            return
        for i, f in enumerate(pk.clustering):
            last = i == len(pk.clustering) - 1
            fld = fields.get(f.value)
            if fld is None:
                self.err(f.pos, f"undefined field {f.value}")
            elif isinstance(fld, ast.ViewRecordField):
                self.err(f.pos, f"record field {f.value} not supported in partition key")
            elif isinstance(fld, ast.ViewField) and fld.type.kind is ast.DataKind.VARCHAR and not last:
                self.err(f.pos, f"varchar field {f.value} can only be the last one in clustering key")
            elif isinstance(fld, ast.ViewField) and fld.type.kind is ast.DataKind.BYTES and not last:
                self.err(f.pos, f"bytes field {f.value} can only be the last one in clustering key")
        self.view_result(stmt, ctx)
        self.with_(stmt.with_, ctx)

    def view_result(self, stmt: ast.ViewStmt, ctx: Ctx) -> None:
        ext = self.resolve(stmt.result_of, kinds(DeclKind.PROJECTOR, DeclKind.JOB), ctx, "{} undefined")
        if ext is None:
            return
        for intent in ext.node.intents:
            storage = self.find(intent.storage, kinds(DeclKind.STORAGE), self.ctx_of(ext))
            if storage is None or not storage.node.entity_view:
                continue
            for entity in intent.entities:
                if entity.name == stmt.name and entity.package in ("", ctx.pkg.name):
                    return
        self.err(stmt.result_of.pos, f"{ext.qname.entity} does not declare intent for view {stmt.name}")
