"""Creating a workspace through the whole chain: InitChildWorkspace, then the async projectors
calling CreateWorkspaceID and CreateWorkspace, then InitializeWorkspace reporting the WSID back."""

from __future__ import annotations

import asyncio

import httpx

from tests.router.conftest import V1
from voedger.structs import wsid as ws
from voedger.vvm.server import VVM


async def wait_child(client: httpx.AsyncClient, name: str, timeout: float = 20.0) -> dict[str, object]:
    body = {"args": {"WSName": name}, "elements": [{"fields": ["WSID", "WSError", "WSKind"]}]}
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await client.post(f"{V1}/q.sys.QueryChildWorkspaceByName", json=body)
        if r.status_code == 200:
            wsid, error, kind = r.json()["sections"][0]["elements"][0][0][0]
            if wsid or error:
                return {"WSID": wsid, "WSError": error, "WSKind": kind}
        assert asyncio.get_running_loop().time() < deadline, f"workspace {name} not ready: {r.text}"
        await asyncio.sleep(0.05)


async def test_create_child_workspace_and_work_in_it(client: httpx.AsyncClient, vvm: VVM) -> None:
    args = {"WSName": "corner", "WSKind": "shop.ShopDesc", "WSKindInitializationData": '{"Name":"Corner"}'}
    r = await client.post(f"{V1}/c.sys.InitChildWorkspace", json={"args": args})
    assert r.status_code == 200, r.text
    child = await wait_child(client, "corner")
    assert child["WSError"] in ("", None) and child["WSKind"] == "shop.ShopDesc"
    new_wsid = int(child["WSID"])  # type: ignore[call-overload]
    assert ws.base_wsid(new_wsid) >= ws.FIRST_BASE_USER_WSID and ws.cluster_id(new_wsid) == 1
    item = {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}
    r = await client.post(f"/api/test/shop/{new_wsid}/c.sys.CUD", json={"cuds": [{"fields": item}]})
    assert r.status_code == 200, r.text
    # the name is taken now
    r = await client.post(f"{V1}/c.sys.InitChildWorkspace", json={"args": args})
    assert r.status_code == 409, r.text


async def test_bad_kind_and_bad_init_data(client: httpx.AsyncClient) -> None:
    bad_kind = {"WSName": "x", "WSKind": "shop.Item"}
    r = await client.post(f"{V1}/c.sys.InitChildWorkspace", json={"args": bad_kind})
    assert r.status_code == 400 and "WSKind" in r.text
    bad_data = {"WSName": "y", "WSKind": "shop.ShopDesc", "WSKindInitializationData": '{"Nope":1}'}
    r = await client.post(f"{V1}/c.sys.InitChildWorkspace", json={"args": bad_data})
    assert r.status_code == 200
    child = await wait_child(client, "y")
    assert "Nope" in str(child["WSError"])


async def test_unknown_cluster_is_refused_clearly(client: httpx.AsyncClient) -> None:
    args = {"WSName": "far", "WSKind": "shop.ShopDesc", "WSClusterID": 7}
    r = await client.post(f"{V1}/c.sys.InitChildWorkspace", json={"args": args})
    assert r.status_code == 400 and "cluster 7" in r.text, r.text


async def test_deactivated_workspace_answers_410(client: httpx.AsyncClient) -> None:
    args = {"WSName": "gone", "WSKind": "shop.ShopDesc"}
    assert (await client.post(f"{V1}/c.sys.InitChildWorkspace", json={"args": args})).status_code == 200
    wsid = int((await wait_child(client, "gone"))["WSID"])  # type: ignore[call-overload]
    r = await client.post(f"/api/test/shop/{wsid}/c.sys.InitiateDeactivateWorkspace", json={})
    assert r.status_code == 200, r.text
    item = {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "tea"}
    r = await client.post(f"/api/test/shop/{wsid}/c.sys.CUD", json={"cuds": [{"fields": item}]})
    assert r.status_code == 410 and "not active" in r.text, r.text
    r = await client.post(f"/api/test/shop/{wsid}/q.sys.Echo", json={"args": {"Text": "x"}})
    assert r.status_code == 410, r.text
    # the owner's record of the child is deactivated by the async part
    body = {"args": {"Schema": "sys.ChildWorkspace"}, "elements": [{"fields": ["WSName", "sys.IsActive"]}]}
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        r = await client.post(f"{V1}/q.sys.Collection", json=body)
        rows = [e[0][0] for e in r.json()["sections"][0]["elements"]]
        if ["gone", False] in rows:
            break
        assert asyncio.get_running_loop().time() < deadline, rows
        await asyncio.sleep(0.05)


async def test_workspace_from_template(client: httpx.AsyncClient) -> None:
    args = {"WSName": "templated", "WSKind": "shop.ShopDesc", "TemplateName": "starter"}
    assert (await client.post(f"{V1}/c.sys.InitChildWorkspace", json={"args": args})).status_code == 200
    child = await wait_child(client, "templated")
    assert not child["WSError"], child
    body = {"args": {"Schema": "shop.Item"}, "elements": [{"fields": ["Name", "Price"]}]}
    r = await client.post(f"/api/test/shop/{child['WSID']}/q.sys.Collection", json=body)
    names = sorted(e[0][0][0] for e in r.json()["sections"][0]["elements"])
    assert names == ["Croissant", "Espresso"], r.text


async def test_broken_or_unknown_template_is_reported_to_the_owner(client: httpx.AsyncClient) -> None:
    for name, template in (("b1", "broken"), ("b2", "nope")):
        args = {"WSName": name, "WSKind": "shop.ShopDesc", "TemplateName": template}
        assert (await client.post(f"{V1}/c.sys.InitChildWorkspace", json={"args": args})).status_code == 200
        child = await wait_child(client, name)
        assert child["WSError"], child


async def test_workspace_from_template_with_blobs(client: httpx.AsyncClient) -> None:
    """A template's BLOB files (``<recordID>_<field>.<ext>``) become BLOBs of the new workspace,
    held by the template's records: named after the file, typed by its extension."""
    args = {"WSName": "gallery", "WSKind": "shop.ShopDesc", "TemplateName": "gallery"}
    assert (await client.post(f"{V1}/c.sys.InitChildWorkspace", json={"args": args})).status_code == 200
    child = await wait_child(client, "gallery")
    assert not child["WSError"], child
    v2 = f"/api/v2/apps/test/shop/workspaces/{child['WSID']}"
    r = await client.get(f"{v2}/cdocs/shop.Picture")
    assert r.status_code == 200, r.text
    logo = next(p for p in r.json()["results"] if p["Title"] == "Logo")
    for field, data, name, kind in (
        ("Image", b"\x89PNG\r\n\x1a\nlogo-bytes", "1_Image.png", "png"),
        ("Thumb", b"thumbnail", "1_Thumb.txt", "txt"),
    ):
        r = await client.get(f"{v2}/docs/shop.Picture/{logo['sys.ID']}/blobs/{field}")
        assert r.status_code == 200, r.text
        assert (r.content, r.headers["blob-name"], r.headers["content-type"]) == (data, name, kind)
        blob = (await client.get(f"{v2}/docs/sys.BLOB/{logo[field]}")).json()
        assert (blob["OwnerRecord"], blob["OwnerRecordField"], blob["OwnerRecordID"]) == (
            "shop.Picture",
            field,
            logo["sys.ID"],
        )
