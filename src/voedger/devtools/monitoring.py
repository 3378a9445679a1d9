"""Runs a real Prometheus and a real Alertmanager (Debian's packages) for development and tests.

``install`` puts Debian's ``prometheus`` and ``prometheus-alertmanager`` on the machine once
(``chromium`` too with ``--chromium``, for the monitor page's browser test); the classes here run
the binaries with configurations of their own in a folder the caller gives, on loopback ports,
and stop only the processes they started (by pid).

Usage::

    python -m voedger.devtools.monitoring install [--chromium]
    python -m voedger.devtools.monitoring check-rules       # promtool check rules on the shipped file
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voedger.devtools.debian import ensure_packages
from voedger.devtools.processes import Daemon

PACKAGES = ("prometheus", "prometheus-alertmanager")
BROWSER_PACKAGES = ("chromium",)
PROMETHEUS = "prometheus"
PROMTOOL = "promtool"
ALERTMANAGER = "prometheus-alertmanager"
"""Debian names Alertmanager's binary after its package."""


class MonitoringDevError(RuntimeError):
    """Installing, starting or asking Prometheus or Alertmanager failed; the message says why."""


def install(chromium: bool = False) -> list[str]:
    """Install what is missing (idempotent); returns the packages installed now."""
    return ensure_packages([*PACKAGES, *(BROWSER_PACKAGES if chromium else ())])


def binary(name: str) -> str:
    """The path of ``name`` (installing the packages first if it is missing)."""
    found = shutil.which(name)
    if found is None:
        install(chromium=name.startswith("chromium"))
        found = shutil.which(name)
    if found is None:
        raise MonitoringDevError(f"{name} is not on PATH even after installing its package")
    return found


def chromium() -> str:
    """The path of Debian's ``chromium`` (installing the package if it is missing); its wrapper
    script passes Playwright's flags on to the browser."""
    return binary("chromium")


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``promtool`` with ``args``; the caller reads its return code and output."""
    return subprocess.run(
        [binary(PROMTOOL), *args], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return json.loads(reply.read())


class _Daemon(Daemon):
    """A program this module started, serving HTTP on 127.0.0.1:``port``."""

    error = MonitoringDevError

    def __init__(self, workdir: Path, port: int) -> None:
        super().__init__(workdir)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def ready_path(self) -> str:
        return "/-/ready"

    def ready(self) -> bool:
        with urllib.request.urlopen(self.url + self.ready_path(), timeout=2) as reply:
            return bool(reply.status == 200)


class Prometheus(_Daemon):
    """A Prometheus scraping ``targets`` (job ``voedger``) with ``rule_files``, sending alerts
    to ``alertmanager`` (a URL), with short intervals for tests."""

    name = "prometheus"

    def __init__(
        self,
        workdir: Path,
        port: int,
        *,
        targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        alertmanager: str | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
    ) -> None:
        super().__init__(workdir, port)
        self.config = workdir / "prometheus.yml"
        config: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [
                {
                    "job_name": "voedger",
                    "scrape_timeout": scrape_interval,
                    "static_configs": [{"targets": list(targets)}],
                }
            ],
        }
        if alertmanager is not None:
            target = alertmanager.removeprefix("http://")
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]}
        # YAML is a superset of JSON: no YAML library needed to write the configuration.
        self.config.write_text(json.dumps(config, indent=2) + "\n")

    def command(self) -> list[str]:
        return [
            binary(PROMETHEUS),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]

    def query(self, promql: str, at: float | None = None) -> dict[str, Any]:
        """``/api/v1/query``: the ``data`` of a successful answer, else raises with Prometheus' error."""
        params = {"query": promql, **({"time": str(at)} if at is not None else {})}
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        try:
            answer = get_json(url)
        except urllib.error.HTTPError as exc:
            raise MonitoringDevError(f"query {promql!r} failed: {exc.read().decode(errors='replace')}") from exc
        if answer.get("status") != "success":
            raise MonitoringDevError(f"query {promql!r} failed: {answer}")
        data: dict[str, Any] = answer["data"]
        return data

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return alerts


class Alertmanager(_Daemon):
    """An Alertmanager sending every alert, and its resolution, to ``webhook`` at once."""

    name = "alertmanager"

    def __init__(self, workdir: Path, port: int, cluster_port: int, *, webhook: str) -> None:
        super().__init__(workdir, port)
        self.cluster_port = cluster_port
        self.config = workdir / "alertmanager.yml"
        config = {
            "route": {
                "receiver": "webhook",
                "group_by": ["alertname", "instance"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [{"name": "webhook", "webhook_configs": [{"url": webhook, "send_resolved": True}]}],
        }
        self.config.write_text(json.dumps(config, indent=2) + "\n")

    def command(self) -> list[str]:
        return [
            binary(ALERTMANAGER),
            f"--config.file={self.config}",
            f"--storage.path={self.workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--cluster.listen-address=127.0.0.1:{self.cluster_port}",
            f"--cluster.advertise-address=127.0.0.1:{self.cluster_port}",
            "--log.level=warn",
        ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voedger.devtools.monitoring", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("install", help="install Prometheus and Alertmanager (and Chromium) from Debian if missing")
    p.add_argument("--chromium", action="store_true", help="also the chromium package (monitor page tests)")
    sub.add_parser("check-rules", help="promtool check rules on the shipped alert rules")
    args = parser.parse_args(argv)
    if args.command == "install":
        done = install(chromium=args.chromium)
        print("installed: " + ", ".join(done) if done else "already installed")
        return 0
    from voedger.monitoring import RULES_FILE

    checked = promtool("check", "rules", str(RULES_FILE))
    sys.stdout.write(checked.stdout + checked.stderr)
    return checked.returncode


if __name__ == "__main__":
    sys.exit(main())
