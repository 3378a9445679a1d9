"""Logs: the access log's fields, JSON lines, and no token, password or secret in any line."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

import httpx
import pytest

from tests.router.conftest import V1
from tests.router.test_crash import start_server
from tests.support import free_port, wait_ready
from voedger.logs import MASK, JsonFormatter, RedactingFilter, redact
from voedger.router.accesslog import AccessLog, request_fields

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNlY3JldA"
PASSWORD = "pa55-w0rd-never-logged"


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        (
            "/api/test/shop/140737488420864/c.sys.CUD",
            {"app": "test/shop", "wsid": 140737488420864, "resource": "c.sys.CUD"},
        ),
        (
            "/api/v2/apps/test/shop/workspaces/42/docs/shop.Item",
            {"app": "test/shop", "wsid": 42, "resource": "docs/shop.Item"},
        ),
        ("/api/v2/apps/test/shop/auth/login", {"app": "test/shop", "resource": "auth/login"}),
        ("/blob/test/shop/42/abc", {"app": "test/shop", "wsid": 42, "resource": "blob"}),
        ("/api/check", {}),
        ("/", {}),
    ],
)
def test_what_a_path_says(path: str, fields: dict[str, object]) -> None:
    assert request_fields(path) == fields


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {JWT}",
        f"bearer {JWT[:20]}",
        f'{{"login": "alice", "password": "{PASSWORD}"}}',
        f"newPassword={PASSWORD}&x=1",
        f'"principalToken":"{JWT}"',
        f"cluster_secret: {PASSWORD}",
        f"a token {JWT} in the middle",
    ],
)
def test_credentials_are_masked(text: str) -> None:
    masked = redact(text)
    assert MASK in masked
    assert PASSWORD not in masked and JWT[:20] not in masked


def test_plain_messages_are_left_alone() -> None:
    for text in ("serving test/shop, sys/cluster", "partition 3 moved to p2 (epoch 7)", "GET /api/check 200"):
        assert redact(text) == text


def test_a_json_line_has_its_fields_and_no_secret_even_in_an_exception() -> None:
    record = logging.LogRecord("voedger.x", logging.ERROR, __file__, 1, "login of %s failed", ("alice",), None)
    record.fields = {"app": "test/shop", "status": 401}  # type: ignore[attr-defined]
    try:
        raise ValueError(f"bad password={PASSWORD}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "error" and line["logger"] == "voedger.x"
    assert line["message"] == "login of alice failed"
    assert (line["app"], line["status"]) == ("test/shop", 401)
    assert "ValueError" in line["error"] and PASSWORD not in json.dumps(line)
    assert line["time"].endswith("Z")


async def test_the_access_log_has_a_line_per_request_without_headers_or_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=AccessLog(app)), base_url="http://t")  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="voedger.access"):
        async with client:
            await client.post(
                f"/api/test/shop/42/c.sys.CUD?token={JWT}", headers={"Authorization": f"Bearer {JWT}"}, json={}
            )
    (record,) = [r for r in caplog.records if r.name == "voedger.access"]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["app"] == "test/shop" and fields["wsid"] == 42 and fields["resource"] == "c.sys.CUD"
    assert fields["status"] == 201 and fields["method"] == "POST" and fields["duration_ms"] >= 0
    assert fields["path"] == "/api/test/shop/42/c.sys.CUD"
    assert JWT not in record.getMessage() and JWT not in json.dumps(fields)


async def test_a_server_with_json_logs_writes_json_lines_without_credentials(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    proc = start_server(tmp_path / "data", port, log, "--log-format", "json", "--access-log")
    try:
        await wait_ready(port, proc)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            auth = {"Authorization": f"Bearer {JWT}"}
            assert (await c.post(f"{V1}/q.sys.Echo", json={"args": {"Text": "hi"}}, headers=auth)).status_code == 200
            login = {"login": "alice", "password": PASSWORD}
            await c.post("/api/v2/apps/test/shop/auth/login", json=login)
            assert (await c.get(f"/nowhere?token={JWT}")).status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
    text = log.read_text()
    assert JWT[:30] not in text and PASSWORD not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    others = [line for line in text.splitlines() if not line.startswith("{")]
    assert all(line.startswith(("!", "  ")) for line in others), others  # only the --insecure-dev banner
    access = [line for line in lines if line["logger"] == "voedger.access"]
    echo = next(a for a in access if a.get("resource") == "q.sys.Echo")
    assert (echo["app"], echo["status"], echo["method"]) == ("test/shop", 200, "POST")
    assert echo["wsid"] > 0 and echo["duration_ms"] > 0
    login_line = next(a for a in access if a.get("resource") == "auth/login")
    assert login_line["status"] >= 400  # no such user
    assert any(a["path"] == "/nowhere" and a["status"] == 404 for a in access)
    assert any(line["logger"] == "voedger.server" and line["message"].startswith("serving") for line in lines)
