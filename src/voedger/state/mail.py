"""Sending mail: what the ``sys.SendMail`` storage reaches (projectors and jobs).

As in Voedger, the extension names the SMTP server (``Host``, ``Port``, ``Username``,
``Password``, usually read from ``sys.AppSecret``) and the message (``From``, ``To``, ``CC``,
``BCC``, ``Subject``, an HTML ``Body``). ``state.send_mail`` (GET) sends at once and reports
success or the error; ``intents.send_mail`` (INSERT) sends after the extension has returned,
and a failure fails the projector (retried) or the job run.

Security: STARTTLS whenever the server offers it, implicit TLS on port 465, and a password is
never sent over a connection without TLS except to a loopback address. Passwords and bodies stay
out of reprs and logs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from voedger.state.errors import StateError

__all__ = ["MailMessage", "MailOutcome", "deliver", "mail_message"]

TIMEOUT_SECONDS = 30.0
IMPLICIT_TLS_PORT = 465


@dataclass(frozen=True)
class MailMessage:
    """One message and the SMTP server to send it through."""

    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    subject: str = ""
    body: str = ""
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    username: str = ""
    password: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return f"MailMessage(to={list(self.to)!r}, subject={self.subject!r}, via {self.host}:{self.port})"


@dataclass(frozen=True)
class MailOutcome:
    """What ``state.send_mail`` reports: ``Success`` and ``ErrorMessage`` of Voedger's storage."""

    success: bool
    error_message: str = ""


def _addresses(value: Any, name: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else list(value or ())
    out = tuple(str(v).strip() for v in items if str(v).strip())
    for addr in out:
        if any(c in addr for c in "\r\n\0") or "@" not in addr:
            raise StateError(f"sys.SendMail: {name} {addr!r:.80} is not a mail address")
    return out


def mail_message(
    *,
    host: str = "",
    port: int = 0,
    sender: str = "",
    to: Any = (),
    subject: str = "",
    body: str = "",
    cc: Any = (),
    bcc: Any = (),
    username: str = "",
    password: str = "",
) -> MailMessage:
    """A message checked as Voedger checks its key: ``'Host': not found`` and the like for a
    missing server, port, sender or recipient (a :class:`StateError`)."""
    if not host:
        raise StateError("sys.SendMail: 'Host': not found")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise StateError("sys.SendMail: 'Port': not found")
    if not sender:
        raise StateError("sys.SendMail: 'From': not found")
    recipients = _addresses(to, "To")
    if not recipients:
        raise StateError("sys.SendMail: 'To': not found")
    if any(c in str(subject) + str(sender) + str(host) for c in "\r\n\0"):
        raise StateError("sys.SendMail: a line break in From, Subject or Host")
    return MailMessage(
        host=str(host),
        port=port,
        sender=_addresses(sender, "From")[0],
        to=recipients,
        subject=str(subject),
        body=str(body),
        cc=_addresses(cc, "CC"),
        bcc=_addresses(bcc, "BCC"),
        username=str(username),
        password=str(password),
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _send(m: MailMessage) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = m.sender, ", ".join(m.to), m.subject
    if m.cc:
        msg["Cc"] = ", ".join(m.cc)
    msg.set_content(m.body, subtype="html", charset="utf-8")
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if m.port == IMPLICIT_TLS_PORT:
        smtp = smtplib.SMTP_SSL(m.host, m.port, timeout=TIMEOUT_SECONDS, context=context)
    else:
        smtp = smtplib.SMTP(m.host, m.port, timeout=TIMEOUT_SECONDS)
    with smtp:
        secure = m.port == IMPLICIT_TLS_PORT
        if not secure:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
                secure = True
        if m.username:
            if not secure and not _loopback(m.host):
                raise smtplib.SMTPException(f"{m.host} offers no TLS: the password is not sent in the clear")
            smtp.login(m.username, m.password)
        smtp.send_message(msg, m.sender, [*m.to, *m.cc, *m.bcc])


async def deliver(message: MailMessage) -> None:
    """Send one message (in a worker thread: the event loop goes on); an error says why, without
    the password or the body."""
    try:
        await asyncio.to_thread(_send, message)
    except (OSError, smtplib.SMTPException) as exc:
        where = f"{message.host}:{message.port}"
        raise StateError(f"sys.SendMail: sending to {list(message.to)} via {where} failed: {exc}") from None
