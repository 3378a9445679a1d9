"""Whatever a client sends, the answer is a 2xx or a 4xx in Voedger's error shape: never a 500."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.router.conftest import make_shop_ws
from voedger.structs.wsid import new_wsid
from voedger.vvm.server import VVM

SHOP_WS = new_wsid(1, 200_000)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
names = st.sampled_from(
    [
        "sys.ID",
        "sys.QName",
        "sys.IsActive",
        "sys.ParentID",
        "sys.Container",
        "Name",
        "Price",
        "Code",
        "Item",
        "Qty",
        "Barcodes",
        "fields",
        "cuds",
        "args",
        "unloggedArgs",
        "x",
    ]
)
json_values = st.recursive(
    scalars | st.sampled_from(["shop.Item", "shop.Order", "shop.Barcode", "sys.WorkspaceDescriptor", 1, 65535]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=5),
    max_leaves=25,
)
bodies = st.dictionaries(st.sampled_from(["cuds", "args", "unloggedArgs", "bogus"]), json_values, max_size=3)


def check(r: httpx.Response, v2: bool) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        body: Any = r.json()
        if v2:
            assert body["status"] == r.status_code and body["message"]
        else:
            assert body["sys.Error"]["HTTPStatus"] == r.status_code and body["sys.Error"]["Message"]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, command=st.sampled_from(["c.sys.CUD", "c.shop.MakeOrder", "q.sys.Collection", "q.sys.Echo"]))
async def test_v1_bodies(client: httpx.AsyncClient, vvm: VVM, body: dict[str, Any], command: str) -> None:
    await make_shop_ws(client, vvm, SHOP_WS, ignore_existing=True)
    check(await client.post(f"/api/test/shop/{SHOP_WS}/{command}", json=body), v2=False)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(fields=st.dictionaries(names, json_values, max_size=5), method=st.sampled_from(["POST", "PATCH"]))
async def test_v2_docs(client: httpx.AsyncClient, vvm: VVM, fields: dict[str, Any], method: str) -> None:
    await make_shop_ws(client, vvm, SHOP_WS, ignore_existing=True)
    path = f"/api/v2/apps/test/shop/workspaces/{SHOP_WS}/docs/shop.Item"
    r = await client.request(method, path if method == "POST" else f"{path}/200001", json=fields)
    check(r, v2=True)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=64), wsid=st.text(max_size=12), resource=st.text(min_size=1, max_size=20))
async def test_v1_garbage(client: httpx.AsyncClient, raw: bytes, wsid: str, resource: str) -> None:
    path = f"/api/test/shop/{wsid or '1'}/{resource}".replace("?", "").replace("#", "")
    try:
        r = await client.post(path, content=raw)
    except httpx.InvalidURL:
        return
    assert r.status_code < 500, r.text
