"""The small SQL of ``q.sys.SqlQuery``: ``select <fields> from [app.][workspace.]pkg.Name[.id] [where ...] [limit n]``.

Two steps, as Voedger reads it:

1. :func:`parse_query` splits the Voedger-specific prefix of the source off the statement: an
   application (``owner.app.``), a workspace (``123.`` a WSID, ``a2.`` the application workspace
   number 2, ``"login".`` the application workspace of a login) and a trailing ``.N`` (a record ID
   or a log offset);
2. :func:`parse_select` parses what is left, ``select ... from pkg.Name where ... limit ...``, into
   a small tree. Its node classes carry the names Voedger's SQL parser gives them, because
   Voedger's error messages name them (``unsupported expression: *sqlparser.AndExpr``) and
   clients see those messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from voedger.syserror import SysError

__all__ = [
    "AndExpr",
    "ColName",
    "ComparisonExpr",
    "Expr",
    "FuncExpr",
    "Op",
    "OrExpr",
    "ParenExpr",
    "SQLVal",
    "Select",
    "ValTuple",
    "WorkspaceKind",
    "go_type",
    "parse_int64",
    "parse_query",
    "parse_select",
    "parse_statement",
    "parse_uint64",
]


class WorkspaceKind(Enum):
    NONE = 0
    WSID = 1
    PSEUDO = 2  # "login".
    APP_WS_NUM = 3  # a<N>.


@dataclass(frozen=True)
class Op:
    """A statement with Voedger's prefix taken apart."""

    app: str  # "owner/app" or "" for the current application
    ws_kind: WorkspaceKind
    ws_value: int | str  # the WSID, the app workspace number, or the login
    qname: str
    entity_id: int  # the ``.N`` after the QName; 0 if none
    clean_sql: str  # ``select <fields> from <qname> <rest>``
    without_app_and_ws: str  # the statement to forward to another workspace


_NAME: Final = r"[^\d\s.][a-zA-Z0-9_-]+"
_QUERY: Final = re.compile(
    r"^\s*(?P<op>(\w*\s*update\s*\w*)|(\w*\s*insert)|(select\s+.+\s+from))\s+"
    rf"(?P<app>{_NAME}\.{_NAME}\.)?"
    r"((?P<wsid>\d+\.)|(?P<appws>a\d+\.)|(?P<login>\".+\"\.))?"
    rf"(?P<qname>{_NAME}\.{_NAME})"
    r"(?P<id>\.\d+)?"
    r"(?P<pars>\s+.*)?$",
    re.IGNORECASE | re.DOTALL,
)


_MAX_UINT64: Final = (1 << 64) - 1


def parse_uint64(text: str) -> int:
    """A decimal uint64, as Go's strconv.ParseUint reads it (its messages too)."""
    if not text.isdigit() or not text.isascii():
        raise SysError(400, f'strconv.ParseUint: parsing "{text}": invalid syntax')
    value = int(text)
    if value > _MAX_UINT64:
        raise SysError(400, f'strconv.ParseUint: parsing "{text}": value out of range')
    return value


def parse_int64(text: str) -> int:
    """A decimal int64, as Go's strconv.ParseInt reads it (its messages too)."""
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isdigit() or not digits.isascii():
        raise SysError(400, f'strconv.ParseInt: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(1 << 63) <= value < 1 << 63:
        raise SysError(400, f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def parse_query(query: str) -> Op:
    op, parsed = parse_statement(query)
    if not op.lower().startswith("select"):
        raise SysError(400, "'select' operation is expected")
    return parsed


def parse_statement(query: str) -> tuple[str, Op]:
    """Any of Voedger's statements (``select``, ``update``, ``insert``, ``unlogged update``...)
    taken apart: the operation as written, and the rest. ``c.cluster.VSqlUpdate`` reads its
    statements with the same prefix rules as ``q.sys.SqlQuery``."""
    m = _QUERY.match(query)
    if m is None:
        raise SysError(400, f"invalid query format: {query}")
    op = m.group("op").strip()
    app = ""
    if m.group("app"):
        owner, name = m.group("app")[:-1].split(".", 1)
        app = f"{owner}/{name}"
    kind, value = WorkspaceKind.NONE, 0
    ws_value: int | str = value
    if m.group("wsid"):
        kind, ws_value = WorkspaceKind.WSID, parse_uint64(m.group("wsid")[:-1])
    elif m.group("appws"):
        kind, ws_value = WorkspaceKind.APP_WS_NUM, parse_uint64(m.group("appws")[1:-1])
    elif m.group("login"):
        kind, ws_value = WorkspaceKind.PSEUDO, m.group("login")[1:-2]
    entity_id = 0
    if m.group("id"):
        entity_id = parse_uint64(m.group("id")[1:])
        if entity_id == 0:
            raise SysError(400, "provided offset or ID must not be 0")
    qname = m.group("qname")
    pars = (m.group("pars") or "").strip()
    clean = f"{op} {qname} {pars}".strip()
    source = qname + (f".{entity_id}" if entity_id else "")
    return op, Op(app, kind, ws_value, qname, entity_id, clean, f"{op} {source} {pars}".strip())


# --- the SELECT statement --------------------------------------------------------------------------


class Expr:
    """A node of an expression."""


@dataclass(frozen=True)
class ColName(Expr):
    name: str
    qualifier: str = ""

    @property
    def full(self) -> str:
        return f"{self.qualifier}.{self.name}" if self.qualifier else self.name


@dataclass(frozen=True)
class SQLVal(Expr):
    val: str
    is_str: bool = False


@dataclass(frozen=True)
class FuncExpr(Expr):
    name: str
    args: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class ValTuple(Expr):
    values: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class ComparisonExpr(Expr):
    operator: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class AndExpr(Expr):
    left: Expr
    right: Expr


@dataclass(frozen=True)
class OrExpr(Expr):
    left: Expr
    right: Expr


@dataclass(frozen=True)
class ParenExpr(Expr):
    expr: Expr


@dataclass(frozen=True)
class StarExpr(Expr):
    pass


def go_type(node: object) -> str:
    """The Go type Voedger's messages show for a node (``%T``)."""
    name = type(node).__name__
    return f"sqlparser.{name}" if isinstance(node, ValTuple) else f"*sqlparser.{name}"


@dataclass
class Select:
    exprs: list[Expr] = field(default_factory=list)
    table_qualifier: str = ""
    table_name: str = ""
    where: Expr | None = None
    limit: Expr | None = None


_TOKEN: Final = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op><=|>=|<>|!=|=|<|>)|(?P<punct>[(),.*\-])|(?P<ident>[A-Za-z_][A-Za-z0-9_]*|`[^`]*`))"
)
_KEYWORDS: Final = frozenset({"select", "from", "where", "and", "or", "in", "limit", "not", "as"})


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(sql: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(sql):
        if sql[pos:].strip() == "":
            break
        m = _TOKEN.match(sql, pos)
        if m is None or m.end() == pos:
            start = len(sql) - len(sql[pos:].lstrip())
            raise SysError(400, f"syntax error at position {start + 1} near '{sql[start : start + 10]}'")
        kind = m.lastgroup or ""
        text = m.group(kind)
        start = m.start(kind)
        if kind == "ident" and text.lower() in _KEYWORDS:
            kind, text = "kw", text.lower()
        elif kind == "ident" and text.startswith("`"):
            text = text[1:-1]
        out.append(_Tok(kind, text, start))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.toks = _tokens(sql)
        self.i = 0

    def peek(self, kind: str | None = None, text: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        t = self.toks[self.i]
        return (kind is None or t.kind == kind) and (text is None or t.text == text)

    def take(self, kind: str | None = None, text: str | None = None) -> _Tok:
        if not self.peek(kind, text):
            self.fail()
        t = self.toks[self.i]
        self.i += 1
        return t

    def fail(self) -> None:
        if self.i < len(self.toks):
            t = self.toks[self.i]
            raise SysError(400, f"syntax error at position {t.pos + len(t.text) + 1} near '{t.text}'")
        raise SysError(400, f"syntax error at position {len(self.sql) + 1}")

    def select(self) -> Select:
        s = Select()
        self.take("kw", "select")
        s.exprs.append(self.select_expr())
        while self.peek("punct", ","):
            self.take()
            s.exprs.append(self.select_expr())
        self.take("kw", "from")
        first = self.take("ident").text
        if self.peek("punct", "."):
            self.take()
            s.table_qualifier, s.table_name = first, self.take("ident").text
        else:
            s.table_name = first
        if self.peek("kw", "where"):
            self.take()
            s.where = self.or_expr()
        if self.peek("kw", "limit"):
            self.take()
            s.limit = self.value()
        if self.i < len(self.toks):
            self.fail()
        return s

    def select_expr(self) -> Expr:
        if self.peek("punct", "*"):
            self.take()
            return StarExpr()
        e = self.value()
        if self.peek("kw", "as"):
            self.take()
            self.take("ident")
        return e

    def or_expr(self) -> Expr:
        left = self.and_expr()
        while self.peek("kw", "or"):
            self.take()
            left = OrExpr(left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.primary()
        while self.peek("kw", "and"):
            self.take()
            left = AndExpr(left, self.primary())
        return left

    def primary(self) -> Expr:
        if self.peek("punct", "("):
            self.take()
            inner = self.or_expr()
            self.take("punct", ")")
            return ParenExpr(inner)
        left = self.value()
        if self.peek("kw", "in"):
            self.take()
            return ComparisonExpr("in", left, self.tuple())
        if self.peek("kw", "not"):
            self.take()
            self.take("kw", "in")
            return ComparisonExpr("not in", left, self.tuple())
        op = self.take("op").text
        return ComparisonExpr("!=" if op == "<>" else op, left, self.value())

    def tuple(self) -> ValTuple:
        self.take("punct", "(")
        values = [self.value()]
        while self.peek("punct", ","):
            self.take()
            values.append(self.value())
        self.take("punct", ")")
        return ValTuple(tuple(values))

    def value(self) -> Expr:
        if self.peek("punct", "-"):
            self.take()
            return SQLVal("-" + self.take("num").text)
        if self.peek("num"):
            return SQLVal(self.take().text)
        if self.peek("str"):
            raw = self.take().text
            quote = raw[0]
            return SQLVal(raw[1:-1].replace(quote * 2, quote).replace("\\" + quote, quote), is_str=True)
        name = self.take("ident").text
        if self.peek("punct", "("):
            self.take()
            args: list[Expr] = []
            if not self.peek("punct", ")"):
                args.append(self.select_expr())
                while self.peek("punct", ","):
                    self.take()
                    args.append(self.select_expr())
            self.take("punct", ")")
            return FuncExpr(name, tuple(args))
        if self.peek("punct", "."):
            self.take()
            return ColName(self.take("ident").text, qualifier=name)
        return ColName(name)


def parse_select(sql: str) -> Select:
    """Parse ``select ... from pkg.Name [where ...] [limit ...]``; a 400 names what is wrong."""
    return _Parser(sql).select()
