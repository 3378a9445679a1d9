"""Memoised look-ups into an application's definition for the hot path of the processors.

An AppDef is immutable, so whatever is derived from it (a type by its text name, whether a
projector is triggered by an operation on a type, the list of SYNC projectors) can be computed
once per application instead of once per command.
"""

from __future__ import annotations

from voedger.appdef import AppDef, OperationKind, Projector, QName, Type, Workspace

_MAX_MEMO = 100_000


class TypeCache:
    def __init__(self, appdef: AppDef) -> None:
        self.appdef = appdef
        self.sync_projectors: tuple[Projector, ...] = appdef.projectors(sync=True)
        self.async_projectors: tuple[Projector, ...] = appdef.projectors(sync=False)
        self.all_projectors = self.sync_projectors + self.async_projectors
        self._types: dict[str | QName, Type | None] = {}
        self._triggers: dict[tuple[QName, OperationKind, QName], bool] = {}
        self._workspaces: dict[str, Workspace | None] = {}
        self._triggered: dict[tuple[object, ...], frozenset[QName]] = {}

    def workspace_by_descriptor(self, descriptor: str) -> Workspace | None:
        try:
            return self._workspaces[descriptor]
        except KeyError:
            try:
                ws = self.appdef.workspace_by_descriptor(descriptor)
            except ValueError:
                ws = None
            self._workspaces[descriptor] = ws
            return ws

    def triggered_by(self, shape: tuple[object, ...]) -> frozenset[QName] | None:
        """The projectors (SYNC and async) an event of this shape triggers, if known: every
        actualizer of a partition asks about every event, so the answer for all of them is
        derived at once (``remember_triggered``)."""
        return self._triggered.get(shape)

    def remember_triggered(self, shape: tuple[object, ...], names: frozenset[QName]) -> frozenset[QName]:
        if len(self._triggered) > _MAX_MEMO:
            self._triggered.clear()  # shapes of big CUD lists are many; keep the memo bounded
        self._triggered[shape] = names
        return names

    def find(self, name: str | QName) -> Type | None:
        try:
            return self._types[name]
        except KeyError:
            t = self.appdef.find(name) if isinstance(name, QName) else self._find_text(name)
            self._types[name] = t
            return t

    def _find_text(self, name: str) -> Type | None:
        try:
            return self.appdef.find(name)
        except ValueError:
            return None

    def triggers(self, prj: Projector, op: OperationKind, t: Type) -> bool:
        key = (prj.qname, op, t.qname)
        hit = self._triggers.get(key)
        if hit is None:
            hit = self._triggers[key] = prj.triggers(op, t)
        return hit


_CACHES: dict[int, TypeCache] = {}


def type_cache(appdef: AppDef) -> TypeCache:
    """The cache of ``appdef`` (applications are few and live as long as the process)."""
    cache = _CACHES.get(id(appdef))
    if cache is None or cache.appdef is not appdef:
        cache = _CACHES[id(appdef)] = TypeCache(appdef)
    return cache
