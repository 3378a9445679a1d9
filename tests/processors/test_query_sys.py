"""The sys package's queries: Echo, GRCount, Modules, Collection, GetCDoc, State, Journal and
QueryChildWorkspaceByName, with the shapes Voedger answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from tests.processors.conftest import USER, WS, Shop, menu_document
from voedger.appdef import QName
from voedger.apps.sys.queries import wlog_dates
from voedger.processors.query import ApiPath, QueryProcessor, QueryRequest
from voedger.state import Intents, State
from voedger.state.access import Access
from voedger.structs.logs import read_wlog
from voedger.structs.pending import Pending
from voedger.structs.views import put_row
from voedger.syserror import SysError


async def row(shop: Shop, name: str, args: dict[str, Any], fields: list[str]) -> list[Any]:
    """The only row of a v1 query's only object."""
    body = {"args": args, "elements": [{"fields": fields}]}
    got = await QueryProcessor(shop.runtime).execute_v1(QueryRequest(WS, QName.parse(name), USER, body))
    elements = got["sections"][0]["elements"]
    assert len(elements) == 1
    result: list[Any] = elements[0][0][0]
    return result


async def all_rows(shop: Shop, name: str, args: dict[str, Any], fields: list[str]) -> list[list[Any]]:
    body = {"args": args, "elements": [{"fields": fields}]}
    got = await QueryProcessor(shop.runtime).execute_v1(QueryRequest(WS, QName.parse(name), USER, body))
    return [obj[0][0] for obj in got.get("sections", [{"elements": []}])[0]["elements"]]


async def fails(shop: Shop, name: str, args: dict[str, Any]) -> SysError:
    with pytest.raises(SysError) as e:
        await row(shop, name, args, [])
    return e.value


@pytest.fixture
async def ws(shop: Shop) -> Shop:
    await shop.create_ws(WS)
    return shop


async def test_echo_grcount_modules(ws: Shop) -> None:
    assert await row(ws, "sys.Echo", {"Text": "Hello"}, ["Res"]) == ["Hello"]
    (count,) = await row(ws, "sys.GRCount", {}, ["NumGoroutines"])
    assert isinstance(count, int) and count >= 1
    (modules,) = await row(ws, "sys.Modules", {}, ["Modules"])
    assert "path: orjson version: " in modules and modules.endswith("\n")
    req = QueryRequest(WS, QName.parse("sys.Modules"), USER, api_v2=True, path=ApiPath.QUERIES)
    assert list((await QueryProcessor(ws.runtime).execute(req))["results"][0]) == ["Modules"]


async def test_collection_of_one_document(ws: Shop) -> None:
    ids = await menu_document(ws)
    await ws.cmd(WS, "sys.CUD", {"cuds": [{"sys.ID": ids["2"], "fields": {"Title": "night"}}]})
    body = {
        "args": {"Schema": "shop.Menu", "ID": ids["2"]},
        "elements": [
            {"fields": ["sys.ID", "Title", "sys.IsActive"]},
            {"path": "Sections/Lines", "fields": ["Item"]},
        ],
    }
    req = QueryRequest(WS, QName.parse("sys.Collection"), USER, body)
    got = await QueryProcessor(ws.runtime).execute_v1(req)
    assert got == {"sections": [{"type": "", "elements": [[[[ids["2"], "night", True]], [[ids["1"]]]]]}]}


async def test_get_cdoc(ws: Shop) -> None:
    ids = await menu_document(ws)
    (text,) = await row(ws, "sys.GetCDoc", {"ID": ids["2"]}, ["Result"])
    tea = {"Name": "tea", "Price": 5, "sys.ID": ids["1"], "sys.IsActive": True}
    assert orjson.loads(text) == {
        "Title": "day",
        "Special": ids["1"],
        "sys.ID": ids["2"],
        "sys.IsActive": True,
        "Sections": [
            {
                "sys.ID": ids["3"],
                "sys.IsActive": True,
                "Lines": [{"Item": ids["1"], "sys.ID": ids["4"], "sys.IsActive": True}],
            }
        ],
        "xrefs": {"shop.Item": {str(ids["1"]): tea}},
    }
    (text,) = await row(ws, "sys.GetCDoc", {"ID": ids["1"]}, ["Result"])
    assert "xrefs" not in orjson.loads(text)
    for missing in (ids["3"], 999_999):  # a record, not a document; nothing at all
        e = await fails(ws, "sys.GetCDoc", {"ID": missing})
        assert (e.status, e.message) == (404, "Document not found")


async def test_state(ws: Shop) -> None:
    ids = await menu_document(ws)
    state, offset = await row(ws, "sys.State", {"After": 1}, ["State", "MaxRelevantOffset"])
    assert offset == 2
    data = orjson.loads(state)
    assert sorted(data) == ["shop.Item", "shop.Menu", "shop.MenuLine", "shop.MenuSection"]
    assert data["shop.Item"][str(ids["1"])] == {
        "Name": "tea",
        "Price": 5,
        "Code": "",
        "sys.ID": ids["1"],
        "sys.IsActive": True,
    }
    assert data["shop.MenuLine"][str(ids["4"])]["sys.ParentID"] == ids["3"]
    assert await row(ws, "sys.State", {"After": 2}, ["State", "MaxRelevantOffset"]) == ["{}", 0]


async def test_journal_by_offsets(ws: Shop) -> None:
    ids = await menu_document(ws)
    got = await all_rows(
        ws,
        "sys.Journal",
        {"From": 2, "Till": 9, "EventTypes": "all", "RangeUnit": "Offset"},
        ["Offset", "EventTime", "Event"],
    )
    assert len(got) == 1
    offset, when, text = got[0]
    event = orjson.loads(text)
    assert offset == 2 and when == event["RegisteredAt"]
    assert {k: v for k, v in event.items() if k != "cuds"} == {
        "sys.QName": "sys.CUD",
        "RegisteredAt": when,
        "Synced": False,
        "DeviceID": 0,
        "SyncedAt": 0,
        "args": {},
    }
    assert event["cuds"][0] == {
        "sys.ID": ids["1"],
        "sys.QName": "shop.Item",
        "IsNew": True,
        "fields": {
            "Name": "tea",
            "Price": 5,
            "sys.ID": ids["1"],
            "sys.IsActive": True,
            "sys.QName": "shop.Item",
        },
    }
    everything = await all_rows(
        ws, "sys.Journal", {"From": 1, "Till": 2, "EventTypes": "all", "RangeUnit": "Offset"}, ["Offset"]
    )
    assert everything == [[1], [2]]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ({"From": 0, "Till": 1}, "'from' offset must be positive"),
        ({"From": 3, "Till": 1}, "'from' offset must be lower or equal to 'till' offset"),
        ({"From": 1, "Till": 0}, "'till' offset must be positive"),
        ({"From": 1, "Till": 1, "EventTypes": "nope"}, "invalid event type: nope"),
        ({"From": 1, "Till": 1, "RangeUnit": "Parsec"}, "argument type not supported"),
        ({"From": 1, "Till": 1, "RangeUnit": "", "IndexForTimestamps": "x.Y"}, "index not supported"),
    ],
)
async def test_journal_errors(ws: Shop, args: dict[str, Any], text: str) -> None:
    args = {"EventTypes": "all", "RangeUnit": "Offset", **args}
    e = await fails(ws, "sys.Journal", args)
    assert e.status == 400 and text in e.message, e


async def test_journal_by_days(ws: Shop) -> None:
    """sys.ProjectorWLogDates (run here by hand, as an actualizer would) indexes the WLog by day."""
    await menu_document(ws)
    app = ws.runtime.appdef
    access = Access.of(app, app.projector("sys.ProjectorWLogDates"), unrestricted=True)
    async for event in read_wlog(ws.storage, WS):
        writes = Pending(ws.storage)
        state = State(access, writes, WS, event=event)
        intents = Intents(access)
        await wlog_dates(state, intents)
        for view, values in intents.view_rows:
            put_row(writes, app.view(view), WS, values)
        await ws.storage.put_batch(writes.items())
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    got = await all_rows(ws, "sys.Journal", {"From": now, "Till": now, "EventTypes": "all"}, ["Offset"])
    assert got == [[1], [2]]
    long_ago = now - 3 * 366 * 86_400_000
    args = {"From": long_ago, "Till": long_ago, "EventTypes": "all"}
    assert await all_rows(ws, "sys.Journal", args, ["Offset"]) == []


async def test_query_child_workspace_by_name(ws: Shop) -> None:
    e = await fails(ws, "sys.QueryChildWorkspaceByName", {"WSName": "kid"})
    assert (e.status, e.message) == (404, "child workspace kid not found")
    child = {
        "sys.ID": 1,
        "sys.QName": "sys.ChildWorkspace",
        "WSName": "kid",
        "WSKind": "shop.ShopDesc",
        "WSClusterID": 1,
    }
    await ws.cmd(WS, "sys.CUD", {"cuds": [{"fields": {**child, "TemplateName": "t", "WSID": 42}}]})
    fields = [
        "WSName",
        "WSKind",
        "WSKindInitializationData",
        "TemplateName",
        "TemplateParams",
        "WSID",
        "WSError",
    ]
    assert await row(ws, "sys.QueryChildWorkspaceByName", {"WSName": "kid"}, fields) == [
        "kid",
        "shop.ShopDesc",
        "",
        "t",
        "",
        42,
        "",
    ]
