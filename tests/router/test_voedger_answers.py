"""Answers checked side by side with Voedger's integration scenarios (its ``pkg/sys/it``): the
same requests must get the same status and the message a Voedger client expects.

Each test names the scenario it follows. The application is ours (``answers/``): a library with
shelves, books (a UNIQUE), tags (a UNIQUEFIELD), a singleton, loans as ODocs, and functions that
only the anonymous may call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import owned_workspace
from voedger.clock import ManualClock
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


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = ManualClock(1_790_000_000)
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, APP_DIR)], clock=clock))
    await vvm.start()
    token = await owned_workspace(vvm, APP, PROFILE, LIBRARY, "answers.LibraryDesc", "Library")
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


# --- uniques (impl_uniques_test.go) ----------------------------------------------------------------


async def test_a_missing_unique_field_counts_as_its_default(env: Env) -> None:
    # TestFewUniquesOneDoc, TestNullFields: no value, null and the default value are one value
    first = await env.create(**{"sys.QName": "answers.Book", "Title": "Dune"})
    for pages in ({}, {"Pages": 0}, {"Pages": None}):
        r = await env.cud({"fields": {"sys.ID": 1, "sys.QName": "answers.Book", "Title": "Dune", **pages}})
        error(r, 409, f'answers.Book: "answers.Book$uniques$TitlePages" unique constraint violation with ID {first}')
    await env.create(**{"sys.QName": "answers.Book", "Title": "Dune", "Pages": 412})
    # a UNIQUEFIELD the same way: two tags without a code share the empty code
    tag = await env.create(**{"sys.QName": "answers.Tag", "Name": "a"})
    r = await env.cud({"fields": {"sys.ID": 1, "sys.QName": "answers.Tag", "Name": "b"}})
    error(r, 409, f'answers.Tag: "answers.Tag" unique constraint violation with ID {tag}')


async def test_unique_value_too_long_and_unique_field_updates(env: Env) -> None:
    # TestMaxUniqueLen: the unique combination is longer than 65535 bytes
    long = "x" * 33000
    r = await env.cud({"fields": {"sys.ID": 1, "sys.QName": "answers.Tag", "Name": long, "Text": long, "Code": "c"}})
    error(r, 403, "unique value is too long", '"answers.Tag$uniques$NameText" is 66002, max 65535 is allowed')
    # TestUniquesDenyUpdate, TestActivateDeactivateRecordWithUniques: a unique field never changes
    book = await env.create(**{"sys.QName": "answers.Book", "Title": "Dune", "Pages": 1})
    r = await env.cud({"sys.ID": book, "fields": {"sys.QName": "answers.Book", "Pages": 2}})
    error(r, 403, "answers.Book: unique field «Pages» can not be changed: unique field update denied")
    r = await env.cud({"sys.ID": book, "fields": {"sys.IsActive": False}})
    assert r.status_code == 200, r.text
    r = await env.cud({"sys.ID": book, "fields": {"Title": "Dune II"}})
    error(r, 403, "unique field «Title» can not be changed")
    # an inactive record's other fields may change (Voedger refuses only its unique fields)
    r = await env.cud({"sys.ID": book, "fields": {"Isbn": "978-0441013593"}})
    assert r.status_code == 200, r.text


# --- CUDs (impl_cud_test.go, impl_test.go) -----------------------------------------------------------


async def test_a_singleton_gets_no_new_id(env: Env) -> None:
    # TestBasicUsage_Singletons: nothing passed through the ID generator
    body = {"fields": {"sys.ID": 1, "sys.QName": "answers.Settings", "Motto": "read"}}
    r = await env.cud(body)
    assert r.status_code == 200, r.text
    assert "NewIDs" not in r.json(), r.json()
    error(await env.cud(body), 409)


async def test_system_fields_of_an_update(env: Env) -> None:
    # TestSysFieldsModification, TestBasicUsage_Uniques (sys.QName unchanged among the fields)
    r = await env.cud(
        {"fields": {"sys.ID": 1, "sys.QName": "answers.Book", "Title": "Dune"}},
        {
            "fields": {
                "sys.ID": 2,
                "sys.QName": "answers.BookCopy",
                "sys.ParentID": 1,
                "sys.Container": "Copies",
                "Note": "worn",
            }
        },
    )
    assert r.status_code == 200, r.text
    book, copy = r.json()["NewIDs"]["1"], r.json()["NewIDs"]["2"]
    r = await env.cud({"sys.ID": copy, "fields": {"sys.QName": "answers.BookCopy", "Note": "new"}})
    assert r.status_code == 200, r.text
    r = await env.cud({"sys.ID": copy, "fields": {"sys.ID": copy, "sys.ParentID": book, "sys.Container": "Copies"}})
    assert r.status_code == 200, r.text
    refused = [
        ({"sys.QName": "answers.Book"}, "unable to update system field: CRecord «Copies: answers.BookCopy» sys.QName"),
        ({"sys.ID": 90000}, "unable to update system field: CRecord «Copies: answers.BookCopy» sys.ID"),
        ({"sys.ParentID": 90000}, "unable to update system field: CRecord «Copies: answers.BookCopy» sys.ParentID"),
        ({"sys.Container": "Other"}, "unable to update system field: CRecord «Copies: answers.BookCopy» sys.Container"),
    ]
    for fields, text in refused:
        error(await env.cud({"sys.ID": copy, "fields": fields}), 400, text)
    r = await env.cud({"sys.ID": book, "fields": {"sys.QName": "answers.Shelf"}})
    error(r, 400, "unable to update system field: CDoc «answers.Book» sys.QName")


async def test_insert_mistakes(env: Env) -> None:
    # TestErrors: no sys.QName on insert
    r = await env.cud({"fields": {"sys.ID": 1, "Title": "x"}})
    error(r, 400, "cuds[0]: failed to parse sys.QName: convert error: string «» to qualified name")
    r = await env.cud({"fields": {"sys.ID": 1, "sys.QName": "Book", "Title": "x"}})
    error(r, 400, "cuds[0]: failed to parse sys.QName: convert error: string «Book» to qualified name")
    # TestIsActiveValidation: a new record is never inactive
    r = await env.cud({"fields": {"sys.ID": 1, "sys.QName": "answers.Shelf", "Name": "a", "sys.IsActive": False}})
    error(r, 403, "inserting a deactivated record is not allowed")
    shelf = await env.create(**{"sys.QName": "answers.Shelf", "Name": "a"})
    r = await env.cud({"sys.ID": shelf, "fields": {"sys.IsActive": False, "Name": "b"}})
    error(r, 403, "updating other fields is not allowed if sys.IsActive is updating")


# --- commands and their results (impl_test.go: TestCmdResult) ------------------------------------------


async def test_a_result_that_breaks_its_type_is_the_servers_fault(env: Env) -> None:
    r = await env.cmd("answers.Count", {"args": {"Total": 21}})
    assert r.status_code == 200 and r.json()["Result"] == {"Total": 42, "sys.QName": "answers.Total"}, r.text
    error(await env.cmd("answers.Count", {"args": {"Total": 1, "Label": "missing"}}), 500)
    error(await env.cmd("answers.Count", {"args": {"Total": 1, "Label": "wrong type"}}), 500)


async def test_a_query_sent_as_a_command(env: Env) -> None:
    # getICommand: a function of the workspace that is not a command
    error(await env.cmd("answers.Hello", {}), 400, "answers.Hello is not a command")
    r = await env.client.post(f"{V2}/commands/answers.Hello", json={}, headers=env.auth)
    error(r, 400, "answers.Hello is not a command")
    error(
        await env.cmd("answers.Nothing", {}),
        404,
        "command answers.Nothing does not exist in workspace answers.LibraryWS",
    )


# --- tokens (impl_cud_test.go: TestExpiredTokenSkippedOnGrantExecToAnonymousFunc) ------------------------


async def test_an_expired_token_is_ignored_by_functions_only_the_anonymous_may_call(env: Env) -> None:
    env.clock.advance(24 * 3600)  # the owner's token has expired
    r = await env.cmd("answers.Knock", {})
    assert r.status_code == 200, r.text
    r = await env.client.post(f"{V1}/q.answers.Hello", json={}, headers=env.auth)
    assert r.status_code == 200, r.text
    r = await env.client.get(f"{V2}/queries/answers.Hello", headers=env.auth)
    assert r.status_code == 200, r.text
    # anything else still refuses the expired token
    error(await env.cmd("answers.Count", {"args": {"Total": 1}}), 401)


# --- API v2 (impl_cpv2_test.go) ---------------------------------------------------------------------


async def test_v2_delete_with_an_empty_object(env: Env) -> None:
    shelf = await env.create(**{"sys.QName": "answers.Shelf", "Name": "a"})
    url = f"{V2}/docs/answers.Shelf/{shelf}"
    r = await env.client.request("DELETE", url, content=b"{}", headers=env.auth)
    assert r.status_code == 200, r.text
    r = await env.client.request("DELETE", url, content=b'{"Name":"b"}', headers=env.auth)
    error(r, 400, "unexpected body is provided on delete")


async def test_v2_record_id_beyond_64_bits(env: Env) -> None:
    huge = 2**64 + 5
    for method in ("GET", "PATCH", "DELETE"):
        r = await env.client.request(method, f"{V2}/docs/answers.Shelf/{huge}", json={"Name": "x"}, headers=env.auth)
        assert r.status_code == 400, (method, r.text)
        assert "out of range" in r.json()["message"]
    for rid in (2**63 - 1, 2**63, 2**64 - 1):  # within 64 bits: no such record
        r = await env.client.get(f"{V2}/docs/answers.Shelf/{rid}", headers=env.auth)
        assert r.status_code == 404, (rid, r.text)
        r = await env.client.request("PATCH", f"{V2}/docs/answers.Shelf/{rid}", json={"Name": "x"}, headers=env.auth)
        assert r.status_code == 404, (rid, r.text)
