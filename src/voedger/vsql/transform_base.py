"""What every part of the syntax-tree builder shares: per-file state, intermediate values, helpers."""

from __future__ import annotations

import re
from contextvars import ContextVar
from contextvars import Token as Token_
from dataclasses import dataclass, field
from typing import Any

from lark import Token, Tree
from lark.tree import Meta

from voedger.vsql import ast
from voedger.vsql.comments import CommentIndex
from voedger.vsql.errors import Diagnostic

__all__ = ["BuilderBase", "FileState", "Items", "Marker", "Names", "QNames", "node_pos", "unquote"]

MAX_IDENT_LEN = 255
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


@dataclass(slots=True)
class FileState:
    """What the builder needs while one file is parsed: its name, comments and problems found."""

    filename: str
    comments: CommentIndex
    diagnostics: list[Diagnostic] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QNames:
    """A list of references (``a, pkg.b``)."""

    items: tuple[ast.DefQName, ...]


@dataclass(frozen=True, slots=True)
class Names:
    """A list of names (``a, b``)."""

    items: tuple[ast.Ident, ...]


@dataclass(frozen=True, slots=True)
class Items:
    """A list of finished nodes (table items, USEs, extensions...)."""

    items: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Marker:
    """An optional clause of a statement (``NOT NULL``, ``STATE(...)``, ``WITH ...``), by `kind`."""

    kind: str
    pos: ast.Pos
    value: Any = None


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A DESCRIPTOR clause, told apart from a TABLE until its workspace takes it."""

    table: ast.TableStmt


@dataclass(frozen=True, slots=True)
class Target:
    """The ``ON ...`` part of a privilege or limit."""

    kind: ast.ResourceKind
    scope: ast.TargetScope
    name: ast.DefQName | None
    tag: ast.DefQName | None
    pos: ast.Pos


@dataclass(frozen=True, slots=True)
class Ops:
    """The operations part of a privilege (``ALL[(cols)]`` or ``SELECT(cols), INSERT``)."""

    all_ops: bool
    all_columns: tuple[ast.Ident, ...]
    ops: tuple[ast.PrivilegeOp, ...]
    pos: ast.Pos


_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


def unquote(tok: str) -> str:
    body = tok[1:-1]
    return _UNESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)


def node_pos(node: object) -> ast.Pos:
    if isinstance(node, Descriptor):
        return node.table.pos
    pos = getattr(node, "pos", None)
    return pos if isinstance(pos, ast.Pos) else ast.Pos("?", 1, 1)


class BuilderBase:
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
    def _marker(children: list[Any], kind: str) -> Marker | None:
        for c in children:
            if isinstance(c, Marker) and c.kind == kind:
                return c
        return None

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

    def qname_list(self, meta: Meta, children: list[ast.DefQName]) -> QNames:
        return QNames(tuple(children))

    def name_list(self, meta: Meta, children: list[ast.Ident]) -> Names:
        return Names(tuple(children))
