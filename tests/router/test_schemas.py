"""API v2 schemas over HTTP, as Voedger serves them (its scenarios TestQueryProcessor2_Schemas,
_SchemasRoles and _SchemasWorkspaceRole, on the test shop): HTML pages of workspaces and roles,
the OpenAPI document of a role, published roles for everybody and all of them for a token with
the global role sys.Developer; and CORS and OPTIONS as Voedger's router answers them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from tests.router.conftest import SHOP_DIR
from voedger.appdef import QName
from voedger.auth import PrincipalPayload
from voedger.router.app import CORS_HEADERS, build_app
from voedger.router.local import LocalTransport
from voedger.vvm.server import VVM, ServerConfig

S = "/api/v2/apps/test/shop/schemas"
ITEMS = "/apps/test/shop/workspaces/{wsid}/docs/shop.Item"


@pytest.fixture(scope="module")
async def secure(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[VVM, httpx.AsyncClient]]:
    """The shop with authentication on (the shared fixture runs it in --insecure-dev); the tests
    only read, so they share one."""
    data: Path = tmp_path_factory.mktemp("schemas")
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{data}", apps=[("test/shop", SHOP_DIR)]))
    await vvm.start()
    app = build_app(vvm, {1: LocalTransport(vvm)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield vvm, client
    await vvm.stop()


def developer(vvm: VVM) -> dict[str, str]:
    assert vvm.tokens is not None
    payload = PrincipalPayload(login="dev", profile_wsid=1, global_roles=(QName("sys", "Developer"),))
    return {"Authorization": f"Bearer {vvm.tokens.issue('test/shop', payload, timedelta(hours=1))}"}


def user(vvm: VVM) -> dict[str, str]:
    assert vvm.tokens is not None
    payload = PrincipalPayload(login="someone", profile_wsid=1)
    return {"Authorization": f"Bearer {vvm.tokens.issue('test/shop', payload, timedelta(hours=1))}"}


async def test_app_schema_lists_workspaces_with_published_roles(secure: tuple[VVM, httpx.AsyncClient]) -> None:
    _, client = secure
    r = await client.get(S)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html"
    assert r.text == (
        "<html><head><title>App test/shop schema</title></head><body><h1>App test/shop schema</h1>"
        '<h2>Package shop</h2><ul><li><a href="/api/v2/apps/test/shop/schemas/shop.ShopWS/roles">shop.ShopWS</a>'
        "</li></ul></body></html>"
    )


async def test_a_developer_sees_every_workspace(secure: tuple[VVM, httpx.AsyncClient]) -> None:
    vvm, client = secure
    r = await client.get(S, headers=developer(vvm))
    assert r.status_code == 200
    assert r.text.index("<h2>Package shop</h2>") < r.text.index("<h2>Package sys</h2>")
    assert '<a href="/api/v2/apps/test/shop/schemas/sys.Workspace/roles">sys.Workspace</a>' in r.text
    # an ordinary user is no developer
    assert "Package sys" not in (await client.get(S, headers=user(vvm))).text


async def test_bad_token_is_401_and_unknown_app_400(secure: tuple[VVM, httpx.AsyncClient]) -> None:
    _, client = secure
    r = await client.get(S, headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.json()["status"] == 401
    r = await client.get("/api/v2/apps/test/nothing/schemas")
    assert r.status_code == 400 and r.json() == {"status": 400, "message": "unknown app test/nothing"}


async def test_workspace_roles(secure: tuple[VVM, httpx.AsyncClient]) -> None:
    vvm, client = secure
    r = await client.get(f"{S}/shop.ShopWS/roles")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html"
    assert r.text == (
        "<html><head><title>App test/shop: workspace shop.ShopWS published roles</title></head><body>"
        "<h1>App test/shop</h1><h2>Workspace shop.ShopWS published roles</h2><h2>Package shop</h2><ul>"
        '<li><a href="/api/v2/apps/test/shop/schemas/shop.ShopWS/roles/shop.ApiClient">shop.ApiClient</a></li>'
        "</ul></body></html>"
    )
    r = await client.get(f"{S}/shop.ShopWS/roles", headers=developer(vvm))
    assert "<h2>Workspace shop.ShopWS roles</h2>" in r.text
    assert "shop.Clerk" in r.text and "<h2>Package sys</h2>" in r.text and "sys.WorkspaceOwner" in r.text
    r = await client.get(f"{S}/sys.Workspace/roles")
    assert r.status_code == 200 and "<p>No published roles</p>" in r.text


async def test_unknown_workspace_and_role_are_404(secure: tuple[VVM, httpx.AsyncClient]) -> None:
    _, client = secure
    for path in (f"{S}/pkg.unknown/roles", f"{S}/pkg.unknown/roles/shop.ApiClient", f"{S}/nodot/roles"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert r.json()["message"].startswith("workspace ") and r.json()["message"].endswith(" not found")
    r = await client.get(f"{S}/pkg.unknown/roles")
    assert r.json() == {"status": 404, "message": "workspace pkg.unknown not found"}
    r = await client.get(f"{S}/shop.ShopWS/roles/shop.UnknownRole")
    assert r.json() == {"status": 404, "message": "role shop.UnknownRole not found in workspace shop.ShopWS"}
    # a type that is not a role
    r = await client.get(f"{S}/shop.ShopWS/roles/shop.Item")
    assert r.status_code == 404


def operations(doc: dict[str, Any]) -> set[str]:
    return {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops}


async def test_role_document_is_what_the_role_may_do(secure: tuple[VVM, httpx.AsyncClient]) -> None:
    _, client = secure
    r = await client.get(f"{S}/shop.ShopWS/roles/shop.ApiClient", headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    validate(doc)
    assert doc["openapi"] == "3.0.0" and doc["servers"] == [{"url": "/api/v2"}]
    assert doc["info"]["title"] == "shop: ApiClient OpenAPI 3.0"
    ws = "/apps/test/shop/workspaces/{wsid}"
    assert operations(doc) == {
        "POST /apps/test/shop/auth/login",
        "POST /apps/test/shop/auth/refresh",
        f"POST {ws}/docs/shop.Item",
        f"GET {ws}/docs/shop.Item/{{id}}",
        f"GET {ws}/cdocs/shop.Item",
        f"GET {ws}/docs/shop.Barcode/{{id}}",
        f"GET {ws}/cdocs/shop.Barcode",
        f"POST {ws}/docs/shop.Picture",
        f"GET {ws}/docs/shop.Picture/{{id}}",
        f"GET {ws}/cdocs/shop.Picture",
        f"POST {ws}/docs/shop.Picture/blobs/Image",  # Thumb and Hidden may not be written
        f"GET {ws}/docs/shop.Picture/{{id}}/blobs/Image",
        f"GET {ws}/docs/shop.Picture/{{id}}/blobs/Thumb",  # Hidden may not be read
        f"POST {ws}/commands/shop.MakeOrder",
        f"GET {ws}/views/shop.Sales",
    }
    schemas = doc["components"]["schemas"]
    # Insert is limited to two fields: a component of its own; Select sees the whole item
    assert doc["paths"][f"{ws}/docs/shop.Item"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/shop.Item_Insert"
    }
    assert set(schemas["shop.Item_Insert"]["properties"]) == {"Name", "Code"}
    assert schemas["shop.Item_Insert"]["required"] == ["Name"]
    item = schemas["shop.Item"]
    assert item["properties"]["Name"] == {"type": "string", "maxLength": 50}
    assert item["properties"]["Price"] == {"type": "integer", "format": "int32"}
    assert item["properties"]["Barcodes"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/shop.Barcode"},
        "minItems": 0,
        "maxItems": 100,
    }
    assert "Hidden" not in schemas["shop.Picture_Select"]["properties"]
    # the command: its ODoc argument inline, its result named
    cmd = doc["paths"][f"{ws}/commands/shop.MakeOrder"]["post"]
    args = cmd["requestBody"]["content"]["application/json"]["schema"]["properties"]["args"]
    assert args["required"] == ["sys.QName", "sys.ID", "Item", "Qty"]
    assert args["properties"]["Item"]["description"] == "Reference to a document or record"
    assert cmd["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["result"] == {
        "$ref": "#/components/schemas/shop.TotalResult"
    }
    # a view needs its partition key
    where = doc["paths"][f"{ws}/views/shop.Sales"]["get"]["parameters"][1]
    assert where["name"] == "where" and where["required"] is True and where["description"].endswith("fields: Item")
    # the errors of array reads may come as the query processor streams them; a document's are plain
    array_error = {"anyOf": [{"$ref": "#/components/schemas/Error"}, {"$ref": "#/components/schemas/ArrayError"}]}
    for path in (f"{ws}/views/shop.Sales", f"{ws}/cdocs/shop.Item"):
        for status in ("401", "403", "404"):
            assert (
                doc["paths"][path]["get"]["responses"][status]["content"]["application/json"]["schema"] == array_error
            )
    plain = doc["paths"][f"{ws}/docs/shop.Item/{{id}}"]["get"]["responses"]["403"]["content"]["application/json"]
    assert plain["schema"] == {"$ref": "#/components/schemas/Error"}
    assert schemas["ArrayError"]["required"] == ["results", "error"]
    # what the role may not do is not there
    assert "shop.Tab" not in schemas and "shop.Sku" not in schemas
    assert "users" not in " ".join(doc["paths"])  # only developers see sign-up and devices


async def test_inherited_roles_and_developers(secure: tuple[VVM, httpx.AsyncClient]) -> None:
    vvm, client = secure
    r = await client.get(f"{S}/shop.ShopWS/roles/shop.Clerk")
    assert r.status_code == 403 and r.json() == {"status": 403, "message": "role shop.Clerk is not published"}
    r = await client.get(f"{S}/shop.ShopWS/roles/shop.Clerk", headers=developer(vvm))
    assert r.status_code == 200
    doc = r.json()
    validate(doc)
    ws = "/apps/test/shop/workspaces/{wsid}"
    ops = operations(doc)
    assert f"PATCH {ws}/docs/shop.Item/{{id}}" in ops  # its own grant
    assert f"POST {ws}/commands/shop.MakeOrder" in ops  # inherited from ApiClient
    assert "POST /apps/test/shop/users" in ops and "POST /apps/test/shop/devices" in ops
    r = await client.get(f"{S}/sys.Workspace/roles/sys.AuthenticatedUser", headers=developer(vvm))
    assert r.status_code == 200 and f"GET {ws}/docs/shop.Item/{{id}}" not in operations(r.json())
    assert (await client.get(f"{S}/sys.Workspace/roles/sys.AuthenticatedUser")).status_code == 403


async def test_role_document_in_html_for_browsers(secure: tuple[VVM, httpx.AsyncClient]) -> None:
    _, client = secure
    path = f"{S}/shop.ShopWS/roles/shop.ApiClient"
    r = await client.get(path, headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text.startswith("<") and f'fetch("{path}"' in r.text
    # errors stay JSON
    r = await client.get(f"{S}/shop.ShopWS/roles/shop.Clerk", headers={"Accept": "text/html"})
    assert r.status_code == 403 and r.json()["status"] == 403


async def test_every_role_document_of_the_app_is_valid(secure: tuple[VVM, httpx.AsyncClient]) -> None:
    vvm, client = secure
    dev = developer(vvm)
    appdef = vvm.app("test/shop").runtime.appdef
    for ws in appdef.workspaces():
        for role in ws.types():
            if role.kind == "Role":
                r = await client.get(f"{S}/{ws.qname}/roles/{role.qname}", headers=dev)
                assert r.status_code == 200, (ws.qname, role.qname, r.text)
                validate(r.json())


# --- CORS ----------------------------------------------------------------------------------------


async def test_options_is_a_preflight_with_cors_headers(client: httpx.AsyncClient) -> None:
    for path in (
        "/api/check",
        S,
        f"{S}/shop.ShopWS/roles/shop.ApiClient",
        "/api/v2/apps/test/shop/workspaces/140737488355328/commands/shop.MakeOrder",
        "/api/v2/apps/test/shop/workspaces/140737488355328/docs/shop.Item/1",
        "/api/test/shop/140737488355328/c.sys.CUD",
        "/api/v2/apps/test/shop/auth/login",
        "/blob/test/shop/140737488355328",
    ):
        r = await client.options(path, headers={"Origin": "http://elsewhere", "Access-Control-Request-Method": "POST"})
        assert r.status_code == 200, path
        assert r.content == b""
        for name, value in CORS_HEADERS.items():
            assert r.headers[name] == value, path
        assert "access-control-allow-methods" not in r.headers


async def test_answers_and_errors_carry_cors_headers(client: httpx.AsyncClient) -> None:
    answers = [
        await client.get("/api/check"),
        await client.get(S),
        await client.post("/api/test/shop/140737488355328/c.sys.CUD", content=b"not json"),  # the fast path
        await client.post("/api/test/shop/abc/c.sys.CUD", json={}),
        await client.get("/api/v2/apps/test/shop/workspaces/140737488355328/docs/shop.Item/x"),
    ]
    assert [r.status_code for r in answers] == [200, 200, 400, 400, 400]
    for r in answers:
        assert r.headers["access-control-allow-origin"] == "*"
        assert "Authorization" in r.headers["access-control-allow-headers"]
    # no route, no CORS (Voedger's router answers its 404 before its CORS handler)
    r = await client.options("/api/v2/nothing/here")
    assert r.status_code == 404 and "access-control-allow-origin" not in r.headers
