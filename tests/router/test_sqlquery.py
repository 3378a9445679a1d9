"""q.sys.SqlQuery over HTTP (API v1), after Voedger's ``pkg/sys/it/impl_sqlquery_test.go``:
records by ID, singletons, views by key, the WLog and the PLog with offsets and limits, other
workspaces by prefix, and Voedger's 400s for what the statement gets wrong."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router.test_identity import sign_up_and_in
from tests.router.test_invites import Env, open_env
from voedger.apps.sys.sqlparse import (
    AndExpr,
    ColName,
    ComparisonExpr,
    ParenExpr,
    SQLVal,
    WorkspaceKind,
    parse_query,
    parse_select,
)
from voedger.syserror import SysError

V1 = "/api/untill/restaurant"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with open_env(tmp_path) as e:
        yield e


async def sql(env: Env, query: str, wsid: int | None = None, auth: dict[str, str] | None = None) -> httpx.Response:
    body = {"args": {"Query": query}, "elements": [{"fields": ["Result"]}]}
    return await env.client.post(f"{V1}/{wsid or env.ws}/q.sys.SqlQuery", json=body, headers=auth or env.owner)


async def rows(env: Env, query: str, wsid: int | None = None) -> list[dict[str, Any]]:
    r = await sql(env, query, wsid)
    assert r.status_code == 200, r.text
    sections = r.json().get("sections") or [{"elements": []}]
    return [json.loads(e[0][0][0]) for e in sections[0]["elements"]]


async def cud(env: Env, *records: dict[str, Any]) -> dict[str, Any]:
    cuds = [{"fields": {"sys.ID": i + 1, **rec}} for i, rec in enumerate(records)]
    r = await env.client.post(f"{V1}/{env.ws}/c.sys.CUD", json={"cuds": cuds}, headers=env.owner)
    assert r.status_code == 200, r.text
    assert "NewIDs" in r.json(), r.text
    answer = r.json()
    return {"newIDs": dict(answer["NewIDs"]), "currentWLogOffset": answer["CurrentWLogOffset"]}


async def expect_400(env: Env, query: str, message: str) -> None:
    r = await sql(env, query)
    assert r.status_code == 400, r.text
    assert message in r.json()["sys.Error"]["Message"], r.text


async def test_records(env: Env) -> None:
    answer = await cud(
        env,
        {"sys.QName": "service.Location", "Name": "Centre", "TimeZone": "Europe/Rome"},
        {"sys.QName": "service.Location", "Name": "Port <&>", "TimeZone": "UTC", "Address": "Quay 1"},
    )
    centre, port = answer["newIDs"]["1"], answer["newIDs"]["2"]

    [row] = await rows(env, f"select * from service.Location where id = {centre}")
    assert row == {
        "sys.QName": "service.Location",
        "sys.ID": centre,
        "sys.IsActive": True,
        "Name": "Centre",
        "Address": "",  # every field, empty ones too
        "TimeZone": "Europe/Rome",
    }
    r = await sql(env, f"select * from service.Location where id = {port}")
    text = r.json()["sections"][0]["elements"][0][0][0][0]
    assert '"Name":"Port \\u003c\\u0026\\u003e"' in text  # as Go escapes
    assert list(json.loads(text)) == sorted(json.loads(text))  # keys sorted, as Go writes a map
    got = await rows(env, f"select name, sys.IsActive from service.location where id in ({centre}, {port})")
    assert got == [{"Name": "Centre", "sys.IsActive": True}, {"Name": "Port <&>", "sys.IsActive": True}]
    assert await rows(env, f"select Name from service.Location.{port}") == [{"Name": "Port <&>"}]
    # A singleton, without an ID: the workspace's descriptor is granted to nobody here ...
    r = await sql(env, "select Name, Currency from restaurant.RestaurantDescriptor")
    assert r.status_code == 403, r.text
    # ... while a profile's descriptor is its owner's.
    profile = await _profile(env)
    assert await rows(env, "select sys.QName, DisplayName from sys.UserProfile", wsid=profile) == [
        {"sys.QName": "sys.UserProfile", "DisplayName": ""}
    ]
    for query in ("select DisplayName from sys.UserProfile.1", "select DisplayName from sys.UserProfile where id = 1"):
        r = await sql(env, query, wsid=profile)
        assert r.status_code == 400, r.text
        assert r.json()["sys.Error"]["Message"] == "conditions are not allowed to query a singleton"

    for query, message in [
        ("select * from service.Location where something = 1", "unsupported column name: something"),
        ("select * from service.Location where id = 2.3", 'parsing "2.3": invalid syntax'),
        ("select * from service.Location where id in (1.3)", 'parsing "1.3": invalid syntax'),
        ("select * from service.Location where id >= 2", "unsupported operation: >="),
        ("select * from service.Location where id = 2 and x = 2", "unsupported expression: *sqlparser.AndExpr"),
        (
            "select * from service.Location",
            "'service.Location' is not a singleton. At least one record ID must be provided",
        ),
        (
            f"select * from service.DiningTable where id = {centre}",
            f"record with ID '{centre}' has mismatching QName 'service.Location'",
        ),
        ("select * from service.Location where id = 123456789", "record with ID '123456789' not found"),
        (
            f"select abracadabra from service.Location where id = {centre}",
            "not found: field «abracadabra» in CDoc «service.Location»",
        ),
        (
            "select * from service.Location.2 where id = 2",
            "record ID and 'where id ...' clause can not be used in one query",
        ),
        (f"select Name, Name from service.Location where id = {centre}", 'field "Name" is selected more than once'),
        (" ", "invalid query format"),
        ("update service.Location.1 set Name = 'x'", "'select' operation is expected"),
        ("select * from git.hub", "do not know how to read from the requested git.hub"),
        ("select * from service.Location where", "syntax error"),
    ]:
        await expect_400(env, query, message)


async def test_views(env: Env) -> None:
    answer = await cud(env, {"sys.QName": "service.Location", "Name": "Centre", "TimeZone": "UTC"})
    centre = answer["newIDs"]["1"]
    got = await rows(env, "select * from sys.CollectionView where PartKey = 1 and DocQName = 'service.Location'")
    assert len(got) == 1
    row = got[0]
    assert row["sys.QName"] == "sys.CollectionView"
    assert row["DocID"] == centre and row["DocQName"] == "service.Location" and row["PartKey"] == 1
    assert row["offs"] == answer["currentWLogOffset"] and row["Record"]["Name"] == "Centre"
    # Names in another case are recovered from the schema.
    assert await rows(
        env, "select docqname from sys.collectionview where partkey = 1 and docqname = 'service.Location'"
    ) == [{"DocQName": "service.Location"}]
    assert await rows(env, "select DocID from sys.CollectionView where PartKey = 1 and DocQName = 'nothing.Here'") == []
    await expect_400(env, "select * from sys.CollectionView where PartKey > 1", "unsupported operator: >")
    await expect_400(
        env,
        "select * from sys.CollectionView where PartKey = 1 or DocQName = 'x.Y'",
        "unsupported expression: *sqlparser.OrExpr",
    )
    await expect_400(
        env,
        "select abracadabra from sys.CollectionView where PartKey = 1",
        "not found: field «abracadabra» in ViewRecord «sys.CollectionView»",
    )
    await expect_400(
        env,
        "select * from sys.CollectionView where Nope = 1",
        "field 'Nope' does not exist in 'sys.CollectionView' key def",
    )
    await expect_400(
        env, "select * from sys.CollectionView.5 where PartKey = 1", "ID must not be specified on select from view"
    )


async def test_wlog_and_plog(env: Env) -> None:
    for n in range(3):
        last = await cud(env, {"sys.QName": "service.Location", "Name": f"L{n}", "TimeZone": "UTC"})
    top = last["currentWLogOffset"]
    wlog = await rows(env, "select * from sys.wlog limit -1")
    assert [e["WlogOffset"] for e in wlog] == list(range(1, top + 1))
    assert wlog[-1]["QName"] == "sys.CUD" and wlog[-1]["CUDs"][0]["fields"]["Name"] == "L2"
    assert set(wlog[-1]) == {
        "WlogOffset",
        "QName",
        "ArgumentObject",
        "CUDs",
        "RegisteredAt",
        "Synced",
        "DeviceID",
        "SyncedAt",
    }
    assert await rows(env, f"select WlogOffset from sys.wlog where offset = {top}") == [{"WlogOffset": top}]
    assert await rows(env, f"select WlogOffset from sys.wlog where offset > {top - 2}") == [
        {"WlogOffset": top - 1},
        {"WlogOffset": top},
    ]
    assert await rows(env, f"select WlogOffset from sys.wlog.{top - 1} limit 1") == [{"WlogOffset": top - 1}]
    assert await rows(env, "select WlogOffset from sys.wlog limit 2") == [{"WlogOffset": 1}, {"WlogOffset": 2}]
    assert await rows(env, "select WlogOffset from sys.wlog where offset = 100000") == []

    plog = await rows(env, "select Workspace, PlogOffset, WLogOffset, CUDs from sys.plog limit -1")
    mine = [e for e in plog if e["Workspace"] == env.ws]
    assert [e["WLogOffset"] for e in mine] == list(range(1, top + 1))
    assert mine[-1]["CUDs"][0]["fields"]["Name"] == "L2"
    offsets = [e["PlogOffset"] for e in plog]
    assert offsets == list(range(1, len(plog) + 1))
    assert len(await rows(env, "select PlogOffset from sys.plog")) == min(len(plog), 100)

    for query, message in [
        ("select * from sys.plog limit 7.1", 'strconv.ParseInt: parsing "7.1": invalid syntax'),
        ("select * from sys.plog limit -3", "limit must be greater than -2"),
        ("select * from sys.plog where Offset >= 2.1", 'strconv.ParseUint: parsing "2.1": invalid syntax'),
        ("select * from sys.plog where Offset >= 0", "offset must be greater than zero"),
        ("select * from sys.plog where Offset < 2", "unsupported operation: <"),
        ("select * from sys.plog where something >= 1", "unsupported column name: something"),
        ("select * from sys.wlog where Offset >= 1 and something >= 5", "unsupported expression: *sqlparser.AndExpr"),
        ("select * from sys.wlog limit sin(5)", "unsupported limit value expression: *sqlparser.FuncExpr"),
        ("select * from sys.plog where 5 = 1", "unsupported column reference expression: *sqlparser.SQLVal"),
        ("select * from sys.plog where Offset >= sin(5)", "unsupported offset value expression: *sqlparser.FuncExpr"),
        ("select abracadabra from sys.wlog", "field 'abracadabra' not found in def"),
        ("select * from sys.wlog.2 where offset = 1", "both .Offset and 'where offset ...' clause can not be provided"),
    ]:
        await expect_400(env, query, message)


async def test_other_workspaces_and_rights(env: Env) -> None:
    answer = await cud(env, {"sys.QName": "service.Location", "Name": "Centre", "TimeZone": "UTC"})
    centre = answer["newIDs"]["1"]
    # From the owner's profile, read the restaurant by its WSID: run there as the same caller.
    profile_rows = await rows(env, f"select * from {env.ws}.service.Location.{centre}", wsid=await _profile(env))
    assert profile_rows[0]["Name"] == "Centre"
    assert (
        await rows(env, f"select WlogOffset from {env.ws}.sys.wlog where offset = 1", wsid=await _profile(env))
    ) == [{"WlogOffset": 1}]
    # An application workspace by number, and a login's application workspace: the owner has no rights there.
    r = await sql(env, "select * from a0.sys.wlog")
    assert r.status_code == 403, r.text
    r = await sql(env, 'select * from "owner@example.com".sys.wlog')
    assert r.status_code == 403, r.text
    # A workspace that does not exist (not initialised).
    r = await sql(env, f"select * from {env.ws + 1000}.sys.wlog")
    assert r.status_code == 403, r.text
    # Another application, as the same caller: the owner has no rights in the registry ...
    r = await sql(env, 'select * from sys.registry."owner@example.com".sys.wlog')
    assert r.status_code == 403, r.text
    r = await sql(env, "select * from nobody.here.a0.sys.wlog")
    assert r.status_code == 400, r.text
    # ... the System has: the registry's workspace of the login holds its CreateLogin.
    assert env.vvm.tokens is not None
    system = {"Authorization": f"Bearer {env.vvm.tokens.issue_system('untill/restaurant')}"}
    r = await sql(env, 'select QName, CUDs from sys.registry."owner@example.com".sys.wlog', auth=system)
    assert r.status_code == 200, r.text
    events = [json.loads(e[0][0][0]) for e in r.json()["sections"][0]["elements"]]
    created = [e for e in events if e["QName"] == "registry.CreateLogin"]
    assert created and created[0]["CUDs"][0]["sys.QName"] == "registry.Login"
    login_id = created[0]["CUDs"][0]["sys.ID"]
    r = await sql(env, f'select AppName from sys.registry."owner@example.com".registry.Login.{login_id}', auth=system)
    assert r.status_code == 200, r.text
    assert json.loads(r.json()["sections"][0]["elements"][0][0][0][0]) == {"AppName": "untill/restaurant"}
    # Somebody who is not the owner may not run it at all.
    other, _ = await sign_up_and_in(env.client, "zed@example.com", "zed-pa55word")
    r = await sql(env, "select * from sys.wlog", auth=other)
    assert r.status_code == 403, r.text


async def _profile(env: Env) -> int:
    r = await env.client.post(
        "/api/v2/apps/untill/restaurant/auth/login", json={"login": "owner@example.com", "password": "pa55word!"}
    )
    return int(r.json()["profileWSID"])


def test_parse_prefixes() -> None:
    op = parse_query('select * from test1.app1."login".app1pkg.category.12 where x = 1')
    assert (op.app, op.ws_kind, op.ws_value, op.qname, op.entity_id) == (
        "test1/app1",
        WorkspaceKind.PSEUDO,
        "login",
        "app1pkg.category",
        12,
    )
    assert op.without_app_and_ws == "select * from app1pkg.category.12 where x = 1"
    assert op.clean_sql == "select * from app1pkg.category where x = 1"
    op = parse_query("select * from a3.sys.wlog")
    assert (op.ws_kind, op.ws_value, op.qname) == (WorkspaceKind.APP_WS_NUM, 3, "sys.wlog")
    op = parse_query("select * from 140737488486400.sys.plog limit -1")
    assert (op.ws_kind, op.ws_value, op.clean_sql) == (
        WorkspaceKind.WSID,
        140737488486400,
        "select * from sys.plog limit -1",
    )
    with pytest.raises(SysError, match="must not be 0"):
        parse_query("select * from sys.wlog.0")
    sel = parse_select("select a, b.c from x.Y where (k = 'it''s') and n = -5 limit 3")
    assert sel.exprs == [ColName("a"), ColName("c", "b")]
    assert (sel.table_qualifier, sel.table_name, sel.limit) == ("x", "Y", SQLVal("3"))
    assert sel.where == AndExpr(
        ParenExpr(ComparisonExpr("=", ColName("k"), SQLVal("it's", is_str=True))),
        ComparisonExpr("=", ColName("n"), SQLVal("-5")),
    )
    with pytest.raises(SysError, match="out of range"):
        parse_query("select * from 18446744073709551616.sys.wlog")


async def test_describe_packages(env: Env) -> None:
    profile = await _profile(env)
    url = f"{V1}/{profile}"
    r = await env.client.post(
        f"{url}/q.sys.DescribePackageNames", json={"elements": [{"fields": ["Names"]}]}, headers=env.owner
    )
    assert r.status_code == 200, r.text
    assert r.json()["sections"][0]["elements"][0][0][0][0].split(",") == [
        "menu",
        "restaurant",
        "sales",
        "service",
        "staff",
    ]

    body = {"args": {"PackageName": "staff"}, "elements": [{"fields": ["PackageDesc"]}]}
    r = await env.client.post(f"{url}/q.sys.DescribePackage", json=body, headers=env.owner)
    assert r.status_code == 200, r.text
    desc = json.loads(r.json()["sections"][0]["elements"][0][0][0][0])
    staff = desc["Workspaces"]["staff.Staff"]
    assert sorted(staff["Roles"]) == ["staff.Manager", "staff.Owner", "staff.Waiter"]
    assert staff["Roles"]["staff.Waiter"]["Published"] is True and "Published" not in staff["Roles"]["staff.Owner"]
    assert staff["Roles"]["staff.Waiter"]["Comment"].startswith("Waiters take orders")
    employee = staff["Structures"]["staff.Employee"]
    assert employee["Kind"] == "CDoc" and employee["UniqueField"] == "Login"
    fields = {f["Name"]: f for f in employee["Fields"]}
    assert fields["sys.ID"] == {"Name": "sys.ID", "Data": "sys.RecordID", "Required": True}
    assert fields["Name"]["DataType"] == {"Ancestor": "sys.string", "Constraints": {"MaxLen": 100}}
    assert fields["Email"]["Verifiable"] is True
    assert fields["Role"] == {"Name": "Role", "Data": "sys.QName", "Required": True}

    body = {"args": {"PackageName": "nothing"}, "elements": [{"fields": ["PackageDesc"]}]}
    r = await env.client.post(f"{url}/q.sys.DescribePackage", json=body, headers=env.owner)
    assert r.status_code == 200 and r.json()["sections"][0]["elements"][0][0][0][0] == "null", r.text
    # Only the profile's owner describes the application there.
    r = await env.client.post(f"{V1}/{env.ws}/q.sys.DescribePackageNames", json={}, headers=env.owner)
    assert r.status_code in (400, 403), r.text


async def test_blob_functions(env: Env) -> None:
    async def upload(name: str, content_type: str, data: bytes) -> int:
        r = await env.client.post(
            f"{env.ws_url}/docs/staff.Employee/blobs/Photo",
            content=data,
            headers={**env.owner, "Blob-Name": name, "Content-Type": content_type},
        )
        assert r.status_code == 201, r.text
        return int(r.json()["blobID"])

    binary = bytes([1, 2, 3, 4, 5])
    text = ("0123456789" * 1600).encode()
    employees = []
    for n, blob in enumerate(
        [await upload("photo", "application/x-binary", binary), await upload("cv", "text/plain", text)]
    ):
        answer = await cud(
            env,
            {"sys.QName": "staff.Employee", "Name": f"E{n}", "Login": f"e{n}", "Role": "staff.Waiter", "Photo": blob},
        )
        employees.append(answer["newIDs"]["1"])
    photo, cv = employees

    [row] = await rows(env, f"select blobinfo(Photo) from staff.Employee.{photo}")
    assert row == {"blobinfo(Photo)": {"name": "photo", "mimetype": "application/x-binary", "size": 5}}
    [row] = await rows(env, f"select blobinfo(photo), blobtext(Photo), Name from staff.Employee.{photo}")
    assert row["blobtext(Photo)"] == base64.b64encode(binary).decode() and row["Name"] == "E0"
    assert row["blobinfo(Photo)"]["size"] == 5
    [row] = await rows(env, f"select blobtext(Photo, 2) from staff.Employee.{photo}")
    assert row == {"blobtext(Photo)": base64.b64encode(binary[2:]).decode()}
    [row] = await rows(env, f"select blobtext(Photo, 5000) from staff.Employee.{cv}")
    assert row == {"blobtext(Photo)": text[5000:15000].decode()}

    for query, message in [
        ("select blobinfo(Photo) from staff.Employee", "blob functions require a document ID or a singleton"),
        (
            "select blobinfo(Photo) from staff.Employee where Photo = 123",
            "WHERE clause is not allowed with blobinfo/blobtext functions",
        ),
        ("select blobinfo() from staff.Employee.123", "blobinfo requires at least one argument (field name)"),
        ("select blobtext() from staff.Employee.123", "blobtext requires at least one argument (field name)"),
        ("select blobinfo(123) from staff.Employee.123", "blobinfo: first argument must be a field name"),
        ("select blobinfo(Photo, 123) from staff.Employee.123", "blobinfo does not accept a second argument"),
        ("select blobtext(Photo, 123, 456) from staff.Employee.123", "blobtext accepts at most 2 arguments"),
        (
            "select blobtext(Photo, 123.456) from staff.Employee.123",
            "blobtext: second argument (startFrom) must be an integer",
        ),
        ("select blobtext(Photo, -1) from staff.Employee.123", "blobtext: invalid startFrom value"),
        (
            "select blobtext(Photo, 9999999999999999999999999999) from staff.Employee.123",
            "blobtext: invalid startFrom value",
        ),
        ("select unknownfunc(Photo) from staff.Employee.123", "unsupported function: unknownfunc"),
        (
            "select blobinfo(Photo), blobinfo(Photo) from staff.Employee.123",
            'field "blobinfo(Photo)" is selected more than once',
        ),
        ("select blobinfo(Photo) from sys.CollectionView where PartKey = 1", "WHERE clause is not allowed"),
    ]:
        await expect_400(env, query, message)
    r = await sql(env, "select blobinfo(Photo) from staff.Employee.123456")
    assert r.status_code == 400 and "not found" in r.text, r.text
