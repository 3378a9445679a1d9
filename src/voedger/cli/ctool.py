"""``ctool``: installs and operates clusters over SSH (``voedger.ctool``; Ansible does the steps)."""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

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


def _fail(exc: Exception) -> NoReturn:
    click.echo(f"Error: {exc}", err=True)
    sys.exit(1)


def _ctool_errors(func: F) -> F:
    """A command's error (ctool's, or cluster.json's): ``Error: <message>`` on stderr, exit 1."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        from voedger.ctool.ops import CtoolError
        from voedger.ctool.state import StateError

        try:
            return func(*args, **kwargs)
        except (CtoolError, StateError) as exc:
            _fail(exc)

    return cast(F, run)


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
    "--scrape-interval",
    default="15s",
    show_default=True,
    help="How often Prometheus scrapes the targets and evaluates the alert rules.",
)
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
@click.option(
    "--database",
    type=click.Choice(["cassandra", "scylla"]),
    default="cassandra",
    show_default=True,
    help="SE: Apache Cassandra (its jars sent by ctool), or ScyllaDB from its apt repository (hosts run by "
    "systemd that reach the repository; untested by ctool's tests).",
)
@click.option("--scylla-list", default="", metavar="URL", help="--database scylla: the repository's list file URL.")
@click.option(
    "--scylla-key",
    default="",
    metavar="FILE",
    help="--database scylla: the repository's signing key (armored or binary), a file here.",
)
@click.option(
    "--scylla-developer-mode", is_flag=True, help="--database scylla: Scylla's developer mode (no I/O tuning)."
)
@_dry_run
@_common
@_ctool_errors
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
    scrape_interval: str,
    jmx_port: int,
    apps: tuple[str, ...],
    database: str,
    scylla_list: str,
    scylla_key: str,
    scylla_developer_mode: bool,
    dry_run: bool,
    cluster_dir: Path,
    verbose: bool,
) -> None:
    """Install a cluster: CE is one node (ctool init CE <host>); SE is three or more, each running a
    Cassandra node (or Scylla: --database scylla) and a server process (ctool init SE <host1> <host2>
    <host3> ...). Where a host's init is systemd the services are systemd units, else programs of
    a supervisord of ctool's own."""
    from voedger.ctool import ops, state

    scylla = state.Scylla(scylla_list, scylla_key, scylla_developer_mode) if database == "scylla" else None
    if scylla is None and (scylla_list or scylla_key or scylla_developer_mode):
        raise click.UsageError("--scylla-list, --scylla-key and --scylla-developer-mode go with --database scylla")

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
        scrape_interval=scrape_interval,
        apps=apps,
        jmx_port=jmx_port,
        scylla=scylla,
    )


@main.command()
@click.option(
    "--wheel",
    "server_wheel",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The server's wheel: this ctool's version or a build of it (0.1.0+label) [default: built from this checkout].",
)
@_dry_run
@_common
@_ctool_errors
def upgrade(server_wheel: Path | None, dry_run: bool, cluster_dir: Path, verbose: bool) -> None:
    """Rolling upgrade of the servers to this ctool's version: installed beside the running one on
    every node, then one node at a time stopped gracefully (SIGTERM), switched and started, and
    waited for before the next; the other nodes serve meanwhile (CE: a short downtime)."""
    from voedger.ctool import ops

    done = ops.upgrade(_options(cluster_dir, verbose, dry_run), server_wheel)
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
@_ctool_errors
def backup_now(expire: str | None, cluster_dir: Path, verbose: bool) -> None:
    """Back the data up now, on every node (CE: SQLite's online backup; SE: Cassandra snapshots
    and the schema as CQL); the backup is named after this moment, in UTC."""
    from voedger.ctool import backups, ops

    made, removed = ops.backup_now(_options(cluster_dir, verbose), expire)
    click.echo(f"backup {made.name}: {len(made.sizes)} node(s), {backups.human(made.total)}")
    for name in removed:
        click.echo(f"expired, removed: {name}")


@backup.command("node")
@click.argument("node", metavar="NODE")
@click.argument("name", metavar="[NAME]", required=False)
@click.option(
    "--expire",
    metavar="DURATION",
    help="Then remove that node's backups older than this: a number and s, m (minutes), h, d or w (e.g. 7d).",
)
@_common
@_ctool_errors
def backup_node(node: str, name: str | None, expire: str | None, cluster_dir: Path, verbose: bool) -> None:
    """Back up the one node NODE (its address or name) now. NAME is the backup's, a moment in UTC
    such as 20261205T091500Z [default: now]: one NAME given to every node in turn (as a cron job
    would) makes one backup that ctool restore puts back."""
    from voedger.ctool import backups, ops

    made, removed = ops.backup_node(_options(cluster_dir, verbose), node, name, expire)
    click.echo(f"backup {made.name}: {', '.join(made.sizes)}, {backups.human(made.total)}")
    for gone in removed:
        click.echo(f"expired, removed: {gone}")


@backup.command("cron")
@click.argument("schedule", metavar="[SCHEDULE]", required=False)
@click.option(
    "--expire",
    metavar="DURATION",
    help="Each run then removes the backups older than this: a number and s, m (minutes), h, d or w (e.g. 30d).",
)
@click.option("--remove", is_flag=True, help="Drop the schedule: the cron file removed, Cron cleared in cluster.json.")
@click.option(
    "--cron-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the cron.d file voedger-backup goes [default: where it went last time, else /etc/cron.d].",
)
@_common
@_ctool_errors
def backup_cron(
    schedule: str | None, expire: str | None, remove: bool, cron_dir: Path | None, cluster_dir: Path, verbose: bool
) -> None:
    """Schedule backups: on SCHEDULE (a cron expression such as '0 2 * * *', or @daily), cron
    runs 'ctool backup node' for every database node in turn, all with one backup name, from
    this cluster's folder on this machine, which must be on then; with --expire each node's
    older backups are removed. The schedule is kept in cluster.json (Cron) and written as a
    cron.d file (user: the one running ctool now); a new one replaces it. Without SCHEDULE:
    show the schedule; --remove drops it."""
    from voedger.ctool import cron, ops

    opts = _options(cluster_dir, verbose)
    if remove:
        if schedule is not None or expire is not None:
            raise click.UsageError("--remove takes no SCHEDULE and no --expire")
        _cluster, path = ops.backup_cron_remove(opts)
        click.echo(f"Cron schedule removed ({path})" if path else "No backup cron schedule.")
        return
    if schedule is None:
        if expire is not None:
            raise click.UsageError("--expire goes with a SCHEDULE")
        cluster = ops.backup_cron_show(opts)
        if cluster.cron is None:
            click.echo("No backup cron schedule.")
        else:
            keep = f", --expire {cluster.cron.expire_time}" if cluster.cron.expire_time else ""
            click.echo(f"Backup cron: {cluster.cron.backup}{keep} ({cluster.cron.file})")
        return
    try:
        cron.check_schedule(schedule)
        if expire is not None:
            cron.check_expire(expire)
    except cron.CronError as exc:
        raise click.BadParameter(str(exc), param_hint="SCHEDULE" if "schedule" in str(exc) else "--expire") from None
    cluster = ops.backup_cron(opts, schedule, expire, cron_dir)
    assert cluster.cron is not None
    upcoming = cron.next_run(cluster.cron.backup, dt.datetime.now().astimezone())
    click.echo(f"Cron schedule set successfully: {cluster.cron.file}")
    click.echo(f"next run: {upcoming:%Y-%m-%d %H:%M %Z} (this machine's time zone)")


@backup.command("list")
@_common
@_ctool_errors
def backup_list(cluster_dir: Path, verbose: bool) -> None:
    """List the backups the nodes keep."""
    from rich.console import Console
    from rich.table import Table

    from voedger.ctool import backups, ops

    cluster, found = ops.backup_list(_options(cluster_dir, verbose))
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
@_ctool_errors
def restore(name: str, cluster_dir: Path, verbose: bool) -> None:
    """Put the data of a backup back on every node: the servers (and SE: Cassandra) are stopped,
    the data replaced (what it replaces is kept under var/backups/voedger/replaced-<moment>),
    then everything started again and waited for."""
    from voedger.ctool import ops

    ops.restore(_options(cluster_dir, verbose), name)


@main.command()
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@click.option(
    "--node-root",
    default=None,
    help="The new node's root folder [default: the old node's, with its address replaced by NEW].",
)
@_dry_run
@_common
@_ctool_errors
def replace(old: str, new: str, node_root: str | None, dry_run: bool, cluster_dir: Path, verbose: bool) -> None:
    """Replace the dead node OLD (its address or name) by the host NEW (an address), SE only.

    OLD must be down (its Cassandra and its server do not answer) and NEW reachable over SSH.
    NEW is prepared like a node of init; its Cassandra takes over OLD's place in the ring and
    streams its data (replace_address_first_boot), the applications' keyspaces are repaired, the
    nodes' seeds and monitoring get the new address, and the servers are restarted one at a time
    with the new contact points, NEW's first. OLD's address is then kept in ReplacedAddresses and
    never used again. A CE cluster is one node holding all of its data: it is not replaced (take
    a backup, ctool init CE on the new host and restore it there). Cut: ctool repeat finishes it."""
    from voedger.ctool import ops

    ops.replace(_options(cluster_dir, verbose, dry_run), old, new, node_root=node_root)


@main.command()
@_dry_run
@_common
@_ctool_errors
def repeat(dry_run: bool, cluster_dir: Path, verbose: bool) -> None:
    """Finish the command that cluster.json records as not completed."""
    from voedger.ctool import ops

    done = ops.repeat(_options(cluster_dir, verbose, dry_run))
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
@_ctool_errors
def status(cluster_dir: Path, verbose: bool) -> None:
    """Show the nodes, their services and what each server answers."""
    from rich.console import Console
    from rich.table import Table

    from voedger.ctool import ops

    cluster, rows = ops.status(_options(cluster_dir, verbose))
    title = f"{cluster.edition} cluster, version {cluster.actual_version or '-'}"
    if cluster.cmd:
        title += f", pending: {cluster.cmd}"
    table = Table(title=title)
    for column in (
        "Node",
        "Address",
        "Role",
        "State",
        "SSH",
        "Services",
        "Server /api/check",
        "Prometheus",
        "Alertmanager",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.name,
            row.address,
            row.role,
            row.state,
            row.ssh,
            "\n".join(row.services) or "-",
            row.server,
            row.prometheus,
            row.alertmanager,
        )
    console = Console(width=220)
    console.print(table)
    for line in ops.servers_view(cluster):
        console.print("voedger " + line, markup=False)
    ring = ops.ring_status(cluster)
    if ring:
        console.print(ring, markup=False)


@main.group()
def acme() -> None:
    """The domains the servers get their HTTPS certificate for, by ACME (CE clusters).

    With domains, each server serves HTTPS on the Acme HTTPS port (443) and answers the CA's
    HTTP-01 challenges on the cluster's HTTP port (80, where CAs look); without, plain HTTP."""


@acme.command("add")
@click.argument("domains", nargs=-1, required=True)
@click.option("--directory", default=None, help="The CA's ACME directory URL [default: Let's Encrypt's].")
@click.option(
    "--ca-bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM CAs of the CA's own HTTPS (a test CA), copied to the nodes.",
)
@click.option("--email", default=None, help="Contact address of the ACME account.")
@click.option("--https-port", type=click.IntRange(1, 65535), default=None, help="Where HTTPS is served [default: 443].")
@_dry_run
@_common
@_ctool_errors
def acme_add(
    domains: tuple[str, ...],
    directory: str | None,
    ca_bundle: Path | None,
    email: str | None,
    https_port: int | None,
    dry_run: bool,
    cluster_dir: Path,
    verbose: bool,
) -> None:
    """Add DOMAINS to the certificate; the servers are configured again and restarted."""
    from voedger.ctool import ops

    ops.acme(
        _options(cluster_dir, verbose, dry_run),
        "add",
        domains,
        directory=directory,
        ca_bundle=ca_bundle,
        email=email,
        https_port=https_port,
    )


@acme.command("remove")
@click.argument("domains", nargs=-1, required=True)
@_dry_run
@_common
@_ctool_errors
def acme_remove(domains: tuple[str, ...], dry_run: bool, cluster_dir: Path, verbose: bool) -> None:
    """Remove DOMAINS; without any left, the servers serve plain HTTP again."""
    from voedger.ctool import ops

    ops.acme(_options(cluster_dir, verbose, dry_run), "remove", domains)


@acme.command("list")
@_common
@_ctool_errors
def acme_list(cluster_dir: Path, verbose: bool) -> None:
    """Print the cluster's ACME domains, one a line."""
    from voedger.ctool import state

    cluster = state.load(cluster_dir.resolve())
    if cluster.acme is None:
        click.echo("No ACME domains: the servers serve plain HTTP.", err=True)
        return
    for domain in cluster.acme.domains:
        click.echo(domain)


@main.group()
def mon() -> None:
    """The monitoring of the nodes (Prometheus, Alertmanager, node exporter)."""


@mon.command()
@click.argument("password")
@_common
@_ctool_errors
def password(password: str, cluster_dir: Path, verbose: bool) -> None:
    """Protect every node's Prometheus and Alertmanager web UI: user admin, this PASSWORD
    ("-": read it from standard input). Only its bcrypt hash goes to the nodes."""
    from voedger.ctool import ops

    if password == "-":
        password = sys.stdin.readline().rstrip("\n")
    ops.mon_password(_options(cluster_dir, verbose), password)


@main.group()
def alert() -> None:
    """Where Alertmanager sends the alerts: webhook, email, discord, slack receivers."""


KINDS = click.Choice(["webhook", "email", "discord", "slack"])


@alert.command("add")
@click.argument("kind", type=KINDS)
@click.argument("target")
@click.option("--smtp-smarthost", default="", help="email: the SMTP server, host:port.")
@click.option("--smtp-from", default="", help="email: the sender's address.")
@_common
@_ctool_errors
def alert_add(kind: str, target: str, smtp_smarthost: str, smtp_from: str, cluster_dir: Path, verbose: bool) -> None:
    """Send the alerts to TARGET too: a URL (webhook; discord, slack: their webhook URL) or an
    e-mail address (with --smtp-smarthost and --smtp-from)."""
    from voedger.ctool import ops

    ops.alert_add(_options(cluster_dir, verbose), kind, target, smarthost=smtp_smarthost, sender=smtp_from)


@alert.command("remove")
@click.argument("kind", type=KINDS)
@click.argument("target")
@_common
@_ctool_errors
def alert_remove(kind: str, target: str, cluster_dir: Path, verbose: bool) -> None:
    """Stop sending the alerts to TARGET."""
    from voedger.ctool import ops

    ops.alert_remove(_options(cluster_dir, verbose), kind, target)


@alert.group()
def configs() -> None:
    """The whole alertmanager.yml of the nodes."""


@configs.command("download")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_common
@_ctool_errors
def configs_download(file: Path, cluster_dir: Path, verbose: bool) -> None:
    """Write the nodes' alertmanager.yml to FILE (0600)."""
    from voedger.ctool import ops

    ops.alert_download(_options(cluster_dir, verbose), file)
    click.echo(f"alertmanager.yml written to {file}")


@configs.command("upload")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_common
@_ctool_errors
def configs_upload(file: Path, cluster_dir: Path, verbose: bool) -> None:
    """Check FILE with amtool, then make it every node's alertmanager.yml (instead of the one
    ctool renders from its receivers)."""
    from voedger.ctool import ops

    ops.alert_upload(_options(cluster_dir, verbose), file)


@configs.command("reset")
@_common
@_ctool_errors
def configs_reset(cluster_dir: Path, verbose: bool) -> None:
    """Forget an uploaded alertmanager.yml: the nodes get ctool's, from its receivers."""
    from voedger.ctool import ops

    ops.alert_reset(_options(cluster_dir, verbose))


@main.command()
def version() -> None:
    """Print ctool's version (the version of the clusters it installs)."""
    click.echo(f"ctool version {__version__}")


if __name__ == "__main__":
    main()
