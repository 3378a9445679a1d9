"""State storages: what an extension may read (STATE) and write (INTENTS), and by whom.

The ``sys`` package declares each storage with the operations it supports and, per operation,
which kinds of extension may use it (its scope). The analyser checks every STATE and INTENTS
clause against these declarations; the runtime checks again before it hands a storage out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from voedger.appdef.kinds import TypeKind
from voedger.appdef.qname import QName

__all__ = ["Storage", "StorageEntity", "StorageOp", "StorageRef", "StorageScope"]


class StorageOp(StrEnum):
    Get = "GET"
    GetBatch = "GETBATCH"
    Read = "READ"
    Insert = "INSERT"
    Update = "UPDATE"

    @property
    def writes(self) -> bool:
        """Insert and update are intents; the other operations are state reads."""
        return self in (StorageOp.Insert, StorageOp.Update)


class StorageScope(StrEnum):
    """The kinds of extension a storage operation is open to."""

    Commands = "COMMANDS"
    Queries = "QUERIES"
    Projectors = "PROJECTORS"
    Jobs = "JOBS"

    @classmethod
    def of(cls, kind: TypeKind) -> StorageScope:
        """The scope an extension of this kind runs in."""
        return _SCOPE_OF_KIND[kind]


_SCOPE_OF_KIND = {
    TypeKind.Command: StorageScope.Commands,
    TypeKind.Query: StorageScope.Queries,
    TypeKind.Projector: StorageScope.Projectors,
    TypeKind.Job: StorageScope.Jobs,
}


class StorageEntity(StrEnum):
    """What the entity names of a storage reference must be: tables or views."""

    Record = "RECORD"
    View = "VIEW"


@dataclass(frozen=True, slots=True, kw_only=True)
class Storage:
    """A STORAGE declaration of the sys package."""

    qname: QName
    ops: Mapping[StorageOp, frozenset[StorageScope]] = field(default_factory=lambda: MappingProxyType({}))
    entity: StorageEntity | None = None
    comment: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", MappingProxyType(dict(self.ops)))

    def allows(self, op: StorageOp, scope: StorageScope) -> bool:
        return scope in self.ops.get(op, frozenset())

    def can_read(self, scope: StorageScope) -> bool:
        """May an extension of this scope name the storage in STATE?"""
        return any(self.allows(op, scope) for op in StorageOp if not op.writes)

    def can_write(self, scope: StorageScope) -> bool:
        """May an extension of this scope name the storage in INTENTS?"""
        return any(self.allows(op, scope) for op in StorageOp if op.writes)


@dataclass(frozen=True, slots=True)
class StorageRef:
    """One item of a STATE or INTENTS clause: a storage and, optionally, the entities it is about,
    e.g. ``sys.View(pkg.SalesView)`` or ``sys.Record(pkg.Order)``."""

    storage: QName
    entities: tuple[QName, ...] = ()

    def __str__(self) -> str:
        if not self.entities:
            return str(self.storage)
        return f"{self.storage}({', '.join(map(str, self.entities))})"
