"""Extensions reaching beyond the platform: ``sys.Http`` (queries, projectors, jobs) and
``sys.SendMail`` (projectors, jobs), against a real HTTP server and a real SMTP server (aiosmtpd)
on loopback; the SMTP password comes from ``sys.AppSecret``, files of ``--secrets-dir``.

Through a whole server: an async projector mails a letter when it is inserted and a job mails a
digest every minute (Voedger's ``JobSendEmail``); a projector whose mail cannot be sent is retried
until it can, and the letter is mailed once it can.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support import free_port, until
from voedger.appdef import QName
from voedger.auth import PrincipalPayload
from voedger.clock import ManualClock
from voedger.processors.command import CommandRequest
from voedger.processors.principal import SYSTEM
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.state import StateError
from voedger.state.mail import MailMessage, mail_message
from voedger.state.secrets import SecretFiles
from voedger.structs.events import CUD
from voedger.structs.wsid import new_wsid
from voedger.testkit import ExtensionTestKit
from voedger.vvm.server import VVM, ServerConfig

APP = "test/post"
PROFILE = new_wsid(1, 310_001)
OFFICE = new_wsid(1, 310_002)
V1 = f"/api/test/post/{OFFICE}"
PASSWORD = "s3cr3t-smtp"
MINUTE = 1_789_999_980  # a whole minute: 29,833,333 of them since the epoch

SCHEMA = """APPLICATION post();
WORKSPACE OfficeWS (
    DESCRIPTOR OfficeDesc (Name varchar);
    TABLE Letter INHERITS sys.CDoc (Recipient varchar(100) NOT NULL, Subject varchar(100));
    TYPE FetchParams (Url varchar(200) NOT NULL, Method varchar(10), Payload varchar(200));
    TYPE FetchResult (Status int32, Body varchar(1000), Header varchar(2000), Error varchar(1000));
    VIEW Hooks (
        Part int32 NOT NULL,
        Letter int64 NOT NULL,
        Status int32,
        PRIMARY KEY ((Part), Letter)
    ) AS RESULT OF CallHook;
    GRANT ALL ON ALL TABLES TO sys.WorkspaceOwner;
    GRANT SELECT ON ALL VIEWS TO sys.WorkspaceOwner;
    GRANT EXECUTE ON ALL COMMANDS TO sys.WorkspaceOwner;
    GRANT EXECUTE ON ALL QUERIES TO sys.WorkspaceOwner;
    EXTENSION ENGINE BUILTIN (
        QUERY Fetch(FetchParams) STATE(sys.Http) RETURNS FetchResult;
        QUERY FetchUndeclared(FetchParams) RETURNS FetchResult;
        PROJECTOR MailLetter AFTER INSERT ON (Letter) STATE(sys.AppSecret) INTENTS(sys.SendMail);
        PROJECTOR CallHook AFTER INSERT ON (Letter) STATE(sys.AppSecret, sys.Http) INTENTS(sys.View(Hooks));
    );
);
ALTER WORKSPACE sys.AppWorkspaceWS (
    EXTENSION ENGINE BUILTIN (
        JOB Digest '* * * * *' STATE(sys.AppSecret, sys.JobContext) INTENTS(sys.SendMail);
        JOB Probe '* * * * *' STATE(sys.AppSecret, sys.SendMail);
    );
);
"""

EXT = """from voedger.extensions import job, projector, query


def smtp(state):
    return dict(
        host="127.0.0.1",
        port=int(state.app_secret("SmtpPort")),
        username="post",
        password=state.app_secret("SmtpPassword"),
        sender="office@post.test",
    )


async def fetch(state, intents):
    a = state.arg
    answer = await state.http(
        a["Url"], method=a.get("Method") or "GET", body=a.get("Payload") or "",
        headers={"X-Office": "yes"}, timeout_ms=2000, handle_errors=True,
    )
    intents.result(Status=answer.status_code, Body=answer.text, Header=answer.header, Error=answer.error)


query("post.Fetch")(fetch)
query("post.FetchUndeclared")(fetch)


@projector("post.MailLetter")
def mail_letter(state, intents):
    for cud in state.event.cuds:
        if cud.is_new:
            intents.send_mail(**smtp(state), to=[cud.fields["Recipient"]], subject=cud.fields.get("Subject", ""),
                              body="<p>A letter for you</p>")


@projector("post.CallHook")
async def call_hook(state, intents):
    for cud in state.event.cuds:
        if cud.is_new:
            answer = await state.http(state.app_secret("HookUrl") + "/hook", method="POST",
                                      body=cud.fields["Recipient"])
            intents.put_view("post.Hooks", Part=0, Letter=cud.id, Status=answer.status_code)


@job("post.Digest")
def digest(state, intents):
    intents.send_mail(**smtp(state), to="boss@post.test", cc=["deputy@post.test"], bcc=["audit@post.test"],
                      subject=f"Digest {state.job_context.unix_time}", body="<b>all quiet</b>")


@job("post.Probe")
async def probe(state, intents):
    outcome = await state.send_mail(**{**smtp(state), "port": 1}, to="nobody@post.test")
    assert not outcome.success and "via 127.0.0.1:1 failed" in outcome.error_message, outcome
    missing = await state.send_mail(sender="a@b.c", to="x@y.z")
    assert not missing.success and missing.error_message == "sys.SendMail: 'Host': not found", missing
"""


def soon(probe: Any, timeout: float = 20.0) -> Any:
    """``until`` for a plain function."""

    async def check() -> Any:
        return probe()

    return until(check, timeout)


# --- the servers on the other side --------------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        # recorded before the answer goes out: the client may look at `seen` as soon as it has the answer
        self.server.seen.append((self.command, self.path, body))  # type: ignore[attr-defined]
        if self.path.startswith("/missing"):
            self.send_response(404)
            payload = b"no such page"
        elif self.path.startswith("/slow"):
            threading.Event().wait(1.0)
            self.send_response(200)
            payload = b"late"
        else:
            self.send_response(200)
            payload = json.dumps(
                {"method": self.command, "path": self.path, "body": body, "office": self.headers.get("X-Office")}
            ).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo", "1")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == PASSWORD.encode())


@dataclass
class Smtp:
    inbox: Inbox
    port: int
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, authenticator=self.inbox, auth_require_tls=False
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp(Inbox(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def secrets_dir(root: Path, smtp_port: int, hook: str) -> Path:
    folder = root / "secrets"
    folder.mkdir()
    for name, value in (("SmtpPort", str(smtp_port)), ("SmtpPassword", PASSWORD), ("HookUrl", hook)):
        (folder / name).write_text(value)
        (folder / name).chmod(0o600)
    return folder


def app_folder(root: Path) -> Path:
    folder = root / "post"
    folder.mkdir()
    (folder / "post.vsql").write_text(SCHEMA)
    (folder / "post_ext.py").write_text(EXT)
    return folder


# --- the extension's calls, in the test kit ---------------------------------------------------------


@pytest.fixture
def kit(tmp_path: Path, smtp: Smtp, echo: tuple[str, list[Any]]) -> ExtensionTestKit:
    return ExtensionTestKit(
        app_folder(tmp_path),
        secrets=SecretFiles(secrets_dir(tmp_path, smtp.port, echo[0])),
        clock=ManualClock(1.79e9),
    )


async def test_a_query_reads_any_answer_over_http(kit: ExtensionTestKit, echo: tuple[str, list[Any]]) -> None:
    url, seen = echo
    [got] = await kit.run_query("post.Fetch", {"Url": f"{url}/orders?page=2", "Method": "post", "Payload": "hi"})
    assert got["Status"] == 200 and got["Error"] == ""
    assert json.loads(got["Body"]) == {"method": "POST", "path": "/orders?page=2", "body": "hi", "office": "yes"}
    assert "X-Echo: 1" in got["Header"].split("\n") or "x-echo: 1" in got["Header"].split("\n")
    [missing] = await kit.run_query("post.Fetch", {"Url": f"{url}/missing"})
    assert (missing["Status"], missing["Body"]) == (404, "no such page")  # a status is an answer, not an error
    assert [s[:2] for s in seen] == [("POST", "/orders?page=2"), ("GET", "/missing")]


async def test_no_answer_is_an_error_the_extension_may_handle(kit: ExtensionTestKit, echo: tuple[str, Any]) -> None:
    port = free_port()
    [got] = await kit.run_query("post.Fetch", {"Url": f"http://127.0.0.1:{port}/x?token=abc"})
    assert (
        got["Status"] == 0
        and got["Error"] == f"sys.Http: GET http://127.0.0.1:{port}/x: ConnectError: All connection attempts failed"
    )
    assert "token=abc" not in got["Error"]  # a query string may carry credentials
    [late] = await kit.run_query("post.Fetch", {"Url": f"{echo[0]}/slow"})  # 1 s against a 2 s timeout
    assert late["Status"] == 200
    with pytest.raises(StateError, match="must be an absolute http"):
        await kit.run_query("post.Fetch", {"Url": "file:///etc/passwd"})


async def test_http_is_checked_against_state(kit: ExtensionTestKit, echo: tuple[str, Any]) -> None:
    with pytest.raises(StateError, match=r"uses sys.Http but does not declare it in STATE"):
        await kit.run_query("post.FetchUndeclared", {"Url": echo[0]})
    assert echo[1] == []


async def test_a_projector_asks_for_mail_the_kit_does_not_send(kit: ExtensionTestKit, smtp: Smtp) -> None:
    letter = CUD(True, 200_001, "post.Letter", {"Recipient": "ann@x.test", "Subject": "Hi"})
    sent = await kit.run_projector("post.MailLetter", event=kit.event("sys.CUD", cuds=(letter,)))
    [mail] = sent.mails
    assert (mail.to, mail.subject, mail.port, mail.password) == (("ann@x.test",), "Hi", smtp.port, PASSWORD)
    assert PASSWORD not in repr(mail) and "A letter" not in repr(mail)
    assert smtp.inbox.envelopes == []


def test_a_message_is_checked_as_voedger_checks_its_key() -> None:
    good = dict(host="h", port=25, sender="a@b.c", to="x@y.z")
    assert mail_message(**good) == MailMessage("h", 25, "a@b.c", ("x@y.z",))
    for missing, text in (("host", "'Host'"), ("port", "'Port'"), ("sender", "'From'"), ("to", "'To'")):
        with pytest.raises(StateError, match=f"{text}: not found"):
            mail_message(**{k: v for k, v in good.items() if k != missing})
    with pytest.raises(StateError, match="not a mail address"):
        mail_message(**{**good, "to": ["x@y.z\r\nBcc: evil@z"]})
    with pytest.raises(StateError, match="line break"):
        mail_message(**{**good, "subject": "hi\r\nBcc: evil@z"})


def test_secret_files_are_one_folder_s_files(tmp_path: Path) -> None:
    (tmp_path / "Key").write_text("k1")
    (tmp_path / ".hidden").write_text("h")
    (tmp_path / "sub").mkdir()
    secrets = SecretFiles(tmp_path)
    assert secrets["Key"] == "k1" and list(secrets) == ["Key"] and "k1" not in repr(secrets)
    for name in ("", " ", ".hidden", "../Key", "sub", "sub/x", "Missing"):
        with pytest.raises(KeyError):
            secrets[name]


# --- through a server ---------------------------------------------------------------------------


@dataclass
class Post:
    vvm: VVM
    client: httpx.AsyncClient

    def owner(self) -> dict[str, str]:
        assert self.vvm.tokens is not None
        t = self.vvm.tokens.issue(APP, PrincipalPayload(login="ann", profile_wsid=PROFILE), timedelta(hours=1))
        return {"Authorization": f"Bearer {t}"}

    async def letter(self, recipient: str, subject: str) -> int:
        body = {
            "cuds": [{"fields": {"sys.ID": 1, "sys.QName": "post.Letter", "Recipient": recipient, "Subject": subject}}]
        }
        r = await self.client.post(f"{V1}/c.sys.CUD", json=body, headers=self.owner())
        assert r.status_code == 200, r.text
        return int(r.json()["NewIDs"]["1"])


@pytest.fixture
async def post(tmp_path: Path, smtp: Smtp, echo: tuple[str, Any]) -> AsyncIterator[Post]:
    (tmp_path / "data").mkdir()
    config = ServerConfig(
        storage_url=f"sqlite://{tmp_path / 'data'}",
        apps=[(APP, app_folder(tmp_path))],
        clock=ManualClock(MINUTE + 5),  # 5 s past a minute
        secrets_dir=secrets_dir(tmp_path, smtp.port, echo[0]),
    )
    vvm = VVM(config)
    await vvm.start()
    desc: dict[str, Any] = {"sys.QName": "sys.WorkspaceDescriptor", "CreatedAtMs": 1, "InitCompletedAtMs": 1}
    for wsid, records in (
        (PROFILE, [{**desc, "WSName": "ann", "WSKind": "sys.UserProfile"}, {"sys.QName": "sys.UserProfile"}]),
        (OFFICE, [{**desc, "WSName": "office", "WSKind": "post.OfficeDesc", "OwnerWSID": PROFILE}]),
    ):
        body = {"cuds": [{"fields": {"sys.ID": i + 1, **r}} for i, r in enumerate(records)]}
        await vvm.app(APP).partition(wsid).submit(CommandRequest(wsid, QName("sys", "CUD"), body, SYSTEM, synced=True))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app(vvm, {1: LocalTransport(vvm)})), base_url="http://t"
    )
    try:
        yield Post(vvm, client)
    finally:
        await client.aclose()
        await vvm.stop()


async def test_a_projector_mails_and_calls_a_hook_after_the_command(
    post: Post, smtp: Smtp, echo: tuple[str, list[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    letter = await post.letter("ann@x.test", "Welcome")
    [envelope] = await soon(lambda: smtp.inbox.envelopes or None, timeout=20)
    assert envelope.mail_from == "office@post.test" and envelope.rcpt_tos == ["ann@x.test"]
    assert b"Subject: Welcome" in envelope.content and b"<p>A letter for you</p>" in envelope.content
    assert b"text/html" in envelope.content
    assert smtp.inbox.logins == [(b"post", PASSWORD.encode())]
    await soon(lambda: ("POST", "/hook", "ann@x.test") in echo[1] or None, timeout=20)
    r = await post.client.post(f"{V1}/q.sys.Collection", json={"args": {"Schema": "post.Letter"}}, headers=post.owner())
    assert r.status_code == 200
    view = post.vvm.app(APP).runtime.appdef.view("post.Hooks")

    async def hook_row() -> Any:
        from voedger.structs.pending import Pending
        from voedger.structs.views import get_row

        return await get_row(Pending(post.vvm.app(APP).runtime.storage), view, OFFICE, {"Part": 0, "Letter": letter})

    row = await until(hook_row, timeout=20)
    assert row["Status"] == 200
    assert PASSWORD not in caplog.text


async def test_a_projector_whose_mail_fails_is_retried_until_it_is_sent(post: Post, smtp: Smtp) -> None:
    smtp.stop()
    await post.letter("bob@x.test", "Retry me")
    actualizer = next(a for a in post.vvm.app(APP).actualizers if a.projector.qname == QName("post", "MailLetter"))
    await soon(lambda: actualizer.in_error or None, timeout=20)
    assert "sys.SendMail: sending to ['bob@x.test']" in (actualizer.last_error or "")
    assert PASSWORD not in (actualizer.last_error or "")
    smtp.start()
    [envelope] = await soon(lambda: smtp.inbox.envelopes or None, timeout=30)
    assert envelope.rcpt_tos == ["bob@x.test"]
    await soon(lambda: not actualizer.in_error or None, timeout=10)


async def test_a_job_mails_a_digest_every_minute(post: Post, smtp: Smtp) -> None:
    clock = post.vvm.config.clock
    assert isinstance(clock, ManualClock)
    clock.advance(60)
    runtime = post.vvm.app(APP).runtime
    envelopes = smtp.inbox.envelopes
    await soon(lambda: len(envelopes) >= runtime.num_app_workspaces or None, timeout=30)
    await asyncio.sleep(0.5)
    assert len(envelopes) == runtime.num_app_workspaces  # once in each app workspace
    first = envelopes[0]
    assert sorted(first.rcpt_tos) == ["audit@post.test", "boss@post.test", "deputy@post.test"]
    assert b"Cc: deputy@post.test" in first.content and b"audit@post.test" not in first.content  # BCC unseen
    subject = first.content.split(b"Subject: Digest ")[1].split(b"\r\n")[0]
    assert MINUTE + 60 <= int(subject) <= MINUTE + 65  # the job's time: when it ran
    probes = post.vvm.app(APP).jobs
    probe = QName("post", "Probe")
    # every Probe run of that minute has ended (its next run is planned once it has)
    await soon(lambda: all(s.next_run(probe, w) > MINUTE + 60 for s in probes for w in s.workspaces) or None)
    assert all(s.in_error == 0 for s in probes), [
        s.last_error(QName("post", "Probe"), w) for s in probes for w in s.workspaces
    ]
