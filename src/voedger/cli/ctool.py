"""``ctool``: installs and operates clusters over SSH (``voedger.ctool``; Ansible does the steps)."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from voedger import __version__

F = TypeVar("F", bound=Callable[..., Any])


def _common(func: F) -> F:
    """The options every command takes, after its name (Voedger's are global flags)."""
    func = click.option(
        "--cluster-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=".",
        envvar="VOEDGER_CTOOL_DIR",
        show_default=True,
        help="Where cluster.json and the logs are.",
    )(func)
    func = click.option("-v", "--verbose", is_flag=True, help="Show every task on every node.")(func)
    return func


def _dry_run(func: F) -> F:
    return click.option(
        "--dry-run",
        is_flag=True,
        help="Run on a copy of cluster.json (.dry-run/) with Ansible's check mode: nothing changes on the nodes.",
    )(func)


def _options(cluster_dir: Path, verbose: bool, dry_run: bool = False) -> Any:
    from voedger.ctool.ops import Options

    return Options(folder=cluster_dir.resolve(), dry_run=dry_run, verbose=verbose)


def _fail(exc: Exception) -> None:
    click.echo(f"Error: {exc}", err=True)
    sys.exit(1)


@click.group()
@click.version_option(__version__, prog_name="ctool")
def main() -> None:
    """Install and operate Voedger clusters over SSH."""


@main.command()
@click.argument("edition", metavar="CE|SE")
@click.argument("hosts", nargs=-1, required=True)
@click.option(
    "--ssh-key",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="VOEDGER_SSH_KEY",
    required=True,
    help="Private key of the SSH user on the nodes (or VOEDGER_SSH_KEY).",
)
@click.option("-p", "--ssh-port", type=click.IntRange(1, 65535), default=22, show_default=True)
@click.option("--ssh-user", default=lambda: os.environ.get("LOGNAME") or getpass.getuser(), help="[default: $LOGNAME]")
@click.option(
    "--known-hosts",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: str(Path.home() / ".ssh" / "known_hosts"),
    help="The nodes' host keys, checked on every connection. [default: ~/.ssh/known_hosts]",
)
@click.option(
    "--node-root",
    default="/",
    show_default=True,
    help="Folder every installed path goes under on the nodes; {host} is the node's address (for test nodes).",
)
@click.option("--http-port", type=click.IntRange(1, 65535), default=80, show_default=True)
@click.option(
    "--wheel",
    "server_wheel",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The server's wheel to install [default: built from this checkout].",
)
@click.option("--cassandra-heap", default="1G", show_default=True, help="SE: the Java heap of each node's Cassandra.")
@click.option(
    "--jmx-port",
    type=click.IntRange(1, 65535),
    default=7199,
    show_default=True,
    help="SE: Cassandra's JMX port of the first node, on 127.0.0.1 only (node i: this + i - 1).",
)
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="OWNER/NAME=IMAGE",
    help="An application the servers run, from its image (vpm build); repeatable.",
)
@_dry_run
@_common
def init(
    edition: str,
    hosts: tuple[str, ...],
    ssh_key: Path,
    ssh_port: int,
    ssh_user: str,
    known_hosts: Path,
    node_root: str,
    http_port: int,
    server_wheel: Path | None,
    cassandra_heap: str,
    jmx_port: int,
    apps: tuple[str, ...],
    dry_run: bool,
    cluster_dir: Path,
    verbose: bool,
) -> None:
    """Install a cluster: CE is one node (ctool init CE <host>); SE is three or more, each running a
    Cassandra node and a server process (ctool init SE <host1> <host2> <host3> ...)."""
    from voedger.ctool import ops

    try:
        ops.init(
            _options(cluster_dir, verbose, dry_run),
            edition,
            hosts,
            ssh_key=ssh_key,
            ssh_port=ssh_port,
            ssh_user=ssh_user,
            known_hosts=known_hosts,
            node_root=node_root,
            http_port=http_port,
            server_wheel=server_wheel,
            cassandra_heap=cassandra_heap,
            apps=apps,
            jmx_port=jmx_port,
        )
    except ops.CtoolError as exc:
        _fail(exc)


@main.command()
@click.option(
    "--wheel",
    "server_wheel",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The server's wheel: this ctool's version or a build of it (0.1.0+label) [default: built from this checkout].",
)
@_dry_run
@_common
def upgrade(server_wheel: Path | None, dry_run: bool, cluster_dir: Path, verbose: bool) -> None:
    """Rolling upgrade of the servers to this ctool's version: installed beside the running one on
    every node, then one node at a time stopped gracefully (SIGTERM), switched and started, and
    waited for before the next; the other nodes serve meanwhile (CE: a short downtime)."""
    from voedger.ctool import ops

    try:
        done = ops.upgrade(_options(cluster_dir, verbose, dry_run), server_wheel)
    except ops.CtoolError as exc:
        _fail(exc)
    if done is None:
        click.echo("Nothing to upgrade: every node runs that version already.")


@main.group()
def backup() -> None:
    """Backups of the cluster's data, kept on every node under var/backups/voedger."""


@backup.command("now")
@click.option(
    "--expire",
    metavar="DURATION",
    help="Then remove the backups older than this: a number and s, m (minutes), h, d or w (e.g. 7d).",
)
@_common
def backup_now(expire: str | None, cluster_dir: Path, verbose: bool) -> None:
    """Back the data up now, on every node (CE: SQLite's online backup; SE: Cassandra snapshots
    and the schema as CQL); the backup is named after this moment, in UTC."""
    from voedger.ctool import backups, ops

    try:
        made, removed = ops.backup_now(_options(cluster_dir, verbose), expire)
    except ops.CtoolError as exc:
        _fail(exc)
    click.echo(f"backup {made.name}: {len(made.sizes)} node(s), {backups.human(made.total)}")
    for name in removed:
        click.echo(f"expired, removed: {name}")


@backup.command("list")
@_common
def backup_list(cluster_dir: Path, verbose: bool) -> None:
    """List the backups the nodes keep."""
    from rich.console import Console
    from rich.table import Table

    from voedger.ctool import backups, ops

    try:
        cluster, found = ops.backup_list(_options(cluster_dir, verbose))
    except ops.CtoolError as exc:
        _fail(exc)
    if not found:
        click.echo("No backups.")
        return
    table = Table(title=f"Backups of the {cluster.edition} cluster")
    for column in ("Name", "Taken (UTC)", "Version", "Nodes", "Size"):
        table.add_column(column)
    for b in found:
        taken = backups.moment_of(b.name).strftime("%Y-%m-%d %H:%M:%S")
        nodes = f"{len(b.sizes)}/{len(cluster.nodes)}"
        table.add_row(b.name, taken, b.version, nodes, backups.human(b.total))
    Console(width=160).print(table)


@main.command()
@click.argument("name", metavar="BACKUP")
@_common
def restore(name: str, cluster_dir: Path, verbose: bool) -> None:
    """Put the data of a backup back on every node: the servers (and SE: Cassandra) are stopped,
    the data replaced (what it replaces is kept under var/backups/voedger/replaced-<moment>),
    then everything started again and waited for."""
    from voedger.ctool import ops

    try:
        ops.restore(_options(cluster_dir, verbose), name)
    except ops.CtoolError as exc:
        _fail(exc)


@main.command()
@_dry_run
@_common
def repeat(dry_run: bool, cluster_dir: Path, verbose: bool) -> None:
    """Finish the command that cluster.json records as not completed."""
    from voedger.ctool import ops

    try:
        done = ops.repeat(_options(cluster_dir, verbose, dry_run))
    except ops.CtoolError as exc:
        _fail(exc)
    if done is None:
        click.echo("Nothing to repeat: the cluster's last command completed.")


@main.command()
@_common
def validate(cluster_dir: Path, verbose: bool) -> None:
    """Check cluster.json: edition, nodes, addresses, states, versions."""
    from voedger.ctool import ops

    found = ops.validate(_options(cluster_dir, verbose))
    if found:
        for problem in found:
            click.echo(f"- {problem}", err=True)
        _fail(RuntimeError(f"cluster.json is not valid ({len(found)} problem(s))"))
    click.echo("cluster.json is valid")


@main.command()
@_common
def status(cluster_dir: Path, verbose: bool) -> None:
    """Show the nodes, their services and what each server answers."""
    from rich.console import Console
    from rich.table import Table

    from voedger.ctool import ops

    try:
        cluster, rows = ops.status(_options(cluster_dir, verbose))
    except ops.CtoolError as exc:
        _fail(exc)
    title = f"{cluster.edition} cluster, version {cluster.actual_version or '-'}"
    if cluster.cmd:
        title += f", pending: {cluster.cmd}"
    table = Table(title=title)
    for column in ("Node", "Address", "Role", "State", "SSH", "Services", "Server /api/check"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.name, row.address, row.role, row.state, row.ssh, "\n".join(row.services) or "-", row.server)
    console = Console(width=160)
    console.print(table)
    ring = ops.ring_status(cluster)
    if ring:
        console.print(ring, markup=False)


@main.command()
def version() -> None:
    """Print ctool's version (the version of the clusters it installs)."""
    click.echo(f"ctool version {__version__}")
