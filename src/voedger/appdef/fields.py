"""Fields, containers and uniques: the parts a structure (or a view) is made of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from voedger.appdef.kinds import DataKind, TypeKind
from voedger.appdef.qname import QName

__all__ = [
    "DEFAULT_MAX_LEN",
    "MAX_LEN",
    "NESTED_MAX_OCCURS",
    "SYS_CONTAINER",
    "SYS_ID",
    "SYS_IS_ACTIVE",
    "SYS_PARENT_ID",
    "SYS_QNAME",
    "UNBOUNDED",
    "Container",
    "Field",
    "Unique",
    "system_fields",
]

SYS_QNAME: Final = "sys.QName"
SYS_ID: Final = "sys.ID"
SYS_PARENT_ID: Final = "sys.ParentID"
SYS_CONTAINER: Final = "sys.Container"
SYS_IS_ACTIVE: Final = "sys.IsActive"

DEFAULT_MAX_LEN: Final = 255
"""Length of a ``varchar`` or ``bytes`` field declared without one."""
MAX_LEN: Final = 65535
"""Longest ``varchar``/``bytes`` value VSQL allows."""
UNBOUNDED: Final = 0xFFFF
"""Max occurrences meaning "any number"."""
NESTED_MAX_OCCURS: Final = 100
"""Max occurrences Voedger gives a nested table."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One field. ``refs`` lists the tables a ``ref`` field may point to (empty: any record)."""

    name: str
    kind: DataKind
    required: bool = False
    refs: tuple[QName, ...] = ()
    max_len: int | None = None
    pattern: str | None = None
    verifiable: bool = False
    default: int | str | None = None
    comment: str = ""

    @property
    def is_sys(self) -> bool:
        """System fields (``sys.ID``, ...) are filled by the platform, never by the client."""
        return self.name.startswith("sys.")

    @property
    def is_ref(self) -> bool:
        return self.kind is DataKind.RecordID and not self.is_sys

    @property
    def data(self) -> QName:
        """The system data type of the field, e.g. ``sys.int32``."""
        return QName("sys", self.kind.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    """A nested structure: a nested table (records) or a TYPE field naming another TYPE (object)."""

    name: str
    type: QName
    min_occurs: int = 0
    max_occurs: int = 1
    comment: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Unique:
    """A unique combination of fields; named ``Table$uniques$<name>`` as in Voedger."""

    name: QName
    fields: tuple[str, ...]
    comment: str = ""


_ID: Final = Field(name=SYS_ID, kind=DataKind.RecordID, required=True)
_QN: Final = Field(name=SYS_QNAME, kind=DataKind.QName, required=True)
_PARENT: Final = Field(name=SYS_PARENT_ID, kind=DataKind.RecordID, required=True)
_CONT: Final = Field(name=SYS_CONTAINER, kind=DataKind.string, required=True, max_len=DEFAULT_MAX_LEN)
_CONT_OPT: Final = Field(name=SYS_CONTAINER, kind=DataKind.string, max_len=DEFAULT_MAX_LEN)
_ACTIVE: Final = Field(name=SYS_IS_ACTIVE, kind=DataKind.bool)

_SYSTEM_FIELDS: Final[dict[TypeKind, tuple[Field, ...]]] = {
    TypeKind.GDoc: (_QN, _ID, _ACTIVE),
    TypeKind.CDoc: (_QN, _ID, _ACTIVE),
    TypeKind.WDoc: (_QN, _ID, _ACTIVE),
    TypeKind.ODoc: (_QN, _ID),
    TypeKind.GRecord: (_QN, _ID, _PARENT, _CONT, _ACTIVE),
    TypeKind.CRecord: (_QN, _ID, _PARENT, _CONT, _ACTIVE),
    TypeKind.WRecord: (_QN, _ID, _PARENT, _CONT, _ACTIVE),
    TypeKind.ORecord: (_QN, _ID, _PARENT, _CONT),
    TypeKind.Object: (_QN, _CONT_OPT),
    TypeKind.View: (_QN,),
}


def system_fields(kind: TypeKind) -> tuple[Field, ...]:
    """The system fields a type of this kind has, first in its field list, as in Voedger.

    ODocs and ORecords have no ``sys.IsActive``: operational documents are never deactivated.
    """
    return _SYSTEM_FIELDS.get(kind, ())
