"""BLOBs over HTTP with authentication on: API v1 and v2 uploads and downloads, temporary BLOBs,
ownership, the size limit, and Voedger's answers to every mistake (after pkg/sys/it's blob
scenarios)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from voedger.appdef import QName
from voedger.auth import PrincipalPayload
from voedger.blobs import BlobKey, BlobStore
from voedger.clock import ManualClock
from voedger.processors.command import CommandRequest
from voedger.processors.principal import SYSTEM
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM, ServerConfig

APP = "test/shop"
SHOP_DIR = Path(__file__).parent / "shop"
ALICE = new_wsid(1, 300_001)
BOB = new_wsid(1, 300_002)
SHOP = new_wsid(1, 300_003)
V2 = f"/api/v2/apps/test/shop/workspaces/{SHOP}"
V1 = f"/api/test/shop/{SHOP}"
BLOB_V1 = f"/blob/test/shop/{SHOP}"
MAX = 300_000
DATA = bytes(range(256)) * 1000  # 256,000 bytes: three chunks


async def system_cud(vvm: VVM, wsid: int, *records: dict[str, object]) -> None:
    body = {"cuds": [{"fields": {"sys.ID": i + 1, **r}} for i, r in enumerate(records)]}
    await vvm.app(APP).partition(wsid).submit(CommandRequest(wsid, QName("sys", "CUD"), body, SYSTEM, synced=True))


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[VVM, httpx.AsyncClient, ManualClock]]:
    clock = ManualClock(1_790_000_000)
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[(APP, SHOP_DIR)], clock=clock, blob_max_size=MAX))
    await vvm.start()
    desc = {"sys.QName": "sys.WorkspaceDescriptor", "CreatedAtMs": 1, "InitCompletedAtMs": 1}
    for name, wsid in (("alice", ALICE), ("bob", BOB)):
        await system_cud(
            vvm, wsid, {**desc, "WSName": name, "WSKind": "sys.UserProfile"}, {"sys.QName": "sys.UserProfile"}
        )
    await system_cud(
        vvm,
        SHOP,
        {**desc, "WSName": "shop", "WSKind": "shop.ShopDesc", "OwnerWSID": ALICE},
        {"sys.QName": "shop.ShopDesc", "Name": "Corner shop"},
    )
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield vvm, client, clock
    await vvm.stop()


def token(vvm: VVM, login: str = "alice", profile: int = ALICE) -> str:
    assert vvm.tokens is not None
    return vvm.tokens.issue(APP, PrincipalPayload(login=login, profile_wsid=profile), timedelta(hours=1))


def auth(vvm: VVM, login: str = "alice", profile: int = ALICE) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(vvm, login, profile)}"}


async def upload(
    client: httpx.AsyncClient, vvm: VVM, field: str = "Image", data: bytes = DATA, name: str = "photo.png"
) -> int:
    r = await client.post(
        f"{V2}/docs/shop.Picture/blobs/{field}",
        content=data,
        headers={**auth(vvm), "Blob-Name": name, "Content-Type": "image/png"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["blobID"] and isinstance(body["blobID"], int)
    return int(body["blobID"])


async def picture(client: httpx.AsyncClient, vvm: VVM, **fields: Any) -> int:
    r = await client.post(
        f"{V1}/c.sys.CUD",
        json={"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Picture", **fields}}]},
        headers=auth(vvm),
    )
    assert r.status_code == 200, r.text
    return int(r.json()["NewIDs"]["1"])


async def blob_record(client: httpx.AsyncClient, vvm: VVM, blob_id: int) -> dict[str, Any]:
    r = await client.get(f"{V2}/docs/sys.BLOB/{blob_id}", headers=auth(vvm))
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def v2_error(r: httpx.Response, status: int, text: str = "") -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status and text in body["message"], body


def v1_error(r: httpx.Response, status: int, text: str = "") -> None:
    assert r.status_code == status, r.text
    body = r.json()["sys.Error"]
    assert body["HTTPStatus"] == status and text in body["Message"], body


async def test_v2_upload_take_and_download(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    vvm, client, _ = env
    blob_id = await upload(client, vvm)
    rec = await blob_record(client, vvm, blob_id)
    assert (rec["status"], rec["OwnerRecord"], rec["OwnerRecordField"]) == (2, "shop.Picture", "Image")
    assert not rec.get("OwnerRecordID")

    owner = await picture(client, vvm, Title="cat", Image=blob_id)
    assert (await blob_record(client, vvm, blob_id))["OwnerRecordID"] == owner

    url = f"{V2}/docs/shop.Picture/{owner}/blobs/Image"
    for headers in (auth(vvm), {"Cookie": f"Authorization=Bearer {token(vvm)}"}):
        r = await client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        assert r.content == DATA
        assert r.headers["content-type"] == "image/png"
        assert r.headers["blob-name"] == "photo.png"
        assert r.headers["content-length"] == str(len(DATA))


async def test_v1_upload_and_download(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    vvm, client, _ = env
    r = await client.post(f"{BLOB_V1}?name=scan.pdf&mimeType=application/pdf", content=b"%PDF-1", headers=auth(vvm))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain"
    blob_id = int(r.text)
    r = await client.get(f"{BLOB_V1}/{blob_id}", headers=auth(vvm))
    assert r.status_code == 200 and r.content == b"%PDF-1", r.text
    assert (r.headers["content-type"], r.headers["blob-name"]) == ("application/pdf", "scan.pdf")
    # A BLOB of API v1 names no owner: any BLOB field takes it, and API v2 reads it there.
    rec = await blob_record(client, vvm, blob_id)
    assert not rec.get("OwnerRecord")
    owner = await picture(client, vvm, Thumb=blob_id)
    r = await client.get(f"{V2}/docs/shop.Picture/{owner}/blobs/Thumb", headers=auth(vvm))
    assert r.status_code == 200 and r.content == b"%PDF-1", r.text
    # Reading needs a credential the workspace accepts.
    v1_error(await client.get(f"{BLOB_V1}/{blob_id}"), 403)
    v1_error(await client.get(f"{BLOB_V1}/{blob_id}", headers=auth(vvm, "bob", BOB)), 403)
    v1_error(await client.get(f"{BLOB_V1}/{blob_id + 1000}", headers=auth(vvm)), 404, "BLOB not found")
    v1_error(await client.get(f"{BLOB_V1}/12ab", headers=auth(vvm)), 400)


async def test_temporary_blobs_v1_and_v2_expire_after_a_day(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    vvm, client, clock = env
    r = await client.post(
        f"{V2}/tblobs", content=DATA, headers={**auth(vvm), "Blob-Name": "t.bin", "Content-Type": "a/b", "TTL": "1d"}
    )
    assert r.status_code == 201, r.text
    suuid = r.json()["blobSUUID"]
    assert len(suuid) == 43
    r = await client.post(f"{BLOB_V1}?name=v1.txt&mimeType=text/plain&ttl=1d", content=b"hello", headers=auth(vvm))
    assert r.status_code == 200, r.text
    suuid_v1 = r.text
    assert len(suuid_v1) == 43 and suuid_v1 != suuid

    r = await client.get(f"{V2}/tblobs/{suuid}", headers=auth(vvm))
    assert r.status_code == 200 and r.content == DATA and r.headers["blob-name"] == "t.bin", r.text
    r = await client.get(f"{BLOB_V1}/{suuid_v1}", headers=auth(vvm))
    assert r.status_code == 200 and r.content == b"hello", r.text
    v2_error(await client.get(f"{V2}/tblobs/{suuid}"), 403)
    v2_error(await client.get(f"{V2}/tblobs/{'a' * 43}", headers=auth(vvm)), 404)

    clock.advance(86_400 - 1)
    r = await client.get(f"{V2}/tblobs/{suuid}", headers=auth(vvm))
    assert r.status_code == 200 and r.content == DATA
    clock.advance(1)
    v2_error(await client.get(f"{V2}/tblobs/{suuid}", headers=auth(vvm)), 404)
    v1_error(await client.get(f"{BLOB_V1}/{suuid_v1}", headers=auth(vvm)), 404)
    v2_error(
        await client.post(f"{V2}/tblobs", content=b"x", headers={**auth(vvm), "TTL": "2d"}),
        400,
        '"1d" is only supported',
    )
    # no TTL: Voedger takes it for a persistent BLOB without an owner
    v2_error(await client.post(f"{V2}/tblobs", content=b"x", headers=auth(vvm)), 400, "blob owner QName . is unknown")


async def test_size_limit_is_413_and_leaves_no_blob(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    vvm, client, _ = env
    big = os.urandom(MAX + 1)
    url = f"{V2}/docs/shop.Picture/blobs/Image"
    headers = {**auth(vvm), "Blob-Name": "big", "Content-Type": "a/b"}
    v2_error(await client.post(url, content=big, headers=headers), 413, f"BLOB size quote exceeded (max {MAX} allowed)")

    async def chunked() -> AsyncIterator[bytes]:  # no content-length: found out while streaming
        for i in range(0, len(big), 50_000):
            yield big[i : i + 50_000]

    r = await client.post(url, content=chunked(), headers=headers)
    v2_error(r, 413, f"BLOB size quote exceeded (max {MAX} allowed)")
    # The ID booked for it holds no BLOB: nothing half-written.
    last = await upload(client, vvm, data=b"ok")
    store = BlobStore(vvm.app(APP).runtime.storage)
    for blob_id in range(last - 2, last):
        with pytest.raises(Exception, match="not found"):
            await store.state(BlobKey(SHOP, blob_id=blob_id))
    r = await client.post(f"{BLOB_V1}?name=a&mimeType=b", content=big, headers=auth(vvm))
    v1_error(r, 413)
    # the right to upload is looked at before the size
    v2_error(await client.post(url, content=big, headers={"Blob-Name": "big"}), 403)
    v2_error(await client.post(url, content=big, headers={**auth(vvm, "bob", BOB), "Blob-Name": "big"}), 403)
    v1_error(await client.post(f"{BLOB_V1}?name=a&mimeType=b", content=big), 403)
    assert await upload(client, vvm, data=os.urandom(MAX)) > last


async def test_upload_and_read_need_rights(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    vvm, client, _ = env
    url = f"{V2}/docs/shop.Picture/blobs/Image"
    v2_error(await client.post(url, content=b"", headers={"Blob-Name": "n", "Content-Type": "a/b"}), 403)
    v2_error(await client.post(url, content=b"x", headers={**auth(vvm, "bob", BOB), "Blob-Name": "n"}), 403)
    v1_error(await client.post(f"{BLOB_V1}?name=a&mimeType=b", content=b"x"), 403)
    blob_id = await upload(client, vvm)
    owner = await picture(client, vvm, Image=blob_id)
    v2_error(await client.get(f"{V2}/docs/shop.Picture/{owner}/blobs/Image"), 403)
    v2_error(await client.get(f"{V2}/docs/shop.Picture/{owner}/blobs/Image", headers=auth(vvm, "bob", BOB)), 403)

    # Written to a field the owner may not read: the BLOB is not readable through it either.
    hidden = await upload(client, vvm, field="Hidden")
    owner = await picture(client, vvm, Hidden=hidden)
    v2_error(await client.get(f"{V2}/docs/shop.Picture/{owner}/blobs/Hidden", headers=auth(vvm)), 403)


async def test_wrong_owners_are_400_and_404(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    vvm, client, _ = env
    headers = {**auth(vvm), "Blob-Name": "n", "Content-Type": "a/b"}
    for url, text in (
        (f"{V2}/docs/unknown.doc/blobs/someField", "blob owner QName unknown.doc is unknown"),
        (
            f"{V2}/docs/shop.Picture/blobs/someField",
            "blob owner field someField does not exist in blob owner shop.Picture",
        ),
        (f"{V2}/docs/shop.Picture/blobs/Qty", "blob owner shop.Picture.Qty must be of blob type"),
    ):
        v2_error(await client.post(url, content=b"blob", headers=headers), 400, text)
    multipart = {**auth(vvm), "Content-Type": "multipart/form-data"}
    v2_error(await client.post(f"{V2}/docs/shop.Picture/blobs/Image", headers=multipart), 400, "mutual exclusive")
    # Voedger compares the whole header: with a boundary, it is the type of the BLOB
    multipart["Content-Type"] += "; boundary=x"
    r = await client.post(f"{V2}/docs/shop.Picture/blobs/Image", headers=multipart, content=b"--x--")
    assert r.status_code == 201, r.text

    v2_error(await client.get(f"{V2}/docs/unknown.doc/1/blobs/Name", headers=auth(vvm)), 400)
    v2_error(await client.get(f"{V2}/docs/shop.Picture/200001/blobs/Image", headers=auth(vvm)), 404)
    owner = await picture(client, vvm, Qty=42)
    url = f"{V2}/docs/shop.Picture/{owner}/blobs"
    v2_error(
        await client.get(f"{url}/Image", headers=auth(vvm)), 400, "no value for owner field Image in blob owner doc"
    )
    v2_error(await client.get(f"{url}/Qty", headers=auth(vvm)), 400, "owner field shop.Picture.Qty is not of blob type")


async def test_v1_upload_parameters(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    vvm, client, _ = env
    h = auth(vvm)
    for query, headers, text in (
        ("", {}, "neither"),
        ("", {"Content-Type": "application/x-www-form-urlencoded"}, "Content-Type must be mutipart/form-data"),
        ("?name=a&mimeType=b", {"Content-Type": "multipart/form-data"}, "mutual exclusive"),
        ("", {"Content-Type": "multipart/form-data"}, "boundary of multipart/form-data is not specified"),
        ("?name=a", {}, "both name and mimeType"),
        ("?name=a&mimeType=b&ttl=7d", {}, '"1d" is only supported'),
        ("?name=a%0d%0ab&mimeType=b", {}, "line breaks"),
    ):
        v1_error(await client.post(f"{BLOB_V1}{query}", content=b"blob", headers={**h, **headers}), 400, text)
    v1_error(await client.post("/blob/test/shop/abc?name=a&mimeType=b", content=b"x", headers=h), 400)
    # with a boundary the header is not "multipart/form-data" for Voedger: the body is the BLOB
    multipart = {**h, "Content-Type": "multipart/form-data; boundary=x"}
    r = await client.post(f"{BLOB_V1}?name=a&mimeType=b", content=b"--x--", headers=multipart)
    assert r.status_code == 200, r.text
    r = await client.get(f"{BLOB_V1}/{r.text}", headers=h)
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"--x--", "b"), r.text
    v1_error(await client.post(f"/blob/test/nope/{SHOP}?name=a&mimeType=b", content=b"x", headers=h), 400)


async def test_a_blob_is_taken_once_by_its_own_field(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    vvm, client, _ = env
    blob_id = await upload(client, vvm)

    async def cud(*records: dict[str, Any]) -> httpx.Response:
        cuds = [{"fields": {"sys.ID": i + 1, "sys.QName": "shop.Picture", **r}} for i, r in enumerate(records)]
        return await client.post(f"{V1}/c.sys.CUD", json={"cuds": cuds}, headers=auth(vvm))

    v1_error(
        await cud({"Thumb": blob_id}),
        403,
        "intended for shop.Picture.Image whereas it is being used in shop.Picture.Thumb",
    )
    v1_error(
        await cud({"Image": blob_id}, {"Image": blob_id}),
        403,
        f"BLOB ID {blob_id} mentioned in CUD shop.Picture.Image is used already in CUD shop.Picture.1",
    )
    r = await cud({"Image": blob_id})
    assert r.status_code == 200, r.text
    owner = r.json()["NewIDs"]["1"]
    v1_error(await cud({"Image": blob_id}), 403, f"is used already in shop.Picture.{owner}.Image")
    # Updating a record with the BLOB it holds does not take it again; other fields change freely.
    r = await client.post(
        f"{V1}/c.sys.CUD", json={"cuds": [{"sys.ID": owner, "fields": {"Title": "renamed"}}]}, headers=auth(vvm)
    )
    assert r.status_code == 200, r.text
    # Nothing of the refused commands was written.
    assert (await blob_record(client, vvm, blob_id))["OwnerRecordID"] == owner
    v1_error(await cud({"Image": 999_999}), 400)


async def test_reading_with_an_escaped_cookie_and_the_size_header(
    env: tuple[VVM, httpx.AsyncClient, ManualClock],
) -> None:
    # TestBasicUsage_Persistent: "Bearer%20<token>" in the cookie is as good as "Bearer <token>"
    vvm, client, _ = env
    owner = await picture(client, vvm, Image=await upload(client, vvm, data=b"\x01\x02\x03\x04\x05"))
    r = await client.get(
        f"{V2}/docs/shop.Picture/{owner}/blobs/Image", headers={"Cookie": f"Authorization=Bearer%20{token(vvm)}"}
    )
    assert r.status_code == 200 and r.content == b"\x01\x02\x03\x04\x05", r.text
    assert r.headers["content-length"] == "5"
    r = await client.post(f"{V2}/tblobs", content=b"abc", headers={**auth(vvm), "Blob-Name": "t", "TTL": "1d"})
    assert r.status_code == 201, r.text
    r = await client.get(f"{V2}/tblobs/{r.json()['blobSUUID']}", headers=auth(vvm))
    assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"abc", "3"), r.text


async def test_reading_through_an_unknown_table_or_record(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    # TestBlobberErrors "read: wrong owner"
    vvm, client, _ = env
    r = await client.get(f"{V2}/docs/unknown.doc/1/blobs/Name", headers=auth(vvm))
    v2_error(r, 400, "document or record unknown.doc is not defined in Workspace «shop.ShopWS»")
    r = await client.get(f"{V2}/docs/shop.Picture/1/blobs/Image", headers=auth(vvm))
    v2_error(r, 404, "document shop.Picture with ID 1 not found")


async def test_a_blob_of_one_table_is_refused_by_another(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    # TestBlobberErrors "403 forbidden on set blob to another owner record"
    vvm, client, _ = env
    blob_id = await upload(client, vvm)
    cud = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Poster", "Art": blob_id}}]}
    r = await client.post(f"{V1}/c.sys.CUD", json=cud, headers=auth(vvm))
    text = f"BLOB ID {blob_id} is intended for shop.Picture.Image whereas it is being used in shop.Poster.Art"
    v1_error(r, 403, text)


async def test_an_odoc_holds_a_blob(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    # TestODocWithBLOB: a command's ODoc argument takes the BLOB (the owner check is of CUDs
    # only, so one meant for another table is taken too) and it is read back through the ODoc
    vvm, client, _ = env
    blob_id = await upload(client, vvm, data=b"scan")
    r = await client.post(f"{V1}/c.shop.FileReceipt", json={"args": {"sys.ID": 1, "Scan": blob_id}}, headers=auth(vvm))
    assert r.status_code == 200, r.text
    receipt = r.json()["NewIDs"]["1"]
    r = await client.get(f"{V2}/docs/shop.ScannedReceipt/{receipt}/blobs/Scan", headers=auth(vvm))
    assert r.status_code == 200 and r.content == b"scan", r.text
    assert (r.headers["blob-name"], r.headers["content-type"], r.headers["content-length"]) == (
        "photo.png",
        "image/png",
        "4",
    )


async def test_a_pseudo_wsid_stands_for_its_application_workspace(
    env: tuple[VVM, httpx.AsyncClient, ManualClock],
) -> None:
    # TestBLOBsPseudoWSIDToAppWSID: upload, take and read with the system token on a pseudo WSID
    vvm, client, _ = env
    assert vvm.tokens is not None
    system = {"Authorization": f"Bearer {vvm.tokens.issue_system(APP)}"}
    pseudo = new_wsid(1, 0)  # the first pseudo WSID of cluster 1
    base = f"/api/v2/apps/test/shop/workspaces/{pseudo}"
    r = await client.post(
        f"{base}/docs/shop.AppFile/blobs/Blob", content=b"blob", headers={**system, "Blob-Name": "blob name"}
    )
    assert r.status_code == 201, r.text
    blob_id = r.json()["blobID"]
    cud = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.AppFile", "Blob": blob_id}}]}
    r = await client.post(f"/api/test/shop/{pseudo}/c.sys.CUD", json=cud, headers=system)
    assert r.status_code == 200, r.text
    r = await client.get(f"{base}/docs/shop.AppFile/{r.json()['NewIDs']['1']}/blobs/Blob", headers=system)
    assert r.status_code == 200 and r.content == b"blob" and r.headers["blob-name"] == "blob name", r.text


async def test_a_missing_blob_is_404_before_the_credential_is_looked_at(
    env: tuple[VVM, httpx.AsyncClient, ManualClock],
) -> None:
    # TestTemporaryBLOBErrors and the blob processor's order: the BLOB's state, then the check
    vvm, client, _ = env
    v2_error(await client.get(f"{V2}/tblobs/unknownSUUIDaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 404, "BLOB not found")
    v1_error(await client.get(f"{BLOB_V1}/999999"), 404, "BLOB not found")
    v1_error(await client.get(f"{BLOB_V1}/999999", headers=auth(vvm, "bob", BOB)), 404, "BLOB not found")
    blob_id = await upload(client, vvm)
    v1_error(await client.get(f"{BLOB_V1}/{blob_id}"), 403)  # there: the credential decides


async def test_a_content_type_that_cannot_be_read_is_400(env: tuple[VVM, httpx.AsyncClient, ManualClock]) -> None:
    # the blob processor reads Content-Type (Go's mime.ParseMediaType) before anything else
    vvm, client, _ = env
    h = auth(vvm)
    for content_type, text in (
        (";x=1", "mime: no media type"),
        ("image/", "mime: expected token after slash"),
        ("image/png x", "mime: unexpected content after media subtype"),
        ("image/png; x", "mime: invalid media parameter"),
        ("image/png; x=1; x=2", "mime: duplicate parameter name"),
    ):
        headers = {**h, "Content-Type": content_type}
        want = f"failed to parse Content-Type header: {text}"
        v1_error(await client.post(f"{BLOB_V1}?name=a&mimeType=b", content=b"x", headers=headers), 400, want)
        v1_error(await client.post(f"{BLOB_V1}?name=a", content=b"x", headers=headers), 400, want)
        v2_error(await client.post(f"{V2}/docs/unknown.doc/blobs/f", content=b"x", headers=headers), 400, want)
        v2_error(await client.post(f"{V2}/tblobs", content=b"x", headers=headers), 400, want)
    # what Go reads: a type without a subtype, a trailing semicolon, a quoted parameter
    for content_type in ("bin", "image/png;", 'image/png; name="a b"'):
        r = await client.post(
            f"{V2}/tblobs", content=b"x", headers={**h, "Content-Type": content_type, "TTL": "1d", "Blob-Name": "n"}
        )
        assert r.status_code == 201, (content_type, r.text)
        r = await client.get(f"{V2}/tblobs/{r.json()['blobSUUID']}", headers=h)
        assert r.headers["content-type"] == content_type
