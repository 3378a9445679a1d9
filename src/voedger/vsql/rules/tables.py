"""Checks of tables, nested tables, types and their fields."""

from __future__ import annotations

import re

from voedger.vsql import ast
from voedger.vsql.rules.base import AnalyserBase, kinds
from voedger.vsql.schema import TableInfo, TableKind
from voedger.vsql.symbols import Ctx, Decl, DeclKind, NameLookupError

__all__ = ["MAX_FIELD_LENGTH", "TableRules"]

MAX_FIELD_LENGTH = 65535

_SYS_ROOTS = {
    "CRecord": (TableKind.CRECORD, False),
    "WRecord": (TableKind.WRECORD, False),
    "ORecord": (TableKind.ORECORD, False),
    "CDoc": (TableKind.CDOC, False),
    "WDoc": (TableKind.WDOC, False),
    "ODoc": (TableKind.ODOC, False),
    "CSingleton": (TableKind.CDOC, True),
    "WSingleton": (TableKind.WDOC, True),
}
_RECORD_KINDS = frozenset({TableKind.CRECORD, TableKind.WRECORD, TableKind.ORECORD})
O_KINDS = frozenset({TableKind.ODOC, TableKind.ORECORD})
_W_KINDS = frozenset({TableKind.WDOC, TableKind.WRECORD})
_C_KINDS = frozenset({TableKind.CDOC, TableKind.CRECORD})


class TableRules(AnalyserBase):
    """Table kinds (from INHERITS chains), fields, containers, references and constraints."""

    def compute_tablekinds(self) -> None:
        """The kinds of the top-level tables (Voedger's pre-analysis: their errors stop the analysis)."""
        for decl in self.st.decls:
            if decl.kind is DeclKind.DESCRIPTOR:
                self.tables[id(decl)] = TableInfo(TableKind.CDOC, singleton=True)
        for decl in self.st.decls:
            if decl.kind is DeclKind.TABLE and decl.parent is None:
                self.table_kind(decl, report=True)

    def compute_nestedkinds(self) -> None:
        """The kinds of the nested tables, from their roots'."""
        for decl in self.st.decls:
            if decl.kind is DeclKind.DESCRIPTOR:
                self.nestedkinds(decl.node, decl, TableKind.CDOC)
            elif decl.kind is DeclKind.TABLE and decl.parent is None:
                info = self.tables.get(id(decl))
                if info is not None:
                    self.nestedkinds(decl.node, decl, info.kind)

    def table_kind(self, decl: Decl, report: bool = False) -> TableInfo | None:
        """Kind of a top-level table from its INHERITS chain; reports a missing or cyclic chain at the
        table, as Voedger does (an undefined base is "undefined table kind")."""
        if id(decl) in self.tables:
            return self.tables[id(decl)]
        chain: list[Decl] = []
        current: Decl | None = decl
        base_qname: ast.QName | None = None
        while current is not None:
            if current.package.is_sys and current.qname.entity in _SYS_ROOTS:
                kind, singleton = _SYS_ROOTS[current.qname.entity]
                info = TableInfo(kind, singleton, decl.node.abstract, base_qname)
                self.tables[id(decl)] = info
                return info
            if any(c is current for c in chain):
                if report:
                    self.err(decl.pos, "circular reference in INHERITS")
                return None
            chain.append(current)
            inherits: ast.DefQName | None = current.node.inherits
            if inherits is None:
                break
            try:
                base = self.st.find(inherits, kinds(DeclKind.TABLE), self.ctx_of(current))
            except NameLookupError as e:  # a wrong package prefix: Voedger reports it at the table
                if report:
                    self.err(decl.pos, str(e))
                return None
            if base is None:
                break
            self.resolved[inherits] = base.qname
            if current is decl:
                base_qname = base.qname
            current = base
        if report:
            self.err(decl.pos, "undefined table kind")
        return None

    def nestedkinds(self, table: ast.TableStmt, root: Decl, root_kind: TableKind) -> None:
        for item in table.items:
            if not isinstance(item, ast.NestedTableItem):
                continue
            decl = self.decl_of.get(id(item.table))
            if decl is None or decl.node is not item.table:
                continue
            nested = item.table
            kind = root_kind.nested
            if nested.abstract:
                self.err(item.pos, f"nested abstract table {nested.name}")
                continue
            base_qname = None
            if nested.inherits is not None:
                base = self.resolve(nested.inherits, kinds(DeclKind.TABLE), self.ctx_of(decl))
                if base is None:
                    continue
                base_info = self.table_kind(base)
                if base_info is None:
                    continue
                base_qname = base.qname
                if base_info.kind is not kind:
                    self.err(item.pos, "incorrect nested table kind")
                    continue
            self.tables[id(decl)] = TableInfo(kind, False, False, base_qname)
            self.nestedkinds(nested, root, root_kind)

    def table(self, stmt: ast.TableStmt, ctx: Ctx) -> None:
        decl = self.decl_of.get(id(stmt))
        if decl is None or decl.node is not stmt:
            return  # a redefinition, already reported
        self.with_(stmt.with_, ctx)
        if stmt.inherits is not None:
            base = self.resolve(stmt.inherits, kinds(DeclKind.TABLE), ctx)
            if base is not None and not base.node.abstract:
                self.err(stmt.inherits.pos, "base table must be abstract")
        self.table_body(stmt, decl, ctx, is_table=True)

    def table_body(self, stmt: ast.TableStmt, decl: Decl, ctx: Ctx, is_table: bool) -> None:
        info = self.info_of(decl)
        self.fields(stmt.items, ctx, is_table, info.kind if info else None, f"table {decl.qname}")
        self.check_duplicates(stmt, decl, ctx)
        for item in stmt.items:
            if isinstance(item, ast.NestedTableItem):
                nested = self.decl_of.get(id(item.table))
                if nested is None or nested.node is not item.table:
                    continue
                self.with_(item.table.with_, ctx)
                self.table_body(item.table, nested, ctx, is_table=True)

    def type_(self, stmt: ast.TypeStmt, ctx: Ctx) -> None:
        for item in stmt.items:
            if isinstance(item, ast.NestedTableItem):
                self.err(item.pos, "nested tables not supported in types")
        self.fields(stmt.items, ctx, is_table=False, kind=None)
        decl = self.decl_of.get(id(stmt))
        if decl is not None and decl.node is stmt:
            self.check_duplicates(stmt, decl, ctx)

    def fields(
        self,
        items: tuple[ast.TableItem, ...],
        ctx: Ctx,
        is_table: bool,
        kind: TableKind | None,
        owner: str | None = None,
    ) -> None:
        constraint_names: set[str] = set()
        in_uniques: set[str] = set()
        for item in items:
            if isinstance(item, ast.FieldItem):
                self.field(item, ctx, is_table)
            elif isinstance(item, ast.RefFieldItem):
                self.ref_targets(item.refs, ctx, kind, owner)
            elif isinstance(item, ast.FieldSetItem):
                self.resolve(item.type, kinds(DeclKind.TYPE), ctx)
            elif isinstance(item, ast.UniqueFieldConstraint | ast.UniqueConstraint | ast.CheckConstraint):
                if item.name:
                    if item.name in constraint_names:
                        self.err(item.pos, f"redefinition of {item.name}")
                        continue
                    constraint_names.add(item.name)
                if isinstance(item, ast.UniqueFieldConstraint):
                    if not self.has_field(items, item.field.value, ctx):
                        self.err(item.pos, f"undefined field {item.field.value}")
                elif isinstance(item, ast.UniqueConstraint):
                    for f in item.fields:
                        if f.value in in_uniques:
                            self.err(item.pos, f"field {f.value} already in unique constraint")
                        if not self.has_field(items, f.value, ctx):
                            self.err(item.pos, f"undefined field {f.value}")
                            continue
                        in_uniques.add(f.value)

    def field(self, item: ast.FieldItem, ctx: Ctx, is_table: bool) -> None:
        ftype = item.type
        if item.check_regexp is not None:
            pos = item.check_regexp_pos or item.pos
            if isinstance(ftype, ast.DataType) and ftype.kind is ast.DataKind.VARCHAR:
                try:
                    re.compile(item.check_regexp)
                except re.error as e:
                    self.err(pos, f"CHECK regexp error:  {e}")
            else:
                self.err(pos, "regexp CHECK only available for varchar field")
        if isinstance(ftype, ast.DataType):
            self.data_type(ftype, is_table)
        elif not is_table:
            self.resolve(ftype, kinds(DeclKind.TYPE), ctx)
        else:
            target = self.find(ftype, kinds(DeclKind.TABLE), ctx)
            if target is None:
                try:
                    self.st.package_for(ftype.package, ctx)
                except NameLookupError as e:
                    self.err(ftype.pos, str(e))
                    return
                self.err(ftype.pos, f"undefined data type or table: {ftype}")
                return
            info = self.info_of(target)
            if target.node.abstract:
                self.err(ftype.pos, f"nested abstract table {ftype}")
            elif info is not None and info.kind not in _RECORD_KINDS:
                self.err(ftype.pos, f"{ftype} type not supported")

    def data_type(self, dt: ast.DataType, is_table: bool) -> None:
        if dt.kind is ast.DataKind.BLOB and not is_table:
            self.err(dt.pos, "BLOB field only allowed in table")
        if dt.length is not None and dt.length > MAX_FIELD_LENGTH:
            self.err(dt.pos, f"maximum field length is {MAX_FIELD_LENGTH}")

    def ref_targets(self, refs: tuple[ast.DefQName, ...], ctx: Ctx, kind: TableKind | None, source: str | None) -> None:
        """Check the targets of a ref field; `kind` is the kind of the referring table (None for
        types and views), `source` names the referrer ("table x.T", "view x.V"; None for types)."""
        for ref in refs:
            target = self.resolve(ref, kinds(DeclKind.TABLE), ctx)
            if target is None:
                continue
            if target.node.abstract:
                self.err(ref.pos, f"reference to abstract table {ref}")
                continue
            info = self.info_of(target)
            if info is None or source is None:
                continue
            if kind in _C_KINDS and info.kind in _W_KINDS:
                self.err(ref.pos, f"{ref}: reference to WDoc/WRecord")
            elif (kind in _C_KINDS or kind in _W_KINDS or kind is None) and info.kind in O_KINDS:
                self.err(ref.pos, f"{source} can not reference to {info.kind} «{target.qname}»")

    def own_fields(self, items: tuple[ast.TableItem, ...], ctx: Ctx, visiting: set[int]) -> list[tuple[str, ast.Pos]]:
        """Names of the fields and containers `items` declare, field sets expanded."""
        out: list[tuple[str, ast.Pos]] = []
        for item in items:
            if isinstance(item, ast.FieldItem | ast.RefFieldItem):
                out.append((item.name, item.pos))
            elif isinstance(item, ast.NestedTableItem):
                out.append((item.container, item.pos))
            elif isinstance(item, ast.FieldSetItem):
                target = self.find(item.type, kinds(DeclKind.TYPE), ctx)
                if target is None:
                    continue
                if id(target) in visiting:
                    self.err(item.pos, f"circular reference in field set {item.type}")
                    continue
                visiting.add(id(target))
                inner = self.own_fields(target.node.items, self.ctx_of(target), visiting)
                visiting.discard(id(target))
                out.extend((name, item.pos) for name, _ in inner)
        return out

    def has_field(self, items: tuple[ast.TableItem, ...], name: str, ctx: Ctx) -> bool:
        for item in items:
            if isinstance(item, ast.FieldItem | ast.RefFieldItem) and item.name == name:
                return True
            if isinstance(item, ast.FieldSetItem):
                target = self.find(item.type, kinds(DeclKind.TYPE), ctx)
                if target is not None and name in {
                    n for n, _ in self.own_fields(target.node.items, self.ctx_of(target), {id(target)})
                }:
                    return True
        return False

    def inherited_fields(self, stmt: ast.TableStmt, decl: Decl) -> set[str]:
        names: set[str] = set()
        seen: set[int] = set()
        current, current_decl = stmt, decl
        while current.inherits is not None:
            base = self.find(current.inherits, kinds(DeclKind.TABLE), self.ctx_of(current_decl))
            if base is None or id(base) in seen:
                break
            seen.add(id(base))
            names.update(n for n, _ in self.own_fields(base.node.items, self.ctx_of(base), set()))
            current, current_decl = base.node, base
        return names

    def check_duplicates(self, stmt: ast.TableStmt | ast.TypeStmt, decl: Decl, ctx: Ctx) -> None:
        seen = self.inherited_fields(stmt, decl) if isinstance(stmt, ast.TableStmt) else set()
        for name, pos in self.own_fields(stmt.items, ctx, {id(decl)}):
            if name in seen:
                self.err(pos, f"redefinition of {name}")
            seen.add(name)
