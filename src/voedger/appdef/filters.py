"""Filters select types: what an ACL rule covers, what triggers a projector, what a limit counts."""

from __future__ import annotations

from dataclasses import dataclass

from voedger.appdef.base import Type
from voedger.appdef.kinds import TypeKind
from voedger.appdef.qname import QName

__all__ = ["Filter"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Filter:
    """Matches a type named in ``qnames``, or a type whose kind is in ``kinds`` and that, when
    ``tags`` are given, carries one of them and, when ``workspace`` is given, is declared there.

    VSQL needs no more: ``ON TABLE T`` names a type; ``ON ALL TABLES WITH TAG t`` is kinds plus a
    tag; plain ``ON ALL TABLES`` is kinds plus the rule's workspace; a projector trigger on
    ``sys.CRecord`` means kinds CDoc and CRecord, and may be mixed with plain names.
    """

    qnames: tuple[QName, ...] = ()
    kinds: frozenset[TypeKind] = frozenset()
    tags: tuple[QName, ...] = ()
    workspace: QName | None = None

    def __post_init__(self) -> None:
        if not self.qnames and not self.kinds:
            raise ValueError("a filter must name types or kinds of types")
        if (self.tags or self.workspace) and not self.kinds:
            raise ValueError("tags and workspace narrow kinds of types; a filter by names needs neither")

    @classmethod
    def names(cls, *qnames: QName) -> Filter:
        return cls(qnames=tuple(qnames))

    def match(self, t: Type) -> bool:
        if t.qname in self.qnames:
            return True
        if t.kind not in self.kinds:
            return False
        if self.tags and not any(t.has_tag(tag) for tag in self.tags):
            return False
        return self.workspace is None or t.workspace == self.workspace

    def __str__(self) -> str:
        parts: list[str] = []
        if self.qnames:
            parts.append("QNAMES(" + ", ".join(map(str, self.qnames)) + ")")
        if self.kinds:
            s = "TYPES(" + ", ".join(sorted(self.kinds)) + ")"
            if self.tags:
                s += " WITH TAGS(" + ", ".join(map(str, self.tags)) + ")"
            if self.workspace:
                s += f" FROM {self.workspace}"
            parts.append(s)
        return " OR ".join(parts)
