"""``cluster.json``: the cluster's desired and actual state, the pending command, and checks.

The shape follows Voedger's ctool (keys in its spelling): an edition, the cluster's actual and
desired version, the command being carried out (``Cmd``) and per node its role, the actual
state (what is installed) and the desired state (what the pending command is to install, with
the steps already done). The file is rewritten atomically after every change, so a command cut
anywhere leaves a file that ``ctool repeat`` can finish from.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from voedger.ctool.atomic import write_atomic

CLUSTER_FILE = "cluster.json"
EDITIONS = ("CE", "SE")
ROLES = {"CE": ("N1Node",), "SE": ("DBAppNode",)}
SE_MIN_NODES = 3
COMMANDS = ("init", "acme", "mon", "alert", "upgrade", "restore", "replace")
"""The commands a pending ``Cmd`` may be."""
_SEMVER = re.compile(r"^\d+\.\d+\.\d+([-+].*)?$")


class StateError(RuntimeError):
    """``cluster.json`` is missing, unreadable or inconsistent; the message says which."""


@dataclass(slots=True)
class NodeState:
    """What a node runs (actual) or is to run (desired)."""

    address: str
    version: str
    steps_done: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Address": self.address, "NodeVersion": self.version}
        if self.steps_done:
            out["StepsDone"] = list(self.steps_done)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> NodeState | None:
        if data is None:
            return None
        if not isinstance(data, dict):
            raise StateError(f"{where} must be an object or null")
        steps = data.get("StepsDone", [])
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise StateError(f"{where}.StepsDone must be a list of step names")
        return cls(address=str(data.get("Address", "")), version=str(data.get("NodeVersion", "")), steps_done=steps)


@dataclass(slots=True)
class Node:
    name: str
    role: str
    node_root: str
    actual: NodeState | None = None
    desired: NodeState | None = None
    error: str = ""
    jmx_port: int = 0
    """SE: the port of the node's Cassandra JMX listener, on 127.0.0.1 only (0: none)."""
    service_manager: str = ""
    """What runs the node's services: ``systemd`` (units) or ``supervisord`` (programs of
    ctool's own supervisord), as the ``prepare`` step found; "" (not asked yet): supervisord."""

    @property
    def address(self) -> str:
        """Where the node is reached: the desired address while a command is pending."""
        state = self.desired or self.actual
        return state.address if state else ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Name": self.name,
            "NodeRole": self.role,
            "NodeRoot": self.node_root,
            "ActualNodeState": self.actual.to_json() if self.actual else None,
            "DesiredNodeState": self.desired.to_json() if self.desired else None,
        }
        if self.jmx_port:
            out["JMXPort"] = self.jmx_port
        if self.service_manager:
            out["ServiceManager"] = self.service_manager
        if self.error:
            out["Error"] = self.error
        return out

    @classmethod
    def from_json(cls, data: Any, index: int) -> Node:
        where = f"Nodes[{index}]"
        if not isinstance(data, dict):
            raise StateError(f"{where} must be an object")
        return cls(
            name=str(data.get("Name", "")),
            role=str(data.get("NodeRole", "")),
            node_root=str(data.get("NodeRoot", "/")),
            actual=NodeState.from_json(data.get("ActualNodeState"), f"{where}.ActualNodeState"),
            desired=NodeState.from_json(data.get("DesiredNodeState"), f"{where}.DesiredNodeState"),
            error=str(data.get("Error", "")),
            jmx_port=_int(data.get("JMXPort", 0), f"{where}.JMXPort"),
            service_manager=str(data.get("ServiceManager", "")),
        )


ALERT_KINDS = ("webhook", "email", "discord", "slack")
"""The Alertmanager receivers ``ctool alert add`` knows (each an Alertmanager ``*_configs``)."""


@dataclass(slots=True)
class Receiver:
    """Where Alertmanager sends the alerts: a URL (webhook, discord, slack) or an e-mail address."""

    kind: str
    target: str
    smarthost: str = ""
    sender: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Kind": self.kind, "Target": self.target}
        if self.kind == "email":
            out.update({"Smarthost": self.smarthost, "From": self.sender})
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> Receiver:
        if not isinstance(data, dict):
            raise StateError(f"{where} must be an object")
        return cls(
            kind=str(data.get("Kind", "")),
            target=str(data.get("Target", "")),
            smarthost=str(data.get("Smarthost", "")),
            sender=str(data.get("From", "")),
        )


@dataclass(slots=True)
class Monitoring:
    """Prometheus, Alertmanager and the node exporter of every node: what ctool renders for them.

    ``web_users`` are bcrypt hashes only (``admin``: the operator's password; ``ctool``: the
    token ctool keeps beside cluster.json, 0600). ``alertmanager_config`` is an uploaded
    alertmanager.yml, used instead of the one rendered from ``receivers`` when set.
    """

    scrape_interval: str = "15s"
    web_users: dict[str, str] = field(default_factory=dict)
    receivers: list[Receiver] = field(default_factory=list)
    alertmanager_config: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ScrapeInterval": self.scrape_interval}
        if self.web_users:
            out["WebUsers"] = dict(self.web_users)
        out["Receivers"] = [r.to_json() for r in self.receivers]
        if self.alertmanager_config:
            out["AlertmanagerConfig"] = self.alertmanager_config
        return out

    @classmethod
    def from_json(cls, data: Any) -> Monitoring:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise StateError("Monitoring must be an object")
        users = data.get("WebUsers", {})
        receivers = data.get("Receivers", [])
        if not isinstance(users, dict) or not isinstance(receivers, list):
            raise StateError("Monitoring.WebUsers must be an object and Monitoring.Receivers a list")
        return cls(
            scrape_interval=str(data.get("ScrapeInterval", "15s")),
            web_users={str(k): str(v) for k, v in users.items()},
            receivers=[Receiver.from_json(r, f"Monitoring.Receivers[{i}]") for i, r in enumerate(receivers)],
            alertmanager_config=str(data.get("AlertmanagerConfig", "")),
        )


def _int(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StateError(f"{where} must be a number") from None


@dataclass(frozen=True, slots=True)
class App:
    """An application the servers run from an image (``vpm build``): ``--app NAME=IMAGE``."""

    name: str
    image: str

    def to_json(self) -> dict[str, str]:
        return {"Name": self.name, "Image": self.image}


@dataclass(slots=True)
class Command:
    kind: str
    args: list[str]

    def __str__(self) -> str:
        return " ".join([self.kind, *self.args])


@dataclass(slots=True)
class Acme:
    """``ctool acme``: the servers serve HTTPS on ``https_port`` with a certificate for
    ``domains`` ordered by ACME, and answer the CA's challenges on the cluster's HTTP port."""

    domains: list[str]
    https_port: int = 443
    directory: str = ""
    """The CA's directory ("": the server's default, Let's Encrypt)."""
    ca_bundle: str = ""
    """A file of this machine with the CAs of the CA's own HTTPS, copied to the nodes."""
    email: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Domains": list(self.domains), "HTTPSPort": self.https_port}
        for key, value in (("Directory", self.directory), ("CABundle", self.ca_bundle), ("Email", self.email)):
            if value:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, data: Any) -> Acme | None:
        if data is None:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("Domains", []), list):
            raise StateError("Acme must be an object with a list of Domains")
        try:
            https_port = int(data.get("HTTPSPort", 443))
        except (TypeError, ValueError) as exc:
            raise StateError(f"Acme.HTTPSPort must be a number: {exc}") from None
        return cls(
            domains=[str(d) for d in data.get("Domains", [])],
            https_port=https_port,
            directory=str(data.get("Directory", "")),
            ca_bundle=str(data.get("CABundle", "")),
            email=str(data.get("Email", "")),
        )


@dataclass(slots=True)
class Scylla:
    """``init SE --database scylla``: ScyllaDB from its own apt repository instead of Cassandra
    (real hosts run by systemd only). ``list_url``: the repository's list file, as Scylla's
    install page gives it for a version; ``key_file``: its signing key, a file of this machine."""

    list_url: str
    key_file: str
    developer_mode: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"List": self.list_url, "Key": self.key_file, "DeveloperMode": self.developer_mode}

    @classmethod
    def from_json(cls, data: Any) -> Scylla | None:
        if data is None:
            return None
        if not isinstance(data, dict):
            raise StateError("Scylla must be an object with List and Key")
        return cls(
            list_url=str(data.get("List", "")),
            key_file=str(data.get("Key", "")),
            developer_mode=bool(data.get("DeveloperMode", False)),
        )


@dataclass(slots=True)
class Cron:
    """``ctool backup cron``: when the backups run (a cron schedule), how long they are kept
    (``ExpireTime``, "" for ever) and the cron.d file on the machine running ctool (``File``)."""

    backup: str
    expire_time: str = ""
    file: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"Backup": self.backup}
        if self.expire_time:
            out["ExpireTime"] = self.expire_time
        if self.file:
            out["File"] = self.file
        return out

    @classmethod
    def from_json(cls, data: Any) -> Cron | None:
        if data is None or data == {}:
            return None
        if not isinstance(data, dict):
            raise StateError("Cron must be an object with Backup (a cron schedule)")
        return cls(
            backup=str(data.get("Backup", "")),
            expire_time=str(data.get("ExpireTime", "")),
            file=str(data.get("File", "")),
        )


@dataclass(slots=True)
class Cluster:
    edition: str
    ssh_port: int
    ssh_user: str
    ssh_key: str
    known_hosts: str
    http_port: int
    server_wheel: str = ""
    cassandra_jars: str = ""
    cassandra_heap: str = ""
    actual_version: str = ""
    desired_version: str = ""
    cmd: Command | None = None
    last_attempt_error: str = ""
    nodes: list[Node] = field(default_factory=list)
    acme: Acme | None = None
    """Domains the servers order their certificate for (``ctool acme``); None: plain HTTP."""
    monitoring: Monitoring = field(default_factory=Monitoring)
    apps: list[App] = field(default_factory=list)
    replaced_addresses: list[str] = field(default_factory=list)
    """Addresses of nodes ``ctool replace`` took out: never to be used again in the cluster."""
    cron: Cron | None = None
    """The scheduled backups (``ctool backup cron``); None: none."""
    scylla: Scylla | None = None
    """SE's database is ScyllaDB from its repository (``init --database scylla``); None: Cassandra."""

    @property
    def database(self) -> str:
        """SE's database: ``cassandra`` or ``scylla`` ("" for CE: SQLite)."""
        if self.edition != "SE":
            return ""
        return "scylla" if self.scylla is not None else "cassandra"

    def node(self, host: str) -> Node:
        for node in self.nodes:
            if host in (node.name, node.address):
                return node
        raise StateError(f"no node {host} in the cluster")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Edition": self.edition,
            "ActualClusterVersion": self.actual_version,
        }
        if self.desired_version:
            out["DesiredClusterVersion"] = self.desired_version
        out.update(
            {
                "SSHPort": self.ssh_port,
                "SSHUser": self.ssh_user,
                "SSHKey": self.ssh_key,
                "KnownHosts": self.known_hosts,
                "HTTPPort": self.http_port,
                "ServerWheel": self.server_wheel,
            }
        )
        if self.edition == "SE":
            out["Database"] = self.database
            if self.scylla is not None:
                out["Scylla"] = self.scylla.to_json()
            else:
                out["CassandraJars"] = self.cassandra_jars
                out["CassandraHeap"] = self.cassandra_heap
        if self.apps:
            out["Apps"] = [a.to_json() for a in self.apps]
        if self.cmd:
            out["Cmd"] = {"Kind": self.cmd.kind, "Args": list(self.cmd.args)}
        if self.last_attempt_error:
            out["LastAttemptError"] = self.last_attempt_error
        if self.acme is not None:
            out["Acme"] = self.acme.to_json()
        out["Monitoring"] = self.monitoring.to_json()
        if self.cron is not None:
            out["Cron"] = self.cron.to_json()
        if self.replaced_addresses:
            out["ReplacedAddresses"] = list(self.replaced_addresses)
        out["Nodes"] = [n.to_json() for n in self.nodes]
        return out

    @classmethod
    def from_json(cls, data: Any) -> Cluster:
        if not isinstance(data, dict):
            raise StateError("the top level must be an object")
        cmd = data.get("Cmd")
        command = None
        if cmd is not None:
            if not isinstance(cmd, dict) or not isinstance(cmd.get("Args", []), list):
                raise StateError("Cmd must be an object with Kind and Args")
            command = Command(kind=str(cmd.get("Kind", "")), args=[str(a) for a in cmd.get("Args", [])])
        nodes = data.get("Nodes", [])
        if not isinstance(nodes, list):
            raise StateError("Nodes must be a list")
        apps = data.get("Apps", [])
        if not isinstance(apps, list) or not all(isinstance(a, dict) for a in apps):
            raise StateError("Apps must be a list of objects with Name and Image")
        replaced = data.get("ReplacedAddresses", [])
        if not isinstance(replaced, list) or not all(isinstance(a, str) for a in replaced):
            raise StateError("ReplacedAddresses must be a list of addresses")
        try:
            ssh_port = int(data.get("SSHPort", 22))
            http_port = int(data.get("HTTPPort", 80))
        except (TypeError, ValueError) as exc:
            raise StateError(f"SSHPort and HTTPPort must be numbers: {exc}") from None
        return cls(
            edition=str(data.get("Edition", "")),
            ssh_port=ssh_port,
            ssh_user=str(data.get("SSHUser", "")),
            ssh_key=str(data.get("SSHKey", "")),
            known_hosts=str(data.get("KnownHosts", "")),
            http_port=http_port,
            server_wheel=str(data.get("ServerWheel", "")),
            cassandra_jars=str(data.get("CassandraJars", "")),
            cassandra_heap=str(data.get("CassandraHeap", "")),
            actual_version=str(data.get("ActualClusterVersion", "")),
            desired_version=str(data.get("DesiredClusterVersion", "")),
            cmd=command,
            last_attempt_error=str(data.get("LastAttemptError", "")),
            nodes=[Node.from_json(n, i) for i, n in enumerate(nodes)],
            acme=Acme.from_json(data.get("Acme")),
            monitoring=Monitoring.from_json(data.get("Monitoring")),
            apps=[App(name=str(a.get("Name", "")), image=str(a.get("Image", ""))) for a in apps],
            replaced_addresses=list(replaced),
            cron=Cron.from_json(data.get("Cron")),
            scylla=Scylla.from_json(data.get("Scylla")),
        )


def node_name(edition: str, index: int) -> str:
    """Voedger's node names: ``n1-node`` for CE; here ``node-1`` ... for SE."""
    return "n1-node" if edition == "CE" else f"node-{index + 1}"


def node_root_for(template: str, host: str) -> str:
    """``--node-root`` for one node: ``{host}`` is replaced by the node's address."""
    return template.replace("{host}", host)


# --------------------------------------------------------------------------------------------
# The file


def cluster_file(folder: Path) -> Path:
    return folder / CLUSTER_FILE


def load(folder: Path) -> Cluster:
    path = cluster_file(folder)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StateError(f"no {CLUSTER_FILE} in {folder}: run ctool init first") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{path} is not JSON: {exc}") from None
    return Cluster.from_json(data)


def save(cluster: Cluster, folder: Path) -> None:
    """Write ``cluster.json`` atomically: a reader sees the old file or the new one, whole."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(cluster_file(folder), json.dumps(cluster.to_json(), indent=2) + "\n", 0o600)


# --------------------------------------------------------------------------------------------
# Consistency


def problems(cluster: Cluster) -> list[str]:
    """Everything that makes the configuration inconsistent; empty when it is valid."""
    found: list[str] = []
    if cluster.edition not in EDITIONS:
        found.append(f"Edition is {cluster.edition!r}: expected CE or SE")
    if not 0 < cluster.ssh_port < 65536:
        found.append(f"SSHPort {cluster.ssh_port} is not a port number")
    if not 0 < cluster.http_port < 65536:
        found.append(f"HTTPPort {cluster.http_port} is not a port number")
    if not cluster.ssh_user:
        found.append("SSHUser is empty")
    for label, version in (
        ("ActualClusterVersion", cluster.actual_version),
        ("DesiredClusterVersion", cluster.desired_version),
    ):
        if version and not _SEMVER.match(version):
            found.append(f"{label} {version!r} is not a version (x.y.z)")
    if cluster.cmd is None and cluster.desired_version:
        found.append("DesiredClusterVersion is set but no command (Cmd) is pending")
    if cluster.cmd is not None and cluster.cmd.kind not in COMMANDS:
        found.append(f"Cmd.Kind {cluster.cmd.kind!r} is not a command ctool knows")
    if cluster.cmd is None and not cluster.actual_version:
        found.append("no command is pending and ActualClusterVersion is empty: the cluster was never installed")

    if cluster.scylla is not None:
        if cluster.edition != "SE":
            found.append("Scylla is for SE clusters only")
        if not re.fullmatch(r"https?://\S+", cluster.scylla.list_url):
            found.append(f"Scylla.List {cluster.scylla.list_url!r} is not an http(s) URL")
        if not cluster.scylla.key_file:
            found.append("Scylla.Key is empty: the repository's signing key")
        for node in cluster.nodes:
            if node.node_root != "/":
                found.append(f"node {node.name}: Scylla is installed on hosts whose NodeRoot is /")
    elif cluster.edition == "SE" and not re.fullmatch(r"\d+[MG]", cluster.cassandra_heap):
        found.append(f"CassandraHeap {cluster.cassandra_heap!r} is not a heap size such as 1G or 768M")
    if cluster.acme is not None:
        if not cluster.acme.domains:
            found.append("Acme lists no Domains")
        if not 0 < cluster.acme.https_port < 65536:
            found.append(f"Acme.HTTPSPort {cluster.acme.https_port} is not a port number")
        elif cluster.acme.https_port == cluster.http_port:
            found.append(f"Acme.HTTPSPort {cluster.acme.https_port} is the HTTPPort, where the challenges are answered")
        if cluster.edition == "SE":
            found.append("Acme is for CE clusters only")
    if not re.fullmatch(r"\d+[smh]", cluster.monitoring.scrape_interval):
        found.append(f"Monitoring.ScrapeInterval {cluster.monitoring.scrape_interval!r} is not a duration such as 15s")
    for i, receiver in enumerate(cluster.monitoring.receivers):
        found.extend(f"Monitoring.Receivers[{i}]: {p}" for p in receiver_problems(receiver))
    for app in cluster.apps:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", app.name):
            found.append(f"Apps: {app.name!r} is not an application name (owner/name)")
        if not app.image:
            found.append(f"Apps: {app.name} has no Image")
    count = len(cluster.nodes)
    if cluster.edition == "CE" and count != 1:
        found.append(f"a CE cluster has one node, this one has {count}")
    if cluster.edition == "SE" and count < SE_MIN_NODES:
        found.append(f"an SE cluster has {SE_MIN_NODES} nodes or more, this one has {count}")
    seen_names: set[str] = set()
    seen_addresses: set[str] = set()
    roles = ROLES.get(cluster.edition, ())
    for i, node in enumerate(cluster.nodes):
        label = f"node {node.name or i + 1}"
        if not node.name:
            found.append(f"Nodes[{i}] has no Name")
        elif node.name in seen_names:
            found.append(f"{label}: the name is used twice")
        seen_names.add(node.name)
        if roles and node.role not in roles:
            found.append(f"{label}: NodeRole {node.role!r} is not one of {', '.join(roles)} ({cluster.edition})")
        if not PurePosixPath(node.node_root).is_absolute():
            found.append(f"{label}: NodeRoot {node.node_root!r} is not an absolute path")
        if node.actual is None and node.desired is None:
            found.append(f"{label}: neither an actual nor a desired state")
        if node.desired is not None and cluster.cmd is None:
            found.append(f"{label}: a desired state but no pending command (Cmd)")
        for which, st in (("ActualNodeState", node.actual), ("DesiredNodeState", node.desired)):
            if st is None:
                continue
            try:
                ipaddress.ip_address(st.address)
            except ValueError:
                found.append(f"{label}: {which}.Address {st.address!r} is not an IP address")
            if st.version and not _SEMVER.match(st.version):
                found.append(f"{label}: {which}.NodeVersion {st.version!r} is not a version")
        if node.actual is not None and node.actual.steps_done:
            found.append(f"{label}: ActualNodeState lists StepsDone, which only a pending command has")
        if node.service_manager not in ("", "supervisord", "systemd"):
            found.append(f"{label}: ServiceManager {node.service_manager!r} is not systemd or supervisord")
        elif node.service_manager == "systemd" and node.node_root != "/":
            found.append(f"{label}: ServiceManager systemd needs the NodeRoot / (its units are the host's)")
        if node.jmx_port and not 0 < node.jmx_port < 65536:
            found.append(f"{label}: JMXPort {node.jmx_port} is not a port number")
        if node.address:
            if node.address in seen_addresses:
                found.append(f"{label}: the address {node.address} is used by another node")
            seen_addresses.add(node.address)
    for address in cluster.replaced_addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            found.append(f"ReplacedAddresses: {address!r} is not an IP address")
        if address in seen_addresses:
            found.append(f"ReplacedAddresses: {address} is the address of a node of the cluster")
    if cluster.cron is not None:
        from voedger.ctool import cron

        try:
            cron.check_schedule(cluster.cron.backup)
            if cluster.cron.expire_time:
                cron.check_expire(cluster.cron.expire_time)
        except cron.CronError as exc:
            found.append(f"Cron: {exc}")
    if cluster.cmd is not None and cluster.cmd.kind == "replace" and len(cluster.cmd.args) != 2:
        found.append("Cmd replace takes two addresses: the old node's and the new one's")
    return found


def receiver_problems(receiver: Receiver) -> list[str]:
    """What is wrong with an alert receiver; empty when Alertmanager can take it."""
    if receiver.kind not in ALERT_KINDS:
        return [f"alert kind {receiver.kind!r} is not one of {', '.join(ALERT_KINDS)}"]
    if receiver.kind == "email":
        found = []
        for label, address in (("address", receiver.target), ("--smtp-from", receiver.sender)):
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                found.append(f"{label} {address!r} is not an e-mail address")
        if not re.fullmatch(r"[^\s:/]+:\d{1,5}", receiver.smarthost):
            found.append(f"--smtp-smarthost {receiver.smarthost!r} is not host:port")
        return found
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", receiver.target):
        return [f"the {receiver.kind} target {receiver.target!r} is not an http(s) URL"]
    return []
