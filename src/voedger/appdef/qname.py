"""Qualified names: every type of an application is addressed as ``pkg.Entity``."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Final

__all__ = ["SYS_PACKAGE", "QName", "QNameError", "qname"]

SYS_PACKAGE: Final = "sys"
"""The local name of the package every application gets implicitly."""

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,254}")


class QNameError(ValueError):
    """A string is not a valid qualified name."""


@dataclass(frozen=True, slots=True, order=True)
class QName:
    """A package-local name of a type; ordering is by (pkg, entity), as Voedger sorts types.

    The entity may hold ``$`` because Voedger names uniques ``Table$uniques$01``.
    """

    pkg: str
    entity: str
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # QNames key most dicts of the runtime: hash once, not on every look-up.
        object.__setattr__(self, "_hash", hash((self.pkg, self.entity)))

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def parse(cls, text: str) -> QName:
        """Read ``pkg.Entity``; raises :class:`QNameError` on anything else."""
        if cls is QName and isinstance(text, str):
            return _parse_cached(text)  # the runtime parses the same few names over and over
        return _parse(cls, text)

    def __str__(self) -> str:
        return f"{self.pkg}.{self.entity}"

    @property
    def is_sys(self) -> bool:
        """True for names of the implicit ``sys`` package."""
        return self.pkg == SYS_PACKAGE


def _parse(cls: type[QName], text: str) -> QName:
    pkg, dot, entity = text.partition(".")
    if not dot or not _IDENT.fullmatch(pkg) or not _IDENT.fullmatch(entity):
        raise QNameError(f"invalid qualified name {text!r}: expected pkg.Entity")
    return cls(pkg, entity)


@functools.lru_cache(maxsize=8192)
def _parse_cached(text: str) -> QName:
    return _parse(QName, text)


def qname(name: QName | str) -> QName:
    """Accept a QName or its text; lets callers of the query API write ``app.type("pkg.T")``."""
    return name if isinstance(name, QName) else QName.parse(name)
