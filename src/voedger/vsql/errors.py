"""Errors of the VSQL layer.

Every problem found while parsing or analysing a schema becomes one `Diagnostic`; a stage collects
all of them and raises a single `VSQLError`, so a user sees every mistake of a schema at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Diagnostic", "VSQLError"]


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    """One problem at one place of a schema file; prints as ``file:line:col: message``, or as the
    bare message for a problem of the application as a whole (no file: Voedger gives those so)."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        if not self.file:
            return self.message
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class VSQLError(Exception):
    """A schema could not be parsed or analysed; holds every diagnostic found, in source order."""

    diagnostics: list[Diagnostic]

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)

    @property
    def messages(self) -> list[str]:
        """The bare messages, without positions (handy in tests)."""
        return [d.message for d in self.diagnostics]
