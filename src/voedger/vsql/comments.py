"""Doc comments: which comment block of a file documents which statement."""

from __future__ import annotations

import bisect

from lark import Token

__all__ = ["CommentIndex"]


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


def _start(tok: Token) -> int:
    return tok.start_pos or 0


def _end(tok: Token) -> int:
    return tok.end_pos if tok.end_pos is not None else _start(tok) + len(tok)
