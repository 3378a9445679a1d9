"""The query processor through API v2: queries, views, docs and cdocs with where, order, skip,
limit, include and keys, and their errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from tests.processors.conftest import USER, WS, Shop, menu_document
from voedger.appdef import OperationKind, QName, Workspace
from voedger.processors.cuds import document_cuds
from voedger.processors.principal import Principal
from voedger.processors.query import ApiPath, QueryProcessor, QueryRequest
from voedger.syserror import SysError


async def q2(shop: Shop, path: ApiPath, name: str, doc_id: int = 0, **params: Any) -> dict[str, Any]:
    text = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in params.items()}
    req = QueryRequest(WS, QName.parse(name), USER, params=text, api_v2=True, path=path, doc_id=doc_id)
    return await QueryProcessor(shop.runtime).execute(req)


async def fails(shop: Shop, path: ApiPath, name: str, doc_id: int = 0, **params: Any) -> SysError:
    with pytest.raises(SysError) as e:
        await q2(shop, path, name, doc_id, **params)
    return e.value


async def new_item(shop: Shop, name: str) -> int:
    body = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": name}}]}
    return (await shop.cmd(WS, "sys.CUD", body)).new_ids["1"]


@pytest.fixture
async def ws(shop: Shop) -> Shop:
    await shop.create_ws(WS)
    return shop


async def visits(shop: Shop) -> dict[str, int]:
    dates = [(2024, 1, 1), (2025, 1, 1), (2025, 2, 1), (2025, 2, 3), (2023, 2, 3)]
    cuds = [
        {
            "fields": {
                "sys.ID": i + 1,
                "sys.QName": "shop.Visit",
                "Year": y,
                "Month": m,
                "Day": d,
                "Note": f"n{i}",
            }
        }
        for i, (y, m, d) in enumerate(dates)
    ]
    res = await shop.cmd(WS, "sys.CUD", {"cuds": cuds})
    return res.new_ids


# --- queries ---------------------------------------------------------------------------------


async def test_queries(ws: Shop) -> None:
    assert await q2(ws, ApiPath.QUERIES, "sys.Echo", args={"Text": "Hello world"}) == {
        "results": [{"Res": "Hello world"}]
    }
    got = await q2(ws, ApiPath.QUERIES, "shop.Items", args={"MinPrice": 2})
    assert got["results"][0] == {
        "Name": "apple",
        "Price": 3,
        "Item": 0,
        "Weight": 1.5,
        "Fresh": True,
        "Kind": "shop.Item",
    }
    got = await q2(
        ws,
        ApiPath.QUERIES,
        "shop.Items",
        where={"Price": {"$in": [1, 5]}},
        order="-Price,Name",
        keys="Name,Price",
    )
    assert got == {
        "results": [{"Name": "kiwi", "Price": 5}, {"Name": "pear", "Price": 5}, {"Name": "plum", "Price": 1}]
    }
    got = await q2(ws, ApiPath.QUERIES, "shop.Items", where={"Weight": {"$gte": 0.75, "$lt": 2}}, keys="Name")
    assert got == {"results": [{"Name": "apple"}, {"Name": "kiwi"}]}
    got = await q2(ws, ApiPath.QUERIES, "shop.Items", order="Name", skip="1", limit="2", keys="Name")
    assert got == {"results": [{"Name": "kiwi"}, {"Name": "pear"}]}
    assert await q2(ws, ApiPath.QUERIES, "shop.Nothing") == {"results": []}
    assert await q2(ws, ApiPath.QUERIES, "shop.RawEcho", args="hello raw world") == {
        "results": [{"Body": "raw:hello raw world"}]
    }
    got = await q2(ws, ApiPath.QUERIES, "shop.Anything", where={"A": {"$ne": 1}})
    assert got == {"results": [{"A": 2, "B": "y"}]}


async def test_query_include_follows_references(ws: Shop) -> None:
    item = await new_item(ws, "tea")
    where = {"Name": "plum"}
    got = await q2(ws, ApiPath.QUERIES, "shop.Items", args={"Ref": item}, where=where, include="Item")
    assert got["results"][0]["Item"] == {
        "sys.QName": "shop.Item",
        "sys.ID": item,
        "Name": "tea",
        "sys.IsActive": True,
    }


@pytest.mark.parametrize(
    ("name", "params", "text"),
    [
        ("sys.Echo", {"args": "{bad"}, "invalid 'args' parameter"),
        ("sys.Echo", {"args": "[1]"}, "invalid 'args' parameter"),
        ("sys.Echo", {"args": {"Text": "a", "unexpected": 1}}, "unexpected field(s): unexpected"),
        ("sys.GRCount", {"args": {"x": 1}}, "args are not expected"),
        ("shop.Nope", {}, "query shop.Nope does not exist in Workspace «shop.ShopWS»"),
        ("shop.Items", {"where": "{bad"}, "invalid 'where' parameter"),
        ("shop.Items", {"where": {"Nope": 1}}, "unexpected field: 'Nope'"),
        ("shop.Items", {"where": {"Price": {"$regex": 1}}}, "unsupported constraint: '$regex'"),
        ("shop.Items", {"where": {"Price": {"$in": 1}}}, "unexpected params"),
        ("shop.Items", {"where": {"Price": [1]}}, "unsupported type"),
        ("shop.Items", {"where": {"Price": "cheap"}}, "expected a number"),
        ("shop.Items", {"limit": "ten"}, "invalid 'limit' parameter"),
        ("shop.Items", {"skip": "-1"}, "invalid 'skip' parameter"),
        ("shop.Items", {"order": "-"}, "invalid 'order' parameter"),
        ("shop.Items", {"order": "Nope"}, "order: unexpected field: 'Nope'"),
        ("shop.Items", {"include": "Price"}, "field expression - 'Price', 'Price' - unexpected field"),
        ("shop.Items", {"include": "Item..Name"}, "invalid 'include' parameter"),
    ],
)
async def test_query_errors(ws: Shop, name: str, params: dict[str, Any], text: str) -> None:
    if name == "sys.Echo" and "args" not in params:
        params = {"args": {"Text": "a"}, **params}
    e = await fails(ws, ApiPath.QUERIES, name, **params)
    assert e.status == 400 and text in e.message, e
    teapot = await fails(ws, ApiPath.QUERIES, "shop.Teapot")
    assert (teapot.status, teapot.to_v2()) == (418, b'{"status":418,"message":"I\'m a teapot"}')


# --- views -----------------------------------------------------------------------------------


async def test_views(ws: Shop) -> None:
    ids = await visits(ws)

    def row(i: int, y: int, m: int, d: int) -> dict[str, Any]:
        visit = ids[str(i + 1)]
        return {
            "sys.QName": "shop.Visits",
            "Year": y,
            "Month": m,
            "Day": d,
            "Visit": visit,
            "Note": f"n{i}",
            "Guests": d * 10,
        }

    got = await q2(ws, ApiPath.VIEWS, "shop.Visits", where={"Year": 2025})
    assert got == {"results": [row(1, 2025, 1, 1), row(2, 2025, 2, 1), row(3, 2025, 2, 3)]}
    got = await q2(ws, ApiPath.VIEWS, "shop.Visits", where={"Year": {"$in": [2024, 2025]}, "Month": 1})
    assert got == {"results": [row(0, 2024, 1, 1), row(1, 2025, 1, 1)]}
    where: dict[str, Any] = {"Year": {"$in": [2023, 2025]}, "Day": 3}
    got = await q2(ws, ApiPath.VIEWS, "shop.Visits", where=where, order="-Year")
    assert got == {"results": [row(3, 2025, 2, 3), row(4, 2023, 2, 3)]}
    where = {"Year": 2025, "Guests": {"$gt": 10}}
    got = await q2(ws, ApiPath.VIEWS, "shop.Visits", where=where, keys="Month,Day")
    assert got == {"results": [{"Month": 2, "Day": 3}]}
    got = await q2(ws, ApiPath.VIEWS, "shop.Visits", where={"Year": 2024}, include="Visit", keys="Visit.Note")
    assert got == {"results": [{"Visit": {"Note": "n0"}}]}
    assert await q2(ws, ApiPath.VIEWS, "shop.Visits", where={"Year": 1999}) == {"results": []}


@pytest.mark.parametrize(
    ("name", "params", "status", "text"),
    [
        (
            "shop.Nope",
            {"where": {"Year": 1}},
            400,
            "view shop.Nope does not exist in Workspace «shop.ShopWS»",
        ),
        ("shop.Visits", {}, 400, "constraints are null"),
        ("shop.Visits", {"keys": "Year"}, 400, "where constraint is empty"),
        ("shop.Visits", {"where": {"Month": 1}}, 400, "where constraint must specify the partition key"),
        (
            "shop.Visits",
            {"where": {"Year": {"$gt": 1}}},
            400,
            "where constraint must specify the partition key",
        ),
        ("shop.Visits", {"where": {"Year": 1, "Nope": 2}}, 400, "unexpected field: 'Nope'"),
        ("shop.Visits", {"where": {"Year": "x"}}, 400, "expected a number of kind int32"),
        ("shop.Visits", {"where": {"Year": 2025}, "include": "Nope"}, 400, "unexpected field"),
    ],
)
async def test_view_errors(ws: Shop, name: str, params: dict[str, Any], status: int, text: str) -> None:
    await visits(ws)
    e = await fails(ws, ApiPath.VIEWS, name, **params)
    assert e.status == status and text in e.message, e


# --- docs and cdocs ----------------------------------------------------------------------------


async def test_docs(ws: Shop) -> None:
    ids = await menu_document(ws)
    item, doc, section, line = (ids[k] for k in "1234")
    tea = {"Name": "tea", "Price": 5, "sys.ID": item, "sys.IsActive": True, "sys.QName": "shop.Item"}
    assert await q2(ws, ApiPath.DOCS, "shop.Item", item) == tea
    got = await q2(ws, ApiPath.DOCS, "shop.Menu", doc, include="Special,Sections.Lines.Item")
    assert got == {
        "Title": "day",
        "Special": tea,
        "sys.ID": doc,
        "sys.IsActive": True,
        "sys.QName": "shop.Menu",
        "Sections": [
            {
                "sys.ID": section,
                "sys.IsActive": True,
                "sys.QName": "shop.MenuSection",
                "sys.ParentID": doc,
                "sys.Container": "Sections",
                "Lines": [
                    {
                        "Item": tea,
                        "sys.ID": line,
                        "sys.IsActive": True,
                        "sys.QName": "shop.MenuLine",
                        "sys.ParentID": section,
                        "sys.Container": "Lines",
                    }
                ],
            }
        ],
    }
    got = await q2(
        ws,
        ApiPath.DOCS,
        "shop.Menu",
        doc,
        include="Sections.Lines.Item",
        keys='Title,Sections.Lines.Item."sys.ID"',
    )
    assert got == {"Title": "day", "Sections": [{"Lines": [{"Item": {"sys.ID": item}}]}]}
    line_rec = await q2(ws, ApiPath.DOCS, "shop.MenuLine", line, keys="Item")
    assert line_rec == {"Item": item}


def rec(qname: str, rid: int, parent: int, container: str, **fields: Any) -> dict[str, Any]:
    """A new record of a container, as a CUD's fields."""
    return {"sys.ID": rid, "sys.QName": qname, "sys.ParentID": parent, "sys.Container": container, **fields}


async def test_wdoc_include_containers(ws: Shop) -> None:
    item = await new_item(ws, "tea")
    cuds = [
        {"fields": {"sys.ID": 1, "sys.QName": "shop.Tab", "Number": 7}},
        {"fields": rec("shop.TabLine", 2, 1, "Lines", Item=item, Qty=1)},
        {"fields": rec("shop.TabLine", 3, 1, "Lines", Qty=2)},
        {"fields": rec("shop.TabGuest", 4, 1, "Guests", Name="Ann")},
    ]
    ids = (await ws.cmd(WS, "sys.CUD", {"cuds": cuds})).new_ids
    tab, line1, line2, guest = (ids[k] for k in "1234")
    # a record added to a container later, by another event, is found too
    later = [{"fields": rec("shop.TabNote", 1, line2, "Notes", Text="no sugar")}]
    note = (await ws.cmd(WS, "sys.CUD", {"cuds": later})).new_ids["1"]

    def line(rid: int, **fields: Any) -> dict[str, Any]:
        sys = {"sys.QName": "shop.TabLine", "sys.ParentID": tab, "sys.Container": "Lines", "sys.IsActive": True}
        return {"sys.ID": rid, **sys, **fields}

    got = await q2(ws, ApiPath.DOCS, "shop.Tab", tab, include="Lines")
    assert got == {
        "sys.ID": tab,
        "sys.QName": "shop.Tab",
        "sys.IsActive": True,
        "Number": 7,
        "Lines": [line(line1, Item=item, Qty=1), line(line2, Qty=2)],
    }
    # without include, no containers
    assert "Lines" not in await q2(ws, ApiPath.DOCS, "shop.Tab", tab)
    # nested containers, references inside them, several paths, keys over the result
    got = await q2(
        ws,
        ApiPath.DOCS,
        "shop.Tab",
        tab,
        include="Lines.Item,Lines.Notes,Guests",
        keys='Number,Lines."sys.ID",Lines.Item.Name,Lines.Notes.Text,Guests.Name',
    )
    assert got == {
        "Number": 7,
        "Lines": [{"sys.ID": line1, "Item": {"Name": "tea"}}, {"sys.ID": line2, "Notes": [{"Text": "no sugar"}]}],
        "Guests": [{"Name": "Ann"}],
    }
    # a deactivated record stays in its container, as a CDoc's does
    off = {"cuds": [{"sys.ID": guest, "fields": {"sys.IsActive": False}}]}
    await ws.cmd(WS, "sys.CUD", off)
    got = await q2(ws, ApiPath.DOCS, "shop.Tab", tab, include="Guests", keys='Guests."sys.IsActive"')
    assert got == {"Guests": [{"sys.IsActive": False}]}
    # a WRecord read by itself includes its own containers
    got = await q2(ws, ApiPath.DOCS, "shop.TabLine", line2, include="Notes", keys='Qty,Notes."sys.ID"')
    assert got == {"Qty": 2, "Notes": [{"sys.ID": note}]}
    # an empty container stays out of the answer, as with CDocs
    empty = (await ws.cmd(WS, "sys.CUD", {"cuds": [cuds[0]]})).new_ids["1"]
    assert await q2(ws, ApiPath.DOCS, "shop.Tab", empty, include="Lines", keys="Number") == {"Number": 7}
    e = await fails(ws, ApiPath.DOCS, "shop.Tab", tab, include="Nope")
    assert (e.status, e.message) == (400, "field expression - 'Nope', 'Nope' - unexpected field")


async def test_document_body_with_records_nested_two_levels(ws: Shop) -> None:
    """An API v2 ``POST docs`` body (``document_cuds``): records in containers of records, every
    one created by the same event, raw IDs counted depth first in the order of the body."""
    body = {
        "Number": 3,
        "Lines": [{"Qty": 1, "Notes": [{"Text": "hot"}, {"Text": "no sugar"}]}, {"Qty": 2}],
        "Guests": [{"Name": "Ann"}],
    }
    tab = ws.runtime.appdef.structure(QName("shop", "Tab"))
    cuds = document_cuds(ws.runtime.appdef, tab, body)
    placed = [(c["fields"]["sys.ID"], c["fields"].get("sys.ParentID"), c["fields"].get("sys.Container")) for c in cuds]
    assert placed == [
        (1, None, None),
        (2, 1, "Lines"),
        (3, 2, "Notes"),
        (4, 2, "Notes"),
        (5, 1, "Lines"),
        (6, 1, "Guests"),
    ]
    ids = (await ws.cmd(WS, "sys.CUD", {"cuds": cuds})).new_ids
    assert sorted(ids) == ["1", "2", "3", "4", "5", "6"]
    keys = 'Number,Lines."sys.ID",Lines.Qty,Lines.Notes."sys.ParentID",Lines.Notes.Text,Guests.Name'
    got = await q2(ws, ApiPath.DOCS, "shop.Tab", ids["1"], include="Lines.Notes,Guests", keys=keys)
    assert got == {
        "Number": 3,
        "Lines": [
            {
                "sys.ID": ids["2"],
                "Qty": 1,
                "Notes": [{"sys.ParentID": ids["2"], "Text": "hot"}, {"sys.ParentID": ids["2"], "Text": "no sugar"}],
            },
            {"sys.ID": ids["5"], "Qty": 2},
        ],
        "Guests": [{"Name": "Ann"}],
    }
    bad = {"Number": 3, "Lines": [{"Qty": 1}, {"Notes": [{"Text": "x", "Colour": "red"}]}]}
    with pytest.raises(SysError) as e:
        document_cuds(ws.runtime.appdef, tab, bad)
    assert e.value.status == 400
    assert e.value.message == "Lines[1].Notes[0]: shop.TabNote has no field or container «Colour»"


async def test_cdoc_include_containers(ws: Shop) -> None:
    """The CDoc counterpart of test_wdoc_include_containers: children from sys.CollectionView."""
    ids = await menu_document(ws)
    doc, section, line = ids["2"], ids["3"], ids["4"]
    more = [{"fields": rec("shop.MenuSection", 1, doc, "Sections", Name="tea")}]
    section2 = (await ws.cmd(WS, "sys.CUD", {"cuds": more})).new_ids["1"]
    keys = 'Title,Sections."sys.ID",Sections.Lines."sys.ID"'
    got = await q2(ws, ApiPath.DOCS, "shop.Menu", doc, include="Sections.Lines", keys=keys)
    assert got == {"Title": "day", "Sections": [{"sys.ID": section, "Lines": [{"sys.ID": line}]}, {"sys.ID": section2}]}


async def test_odocs(ws: Shop) -> None:
    receipt = (await ws.cmd(WS, "shop.Pay", {"args": {"sys.ID": 1, "Total": 42}})).new_ids["1"]
    assert await q2(ws, ApiPath.DOCS, "shop.Receipt", receipt) == {
        "sys.QName": "shop.Receipt",
        "sys.ID": receipt,
        "Total": 42,
    }
    assert await q2(ws, ApiPath.DOCS, "shop.Receipt", receipt, keys="Total") == {"Total": 42}


async def test_orecords(ws: Shop) -> None:
    item = await new_item(ws, "t")
    args = {"sys.ID": 1, "Total": 42, "Lines": [{"sys.ID": 2, "Item": item, "Qty": 3}]}
    ids = (await ws.cmd(WS, "shop.Pay", {"args": args})).new_ids
    receipt, line = ids["1"], ids["2"]
    assert await q2(ws, ApiPath.DOCS, "shop.Receipt", receipt) == {
        "sys.QName": "shop.Receipt",
        "sys.ID": receipt,
        "Total": 42,
    }
    assert await q2(ws, ApiPath.DOCS, "shop.ReceiptLine", line) == {
        "sys.QName": "shop.ReceiptLine",
        "sys.ID": line,
        "sys.ParentID": receipt,
        "sys.Container": "Lines",
        "Item": item,
        "Qty": 3,
    }
    keys = "Total,Lines.Item.Name"
    got = await q2(ws, ApiPath.DOCS, "shop.Receipt", receipt, include="Lines.Item", keys=keys)
    assert got == {"Total": 42, "Lines": [{"Item": {"Name": "t"}}]}


async def test_singletons(ws: Shop) -> None:
    e = await fails(ws, ApiPath.DOCS, "shop.Settings")
    assert (e.status, e.message) == (404, "singleton shop.Settings not found")
    settings = {"sys.ID": 1, "sys.QName": "shop.Settings", "Theme": "dark"}
    await ws.cmd(WS, "sys.CUD", {"cuds": [{"fields": settings}]})
    got = await q2(ws, ApiPath.DOCS, "shop.Settings", keys="Theme")
    assert got == {"Theme": "dark"}
    e = await fails(ws, ApiPath.DOCS, "shop.Settings", 5)
    assert (e.status, e.message) == (400, "document shop.Settings is singleton. DocID must be 0")


async def test_doc_errors(ws: Shop) -> None:
    item = await new_item(ws, "t")
    e = await fails(ws, ApiPath.DOCS, "shop.Item", 123)
    assert (e.status, e.message) == (404, "document shop.Item with ID 123 not found")
    e = await fails(ws, ApiPath.DOCS, "shop.Menu", item)  # the ID of another table's record
    assert (e.status, e.message) == (404, f"document shop.Menu with ID {item} not found")
    e = await fails(ws, ApiPath.DOCS, "shop.MenuLine", item)
    assert (e.status, e.message) == (404, f"record shop.MenuLine with ID {item} not found")
    e = await fails(ws, ApiPath.DOCS, "shop.Receipt", item)
    assert e.status == 404
    e = await fails(ws, ApiPath.DOCS, "shop.ItemRow", 1)
    assert (e.status, e.message) == (
        400,
        "document or record shop.ItemRow is not defined in Workspace «shop.ShopWS»",
    )
    e = await fails(ws, ApiPath.DOCS, "shop.Item", item, include="Level0")
    assert (e.status, e.message) == (400, "field expression - 'Level0', 'Level0' - unexpected field")


async def test_cdocs(ws: Shop) -> None:
    prices = [5, 3, 8, 1, 5]
    cuds = [
        {"fields": {"sys.ID": i + 1, "sys.QName": "shop.Item", "Name": f"i{i}", "Price": p}}
        for i, p in enumerate(prices)
    ]
    ids = (await ws.cmd(WS, "sys.CUD", {"cuds": cuds})).new_ids
    got = await q2(ws, ApiPath.CDOCS, "shop.Item")
    assert got["results"][0] == {
        "Name": "i0",
        "Price": 5,
        "sys.ID": ids["1"],
        "sys.IsActive": True,
        "sys.QName": "shop.Item",
    }
    keys = 'Name,"sys.ID"'
    got = await q2(ws, ApiPath.CDOCS, "shop.Item", keys=keys, order="-Price,Name", skip="1", limit="3")
    assert got == {
        "results": [
            {"Name": "i0", "sys.ID": ids["1"]},
            {"Name": "i4", "sys.ID": ids["5"]},
            {"Name": "i1", "sys.ID": ids["2"]},
        ]
    }
    got = await q2(ws, ApiPath.CDOCS, "shop.Item", where={"Price": {"$lte": 3}}, keys="Name", order="Name")
    assert got == {"results": [{"Name": "i1"}, {"Name": "i3"}]}
    menu = [
        {"fields": {"sys.ID": 1, "sys.QName": "shop.Menu", "Title": "m"}},
        {
            "fields": {
                "sys.ID": 2,
                "sys.QName": "shop.MenuSection",
                "sys.ParentID": 1,
                "sys.Container": "Sections",
                "Name": "s",
            }
        },
    ]
    await ws.cmd(WS, "sys.CUD", {"cuds": menu})
    got = await q2(ws, ApiPath.CDOCS, "shop.Menu", include="Sections", keys="Title,Sections.Name")
    assert got == {"results": [{"Title": "m", "Sections": [{"Name": "s"}]}]}
    e = await fails(ws, ApiPath.CDOCS, "shop.MenuSection")
    assert (e.status, e.message) == (
        400,
        "document or record shop.MenuSection is not defined in Workspace «shop.ShopWS»",
    )


class Deny:
    def __init__(self, op: OperationKind) -> None:
        self.op = op
        self.fields: list[tuple[str, ...]] = []

    def allowed(
        self,
        ws: Workspace,
        principal: Principal,
        op: OperationKind,
        resource: QName,
        fields: Sequence[str] = (),
    ) -> bool:
        self.fields.append(tuple(fields))
        return op is not self.op


async def test_authorization(ws: Shop) -> None:
    await visits(ws)
    deny = Deny(OperationKind.Select)
    processor = QueryProcessor(dataclasses.replace(ws.runtime, authorizer=deny))
    for path, name, params in [
        (ApiPath.VIEWS, "shop.Visits", {"where": '{"Year":2025}', "keys": "Year,Visit.Note"}),
        (ApiPath.CDOCS, "shop.Item", {}),
        (ApiPath.DOCS, "shop.Item", {}),
    ]:
        with pytest.raises(SysError) as e:
            req = QueryRequest(WS, QName.parse(name), USER, params=params, api_v2=True, path=path)
            await processor.execute_v2(req)
        assert e.value.status == 403
        assert e.value.message == f"select of {name} is forbidden in workspace shop.ShopWS"
    assert deny.fields[0] == ("Year", "Visit")
    assert "Name" in deny.fields[1] and "sys.ID" in deny.fields[1]
    processor = QueryProcessor(dataclasses.replace(ws.runtime, authorizer=Deny(OperationKind.Execute)))
    with pytest.raises(SysError) as e:
        await processor.execute_v2(QueryRequest(WS, QName.parse("sys.GRCount"), USER, api_v2=True))
    assert e.value.status == 403
