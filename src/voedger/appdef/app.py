"""The application definition: every type of an application and its packages, read-only."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from voedger.appdef.acl import ACLRule, Role
from voedger.appdef.base import ANY, Tag, Type, sys_data_types
from voedger.appdef.extensions import Command, Extension, Job, Projector, Query
from voedger.appdef.kinds import ExtensionEngine, TypeKind
from voedger.appdef.qname import QName, qname
from voedger.appdef.rates import Limit, Rate
from voedger.appdef.storages import Storage
from voedger.appdef.structures import Structure
from voedger.appdef.views import View
from voedger.appdef.workspaces import SYS_WORKSPACE, Workspace

__all__ = ["AppDef", "Package", "UnknownTypeError"]

T = TypeVar("T", bound=Type)


class UnknownTypeError(KeyError):
    """No type of the requested name (and class) exists in the application."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown type"


@dataclass(frozen=True, slots=True)
class Package:
    """A package of the application: its local name (the QName prefix) and where it comes from
    (``sys`` for the platform's package, otherwise its path in the application)."""

    name: str
    path: str


class AppDef:
    """An application's definition: the only view of the schema the runtime has.

    Built once (by :mod:`voedger.appdef.build`) and never changed: types live in a read-only
    mapping, every collection is a tuple. The built-in data types and ``sys.ANY`` are always there.
    """

    __slots__ = ("_index", "_packages", "_storages", "_types", "name")

    def __init__(
        self,
        name: str,
        *,
        packages: Iterable[Package] = (),
        types: Iterable[Type] = (),
        storages: Iterable[Storage] = (),
    ) -> None:
        self.name = name
        self._packages = tuple(packages)
        index: dict[QName, Type] = {t.qname: t for t in (ANY, *sys_data_types())}
        for t in types:
            if t.qname in index:
                raise ValueError(f"type {t.qname} is declared twice")
            index[t.qname] = t
        self._types: Mapping[QName, Type] = MappingProxyType(dict(sorted(index.items())))
        self._index: dict[QName | str, Type] = {}
        for q, t in index.items():
            self._index[q] = self._index[str(q)] = t
        """Types by QName and by its text: the runtime looks names up in both forms, often."""
        self._storages: Mapping[QName, Storage] = MappingProxyType({s.qname: s for s in storages})
        workspaces = [t for t in self._types.values() if isinstance(t, Workspace)]
        for ws in workspaces:
            ws.bind(self)
        for ws in workspaces:
            ws.types()  # resolve now: a dangling name fails here, not at the first request

    def __repr__(self) -> str:
        return f"AppDef({self.name!r}, {len(self._types)} types)"

    # --- packages

    @property
    def packages(self) -> tuple[Package, ...]:
        return self._packages

    def package(self, name: str) -> Package | None:
        return next((p for p in self._packages if p.name == name), None)

    # --- types in general

    def find(self, name: QName | str) -> Type | None:
        """The type of this name, or None (text that is no qualified name raises QNameError)."""
        t = self._index.get(name)
        if t is None:
            qname(name)
        return t

    def type(self, name: QName | str) -> Type:
        """The type of this name; raises :class:`UnknownTypeError` if there is none."""
        t = self._index.get(name)
        if t is None:
            qname(name)
            raise UnknownTypeError(f"unknown type {name}")
        return t

    def __contains__(self, name: object) -> bool:
        return isinstance(name, QName | str) and self.find(name) is not None

    def types(self, kind: TypeKind | Iterable[TypeKind] | None = None) -> tuple[Type, ...]:
        """Types sorted by QName, optionally only those of a kind (or of any of several kinds)."""
        if kind is None:
            return tuple(self._types.values())
        kinds = {kind} if isinstance(kind, TypeKind) else set(kind)
        return tuple(t for t in self._types.values() if t.kind in kinds)

    def __iter__(self) -> Iterator[Type]:
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)

    def _typed(self, name: QName | str, cls: builtins.type[T]) -> T:
        t = self.type(name)
        if not isinstance(t, cls):
            raise UnknownTypeError(f"{name} is a {t.kind}, not a {cls.__name__}")
        return t

    def _all(self, cls: builtins.type[T]) -> tuple[T, ...]:
        return tuple(t for t in self._types.values() if isinstance(t, cls))

    # --- typed accessors

    def structure(self, name: QName | str) -> Structure:
        """A document, record or object."""
        return self._typed(name, Structure)

    def structures(self) -> tuple[Structure, ...]:
        return self._all(Structure)

    def view(self, name: QName | str) -> View:
        return self._typed(name, View)

    def views(self) -> tuple[View, ...]:
        return self._all(View)

    def command(self, name: QName | str) -> Command:
        return self._typed(name, Command)

    def query(self, name: QName | str) -> Query:
        return self._typed(name, Query)

    def projector(self, name: QName | str) -> Projector:
        return self._typed(name, Projector)

    def projectors(self, *, sync: bool | None = None) -> tuple[Projector, ...]:
        return tuple(p for p in self._all(Projector) if sync is None or p.sync is sync)

    def job(self, name: QName | str) -> Job:
        return self._typed(name, Job)

    def extension(self, name: QName | str) -> Extension:
        return self._typed(name, Extension)

    def extensions(self, engine: ExtensionEngine | None = None) -> tuple[Extension, ...]:
        return tuple(e for e in self._all(Extension) if engine is None or e.engine is engine)

    def role(self, name: QName | str) -> Role:
        return self._typed(name, Role)

    def roles(self) -> tuple[Role, ...]:
        return self._all(Role)

    def tag(self, name: QName | str) -> Tag:
        return self._typed(name, Tag)

    def rate(self, name: QName | str) -> Rate:
        return self._typed(name, Rate)

    def limit(self, name: QName | str) -> Limit:
        return self._typed(name, Limit)

    def limits(self) -> tuple[Limit, ...]:
        return self._all(Limit)

    # --- workspaces

    def workspace(self, name: QName | str) -> Workspace:
        return self._typed(name, Workspace)

    def workspaces(self) -> tuple[Workspace, ...]:
        return self._all(Workspace)

    @property
    def sys_workspace(self) -> Workspace:
        return self.workspace(SYS_WORKSPACE)

    def workspace_by_descriptor(self, descriptor: QName | str) -> Workspace | None:
        """The workspace kind whose descriptor is this CDoc (clients create workspaces by it)."""
        q = qname(descriptor)
        return next((ws for ws in self.workspaces() if ws.descriptor == q), None)

    def workspace_of(self, name: QName | str) -> Workspace | None:
        """The workspace that declares a type (None for built-in data types and workspaces)."""
        ws = self.type(name).workspace
        return None if ws is None else self.workspace(ws)

    # --- ACL and storages

    def acl(self) -> tuple[ACLRule, ...]:
        """Every ACL rule of the application, workspace by workspace."""
        return tuple(r for ws in self.workspaces() for r in ws.acl)

    def storage(self, name: QName | str) -> Storage:
        s = self._storages.get(qname(name))
        if s is None:
            raise UnknownTypeError(f"unknown storage {name}")
        return s

    def storages(self) -> tuple[Storage, ...]:
        return tuple(self._storages.values())
