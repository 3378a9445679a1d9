"""Structures: documents, records and objects (TYPE), which hold fields and containers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from voedger.appdef.base import Type
from voedger.appdef.fields import Container, Field, Unique
from voedger.appdef.kinds import STRUCTURE_KINDS
from voedger.appdef.qname import QName

__all__ = ["Structure", "index_fields"]


def index_fields(fields: tuple[Field, ...]) -> Mapping[str, Field]:
    """A read-only name index over fields; rejects duplicates, which would make lookups ambiguous."""
    index: dict[str, Field] = {}
    for f in fields:
        if f.name in index:
            raise ValueError(f"field {f.name!r} is declared twice")
        index[f.name] = f
    return MappingProxyType(index)


@dataclass(frozen=True, slots=True, kw_only=True)
class Structure(Type):
    """A CDoc, WDoc, ODoc, GDoc, one of their records, or an object (TYPE).

    ``fields`` starts with the system fields of the kind (``sys.QName``, ``sys.ID``, ...), then the
    user fields in declaration order, inherited ones first. ``inherits`` is the table named by
    INHERITS (e.g. ``sys.CDoc``); the platform's own abstract bases carry none.
    """

    fields: tuple[Field, ...] = ()
    containers: tuple[Container, ...] = ()
    uniques: tuple[Unique, ...] = ()
    unique_field: str | None = None
    abstract: bool = False
    singleton: bool = False
    inherits: QName | None = None
    _by_name: Mapping[str, Field] = field(init=False, repr=False, compare=False)
    _user_fields: tuple[Field, ...] = field(init=False, repr=False, compare=False)
    _ref_fields: tuple[Field, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in STRUCTURE_KINDS:
            raise ValueError(f"{self.qname}: a structure cannot be of kind {self.kind}")
        object.__setattr__(self, "_by_name", index_fields(self.fields))
        # Derived once: the processors ask for these on every record they check.
        object.__setattr__(self, "_user_fields", tuple(f for f in self.fields if not f.is_sys))
        object.__setattr__(self, "_ref_fields", tuple(f for f in self.fields if f.is_ref))
        names = [c.name for c in self.containers]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.qname}: a container name is declared twice")
        for u in self.uniques:
            missing = [n for n in u.fields if n not in self._by_name]
            if missing:
                raise ValueError(f"{self.qname}: unique {u.name} names unknown fields {missing}")
        if self.unique_field is not None and self.unique_field not in self._by_name:
            raise ValueError(f"{self.qname}: unique field {self.unique_field!r} is not a field")

    def field(self, name: str) -> Field | None:
        return self._by_name.get(name)

    @property
    def by_name(self) -> Mapping[str, Field]:
        """Every field by name, in ``fields`` order (read-only)."""
        return self._by_name

    @property
    def user_fields(self) -> tuple[Field, ...]:
        return self._user_fields

    @property
    def ref_fields(self) -> tuple[Field, ...]:
        return self._ref_fields

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)

    def unique(self, name: QName) -> Unique | None:
        return next((u for u in self.uniques if u.name == name), None)
