"""Turns lark's parse tree of one file into `voedger.vsql.ast` nodes.

The grammar is deliberately a little wider than VSQL (every statement kind is accepted at every
level, grant and limit targets are parsed uniformly) so that the LALR tables stay small and
conflict-free; the checks that Voedger's grammar makes by construction are made here instead, each
with a message that says what is wrong. They are collected, not raised, so one pass reports them all.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from contextvars import ContextVar
from contextvars import Token as Token_
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree
from lark.tree import Meta

from voedger.vsql import ast
from voedger.vsql.errors import Diagnostic

__all__ = ["AstBuilder", "CommentIndex", "FileState"]

MAX_IDENT_LEN = 255
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
SYS_COLUMNS = frozenset({"ID", "ParentID", "IsActive", "QName", "Container"})


# --------------------------------------------------------------------------- doc comments


class CommentIndex:
    """The comments of one file, to find the doc comment block written just before a statement.

    A doc block is either one ``/* */`` comment or consecutive ``--`` lines, each alone on its line,
    separated from the statement by whitespace only; as in Voedger, the last such block wins.
    Comments are added in source order while the lexer runs.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._comments: list[Token] = []
        self._ends: list[int] = []

    def add(self, tok: Token) -> None:
        self._comments.append(tok)
        self._ends.append(_end(tok))

    def _own_line(self, tok: Token) -> bool:
        start = _start(tok)
        line_start = self._text.rfind("\n", 0, start) + 1
        return self._text[line_start:start].strip() == ""

    def _gap_is_blank(self, a: int, b: int) -> bool:
        return self._text[a:b].strip() == ""

    def doc_before(self, offset: int) -> tuple[str, ...]:
        i = bisect.bisect_right(self._ends, offset) - 1
        if i < 0 or not self._gap_is_blank(self._ends[i], offset):
            return ()
        last = self._comments[i]
        if not self._own_line(last):
            return ()
        if last.type == "BLOCK_COMMENT":
            body = str(last)[2:-2]
            return tuple(s for s in (ln.strip() for ln in body.split("\n")) if s)
        lines = [last]
        j = i - 1
        while j >= 0:
            prev = self._comments[j]
            if (
                prev.type != "LINE_COMMENT"
                or not self._own_line(prev)
                or not self._gap_is_blank(self._ends[j], _start(lines[0]))
            ):
                break
            lines.insert(0, prev)
            j -= 1
        out = (str(t)[2:].strip() for t in lines)
        return tuple(s for s in out if s)


@dataclass(slots=True)
class FileState:
    """What the builder needs while one file is parsed: its name, comments and problems found."""

    filename: str
    comments: CommentIndex
    diagnostics: list[Diagnostic] = dataclasses.field(default_factory=list)


def _start(tok: Token) -> int:
    return tok.start_pos or 0


def _end(tok: Token) -> int:
    return tok.end_pos if tok.end_pos is not None else _start(tok) + len(tok)


# --------------------------------------------------------------------------- intermediate values


@dataclass(frozen=True, slots=True)
class _QNames:
    items: tuple[ast.DefQName, ...]


@dataclass(frozen=True, slots=True)
class _Names:
    items: tuple[ast.Ident, ...]


@dataclass(frozen=True, slots=True)
class _Items:
    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Marker:
    kind: str
    pos: ast.Pos
    value: Any = None


@dataclass(frozen=True, slots=True)
class _Descriptor:
    table: ast.TableStmt


@dataclass(frozen=True, slots=True)
class _Target:
    kind: ast.ResourceKind
    scope: ast.TargetScope
    name: ast.DefQName | None
    tag: ast.DefQName | None
    pos: ast.Pos


@dataclass(frozen=True, slots=True)
class _Ops:
    all_ops: bool
    all_columns: tuple[ast.Ident, ...]
    ops: tuple[ast.PrivilegeOp, ...]
    pos: ast.Pos


_STMT_KEYWORD: dict[type, str] = {
    ast.ImportStmt: "IMPORT SCHEMA",
    ast.ApplicationStmt: "APPLICATION",
    ast.DeclareStmt: "DECLARE",
    ast.TemplateStmt: "TEMPLATE",
    ast.WorkspaceStmt: "WORKSPACE",
    ast.AlterWorkspaceStmt: "ALTER WORKSPACE",
    _Descriptor: "DESCRIPTOR",
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

_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


def _unquote(tok: str) -> str:
    body = tok[1:-1]
    return _UNESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)


def _keyword(node: object) -> str:
    return _STMT_KEYWORD.get(type(node), type(node).__name__)


# --------------------------------------------------------------------------- the transformer


class AstBuilder:
    """Builds the AST from lark's tree; problems are collected, never raised.

    Each grammar rule has a method taking the rule's position (`meta`) and its already built
    children. The walk is iterative, so deeply nested input cannot exhaust the stack. The
    per-file state lives in a context variable, shared with the lexer callback that collects
    comments.
    """

    def __init__(self) -> None:
        self._state: ContextVar[FileState] = ContextVar("vsql_file_state")
        self._methods: dict[str, Any] = {}

    def transform(self, tree: Tree[Token]) -> Any:
        """Build the node of `tree`, children first."""
        order: list[Tree[Token]] = []
        todo = [tree]
        while todo:
            node = todo.pop()
            order.append(node)
            todo.extend(c for c in node.children if isinstance(c, Tree))
        built: dict[int, Any] = {}
        methods = self._methods
        for node in reversed(order):
            method = methods.get(node.data)
            if method is None:
                method = methods[node.data] = getattr(self, node.data)
            children = [built.pop(id(c)) if isinstance(c, Tree) else c for c in node.children]
            built[id(node)] = method(node.meta, children)
        return built[id(tree)]

    def begin(self, state: FileState) -> Token_[FileState]:
        return self._state.set(state)

    def end(self, token: Token_[FileState]) -> None:
        self._state.reset(token)

    @property
    def filename(self) -> str:
        return self._state.get().filename

    @property
    def comments(self) -> CommentIndex:
        return self._state.get().comments

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self._state.get().diagnostics

    # ------------------------------------------------------------------ helpers

    def _pos(self, meta: Meta) -> ast.Pos:
        if getattr(meta, "empty", True):
            return ast.Pos(self.filename, 1, 1)
        return ast.Pos(self.filename, meta.line, meta.column)

    def _tpos(self, tok: Token) -> ast.Pos:
        return ast.Pos(self.filename, tok.line or 1, tok.column or 1)

    def _doc(self, meta: Meta) -> tuple[str, ...]:
        if getattr(meta, "empty", True):
            return ()
        return self.comments.doc_before(meta.start_pos)

    def _err(self, pos: ast.Pos, message: str) -> None:
        self.diagnostics.append(Diagnostic(pos.file, pos.line, pos.col, message))

    def _int(self, tok: Token, lo: int, hi: int, what: str) -> int:
        value = int(str(tok))
        if not lo <= value <= hi:
            self._err(self._tpos(tok), f"{what} {value} out of range [{lo}, {hi}]")
            return max(lo, min(hi, value))
        return value

    @staticmethod
    def _pick(children: list[Any], cls: type) -> Any:
        for c in children:
            if isinstance(c, cls):
                return c
        return None

    @staticmethod
    def _marker(children: list[Any], kind: str) -> _Marker | None:
        for c in children:
            if isinstance(c, _Marker) and c.kind == kind:
                return c
        return None

    # ------------------------------------------------------------------ names

    def name(self, meta: Meta, children: list[Token]) -> ast.Ident:
        tok = children[0]
        value = str(tok).strip('"')
        if len(value) > MAX_IDENT_LEN:
            self._err(self._tpos(tok), f"identifier too long: at most {MAX_IDENT_LEN} characters")
        return ast.Ident(pos=self._tpos(tok), value=value)

    def qname(self, meta: Meta, children: list[Token]) -> ast.DefQName:
        parts = [str(t).strip('"') for t in children]
        for tok, part in zip(children, parts, strict=True):
            if len(part) > MAX_IDENT_LEN:
                self._err(self._tpos(tok), f"identifier too long: at most {MAX_IDENT_LEN} characters")
        pos = self._tpos(children[0])
        if len(parts) == 2:
            return ast.DefQName(pos=pos, package=parts[0], name=parts[1])
        return ast.DefQName(pos=pos, package="", name=parts[0])

    def qname_list(self, meta: Meta, children: list[ast.DefQName]) -> _QNames:
        return _QNames(tuple(children))

    def name_list(self, meta: Meta, children: list[ast.Ident]) -> _Names:
        return _Names(tuple(children))

    # ------------------------------------------------------------------ statement lists

    def start(self, meta: Meta, children: list[Any]) -> ast.File:
        stmts: list[Any] = children[0] if children else []
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
                self._err(_node_pos(s), f"{_keyword(s)} must be declared inside a WORKSPACE")
        return ast.File(
            pos=ast.Pos(self.filename, 1, 1),
            path=self.filename,
            imports=tuple(imports),
            statements=tuple(statements),
        )

    def stmt_list(self, meta: Meta, children: list[Any]) -> list[Any]:
        return children

    def _workspace_statements(
        self, stmts: list[Any], allow_descriptor: bool
    ) -> tuple[ast.TableStmt | None, tuple[ast.WorkspaceStatement, ...]]:
        descriptor: ast.TableStmt | None = None
        out: list[ast.WorkspaceStatement] = []
        for i, s in enumerate(stmts):
            if isinstance(s, _Descriptor):
                if not allow_descriptor:
                    self._err(s.table.pos, "DESCRIPTOR is only allowed in WORKSPACE")
                elif i != 0:
                    self._err(s.table.pos, "DESCRIPTOR must be the first statement of a WORKSPACE")
                else:
                    descriptor = s.table
            elif isinstance(s, _ROOT_ONLY):
                where = "before all other statements" if isinstance(s, ast.ImportStmt) else "at package level"
                self._err(_node_pos(s), f"{_keyword(s)} is only allowed {where}")
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

    # ------------------------------------------------------------------ package level

    def import_stmt(self, meta: Meta, children: list[Any]) -> ast.ImportStmt:
        alias = self._pick(children, ast.Ident)
        return ast.ImportStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            path=_unquote(str(children[0])),
            alias=alias.value if alias else None,
        )

    def application_stmt(self, meta: Meta, children: list[Any]) -> ast.ApplicationStmt:
        uses = self._pick(children, _Items)
        return ast.ApplicationStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            uses=uses.items if uses else (),
        )

    def use_list(self, meta: Meta, children: list[ast.UseStmt]) -> _Items:
        return _Items(tuple(children))

    def use_stmt(self, meta: Meta, children: list[ast.Ident]) -> ast.UseStmt:
        return ast.UseStmt(pos=self._pos(meta), doc=self._doc(meta), name=children[0].value)

    def declare_stmt(self, meta: Meta, children: list[Any]) -> ast.DeclareStmt:
        return ast.DeclareStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            data_type=ast.DataKind.INT32,
            default=self._int(children[2], *_INT32, what="int32 value"),
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

    # ------------------------------------------------------------------ workspaces

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

    def ws_modifier(self, meta: Meta, children: list[Token]) -> _Marker:
        return _Marker("modifier", self._pos(meta), str(children[0]))

    def pool_of(self, meta: Meta, children: list[Any]) -> _Marker:
        return _Marker("pool", self._pos(meta))

    def ws_inherits(self, meta: Meta, children: list[_QNames]) -> _Marker:
        return _Marker("inherits", self._pos(meta), children[0].items)

    def alter_workspace_stmt(self, meta: Meta, children: list[Any]) -> ast.AlterWorkspaceStmt:
        stmts: list[Any] = children[1] if len(children) > 1 else []
        _, statements = self._workspace_statements(stmts, allow_descriptor=False)
        return ast.AlterWorkspaceStmt(pos=self._pos(meta), doc=self._doc(meta), name=children[0], statements=statements)

    def descriptor_stmt(self, meta: Meta, children: list[Any]) -> _Descriptor:
        name = self._pick(children, ast.Ident)
        items = self._pick(children, _Items)
        lpar: _Marker = self._marker(children, "lpar") or _Marker("lpar", self._pos(meta))
        return _Descriptor(
            ast.TableStmt(
                pos=name.pos if name else lpar.pos,
                doc=self._doc(meta),
                name=name.value if name else "",
                items=items.items if items else (),
            )
        )

    def lpar(self, meta: Meta, children: list[Any]) -> _Marker:
        return _Marker("lpar", self._pos(meta))

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
            feature=_unquote(str(children[1])) if len(children) > 1 else None,
        )

    # ------------------------------------------------------------------ tables and types

    def table_stmt(self, meta: Meta, children: list[Any]) -> ast.TableStmt:
        rest = [c for c in children if not isinstance(c, Token)]
        name: ast.Ident = rest[0]
        inherits = rest[1] if len(rest) > 1 and isinstance(rest[1], ast.DefQName) else None
        items = self._pick(children, _Items)
        with_ = self._marker(children, "with")
        return ast.TableStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=name.value,
            abstract=isinstance(children[0], Token),
            inherits=inherits,
            items=items.items if items else (),
            with_=with_.value if with_ else (),
        )

    def type_stmt(self, meta: Meta, children: list[Any]) -> ast.TypeStmt:
        items = self._pick(children, _Items)
        return ast.TypeStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            items=items.items if items else (),
        )

    def table_items(self, meta: Meta, children: list[Any]) -> _Items:
        return _Items(tuple(children))

    def nested_table(self, meta: Meta, children: list[Any]) -> ast.NestedTableItem:
        return ast.NestedTableItem(pos=self._pos(meta), container=children[0].value, table=children[1])

    def ref_field(self, meta: Meta, children: list[Any]) -> ast.RefFieldItem:
        refs = self._pick(children, _QNames)
        return ast.RefFieldItem(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            refs=refs.items if refs else (),
            not_null=self._marker(children, "not_null") is not None,
        )

    def data_field(self, meta: Meta, children: list[Any]) -> ast.FieldItem:
        name: ast.Ident = children[0]
        ftype: ast.FieldType = children[1]
        opts: dict[str, _Marker] = {}
        for opt in children[2:]:
            if opt.kind in opts:
                self._err(opt.pos, f"duplicate {_OPT_NAMES[opt.kind]} in field {name.value}")
                continue
            opts[opt.kind] = opt
        regexp = opts.get("check_regexp")
        return ast.FieldItem(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=name.value,
            type=ftype,
            not_null="not_null" in opts,
            verifiable="verifiable" in opts,
            default_int=opts["default_int"].value if "default_int" in opts else None,
            default_str=opts["default_str"].value if "default_str" in opts else None,
            check_regexp=regexp.value if regexp else None,
            check_regexp_pos=regexp.pos if regexp else None,
            check_expr=opts["check_expr"].value if "check_expr" in opts else None,
        )

    def field_set(self, meta: Meta, children: list[ast.DefQName]) -> ast.FieldSetItem:
        return ast.FieldSetItem(pos=self._pos(meta), type=children[0])

    def constraint(self, meta: Meta, children: list[Any]) -> Any:
        name = children[0].value if len(children) > 1 else None
        body = children[-1]
        pos, doc = self._pos(meta), self._doc(meta)
        if body.kind == "unique_field":
            return ast.UniqueFieldConstraint(pos=pos, doc=doc, name=name, field=body.value)
        if body.kind == "unique":
            return ast.UniqueConstraint(pos=pos, doc=doc, name=name, fields=body.value)
        return ast.CheckConstraint(pos=pos, doc=doc, name=name, expr=body.value)

    def unique_field(self, meta: Meta, children: list[ast.Ident]) -> _Marker:
        return _Marker("unique_field", self._pos(meta), children[0])

    def unique(self, meta: Meta, children: list[_Names]) -> _Marker:
        return _Marker("unique", self._pos(meta), children[0].items)

    def table_check(self, meta: Meta, children: list[ast.Expr]) -> _Marker:
        return _Marker("check", self._pos(meta), children[0])

    def field_type(self, meta: Meta, children: list[Any]) -> ast.FieldType:
        result: ast.FieldType = children[0]
        return result

    def opt_not_null(self, meta: Meta, children: list[Any]) -> _Marker:
        return _Marker("not_null", self._pos(meta))

    def opt_verifiable(self, meta: Meta, children: list[Any]) -> _Marker:
        return _Marker("verifiable", self._pos(meta))

    def opt_default_int(self, meta: Meta, children: list[Token]) -> _Marker:
        return _Marker("default_int", self._pos(meta), self._int(children[0], *_INT64, what="DEFAULT"))

    def opt_default_str(self, meta: Meta, children: list[Token]) -> _Marker:
        return _Marker("default_str", self._pos(meta), _unquote(str(children[0])))

    def opt_check_regexp(self, meta: Meta, children: list[Token]) -> _Marker:
        return _Marker("check_regexp", self._tpos(children[0]), _unquote(str(children[0])))

    def opt_check_expr(self, meta: Meta, children: list[ast.Expr]) -> _Marker:
        return _Marker("check_expr", self._pos(meta), children[0])

    def not_null(self, meta: Meta, children: list[Any]) -> _Marker:
        return _Marker("not_null", self._pos(meta))

    def _dt(self, meta: Meta, kind: ast.DataKind, children: list[Any]) -> ast.DataType:
        length = children[0] if children else None
        return ast.DataType(pos=self._pos(meta), kind=kind, length=length)

    def dt_varchar(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.VARCHAR, children)

    def dt_bytes(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.BYTES, children)

    def dt_int8(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.INT8, [])

    def dt_int16(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.INT16, [])

    def dt_int32(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.INT32, [])

    def dt_int64(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.INT64, [])

    def dt_float32(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.FLOAT32, [])

    def dt_float64(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.FLOAT64, [])

    def dt_timestamp(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.TIMESTAMP, [])

    def dt_currency(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.CURRENCY, [])

    def dt_bool(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.BOOL, [])

    def dt_blob(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.BLOB, [])

    def dt_qname(self, meta: Meta, children: list[Any]) -> ast.DataType:
        return self._dt(meta, ast.DataKind.QNAME, [])

    def length(self, meta: Meta, children: list[Token]) -> int:
        value = int(str(children[0]))
        if value < 0 or str(children[0]).startswith("+"):
            self._err(self._tpos(children[0]), f"invalid length {children[0]}: a positive number is expected")
            return 0
        return value

    def with_clause(self, meta: Meta, children: list[Any]) -> _Marker:
        items = tuple(c for c in children if not isinstance(c, Token))
        return _Marker("with", self._pos(meta), items)

    def with_comment(self, meta: Meta, children: list[Token]) -> ast.WithComment:
        return ast.WithComment(pos=self._pos(meta), text=_unquote(str(children[0])))

    def with_tags(self, meta: Meta, children: list[_QNames]) -> ast.WithTags:
        return ast.WithTags(pos=self._pos(meta), tags=children[0].items)

    # ------------------------------------------------------------------ views

    def view_stmt(self, meta: Meta, children: list[Any]) -> ast.ViewStmt:
        items = self._pick(children, _Items)
        with_ = self._marker(children, "with")
        return ast.ViewStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            items=items.items if items else (),
            result_of=self._pick(children, ast.DefQName),
            with_=with_.value if with_ else (),
        )

    def view_items(self, meta: Meta, children: list[Any]) -> _Items:
        return _Items(tuple(children))

    def primary_key(self, meta: Meta, children: list[ast.PrimaryKey]) -> ast.PrimaryKey:
        pk = children[0]
        if pk.pos.line == 0:  # empty parentheses: place it at PRIMARY KEY
            return dataclasses.replace(pk, pos=self._pos(meta))
        return pk

    def pk_body(self, meta: Meta, children: list[Any]) -> ast.PrimaryKey:
        part = self._marker(children, "partition")
        clust = self._pick(children, _Names)
        pos = ast.Pos(self.filename, 0, 0) if meta.empty else self._pos(meta)
        return ast.PrimaryKey(
            pos=pos,
            partition=part.value if part else (),
            clustering=clust.items if clust else (),
        )

    def pk_partition(self, meta: Meta, children: list[_Names]) -> _Marker:
        return _Marker("partition", self._pos(meta), children[0].items)

    def view_ref_field(self, meta: Meta, children: list[Any]) -> ast.ViewRefField:
        refs = self._pick(children, _QNames)
        return ast.ViewRefField(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            refs=refs.items if refs else (),
            not_null=self._marker(children, "not_null") is not None,
        )

    def view_record_field(self, meta: Meta, children: list[Any]) -> ast.ViewRecordField:
        return ast.ViewRecordField(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            not_null=self._marker(children, "not_null") is not None,
        )

    def view_field(self, meta: Meta, children: list[Any]) -> ast.ViewField:
        return ast.ViewField(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            type=children[1],
            not_null=self._marker(children, "not_null") is not None,
        )

    # ------------------------------------------------------------------ extensions

    def ext_engine_stmt(self, meta: Meta, children: list[Any]) -> ast.ExtEngineStmt:
        engine = ast.Engine(children[0])
        items = self._pick(children, _Items)
        stmts = tuple(
            s if isinstance(s, ast.StorageStmt) else dataclasses.replace(s, engine=engine)
            for s in (items.items if items else ())
        )
        return ast.ExtEngineStmt(pos=self._pos(meta), doc=self._doc(meta), engine=engine, statements=stmts)

    def engine(self, meta: Meta, children: list[Token]) -> str:
        return str(children[0])

    def ext_list(self, meta: Meta, children: list[Any]) -> _Items:
        return _Items(tuple(children))

    def command_stmt(self, meta: Meta, children: list[Any]) -> ast.CommandStmt:
        params = self._marker(children, "cmd_params")
        param, unlogged = params.value if params else (None, None)
        state = self._marker(children, "state")
        intents = self._marker(children, "intents")
        returns = self._marker(children, "returns")
        with_ = self._marker(children, "with")
        return ast.CommandStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            engine=ast.Engine.BUILTIN,
            param=param,
            unlogged_param=unlogged,
            state=state.value if state else (),
            intents=intents.value if intents else (),
            returns=returns.value if returns else None,
            with_=with_.value if with_ else (),
        )

    def command_params(self, meta: Meta, children: list[Any]) -> _Marker:
        param = self._pick(children, ast.Param)
        unlogged = self._marker(children, "unlogged")
        return _Marker("cmd_params", self._pos(meta), (param, unlogged.value if unlogged else None))

    def unlogged_param(self, meta: Meta, children: list[ast.Param]) -> _Marker:
        return _Marker("unlogged", self._pos(meta), children[0])

    def query_stmt(self, meta: Meta, children: list[Any]) -> ast.QueryStmt:
        params = self._marker(children, "query_params")
        state = self._marker(children, "state")
        returns = self._marker(children, "returns")
        with_ = self._marker(children, "with")
        return ast.QueryStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            engine=ast.Engine.BUILTIN,
            param=params.value if params else None,
            state=state.value if state else (),
            returns=returns.value if returns else None,
            with_=with_.value if with_ else (),
        )

    def query_params(self, meta: Meta, children: list[Any]) -> _Marker:
        return _Marker("query_params", self._pos(meta), children[0] if children else None)

    def returns(self, meta: Meta, children: list[ast.Param]) -> _Marker:
        return _Marker("returns", self._pos(meta), children[0])

    def param_any(self, meta: Meta, children: list[Any]) -> ast.Param:
        return ast.Param(pos=self._pos(meta), kind=ast.ParamKind.ANY)

    def param_void(self, meta: Meta, children: list[Any]) -> ast.Param:
        return ast.Param(pos=self._pos(meta), kind=ast.ParamKind.VOID)

    def param_def(self, meta: Meta, children: list[ast.DefQName]) -> ast.Param:
        return ast.Param(pos=self._pos(meta), kind=ast.ParamKind.DEF, type=children[0])

    def state(self, meta: Meta, children: list[ast.StateStorage]) -> _Marker:
        return _Marker("state", self._pos(meta), tuple(children))

    def intents(self, meta: Meta, children: list[ast.StateStorage]) -> _Marker:
        return _Marker("intents", self._pos(meta), tuple(children))

    def state_storage(self, meta: Meta, children: list[Any]) -> ast.StateStorage:
        entities = self._pick(children, _QNames)
        return ast.StateStorage(pos=self._pos(meta), storage=children[0], entities=entities.items if entities else ())

    def projector_stmt(self, meta: Meta, children: list[Any]) -> ast.ProjectorStmt:
        state = self._marker(children, "state")
        intents = self._marker(children, "intents")
        return ast.ProjectorStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=self._pick(children, ast.Ident).value,
            engine=ast.Engine.BUILTIN,
            triggers=tuple(c for c in children if isinstance(c, ast.ProjectorTrigger)),
            sync=isinstance(children[0], Token),
            state=state.value if state else (),
            intents=intents.value if intents else (),
            including_errors=self._marker(children, "including_errors") is not None,
        )

    def including_errors(self, meta: Meta, children: list[Any]) -> _Marker:
        return _Marker("including_errors", self._pos(meta))

    def trigger_execute(self, meta: Meta, children: list[Any]) -> ast.ProjectorTrigger:
        return ast.ProjectorTrigger(
            pos=self._pos(meta),
            on=children[-1].value,
            execute=True,
            with_param=self._marker(children, "with_param") is not None,
        )

    def trigger_actions(self, meta: Meta, children: list[Any]) -> ast.ProjectorTrigger:
        actions = tuple(c for c in children if isinstance(c, ast.TableAction))
        for i, act in enumerate(actions):
            if act in actions[:i]:
                self._err(self._pos(meta), f"duplicate {act} in projector trigger")
        return ast.ProjectorTrigger(pos=self._pos(meta), on=children[-1].value, actions=actions)

    def trigger_cron(self, meta: Meta, children: list[Token]) -> ast.ProjectorTrigger:
        return ast.ProjectorTrigger(pos=self._pos(meta), cron=_unquote(str(children[0])))

    def with_param(self, meta: Meta, children: list[Any]) -> _Marker:
        return _Marker("with_param", self._pos(meta))

    def table_action(self, meta: Meta, children: list[Token]) -> ast.TableAction:
        return ast.TableAction(str(children[0]))

    def trigger_target(self, meta: Meta, children: list[Any]) -> _Marker:
        first = children[0]
        items = first.items if isinstance(first, _QNames) else (first,)
        return _Marker("target", self._pos(meta), items)

    def job_stmt(self, meta: Meta, children: list[Any]) -> ast.JobStmt:
        cron = next((c for c in children if isinstance(c, Token)), None)
        state = self._marker(children, "state")
        intents = self._marker(children, "intents")
        return ast.JobStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            engine=ast.Engine.BUILTIN,
            cron=_unquote(str(cron)) if cron is not None else None,
            cron_pos=self._tpos(cron) if cron is not None else None,
            state=state.value if state else (),
            intents=intents.value if intents else (),
        )

    def function_stmt(self, meta: Meta, children: list[Any]) -> ast.FunctionStmt:
        params = self._pick(children, _Items)
        return ast.FunctionStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            engine=ast.Engine.BUILTIN,
            params=params.items if params else (),
            returns=children[-1],
        )

    def function_params(self, meta: Meta, children: list[ast.FunctionParam]) -> _Items:
        return _Items(tuple(children))

    def named_function_param(self, meta: Meta, children: list[Any]) -> ast.FunctionParam:
        return ast.FunctionParam(pos=self._pos(meta), name=children[0].value, type=children[1])

    def unnamed_function_param(self, meta: Meta, children: list[Any]) -> ast.FunctionParam:
        return ast.FunctionParam(pos=self._pos(meta), name=None, type=children[0])

    def storage_stmt(self, meta: Meta, children: list[Any]) -> ast.StorageStmt:
        entities = [c.value for c in children if isinstance(c, _Marker) and c.kind == "entity"]
        return ast.StorageStmt(
            pos=self._pos(meta),
            doc=self._doc(meta),
            name=children[0].value,
            ops=tuple(c for c in children if isinstance(c, ast.StorageOp)),
            entity_record="RECORD" in entities,
            entity_view="VIEW" in entities,
        )

    def storage_op(self, meta: Meta, children: list[Any]) -> ast.StorageOp:
        return ast.StorageOp(pos=self._pos(meta), op=children[0], scopes=tuple(children[1:]))

    def storage_op_kind(self, meta: Meta, children: list[Token]) -> str:
        return str(children[0])

    def storage_scope(self, meta: Meta, children: list[Token]) -> ast.StorageScope:
        return ast.StorageScope(str(children[0]))

    def storage_entity(self, meta: Meta, children: list[str]) -> _Marker:
        return _Marker("entity", self._pos(meta), children[0])

    def entity_kind(self, meta: Meta, children: list[Token]) -> str:
        return str(children[0])

    # ------------------------------------------------------------------ ACL

    def grant_stmt(self, meta: Meta, children: list[Any]) -> ast.GrantStmt:
        return ast.GrantStmt(pos=self._pos(meta), doc=self._doc(meta), privilege=children[0], to=children[1])

    def revoke_stmt(self, meta: Meta, children: list[Any]) -> ast.RevokeStmt:
        return ast.RevokeStmt(pos=self._pos(meta), doc=self._doc(meta), privilege=children[0], from_=children[1])

    def privilege_role(self, meta: Meta, children: list[ast.DefQName]) -> ast.Privilege:
        return ast.Privilege(pos=self._pos(meta), kind=ast.ResourceKind.ROLE, name=children[0])

    def privilege_on(self, meta: Meta, children: list[Any]) -> ast.Privilege:
        ops: _Ops = children[0]
        target: _Target = children[1]
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

    def _check_privilege(self, ops: _Ops, target: _Target) -> None:
        """The combinations that Voedger's grammar allows, checked here with a readable message."""
        plural = next(p for p, k in _PLURAL.items() if k is target.kind)
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

    def ops_all(self, meta: Meta, children: list[Any]) -> _Ops:
        cols: tuple[ast.Ident, ...] = children[0] if children else ()
        for col in cols:
            if "." in col.value:
                self._err(col.pos, f"system field {col.value} not allowed with ALL")
        return _Ops(True, cols, (), self._pos(meta))

    def ops_list(self, meta: Meta, children: list[ast.PrivilegeOp]) -> _Ops:
        return _Ops(False, (), tuple(children), self._pos(meta))

    def op_item(self, meta: Meta, children: list[Any]) -> ast.PrivilegeOp:
        op: ast.PrivilegeOp = children[0]
        return dataclasses.replace(op, columns=children[1]) if len(children) > 1 else op

    def columns(self, meta: Meta, children: list[_QNames]) -> tuple[ast.Ident, ...]:
        out: list[ast.Ident] = []
        for qn in children[0].items:
            if qn.package and (qn.package != "sys" or qn.name not in SYS_COLUMNS):
                self._err(qn.pos, f"invalid column {qn}: expected a field name or one of sys.ID, "
                          "sys.ParentID, sys.IsActive, sys.QName, sys.Container")  # fmt: skip
            out.append(ast.Ident(pos=qn.pos, value=str(qn)))
        return tuple(out)

    def operation(self, meta: Meta, children: list[Token]) -> ast.PrivilegeOp:
        return ast.PrivilegeOp(pos=self._pos(meta), op=ast.Operation(str(children[0])))

    def target_one(self, meta: Meta, children: list[Any]) -> _Target:
        return _Target(children[0], ast.TargetScope.ONE, children[1], None, self._pos(meta))

    def target_all(self, meta: Meta, children: list[Any]) -> _Target:
        tag = self._marker(children, "tag")
        return _Target(children[0], ast.TargetScope.ALL, None, tag.value if tag else None, self._pos(meta))

    def resource(self, meta: Meta, children: list[Token]) -> ast.ResourceKind:
        return ast.ResourceKind(str(children[0]))

    def resources(self, meta: Meta, children: list[Token]) -> ast.ResourceKind:
        return _PLURAL[str(children[0])]

    def with_tag(self, meta: Meta, children: list[ast.DefQName]) -> _Marker:
        return _Marker("tag", self._pos(meta), children[0])

    # ------------------------------------------------------------------ rates and limits

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

    def per_app_partition(self, meta: Meta, children: list[Any]) -> _Marker:
        return _Marker("scope", self._pos(meta), ast.RateObjectScope.APP_PARTITION)

    def per_workspace(self, meta: Meta, children: list[Any]) -> _Marker:
        return _Marker("scope", self._pos(meta), ast.RateObjectScope.WORKSPACE)

    def per_subject(self, meta: Meta, children: list[Any]) -> _Marker:
        return _Marker("scope", self._pos(meta), ast.RateSubjectScope.SUBJECT)

    def per_ip(self, meta: Meta, children: list[Any]) -> _Marker:
        return _Marker("scope", self._pos(meta), ast.RateSubjectScope.IP)

    def limit_stmt(self, meta: Meta, children: list[Any]) -> ast.LimitStmt:
        ops = self._marker(children, "limit_ops")
        target: _Target = self._pick(children, _Target)
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

    def limit_ops(self, meta: Meta, children: list[ast.PrivilegeOp]) -> _Marker:
        return _Marker("limit_ops", self._pos(meta), tuple(children))

    def limit_one(self, meta: Meta, children: list[Any]) -> _Target:
        return _Target(children[0], ast.TargetScope.ONE, children[1], None, self._pos(meta))

    def limit_all(self, meta: Meta, children: list[Any]) -> _Target:
        return _Target(children[0], ast.TargetScope.ALL, None, None, self._pos(meta))

    def limit_each(self, meta: Meta, children: list[Any]) -> _Target:
        return _Target(children[0], ast.TargetScope.EACH, None, None, self._pos(meta))

    def limit_tag(self, meta: Meta, children: list[ast.DefQName]) -> _Marker:
        return _Marker("tag", self._pos(meta), children[0])

    # ------------------------------------------------------------------ expressions

    def _fold(self, meta: Meta, op: str, children: list[ast.Expr]) -> ast.Expr:
        result = children[0]
        for right in children[1:]:
            result = ast.BinaryOp(pos=self._pos(meta), op=op, left=result, right=right)
        return result

    def or_expr(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return self._fold(meta, "OR", children)

    def and_expr(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return self._fold(meta, "AND", children)

    def not_op(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return ast.UnaryOp(pos=self._pos(meta), op="NOT", operand=children[0])

    def compare(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.BinaryOp(pos=self._pos(meta), op=str(children[1]), left=children[0], right=children[2])

    def arith(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.BinaryOp(pos=self._pos(meta), op=str(children[1]), left=children[0], right=children[2])

    def is_null(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.IsNull(pos=self._pos(meta), operand=children[0], negated=len(children) > 1)

    def between(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return ast.Between(pos=self._pos(meta), operand=children[0], low=children[1], high=children[2])

    def in_list(self, meta: Meta, children: list[ast.Expr]) -> ast.Expr:
        return ast.InList(pos=self._pos(meta), operand=children[0], items=tuple(children[1:]))

    def symbol_ref(self, meta: Meta, children: list[ast.DefQName]) -> ast.Expr:
        return ast.SymbolRef(pos=self._pos(meta), name=children[0])

    def func_call(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.FuncCall(pos=self._pos(meta), name=children[0], args=tuple(children[1:]))

    def lit_int(self, meta: Meta, children: list[Token]) -> ast.Expr:
        return ast.Literal(pos=self._pos(meta), value=int(str(children[0])))

    def lit_float(self, meta: Meta, children: list[Token]) -> ast.Expr:
        return ast.Literal(pos=self._pos(meta), value=float(str(children[0])))

    def lit_str(self, meta: Meta, children: list[Token]) -> ast.Expr:
        return ast.Literal(pos=self._pos(meta), value=_unquote(str(children[0])))

    def lit_true(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.Literal(pos=self._pos(meta), value=True)

    def lit_false(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.Literal(pos=self._pos(meta), value=False)

    def lit_null(self, meta: Meta, children: list[Any]) -> ast.Expr:
        return ast.Literal(pos=self._pos(meta), value=None)


_OPT_NAMES = {
    "not_null": "NOT NULL",
    "verifiable": "VERIFIABLE",
    "default_int": "DEFAULT",
    "default_str": "DEFAULT",
    "check_regexp": "CHECK",
    "check_expr": "CHECK",
}

_PLURAL = {
    "COMMANDS": ast.ResourceKind.COMMAND,
    "QUERIES": ast.ResourceKind.QUERY,
    "VIEWS": ast.ResourceKind.VIEW,
    "TABLES": ast.ResourceKind.TABLE,
}


def _node_pos(node: object) -> ast.Pos:
    if isinstance(node, _Descriptor):
        return node.table.pos
    pos = getattr(node, "pos", None)
    return pos if isinstance(pos, ast.Pos) else ast.Pos("?", 1, 1)
