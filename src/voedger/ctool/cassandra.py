"""What ctool installs of Apache Cassandra 5 on an SE node, made with ``devtools.cassandra``.

The jars are fetched once on the machine running ctool (Maven, as the project's tests do) and
sent to the nodes as one tar file; each node's ``cassandra.yaml``, logging configuration and
start script are rendered here, with the node's paths under its root, and written by the
``cassandra`` playbook. Every node is a seed; the tokens are spread evenly over the ring, so a
new cluster forms without streaming.
"""

from __future__ import annotations

import shlex
import tarfile
from pathlib import Path, PurePosixPath

from voedger.devtools import cassandra as dev

JAVA = "/usr/bin/java"
CLUSTER_NAME = "voedger"


def jars_tarball(dest: Path) -> Path:
    """``cassandra-<version>-jars.tar`` in ``dest``, made once from the fetched jars."""
    target = dest / f"cassandra-{dev.CASSANDRA_VERSION}-jars.tar"
    if target.is_file():
        return target
    try:
        jars = dev.ensure_jars()
    except dev.CassandraDevError as exc:
        raise RuntimeError(f"could not fetch Cassandra's jars: {exc}") from None
    dest.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        for jar in jars:
            tar.add(jar, arcname=jar.name)
    partial.rename(target)
    return target


def tokens(count: int) -> list[str]:
    """``count`` Murmur3 tokens spread evenly over the ring."""
    step = 2**64 // count
    return [str(-(2**63) + i * step) for i in range(count)]


def node_files(
    node_root: str,
    address: str,
    index: int,
    addresses: list[str],
    heap: str,
    jmx_port: int,
    replace_address: str = "",
) -> dict[str, str]:
    """The node's ``cassandra_yaml``, ``cassandra_logback`` and ``cassandra_script`` (variables).

    ``jmx_port`` 0: no JMX listener (a cluster installed before ctool had backups); else
    Cassandra's local JMX listener, which binds that port of 127.0.0.1 only: nodetool (snapshots,
    drain) runs on the node itself, and each node of a cluster has its own port (the first
    node's plus its index), so that nodes sharing a machine never fight over one.

    ``replace_address``: the files of a node's first boot in place of that dead node (``ctool
    replace``): Cassandra takes over its tokens and streams its data from the others
    (``-Dcassandra.replace_address_first_boot``), which it does only when it bootstraps, so
    ``auto_bootstrap`` is on and the node is not among its own seeds (a seed never bootstraps)."""
    seeds = [a for a in addresses if not (replace_address and a == address)]
    home = Path(str(PurePosixPath(node_root) / "var/lib/cassandra"))
    node = dev.Node(
        name=f"node-{index + 1}",
        address=address,
        home=home,
        cluster_name=CLUSTER_NAME,
        seeds=",".join(f"{a}:{dev.STORAGE_PORT}" for a in seeds),
        jmx_port=jmx_port,
        initial_token=tokens(len(addresses))[index],
        auto_bootstrap=bool(replace_address),
    )
    lib = Path(str(PurePosixPath(node_root) / "opt/cassandra/lib"))
    jars = sorted(lib / jar for jar in _jar_names())
    command = dev.jvm_command(node, JAVA, jars, heap, ring_delay_ms=1000)
    if not jmx_port:
        command = [a for a in command if not a.startswith("-Dcassandra.jmx.local.port=")]
    if replace_address:
        command.insert(1, f"-Dcassandra.replace_address_first_boot={replace_address}")
    script = (
        "#!/bin/sh\n# Written by ctool: starts Apache Cassandra of this node in the foreground.\n"
        f"cd {shlex.quote(str(home))}\nexec {shlex.join(command)}\n"
    )
    return {
        "cassandra_yaml": dev.render_yaml(node),
        "cassandra_logback": dev.render_logback(node),
        "cassandra_script": script,
    }


def _jar_names() -> list[str]:
    return [jar.name for jar in dev.ensure_jars()]


def nodetool(node_root: str, jmx_port: int) -> str:
    """The shell command that runs nodetool against the node's Cassandra (on the node)."""
    lib = PurePosixPath(node_root) / "opt/cassandra/lib"
    home = PurePosixPath(node_root) / "var/lib/cassandra"
    return shlex.join(
        [
            JAVA,
            "-Xmx128m",
            *dev.JPMS_FLAGS,  # Cassandra's classes reach into the JDK's internals, nodetool's too
            f"-Duser.home={home}",  # its history (.cassandra/nodetool.history) under the node root
            "-cp",
            f"{lib}/*",
            "org.apache.cassandra.tools.NodeTool",
            "-h",
            "127.0.0.1",
            "-p",
            str(jmx_port),
        ]
    )
