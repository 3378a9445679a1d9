"""An alert end to end: a real Prometheus (the shipped rules) and a real Alertmanager watch a real
``voedger server``; the server is killed, ``VoedgerServerDown`` reaches a webhook receiver, and
its resolution follows when the server is back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.webhook import WebhookReceiver
from tests.router.test_crash import start_server
from tests.support import free_port, wait_ready
from voedger.devtools.monitoring import Alertmanager, Prometheus
from voedger.monitoring import RULES_FILE

pytestmark = [pytest.mark.monitoring, pytest.mark.timeout(240)]


async def wait_for(probe: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(30)


async def test_server_down_alert_reaches_the_webhook_and_resolves(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    target = f"127.0.0.1:{metrics_port}"
    server_args = ("--metrics-port", str(metrics_port))
    server = start_server(tmp_path / "data", port, tmp_path / "server.log", *server_args)
    with WebhookReceiver() as hook:
        am = Alertmanager(tmp_path / "am", free_port(), free_port(), webhook=hook.url)
        prom = Prometheus(
            tmp_path / "prom", free_port(), targets=[target], rule_files=[RULES_FILE], alertmanager=am.url
        )
        try:
            await wait_ready(port, server)
            await asyncio.to_thread(am.start)
            await asyncio.to_thread(prom.start)

            def scraped_up() -> bool:
                result = prom.query(f'up{{job="voedger",instance="{target}"}}')["result"]
                return bool(result) and result[0]["value"][1] == "1"

            await wait_for(scraped_up, 30, "Prometheus to scrape the server")
            assert prom.alerts() == []  # a healthy server raises nothing

            os.kill(server.pid, signal.SIGKILL)
            server.wait(10)
            killed = time.monotonic()

            def fired() -> list[dict[str, Any]]:
                return [
                    a
                    for _, status, a in hook.alerts()
                    if status == "firing" and a["labels"]["alertname"] == "VoedgerServerDown"
                ]

            alert = (await wait_for(fired, 90, "VoedgerServerDown at the webhook"))[0]
            fired_after = time.monotonic() - killed
            assert alert["labels"]["instance"] == target
            assert alert["labels"]["severity"] == "critical"
            assert alert["annotations"]["summary"] == f"Voedger server {target} is down"
            assert "systemctl status voedger" in alert["annotations"]["runbook"]
            assert 30 <= fired_after < 60, fired_after  # the rule's 30 s, and a few seconds of scrapes

            server = start_server(tmp_path / "data", port, tmp_path / "server-2.log", *server_args)
            await wait_ready(port, server)
            restarted = time.monotonic()

            def resolved() -> list[dict[str, Any]]:
                return [
                    a
                    for _, status, a in hook.alerts()
                    if a["status"] == "resolved" and a["labels"]["alertname"] == "VoedgerServerDown"
                ]

            done = (await wait_for(resolved, 60, "the resolution at the webhook"))[0]
            resolved_after = time.monotonic() - restarted
            assert done["labels"]["instance"] == target
            assert resolved_after < 30, resolved_after
            names = {a["labels"]["alertname"] for _, _, a in hook.alerts()}
            assert names == {"VoedgerServerDown"}, names  # nothing else went off on the way
            print(f"\nfired {fired_after:.1f} s after the kill, resolved {resolved_after:.1f} s after the restart")
        finally:
            stop(server)
            await asyncio.to_thread(prom.stop)
            await asyncio.to_thread(am.stop)
