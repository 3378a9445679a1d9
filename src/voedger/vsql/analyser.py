"""Semantic analysis of an application's packages.

`analyse` resolves every name across packages (IMPORT SCHEMA paths and aliases, the implicit sys
package, qualified and unqualified names, with VSQL's visibility, see `symbols`) and checks
Voedger's rules, using the wording of Voedger's analyser where it has one. It collects every
problem and raises them together, sorted by position, so a schema's author sees all of them at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from voedger.vsql import ast
from voedger.vsql.cron import is_valid_cron
from voedger.vsql.errors import Diagnostic, VSQLError
from voedger.vsql.schema import AppSchema, TableInfo, TableKind, WorkspaceInfo
from voedger.vsql.symbols import (
    SYS_PACKAGE,
    SYS_WORKSPACE,
    Ctx,
    Decl,
    DeclKind,
    NameLookupError,
    PackageInfo,
    SymbolTable,
)

__all__ = ["MAX_FIELD_LENGTH", "analyse"]

MAX_FIELD_LENGTH = 65535
APP_WORKSPACE_WS = ast.QName(SYS_PACKAGE, "AppWorkspaceWS")

_IDENT = re.compile(r"[a-zA-Z]\w{0,254}", re.ASCII)

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
_O_KINDS = frozenset({TableKind.ODOC, TableKind.ORECORD})
_W_KINDS = frozenset({TableKind.WDOC, TableKind.WRECORD})
_C_KINDS = frozenset({TableKind.CDOC, TableKind.CRECORD})

_UNDEFINED = {
    DeclKind.TABLE: "undefined table: {}",
    DeclKind.DESCRIPTOR: "undefined table: {}",
    DeclKind.COMMAND: "undefined command: {}",
    DeclKind.QUERY: "undefined query: {}",
    DeclKind.TAG: "undefined tag: {}",
    DeclKind.ROLE: "undefined role: {}",
    DeclKind.TYPE: "undefined type: {}",
    DeclKind.WORKSPACE: "undefined workspace: {}",
    DeclKind.PROJECTOR: "undefined projector: {}",
    DeclKind.RATE: "undefined rate: {}",
    DeclKind.VIEW: "undefined view: {}",
}

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


def _kinds(*kinds: DeclKind) -> frozenset[DeclKind]:
    return frozenset(kinds)


class _Analyser:
    def __init__(
        self,
        packages: Sequence[ast.Package],
        variables: Mapping[str, int],
        import_map: Mapping[str, str],
    ) -> None:
        self.input = list(packages)
        self.variables_in = dict(variables)
        self.diagnostics: list[Diagnostic] = []
        self.infos: dict[str, PackageInfo] = {}
        self.st = SymbolTable(self.infos, import_map)
        self.resolved: dict[ast.DefQName | ast.Ident, ast.QName] = {}
        self.decl_of: dict[int, Decl] = {}
        self.tables: dict[int, TableInfo] = {}
        self.ws_used: dict[int, list[Decl]] = {}
        self.app_name = ""
        self.app_package = ""
        self.variables: dict[ast.QName, int] = {}
        self.rate_counts: dict[ast.QName, int] = {}

    # ------------------------------------------------------------------ reporting

    def err(self, pos: ast.Pos, message: str) -> None:
        self.diagnostics.append(Diagnostic(pos.file, pos.line, pos.col, message))

    def _first_pos(self, pkg: ast.Package) -> ast.Pos:
        return pkg.files[0].pos if pkg.files else ast.Pos(pkg.path or pkg.name, 1, 1)

    # ------------------------------------------------------------------ lookups

    def find(self, ref: ast.DefQName, kinds: frozenset[DeclKind], ctx: Ctx) -> Decl | None:
        """Resolve quietly: None when not found (or when the package prefix is wrong)."""
        try:
            decl = self.st.find(ref, kinds, ctx)
        except NameLookupError:
            return None
        if decl is not None:
            self.resolved[ref] = decl.qname
        return decl

    def resolve(
        self, ref: ast.DefQName, kinds: frozenset[DeclKind], ctx: Ctx, undefined: str | None = None
    ) -> Decl | None:
        """Resolve and report: the declaration, or None after reporting why not."""
        try:
            decl = self.st.find(ref, kinds, ctx)
        except NameLookupError as e:
            self.err(ref.pos, str(e))
            return None
        if decl is None:
            if undefined is None:
                undefined = _UNDEFINED.get(next(iter(kinds)), "{} undefined") if len(kinds) == 1 else "{} undefined"
            self.err(ref.pos, undefined.format(ref))
            return None
        self.resolved[ref] = decl.qname
        return decl

    def ctx_of(self, decl: Decl) -> Ctx:
        return Ctx(decl.package, decl.workspace)

    # ------------------------------------------------------------------ 1. packages and imports

    def setup_packages(self) -> bool:
        for pkg in self.input:
            if pkg.name in self.infos:
                self.err(self._first_pos(pkg), f"package {pkg.name} redeclared")
                continue
            self.infos[pkg.name] = PackageInfo(pkg.name, pkg)
        if SYS_PACKAGE not in self.infos:
            pos = self._first_pos(self.input[0]) if self.input else ast.Pos("<application>", 1, 1)
            self.err(pos, f"could not import {SYS_PACKAGE}. Check if the package is parsed under exactly this name")
            return False
        for info in self.infos.values():
            for imp in info.pkg.imports:
                self.check_import(info, imp)
        return True

    def check_import(self, info: PackageInfo, imp: ast.ImportStmt) -> None:
        local = imp.local_name
        if not _IDENT.fullmatch(local):
            self.err(imp.pos, f"invalid local package name {local}")
            return
        if local == info.name:
            self.err(imp.pos, f"conflict: local package name {local} equal to current package name")
            return
        known = info.imports.get(local)
        if known is not None:
            if known.path != imp.path:
                self.err(imp.pos, f"local package name {local} already used for {known.path}")
            return
        info.imports[local] = imp

    # ------------------------------------------------------------------ 2. declarations

    def collect(self) -> None:
        for info in self.infos.values():
            self.st.collect(info)
        for decl in self.st.redefinitions:
            self.err(decl.pos, f"redefinition of {decl.qname.entity}")
        for decl in self.st.decls:
            self.decl_of.setdefault(id(decl.node), decl)
            decl.workspace = decl.container

    # ------------------------------------------------------------------ 3. application

    def define_app(self) -> None:
        apps: list[tuple[ast.ApplicationStmt, PackageInfo]] = [
            (s, info) for info in self.infos.values() for s in info.pkg.statements if isinstance(s, ast.ApplicationStmt)
        ]
        if not apps:
            first = next((i for i in self.infos.values() if not i.is_sys), None)
            pos = self._first_pos(first.pkg) if first else ast.Pos("<application>", 1, 1)
            self.err(pos, "application not defined")
            return
        for stmt, _ in apps[1:]:
            self.err(stmt.pos, "redefinition of application")
        app, app_info = apps[0]
        self.app_name, self.app_package = app.name, app_info.name
        used = {app_info.name}
        names = {app_info.name}
        for use in app.uses:
            if use.name in names:
                self.err(use.pos, "package with the same name already included in application")
                continue
            names.add(use.name)
            imp = self._import_for_use(use.name, app_info)
            if imp is None:
                self.err(use.pos, f"{use.name} undefined")
                continue
            target = self.st.package_of_import(imp.path)
            if target is None:
                self.err(
                    use.pos,
                    f"could not import {imp.path}. Check if the package is parsed under exactly this name",
                )
                continue
            used.add(target.name)
        for info in self.infos.values():
            if not info.is_sys and info.name not in used:
                self.err(
                    self._first_pos(info.pkg),
                    f"application does not define use of package {info.pkg.path or info.name}. "
                    "Check if the package is defined in IMPORT SCHEMA and parsed under the same name",
                )

    @staticmethod
    def _import_for_use(name: str, info: PackageInfo) -> ast.ImportStmt | None:
        imports = info.pkg.imports
        for imp in imports:
            if imp.alias == name:
                return imp
        for imp in imports:
            if imp.path == name or imp.path.endswith("/" + name):
                return imp
        return None

    # ------------------------------------------------------------------ 4. workspaces

    def resolve_alters(self) -> None:
        """Find the workspace of each ALTER WORKSPACE; its body's declarations belong to it."""
        altered: dict[int, Decl | None] = {}
        for info in self.infos.values():
            for stmt in info.pkg.statements:
                if isinstance(stmt, ast.AlterWorkspaceStmt):
                    altered[id(stmt)] = self.resolve_alter(stmt, info)
        for decl in self.st.decls:
            if decl.container is None and decl.alter is not None:
                decl.workspace = altered.get(id(decl.alter))

    def resolve_alter(self, stmt: ast.AlterWorkspaceStmt, info: PackageInfo) -> Decl | None:
        ws = self.resolve(stmt.name, _kinds(DeclKind.WORKSPACE), Ctx(info))
        if ws is None:
            return None
        if not ws.node.alterable and ws.package is not info:
            self.err(stmt.name.pos, f"workspace {stmt.name} is not alterable")
        return ws

    def resolve_inherits(self) -> None:
        workspaces = [d for d in self.st.decls if d.kind is DeclKind.WORKSPACE]
        for ws in workspaces:
            stmt: ast.WorkspaceStmt = ws.node
            bases: list[Decl] = []
            for ref in stmt.inherits:
                base = self.resolve(ref, _kinds(DeclKind.WORKSPACE), self.ctx_of(ws))
                if base is None:
                    continue
                if base.qname == SYS_WORKSPACE:
                    self.err(stmt.pos, "explicit inheritance from sys.Workspace not allowed")
                    continue
                if not base.node.abstract:
                    self.err(ref.pos, "base workspace must be abstract")
                    continue
                bases.append(base)
            self.st.inherits[id(ws)] = bases
        for ws in workspaces:
            stmt = ws.node
            for ref, base in zip(stmt.inherits, self.st.inherits[id(ws)], strict=False):
                if base is ws or any(a is ws for a in self.st.ancestors(base)):
                    self.err(ref.pos, "circular reference in INHERITS")
                    break

    # ------------------------------------------------------------------ 5. table kinds

    def compute_table_kinds(self) -> None:
        for decl in self.st.decls:
            if decl.kind is DeclKind.DESCRIPTOR:
                self.tables[id(decl)] = TableInfo(TableKind.CDOC, singleton=True)
        for decl in self.st.decls:
            if decl.kind is DeclKind.TABLE and decl.parent is None:
                self.table_kind(decl, report=True)
        for decl in self.st.decls:
            if decl.kind is DeclKind.DESCRIPTOR:
                self.nested_kinds(decl.node, decl, TableKind.CDOC)
            elif decl.kind is DeclKind.TABLE and decl.parent is None:
                info = self.tables.get(id(decl))
                if info is not None:
                    self.nested_kinds(decl.node, decl, info.kind)

    def table_kind(self, decl: Decl, report: bool = False) -> TableInfo | None:
        """Kind of a top-level table from its INHERITS chain; reports a missing or cyclic chain."""
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
            base = self.find(inherits, _kinds(DeclKind.TABLE), self.ctx_of(current))
            if base is None:
                if current is decl:
                    return None  # reported as an undefined table by the table's own check
                break
            if current is decl:
                base_qname = base.qname
            current = base
        if report:
            self.err(decl.pos, "undefined table kind")
        return None

    def nested_kinds(self, table: ast.TableStmt, root: Decl, root_kind: TableKind) -> None:
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
                base = self.resolve(nested.inherits, _kinds(DeclKind.TABLE), self.ctx_of(decl))
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
            self.nested_kinds(nested, root, root_kind)

    def info_of(self, decl: Decl) -> TableInfo | None:
        return self.tables.get(id(decl))

    # ------------------------------------------------------------------ 6. statements

    def analyse_packages(self) -> None:
        for info in self.infos.values():
            ctx = Ctx(info)
            for stmt in info.pkg.statements:
                if isinstance(stmt, ast.WorkspaceStmt):
                    self.workspace(stmt)
                elif isinstance(stmt, ast.AlterWorkspaceStmt):
                    altered = self.decl_of_ws(stmt)
                    self.body(stmt.statements, Ctx(info, altered), altered)
                elif isinstance(stmt, ast.ExtEngineStmt):
                    self.ext_engine(stmt, ctx)

    def decl_of_ws(self, stmt: ast.AlterWorkspaceStmt) -> Decl | None:
        q = self.resolved.get(stmt.name)
        decl = self.st.packages[q.pkg].names.get(q.entity) if q else None
        return decl if decl is not None and decl.kind is DeclKind.WORKSPACE else None

    def workspace(self, stmt: ast.WorkspaceStmt) -> None:
        decl = self.decl_of[id(stmt)]
        ctx = Ctx(decl.package, decl)
        if stmt.descriptor is not None:
            if stmt.abstract:
                self.err(stmt.descriptor.pos, "abstract workspace cannot have a descriptor")
            desc = decl.package.names.get(stmt.descriptor.name or f"{stmt.name}Descriptor")
            if desc is not None and desc.node is stmt.descriptor:
                self.table_body(stmt.descriptor, desc, ctx, is_table=True)
        self.body(stmt.statements, ctx, decl)
        revoked = False
        for s in stmt.statements:
            if isinstance(s, ast.RevokeStmt):
                revoked = True
            elif isinstance(s, ast.GrantStmt) and revoked:
                self.err(s.pos, "GRANT follows REVOKE in the same container")

    def body(self, stmts: Iterable[ast.WorkspaceStatement], ctx: Ctx, ws: Decl | None) -> None:
        for s in stmts:
            if isinstance(s, ast.WorkspaceStmt):
                if ws is not None:
                    self.ws_used.setdefault(id(ws), []).append(self.decl_of[id(s)])
                self.workspace(s)
            elif isinstance(s, ast.TableStmt):
                self.table(s, ctx)
            elif isinstance(s, ast.TypeStmt):
                self.type_(s, ctx)
            elif isinstance(s, ast.ViewStmt):
                self.view(s, ctx)
            elif isinstance(s, ast.ExtEngineStmt):
                self.ext_engine(s, ctx)
            elif isinstance(s, ast.RateStmt):
                self.rate(s, ctx)
            elif isinstance(s, ast.LimitStmt):
                self.limit(s, ctx)
            elif isinstance(s, ast.UseWorkspaceStmt):
                self.use_workspace(s, ctx, ws)
            elif isinstance(s, ast.GrantStmt):
                self.grant(s.privilege, s.to, ctx)
            elif isinstance(s, ast.RevokeStmt):
                self.grant(s.privilege, s.from_, ctx)

    def use_workspace(self, stmt: ast.UseWorkspaceStmt, ctx: Ctx, ws: Decl | None) -> None:
        ref = ast.DefQName(pos=stmt.workspace.pos, package=ctx.pkg.name, name=stmt.workspace.value)
        used = self.resolve(ref, _kinds(DeclKind.WORKSPACE), ctx)
        if used is None:
            return
        if used.node.abstract:
            self.err(stmt.workspace.pos, f"use of abstract workspace {stmt.workspace.value}")
            return
        self.resolved[stmt.workspace] = used.qname
        if ws is not None:
            self.ws_used.setdefault(id(ws), []).append(used)

    def with_(self, items: tuple[ast.WithItem, ...], ctx: Ctx) -> None:
        for item in items:
            if isinstance(item, ast.WithTags):
                for tag in item.tags:
                    self.resolve(tag, _kinds(DeclKind.TAG), ctx)

    # ------------------------------------------------------------------ tables and types

    def table(self, stmt: ast.TableStmt, ctx: Ctx) -> None:
        decl = self.decl_of.get(id(stmt))
        if decl is None or decl.node is not stmt:
            return  # a redefinition, already reported
        self.with_(stmt.with_, ctx)
        if stmt.inherits is not None:
            base = self.resolve(stmt.inherits, _kinds(DeclKind.TABLE), ctx)
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
                self.resolve(item.type, _kinds(DeclKind.TYPE), ctx)
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
            self.resolve(ftype, _kinds(DeclKind.TYPE), ctx)
        else:
            target = self.find(ftype, _kinds(DeclKind.TABLE), ctx)
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
            target = self.resolve(ref, _kinds(DeclKind.TABLE), ctx)
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
            elif (kind in _C_KINDS or kind in _W_KINDS or kind is None) and info.kind in _O_KINDS:
                self.err(ref.pos, f"{source} can not reference to {info.kind} {target.qname}")

    def own_fields(self, items: tuple[ast.TableItem, ...], ctx: Ctx, visiting: set[int]) -> list[tuple[str, ast.Pos]]:
        """Names of the fields and containers `items` declare, field sets expanded."""
        out: list[tuple[str, ast.Pos]] = []
        for item in items:
            if isinstance(item, ast.FieldItem | ast.RefFieldItem):
                out.append((item.name, item.pos))
            elif isinstance(item, ast.NestedTableItem):
                out.append((item.container, item.pos))
            elif isinstance(item, ast.FieldSetItem):
                target = self.find(item.type, _kinds(DeclKind.TYPE), ctx)
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
                target = self.find(item.type, _kinds(DeclKind.TYPE), ctx)
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
            base = self.find(current.inherits, _kinds(DeclKind.TABLE), self.ctx_of(current_decl))
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

    # ------------------------------------------------------------------ views

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
        self.with_(stmt.with_, ctx)
        self.view_result(stmt, ctx)
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

    def view_result(self, stmt: ast.ViewStmt, ctx: Ctx) -> None:
        ext = self.resolve(stmt.result_of, _kinds(DeclKind.PROJECTOR, DeclKind.JOB), ctx, "{} undefined")
        if ext is None:
            return
        for intent in ext.node.intents:
            storage = self.find(intent.storage, _kinds(DeclKind.STORAGE), self.ctx_of(ext))
            if storage is None or not storage.node.entity_view:
                continue
            for entity in intent.entities:
                if entity.name == stmt.name and entity.package in ("", ctx.pkg.name):
                    return
        self.err(stmt.result_of.pos, f"{ext.qname.entity} does not declare intent for view {stmt.name}")

    # ------------------------------------------------------------------ extensions

    def ext_engine(self, stmt: ast.ExtEngineStmt, ctx: Ctx) -> None:
        for ext in stmt.statements:
            if isinstance(ext, ast.CommandStmt):
                self.command(ext, ctx)
            elif isinstance(ext, ast.QueryStmt):
                self.query(ext, ctx)
            elif isinstance(ext, ast.ProjectorStmt):
                self.projector(ext, ctx)
            elif isinstance(ext, ast.JobStmt):
                self.job(ext, ctx)
            elif isinstance(ext, ast.StorageStmt) and not ctx.pkg.is_sys:
                self.err(ext.pos, "storages are only declared in sys package")

    def command(self, stmt: ast.CommandStmt, ctx: Ctx) -> None:
        for param in (stmt.param, stmt.unlogged_param, stmt.returns):
            if param is not None and param.type is not None:
                self.resolve(param.type, _kinds(DeclKind.TYPE, DeclKind.TABLE), ctx, "undefined type or table: {}")
        self.with_(stmt.with_, ctx)
        self.state(stmt.state, ctx, ast.StorageScope.COMMANDS, intents=False)
        self.state(stmt.intents, ctx, ast.StorageScope.COMMANDS, intents=True)

    def query(self, stmt: ast.QueryStmt, ctx: Ctx) -> None:
        if stmt.param is not None and stmt.param.type is not None:
            self.resolve(stmt.param.type, _kinds(DeclKind.TYPE), ctx)
        if stmt.returns is None:
            self.err(stmt.pos, "query must have a return type")
        elif stmt.returns.type is not None:
            self.resolve(stmt.returns.type, _kinds(DeclKind.TYPE), ctx)
        self.with_(stmt.with_, ctx)
        self.state(stmt.state, ctx, ast.StorageScope.QUERIES, intents=False)

    def projector(self, stmt: ast.ProjectorStmt, ctx: Ctx) -> None:
        for trigger in stmt.triggers:
            if trigger.cron is not None:
                self.err(stmt.pos, "scheduled projector deprecated; use jobs instead")
            for ref in trigger.on:
                if trigger.actions:
                    self.trigger_table(ref, trigger, ctx)
                elif trigger.with_param:
                    self.trigger_param(ref, ctx)
                else:
                    self.resolve(ref, _kinds(DeclKind.COMMAND), ctx)
        self.state(stmt.state, ctx, ast.StorageScope.PROJECTORS, intents=False)
        self.state(stmt.intents, ctx, ast.StorageScope.PROJECTORS, intents=True)

    def trigger_table(self, ref: ast.DefQName, trigger: ast.ProjectorTrigger, ctx: Ctx) -> None:
        target = self.resolve(ref, _kinds(DeclKind.TABLE, DeclKind.DESCRIPTOR), ctx, "undefined table: {}")
        if target is None or target.kind is DeclKind.DESCRIPTOR:
            return
        sys_record = target.package.is_sys and target.qname.entity in ("CRecord", "WRecord")
        if target.node.abstract and not sys_record:
            self.err(ref.pos, f"projector refers to abstract table {ref}")
            return
        info = self.info_of(target)
        if info is not None and info.kind in _O_KINDS and set(trigger.actions) - {ast.TableAction.INSERT}:
            self.err(ref.pos, "only INSERT allowed for ODoc or ORecord")

    def trigger_param(self, ref: ast.DefQName, ctx: Ctx) -> None:
        target = self.find(ref, _kinds(DeclKind.TYPE, DeclKind.TABLE), ctx)
        if target is not None and target.kind is DeclKind.TABLE:
            info = self.info_of(target)
            if info is None or info.kind is not TableKind.ODOC:
                target = None
        if target is None:
            self.resolved.pop(ref, None)
            try:
                self.st.package_for(ref.package, ctx)
            except NameLookupError as e:
                self.err(ref.pos, str(e))
                return
            self.err(ref.pos, f"undefined type or ODoc: {ref}")

    def job(self, stmt: ast.JobStmt, ctx: Ctx) -> None:
        if ctx.ws is None or ctx.ws.qname != APP_WORKSPACE_WS:
            self.err(stmt.pos, "JOB is only allowed in AppWorkspaceWS")
        if not stmt.cron:
            self.err(stmt.pos, "job without cron schedule is not allowed")
            return
        if not is_valid_cron(stmt.cron):
            self.err(stmt.pos, f"invalid cron schedule: {stmt.cron}")
        self.state(stmt.state, ctx, ast.StorageScope.JOBS, intents=False)
        self.state(stmt.intents, ctx, ast.StorageScope.JOBS, intents=True)

    def state(self, storages: tuple[ast.StateStorage, ...], ctx: Ctx, scope: ast.StorageScope, intents: bool) -> None:
        """Check STATE or INTENTS entries against the SCOPE of their STORAGE declarations."""
        ops = ("INSERT", "UPDATE") if intents else ("GET", "GETBATCH", "READ")
        for entry in storages:
            storage = self.resolve(entry.storage, _kinds(DeclKind.STORAGE), ctx)
            if storage is None:
                continue
            stmt: ast.StorageStmt = storage.node
            if (stmt.entity_record or stmt.entity_view) and not entry.entities:
                self.err(entry.storage.pos, f"storage {entry.storage} requires entity")
                continue
            if not self.state_entities(entry, stmt, ctx):
                continue
            if not any(op.op in ops and scope in op.scopes for op in stmt.ops):
                where = "intents" if intents else "state"
                self.err(
                    entry.storage.pos,
                    f"this kind of extension cannot use storage {entry.storage} in the {where}",
                )

    def state_entities(self, entry: ast.StateStorage, storage: ast.StorageStmt, ctx: Ctx) -> bool:
        """Resolve the entities of a STATE/INTENTS entry; as in Voedger, the first problem is
        reported at the storage's name."""
        if not (storage.entity_record or storage.entity_view):
            return True
        kind = DeclKind.TABLE if storage.entity_record else DeclKind.VIEW
        for entity in entry.entities:
            try:
                target = self.st.find(entity, _kinds(kind), ctx)
            except NameLookupError as e:
                self.err(entry.storage.pos, str(e))
                return False
            if target is None:
                self.err(entry.storage.pos, _UNDEFINED[kind].format(entity))
                return False
            self.resolved[entity] = target.qname
            if kind is DeclKind.TABLE and target.node.abstract:
                self.err(entry.storage.pos, f"projector refers to abstract table {entity}")
                return False
        return True

    # ------------------------------------------------------------------ rates, limits, ACL

    def rate(self, stmt: ast.RateStmt, ctx: Ctx) -> None:
        decl = self.decl_of.get(id(stmt))
        count = stmt.count or 0
        if stmt.variable is not None:
            var = self.resolve(stmt.variable, _kinds(DeclKind.DECLARE), ctx)
            if var is None:
                return
            count = self.variables.get(var.qname, var.node.default)
            if count <= 0:
                self.err(stmt.variable.pos, "positive value only allowed")
                return
        if decl is not None and decl.node is stmt:
            self.rate_counts[decl.qname] = count

    def limit(self, stmt: ast.LimitStmt, ctx: Ctx) -> None:
        self.resolve(stmt.rate, _kinds(DeclKind.RATE), ctx)
        flt = stmt.filter
        if flt.scope is ast.TargetScope.ONE:
            assert flt.name is not None
            if self.resolve(flt.name, _kinds(_RESOURCE_DECL[flt.kind]), ctx) is None:
                return
        elif flt.tag is not None:
            self.resolve(flt.tag, _kinds(DeclKind.TAG), ctx)
        allowed = _LIMIT_OPS[flt.kind]
        for op in stmt.ops:
            if op.op not in allowed:
                self.err(op.pos, f"operation {op.op} not allowed")

    def grant(self, priv: ast.Privilege, role: ast.DefQName, ctx: Ctx) -> None:
        self.resolve(role, _kinds(DeclKind.ROLE), ctx)
        if priv.kind is ast.ResourceKind.ROLE:
            assert priv.name is not None
            self.resolve(priv.name, _kinds(DeclKind.ROLE), ctx)
            return
        if priv.scope is not ast.TargetScope.ONE:
            if priv.tag is not None:
                self.resolve(priv.tag, _kinds(DeclKind.TAG), ctx)
            return
        assert priv.name is not None
        if priv.kind is ast.ResourceKind.TABLE:
            target = self.resolve(priv.name, _kinds(DeclKind.TABLE, DeclKind.DESCRIPTOR), ctx, "undefined table: {}")
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
            target = self.resolve(priv.name, _kinds(_RESOURCE_DECL[priv.kind]), ctx)
            if target is None or priv.kind is not ast.ResourceKind.VIEW:
                return
            names = {f.name for f in target.node.fields if not isinstance(f, ast.ViewRecordField)}
            columns = [c for op in priv.ops for c in op.columns]
        for col in columns:
            if "." not in col.value and col.value not in names:
                self.err(col.pos, f"undefined field {col.value}")

    # ------------------------------------------------------------------ result

    def workspace_infos(self) -> dict[ast.QName, WorkspaceInfo]:
        members: dict[int, list[ast.QName]] = {}
        for decl in self.st.decls:
            if decl.workspace is not None and decl.kind is not DeclKind.WORKSPACE:
                members.setdefault(id(decl.workspace), []).append(decl.qname)
        out: dict[ast.QName, WorkspaceInfo] = {}
        for decl in self.st.decls:
            if decl.kind is not DeclKind.WORKSPACE or decl.package.names.get(decl.qname.entity) is not decl:
                continue
            stmt: ast.WorkspaceStmt = decl.node
            ancestors = [a.qname for a in self.st.ancestors(decl)]
            if decl.qname != SYS_WORKSPACE and SYS_WORKSPACE not in ancestors:
                ancestors.append(SYS_WORKSPACE)
            descriptor = None
            if stmt.descriptor is not None or not stmt.abstract:
                name = stmt.descriptor.name if stmt.descriptor is not None and stmt.descriptor.name else ""
                descriptor = ast.QName(decl.package.name, name or f"{stmt.name}Descriptor")
            used = list(dict.fromkeys(u.qname for u in self.ws_used.get(id(decl), [])))
            out[decl.qname] = WorkspaceInfo(
                qname=decl.qname,
                stmt=stmt,
                descriptor=descriptor,
                inherits=tuple(b.qname for b in self.st.inherits.get(id(decl), [])),
                ancestors=tuple(ancestors),
                declarations=tuple(members.get(id(decl), [])),
                used=tuple(used),
            )
        return out

    def run(self) -> AppSchema:
        if self.setup_packages():
            self.collect()
            self.define_app()
            for info in self.infos.values():
                for stmt in info.pkg.statements:
                    if isinstance(stmt, ast.DeclareStmt):
                        q = ast.QName(info.name, stmt.name)
                        self.variables.setdefault(q, self.variables_in.get(str(q), stmt.default))
            self.resolve_alters()
            self.resolve_inherits()
            self.compute_table_kinds()
            self.analyse_packages()
        if self.diagnostics:
            raise VSQLError(sorted(set(self.diagnostics)))
        declarations = {d.qname: d for d in self.st.decls if d.package.names.get(d.qname.entity) is d}
        tables = {d.qname: self.tables[id(d)] for d in declarations.values() if id(d) in self.tables}
        return AppSchema(
            name=self.app_name,
            app_package=self.app_package,
            packages={name: info.pkg for name, info in self.infos.items()},
            declarations=declarations,
            tables=tables,
            workspaces=self.workspace_infos(),
            variables=dict(self.variables),
            rate_counts=dict(self.rate_counts),
            resolved=dict(self.resolved),
        )


def analyse(
    packages: Sequence[ast.Package],
    *,
    variables: Mapping[str, int] | None = None,
    import_map: Mapping[str, str] | None = None,
) -> AppSchema:
    """Resolve and check an application's packages (the sys package among them).

    `variables` overrides DECLAREd values by ``pkg.Name``; `import_map` maps an IMPORT SCHEMA path
    to the name of the package it denotes when the path's last element is not that name. Raises
    VSQLError with every problem found.
    """
    return _Analyser(packages, variables or {}, import_map or {}).run()
