"""Views: key/value tables that projectors fill and queries read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from voedger.appdef.base import Type
from voedger.appdef.fields import Field, system_fields
from voedger.appdef.kinds import TypeKind
from voedger.appdef.qname import QName
from voedger.appdef.structures import index_fields

__all__ = ["View"]


@dataclass(frozen=True, slots=True, kw_only=True)
class View(Type):
    """A view: rows addressed by (partition key, clustering columns), holding value fields.

    The partition key says which storage partition a row lives in; clustering columns order rows
    inside it, so only the last of them may be of variable width. ``result_of`` is the projector
    named in ``AS RESULT OF``.
    """

    kind: TypeKind = TypeKind.View
    partition_key: tuple[Field, ...] = ()
    clustering_columns: tuple[Field, ...] = ()
    value: tuple[Field, ...] = ()
    result_of: QName | None = None
    _by_name: Mapping[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind is not TypeKind.View:
            raise ValueError(f"{self.qname}: a view cannot be of kind {self.kind}")
        if not self.partition_key or not self.clustering_columns:
            raise ValueError(f"{self.qname}: a view needs a partition key and a clustering column")
        for f in self.partition_key:
            if not f.kind.is_fixed_width:
                raise ValueError(f"{self.qname}: partition key field {f.name} must be of fixed width")
        for f in self.clustering_columns[:-1]:
            if not f.kind.is_fixed_width:
                raise ValueError(f"{self.qname}: variable-width clustering column {f.name} must be last")
        object.__setattr__(self, "_by_name", index_fields(self.fields))

    @property
    def key(self) -> tuple[Field, ...]:
        """Partition key then clustering columns: every field a full key needs."""
        return self.partition_key + self.clustering_columns

    @property
    def fields(self) -> tuple[Field, ...]:
        """``sys.QName``, the key fields and the value fields."""
        return system_fields(TypeKind.View) + self.key + self.value

    def field(self, name: str) -> Field | None:
        return self._by_name.get(name)

    @property
    def by_name(self) -> Mapping[str, Field]:
        """Every field by name, in ``fields`` order (read-only)."""
        return self._by_name

    def is_key(self, name: str) -> bool:
        return any(f.name == name for f in self.key)
