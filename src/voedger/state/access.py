"""Which storages an extension may use: its STATE and INTENTS declarations and the scopes of
the sys storages."""

from __future__ import annotations

from dataclasses import dataclass, field

from voedger.appdef import AppDef, Extension, QName, StorageOp, StorageScope
from voedger.state.errors import StateError

SYS_RECORD = QName("sys", "Record")
SYS_VIEW = QName("sys", "View")
SYS_WLOG = QName("sys", "WLog")
SYS_UNIQ = QName("sys", "Uniq")
SYS_APP_SECRET = QName("sys", "AppSecret")
SYS_RESULT = QName("sys", "Result")
SYS_RESPONSE = QName("sys", "Response")
SYS_LOGGER = QName("sys", "Logger")
SYS_FEDERATION_COMMAND = QName("sys", "FederationCommand")
SYS_HTTP = QName("sys", "Http")
SYS_SEND_MAIL = QName("sys", "SendMail")

IMPLICIT = frozenset(
    {
        QName("sys", "CommandContext"),
        QName("sys", "QueryContext"),
        QName("sys", "JobContext"),
        QName("sys", "Event"),
        QName("sys", "RequestSubject"),
        SYS_RESULT,
        SYS_RESPONSE,
        SYS_LOGGER,
    }
)
"""Storages an extension uses without naming them; their scope is still checked."""


@dataclass(frozen=True)
class Access:
    """The rules for one running extension. ``unrestricted`` is for the platform's own code."""

    app: AppDef
    ext: Extension | None
    scope: StorageScope
    unrestricted: bool = False
    allowed: set[tuple[QName, StorageOp, QName | None]] = field(default_factory=set, compare=False, repr=False)
    """Uses already found allowed (the rules never change, and extensions repeat their uses)."""

    @staticmethod
    def of(app: AppDef, ext: Extension, unrestricted: bool = False) -> Access:
        """The rules of one extension (memoised: they never change while the app runs)."""
        key = (id(app), ext.qname, unrestricted)
        hit = _ACCESS.get(key)
        if hit is None or hit.app is not app:
            hit = _ACCESS[key] = Access(app, ext, StorageScope.of(ext.kind), unrestricted)
        return hit

    @property
    def who(self) -> str:
        return f"{self.ext.kind.lower()} {self.ext.qname}" if self.ext else f"{self.scope.lower()} code"

    def may(self, storage: QName, op: StorageOp, entity: QName | None = None) -> bool:
        try:
            self.check(storage, op, entity)
        except StateError:
            return False
        return True

    def check(self, storage: QName, op: StorageOp, entity: QName | None = None) -> None:
        if self.unrestricted or (storage, op, entity) in self.allowed:
            return
        self._check(storage, op, entity)
        self.allowed.add((storage, op, entity))

    def _check(self, storage: QName, op: StorageOp, entity: QName | None) -> None:
        declared = self.app.storage(storage)
        if not declared.allows(op, self.scope):
            raise StateError(f"{self.who}: storage {storage} does not allow {op} in {self.scope}")
        if storage in IMPLICIT or self.ext is None:
            return
        refs = self.ext.intents if op.writes else self.ext.states
        if op.writes is False and any(r.storage == storage for r in self.ext.intents):
            refs = (*refs, *self.ext.intents)  # what one may write, one may read back
        for ref in refs:
            if ref.storage == storage and (not ref.entities or entity is None or entity in ref.entities):
                return
        what = f"{storage}({entity})" if entity is not None else str(storage)
        clause = "INTENTS" if op.writes else "STATE"
        raise StateError(f"{self.who} uses {what} but does not declare it in {clause}")


_ACCESS: dict[tuple[int, QName, bool], Access] = {}
