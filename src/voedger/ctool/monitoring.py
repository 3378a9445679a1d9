"""Prometheus, Alertmanager and the node exporter ctool installs on every node: their files, the
web UI's password, and what ctool asks them.

Every node runs the three (Debian's binaries, each a program of the node's supervisord or, where
systemd runs the node's services, a unit of its own, :func:`systemd_units`; each on
the node's own address). Each Prometheus scrapes every server's metrics port (job ``voedger``),
every node exporter (job ``node``) and itself, evaluates ``voedger.monitoring.RULES_FILE`` and
sends to every Alertmanager; the Alertmanagers of an SE cluster are one gossip cluster, so an
alert is notified once. The web UIs take basic auth once ``ctool mon password`` has been run:
the web config holds bcrypt hashes only, of the operator's password (user ``admin``) and of a
token ctool generates (user ``ctool``), with which Prometheus scrapes itself and posts to the
Alertmanagers and ctool asks them; the token is kept 0600 beside cluster.json and on the nodes.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import bcrypt
import httpx
import yaml  # type: ignore[import-untyped]  # (PyYAML: with ansible-core, ctool's extra)

from voedger.ctool.atomic import write_atomic
from voedger.ctool.layout import LOGS
from voedger.ctool.layout import PROGRAMS as PROGRAMS_DIR
from voedger.ctool.state import Cluster, Node, Receiver
from voedger.monitoring import DASHBOARDS_DIR, RULES_FILE

METRICS_PORT = 8000
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
ALERTMANAGER_CLUSTER_PORT = 9094
NODE_EXPORTER_PORT = 9100

ADMIN_USER = "admin"
CTOOL_USER = "ctool"
TOKEN_FILE = "monitoring.token"
"""Beside cluster.json, 0600: the ``ctool`` user's password (never the operator's)."""
BCRYPT_ROUNDS = 10

CONF = PurePosixPath("etc/voedger/monitoring")
DATA = PurePosixPath("var/lib/voedger-monitoring")
GRAFANA = PurePosixPath("etc/voedger/grafana")
"""Grafana is not in Debian: its provisioning files are written here for a Grafana installed
by hand (``--config`` pointing at them, or copied to /etc/grafana/provisioning)."""

RECEIVER = "ctool"
ROUTE = {"group_by": ["alertname", "instance"], "group_wait": "10s", "group_interval": "1m", "repeat_interval": "4h"}


class MonitoringError(RuntimeError):
    """A monitoring configuration ctool cannot use; the message says why."""


def _yaml(data: Any, sort_keys: bool = True) -> str:
    return str(yaml.safe_dump(data, sort_keys=sort_keys))


def path(node: Node, relative: PurePosixPath, name: str = "") -> str:
    full = PurePosixPath(node.node_root) / relative
    return str(full / name) if name else str(full)


# --------------------------------------------------------------------------------------------
# The password and ctool's token


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()


def token_path(folder: Path) -> Path:
    return folder / TOKEN_FILE


def read_token(folder: Path) -> str:
    """ctool's token, or "" before ``ctool mon password``."""
    try:
        return token_path(folder).read_text().strip()
    except FileNotFoundError:
        return ""


def new_token(folder: Path) -> str:
    """A new token for the ``ctool`` user, written 0600 (created so, never readable by others)."""
    token = secrets.token_urlsafe(32)
    write_atomic(token_path(folder), token + "\n", 0o600)
    return token


def auth(folder: Path) -> tuple[str, str] | None:
    token = read_token(folder)
    return (CTOOL_USER, token) if token else None


# --------------------------------------------------------------------------------------------
# The files


def web_config(cluster: Cluster) -> str:
    """The web config of Prometheus and Alertmanager: bcrypt hashes, or no auth at all."""
    users = cluster.monitoring.web_users
    return _yaml({"basic_auth_users": dict(users)}) if users else ""


def prometheus_config(cluster: Cluster, node: Node) -> str:
    interval = cluster.monitoring.scrape_interval
    addresses = [n.address for n in cluster.nodes]
    basic_auth: dict[str, Any] = {}
    if cluster.monitoring.web_users:
        basic_auth = {"basic_auth": {"username": CTOOL_USER, "password_file": path(node, CONF, "ctool.token")}}
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "rule_files": [path(node, CONF, RULES_FILE.name)],
        "alerting": {
            "alertmanagers": [
                {**basic_auth, "static_configs": [{"targets": [f"{a}:{ALERTMANAGER_PORT}" for a in addresses]}]}
            ]
        },
        "scrape_configs": [
            {"job_name": "voedger", "static_configs": [{"targets": [f"{a}:{METRICS_PORT}" for a in addresses]}]},
            {"job_name": "node", "static_configs": [{"targets": [f"{a}:{NODE_EXPORTER_PORT}" for a in addresses]}]},
            {
                "job_name": "prometheus",
                **basic_auth,
                "static_configs": [{"targets": [f"{node.address}:{PROMETHEUS_PORT}"]}],
            },
        ],
    }
    return _yaml(config, sort_keys=False)


def _receiver_config(receiver: Receiver) -> tuple[str, dict[str, Any]]:
    if receiver.kind == "webhook":
        return "webhook_configs", {"url": receiver.target, "send_resolved": True}
    if receiver.kind == "email":
        return "email_configs", {
            "to": receiver.target,
            "from": receiver.sender,
            "smarthost": receiver.smarthost,
            "send_resolved": True,
        }
    if receiver.kind == "discord":
        return "discord_configs", {"webhook_url": receiver.target, "send_resolved": True}
    if receiver.kind == "slack":
        return "slack_configs", {"api_url": receiver.target, "send_resolved": True}
    raise MonitoringError(f"alert kind {receiver.kind!r} is not one ctool knows")


def alertmanager_config(cluster: Cluster) -> str:
    """The uploaded alertmanager.yml if any, else one receiver holding every ``ctool alert add``."""
    if cluster.monitoring.alertmanager_config:
        return cluster.monitoring.alertmanager_config
    receiver: dict[str, Any] = {"name": RECEIVER}
    for r in cluster.monitoring.receivers:
        key, value = _receiver_config(r)
        receiver.setdefault(key, []).append(value)
    return _yaml({"route": {"receiver": RECEIVER, **ROUTE}, "receivers": [receiver]}, sort_keys=False)


def alertmanager_cluster_args(cluster: Cluster, node: Node) -> str:
    """SE: the node's Alertmanager gossips with the others' on its own address; CE: no cluster."""
    if len(cluster.nodes) < 2:
        return "--cluster.listen-address="
    peers = [f"--cluster.peer={n.address}:{ALERTMANAGER_CLUSTER_PORT}" for n in cluster.nodes if n is not node]
    own = f"{node.address}:{ALERTMANAGER_CLUSTER_PORT}"
    return " ".join([f"--cluster.listen-address={own}", f"--cluster.advertise-address={own}", *peers])


def grafana_datasource(node: Node, token: str) -> str:
    """Grafana's data source: the node's Prometheus (as user ``ctool`` once a password is set)."""
    source: dict[str, Any] = {
        "name": "Prometheus",
        "type": "prometheus",
        "uid": "prometheus",
        "access": "proxy",
        "url": f"http://{node.address}:{PROMETHEUS_PORT}",
        "isDefault": True,
    }
    if token:
        source.update({"basicAuth": True, "basicAuthUser": CTOOL_USER, "secureJsonData": {"basicAuthPassword": token}})
    return _yaml({"apiVersion": 1, "datasources": [source]}, sort_keys=False)


def grafana_dashboards(node: Node) -> str:
    provider = {
        "name": "voedger",
        "type": "file",
        "options": {"path": path(node, GRAFANA, "dashboards")},
    }
    return _yaml({"apiVersion": 1, "providers": [provider]}, sort_keys=False)


COMMANDS = {
    "prometheus": (
        "/usr/bin/prometheus --config.file={conf}/prometheus.yml --web.config.file={conf}/web.yml "
        "--storage.tsdb.path={data}/prometheus --web.listen-address={address}:{prometheus_port} --log.level=warn",
        "{data}/prometheus",
    ),
    "alertmanager": (
        "/usr/bin/prometheus-alertmanager --config.file={conf}/alertmanager.yml --web.config.file={conf}/web.yml "
        "--storage.path={data}/alertmanager --web.listen-address={address}:{alertmanager_port} {cluster} "
        "--log.level=warn",
        "{data}/alertmanager",
    ),
    "node-exporter": (
        "/usr/bin/prometheus-node-exporter --web.listen-address={address}:{node_exporter_port} --log.level=warn",
        "{data}",
    ),
}
"""Per program, its command line and its working directory (Debian's binaries)."""
PROGRAM_COMMON = """\
autostart=true
autorestart=true
startsecs=2
stopsignal=TERM
stopwaitsecs=30
redirect_stderr=true
stdout_logfile_maxbytes=10MB
stdout_logfile_backups=2
"""
STOP_SECONDS = 30


def commands(cluster: Cluster, node: Node) -> dict[str, tuple[str, str]]:
    """The node's monitoring programs: name to (command line, working directory)."""
    values = {
        "address": node.address,
        "conf": path(node, CONF),
        "data": path(node, DATA),
        "prometheus_port": PROMETHEUS_PORT,
        "alertmanager_port": ALERTMANAGER_PORT,
        "node_exporter_port": NODE_EXPORTER_PORT,
        "cluster": alertmanager_cluster_args(cluster, node),
    }
    return {name: (command.format(**values), folder.format(**values)) for name, (command, folder) in COMMANDS.items()}


def supervisor_programs(cluster: Cluster, node: Node) -> str:
    """The node's supervisord programs of Prometheus, Alertmanager and the node exporter."""
    sections = [
        f"[program:{name}]\ncommand={command}\ndirectory={folder}\n{PROGRAM_COMMON}"
        f"stdout_logfile={path(node, LOGS)}/{name}.log\n"
        for name, (command, folder) in commands(cluster, node).items()
    ]
    head = (
        f"; Written by ctool: the monitoring of {node.address} (Debian's binaries; files under {path(node, CONF)}).\n"
    )
    return head + "\n".join(sections)


def systemd_units(cluster: Cluster, node: Node) -> dict[str, str]:
    """The node's systemd units of Prometheus, Alertmanager and the node exporter: path to
    content (``systemctl reload`` sends SIGHUP, as ``supervisorctl signal HUP`` does)."""
    from voedger.ctool import units

    return {
        units.unit_path(name): units.unit(
            units.unit_name(name).removesuffix(".service"),
            f"{name} of the Voedger node {node.address} (Debian's binary; files under {path(node, CONF)})",
            command,
            folder,
            STOP_SECONDS,
            reload=name != "node-exporter",
        )
        for name, (command, folder) in commands(cluster, node).items()
    }


def files(cluster: Cluster, node: Node, folder: Path) -> dict[str, tuple[str, str]]:
    """Every file the monitoring step writes on ``node``: path to (content, mode)."""
    token = read_token(folder) if cluster.monitoring.web_users else ""
    conf, grafana = path(node, CONF), path(node, GRAFANA)
    out = {
        f"{conf}/{RULES_FILE.name}": (RULES_FILE.read_text(), "0644"),
        f"{conf}/prometheus.yml": (prometheus_config(cluster, node), "0644"),
        f"{conf}/alertmanager.yml": (alertmanager_config(cluster), "0600"),
        f"{conf}/web.yml": (web_config(cluster), "0600"),
        f"{grafana}/provisioning/datasources/voedger.yml": (grafana_datasource(node, token), "0600"),
        f"{grafana}/provisioning/dashboards/voedger.yml": (grafana_dashboards(node), "0644"),
    }
    if node.service_manager == "systemd":
        out.update({unit: (text, "0644") for unit, text in systemd_units(cluster, node).items()})
    else:
        out[path(node, PROGRAMS_DIR, "monitoring.conf")] = (supervisor_programs(cluster, node), "0644")
    if token:
        out[f"{conf}/ctool.token"] = (token, "0600")
    for dashboard in sorted(DASHBOARDS_DIR.glob("*.json")):
        out[f"{grafana}/dashboards/{dashboard.name}"] = (dashboard.read_text(), "0644")
    return out


def node_files(cluster: Cluster, node: Node, folder: Path) -> dict[str, Any]:
    """The playbook's variables of one node for the monitoring step: the files go base64-encoded
    (Ansible would expand the ``{{ ... }}`` of the rules' and the dashboards' own templates)."""
    wanted = {
        "dirs": [path(node, DATA, "prometheus"), path(node, DATA, "alertmanager")],
        "files": {p: {"content": c, "mode": m} for p, (c, m) in files(cluster, node, folder).items()},
    }
    return {
        "mon_conf": path(node, CONF),
        "mon_files": base64.b64encode(json.dumps(wanted).encode()).decode(),
        "prometheus_port": PROMETHEUS_PORT,
        "alertmanager_port": ALERTMANAGER_PORT,
        "node_exporter_port": NODE_EXPORTER_PORT,
    }


# --------------------------------------------------------------------------------------------
# Checks on the machine running ctool (amtool, as the nodes do before they load a file)


def check_alertmanager_config(text: str) -> None:
    """Raises with amtool's words when ``text`` is not an alertmanager.yml Alertmanager takes."""
    amtool = shutil.which("amtool")
    if amtool is None:
        raise MonitoringError("amtool is not installed here (Debian's prometheus-alertmanager): cannot check the file")
    with tempfile.TemporaryDirectory(prefix="ctool-am-") as tmp:
        candidate = Path(tmp) / "alertmanager.yml"
        candidate.write_text(text)
        done = subprocess.run(
            [amtool, "check-config", str(candidate)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        said = (done.stdout + done.stderr).replace(str(candidate), "the file").strip()
        raise MonitoringError(f"amtool check-config refuses it:\n{said}")


# --------------------------------------------------------------------------------------------
# What ctool asks Prometheus and Alertmanager (ctool status)


def targets_up(address: str, credentials: tuple[str, str] | None, timeout: float = 3.0) -> str:
    """``up/total`` of the node's Prometheus's active targets, with the ones down named."""
    try:
        reply = httpx.get(
            f"http://{address}:{PROMETHEUS_PORT}/api/v1/targets?state=active", auth=credentials, timeout=timeout
        )
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    if reply.status_code != 200:
        return f"HTTP {reply.status_code}"
    active = reply.json()["data"]["activeTargets"]
    down = [f"{t['labels']['job']}@{t['labels']['instance']}" for t in active if t.get("health") != "up"]
    text = f"{len(active) - len(down)}/{len(active)} targets up"
    return text + (" (down: " + ", ".join(down) + ")" if down else "")


def alertmanager_state(address: str, credentials: tuple[str, str] | None, timeout: float = 3.0) -> str:
    """The node's Alertmanager's cluster status and peer count (``disabled``: CE, no cluster)."""
    try:
        reply = httpx.get(f"http://{address}:{ALERTMANAGER_PORT}/api/v2/status", auth=credentials, timeout=timeout)
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    if reply.status_code != 200:
        return f"HTTP {reply.status_code}"
    status = reply.json().get("cluster", {})
    peers = status.get("peers") or []
    if status.get("status") == "disabled":
        return "up, no cluster"
    return f"{status.get('status', '?')}, {len(peers)} peers"
