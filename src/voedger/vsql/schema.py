"""The analyser's result: an application's packages with every name resolved.

A builder walks the packages' syntax trees as usual and asks `AppSchema.resolve` for the QName of
each reference; the tables below answer the questions a builder would otherwise have to work out
again (what kind a table is, what a workspace inherits, which declarations it holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from voedger.vsql import ast
from voedger.vsql.symbols import Decl, DeclKind

__all__ = ["AppSchema", "Decl", "DeclKind", "TableInfo", "TableKind", "WorkspaceInfo"]


class TableKind(StrEnum):
    """The kind of a table, given by the sys table its INHERITS chain ends in."""

    CDOC = "CDoc"
    WDOC = "WDoc"
    ODOC = "ODoc"
    CRECORD = "CRecord"
    WRECORD = "WRecord"
    ORECORD = "ORecord"

    @property
    def nested(self) -> TableKind:
        """The kind of tables nested in a table of this kind."""
        return _NESTED[self]

    @property
    def is_doc(self) -> bool:
        return self in (TableKind.CDOC, TableKind.WDOC, TableKind.ODOC)


_NESTED = {
    TableKind.CDOC: TableKind.CRECORD,
    TableKind.CRECORD: TableKind.CRECORD,
    TableKind.WDOC: TableKind.WRECORD,
    TableKind.WRECORD: TableKind.WRECORD,
    TableKind.ODOC: TableKind.ORECORD,
    TableKind.ORECORD: TableKind.ORECORD,
}


@dataclass(frozen=True, slots=True)
class TableInfo:
    """What the analyser found out about a table (or a workspace descriptor)."""

    kind: TableKind
    singleton: bool = False
    abstract: bool = False
    base: ast.QName | None = None


@dataclass(frozen=True, slots=True)
class WorkspaceInfo:
    """A workspace with its inheritance, descriptor and contents resolved.

    `ancestors` lists every inherited workspace, nearest first, ending with ``sys.Workspace``
    (except for sys.Workspace itself). `declarations` are the QNames declared in the workspace's
    body and in ALTER WORKSPACE bodies for it; `used` are the workspaces it may create (USE
    WORKSPACE and nested workspaces).
    """

    qname: ast.QName
    stmt: ast.WorkspaceStmt
    descriptor: ast.QName | None
    inherits: tuple[ast.QName, ...]
    ancestors: tuple[ast.QName, ...]
    declarations: tuple[ast.QName, ...]
    used: tuple[ast.QName, ...]

    @property
    def abstract(self) -> bool:
        return self.stmt.abstract


@dataclass(eq=False)
class AppSchema:
    """An analysed application: the input packages plus everything resolved about them."""

    name: str
    """The application's name (from APPLICATION)."""
    app_package: str
    """The name of the package holding APPLICATION."""
    packages: dict[str, ast.Package]
    """Every package by name, sys included, in the order given."""
    declarations: dict[ast.QName, Decl]
    """Every declaration by QName; `Decl.workspace` tells the workspace it belongs to."""
    tables: dict[ast.QName, TableInfo]
    """Tables, nested tables and workspace descriptors."""
    workspaces: dict[ast.QName, WorkspaceInfo]
    variables: dict[ast.QName, int]
    """DECLAREd variables with their values (defaults, unless overridden by the caller)."""
    rate_counts: dict[ast.QName, int]
    """The count of every RATE, with variables substituted."""
    resolved: dict[ast.DefQName | ast.Ident, ast.QName] = field(repr=False)
    """The QName of every reference (and of every USE WORKSPACE name)."""

    def resolve(self, ref: ast.DefQName | ast.Ident) -> ast.QName | None:
        """The QName `ref` denotes, or None if it was not resolved; usable as a builder's resolver."""
        return self.resolved.get(ref)

    def kind_of(self, qname: ast.QName) -> DeclKind | None:
        decl = self.declarations.get(qname)
        return decl.kind if decl else None

    def workspace_of(self, qname: ast.QName) -> ast.QName | None:
        """The workspace a declaration belongs to (None for package-level ones)."""
        decl = self.declarations.get(qname)
        return decl.workspace.qname if decl and decl.workspace else None
