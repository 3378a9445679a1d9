"""Answers checked side by side with Voedger's integration scenarios (its ``pkg/sys/it``): the
same requests must get the same status and the message a Voedger client expects.

Each test names the scenario it follows. The application is ours (``answers/``): a library with
shelves, books (a UNIQUE), tags (a UNIQUEFIELD), a singleton, loans as ODocs, and functions that
only the anonymous may call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from voedger.appdef import QName
from voedger.auth import PrincipalPayload
from voedger.clock import ManualClock
from voedger.processors.command import CommandRequest
from voedger.processors.principal import SYSTEM
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, ServerConfig

APP = "test/answers"
APP_DIR = Path(__file__).parent / "answers"
PROFILE = new_wsid(1, 400_001)
LIBRARY = new_wsid(1, 400_002)
V1 = f"/api/test/answers/{LIBRARY}"
V2 = f"/api/v2/apps/test/answers/workspaces/{LIBRARY}"
MISSING_ID = 322685000131212  # no record has it (Voedger's NonExistingRecordID)


@dataclass
class Env:
    vvm: VVM
    client: httpx.AsyncClient
    clock: ManualClock
    auth: dict[str, str]
    """The workspace owner's token."""

    async def cmd(self, name: str, body: dict[str, Any], *, auth: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(f"{V1}/c.{name}", json=body, headers=self.auth if auth is None else auth)

    async def cud(self, *cuds: dict[str, Any]) -> httpx.Response:
        return await self.cmd("sys.CUD", {"cuds": list(cuds)})

    async def create(self, **fields: Any) -> int:
        r = await self.cud({"fields": {"sys.ID": 1, **fields}})
        assert r.status_code == 200, r.text
        return int(r.json()["NewIDs"]["1"])


async def _system_cud(vvm: VVM, wsid: int, *records: dict[str, object]) -> None:
    body = {"cuds": [{"fields": {"sys.ID": i + 1, **r}} for i, r in enumerate(records)]}
    await vvm.app(APP).partition(wsid).submit(CommandRequest(wsid, QName("sys", "CUD"), body, SYSTEM, synced=True))


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = ManualClock(1_790_000_000)
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, APP_DIR)], clock=clock))
    await vvm.start()
    desc = {"sys.QName": "sys.WorkspaceDescriptor", "CreatedAtMs": 1, "InitCompletedAtMs": 1}
    await _system_cud(
        vvm,
        PROFILE,
        {**desc, "WSName": "alice", "WSKind": "sys.UserProfile"},
        {"sys.QName": "sys.UserProfile", "DisplayName": "alice"},
    )
    await _system_cud(
        vvm,
        LIBRARY,
        {**desc, "WSName": "library", "WSKind": "answers.LibraryDesc", "OwnerWSID": PROFILE},
        {"sys.QName": "answers.LibraryDesc", "Name": "Library"},
    )
    assert vvm.tokens is not None
    token = vvm.tokens.issue(APP, PrincipalPayload(login="alice", profile_wsid=PROFILE), timedelta(hours=1))
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield Env(vvm, client, clock, {"Authorization": f"Bearer {token}"})
    await vvm.stop()


def error(r: httpx.Response, status: int, *texts: str) -> str:
    """The message of an API v1 or v2 error answer, checked for its status and texts."""
    assert r.status_code == status, r.text
    body = r.json()
    message = str(body["sys.Error"]["Message"] if "sys.Error" in body else body["message"])
    for text in texts:
        assert text in message, message
    return message


# --- references (impl_cud_test.go: TestRefIntegrity, testArgsRefIntegrity) ------------------------


async def test_dangling_references_in_cuds(env: Env) -> None:
    r = await env.cud({"fields": {"sys.ID": 1, "sys.QName": "answers.Book", "Title": "t", "Shelf": MISSING_ID}})
    error(
        r,
        400,
        f"referential integrity violation: record ID {MISSING_ID} referenced by answers.Book.Shelf does not exist",
    )
    book = await env.create(**{"sys.QName": "answers.Book", "Title": "Dune"})
    r = await env.cud({"fields": {"sys.ID": 1, "sys.QName": "answers.Book", "Title": "t2", "Shelf": book}})
    error(
        r,
        400,
        f"referential integrity violation: record ID {book} referenced by answers.Book.Shelf "
        "is of QName answers.Book whereas [answers.Shelf] QNames are only allowed",
    )
    # an update that sets a dangling reference is refused the same way
    r = await env.cud({"sys.ID": book, "fields": {"Shelf": MISSING_ID}})
    error(r, 400, f"record ID {MISSING_ID} referenced by answers.Book.Shelf does not exist")


async def test_references_in_args_and_unlogged_args(env: Env) -> None:
    shelf = await env.create(**{"sys.QName": "answers.Shelf", "Name": "A"})
    book = await env.create(**{"sys.QName": "answers.Book", "Title": "Dune", "Shelf": shelf})
    ok = {"args": {"sys.ID": 1, "Book": book, "Items": [{"sys.ID": 2, "Shelf": shelf}]}, "unloggedArgs": {"Book": book}}
    r = await env.cmd("answers.Lend", ok)
    assert r.status_code == 200, r.text
    assert set(r.json()["NewIDs"]) == {"1", "2"}

    cases: list[tuple[dict[str, Any], str]] = [
        ({"args": {"sys.ID": 1, "Book": MISSING_ID}}, "answers.Loan.Book does not exist"),
        (
            {"args": {"sys.ID": 1, "Items": [{"sys.ID": 2, "Shelf": MISSING_ID}]}},
            "answers.LoanItem.Shelf does not exist",
        ),
        ({"args": {"sys.ID": 1}, "unloggedArgs": {"Book": MISSING_ID}}, "answers.Note.Book does not exist"),
    ]
    for body, text in cases:
        r = await env.cmd("answers.Lend", body)
        error(r, 400, f"referential integrity violation: record ID {MISSING_ID}", text)
    r = await env.cmd("answers.Lend", {"args": {"sys.ID": 1}, "unloggedArgs": {"Book": shelf}})
    error(
        r,
        400,
        f"record ID {shelf} referenced by answers.Note.Book is of QName answers.Shelf "
        "whereas [answers.Book] QNames are only allowed",
    )


async def test_argument_references_are_checked_before_the_extension(env: Env) -> None:
    # Annotate reads the book its argument names and trusts it to exist: Voedger checks the
    # references of the arguments before it runs the command, so a client's dangling
    # reference is the client's 400, not the extension's 500.
    r = await env.cmd("answers.Annotate", {"args": {"Book": MISSING_ID, "Text": "x"}})
    error(r, 400, f"record ID {MISSING_ID} referenced by answers.Note.Book does not exist")
    book = await env.create(**{"sys.QName": "answers.Book", "Title": "Dune"})
    r = await env.cmd("answers.Annotate", {"args": {"Book": book, "Text": "x"}})
    assert r.status_code == 200, r.text
