"""Voedger's BLOB and HTTP-convention scenarios (pkg/sys/it's blob and HTTP conventions tests)
step by step, where ``test_blobs.py``, ``test_http_conventions.py`` and ``test_schemas.py`` do not
take them already: what ``q.sys.SqlQuery`` sees of a ``sys.BLOB`` record before and after a
record takes it, a read without a credential through an ID that is no owner, a BLOB of API v1
read through API v2 as Voedger's own client reads it, the CORS of the BLOB routes, and the
answers through the real HTTP server (``Content-Length`` of a download, the upload's body, and
a 413 for a body too large that the client reads rather than a reset connection).

Steps already ported elsewhere (not repeated here):
- TestBasicUsage_Persistent, reading by header and cookies: ``test_blobs.py``
  (``test_v2_upload_take_and_download``, ``test_reading_with_an_escaped_cookie_and_the_size_header``);
- TestBlobberErrors (403 without a token on upload, 413, 404, the v1 400s, wrong owners on
  upload and read, owner updates, the read-denied field): ``test_blobs.py``;
- TestBasicUsage_Temporary and TestTemporaryBLOBErrors: ``test_blobs.py``
  (``test_temporary_blobs_v1_and_v2_expire_after_a_day``, ``test_a_missing_blob_is_404_...``);
- TestODocWithBLOB, TestBLOBsPseudoWSIDToAppWSID: ``test_blobs.py``;
- TestBasicUsage_HTTPConventions: ``test_http_conventions.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.router.test_blobs import BLOB_V1, MAX, V1, V2, auth, env, picture, token, upload, v1_error, v2_error
from voedger.clock import ManualClock
from voedger.router.app import CORS_HEADERS, MAX_FRAME, build_app
from voedger.router.blobs import is_upload
from voedger.router.http import HttpServer
from voedger.router.local import LocalTransport
from voedger.vvm.server import VVM

__all__ = ["env"]  # the fixture, shared with test_blobs.py

Env = tuple[VVM, httpx.AsyncClient, ManualClock]
FIVE = b"\x01\x02\x03\x04\x05"
BINARY = "application/x-binary"
# how Voedger's federation client finds the IDs in an upload's answer
PERSISTENT_RE = re.compile(r'"blobID":\s*(\d+)')
TEMPORARY_RE = re.compile(r'"blobSUUID":\s*"(.+)"')


async def sql_blob(client: httpx.AsyncClient, vvm: VVM, blob_id: int) -> dict[str, Any]:
    """The ``sys.BLOB`` record as ``select * from sys.BLOB.<id>`` answers it."""
    body = {"args": {"Query": f"select * from sys.BLOB.{blob_id}"}, "elements": [{"fields": ["Result"]}]}
    r = await client.post(f"{V1}/q.sys.SqlQuery", json=body, headers=auth(vvm))
    assert r.status_code == 200, r.text
    [[[[result]]]] = r.json()["sections"][0]["elements"]
    row: dict[str, Any] = json.loads(result)
    return row


async def test_sql_sees_the_blob_record_before_and_after_it_is_taken(env: Env) -> None:
    # TestBasicUsage_Persistent: the record of a BLOB just uploaded names its owner table and
    # field and no owner record yet; once a record takes the BLOB, it names that record
    vvm, client, _ = env
    r = await client.post(
        f"{V2}/docs/shop.Picture/blobs/Image",
        content=FIVE,
        headers={**auth(vvm), "Blob-Name": "test", "Content-Type": BINARY},
    )
    assert r.status_code == 201, r.text
    [found] = PERSISTENT_RE.findall(r.text)
    blob_id = int(found)
    row = await sql_blob(client, vvm, blob_id)
    assert (row["status"], row["OwnerRecord"], row["OwnerRecordField"]) == (2, "shop.Picture", "Image"), row
    assert not row.get("OwnerRecordID"), row

    owner = await picture(client, vvm, Image=blob_id)
    row = await sql_blob(client, vvm, blob_id)
    assert (row["status"], row["OwnerRecord"], row["OwnerRecordField"]) == (2, "shop.Picture", "Image"), row
    assert row["OwnerRecordID"] == owner, row

    url = f"{V2}/docs/shop.Picture/{owner}/blobs/Image"
    for headers in (
        auth(vvm),
        {"Cookie": f"Authorization=Bearer {token(vvm)}"},
        {"Cookie": f"Authorization=Bearer%20{token(vvm)}"},
    ):
        r = await client.get(url, headers=headers)
        assert r.status_code == 200 and r.content == FIVE, r.text
        assert (r.headers["content-type"], r.headers["blob-name"], r.headers["content-length"]) == (BINARY, "test", "5")


async def test_a_read_without_a_token_is_403_even_through_an_id_that_is_no_owner(env: Env) -> None:
    # TestBlobberErrors "403 forbidden on read without token": Voedger's test asks for the owner
    # record by the BLOB's own ID; the credential is refused before the record is looked for
    vvm, client, _ = env
    blob_id = await upload(client, vvm, data=FIVE)
    v2_error(await client.get(f"{V2}/docs/shop.Picture/{blob_id}/blobs/Image"), 403)
    # with the credential, the same URL names no record of that table
    v2_error(await client.get(f"{V2}/docs/shop.Picture/{blob_id}/blobs/Image", headers=auth(vvm)), 404)


async def test_a_blob_of_api_v1_is_read_through_api_v2(env: Env) -> None:
    # TestAPIv1v2BackwardCompatibility: the name and type come as escaped query parameters, the
    # body as a stream without Content-Length; API v2 reads back the name, type and size
    vvm, client, _ = env

    async def body() -> AsyncIterator[bytes]:
        yield FIVE

    url = f"{BLOB_V1}?name={quote('Blob-Name', safe='')}&mimeType={quote(BINARY, safe='')}"
    r = await client.post(url, content=body(), headers=auth(vvm))
    assert r.status_code == 200, r.text
    owner = await picture(client, vvm, Image=int(r.text))
    r = await client.get(f"{V2}/docs/shop.Picture/{owner}/blobs/Image", headers=auth(vvm))
    assert r.status_code == 200 and r.content == FIVE, r.text
    assert (r.headers["content-type"], r.headers["blob-name"], r.headers["content-length"]) == (
        BINARY,
        "Blob-Name",
        "5",
    )


async def test_blob_routes_answer_preflights_and_carry_cors_headers(env: Env) -> None:
    # Voedger's router wraps every BLOB route in its CORS handler: OPTIONS is an empty 200, and
    # every answer, a streamed BLOB or an error, carries the headers (Blob-Name among the allowed)
    vvm, client, _ = env
    blob_id = await upload(client, vvm, data=FIVE)
    owner = await picture(client, vvm, Image=blob_id)
    r = await client.post(f"{V2}/tblobs", content=FIVE, headers={**auth(vvm), "Blob-Name": "t", "TTL": "1d"})
    assert r.status_code == 201, r.text
    [suuid] = TEMPORARY_RE.findall(r.text)
    paths = (
        f"{V2}/docs/shop.Picture/blobs/Image",
        f"{V2}/docs/shop.Picture/{owner}/blobs/Image",
        f"{V2}/tblobs",
        f"{V2}/tblobs/{suuid}",
        BLOB_V1,
        f"{BLOB_V1}/{blob_id}",
    )
    for path in paths:
        r = await client.options(path, headers={"Origin": "http://elsewhere", "Access-Control-Request-Method": "POST"})
        assert (r.status_code, r.content) == (200, b""), path
        for name, value in CORS_HEADERS.items():
            assert r.headers[name] == value, path
    assert "Blob-Name" in CORS_HEADERS["Access-Control-Allow-Headers"]
    answers = [
        await client.get(f"{V2}/docs/shop.Picture/{owner}/blobs/Image", headers=auth(vvm)),
        await client.get(f"{V2}/tblobs/{suuid}", headers=auth(vvm)),
        await client.get(f"{BLOB_V1}/{blob_id}", headers=auth(vvm)),
        await client.get(f"{V2}/docs/shop.Picture/{owner}/blobs/Image"),
        await client.get(f"{V2}/tblobs/{'a' * 43}", headers=auth(vvm)),
        await client.post(f"{BLOB_V1}", content=b"x", headers=auth(vvm)),
    ]
    assert [r.status_code for r in answers] == [200, 200, 200, 403, 404, 400]
    for r in answers:
        for name, value in CORS_HEADERS.items():
            assert r.headers[name] == value, r.url


def serve(vvm: VVM, max_body: int = MAX_FRAME) -> HttpServer:
    return HttpServer(build_app(vvm, {1: LocalTransport(vvm)}), max_body=max_body, stream=is_upload)


@pytest.fixture
async def served(env: Env) -> AsyncIterator[tuple[VVM, httpx.AsyncClient]]:
    """The same server behind the real HTTP front on a loopback port, uploads streamed."""
    vvm, _, _ = env
    server = serve(vvm)
    [(host, port)] = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=30) as client:
            yield vvm, client
    finally:
        await server.stop(1.0)


async def test_through_the_http_server_as_voedgers_client_reads_it(served: tuple[VVM, httpx.AsyncClient]) -> None:
    # Voedger's federation client: the upload's 201 body gives the ID by a regular expression, a
    # download's size is its Content-Length; the errors are Voedger's JSON with their status
    vvm, client = served
    headers = {**auth(vvm), "Blob-Name": "test", "Content-Type": BINARY}
    r = await client.post(f"{V2}/docs/shop.Picture/blobs/Image", content=FIVE, headers=headers)
    assert r.status_code == 201 and r.headers["content-type"] == "application/json", r.text
    [found] = PERSISTENT_RE.findall(r.text)
    owner = await picture(client, vvm, Image=int(found))
    r = await client.get(f"{V2}/docs/shop.Picture/{owner}/blobs/Image", headers=auth(vvm))
    assert r.status_code == 200 and r.content == FIVE, r.text
    assert (r.headers["content-type"], r.headers["blob-name"], r.headers["content-length"]) == (BINARY, "test", "5")
    assert "transfer-encoding" not in r.headers

    r = await client.post(f"{V2}/tblobs", content=FIVE, headers={**headers, "TTL": "1d"})
    assert r.status_code == 201 and r.headers["content-type"] == "application/json", r.text
    [suuid] = TEMPORARY_RE.findall(r.text)
    r = await client.get(f"{V2}/tblobs/{suuid}", headers=auth(vvm))
    assert r.status_code == 200 and r.content == FIVE, r.text
    assert (r.headers["content-type"], r.headers["blob-name"], r.headers["content-length"]) == (BINARY, "test", "5")

    # errors: API v2's {"status","message"}, API v1's {"sys.Error":{...}}, as JSON
    r = await client.post(f"{V2}/docs/shop.Picture/blobs/Image", content=b"", headers={"Blob-Name": "n"})
    v2_error(r, 403)
    assert r.headers["content-type"] == "application/json"
    r = await client.get(f"{V2}/docs/shop.Picture/1/blobs/Image", headers=auth(vvm))
    v2_error(r, 404, "document shop.Picture with ID 1 not found")
    r = await client.post(BLOB_V1, content=b"blobContent", headers=auth(vvm))
    v1_error(r, 400, "neither")
    assert r.headers["content-type"] == "application/json"


async def test_a_blob_too_large_is_a_413_the_client_reads(served: tuple[VVM, httpx.AsyncClient]) -> None:
    # TestBlobberErrors "413 request entity too large", over a socket. The size is refused on
    # the announced Content-Length, before the body is read:
    # - a body that came whole meanwhile is dropped, and the connection serves the next request
    #   (reading had paused for that body and was never resumed: the next request hung);
    # - a body still coming: the answer says "connection: close", and the server reads and
    #   drops the rest for a moment before closing (closed at once, the kernel reset the
    #   connection under the bytes still arriving and httpx lost the 413 to a ReadError)
    vvm, client = served
    url = f"{V2}/docs/shop.Picture/blobs/Image"
    headers = {**auth(vvm), "Blob-Name": "big", "Content-Type": BINARY}
    quota = f"BLOB size quote exceeded (max {MAX} allowed)"
    for size in (MAX + 1, 20 * MAX):
        for _ in range(2):
            v2_error(await client.post(url, content=b"x" * size, headers=headers), 413, quota)
            v1_error(await client.post(f"{BLOB_V1}?name=a&mimeType=b", content=b"x" * size, headers=auth(vvm)), 413)
            r = await client.post(url, content=FIVE, headers=headers)  # and the next request is served
            assert r.status_code == 201, r.text


async def test_a_body_over_the_servers_limit_is_a_413_the_client_reads(env: Env) -> None:
    # the HTTP server's own 413, on the announced Content-Length of a body it does not stream
    vvm, _, _ = env
    server = serve(vvm, max_body=1000)
    [(host, port)] = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=30) as client:
            cud = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Picture", "Title": "x" * 20_000_000}}]}
            for _ in range(2):
                r = await client.post(f"{V1}/c.sys.CUD", json=cud, headers=auth(vvm))
                v1_error(r, 413, "request body larger than 1000 bytes")
                assert r.headers["connection"] == "close"
            assert await picture(client, vvm, Title="small") > 0
    finally:
        await server.stop(1.0)
