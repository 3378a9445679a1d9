"""Declarations of an application's packages and the visibility rules of VSQL names.

Names are unique per package (a second declaration is a redefinition), but not every declaration is
visible everywhere. As in Voedger, a reference ``[pkg.]Name`` made inside workspace ``W`` finds:

1. declarations at the package level of ``pkg`` (including ALTER WORKSPACE bodies and nested tables
   of such tables);
2. declarations made directly in ``W`` (for an ALTER WORKSPACE body: in the altered workspace);
3. unless a workspace or a tag is looked for, declarations of the workspaces ``W`` inherits,
   and of ``sys.Workspace``, which every workspace inherits.

Tags are only found in the referring package. This module keeps the declarations and answers
lookups; the analyser decides what a failed lookup means.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from voedger.vsql import ast

__all__ = [
    "SYS_PACKAGE",
    "SYS_WORKSPACE",
    "Ctx",
    "Decl",
    "DeclKind",
    "NameLookupError",
    "PackageInfo",
    "SymbolTable",
]

SYS_PACKAGE = "sys"
SYS_WORKSPACE = ast.QName(SYS_PACKAGE, "Workspace")


class DeclKind(StrEnum):
    """What a declaration declares."""

    TABLE = "table"
    DESCRIPTOR = "descriptor"
    TYPE = "type"
    VIEW = "view"
    WORKSPACE = "workspace"
    COMMAND = "command"
    QUERY = "query"
    PROJECTOR = "projector"
    JOB = "job"
    FUNCTION = "function"
    STORAGE = "storage"
    ROLE = "role"
    TAG = "tag"
    RATE = "rate"
    LIMIT = "limit"
    DECLARE = "declare"
    TEMPLATE = "template"


@dataclass(eq=False)
class PackageInfo:
    """A package and the local names its files use for the packages they import."""

    name: str
    pkg: ast.Package
    # local name -> import statement (first one wins; clashes are reported by the analyser)
    imports: dict[str, ast.ImportStmt] = field(default_factory=dict)
    # declared name -> declaration (first one wins; redefinitions are reported)
    names: dict[str, Decl] = field(default_factory=dict)

    @property
    def is_sys(self) -> bool:
        return self.name == SYS_PACKAGE


@dataclass(eq=False)
class Decl:
    """One declaration: where it is and what it is.

    `container` is the WORKSPACE whose body holds the declaration directly (None at package level,
    which includes ALTER WORKSPACE bodies); `workspace` is the workspace the declaration belongs
    to (the container, or the altered workspace), known after ALTER targets are resolved.
    """

    qname: ast.QName
    kind: DeclKind
    node: Any
    package: PackageInfo
    container: Decl | None = None
    alter: ast.AlterWorkspaceStmt | None = None
    parent: Decl | None = None
    workspace: Decl | None = None

    @property
    def pos(self) -> ast.Pos:
        pos: ast.Pos = self.node.pos
        return pos

    def __repr__(self) -> str:
        return f"Decl({self.kind} {self.qname})"


@dataclass(frozen=True, slots=True)
class Ctx:
    """Where a reference is made: its package and current workspace (None at package level)."""

    pkg: PackageInfo
    ws: Decl | None = None


class NameLookupError(Exception):
    """The package part of a reference cannot be resolved; the message says why."""


class SymbolTable:
    """Every declaration of the application's packages, and name lookup with VSQL's visibility."""

    def __init__(self, packages: dict[str, PackageInfo], import_map: Mapping[str, str] | None = None):
        self.packages = packages
        self.import_map = dict(import_map or {})
        self.decls: list[Decl] = []
        self.redefinitions: list[Decl] = []
        # workspace -> the workspaces it inherits directly (resolved by the analyser)
        self.inherits: dict[int, list[Decl]] = {}

    # ------------------------------------------------------------------ collecting declarations

    def add(self, decl: Decl) -> None:
        self.decls.append(decl)
        names = decl.package.names
        if decl.qname.entity in names:
            self.redefinitions.append(decl)
        else:
            names[decl.qname.entity] = decl

    def collect(self, info: PackageInfo) -> None:
        """Declare everything in a package, in source order."""
        for stmt in info.pkg.statements:
            self._collect_root(info, stmt)

    def _collect_root(self, info: PackageInfo, stmt: ast.RootStatement) -> None:
        if isinstance(stmt, ast.WorkspaceStmt):
            self._collect_workspace(info, stmt, None, None)
        elif isinstance(stmt, ast.AlterWorkspaceStmt):
            self._collect_body(info, stmt.statements, None, stmt)
        elif isinstance(stmt, ast.ExtEngineStmt):
            for ext in stmt.statements:
                self._declare(info, ext, None, None)
        elif isinstance(stmt, ast.RoleStmt | ast.DeclareStmt | ast.TemplateStmt):
            self._declare(info, stmt, None, None)

    def _collect_workspace(
        self,
        info: PackageInfo,
        stmt: ast.WorkspaceStmt,
        container: Decl | None,
        alter: ast.AlterWorkspaceStmt | None,
    ) -> None:
        ws = self._declare(info, stmt, container, alter)
        desc = stmt.descriptor
        if desc is None and not stmt.abstract:
            desc = ast.TableStmt(pos=stmt.pos, name="")
        if desc is not None:
            name = desc.name or f"{stmt.name}Descriptor"
            decl = Decl(ast.QName(info.name, name), DeclKind.DESCRIPTOR, desc, info, ws, None)
            self.add(decl)
            self._collect_nested(info, desc, decl, ws, None)
        self._collect_body(info, stmt.statements, ws, None)

    def _collect_body(
        self,
        info: PackageInfo,
        stmts: Iterable[ast.WorkspaceStatement],
        container: Decl | None,
        alter: ast.AlterWorkspaceStmt | None,
    ) -> None:
        for s in stmts:
            if isinstance(s, ast.WorkspaceStmt):
                self._collect_workspace(info, s, container, alter)
            elif isinstance(s, ast.ExtEngineStmt):
                for ext in s.statements:
                    self._declare(info, ext, container, alter)
            elif not isinstance(s, ast.UseWorkspaceStmt | ast.GrantStmt | ast.RevokeStmt):
                self._declare(info, s, container, alter)

    def _declare(
        self, info: PackageInfo, stmt: Any, container: Decl | None, alter: ast.AlterWorkspaceStmt | None
    ) -> Decl:
        decl = Decl(ast.QName(info.name, stmt.name), _KINDS[type(stmt)], stmt, info, container, alter)
        self.add(decl)
        if isinstance(stmt, ast.TableStmt):
            self._collect_nested(info, stmt, decl, container, alter)
        return decl

    def _collect_nested(
        self,
        info: PackageInfo,
        table: ast.TableStmt,
        parent: Decl,
        container: Decl | None,
        alter: ast.AlterWorkspaceStmt | None,
    ) -> None:
        for item in table.items:
            if isinstance(item, ast.NestedTableItem):
                decl = Decl(
                    ast.QName(info.name, item.table.name),
                    DeclKind.TABLE,
                    item.table,
                    info,
                    container,
                    alter,
                    parent,
                )
                self.add(decl)
                self._collect_nested(info, item.table, decl, container, alter)

    # ------------------------------------------------------------------ lookups

    def package_for(self, prefix: str, ctx: Ctx) -> PackageInfo:
        """The package a reference's prefix names, seen from `ctx`'s package."""
        if not prefix or prefix == ctx.pkg.name:
            return ctx.pkg
        if prefix == SYS_PACKAGE:
            sys_pkg = self.packages.get(SYS_PACKAGE)
            if sys_pkg is None:
                raise NameLookupError(_could_not_import(SYS_PACKAGE))
            return sys_pkg
        imp = ctx.pkg.imports.get(prefix)
        if imp is None:  # as in Voedger, the last element of an imported path names it even under an alias
            imp = next(
                (i for i in ctx.pkg.pkg.imports if i.path == prefix or i.path.endswith("/" + prefix)),
                None,
            )
        if imp is None:
            raise NameLookupError(f"{prefix} undefined")
        target = self.package_of_import(imp.path)
        if target is None:
            raise NameLookupError(_could_not_import(imp.path))
        return target

    def package_of_import(self, path: str) -> PackageInfo | None:
        """The package an IMPORT SCHEMA path denotes: by the import map, by package path, or by the
        path's last element, which names the package's folder."""
        if path in self.import_map:
            return self.packages.get(self.import_map[path])
        for info in self.packages.values():
            if info.pkg.path.replace("\\", "/").strip("/") == path.strip("/") and path.strip("/"):
                return info
        return self.packages.get(path.rstrip("/").rsplit("/", 1)[-1])

    def find(self, ref: ast.DefQName, kinds: frozenset[DeclKind], ctx: Ctx) -> Decl | None:
        """The declaration `ref` denotes from `ctx`, if it is one of `kinds` and visible there.

        Raises NameLookupError when the package prefix itself is wrong.
        """
        target = self.package_for(ref.package, ctx)
        decl = target.names.get(ref.name)
        if decl is None or decl.kind not in kinds:
            return None
        return decl if self.visible(decl, ctx, target) else None

    def visible(self, decl: Decl, ctx: Ctx, target: PackageInfo) -> bool:
        if decl.kind is DeclKind.TAG and target is not ctx.pkg:
            return False
        if decl.container is None:
            return True
        ws = ctx.ws
        if ws is None:
            return False
        if decl.container is ws:
            return True
        if decl.kind in (DeclKind.TAG, DeclKind.WORKSPACE):
            return False
        if any(a is decl.container for a in self.ancestors(ws)):
            return True
        return decl.container.qname == SYS_WORKSPACE

    def ancestors(self, ws: Decl) -> Iterator[Decl]:
        """The workspaces `ws` inherits, transitively, nearest first (each once, cycles tolerated)."""
        seen: set[int] = {id(ws)}
        queue = deque(self.inherits.get(id(ws), ()))
        while queue:
            w = queue.popleft()
            if id(w) in seen:
                continue
            seen.add(id(w))
            yield w
            queue.extend(self.inherits.get(id(w), ()))


def _could_not_import(path: str) -> str:
    return f"could not import {path}. Check if the package is parsed under exactly this name"


_KINDS: dict[type, DeclKind] = {
    ast.TableStmt: DeclKind.TABLE,
    ast.TypeStmt: DeclKind.TYPE,
    ast.ViewStmt: DeclKind.VIEW,
    ast.WorkspaceStmt: DeclKind.WORKSPACE,
    ast.CommandStmt: DeclKind.COMMAND,
    ast.QueryStmt: DeclKind.QUERY,
    ast.ProjectorStmt: DeclKind.PROJECTOR,
    ast.JobStmt: DeclKind.JOB,
    ast.FunctionStmt: DeclKind.FUNCTION,
    ast.StorageStmt: DeclKind.STORAGE,
    ast.RoleStmt: DeclKind.ROLE,
    ast.TagStmt: DeclKind.TAG,
    ast.RateStmt: DeclKind.RATE,
    ast.LimitStmt: DeclKind.LIMIT,
    ast.DeclareStmt: DeclKind.DECLARE,
    ast.TemplateStmt: DeclKind.TEMPLATE,
}
