"""Turns lark's parse tree of one file into `voedger.vsql.ast` nodes.

The grammar is deliberately a little wider than VSQL (every statement kind is accepted at every
level, grant and limit targets are parsed uniformly) so that the LALR tables stay small and
conflict-free; the checks that Voedger's grammar makes by construction are made here instead, each
with a message that says what is wrong. They are collected, not raised, so one pass reports them all.
The rules are spread over `transform_*` modules by what they build.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lark import Token
from lark.tree import Meta

from voedger.vsql import ast
from voedger.vsql.comments import CommentIndex
from voedger.vsql.transform_acl import AclBuilder
from voedger.vsql.transform_base import INT32, Descriptor, FileState, Items, Marker, QNames, node_pos, unquote
from voedger.vsql.transform_expressions import ExpressionBuilder
from voedger.vsql.transform_extensions import ExtensionBuilder
from voedger.vsql.transform_tables import TableBuilder

__all__ = ["AstBuilder", "CommentIndex", "FileState"]

_STMT_KEYWORD: dict[type, str] = {
    ast.ImportStmt: "IMPORT SCHEMA",
    ast.ApplicationStmt: "APPLICATION",
    ast.DeclareStmt: "DECLARE",
    ast.TemplateStmt: "TEMPLATE",
    ast.WorkspaceStmt: "WORKSPACE",
    ast.AlterWorkspaceStmt: "ALTER WORKSPACE",
    Descriptor: "DESCRIPTOR",
    ast.UseWorkspaceStmt: "USE WORKSPACE",
    ast.RoleStmt: "ROLE",
    ast.TagStmt: "TAG",
    ast.TableStmt: "TABLE",
    ast.TypeStmt: "TYPE",
    ast.ViewStmt: "VIEW",
    ast.ExtEngineStmt: "EXTENSION ENGINE",
    ast.RateStmt: "RATE",
    ast.LimitStmt: "LIMIT",
    ast.GrantStmt: "GRANT",
    ast.RevokeStmt: "REVOKE",
    ast.CommandStmt: "COMMAND",
    ast.QueryStmt: "QUERY",
    ast.ProjectorStmt: "PROJECTOR",
    ast.JobStmt: "JOB",
    ast.FunctionStmt: "FUNCTION",
    ast.StorageStmt: "STORAGE",
}

_ROOT_ONLY = (ast.ImportStmt, ast.ApplicationStmt, ast.DeclareStmt, ast.TemplateStmt, ast.AlterWorkspaceStmt)
_BOTH = (ast.RoleStmt, ast.ExtEngineStmt, ast.WorkspaceStmt)
_ROOT_EXT = (ast.FunctionStmt, ast.StorageStmt)


def _keyword(node: object) -> str:
    return _STMT_KEYWORD.get(type(node), type(node).__name__)


class AstBuilder(TableBuilder, ExtensionBuilder, AclBuilder, ExpressionBuilder):
    """Builds the AST of one file from lark's tree; problems are collected, never raised.

    One instance serves every file: the per-file state lives in a context variable (see
    `BuilderBase`). This class holds the rules of statement lists, package-level statements and
    workspaces; the other rules come from its bases.
    """

    def start(self, meta: Meta, children: list[Any]) -> ast.File:
        stmts: list[Any] = [s for part in children for s in part]
        imports: list[ast.ImportStmt] = []
        statements: list[ast.RootStatement] = []
        for s in stmts:
            if isinstance(s, ast.ImportStmt):
                if statements:
                    self._err(s.pos, "IMPORT SCHEMA must come before all other statements")
                imports.append(s)
            elif isinstance(s, _ROOT_ONLY + _BOTH):
                if isinstance(s, ast.ExtEngineStmt):
                    s = self._check_ext(s, root=True)
                statements.append(s)
            else:
                self._err(node_pos(s), f"{_keyword(s)} must be declared inside a WORKSPACE")
        return ast.File(
            pos=ast.Pos(self.filename, 1, 1),
            path=self.filename,
            imports=tuple(imports),
            statements=tuple(statements),
        )

    def stmt_list(self, meta: Meta, children: list[Any]) -> list[Any]:
        return children

    def import_list(self, meta: Meta, children: list[Any]) -> list[Any]:
        return children

    def _workspace_statements(
        self, stmts: list[Any], allow_descriptor: bool
    ) -> tuple[ast.TableStmt | None, tuple[ast.WorkspaceStatement, ...]]:
        descriptor: ast.TableStmt | None = None
        out: list[ast.WorkspaceStatement] = []
        for i, s in enumerate(stmts):
            if isinstance(s, Descriptor):
                if not allow_descriptor:
                    self._err(s.table.pos, "DESCRIPTOR is only allowed in WORKSPACE")
                elif i != 0:
                    self._err(s.table.pos, "DESCRIPTOR must be the first statement of a WORKSPACE")
                else:
                    descriptor = s.table
            elif isinstance(s, _ROOT_ONLY):
                where = "before all other statements" if isinstance(s, ast.ImportStmt) else "at package level"
                self._err(node_pos(s), f"{_keyword(s)} is only allowed {where}")
            else:
                if isinstance(s, ast.ExtEngineStmt):
                    s = self._check_ext(s, root=False)
                out.append(s)
        return descriptor, tuple(out)

    def _check_ext(self, stmt: ast.ExtEngineStmt, root: bool) -> ast.ExtEngineStmt:
        kept: list[ast.ExtensionStmt] = []
        for s in stmt.statements:
            if root and not isinstance(s, _ROOT_EXT):
                self._err(s.pos, f"{_keyword(s)} must be declared inside a WORKSPACE")
            elif not root and isinstance(s, ast.StorageStmt):
                self._err(s.pos, "STORAGE is only allowed at package level")
            else:
                kept.append(s)
        return dataclasses.replace(stmt, statements=tuple(kept))

    def import_stmt(self, meta: Meta, children: list[Any]) -> ast.ImportStmt:
        alias = self._pick(children, ast.Ident)
        return ast.ImportStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            path=unquote(str(children[0])),
            alias=alias.value if alias else None,
        )

    def application_stmt(self, meta: Meta, children: list[Any]) -> ast.ApplicationStmt:
        uses = self._pick(children, Items)
        return ast.ApplicationStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            uses=uses.items if uses else (),
        )

    def use_list(self, meta: Meta, children: list[ast.UseStmt]) -> Items:
        return Items(tuple(children))

    def use_stmt(self, meta: Meta, children: list[ast.Ident]) -> ast.UseStmt:
        return ast.UseStmt(pos=self._pos(meta), doc=self._doc(meta), name=children[0].value)

    def declare_stmt(self, meta: Meta, children: list[Any]) -> ast.DeclareStmt:
        return ast.DeclareStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            data_type=ast.DataKind.INT32,
            default=self._int(children[2], *INT32, what="int32 value"),
        )

    def declare_type(self, meta: Meta, children: list[Token]) -> str:
        return str(children[0])

    def template_stmt(self, meta: Meta, children: list[Any]) -> ast.TemplateStmt:
        return ast.TemplateStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            workspace=children[1],
            source=children[2].value,
        )

    def workspace_stmt(self, meta: Meta, children: list[Any]) -> ast.WorkspaceStmt:
        modifier = self._marker(children, "modifier")
        inherits = self._marker(children, "inherits")
        stmts: list[Any] = next((c for c in children if isinstance(c, list)), [])
        descriptor, statements = self._workspace_statements(stmts, allow_descriptor=True)
        return ast.WorkspaceStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=self._pick(children, ast.Ident).value,
            abstract=bool(modifier and modifier.value == "ABSTRACT"),
            alterable=bool(modifier and modifier.value == "ALTERABLE"),
            pool=self._marker(children, "pool") is not None,
            inherits=inherits.value if inherits else (),
            descriptor=descriptor,
            statements=statements,
        )

    def ws_modifier(self, meta: Meta, children: list[Token]) -> Marker:
        return Marker("modifier", self._pos(meta), str(children[0]))

    def pool_of(self, meta: Meta, children: list[Any]) -> Marker:
        return Marker("pool", self._pos(meta))

    def ws_inherits(self, meta: Meta, children: list[QNames]) -> Marker:
        return Marker("inherits", self._pos(meta), children[0].items)

    def alter_workspace_stmt(self, meta: Meta, children: list[Any]) -> ast.AlterWorkspaceStmt:
        stmts: list[Any] = children[1] if len(children) > 1 else []
        _, statements = self._workspace_statements(stmts, allow_descriptor=False)
        return ast.AlterWorkspaceStmt(pos=self._pos(meta), doc=self._doc(meta), name=children[0], statements=statements)

    def descriptor_stmt(self, meta: Meta, children: list[Any]) -> Descriptor:
        name = self._pick(children, ast.Ident)
        items = self._pick(children, Items)
        lpar: Marker = self._marker(children, "lpar") or Marker("lpar", self._pos(meta))
        return Descriptor(
            ast.TableStmt(
                pos=name.pos if name else lpar.pos,
                doc=self._doc(meta),
                name=name.value if name else "",
                items=items.items if items else (),
            )
        )

    def lpar(self, meta: Meta, children: list[Any]) -> Marker:
        return Marker("lpar", self._pos(meta))

    def use_workspace_stmt(self, meta: Meta, children: list[ast.Ident]) -> ast.UseWorkspaceStmt:
        return ast.UseWorkspaceStmt(pos=self._pos(meta), doc=self._doc(meta), workspace=children[0])

    def role_stmt(self, meta: Meta, children: list[Any]) -> ast.RoleStmt:
        return ast.RoleStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=self._pick(children, ast.Ident).value,
            published=isinstance(children[0], Token),
        )

    def tag_stmt(self, meta: Meta, children: list[Any]) -> ast.TagStmt:
        return ast.TagStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            feature=unquote(str(children[1])) if len(children) > 1 else None,
        )
