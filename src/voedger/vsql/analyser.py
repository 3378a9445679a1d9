"""Semantic analysis of an application's packages.

`analyse` resolves every name across packages (IMPORT SCHEMA paths and aliases, the implicit sys
package, qualified and unqualified names, with VSQL's visibility, see `symbols`) and checks
Voedger's rules (see `rules`), using the wording of Voedger's analyser where it has one. It collects
every problem and raises them together, sorted by position, so a schema's author sees all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from voedger.vsql import ast
from voedger.vsql.errors import VSQLError
from voedger.vsql.rules.acl import AclRules
from voedger.vsql.rules.base import kinds
from voedger.vsql.rules.extensions import ExtensionRules
from voedger.vsql.rules.tables import MAX_FIELD_LENGTH
from voedger.vsql.rules.views import ViewRules
from voedger.vsql.schema import AppSchema, WorkspaceInfo
from voedger.vsql.symbols import SYS_WORKSPACE, Ctx, Decl, DeclKind, PackageInfo

__all__ = ["MAX_FIELD_LENGTH", "analyse"]

_NOWHERE = ast.Pos("", 0, 0)
"""The position of a problem of the application as a whole (printed without one, as Voedger does)."""

_IDENT = re.compile(r"[a-zA-Z]\w{0,254}", re.ASCII)


class _Analyser(ViewRules, ExtensionRules, AclRules):
    """Runs the passes: packages and imports, declarations, the application, workspaces, table
    kinds, then every statement; and assembles the result."""

    def setup_packages(self) -> None:
        for pkg in self.input:
            if pkg.name in self.infos:
                self.err(self._first_pos(pkg), f"package {pkg.name} redeclared")
                continue
            self.infos[pkg.name] = PackageInfo(pkg.name, pkg)
        local_names: dict[str, str] = {}
        for info in self.infos.values():
            for imp in info.pkg.imports:
                self.check_import(info, imp)
                first = local_names.setdefault(imp.path, imp.local_name)
                if first != imp.local_name:
                    self.err(imp.pos, f"local package name {first} was redeclared as {imp.local_name}")

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

    def collect(self) -> None:
        for info in self.infos.values():
            self.st.collect(info)
        for decl in self.st.redefinitions:
            self.err(decl.pos, f"redefinition of {decl.qname.entity}")
        for decl in self.st.decls:
            self.decl_of.setdefault(id(decl.node), decl)
            decl.workspace = decl.container

    def define_app(self) -> None:
        apps: list[tuple[ast.ApplicationStmt, PackageInfo]] = [
            (s, info) for info in self.infos.values() for s in info.pkg.statements if isinstance(s, ast.ApplicationStmt)
        ]
        if not apps:
            self.err(_NOWHERE, "application not defined")
            return
        if len(apps) > 1:  # Voedger stops at the first redefinition
            self.err(apps[1][0].pos, "redefinition of application")
            return
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
                    _NOWHERE,
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
        ws = self.resolve(stmt.name, kinds(DeclKind.WORKSPACE), Ctx(info))
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
                base = self.resolve(ref, kinds(DeclKind.WORKSPACE), self.ctx_of(ws))
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
        used = self.resolve(ref, kinds(DeclKind.WORKSPACE), ctx)
        if used is None:
            return
        if used.node.abstract:
            self.err(stmt.workspace.pos, f"use of abstract workspace {stmt.workspace.value}")
            return
        self.resolved[stmt.workspace] = used.qname
        if ws is not None:
            self.ws_used.setdefault(id(ws), []).append(used)

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
        self.setup_packages()
        self.collect()
        self.define_app()
        for info in self.infos.values():
            for stmt in info.pkg.statements:
                if isinstance(stmt, ast.DeclareStmt):
                    q = ast.QName(info.name, stmt.name)
                    self.variables.setdefault(q, self.variables_in.get(str(q), stmt.default))
        self.resolve_alters()
        early = len(self.diagnostics)
        self.resolve_inherits()
        inherits = len(self.diagnostics)
        self.compute_tablekinds()
        # as in Voedger, the packages, the application and the table kinds must be right before
        # anything else is checked: their errors alone are reported, without their follow-ons
        if not early and len(self.diagnostics) == inherits:
            self.compute_nestedkinds()
            self.analyse_packages()
        if self.diagnostics:
            # by file and line; on one line in the order the checks found them (Voedger's order)
            found = dict.fromkeys(self.diagnostics)
            raise VSQLError(sorted(found, key=lambda d: (not d.file, d.file, d.line)))
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
