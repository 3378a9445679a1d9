"""The SMTP mailer against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.support import free_port
from voedger.apps.sys.mail import SmtpMailer


class Collect:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


async def test_sends_through_a_real_smtp_server() -> None:
    handler = Collect()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}/?from=verify@restaurant.test")
        await mailer.send("dave@example.com", "Your code", "Your verification code is 123456")
    finally:
        controller.stop()
    assert len(handler.messages) == 1
    envelope = handler.messages[0]
    assert envelope.mail_from == "verify@restaurant.test" and envelope.rcpt_tos == ["dave@example.com"]
    assert b"123456" in envelope.content and b"Subject: Your code" in envelope.content


def test_password_stays_out_of_repr() -> None:
    mailer = SmtpMailer.from_url("smtp://user:s3cr3t@mail.example:2525/?from=a@b.c&starttls=1")
    assert mailer.port == 2525 and mailer.starttls and mailer.username == "user"
    assert "s3cr3t" not in repr(mailer)


@pytest.mark.parametrize("url", ["http://x", "smtp://", "smtp://h/?colour=red"])
def test_bad_urls_are_named(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP URL"):
        SmtpMailer.from_url(url)
