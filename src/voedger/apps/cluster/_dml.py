"""The statements of ``c.cluster.VSqlUpdate``, taken apart as Voedger's cluster app does.

A statement is ``<kind> <owner>.<app>.<workspace>.<pkg>.<Table>[.<id>] [set F = v, ...] [where K = v and ...]``.
The prefix (application, workspace, ID) is read by the same rules as ``q.sys.SqlQuery``'s
(``apps/sys/sqlparse.py``); what follows it by the small tokenizer here. Voedger hands that tail
to a MySQL parser and then accepts only literals and ``=`` conditions joined by ``and``, so
reading just that much gives the same answers, and the same error texts, for the statements it
takes.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from voedger.apps.sys.sqlparse import Op, parse_statement
from voedger.syserror import SysError


class Kind(Enum):
    """The statement kinds Voedger's ``VSqlUpdate`` knows. Only the logged ones are built here."""

    UPDATE = "update"
    INSERT = "insert"
    UNLOGGED_UPDATE = "unlogged update"
    UNLOGGED_INSERT = "unlogged insert"
    UPDATE_CORRUPTED = "update corrupted"


LOGGED: Final = frozenset({Kind.UPDATE, Kind.INSERT})

DIRECT: Final = frozenset({"direct update", "direct insert"})
"""Older names of the unlogged kinds; refused as not supported, like those."""

WRONG_WHERE: Final = "'where viewField1 = val1 [and viewField2 = val2 ...]' condition is only supported"
NULL_NOT_SUPPORTED: Final = "null value is not supported"
DENIED_FIELDS: Final = ("sys.ID", "sys.QName")


def parse_kind(query: str) -> tuple[str, Op, Kind | None]:
    """The operation as written, the prefix, and the kind (None: a ``select`` or a ``direct``
    kind); 400 for an operation Voedger does not know, in its words."""
    written, op = parse_statement(query)
    lowered = written.lower()
    if lowered.startswith("select"):
        return written, op, None
    for kind in Kind:
        if lowered == kind.value:
            return written, op, kind
    if lowered in DIRECT:
        return written, op, None
    raise SysError(400, f"wrong dml operation kind {_go_quote(written)}")


def parse_tail(op: Op, written: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``set`` fields and the ``where`` key of what follows the statement's source."""
    tail = op.clean_sql[len(written) + 1 + len(op.qname) :].strip()
    if not tail:
        return {}, {}
    # Voedger parses ``update <qname> <tail>``: positions in its syntax errors count from there.
    offset = len("update ") + len(op.qname) + 1
    return _Parser(tail, offset).statement()


def check_denied(sets: dict[str, Any]) -> None:
    for name in sets:
        if name in DENIED_FIELDS:
            raise SysError(400, f"field {name} can not be updated")


# --- the tokenizer -------------------------------------------------------------------------------

_TOKEN: Final = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<hex>0x[0-9a-fA-F]*)
  | (?P<float>(\d+\.\d*|\.\d+)([eE][+-]?\d+)?|\d+[eE][+-]?\d+)
  | (?P<int>\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<str>'|")
  | (?P<op><=>|<=|>=|<>|!=|[=<>(),.+\-*/!])
    """,
    re.VERBOSE,
)

# MySQL's backslash escapes in string literals; any other escaped character stands for itself.
_ESCAPES: Final = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


@dataclass(frozen=True)
class _Tok:
    kind: str  # ident, int, float, hex, str, quoted, op, end
    text: str  # the value: an identifier, the digits, a string's content
    pos: int  # where it ends in the statement Voedger's parser sees
    source: str  # as written


class _Parser:
    def __init__(self, text: str, offset: int) -> None:
        self.toks = _tokens(text, offset)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok.kind == "ident" and tok.text.lower() == word:
            self.i += 1
            return True
        return False

    def syntax_error(self, tok: _Tok | None = None) -> SysError:
        tok = tok or self.peek()
        near = f" near '{tok.source}'" if tok.kind != "end" else ""
        return SysError(400, f"syntax error at position {tok.pos}{near}")

    def statement(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if not self.keyword("set"):
            raise self.syntax_error()
        sets = self.assignments()
        where: dict[str, Any] = {}
        if self.keyword("where"):
            where = self.conditions()
        if self.peek().kind != "end":
            raise self.syntax_error()
        return sets, where

    def assignments(self) -> dict[str, Any]:
        sets: dict[str, Any] = {}
        while True:
            name = self.column()
            tok = self.take()
            if tok.kind != "op" or tok.text != "=":
                raise self.syntax_error(tok)
            value = self.value()
            if name in sets:
                raise SysError(400, f"field {name} specified twice")
            sets[name] = value
            if not (self.peek().kind == "op" and self.peek().text == ","):
                return sets
            self.take()

    def conditions(self) -> dict[str, Any]:
        """``K = literal [and K = literal ...]``; any other condition is Voedger's one refusal."""
        key: dict[str, Any] = {}
        while True:
            if self.peek().kind not in ("ident", "quoted"):
                raise SysError(400, WRONG_WHERE)
            name = self.column()
            tok = self.take()
            if tok.kind != "op" or tok.text != "=":
                raise SysError(400, WRONG_WHERE)
            value = self.where_value()
            if name in key:
                raise SysError(400, f"key field {name} is specified twice")
            key[name] = value
            if self.peek().kind == "end":
                return key
            if not self.keyword("and"):
                raise SysError(400, WRONG_WHERE)

    def column(self) -> str:
        tok = self.take()
        if tok.kind not in ("ident", "quoted"):
            raise self.syntax_error(tok)
        name = tok.text
        if self.peek().kind == "op" and self.peek().text == ".":
            self.take()
            second = self.take()
            if second.kind not in ("ident", "quoted"):
                raise self.syntax_error(second)
            name = f"{name}.{second.text}"
        return name

    def where_value(self) -> Any:
        tok = self.peek()
        if tok.kind == "ident" and tok.text.lower() == "null":
            raise SysError(400, NULL_NOT_SUPPORTED)
        if tok.kind in ("int", "float", "str", "hex") or self._negative_number():
            return self.value()
        raise SysError(400, WRONG_WHERE)

    def _negative_number(self) -> bool:
        tok = self.peek()
        return (
            tok.kind == "op"
            and tok.text == "-"
            and self.i + 1 < len(self.toks)
            and self.toks[self.i + 1].kind in ("int", "float")
        )

    def value(self) -> Any:
        """A literal: a number, a string, true/false, ``0x`` bytes (as base64, the CUD's form)."""
        sign = ""
        if self._negative_number():
            sign = self.take().text
        tok = self.take()
        if tok.kind == "int":
            return int(sign + tok.text)
        if tok.kind == "float":
            return float(sign + tok.text)
        if tok.kind == "str":
            return tok.text
        if tok.kind == "hex":
            digits = tok.text[2:]
            if len(digits) % 2:
                raise SysError(400, "encoding/hex: odd length hex string")
            return binascii.b2a_base64(bytes.fromhex(digits), newline=False).decode()
        if tok.kind == "ident":
            word = tok.text.lower()
            if word in ("true", "false"):
                return word == "true"
            if word == "null":
                raise SysError(400, NULL_NOT_SUPPORTED)
            if self.peek().kind == "op" and self.peek().text == "(":
                return self._unsupported(tok, "*sqlparser.FuncExpr")
            return self._unsupported(tok, "*sqlparser.ColName")
        raise self.syntax_error(tok)

    def _unsupported(self, head: _Tok, go_type: str) -> Any:
        """Voedger's refusal of an expression that is no literal: the expression, then its type."""
        text = head.source
        depth = 0
        while go_type.endswith("FuncExpr"):
            tok = self.take()
            if tok.kind == "end":
                raise self.syntax_error(tok)
            text += tok.source
            depth += {"(": 1, ")": -1}.get(tok.text, 0) if tok.kind == "op" else 0
            if depth == 0:
                break
        raise SysError(400, f"unsupported value type: {text}, type {go_type}")


def _tokens(text: str, offset: int) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise SysError(400, f"syntax error at position {offset + i + 1} near '{text[i]}'")
        kind = m.lastgroup or ""
        if kind == "str":
            value, end = _string(text, i, offset)
            toks.append(_Tok("str", value, offset + end, text[i:end]))
            i = end
            continue
        i = m.end()
        source = m.group()
        if kind == "space":
            continue
        value = source[1:-1].replace("``", "`") if kind == "quoted" else source
        toks.append(_Tok(kind, value, offset + i, source))
    toks.append(_Tok("end", "", offset + len(text) + 1, ""))
    return toks


def _string(text: str, start: int, offset: int) -> tuple[str, int]:
    """A quoted string from ``start`` (its quote): its value and where it ends. A doubled quote
    stands for one, a backslash escapes as in MySQL."""
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        if ch == quote:
            if text[i + 1 : i + 2] == quote:
                out.append(quote)
                i += 2
                continue
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise SysError(400, f"syntax error at position {offset + len(text) + 1} near '{text[start:]}'")


def _go_quote(text: str) -> str:
    """A string as Go's %q writes it (for the plain text of an operation: just quoted)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
