"""Parsing VSQL text into `voedger.vsql.ast`.

One LALR parser is built on first use (the grammar is in `grammar.lark`) and kept for the process.
A file with a syntax error reports it as ``file:line:col: message``; parsing a package goes on with
its other files so that every broken file is reported at once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from lark import Lark, Token, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.exceptions import UnexpectedEOF

from voedger.vsql import ast
from voedger.vsql.errors import Diagnostic, VSQLError
from voedger.vsql.transform import AstBuilder, CommentIndex, FileState

__all__ = ["VSQL_SUFFIXES", "parse_file", "parse_package", "parse_string", "schema_files"]

VSQL_SUFFIXES = (".vsql", ".sql")
"""File name endings (any case) of schema files, as in Voedger."""

_TOKEN_NAMES = {
    "IDENT": "identifier",
    "STRING": "string",
    "INTEGER": "integer",
    "DECIMAL": "number",
    "$END": '"<EOF>"',
    "WITH_SEP": '","',
    "NOT_NULL": '"NOT NULL"',
    "CMP_OP": "comparison operator",
    "ADD_OP": '"+" or "-"',
    "MUL_OP": '"*", "/" or "%"',
}
_MAX_EXPECTED = 12


@functools.cache
def _builder() -> AstBuilder:
    return AstBuilder()


@functools.cache
def _lark() -> Lark:
    grammar = resources.files("voedger.vsql").joinpath("grammar.lark").read_text(encoding="utf-8")
    builder = _builder()

    def on_comment(tok: Token) -> Token:
        builder.comments.add(tok)
        return tok

    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        lexer_callbacks={"LINE_COMMENT": on_comment, "BLOCK_COMMENT": on_comment},
    )


def _describe_terminal(parser: Lark, name: str) -> str:
    if name in _TOKEN_NAMES:
        return _TOKEN_NAMES[name]
    try:
        term = parser.get_terminal(name)
    except KeyError:
        return name
    if term.pattern.type == "str":
        return f'"{term.pattern.value}"'
    return name.lower()


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """`text` quoted as Go's %q quotes a string (Voedger's messages quote tokens so)."""
    out: list[str] = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


_LEXER_SAMPLE = 16
"""How many characters of the text a lexer error quotes (then "..."), as participle does."""


def _syntax_message(parser: Lark, exc: UnexpectedInput, text: str) -> str:
    """The message participle (Voedger's parser) gives: ``unexpected token "X" (expected ...)``,
    ``"<EOF>"`` at the end, ``lexer: invalid input text "..."`` for text no token matches."""
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        found = go_quote("<EOF>" if tok.type == "$END" else str(tok))
        expected = sorted({_describe_terminal(parser, n) for n in exc.expected})
        if not expected:
            return f"unexpected token {found}"
        if len(expected) > _MAX_EXPECTED:
            expected = [*expected[:_MAX_EXPECTED], "..."]
        return f"unexpected token {found} (expected {', '.join(expected)})"
    if isinstance(exc, UnexpectedCharacters):
        sample = text[exc.pos_in_stream :]
        if len(sample) > _LEXER_SAMPLE:
            sample = sample[:_LEXER_SAMPLE] + "..."
        return f"lexer: invalid input text {go_quote(sample)}"
    if isinstance(exc, UnexpectedEOF):
        return 'unexpected token "<EOF>"'
    return str(exc).splitlines()[0]


def _parse(text: str, filename: str) -> tuple[ast.File | None, list[Diagnostic]]:
    parser = _lark()
    builder = _builder()
    state = FileState(filename=filename, comments=CommentIndex(text))
    token = builder.begin(state)
    try:
        result = builder.transform(parser.parse(text))
    except UnexpectedInput as exc:
        line, col = max(exc.line, 1), max(exc.column, 1)
        if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
            line, col = _end_position(text)
        state.diagnostics.append(Diagnostic(filename, line, col, _syntax_message(parser, exc, text)))
        return None, state.diagnostics
    except RecursionError:
        state.diagnostics.append(Diagnostic(filename, 1, 1, "schema is nested too deeply"))
        return None, state.diagnostics
    finally:
        builder.end(token)
    if result is None:  # empty file: the `start` rule had nothing to reduce
        result = ast.File(pos=ast.Pos(filename, 1, 1), path=filename)
    assert isinstance(result, ast.File)
    state.diagnostics.extend(_nesting_errors(result))
    return result, state.diagnostics


MAX_NESTING = 64
"""How deep tables may nest in tables, and workspaces in workspaces: the later passes recurse
along both, so a deeper schema is refused here with a clear error rather than overflowing them."""


def _nesting_errors(file: ast.File) -> list[Diagnostic]:
    """Tables nested in tables, or workspaces in workspaces, more than MAX_NESTING levels deep
    (one error for each outermost offender); walked without recursion."""
    errors: list[Diagnostic] = []
    stack: list[tuple[ast.Node, int, int]] = [(s, 0, 0) for s in file.statements]
    while stack:
        node, tables, workspaces = stack.pop()
        if isinstance(node, ast.NestedTableItem):
            if tables + 1 > MAX_NESTING:
                errors.append(_too_deep(node.pos, "tables", "table"))
                continue
            stack.append((node.table, tables + 1, workspaces))
        elif isinstance(node, ast.TableStmt):
            stack.extend((i, tables, workspaces) for i in node.items)
        elif isinstance(node, ast.WorkspaceStmt):
            if workspaces + 1 > MAX_NESTING:
                errors.append(_too_deep(node.pos, "workspaces", "workspace"))
                continue
            if node.descriptor is not None:
                stack.append((node.descriptor, 0, workspaces + 1))
            stack.extend((s, 0, workspaces + 1) for s in node.statements)
        elif isinstance(node, ast.AlterWorkspaceStmt):
            stack.extend((s, 0, workspaces) for s in node.statements)
    return errors


def _too_deep(pos: ast.Pos, what: str, one: str) -> Diagnostic:
    return Diagnostic(
        pos.file, pos.line, pos.col, f"{what} nested too deeply: more than {MAX_NESTING} levels of {one}s"
    )


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def parse_string(text: str, filename: str = "<string>") -> ast.File:
    """Parse one schema text; `filename` is used in positions. Raises VSQLError."""
    result, diagnostics = _parse(text, filename)
    if diagnostics or result is None:
        raise VSQLError(sorted(diagnostics))
    return result


def parse_file(path: str | os.PathLike[str]) -> ast.File:
    """Parse one schema file (UTF-8); positions name it as given. Raises VSQLError."""
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VSQLError([Diagnostic(name, 1, 1, f"cannot read schema file: {exc}")]) from exc
    return parse_string(text, name)


def schema_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The schema files directly in `directory`, sorted by name."""
    folder = Path(directory)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VSQL_SUFFIXES)


def parse_package(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    name: str | None = None,
) -> ast.Package:
    """Parse a package: a folder (its `.vsql`/`.sql` files) or a list of files.

    The package's name is `name`, or else the folder's name (of the first file's folder for a list).
    Every file is parsed even when some fail; all their errors are raised together.
    """
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        try:
            files = schema_files(folder)
        except OSError as exc:
            raise VSQLError([Diagnostic(os.fspath(folder), 1, 1, f"cannot read package folder: {exc}")]) from exc
        if not files:
            raise VSQLError([Diagnostic(os.fspath(folder), 1, 1, "no schema files in directory")])
    else:
        files = [Path(f) for f in source]
        if not files:
            raise VSQLError([Diagnostic("<package>", 1, 1, "no schema files given")])
        folder = files[0].parent
    parsed: list[ast.File] = []
    diagnostics: list[Diagnostic] = []
    for file in files:
        try:
            parsed.append(parse_file(file))
        except VSQLError as exc:
            diagnostics.extend(exc.diagnostics)
    if diagnostics:
        raise VSQLError(diagnostics)
    pkg_name = name if name is not None else folder.resolve().name
    return ast.Package(name=pkg_name, path=os.fspath(folder), files=tuple(parsed))
