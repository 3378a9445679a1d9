"""The query processor through API v1: the pipeline's checks, the sections shape and the rows
processor (fields, refs, nested elements, filters, orderBy, startFrom and count)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from tests.processors.conftest import USER, WS, Shop
from voedger.appdef import OperationKind, QName, Workspace
from voedger.processors.principal import SYSTEM, Principal
from voedger.processors.query import QueryProcessor, QueryRequest
from voedger.syserror import SysError


async def q1(shop: Shop, name: str, body: Any, principal: Principal = USER, wsid: int = WS) -> dict[str, Any]:
    req = QueryRequest(wsid, QName.parse(name), principal, body)
    return await QueryProcessor(shop.runtime).execute_v1(req)


async def fails(shop: Shop, name: str, body: Any, principal: Principal = USER) -> SysError:
    with pytest.raises(SysError) as e:
        await q1(shop, name, body, principal)
    return e.value


def rows(answer: dict[str, Any]) -> list[Any]:
    """The answered objects; ``{}`` (no sections) when there are none, as Voedger answers."""
    if not answer:
        return []
    assert answer["sections"][0]["type"] == ""
    elements: list[Any] = answer["sections"][0]["elements"]
    return elements


async def items(shop: Shop, *prices: int) -> list[int]:
    cuds = [
        {"fields": {"sys.ID": i + 1, "sys.QName": "shop.Item", "Name": f"item{i}", "Price": p}}
        for i, p in enumerate(prices)
    ]
    res = await shop.cmd(WS, "sys.CUD", {"cuds": cuds})
    return [res.new_ids[str(i + 1)] for i in range(len(prices))]


async def menu(shop: Shop) -> dict[str, int]:
    """A menu with two sections of lines, referencing two items; returns the IDs by raw ID."""
    cuds: list[dict[str, Any]] = [
        {"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea", "Price": 5}},
        {"fields": {"sys.ID": 2, "sys.QName": "shop.Item", "Name": "cake", "Price": 9}},
        {"fields": {"sys.ID": 3, "sys.QName": "shop.Menu", "Title": "day", "Special": 2}},
        {
            "fields": {
                "sys.ID": 4,
                "sys.QName": "shop.MenuSection",
                "sys.ParentID": 3,
                "sys.Container": "Sections",
            }
        },
        {
            "fields": {
                "sys.ID": 5,
                "sys.QName": "shop.MenuSection",
                "sys.ParentID": 3,
                "sys.Container": "Sections",
            }
        },
    ]
    cuds[3]["fields"]["Name"] = "drinks"
    cuds[4]["fields"]["Name"] = "sweets"
    for raw, parent, item, price in ((6, 4, 1, 7), (7, 5, 2, 11), (8, 5, 1, 3)):
        line = {"sys.ID": raw, "sys.QName": "shop.MenuLine", "sys.ParentID": parent, "sys.Container": "Lines"}
        cuds.append({"fields": {**line, "Item": item, "Price": price}})
    res = await shop.cmd(WS, "sys.CUD", {"cuds": cuds})
    return {k: v for k, v in res.new_ids.items()}


@pytest.fixture
async def ws(shop: Shop) -> Shop:
    await shop.create_ws(WS)
    return shop


async def test_echo_answers_sections(ws: Shop) -> None:
    body = b'{"args":{"Text":"world"},"elements":[{"fields":["Res"]}]}'
    assert await q1(ws, "sys.Echo", body) == {"sections": [{"type": "", "elements": [[[["world"]]]]}]}
    # without elements every object is an empty row; an empty body is an empty object
    assert rows(await q1(ws, "sys.Echo", {"args": {"Text": "x"}})) == [[]]
    assert await q1(ws, "shop.Nothing", b"") == {}


async def test_reads_beyond_the_limit_are_refused_with_503(ws: Shop) -> None:
    qp = QueryProcessor(ws.runtime, max_running=2)
    body = {"args": {"Text": "x"}}
    answers = await asyncio.gather(
        *(qp.execute(QueryRequest(WS, QName.parse("sys.Echo"), USER, body)) for _ in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(a, dict) for a in answers)  # these never overlapped: none refused
    qp.running = 2  # two reads in flight
    with pytest.raises(SysError) as e:
        await qp.execute(QueryRequest(WS, QName.parse("sys.Echo"), USER, body))
    assert e.value.status == 503 and e.value.message == "no query processors v1 available"
    assert e.value.headers == {"Retry-After": "1"}
    with pytest.raises(SysError) as e:
        await qp.execute(QueryRequest(WS, QName.parse("sys.Echo"), USER, body, api_v2=True))
    assert e.value.message == "no query processors v2 available"
    qp.running = 1
    assert rows(await qp.execute(QueryRequest(WS, QName.parse("sys.Echo"), USER, body))) == [[]]
    assert qp.running == 1  # a finished read gives its place back


async def test_collection_fields_order_count(ws: Shop) -> None:
    ids = await items(ws, 5, 3, 8, 1)
    body: dict[str, Any] = {
        "args": {"Schema": "shop.Item"},
        "elements": [{"fields": ["Name", "Price", "sys.ID", "Code"]}],
        "orderBy": [{"field": "Price", "desc": True}],
    }
    got = rows(await q1(ws, "sys.Collection", body))
    assert got == [
        [[["item2", 8, ids[2], ""]]],
        [[["item0", 5, ids[0], ""]]],
        [[["item1", 3, ids[1], ""]]],
        [[["item3", 1, ids[3], ""]]],
    ]
    body.update(startFrom=1, count=2)
    assert [r[0][0][0] for r in rows(await q1(ws, "sys.Collection", body))] == ["item0", "item1"]
    body = {"args": {"Schema": "shop.Item", "ID": ids[1]}, "elements": [{"fields": ["Name"]}]}
    assert rows(await q1(ws, "sys.Collection", body)) == [[[["item1"]]]]
    body["args"]["ID"] = 999_999
    assert await q1(ws, "sys.Collection", body) == {}


async def test_nested_elements_and_refs(ws: Shop) -> None:
    ids = await menu(ws)
    body = {
        "args": {"Schema": "shop.Menu"},
        "elements": [
            {"path": "", "fields": ["Title"], "refs": [["Special", "Name"]]},
            {"path": "Sections", "fields": ["Name", "sys.ID"]},
            {"path": "Sections/Lines", "fields": ["Price"], "refs": [["Item", "Name"], ["Item", "Price"]]},
        ],
    }
    assert rows(await q1(ws, "sys.Collection", body)) == [
        [
            [["day", "cake"]],
            [["drinks", ids["4"]], ["sweets", ids["5"]]],
            [[7, "tea", 5], [11, "cake", 9], [3, "tea", 5]],
        ]
    ]


async def test_filters(ws: Shop) -> None:
    ref = (await items(ws, 4))[0]

    async def names(*filters: dict[str, Any], refs: bool = False) -> list[str]:
        element: dict[str, Any] = {"fields": ["Name", "Price", "Weight", "Fresh", "Kind"]}
        if refs:
            element["refs"] = [["Item", "Name"]]
        body = {"args": {"Ref": ref}, "elements": [element], "filters": list(filters)}
        return [r[0][0][0] for r in rows(await q1(ws, "shop.Items", body))] if filters else []

    def f(expr: str, field: str, value: Any, **options: Any) -> dict[str, Any]:
        args = {"field": field, "value": value}
        if options:
            args["options"] = options
        return {"expr": expr, "args": args}

    assert await names(f("eq", "Price", 5)) == ["pear", "kiwi"]
    assert await names(f("notEq", "Price", 5)) == ["apple", "plum"]
    assert await names(f("gt", "Price", 3)) == ["pear", "kiwi"]
    assert await names(f("lt", "Name", "p")) == ["apple", "kiwi"]
    assert await names(f("eq", "Fresh", False)) == ["pear"]
    assert await names(f("eq", "Kind", "shop.Item"), f("eq", "Weight", 0.75)) == ["kiwi"]
    assert await names(f("eq", "Weight", 0.7500001, epsilon=1e-3)) == ["kiwi"]
    assert await names(f("eq", "Weight", 0.7500001)) == []
    assert await names({"expr": "or", "args": [f("eq", "Price", 1), f("eq", "Price", 3)]}) == [
        "apple",
        "plum",
    ]
    assert await names({"expr": "and", "args": [f("eq", "Price", 5), f("notEq", "Name", "pear")]}) == ["kiwi"]
    assert await names(f("eq", "Item/Name", "item0"), refs=True) == ["apple", "pear", "plum", "kiwi"]
    with pytest.raises(SysError) as e:
        await names(f("eq", "Price", "five"))
    assert e.value.status == 400 and "does not fit" in e.value.message
    with pytest.raises(SysError) as e:
        await names(f("gt", "Fresh", True))
    assert e.value.status == 400 and "wrong type" in e.value.message


async def test_any_results_raw_results_and_responses(ws: Shop) -> None:
    body = {"elements": [{"fields": ["B", "A"]}], "orderBy": [{"field": "A", "desc": True}]}
    assert rows(await q1(ws, "shop.Anything", body)) == [[[["y", 2]]], [[["x", 1]]]]
    assert rows(await q1(ws, "shop.RawEcho", b"any text, not JSON")) == [[[["raw:any text, not JSON"]]]]
    e = await fails(ws, "shop.Teapot", {})
    assert (e.status, e.message) == (418, "I'm a teapot")


@pytest.mark.parametrize(
    ("name", "body", "text"),
    [
        ("sys.Echo", b"{not json", "failed to unmarshal request body"),
        ("sys.Echo", b"[1]", "failed to unmarshal request body: expected a JSON object"),
        ("sys.Echo", {"args": {"Text": "w"}, "unexpected": 1}, "unexpected field(s): unexpected"),
        ("sys.Echo", {"args": {"Text": "w", "unexpected": 1}}, "unexpected field(s): unexpected"),
        ("sys.Echo", {"args": []}, 'field "args" must be an object'),
        ("sys.Echo", {"args": {}}, "field is empty: Object «sys.EchoParams» string-field «Text»"),
        ("sys.GRCount", {"args": {"something": 1}}, "args are not expected"),
        ("shop.Nope", {}, "query shop.Nope does not exist in Workspace «shop.ShopWS»"),
        ("sys.CUD", {}, "query sys.CUD does not exist"),
        (
            "sys.Collection",
            {"args": {"Schema": "shop.Nope"}},
            "sys.Collection query result type shop.Nope does not",
        ),
        ("sys.Collection", {"args": {"Schema": "bad name"}}, "query result type bad name does not exist"),
        ("sys.Echo", {"elements": {}}, 'field "elements" must be an array of objects'),
        ("sys.Echo", {"elements": [45]}, "each member must be an object"),
        ("sys.Echo", {"elements": [{"path": 45}]}, 'field "path" must be a string'),
        ("sys.Echo", {"elements": [{"fields": [4]}]}, 'field "fields" must be an array of strings'),
        ("sys.Echo", {"elements": [{"fields": ["Res"], "x": 1}]}, "unexpected key(s) x"),
        ("sys.Echo", {"elements": [{"refs": [[]]}]}, "field 'ref' parameters length must be 2 but got 0"),
        ("sys.Echo", {"elements": [{"refs": [["a", 1]]}]}, "field 'ref' parameter must a string"),
        ("sys.Echo", {"elements": [{"refs": [["Res", "Name"]]}]}, "'Res' is not a reference field"),
        ("sys.Echo", {"elements": [{"fields": ["Res", "Res"]}]}, "'Res' is requested twice"),
        ("sys.Echo", {"elements": [{"fields": ["Nope"]}]}, "root element fields has field 'Nope'"),
        ("sys.Echo", {"elements": [{"path": "a"}, {"path": "a"}]}, "path 'a' must be unique"),
        ("sys.Echo", {"filters": {}}, 'field "filters" must be an array of objects'),
        ("sys.Echo", {"filters": [{}]}, "filter: field 'args' must be present"),
        ("sys.Echo", {"filters": [{"args": {}}]}, 'field "expr" must be a string'),
        ("sys.Echo", {"filters": [{"args": {}, "expr": "<<<"}]}, "filter '<<<' is unknown"),
        (
            "sys.Echo",
            {"filters": [{"expr": "eq", "args": ""}]},
            "'eq' filter: field 'args' must be an object",
        ),
        ("sys.Echo", {"filters": [{"expr": "eq", "args": {"field": "id"}}]}, "field 'value' must be present"),
        ("sys.Echo", {"filters": [{"expr": "eq", "args": {"value": 1}}]}, 'field "field" must be a string'),
        (
            "sys.Echo",
            {"filters": [{"expr": "and", "args": ""}]},
            "'and' filter: field 'args' must be an array",
        ),
        ("sys.Echo", {"filters": [{"expr": "or", "args": [""]}]}, "each 'args' member must be an object"),
        (
            "sys.Echo",
            {"filters": [{"expr": "eq", "args": {"field": "x", "value": 1, "options": {"epsilon": "e"}}}]},
            'field "epsilon" must be a number',
        ),
        (
            "sys.Echo",
            {
                "elements": [{"fields": ["Res"]}],
                "filters": [{"expr": "eq", "args": {"field": "w", "value": 1}}],
            },
            "'eq' filter has field 'w' that is absent in root element fields/refs",
        ),
        (
            "sys.Echo",
            {"filters": [{"expr": "and", "args": [{"expr": "lt", "args": {"field": "w", "value": 1}}]}]},
            "filters: 'and' filter: 'lt' filter has field 'w'",
        ),
        ("sys.Echo", {"orderBy": {}}, 'field "orderBy" must be an array of objects'),
        ("sys.Echo", {"orderBy": [{}]}, 'orderBy: field "field" must be a string'),
        ("sys.Echo", {"orderBy": [{"field": "Res", "desc": "yes"}]}, 'field "desc" must be a boolean'),
        (
            "sys.Echo",
            {"orderBy": [{"field": "Res"}]},
            "orderBy has field 'Res' that is absent in root element",
        ),
        ("sys.Echo", {"count": {}}, 'field "count" must be a whole number'),
        ("sys.Echo", {"startFrom": 1.5}, 'field "startFrom" must be a whole number'),
    ],
)
async def test_bad_requests(ws: Shop, name: str, body: Any, text: str) -> None:
    if isinstance(body, dict) and name == "sys.Echo" and "args" not in body:
        body = {"args": {"Text": "w"}, **body}
    e = await fails(ws, name, body)
    assert e.status == 400 and text in e.message, e


async def test_nested_paths_are_checked(ws: Shop) -> None:
    def body(*elements: dict[str, Any]) -> dict[str, Any]:
        return {"args": {"Schema": "shop.Menu"}, "elements": list(elements)}

    cases = [
        (body({"path": "Nope", "fields": ["Name"]}), "unknown nested table Nope"),
        (body({"path": "Sections/Nope"}), "unknown nested table Nope"),
        (body({"path": "Sections/Lines/Price"}), "unknown nested table Price"),
        (
            body({"path": "Sections", "fields": ["Nope"]}),
            "'Nope' that is unexpected among fields of shop.MenuSection",
        ),
    ]
    for b, text in cases:
        e = await fails(ws, "sys.Collection", b)
        assert e.status == 400 and text in e.message, e
    await menu(ws)
    b = body({"path": "", "fields": ["Title"], "refs": [["Special", "Nope"]]})
    e = await fails(ws, "sys.Collection", b)
    assert e.status == 400
    assert e.message == "ref field Special references to table shop.Item that does not contain field Nope"


async def test_workspace_checks(shop: Shop) -> None:
    body = {"args": {"Text": "w"}}
    e = await fails(shop, "sys.Echo", body)
    assert (e.status, e.message) == (403, "workspace is not initialized")
    await shop.create_ws(WS)
    desc = shop.runtime.singleton_ids[QName("sys", "WorkspaceDescriptor")]
    await shop.cmd(WS, "sys.CUD", {"cuds": [{"sys.ID": desc, "fields": {"Status": 1}}]}, SYSTEM)
    e = await fails(shop, "sys.Echo", body)
    assert (e.status, e.message) == (410, "workspace status is not active")
    assert rows(await q1(shop, "sys.Echo", body, SYSTEM)) == [[]]


class DenySelect:
    """Lets queries run but denies reading shop.Item."""

    def __init__(self) -> None:
        self.asked: list[tuple[OperationKind, QName, tuple[str, ...]]] = []

    def allowed(
        self,
        ws: Workspace,
        principal: Principal,
        op: OperationKind,
        resource: QName,
        fields: Sequence[str] = (),
    ) -> bool:
        self.asked.append((op, resource, tuple(fields)))
        return not (op is OperationKind.Select and resource == QName("shop", "Item"))


async def test_authorization(ws: Shop) -> None:
    auth = DenySelect()
    runtime = dataclasses.replace(ws.runtime, authorizer=auth)
    processor = QueryProcessor(runtime)
    body = {"args": {"Schema": "shop.Item"}}
    req = QueryRequest(WS, QName.parse("sys.Collection"), USER, body)
    with pytest.raises(SysError) as e:
        with_fields = {**body, "elements": [{"fields": ["Name"]}]}
        await processor.execute_v1(dataclasses.replace(req, body=with_fields))
    assert e.value.status == 403 and "select of shop.Item" in e.value.message
    assert auth.asked[0] == (OperationKind.Execute, QName("sys", "Collection"), ())
    assert auth.asked[1] == (OperationKind.Select, QName("shop", "Item"), ("Name",))
    deny_all = dataclasses.replace(ws.runtime, authorizer=DenyAll())
    with pytest.raises(SysError) as e:
        await QueryProcessor(deny_all).execute_v1(req)
    assert (e.value.status, e.value.message) == (
        403,
        "execute of sys.Collection is forbidden in workspace shop.ShopWS",
    )
    assert await QueryProcessor(deny_all).execute_v1(dataclasses.replace(req, principal=SYSTEM)) == {}


class DenyAll:
    def allowed(
        self,
        ws: Workspace,
        principal: Principal,
        op: OperationKind,
        resource: QName,
        fields: Sequence[str] = (),
    ) -> bool:
        return False


async def test_the_rows_processor_times_its_stages(ws: Shop) -> None:
    """voedger_qp_exec_{fields,enrich,filter,order,count,send}_seconds: each stage a query goes
    through adds to its own counter, and only those it goes through."""
    ref = (await items(ws, 4))[0]
    qp = QueryProcessor(ws.runtime)
    element = {"fields": ["Name", "Price"], "refs": [["Item", "Name"]]}
    body = {
        "args": {"Ref": ref},
        "elements": [element],
        "filters": [{"expr": "gt", "args": {"field": "Price", "value": 0}}],
        "orderBy": [{"field": "Price", "desc": True}],
        "count": 2,
    }
    answer = await qp.execute_v1(QueryRequest(WS, QName.parse("shop.Items"), USER, body))
    assert len(rows(answer)) == 2
    st = qp.stages
    for stage in ("fields", "enrich", "filter", "order", "count", "send"):
        assert getattr(st, stage) > 0, stage
    before = dataclasses.replace(st)
    plain = {"args": {"Ref": ref}, "elements": [{"fields": ["Name"]}], "count": 10}  # no refs, filters or order
    await qp.execute_v1(QueryRequest(WS, QName.parse("shop.Items"), USER, plain))
    assert st.fields > before.fields and st.send > before.send
    assert (st.enrich, st.filter, st.order) == (before.enrich, before.filter, before.order)
