"""API v2 reads and writes over HTTP, scenario by scenario against Voedger's integration tests
(``impl_qpv2_test.go`` and ``impl_cpv2_test.go``), on the test shop (``shop/v2.vsql``): the same
request must get the same status, body shape and error text a Voedger client expects.

Each test names the scenario it follows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router.conftest import SHOP_DIR
from tests.support import owned_workspace, v2_error_of
from voedger.appdef import QName
from voedger.auth import PrincipalPayload
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, ServerConfig

APP = "test/shop"
PROFILE = new_wsid(1, 410_001)
SHOP = new_wsid(1, 410_002)
V1 = f"/api/test/shop/{SHOP}"
V2 = f"/api/v2/apps/test/shop/workspaces/{SHOP}"
MISSING_ID = 322685000131212  # no record has it (Voedger's NonExistingRecordID)


@dataclass
class Env:
    vvm: VVM
    client: httpx.AsyncClient
    auth: dict[str, str]
    """The workspace owner's token."""

    async def get(self, path: str, *, auth: dict[str, str] | None = None, **params: str) -> httpx.Response:
        return await self.client.get(f"{V2}/{path}", params=params, headers=self.auth if auth is None else auth)

    async def send(self, method: str, path: str, body: object = None, *, raw: bytes | None = None) -> httpx.Response:
        return await self.client.request(method, f"{V2}/{path}", json=body, content=raw, headers=self.auth)

    async def cud(self, *records: dict[str, Any]) -> dict[str, int]:
        body = {"cuds": [{"fields": {"sys.ID": i + 1, **r}} for i, r in enumerate(records)]}
        r = await self.client.post(f"{V1}/c.sys.CUD", json=body, headers=self.auth)
        assert r.status_code == 200, r.text
        return {k: int(v) for k, v in r.json().get("NewIDs", {}).items()}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, SHOP_DIR)]))
    await vvm.start()
    token = await owned_workspace(vvm, APP, PROFILE, SHOP, "shop.ShopDesc", "Shop")
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield Env(vvm, client, {"Authorization": f"Bearer {token}"})
    await vvm.stop()


def error(r: httpx.Response, status: int, text: str = "", *, exact: bool = False) -> None:
    """An API v2 error answer: the status, and the text in its message (the whole message when
    ``exact``), as Voedger's scenarios check them."""
    assert r.status_code == status, r.text
    body = v2_error_of(r)
    assert set(body) == {"status", "message"}, body
    assert (body["message"] == text) if exact else (text in body["message"]), body


# --- views (TestQueryProcessor2_Views) --------------------------------------------------------------

DAYS = [(2025, 1, 1), (2025, 2, 1), (2024, 1, 1), (2023, 1, 2), (2023, 2, 3), (2022, 1, 2), (2021, 1, 2)]


async def _daily(env: Env) -> int:
    records = [
        {"sys.QName": "shop.Daily", "Year": y, "Month": m, "Day": d, "StringValue": f"{y}-{m}-{d}"} for y, m, d in DAYS
    ]
    body = {"cuds": [{"fields": {"sys.ID": i + 1, **r}} for i, r in enumerate(records)]}
    r = await env.client.post(f"{V1}/c.sys.CUD", json=body, headers=env.auth)
    assert r.status_code == 200, r.text
    return int(r.json()["CurrentWLogOffset"])


def _row(y: int, m: int, d: int, offs: int) -> dict[str, Any]:
    return {"Year": y, "Month": m, "Day": d, "StringValue": f"{y}-{m}-{d}", "offs": offs, "sys.QName": "shop.DailyIdx"}


async def test_view_reads(env: Env) -> None:
    offs = await _daily(env)
    r = await env.get("views/shop.DailyIdx", where='{"Year":2025}')
    assert r.status_code == 200 and r.json() == {"results": [_row(2025, 1, 1, offs), _row(2025, 2, 1, offs)]}, r.text
    r = await env.get("views/shop.DailyIdx", where='{"Year":{"$in":[2024,2025]}}')
    assert r.json()["results"] == [_row(2024, 1, 1, offs), _row(2025, 1, 1, offs), _row(2025, 2, 1, offs)], r.text
    r = await env.get("views/shop.DailyIdx", where='{"Year":2025,"Month":2}')
    assert r.json()["results"] == [_row(2025, 2, 1, offs)], r.text
    # a clustering column after one that is not fixed filters the rows read
    r = await env.get("views/shop.DailyIdx", where='{"Year":2025,"Day":1}')
    assert r.json()["results"] == [_row(2025, 1, 1, offs), _row(2025, 2, 1, offs)], r.text
    years = '{"Year":{"$in":[2021,2022,2023,2024,2025]},"Month":1,"Day":2}'
    r = await env.get("views/shop.DailyIdx", where=years)
    assert [x["Year"] for x in r.json()["results"]] == [2021, 2022, 2023], r.text
    r = await env.get("views/shop.DailyIdx", where=years, order="-Year")
    assert [x["Year"] for x in r.json()["results"]] == [2023, 2022, 2021], r.text
    r = await env.get("views/shop.DailyIdx", where=years, keys="Year,Month,Day")
    assert r.json() == {"results": [{"Year": y, "Month": 1, "Day": 2} for y in (2021, 2022, 2023)]}, r.text


async def test_view_read_by_a_role_granted_some_fields(env: Env) -> None:
    offs = await _daily(env)
    assert env.vvm.tokens is not None
    payload = PrincipalPayload(login="alice", profile_wsid=PROFILE)
    token = env.vvm.tokens.issue_api_token(APP, payload, [QName("shop", "DailyReader")], SHOP)
    auth = {"Authorization": f"Bearer {token}"}
    error(await env.get("views/shop.DailyIdx", auth=auth, where='{"Year":2025}'), 403)
    r = await env.get("views/shop.DailyIdx", auth=auth, where='{"Year":2025}', keys="Year,Month,Day,offs")
    assert r.status_code == 200, r.text
    assert r.json() == {"results": [{"Year": 2025, "Month": m, "Day": 1, "offs": offs} for m in (1, 2)]}
    error(await env.get("views/shop.Sales", auth=auth, where='{"Item":1}'), 403)


# --- queries (TestQueryProcessor2_Queries) ----------------------------------------------------------


async def test_queries(env: Env) -> None:
    await _daily(env)
    r = await env.client.get(f"{V2}/queries/sys.Echo", params={"args": '{"Text":"Hello world"}'})
    assert r.status_code == 200 and r.json() == {"results": [{"Res": "Hello world"}]}, r.text
    r = await env.get("queries/shop.QryDailyIdx", args='{"Year":2025}')
    assert r.json() == {
        "results": [
            {"Year": 2025, "Month": 1, "Day": 1, "StringValue": "2025-1-1"},
            {"Year": 2025, "Month": 2, "Day": 1, "StringValue": "2025-2-1"},
        ]
    }, r.text
    r = await env.get("queries/shop.QryDailyIdx", args='{"Year":2023}', where='{"Month":{"$in":[2,4]}}')
    assert [x["StringValue"] for x in r.json()["results"]] == ["2023-2-3"], r.text
    r = await env.get("queries/shop.QryDailyIdx", args='{"Year":2025}', order="-Month", keys="Month")
    assert r.json() == {"results": [{"Month": 2}, {"Month": 1}]}, r.text
    r = await env.get("queries/shop.QryVoid")
    assert r.status_code == 200 and r.json() == {"results": []}, r.text
    error(
        await env.get("queries/shop.Nope"), 400, "query shop.Nope does not exist in Workspace «shop.ShopWS»", exact=True
    )
    error(await env.get("views/shop.Nope"), 400, "view shop.Nope does not exist in Workspace «shop.ShopWS»", exact=True)
    error(
        await env.get("docs/shop.Nope/1"),
        400,
        "document or record shop.Nope is not defined in Workspace «shop.ShopWS»",
        exact=True,
    )
    error(
        await env.get("cdocs/shop.Nope"),
        400,
        "document or record shop.Nope is not defined in Workspace «shop.ShopWS»",
        exact=True,
    )
    r = await env.get("queries/shop.QryRawArg", args="hello raw world")
    assert r.status_code == 200 and r.json() == {"results": [{"Res": "hello raw world"}]}, r.text


# --- include (TestQueryProcessor2_Include) -----------------------------------------------------------


async def _root(env: Env) -> tuple[dict[str, int], dict[str, int]]:
    cfg = await env.cud({"sys.QName": "shop.Cfg", "Name": "CfgA"}, {"sys.QName": "shop.Cfg", "Name": "CfgB"})
    body = {
        "FldRoot": 42,
        "Cfg": cfg["1"],
        "Nested": [
            {"FldNested": 43, "Cfg": cfg["2"], "Third": [{"Fld1": 44, "Cfg": cfg["1"]}, {"Fld1": 45}]},
            {"FldNested": 46, "Third": [{"Fld1": 47}, {"Fld1": 48}]},
        ],
    }
    r = await env.send("POST", "docs/shop.Root", body)
    assert r.status_code == 201, r.text
    return cfg, {k: int(v) for k, v in r.json()["newIDs"].items()}


def _rec(qname: str, rid: int, parent: int = 0, container: str = "", **fields: Any) -> dict[str, Any]:
    sys: dict[str, Any] = {"sys.ID": rid, "sys.IsActive": True, "sys.QName": qname}
    if parent:
        sys |= {"sys.ParentID": parent, "sys.Container": container}
    return {**fields, **sys}


async def test_document_include_levels(env: Env) -> None:
    cfg, ids = await _root(env)
    root = ids["1"]
    cfg_a = _rec("shop.Cfg", cfg["1"], Name="CfgA")
    r = await env.get(f"docs/shop.Root/{root}", include="Cfg")
    assert r.status_code == 200 and r.json() == _rec("shop.Root", root, FldRoot=42, Cfg=cfg_a), r.text
    r = await env.get(f"docs/shop.Root/{root}", include="Nested.Third.Cfg")
    nested = r.json()["Nested"]
    assert nested[0] == _rec(
        "shop.Nested",
        ids["2"],
        root,
        "Nested",
        FldNested=43,
        Cfg=cfg["2"],
        Third=[
            _rec("shop.Third", ids["3"], ids["2"], "Third", Fld1=44, Cfg=cfg_a),
            _rec("shop.Third", ids["4"], ids["2"], "Third", Fld1=45),
        ],
    ), r.text
    assert [x["Fld1"] for x in nested[1]["Third"]] == [47, 48]
    r = await env.get(f"docs/shop.Root/{root}", include="Nested.Third.Cfg", keys='Nested.Third.Cfg.Name,"sys.ID"')
    assert r.json() == {
        "sys.ID": root,
        "Nested": [{"Third": [{"Cfg": {"Name": "CfgA"}}, {}]}, {"Third": [{}, {}]}],
    }, r.text
    cases = {
        "Level0": "field expression - 'Level0', 'Level0' - unexpected field",
        "Nested.Level1": "field expression - 'Nested.Level1', 'Level1' - unexpected field",
        "Nested.Third.Level2": "field expression - 'Nested.Third.Level2', 'Level2' - unexpected field",
        "Nested.Third.Fld1": "field expression - 'Nested.Third.Fld1', 'Fld1' - unexpected field",
    }
    for include, message in cases.items():
        error(await env.get(f"docs/shop.Root/{root}", include=include), 400, message, exact=True)
    # an empty container is left out, at any level
    r = await env.send("POST", "docs/shop.Root", {"FldRoot": 1, "Nested": [{"FldNested": 2}]})
    bare = r.json()["newIDs"]
    r = await env.get(f"docs/shop.Root/{bare['1']}", include="Nested.Third")
    assert r.json()["Nested"] == [_rec("shop.Nested", bare["2"], bare["1"], "Nested", FldNested=2)], r.text
    r = await env.send("POST", "docs/shop.Root", {"FldRoot": 1})
    r = await env.get(f"docs/shop.Root/{r.json()['newIDs']['1']}", include="Nested.Third")
    assert "Nested" not in r.json(), r.text
    r = await env.get("cdocs/shop.Root", include="Nested.Third", limit="1")
    assert r.status_code == 200 and [len(x["Third"]) for x in r.json()["results"][0]["Nested"]] == [2, 2], r.text
    error(
        await env.get("cdocs/shop.Root", include="Nested.Nope"),
        400,
        "field expression - 'Nested.Nope', 'Nope' - unexpected field",
    )


async def test_view_include(env: Env) -> None:
    item = (await env.cud({"sys.QName": "shop.Item", "Name": "tea", "Price": 3}))["1"]
    r = await env.send("POST", "commands/shop.MakeOrder", {"args": {"sys.ID": 1, "Item": item, "Qty": 2}})
    assert r.status_code == 200, r.text
    where = '{"Item":' + str(item) + "}"
    r = await env.get("views/shop.Sales", where=where, include="Item")
    tea = _rec("shop.Item", item, Name="tea", Price=3)
    assert r.json() == {"results": [{"Item": tea, "Day": 1, "Qty": 2, "sys.QName": "shop.Sales"}]}, r.text
    r = await env.get("views/shop.Sales", where=where, include="Item", keys='Qty,Item.Name,Item."sys.ID"')
    assert r.json() == {"results": [{"Item": {"Name": "tea", "sys.ID": item}, "Qty": 2}]}, r.text
    error(
        await env.get("views/shop.Sales", where=where, include="Item.Name"),
        400,
        "field expression - 'Item.Name', 'Name' - unexpected field",
    )
    await _daily(env)
    error(
        await env.get("views/shop.DailyIdx", where='{"Year":2025}', include="EpicFail"),
        400,
        "field expression - 'EpicFail', 'EpicFail' - unexpected field",
    )
    error(await env.get("views/shop.DailyIdx", where='{"Year":2025}', include="Year.Name"), 400)


# --- docs and cdocs (TestQueryProcessor2_Docs, TestQueryProcessor2_CDocs) -----------------------------


async def test_read_documents(env: Env) -> None:
    ids = await env.cud({"sys.QName": "shop.Cfg", "Name": "Awesome"})
    cfg = ids["1"]
    r = await env.get(f"docs/shop.Cfg/{cfg}")
    assert r.status_code == 200 and r.json() == _rec("shop.Cfg", cfg, Name="Awesome"), r.text
    body = {"args": {"sys.ID": 1, "Total": 42, "Lines": [{"sys.ID": 2, "sys.ParentID": 1, "Qty": 43}]}}
    r = await env.client.post(f"{V1}/c.shop.Pay", json=body, headers=env.auth)
    assert r.status_code == 200, r.text
    odoc, orecord = r.json()["NewIDs"]["1"], r.json()["NewIDs"]["2"]
    r = await env.get(f"docs/shop.Receipt/{odoc}")
    assert r.status_code == 200 and r.json() == {"Total": 42, "sys.ID": odoc, "sys.QName": "shop.Receipt"}, r.text
    r = await env.get(f"docs/shop.ReceiptLine/{orecord}")
    expected = {
        "Qty": 43,
        "sys.Container": "Lines",
        "sys.ID": orecord,
        "sys.ParentID": odoc,
        "sys.QName": "shop.ReceiptLine",
    }
    assert r.status_code == 200 and r.json() == expected, r.text
    error(await env.get(f"docs/shop.Cfg/{cfg}", auth={}), 403)
    # a singleton is read at ID 0 (Voedger's docs handler), and at no other ID
    r = await env.get("docs/shop.ShopDesc/0")
    assert r.status_code == 200 and r.json()["Name"] == "Shop", r.text
    error(await env.get(f"docs/shop.ShopDesc/{cfg}"), 400, "document shop.ShopDesc is singleton. DocID must be 0")
    error(await env.get("docs/shop.Cfg/123"), 404, "document shop.Cfg with ID 123 not found")

    r = await env.get("cdocs/shop.Cfg")
    assert r.status_code == 200 and r.json() == {"results": [_rec("shop.Cfg", cfg, Name="Awesome")]}, r.text
    r = await env.get("cdocs/shop.Cfg", keys='Name,"sys.ID"')
    assert r.json() == {"results": [{"Name": "Awesome", "sys.ID": cfg}]}, r.text
    # a deactivated document stays in the collection, as in Voedger
    assert env.vvm.tokens is not None
    system = {"Authorization": f"Bearer {env.vvm.tokens.issue_system(APP)}"}
    r = await env.client.delete(f"{V2}/docs/shop.Cfg/{cfg}", headers=system)
    assert r.status_code == 200, r.text
    r = await env.get("cdocs/shop.Cfg", keys='"sys.IsActive"')
    assert r.json() == {"results": [{"sys.IsActive": False}]}, r.text
    await _daily(env)
    r = await env.get("cdocs/shop.Daily", keys="Year,Month,Day", order="-Year,Month", skip="2", limit="3")
    assert r.json() == {
        "results": [
            {"Year": 2024, "Month": 1, "Day": 1},
            {"Year": 2023, "Month": 1, "Day": 2},
            {"Year": 2023, "Month": 2, "Day": 3},
        ]
    }, r.text


# --- documents written over API v2 (TestBasicUsage_CommandProcessorV2_Doc, TestErrorsCPv2) -------------


async def test_document_insert_update_delete(env: Env) -> None:
    _, ids = await _root(env)
    assert sorted(ids, key=int) == ["1", "2", "3", "4", "5", "6", "7"]  # depth first, in body order
    r = await env.send("PATCH", f"docs/shop.Third/{ids['7']}", {"Fld1": 100})
    assert r.status_code == 200 and set(r.json()) == {"currentWLogOffset"}, r.text
    r = await env.send("DELETE", f"docs/shop.Third/{ids['6']}", raw=b"{}")
    assert r.status_code == 200, r.text
    r = await env.get(f"docs/shop.Root/{ids['1']}", include="Nested,Nested.Third")
    third = r.json()["Nested"][1]["Third"]
    assert [(x["Fld1"], x["sys.IsActive"]) for x in third] == [(47, False), (100, True)], r.text
    body = {"FldRoot": 1, "Nested": [{"FldNested": 2, "Third": [{"Fld1": 3, "sys.ID": 123}, {"Fld1": 4}]}]}
    r = await env.send("POST", "docs/shop.Root", body)
    assert r.status_code == 201 and "123" in r.json()["newIDs"], r.text


async def test_document_write_errors(env: Env) -> None:
    _, ids = await _root(env)
    root = ids["1"]
    r = await env.send("PATCH", f"docs/shop.Third/{ids['7']}", {"Fld1": 100, "sys.ID": ids["7"]})
    error(r, 400, "sys.ID field is not allowed among fields to update")
    error(await env.send("PATCH", "docs/shop.Root/0", {"FldRoot": 1}), 404, "record with queried id 0 does not exist")
    error(await env.send("DELETE", "docs/shop.Root/0"), 404, "record with queried id 0 does not exist")
    error(await env.get("docs/shop.Root/0"), 404, "document shop.Root with ID 0 not found", exact=True)
    error(await env.send("PATCH", f"docs/shop.Root/{MISSING_ID}", {"FldRoot": 1}), 404)
    r = await env.send("POST", "docs/shop.Root", {"FldRoot": 42, "sys.ID": "wrong"})
    error(r, 400, 'field "sys.ID" must be json.Number')
    r = await env.send("DELETE", f"docs/shop.Root/{root}", raw=b'{"FldRoot": 42}')
    error(r, 400, "unexpected body is provided on delete")
    wrong = f"record id {root} leads to shop.Root QName whereas shop.Cfg QName is mentioned in the request"
    error(await env.send("PATCH", f"docs/shop.Cfg/{root}", {"FldRoot": 1}), 400, wrong)
    error(await env.send("DELETE", f"docs/shop.Cfg/{root}", raw=b"{}"), 400, wrong)

    # a table the workspace lacks (the application's other workspaces may have it)
    not_found = f"table shop.Nope not found in workspace {SHOP}:shop.ShopDesc"
    error(await env.send("POST", "docs/shop.Nope", {"Fld1": 1}), 400, not_found, exact=True)
    error(await env.send("DELETE", f"docs/shop.Nope/{root}"), 400, not_found, exact=True)
    only_args = "cannot operate on the ODoc\\ORecord in any way other than through command arguments"
    error(await env.send("POST", "docs/shop.Receipt", raw=b"{}"), 405, only_args)
    error(await env.send("POST", "docs/shop.ReceiptLine", raw=b"{}"), 405, only_args)
    body = {"args": {"sys.ID": 1, "Lines": [{"sys.ID": 2, "sys.ParentID": 1}]}}
    r = await env.client.post(f"{V1}/c.shop.Pay", json=body, headers=env.auth)
    odoc, orecord = r.json()["NewIDs"]["1"], r.json()["NewIDs"]["2"]
    for path in (f"docs/shop.Receipt/{odoc}", f"docs/shop.ReceiptLine/{orecord}"):
        error(await env.send("PATCH", path, raw=b"{}"), 405, only_args)
        error(await env.send("DELETE", path, raw=b"{}"), 405, only_args)


# --- commands and access (TestBasicUsage_CommandProcessorV2_ExecCmd, TestAuth) -------------------------


async def test_commands(env: Env) -> None:
    item = (await env.cud({"sys.QName": "shop.Item", "Name": "tea"}))["1"]
    r = await env.send("POST", "commands/shop.MakeOrder", {"args": {"sys.ID": 1, "Item": item, "Qty": 2}})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"Total": 20, "sys.QName": "shop.TotalResult"}, r.text
    error(await env.send("POST", "commands/shop.Unknown", {"args": {"Arg1": 1}}), 404)
    # Voedger lets other keys of the body through (it logs them), and takes CUDs for sys.CUD only
    order = {"args": {"sys.ID": 1, "Item": item, "Qty": 1}}
    r = await env.send("POST", "commands/shop.MakeOrder", {**order, "comment": "extra"})
    assert r.status_code == 200 and r.json()["result"]["Total"] == 10, r.text
    cud = {"fields": {"sys.ID": 1, "sys.QName": "shop.Cfg", "Name": "by command"}}
    r = await env.send("POST", "commands/shop.MakeOrder", {**order, "cuds": [cud]})
    error(r, 400, "CUDs allowed for c.sys.CUD command only", exact=True)
    r = await env.send("POST", "commands/sys.CUD", {"cuds": [cud]})
    assert r.status_code == 200 and set(r.json()["newIDs"]) == {"1"}, r.text


async def test_operations_the_owner_may_not_do(env: Env) -> None:
    r = await env.send("POST", "docs/shop.Denied", {"Fld1": 42})
    error(r, 403, "OperationKind_Insert shop.Denied: operation forbidden")
    assert env.vvm.tokens is not None
    system = {"Authorization": f"Bearer {env.vvm.tokens.issue_system(APP)}"}
    r = await env.client.post(f"{V2}/docs/shop.Denied", json={"Fld1": 42}, headers=system)  # the system may
    assert r.status_code == 201, r.text
    denied = r.json()["newIDs"]["1"]
    error(
        await env.send("PATCH", f"docs/shop.Denied/{denied}", {"Fld1": 43}),
        403,
        "OperationKind_Update shop.Denied: operation forbidden",
    )
    r = await env.send("POST", "docs/shop.Undeletable", {"Fld1": 42})
    assert r.status_code == 201, r.text
    kept = r.json()["newIDs"]["1"]
    r = await env.send("DELETE", f"docs/shop.Undeletable/{kept}", raw=b"{}")
    error(r, 403, "OperationKind_Deactivate shop.Undeletable: operation forbidden")
