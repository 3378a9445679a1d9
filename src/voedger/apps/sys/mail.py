"""Sending mail: the seam the server configures (``ServerConfig.mailer``).

Voedger writes a ``sys.SendMail`` intent that an SMTP client sends; here the platform calls a
:class:`Mailer`. :class:`Outbox` keeps the messages in memory, for tests and development. A
mailer must not log the bodies it sends: they carry verification codes.
"""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["Mail", "Mailer", "Outbox", "SmtpMailer"]


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


@dataclass
class SmtpMailer:
    """A :class:`Mailer` that sends through an SMTP server (STARTTLS when asked), from a thread so
    the event loop never waits on the network. Configured by ``--smtp-url``."""

    host: str
    port: int = 25
    sender: str = "noreply@localhost"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout: float = 30.0

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)

    @staticmethod
    def from_url(url: str) -> SmtpMailer:
        """``smtp://[user:password@]host[:port]/?from=addr[&starttls=1]``; a ValueError names a mistake."""
        parts = urlsplit(url)
        if parts.scheme != "smtp" or not parts.hostname:
            raise ValueError("SMTP URL must look like smtp://[user:password@]host[:port]/?from=address")
        params = parse_qs(parts.query)
        unknown = sorted(set(params) - {"from", "starttls"})
        if unknown:
            raise ValueError(f"SMTP URL: unknown parameter(s) {', '.join(unknown)}")
        return SmtpMailer(
            host=parts.hostname,
            port=parts.port or 25,
            sender=params.get("from", ["noreply@localhost"])[0],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=params.get("starttls", ["0"])[0] in ("1", "true", "yes"),
        )
