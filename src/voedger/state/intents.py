"""The write side of the extension model: what an extension wants done, applied by the
platform after it returns."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from voedger.appdef import QName, StorageOp, qname
from voedger.state.access import SYS_LOGGER, SYS_RECORD, SYS_RESPONSE, SYS_RESULT, SYS_SEND_MAIL, SYS_VIEW, Access
from voedger.state.mail import MailMessage, mail_message
from voedger.structs.records import Record

log = logging.getLogger("voedger.extensions")


@dataclass
class RecordInsert:
    raw_id: int
    table: QName
    fields: dict[str, Any]


@dataclass
class RecordUpdate:
    id: int
    table: QName
    changes: dict[str, Any]


@dataclass
class Intents:
    """Collects an extension's writes; nothing reaches storage until the platform applies them."""

    access: Access
    inserts: list[RecordInsert] = field(default_factory=list)
    updates: list[RecordUpdate] = field(default_factory=list)
    view_rows: list[tuple[QName, dict[str, Any]]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    response: tuple[int, str] | None = None
    mails: list[MailMessage] = field(default_factory=list)
    """Messages to send once the projector or job has returned (``send_mail``)."""
    _next_raw: int = 1

    def insert(self, table: QName | str, **fields: Any) -> int:
        """Create a record; returns the raw ID it has until the platform assigns its real one."""
        q = qname(table)
        self.access.check(SYS_RECORD, StorageOp.Insert, q)
        raw = self._next_raw
        self._next_raw += 1
        self.inserts.append(RecordInsert(raw, q, fields))
        return raw

    def update(self, record: Record, **changes: Any) -> None:
        """Change fields of a record read from the state."""
        q = qname(record["sys.QName"])
        self.access.check(SYS_RECORD, StorageOp.Update, q)
        self.updates.append(RecordUpdate(record["sys.ID"], q, changes))

    def put_view(self, view: QName | str, **row: Any) -> None:
        """Insert or replace a view row (every key field, and value fields)."""
        q = qname(view)
        self.access.check(SYS_VIEW, StorageOp.Insert, q)
        self.view_rows.append((q, row))

    def result(self, **fields: Any) -> None:
        """A command's result, or one more row of a query's result."""
        self.access.check(SYS_RESULT, StorageOp.Insert)
        self.results.append(fields)

    def respond(self, status: int, message: str) -> None:
        """Answer with an HTTP error instead of a result."""
        self.access.check(SYS_RESPONSE, StorageOp.Insert)
        self.response = (status, message)

    def send_mail(self, **message: Any) -> None:
        """Send a message after the extension returns (``sys.SendMail``, INSERT: projectors, jobs);
        ``message`` as for ``state.send_mail``. A message without host, port, sender or recipient
        fails the extension at once; a failed send fails it afterwards (a projector is retried)."""
        self.access.check(SYS_SEND_MAIL, StorageOp.Insert)
        self.mails.append(mail_message(**message))

    def log(self, message: str, level: int = logging.INFO) -> None:
        self.access.check(SYS_LOGGER, StorageOp.Insert)
        log.log(level, "%s: %s", self.access.who, message)
