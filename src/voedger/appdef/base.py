"""The root of the type hierarchy, plus the two simplest kinds of type: data and tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from voedger.appdef.kinds import DataKind, TypeKind
from voedger.appdef.qname import SYS_PACKAGE, QName

__all__ = ["ANY", "Data", "Tag", "Type", "sys_data_types"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Type:
    """Anything an application declares under a QName.

    ``workspace`` is the workspace whose body (or ALTER WORKSPACE) declares the type; it is None
    for workspaces themselves and for the built-in data types. It matters for ACL rules such as
    ``GRANT ... ON ALL TABLES``, which cover only the types of their own workspace.
    """

    qname: QName
    kind: TypeKind
    workspace: QName | None = None
    comment: str = ""
    tags: tuple[QName, ...] = ()

    def has_tag(self, tag: QName) -> bool:
        return tag in self.tags

    def __str__(self) -> str:
        return f"{self.kind} «{self.qname}»"


@dataclass(frozen=True, slots=True, kw_only=True)
class Data(Type):
    """A named data type; VSQL only uses the built-in ones, ``sys.int32``, ``sys.string``, ..."""

    kind: TypeKind = TypeKind.Data
    data_kind: DataKind = DataKind.string


@dataclass(frozen=True, slots=True, kw_only=True)
class Tag(Type):
    """A label types carry (``WITH Tags=(...)``); ACL and limits can select types by tag."""

    kind: TypeKind = TypeKind.Tag
    feature: str = ""


ANY: Final = Type(qname=QName(SYS_PACKAGE, "ANY"), kind=TypeKind.Any, comment="any type")
"""What ``any`` stands for in a function's parameter or result."""


def sys_data_types() -> tuple[Data, ...]:
    """One built-in data type per kind of field value, named ``sys.<kind>`` as in Voedger."""
    return tuple(Data(qname=QName(SYS_PACKAGE, k.value), data_kind=k, comment=f"built-in {k} data") for k in DataKind)
