"""The OpenAPI document of the whole HTTP API (voedger.router.openapi): valid OpenAPI 3, true to
the router's routes, and a running server (127.0.0.1, SQLite, the test shop) fuzzed against it
with schemathesis: no 5xx, no status, content type, body or header outside the document.

The unit tier sends 12 examples per operation to each of two servers (well under a minute);
``VOEDGER_FUZZ_EXAMPLES`` asks for more (``make fuzz-api``: 300)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from tests.router.conftest import SHOP_DIR
from tests.support import free_port
from voedger.router.app import build_app
from voedger.router.openapi import STREAM, api_document
from voedger.structs.wsid import app_wsid, new_wsid
from voedger.vvm.server import VVM, ServerConfig

APP_WS = app_wsid(1, 0)
SHOP_WS = new_wsid(1, 1)
"""Stands for the shop's workspace, whose WSID is known once the server made it."""
EXAMPLES = int(os.environ.get("VOEDGER_FUZZ_EXAMPLES", "12"))
NAMES = {
    "commands": ["shop.MakeOrder", "sys.CUD", "sys.Init", "shop.Item"],
    "queries": ["sys.Echo", "sys.Collection", "sys.GRCount", "sys.State", "shop.MakeOrder"],
    "views": ["shop.Sales", "shop.ItemCount", "shop.Item"],
    "cdocs": ["shop.Item", "shop.Barcode", "shop.Tab", "shop.Sales"],
    "docs": ["shop.Item", "shop.Barcode", "shop.Tab", "shop.TabLine", "shop.Order", "shop.Picture", "shop.ShopDesc"],
}


def test_the_document_is_valid_openapi() -> None:
    validate(api_document())
    validate(api_document("test/shop"))


def test_the_document_names_every_route_of_the_router(tmp_path: Path) -> None:
    """Each route of the ASGI app, with each of its methods, is in the document, and no more."""
    fast = build_app(VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[])), {})
    served = {
        (r.path, m)
        for r in fast.app.routes
        if isinstance(r, Route) and r.methods
        for m in r.methods
        if m != "HEAD"  # Starlette's, for every GET
    }
    documented = {(path, method.upper()) for path, item in api_document()["paths"].items() for method in item}
    assert served == documented, (served - documented, documented - served)


def shop_document() -> dict[str, Any]:
    """The document aimed at the test shop: its workspaces and its types, so the fuzzer reaches
    the processors instead of stopping at "no such workspace" (random values stay possible for
    the text parameters through the negative mode)."""
    doc = copy.deepcopy(api_document("test/shop"))
    for item in doc["paths"].values():
        for method in [m for m, op in item.items() if op.get(STREAM)]:
            del item[method]  # a stream lasts while its client stays (tests/n10n calls these)
    for path, item in doc["paths"].items():
        area = path.split("/workspaces/{wsid}/")[1].split("/")[0] if "/workspaces/{wsid}/" in path else ""
        for op in item.values():
            for p in op.get("parameters", []):
                if p["name"] == "wsid":
                    p["schema"] = {"type": "integer", "enum": [APP_WS, SHOP_WS, SHOP_WS + 1]}
                elif p["name"] == "name" and area in NAMES:
                    p["schema"] = {"type": "string", "enum": NAMES[area]}
                elif p["name"] == "id":
                    p["schema"] = {"type": "integer", "enum": [1, 200_001, 200_002, 65_537, 2**63]}
                elif p["name"] == "resource":
                    p["schema"] = {"type": "string", "enum": ["c.sys.CUD", "q.sys.Echo", "c.shop.MakeOrder", "x.y"]}
                elif p["name"] == "workspace":
                    p["schema"] = {"type": "string", "enum": ["shop.ShopWS", "sys.Workspace", "no.Such"]}
                elif p["name"] == "role":
                    p["schema"] = {"type": "string", "enum": ["shop.ApiClient", "shop.Clerk", "sys.Nobody"]}
    return doc


schema = schemathesis.openapi.from_dict(shop_document())


@pytest.fixture(scope="module", params=["insecure-dev", "auth"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """``voedger server`` on 127.0.0.1 with SQLite and the test shop, with a ShopWS workspace made
    first: (base URL, its WSID). Once with ``--insecure-dev``, so the fuzzer goes past the ACL, and
    once with authentication on (anonymous requests, refused or not)."""
    data: Path = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    cmd = [sys.executable, "-m", "voedger.cli.voedger", "server", "--data-dir", str(data), "--port", str(port)]
    cmd += ["--app", f"test/shop={SHOP_DIR}"]
    secure = request.param == "auth"
    if not secure:
        cmd.append("--insecure-dev")
    log = open(data / "server.log", "wb")  # noqa: SIM115 - the child writes it
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (data / "server.log").read_text()
            try:
                if httpx.get(f"{base}/api/check").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        if secure:  # the workspace cannot be made anonymously: fuzz with a WSID nobody holds
            yield base, new_wsid(1, 123_456)
            return
        v2 = f"{base}/api/v2/apps/test/shop/workspaces/{APP_WS}"
        args = {"WSName": "corner", "WSKind": "shop.ShopDesc", "WSKindInitializationData": '{"Name": "Corner"}'}
        r = httpx.post(f"{v2}/commands/sys.InitChildWorkspace", json={"args": args})
        assert r.status_code == 200, r.text
        params = {"args": '{"WSName": "corner"}', "keys": "WSID,WSError"}
        while True:
            r = httpx.get(f"{v2}/queries/sys.QueryChildWorkspaceByName", params=params)
            assert r.status_code == 200, r.text
            row = r.json()["results"][0]
            assert not row["WSError"], row
            if row["WSID"]:
                break
            assert time.monotonic() < deadline, "the shop workspace was not made"
            time.sleep(0.1)
        yield base, row["WSID"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        text = (data / "server.log").read_text(errors="replace")
        assert "Traceback" not in text, text[-4000:]


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_fuzz_the_running_server(case: schemathesis.Case, server: tuple[str, int]) -> None:
    base, shop = server
    if case.path_parameters and case.path_parameters.get("wsid") == SHOP_WS:
        case.path_parameters["wsid"] = shop  # the placeholder of the shop's workspace
    case.call_and_validate(base_url=base, checks=CHECKS, timeout=30)
