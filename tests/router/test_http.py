"""Voedger's HTTP API over the real router and VVM: JSON shapes, statuses and error bodies."""

from __future__ import annotations

import httpx

from tests.router.conftest import V1, make_shop_ws
from tests.support import v2_error_of
from voedger.structs.wsid import new_wsid, pseudo_wsid
from voedger.vvm.server import VVM

SHOP_WS = new_wsid(1, 200_000)
V1_SHOP = f"/api/test/shop/{SHOP_WS}"
V2_SHOP = f"/api/v2/apps/test/shop/workspaces/{SHOP_WS}"


def v1_error(r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()["sys.Error"]
    assert body["HTTPStatus"] == status and text in body["Message"], body


def v2_error(r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, r.text
    body = v2_error_of(r)
    assert text in body["message"], body


async def test_check(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/check")
    assert r.status_code == 200 and r.text == "ok"


async def test_app_workspaces_exist_after_start(client: httpx.AsyncClient) -> None:
    body = {
        "cuds": [
            {
                "fields": {
                    "sys.ID": 1,
                    "sys.QName": "sys.ChildWorkspace",
                    "WSName": "w",
                    "WSKind": "shop.ShopDesc",
                    "WSClusterID": 1,
                }
            }
        ]
    }
    r = await client.post(f"{V1}/c.sys.CUD", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["NewIDs"] == {"1": 200001}
    assert r.json()["CurrentWLogOffset"] == 2  # the workspace's descriptor was event 1


async def test_v1_command_cud_and_result(client: httpx.AsyncClient, vvm: VVM) -> None:
    await make_shop_ws(client, vvm, SHOP_WS)
    item = {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea", "Price": 3}
    barcode = {
        "sys.ID": 2,
        "sys.QName": "shop.Barcode",
        "sys.ParentID": 1,
        "sys.Container": "Barcodes",
        "Code": "X",
    }
    r = await client.post(f"{V1_SHOP}/c.sys.CUD", json={"cuds": [{"fields": item}, {"fields": barcode}]})
    assert r.status_code == 200, r.text
    ids = r.json()["NewIDs"]
    assert set(ids) == {"1", "2"} and r.json()["CurrentWLogOffset"] == 2
    r = await client.post(f"{V1_SHOP}/c.shop.MakeOrder", json={"args": {"sys.ID": 1, "Item": ids["1"], "Qty": 4}})
    assert r.status_code == 200, r.text
    assert r.json()["Result"] == {"Total": 40, "sys.QName": "shop.TotalResult"}
    assert r.json()["CurrentWLogOffset"] == 3


async def test_v1_errors(client: httpx.AsyncClient, vvm: VVM) -> None:
    await make_shop_ws(client, vvm, SHOP_WS)
    v1_error(await client.post(f"{V1_SHOP}/c.sys.CUD", content=b"{not json"), 400, "not valid JSON")
    v1_error(await client.post(f"{V1_SHOP}/c.sys.CUD", content=b"[1]"), 400, "must be a JSON object")
    v1_error(await client.post(f"{V1_SHOP}/c.shop.Nope", json={}), 404, "shop.Nope")
    r = await client.post(f"{V1_SHOP}/x.shop.Nope", json={})
    v1_error(r, 400, 'wrong function mark "x" for function shop.Nope')
    v1_error(await client.post(f"{V1_SHOP}/c.badqname", json={}), 400, "wrong function name: c.badqname")
    v1_error(await client.post("/api/test/nope/1/c.sys.CUD", json={}), 400, "unknown app test/nope")
    r = await client.post("/api/test/shop/abc/c.sys.CUD", json={})
    v1_error(r, 400, 'invalid wsid: failed to cast abc to WSID: strconv.ParseInt: parsing "abc": invalid syntax')
    other = new_wsid(7, 200_000)
    v1_error(await client.post(f"/api/test/shop/{other}/c.sys.CUD", json={}), 400, "cluster 7")
    never = new_wsid(1, 300_000)
    v1_error(await client.post(f"/api/test/shop/{never}/c.sys.CUD", json={"cuds": []}), 403, "not initialized")
    bad = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "x", "Price": "free"}}]}
    v1_error(await client.post(f"{V1_SHOP}/c.sys.CUD", json=bad), 400, "Price")
    r = await client.post(f"{V1_SHOP}/c.shop.MakeOrder", json={"args": {"sys.ID": 1, "Item": 70000, "Qty": 1}})
    v1_error(r, 400, "record ID 70000 referenced by shop.Order.Item does not exist")
    r = await client.post(f"{V1_SHOP}/c.shop.MakeOrder", json={"args": {"sys.ID": 1, "Item": 1, "Qty": 1}})
    v1_error(r, 400, "whereas [shop.Item] QNames are only allowed")
    r = await client.get("/api/nothing/here")
    assert r.status_code == 404


async def test_pseudo_wsid_goes_to_its_app_workspace(client: httpx.AsyncClient) -> None:
    pseudo = pseudo_wsid("alice")
    body = {
        "cuds": [
            {
                "fields": {
                    "sys.ID": 1,
                    "sys.QName": "sys.ChildWorkspace",
                    "WSName": "w",
                    "WSKind": "shop.ShopDesc",
                    "WSClusterID": 1,
                }
            }
        ]
    }
    r = await client.post(f"/api/test/shop/{pseudo}/c.sys.CUD", json=body)
    assert r.status_code == 200, r.text
    r2 = await client.post(f"{V1}/c.sys.CUD", json=body)
    # alice's pseudo WSID maps to app workspace #9 of 10: a different workspace than #0
    assert r.json()["CurrentWLogOffset"] == 2 and r2.json()["CurrentWLogOffset"] == 2


async def test_unique_conflict_is_409(client: httpx.AsyncClient, vvm: VVM) -> None:
    await make_shop_ws(client, vvm, SHOP_WS)
    item = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Sku", "Code": "C1"}}]}
    assert (await client.post(f"{V1_SHOP}/c.sys.CUD", json=item)).status_code == 200
    v1_error(await client.post(f"{V1_SHOP}/c.sys.CUD", json=item), 409, "unique constraint violation")


async def test_v2_docs_and_commands(client: httpx.AsyncClient, vvm: VVM) -> None:
    await make_shop_ws(client, vvm, SHOP_WS)
    r = await client.post(f"{V2_SHOP}/docs/shop.Item", json={"Name": "coffee", "Price": 5})
    assert r.status_code == 201, r.text
    body = r.json()
    new_id = body["newIDs"]["1"]
    assert body["currentWLogOffset"] == 2
    r = await client.patch(f"{V2_SHOP}/docs/shop.Item/{new_id}", json={"Price": 6})
    assert r.status_code == 200 and r.json() == {"currentWLogOffset": 3}
    r = await client.delete(f"{V2_SHOP}/docs/shop.Item/{new_id}")
    assert r.status_code == 200 and r.json() == {"currentWLogOffset": 4}
    r = await client.post(f"{V2_SHOP}/commands/shop.MakeOrder", json={"args": {"sys.ID": 1, "Item": new_id, "Qty": 1}})
    assert r.status_code == 200 and r.json()["result"]["Total"] == 10


async def test_v2_errors(client: httpx.AsyncClient, vvm: VVM) -> None:
    await make_shop_ws(client, vvm, SHOP_WS)
    v2_error(await client.post(f"{V2_SHOP}/docs/shop.Order", json={"Qty": 1}), 405, "ODoc")
    not_found = f"table shop.Nope not found in workspace {SHOP_WS}:shop.ShopDesc"
    v2_error(await client.post(f"{V2_SHOP}/docs/shop.Nope", json={"a": 1}), 400, not_found)
    v2_error(await client.patch(f"{V2_SHOP}/docs/shop.Nope/5", json={"a": 1}), 400, not_found)
    v2_error(await client.post(f"{V2_SHOP}/docs/shop.Item", json={"Nope": 1, "Name": "x"}), 400, "Nope")
    v2_error(await client.post(f"{V2_SHOP}/docs/shop.Item", content=b""), 400, "empty")
    v2_error(await client.patch(f"{V2_SHOP}/docs/shop.Item/999999", json={"Price": 1}), 404, "does not exist")
    v2_error(await client.patch(f"{V2_SHOP}/docs/shop.Item/abc", json={"Price": 1}), 400, "not a number")
    r = await client.request("DELETE", f"{V2_SHOP}/docs/shop.Item/5", content=b'{"Name":"x"}')
    v2_error(r, 400, "unexpected body")
    # an unknown key is let through, as in Voedger; the arguments are still needed
    v2_error(await client.post(f"{V2_SHOP}/commands/shop.MakeOrder", json={"bogus": 1}), 400, "field is empty")
    v2_error(await client.put(f"{V2_SHOP}/docs/shop.Item/5", json={}), 405, "method not allowed")


async def test_v1_queries(client: httpx.AsyncClient, vvm: VVM) -> None:
    await make_shop_ws(client, vvm, SHOP_WS)
    r = await client.post(f"{V1_SHOP}/q.sys.Echo", json={"args": {"Text": "hello"}, "elements": [{"fields": ["Res"]}]})
    assert r.status_code == 200, r.text
    assert r.json() == {"sections": [{"type": "", "elements": [[[["hello"]]]]}]}
    item = {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea", "Price": 3}
    r = await client.post(f"{V1_SHOP}/c.sys.CUD", json={"cuds": [{"fields": item}]})
    item_id = r.json()["NewIDs"]["1"]
    body = {"args": {"Schema": "shop.Item"}, "elements": [{"fields": ["Name", "Price", "sys.ID"]}]}
    r = await client.post(f"{V1_SHOP}/q.sys.Collection", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["sections"][0]["elements"] == [[[["tea", 3, item_id]]]]
    v1_error(await client.post(f"{V1_SHOP}/q.sys.Nope", json={}), 400, "sys.Nope")  # as Voedger answers
    v1_error(await client.post(f"{V1_SHOP}/q.sys.Echo", json={"args": {}}), 400, "Text")


async def test_v2_reads(client: httpx.AsyncClient, vvm: VVM) -> None:
    await make_shop_ws(client, vvm, SHOP_WS)
    r = await client.post(f"{V2_SHOP}/docs/shop.Item", json={"Name": "coffee", "Price": 5})
    new_id = r.json()["newIDs"]["1"]
    r = await client.get(f"{V2_SHOP}/docs/shop.Item/{new_id}")
    assert r.status_code == 200, r.text
    assert r.json()["Name"] == "coffee" and r.json()["sys.ID"] == new_id
    r = await client.get(f"{V2_SHOP}/cdocs/shop.Item")
    assert r.status_code == 200 and [x["Name"] for x in r.json()["results"]] == ["coffee"]
    await client.post(f"{V2_SHOP}/commands/shop.MakeOrder", json={"args": {"sys.ID": 1, "Item": new_id, "Qty": 2}})
    where = '{"Item":' + str(new_id) + "}"
    r = await client.get(f"{V2_SHOP}/views/shop.Sales", params={"where": where})
    assert r.status_code == 200, r.text
    assert [x["Qty"] for x in r.json()["results"]] == [2]
    r = await client.get(f"{V2_SHOP}/queries/sys.Echo", params={"args": '{"Text":"hi"}'})
    assert r.status_code == 200 and r.json()["results"][0]["Res"] == "hi"
    v2_error(await client.get(f"{V2_SHOP}/views/shop.Sales"), 400, "")
    v2_error(await client.get(f"{V2_SHOP}/docs/shop.Item/99999999"), 404, "")


async def test_v2_include_containers_of_wdoc_and_cdoc(client: httpx.AsyncClient, vvm: VVM) -> None:
    await make_shop_ws(client, vvm, SHOP_WS)

    def child(qname: str, rid: int, parent: int, container: str, **fields: object) -> dict[str, object]:
        sys = {"sys.ID": rid, "sys.QName": qname, "sys.ParentID": parent, "sys.Container": container}
        return {"fields": {**sys, **fields}}

    cuds = [
        {"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}},
        child("shop.Barcode", 2, 1, "Barcodes", Code="b1"),
        child("shop.Barcode", 3, 1, "Barcodes", Code="b2"),
        {"fields": {"sys.ID": 4, "sys.QName": "shop.Tab", "Number": 7}},
        child("shop.TabLine", 5, 4, "Lines", Item=1, Qty=1),
        child("shop.TabLine", 6, 4, "Lines", Qty=2),
    ]
    r = await client.post(f"{V1_SHOP}/c.sys.CUD", json={"cuds": cuds})
    assert r.status_code == 200, r.text
    ids = r.json()["NewIDs"]
    item, tab = ids["1"], ids["4"]
    r = await client.get(f"{V2_SHOP}/docs/shop.Tab/{tab}", params={"include": "Lines.Item"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["Number"] == 7 and body["sys.ID"] == tab
    lines = body["Lines"]
    assert [(x["sys.ID"], x["Qty"], x["sys.ParentID"], x["sys.Container"]) for x in lines] == [
        (ids["5"], 1, tab, "Lines"),
        (ids["6"], 2, tab, "Lines"),
    ]
    assert lines[0]["Item"]["Name"] == "tea" and "Item" not in lines[1]
    r = await client.get(f"{V2_SHOP}/docs/shop.Item/{item}", params={"include": "Barcodes", "keys": "Barcodes.Code"})
    assert r.status_code == 200 and r.json() == {"Barcodes": [{"Code": "b1"}, {"Code": "b2"}]}, r.text
    v2_error(await client.get(f"{V2_SHOP}/docs/shop.Tab/{tab}", params={"include": "Nope"}), 400, "Nope")


async def test_async_projector_catches_up(client: httpx.AsyncClient, vvm: VVM) -> None:
    await make_shop_ws(client, vvm, SHOP_WS)
    for i in range(5):
        r = await client.post(f"{V2_SHOP}/docs/shop.Item", json={"Name": f"i{i}"})
        assert r.status_code == 201
    app = vvm.app("test/shop")
    part = app.partition(SHOP_WS)
    await app.actualizers.wait_for(part.id, part.next_plog - 1, timeout=10)
    r = await client.get(f"{V2_SHOP}/views/shop.ItemCount", params={"where": '{"Part":0}'})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["Count"] == 5


async def test_v2_docs_post_creates_nested_records(client: httpx.AsyncClient, vvm: VVM) -> None:
    await make_shop_ws(client, vvm, SHOP_WS)
    body = {"Name": "tea", "Barcodes": [{"Code": "1"}, {"Code": "2"}]}
    r = await client.post(f"{V2_SHOP}/docs/shop.Item", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["currentWLogOffset"] == 2
    ids = r.json()["newIDs"]
    assert sorted(ids) == ["1", "2", "3"]  # the document first, then its records in body order
    item = ids["1"]
    r = await client.get(f"{V2_SHOP}/docs/shop.Item/{item}", params={"include": "Barcodes"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["Name"] == "tea" and doc["sys.ID"] == item
    barcodes = [
        (x["sys.ID"], x["Code"], x["sys.ParentID"], x["sys.Container"], x["sys.QName"]) for x in doc["Barcodes"]
    ]
    assert barcodes == [
        (ids["2"], "1", item, "Barcodes", "shop.Barcode"),
        (ids["3"], "2", item, "Barcodes", "shop.Barcode"),
    ]
    # A WDoc's records too, and raw IDs given in the body (Voedger's explicit sys.ID) are kept.
    body = {"Number": 5, "sys.ID": 10, "Lines": [{"Qty": 1, "Item": item}, {"Qty": 2, "sys.ID": 11}, {"Qty": 3}]}
    r = await client.post(f"{V2_SHOP}/docs/shop.Tab", json=body)
    assert r.status_code == 201, r.text
    ids = r.json()["newIDs"]
    assert sorted(ids) == ["1", "10", "11", "2"]
    r = await client.get(f"{V2_SHOP}/docs/shop.Tab/{ids['10']}", params={"include": "Lines"})
    assert r.status_code == 200, r.text
    lines = [(x["sys.ID"], x["Qty"], x["sys.ParentID"]) for x in r.json()["Lines"]]
    assert lines == [(ids["1"], 1, ids["10"]), (ids["11"], 2, ids["10"]), (ids["2"], 3, ids["10"])]
    assert r.json()["Lines"][0]["Item"] == item
    # An empty container, a null one, or none given, creates the document alone.
    for barcodes in ([], None):
        r = await client.post(f"{V2_SHOP}/docs/shop.Item", json={"Name": "milk", "Barcodes": barcodes})
        assert r.status_code == 201 and sorted(r.json()["newIDs"]) == ["1"], r.text
        r = await client.get(f"{V2_SHOP}/docs/shop.Item/{r.json()['newIDs']['1']}", params={"include": "Barcodes"})
        assert r.status_code == 200 and "Barcodes" not in r.json(), r.text


async def test_v2_docs_nested_records_errors(client: httpx.AsyncClient, vvm: VVM) -> None:
    await make_shop_ws(client, vvm, SHOP_WS)
    url = f"{V2_SHOP}/docs/shop.Item"

    async def post(body: object) -> httpx.Response:
        return await client.post(url, json=body)

    v2_error(await post({"Name": "x", "Boxes": [{"Code": "1"}]}), 400, "shop.Item has no field or container «Boxes»")
    v2_error(await post({"Name": "x", "Barcodes": {"Code": "1"}}), 400, "«Barcodes» takes an array of shop.Barcode")
    v2_error(await post({"Name": "x", "Barcodes": "1"}), 400, "not a string")
    v2_error(await post({"Name": "x", "Barcodes": [{"Code": "1"}, 7]}), 400, "Barcodes[1]: a record is a JSON object")
    r = await post({"Name": "x", "Barcodes": [{"Code": "1"}, {"Code": "2", "Colour": "red"}]})
    v2_error(r, 400, "Barcodes[1]: shop.Barcode has no field or container «Colour»")
    v2_error(
        await post({"Name": "x", "Barcodes": [{}]}),
        400,
        "Barcodes[0]: field is empty: CRecord «Barcodes: shop.Barcode» string-field «Code»: validate error code 4",
    )
    v2_error(await post({"Name": "x", "Barcodes": [{"Code": 5}]}), 400, "Barcodes[0]")
    r = await post({"Name": "x", "Barcodes": [{"Code": "1", "sys.ParentID": 1}]})
    v2_error(r, 400, "Barcodes[0]: sys.ParentID is set by the platform")
    v2_error(await post({"Name": "x", "sys.QName": "shop.Item"}), 400, "sys.QName is set by the platform")
    v2_error(await post({"Name": "x", "sys.ID": "one"}), 400, 'field "sys.ID" must be json.Number: field type mismatch')
    r = await post({"Name": "x", "Barcodes": [{"Code": "1", "sys.ID": 1}]})
    v2_error(r, 400, "Barcodes[0]: raw ID 1 is already taken by the document")
    r = await post({"Name": "x", "Barcodes": [{"Code": str(i)} for i in range(100)]})
    v2_error(r, 400, "at most 100")
    # Nothing was created by any of them.
    r = await client.get(f"{V2_SHOP}/cdocs/shop.Item")
    assert r.status_code == 200 and r.json()["results"] == [], r.text
    # PATCH changes a record's own fields, as in Voedger: containers are refused with a 400.
    r = await post({"Name": "x", "Barcodes": [{"Code": "1"}]})
    ids = r.json()["newIDs"]
    r = await client.patch(f"{url}/{ids['1']}", json={"Barcodes": [{"Code": "2"}]})
    v2_error(r, 400, "shop.Item container «Barcodes» cannot be changed by PATCH")
    r = await client.patch(f"{V2_SHOP}/docs/shop.Barcode/{ids['2']}", json={"Code": "3"})
    assert r.status_code == 200, r.text
    r = await client.get(f"{url}/{ids['1']}", params={"include": "Barcodes"})
    assert [x["Code"] for x in r.json()["Barcodes"]] == ["3"], r.text


async def test_v2_patch_and_delete_must_name_the_records_table(client: httpx.AsyncClient, vvm: VVM) -> None:
    """docs/{table}/{id} changes only a record of that table (Voedger's 400 names both)."""
    await make_shop_ws(client, vvm, SHOP_WS)
    r = await client.post(f"{V2_SHOP}/docs/shop.Item", json={"Name": "tea", "Barcodes": [{"Code": "1"}]})
    assert r.status_code == 201, r.text
    item, barcode = r.json()["newIDs"]["1"], r.json()["newIDs"]["2"]
    wrong = f"record id {item} leads to shop.Item QName whereas shop.Barcode QName is mentioned in the request"
    v2_error(await client.patch(f"{V2_SHOP}/docs/shop.Barcode/{item}", json={"Code": "2"}), 400, wrong)
    v2_error(await client.delete(f"{V2_SHOP}/docs/shop.Barcode/{item}"), 400, wrong)
    r = await client.get(f"{V2_SHOP}/docs/shop.Item/{item}")
    assert r.status_code == 200 and r.json()["Name"] == "tea" and r.json()["sys.IsActive"] is True, r.text
    assert (await client.patch(f"{V2_SHOP}/docs/shop.Barcode/{barcode}", json={"Code": "2"})).status_code == 200
    assert (await client.delete(f"{V2_SHOP}/docs/shop.Item/{item}")).status_code == 200
