"""Test nodes for ctool: OpenSSH servers on their own loopback addresses, one per node.

Each node is an ``sshd`` (Debian's ``openssh-server``) listening on ``127.0.0.<11+i>`` at
:data:`SSH_PORT`, with its own host keys, its own ``authorized_keys`` (the one public key of the
test's key pair), its own pid file and its own root folder, which ctool is told to prefix every
path with (``ctool init --node-root``). The harness writes the ``known_hosts`` file that ctool
checks host keys against, so nothing is accepted blindly.

Usage::

    python -m voedger.devtools.sshnodes ensure-packages      # apt-get install, if missing
    python -m voedger.devtools.sshnodes start --dir D --nodes 3
    python -m voedger.devtools.sshnodes stop --dir D

Only processes recorded in the nodes' pid files are ever signalled.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voedger.ctool import layout
from voedger.devtools.processes import port_open, recorded_pid, stop_pid

SSHD = "/usr/sbin/sshd"
SUPERVISORD = "/usr/bin/supervisord"
SSH_PORT = 2214
"""The port every test node's sshd listens on, each on its own address."""
FIRST_HOST = int(os.environ.get("VOEDGER_CTOOL_FIRST_HOST", "11"))
"""The last byte of the first test node's address (127.0.0.11); another value, such as 21 or 31,
lets two checkouts run the ctool tier on one machine side by side."""
PACKAGES = ("openssh-server", "supervisor")


class SshNodesError(RuntimeError):
    """Preparing, starting or stopping a test node failed; the message says why."""


@dataclass(frozen=True, slots=True)
class SshNode:
    """One test node: an sshd on ``address``:``port`` whose files live under ``home``."""

    address: str
    port: int
    home: Path

    @property
    def root(self) -> Path:
        """The folder ctool installs into for this node (``--node-root``)."""
        return self.home / "root"

    @property
    def etc(self) -> Path:
        return self.home / "sshd"

    @property
    def config_file(self) -> Path:
        return self.etc / "sshd_config"

    @property
    def host_key(self) -> Path:
        return self.etc / "ssh_host_ed25519_key"

    @property
    def pid_file(self) -> Path:
        return self.etc / "sshd.pid"

    @property
    def log_file(self) -> Path:
        return self.etc / "sshd.log"


@dataclass(frozen=True, slots=True)
class SshCluster:
    """The test nodes of one test, with the client's key pair and known_hosts."""

    base: Path
    nodes: tuple[SshNode, ...]

    @property
    def key(self) -> Path:
        """The client's private key (``ctool --ssh-key``)."""
        return self.base / "client" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.base / "client" / "known_hosts"

    @property
    def hosts(self) -> list[str]:
        return [n.address for n in self.nodes]

    @property
    def node_root_template(self) -> str:
        """``--node-root`` for ctool: ``{host}`` is replaced by each node's address."""
        return str(self.base / "nodes" / "{host}" / "root")


def nodes(base: Path, count: int, port: int = SSH_PORT) -> SshCluster:
    """The layout of ``count`` test nodes under ``base`` (nothing is created)."""
    base = base.resolve()
    found = tuple(
        SshNode(address=f"127.0.0.{FIRST_HOST + i}", port=port, home=base / "nodes" / f"127.0.0.{FIRST_HOST + i}")
        for i in range(count)
    )
    return SshCluster(base=base, nodes=found)


# --------------------------------------------------------------------------------------------
# Packages


def missing_packages() -> list[str]:
    """The Debian packages the test nodes need that are not installed."""
    missing = []
    if not Path(SSHD).exists():
        missing.append("openssh-server")
    if not Path(SUPERVISORD).exists():
        missing.append("supervisor")
    return missing


def ensure_packages() -> list[str]:
    """``apt-get install`` what :func:`missing_packages` lists; returns what it installed.

    Package scripts must not start the system's own sshd or supervisord (this machine's port 22
    is nobody's business here), so a ``policy-rc.d`` that refuses every start is put in place
    for the install when the system has none.
    """
    missing = missing_packages()
    if not missing:
        return []
    if os.geteuid() != 0:
        raise SshNodesError(f"install {' '.join(missing)} first (apt-get install needs root)")
    policy = Path("/usr/sbin/policy-rc.d")
    ours = not policy.exists()
    if ours:
        policy.write_text("#!/bin/sh\n# written by voedger.devtools.sshnodes during apt-get install\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        update = subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env, check=False)
        if update.returncode != 0:
            raise SshNodesError("apt-get update failed:\n" + update.stderr[-2000:])
        done = subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", *missing],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise SshNodesError(f"apt-get install {' '.join(missing)} failed:\n" + done.stderr[-2000:])
    finally:
        if ours:
            policy.unlink(missing_ok=True)
    return missing


# --------------------------------------------------------------------------------------------
# Keys and configuration


def _keygen(path: Path, comment: str) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def render_sshd_config(node: SshNode, authorized_keys: Path) -> str:
    return f"""\
# Written by voedger.devtools.sshnodes: a test node of ctool, on {node.address} only.
ListenAddress {node.address}:{node.port}
HostKey {node.host_key}
PidFile {node.pid_file}
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
MaxStartups 50:30:100
MaxSessions 50
Subsystem sftp internal-sftp
LogLevel ERROR
"""


def prepare(cluster: SshCluster) -> None:
    """Write the client key pair, every node's host key and configuration, and known_hosts."""
    _keygen(cluster.key, "ctool-test-client")
    authorized = cluster.base / "client" / "authorized_keys"
    authorized.write_text(cluster.key.with_suffix(".pub").read_text())
    lines = []
    for node in cluster.nodes:
        node.root.mkdir(parents=True, exist_ok=True)
        _keygen(node.host_key, f"ctool-test-node-{node.address}")
        node.config_file.write_text(render_sshd_config(node, authorized))
        public = node.host_key.with_suffix(".pub").read_text().split()
        lines.append(f"[{node.address}]:{node.port} {public[0]} {public[1]}\n")
    cluster.known_hosts.write_text("".join(lines))


# --------------------------------------------------------------------------------------------
# Processes


def node_pid(node: SshNode) -> int | None:
    """The pid in the node's pid file if it is alive and is this node's sshd."""
    return recorded_pid(node.pid_file, str(node.config_file))


def start_node(node: SshNode, timeout: float = 15.0) -> int:
    """Start the node's sshd (it daemonises and writes its pid file); returns its pid."""
    pid = node_pid(node)
    if pid is not None:
        return pid
    if port_open(node.address, node.port):
        raise SshNodesError(f"{node.address}:{node.port} is taken by a process this harness did not start")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    node.pid_file.unlink(missing_ok=True)
    done = subprocess.run(
        [SSHD, "-f", str(node.config_file), "-E", str(node.log_file)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise SshNodesError(f"sshd for {node.address} did not start: {done.stderr.strip()}")
    deadline = time.monotonic() + timeout
    while True:
        pid = node_pid(node)
        if pid is not None and port_open(node.address, node.port):
            return pid
        if time.monotonic() > deadline:
            log = node.log_file.read_text(errors="replace") if node.log_file.exists() else ""
            raise SshNodesError(f"sshd for {node.address} did not listen in time\n{log[-2000:]}")
        time.sleep(0.05)


def session_pids(listener: int) -> list[int]:
    """The per-connection sshd processes the listener ``listener`` forked (its children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == listener:
            found.append(int(entry.name))
    return found


def sessions(node: SshNode) -> list[int]:
    """The node's authenticated sessions (``sshd: user@...``), by pid."""
    listener = node_pid(node)
    found = []
    for child in session_pids(listener) if listener is not None else []:
        try:
            if b"@" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue
    return found


def stop_node(node: SshNode, timeout: float = 10.0, cut_sessions: bool = True) -> bool:
    """SIGTERM the node's recorded sshd; False if it was down.

    With ``cut_sessions`` the connections it serves are cut too (the children it forked, each
    its own sshd, signalled by pid), as when a host goes off the network: a client holding a
    multiplexed connection open would otherwise go on through it. What a session started in the
    background (a node's supervisord) has left the session and keeps running.
    """
    pid = node_pid(node)
    if pid is None:
        return False
    children = session_pids(pid) if cut_sessions else []
    os.kill(pid, signal.SIGTERM)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)
    stop_pid(pid, timeout, signalled=True, poll=0.05)
    node.pid_file.unlink(missing_ok=True)
    return True


def stop_services(node: SshNode, timeout: float = 30.0) -> bool:
    """Stop the supervisord ctool started under the node's root (and so its programs), by pid."""
    conf = layout.under(str(node.root), layout.SUPERVISORD_CONF)
    pid = recorded_pid(Path(layout.under(str(node.root), layout.SUPERVISORD_PID)), conf)
    if pid is None:
        return False
    stop_pid(pid, timeout, poll=0.1)
    return True


def start(cluster: SshCluster) -> None:
    if missing_packages():
        raise SshNodesError(
            f"{', '.join(missing_packages())} missing: run python -m voedger.devtools.sshnodes ensure-packages"
        )
    prepare(cluster)
    for node in cluster.nodes:
        start_node(node)


def stop(cluster: SshCluster) -> list[str]:
    return [n.address for n in cluster.nodes if stop_node(n)]


def discover(base: Path) -> SshCluster:
    """The nodes laid out under ``base`` by an earlier :func:`start`."""
    found = sorted((base / "nodes").glob("127.0.0.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    if not found:
        return SshCluster(base=base.resolve(), nodes=())
    port = SSH_PORT
    config = found[0] / "sshd" / "sshd_config"
    if config.exists():
        for line in config.read_text().splitlines():
            if line.startswith("ListenAddress "):
                port = int(line.rsplit(":", 1)[1])
    return nodes(base, len(found), port)


# --------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voedger.devtools.sshnodes", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure-packages", help="apt-get install openssh-server and supervisor if missing")
    p = sub.add_parser("start", help="start the test nodes' sshd's")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--port", type=int, default=SSH_PORT)
    p = sub.add_parser("stop", help="stop the test nodes' sshd's")
    p.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "ensure-packages":
            installed = ensure_packages()
            print("installed: " + ", ".join(installed) if installed else "nothing to install")
        elif args.command == "start":
            cluster = nodes(args.dir, args.nodes, args.port)
            start(cluster)
            for node in cluster.nodes:
                print(f"{node.address}:{node.port} pid {node_pid(node)} root {node.root}")
            print(f"key {cluster.key}\nknown_hosts {cluster.known_hosts}")
        elif args.command == "stop":
            stopped = stop(discover(args.dir))
            print("stopped: " + (", ".join(stopped) or "none"))
    except SshNodesError as exc:
        print(f"[sshnodes] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["SshCluster", "SshNode", "SshNodesError", "ensure_packages", "nodes", "start", "stop"]
