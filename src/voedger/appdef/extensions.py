"""Extensions: commands, queries, projectors and jobs, the code an application runs."""

from __future__ import annotations

from dataclasses import dataclass

from voedger.appdef.base import Type
from voedger.appdef.filters import Filter
from voedger.appdef.kinds import PROJECTOR_OPERATIONS, ExtensionEngine, OperationKind, TypeKind
from voedger.appdef.qname import QName
from voedger.appdef.storages import StorageRef

__all__ = ["Command", "Extension", "Function", "Job", "Projector", "ProjectorEvent", "Query"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Extension(Type):
    """Common to every extension: which engine runs it and which storages it reads and writes."""

    engine: ExtensionEngine = ExtensionEngine.BuiltIn
    states: tuple[StorageRef, ...] = ()
    intents: tuple[StorageRef, ...] = ()

    @property
    def name(self) -> str:
        """The name an implementation is exported under (the entity of the QName)."""
        return self.qname.entity

    def state(self, storage: QName) -> StorageRef | None:
        return next((s for s in self.states if s.storage == storage), None)

    def intent(self, storage: QName) -> StorageRef | None:
        return next((s for s in self.intents if s.storage == storage), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Function(Extension):
    """A command or a query: called by a client with a parameter, answering with a result.

    ``param`` and ``result`` name an object (TYPE), an ODoc (commands), ``sys.Raw`` or ``sys.ANY``;
    None means the function takes or returns nothing (``void``).
    """

    param: QName | None = None
    result: QName | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(Function):
    """A command; its unlogged parameter (e.g. a password) never reaches the event log."""

    kind: TypeKind = TypeKind.Command
    unlogged_param: QName | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Query(Function):
    kind: TypeKind = TypeKind.Query


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectorEvent:
    """One trigger of a projector: these operations on the types the filter selects."""

    ops: frozenset[OperationKind]
    filter: Filter
    comment: str = ""

    def __post_init__(self) -> None:
        if not self.ops:
            raise ValueError("a projector trigger needs an operation")
        if not self.ops <= PROJECTOR_OPERATIONS:
            wrong = sorted(self.ops - PROJECTOR_OPERATIONS)
            raise ValueError(f"operations {wrong} cannot trigger a projector")

    def triggers(self, op: OperationKind, t: Type) -> bool:
        return op in self.ops and self.filter.match(t)


@dataclass(frozen=True, slots=True, kw_only=True)
class Projector(Extension):
    """Reacts to events. A SYNC projector runs inside the command, before the reply, so its views
    are readable as soon as the command returns; others run afterwards from the log.
    ``want_errors`` (INCLUDING ERRORS) also feeds it the events that failed validation."""

    kind: TypeKind = TypeKind.Projector
    events: tuple[ProjectorEvent, ...] = ()
    sync: bool = False
    want_errors: bool = False

    def triggers(self, op: OperationKind, t: Type) -> bool:
        return any(e.triggers(op, t) for e in self.events)


@dataclass(frozen=True, slots=True, kw_only=True)
class Job(Extension):
    """Runs on a cron schedule in every application workspace."""

    kind: TypeKind = TypeKind.Job
    cron: str = ""
