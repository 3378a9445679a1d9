"""Sending mail: the seam the server configures (``ServerConfig.mailer``).

Voedger writes a ``sys.SendMail`` intent that an SMTP client sends; here the platform calls a
:class:`Mailer`. :class:`Outbox` keeps the messages in memory, for tests and development. A
mailer must not log the bodies it sends: they carry verification codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["Mail", "Mailer", "Outbox"]


@runtime_checkable
class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    body: str

    def __repr__(self) -> str:  # the body carries a code: keep it out of reprs and logs
        return f"Mail(to={self.to!r}, subject={self.subject!r})"


@dataclass
class Outbox:
    """A :class:`Mailer` that keeps what it is given, newest last."""

    messages: list[Mail] = field(default_factory=list)

    async def send(self, to: str, subject: str, body: str) -> None:
        self.messages.append(Mail(to, subject, body))

    def last_to(self, to: str) -> Mail | None:
        """The newest message to ``to``, or None."""
        for mail in reversed(self.messages):
            if mail.to == to:
                return mail
        return None

    def __repr__(self) -> str:
        return f"Outbox({len(self.messages)} messages)"
