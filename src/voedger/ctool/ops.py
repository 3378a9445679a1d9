"""ctool's commands: they change ``cluster.json`` first, then drive the nodes toward it.

A command records itself (``Cmd``) and the desired state of its nodes, then runs its steps in
order, each on every node that has not done it yet; a node that fails a step keeps its error and
does no further step. Each step done is written to the node's desired state at once, so
``ctool repeat`` carries on where the command stopped. When every node is done, the desired
states become the actual ones and the command is cleared.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import ipaddress
import re
import shutil
import socket
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from voedger import __version__
from voedger.ctool import backups, cron, engine, monitoring, state, units, wheel
from voedger.ctool.display import CommandLog, Display
from voedger.ctool.state import Cluster, Command, Node, NodeState
from voedger.monitoring import DASHBOARDS_DIR, RULES_FILE

STEPS: dict[str, tuple[str, ...]] = {
    "CE": ("prepare", "server", "service", "monitoring", "check"),
    "SE": ("prepare", "cassandra", "server", "service", "monitoring", "check"),
}
"""Per edition, the steps of ``init``: each is a playbook of ``playbooks/``."""
SCYLLA_STEPS = ("prepare", "scylla", "server", "service", "monitoring", "check")
"""The steps of ``init SE --database scylla``: Scylla from its repository in place of Cassandra."""
ACME_STEPS = ("service", "check")
"""The steps of ``acme add|remove``: the server's program rendered again, restarted, checked."""
MONITORING_STEPS = ("monitoring",)
"""The steps of ``mon`` and ``alert``: the monitoring files rendered again and reloaded."""


UPGRADE_STEPS = ("server", "rollout", "check")
"""The steps of ``upgrade``: the new version is installed on every node at once (beside the
running one), then ``rollout`` and ``check`` go one node at a time (``SERIAL_STEPS``)."""

SERIAL_STEPS = frozenset({"rollout"})
"""Steps that run on one node at a time: that node and the steps after it (``check``) finish
before the next node starts, so the other nodes serve throughout."""

RING_SECONDS = 180.0
"""How long an SE command waits, after its last step, for the database ring to be whole again
(every node up in the driver's eyes, each seeing the others and answering at consistency ALL):
a node restarted or streamed to by the command may be marked down for a while after."""

SETTLE_SECONDS = 3.0
"""Between two nodes of a rolling upgrade: the node that came back takes its share of the
partitions again (graceful handovers) before the next one hands its own over."""

SERVER_STOP_SECONDS = 75
"""supervisord's ``stopwaitsecs`` (systemd's ``TimeoutStopSec``) for the server: its graceful
shutdown on SIGTERM hands the partitions over (up to 30 s) and finishes the requests in flight (up to 30 s more)."""


RESTORE_STEPS: dict[str, tuple[str, ...]] = {
    "CE": ("stop", "restore", "service", "check"),
    "SE": ("stop", "restore", "cassandra", "service", "check"),
}
"""The steps of ``restore``: each on every node, and the first failure stops the command (a
cluster of which some nodes were restored and others not must not be started)."""


REPLACE_STEPS = ("prepare", "server", "replace", "seeds", "repair", "monitoring", "rollout", "check")
"""The steps of ``replace`` (SE). The new node does them all: prepared and given the server like
a node of ``init``, its Cassandra started in place of the dead one's (``replace``: it takes over
its tokens and streams its data from the others), the nodes' Cassandra configurations written
with the new seeds (``seeds``: for their next start), the applications' keyspaces repaired
(``repair``), the monitoring rendered with the new address, then the servers started again one
node at a time with the new contact points (``rollout``, ``check``), the new node first."""

REPLACE_NEW_NODE_ONLY = ("prepare", "server", "replace", "repair")
"""The steps of ``replace`` the other nodes have nothing to do in: recorded done for them."""


def steps_of(cluster: Cluster) -> tuple[str, ...]:
    """The steps of the cluster's pending command (``init``'s when none is pending)."""
    if cluster.cmd is not None and cluster.cmd.kind == "replace":
        return REPLACE_STEPS
    if cluster.cmd is not None and cluster.cmd.kind == "upgrade":
        return UPGRADE_STEPS
    if cluster.cmd is not None and cluster.cmd.kind == "restore":
        return RESTORE_STEPS[cluster.edition]
    if cluster.cmd is not None and cluster.cmd.kind == "acme":
        return ACME_STEPS
    if cluster.cmd is not None and cluster.cmd.kind in ("mon", "alert"):
        return MONITORING_STEPS
    if cluster.scylla is not None:
        return SCYLLA_STEPS
    return STEPS.get(cluster.edition, ())


DRY_RUN_DIR = ".dry-run"


class CtoolError(RuntimeError):
    """A command failed; the message says what, where, and what to run next."""


@dataclass(frozen=True, slots=True)
class Options:
    folder: Path
    dry_run: bool = False
    verbose: bool = False

    @property
    def state_folder(self) -> Path:
        """Where cluster.json and the logs are: ``.dry-run/`` beside them for a dry run."""
        return self.folder / DRY_RUN_DIR if self.dry_run else self.folder


def _prepare_dry_run(opts: Options) -> None:
    """A dry run works on a copy of cluster.json, so the real one is never touched."""
    if not opts.dry_run:
        return
    target = opts.state_folder
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    source = state.cluster_file(opts.folder)
    if source.exists():
        shutil.copy2(source, state.cluster_file(target))


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("+")[0].split("-")[0].split("."))


def check_version(cluster: Cluster) -> None:
    """Voedger's rule: this ctool must be of the cluster's version (the pending one if any)."""
    version = cluster.desired_version if cluster.cmd else cluster.actual_version
    if not version:
        return
    ours, theirs = _version_tuple(__version__), _version_tuple(version)
    if ours > theirs:
        raise CtoolError(
            f"ctool version {__version__} is newer than cluster version {version}: incorrect version "
            "(an upgrade of the cluster is needed first)"
        )
    if ours < theirs:
        raise CtoolError(
            f"cluster version {version} is newer than ctool version {__version__}\n"
            f"you should use the ctool version {version}: incorrect version"
        )


# --------------------------------------------------------------------------------------------
# init


def init(
    opts: Options,
    edition: str,
    hosts: Sequence[str],
    ssh_key: Path,
    ssh_port: int,
    ssh_user: str,
    known_hosts: Path,
    node_root: str,
    http_port: int,
    server_wheel: Path | None,
    cassandra_heap: str = "1G",
    scrape_interval: str = "15s",
    apps: Sequence[str] = (),
    jmx_port: int = 7199,
    scylla: state.Scylla | None = None,
) -> Cluster:
    edition = edition.upper()
    if edition == "N1":
        edition = "CE"
    if edition not in state.EDITIONS:
        raise CtoolError(f"invalid cluster edition {edition!r} (expected CE or SE)")
    if edition == "CE" and len(hosts) != 1:
        raise CtoolError(f"invalid number of arguments: ctool init CE takes one host, got {len(hosts)}")
    if edition == "SE" and len(hosts) < state.SE_MIN_NODES:
        raise CtoolError(
            f"invalid number of arguments: ctool init SE takes {state.SE_MIN_NODES} hosts or more, got {len(hosts)}"
        )
    for host in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise CtoolError(f"{host!r} is not an IP address: give the nodes by address") from None
    if len(set(hosts)) != len(hosts):
        raise CtoolError("a host is given twice")
    if state.cluster_file(opts.folder).exists():
        raise CtoolError(
            f"the cluster configuration already exists ({state.cluster_file(opts.folder)}); "
            "to finish its pending command run: ctool repeat"
        )
    if not ssh_key.is_file():
        raise CtoolError(f"the SSH key {ssh_key} does not exist (--ssh-key, or VOEDGER_SSH_KEY)")
    if not known_hosts.is_file():
        raise CtoolError(
            f"{known_hosts} does not exist: ctool checks the nodes' host keys, add them there first "
            "(ssh-keyscan, checked against the nodes) or give --known-hosts"
        )
    if not node_root.startswith("/"):
        raise CtoolError(f"--node-root {node_root!r} must be an absolute path")
    if scylla is not None:
        _check_scylla(edition, node_root, scylla)
    images = _parse_apps(apps)
    _prepare_dry_run(opts)
    folder = opts.state_folder
    try:
        built = (
            wheel.adopt(server_wheel.resolve(), folder / "wheels") if server_wheel else wheel.build(folder / "wheels")
        )
    except wheel.WheelError as exc:
        raise CtoolError(str(exc)) from None
    jars = ""
    if edition == "SE" and scylla is None:
        from voedger.ctool import cassandra

        try:
            jars = str(cassandra.jars_tarball(folder / "cassandra"))
        except RuntimeError as exc:
            raise CtoolError(str(exc)) from None
    kept = _keep_apps(images, folder / "apps")
    cluster = Cluster(
        edition=edition,
        apps=kept,
        ssh_port=ssh_port,
        ssh_user=ssh_user,
        ssh_key=str(ssh_key.resolve()),
        known_hosts=str(known_hosts.resolve()),
        http_port=http_port,
        server_wheel=str(built),
        cassandra_jars=jars,
        cassandra_heap=cassandra_heap if edition == "SE" and scylla is None else "",
        scylla=scylla,
        desired_version=__version__,
        cmd=Command("init", [edition, *hosts]),
        monitoring=state.Monitoring(scrape_interval=scrape_interval),
        nodes=[
            Node(
                name=state.node_name(edition, i),
                role=state.ROLES[edition][0],
                node_root=state.node_root_for(node_root, host),
                desired=NodeState(address=host, version=__version__),
                jmx_port=jmx_port + i if edition == "SE" and scylla is None else 0,
            )
            for i, host in enumerate(hosts)
        ],
    )
    found = state.problems(cluster)
    if found:
        raise CtoolError("the new cluster's configuration is invalid: " + "; ".join(found))
    state.save(cluster, folder)
    return _apply(opts, cluster, "init")


def _check_scylla(edition: str, node_root: str, scylla: state.Scylla) -> None:
    """``--database scylla``'s refusals, before anything is written."""
    if edition != "SE":
        raise CtoolError("--database scylla is for SE clusters (CE keeps its data in SQLite)")
    if node_root != "/":
        raise CtoolError(
            "--database scylla installs Scylla from its repository on real hosts run by systemd: not with --node-root"
        )
    if not scylla.list_url or not scylla.key_file:
        raise CtoolError(
            "--database scylla needs --scylla-list (the repository's list file URL, from Scylla's install page "
            "for the version) and --scylla-key (the repository's signing key, a file here)"
        )
    if not re.fullmatch(r"https?://\S+", scylla.list_url):
        raise CtoolError(f"--scylla-list {scylla.list_url!r} is not an http(s) URL")
    if not Path(scylla.key_file).is_file():
        raise CtoolError(f"--scylla-key {scylla.key_file} is not a file")
    scylla.key_file = str(Path(scylla.key_file).resolve())


def _not_scylla(cluster: Cluster, what: str) -> None:
    if cluster.scylla is not None:
        raise CtoolError(
            f"ctool cannot do {what} of a Scylla cluster: its {what} drives Cassandra's own tools "
            "(nodetool over its JMX port, its start script); use Scylla's tools for it"
        )


def _parse_apps(apps: Sequence[str]) -> list[tuple[str, Path]]:
    """``--app NAME=IMAGE`` values: an application name and an image file (``vpm build``)."""
    out: list[tuple[str, Path]] = []
    for text in apps:
        name, sep, image = text.partition("=")
        if not sep or not name or not image:
            raise CtoolError(f"--app {text!r} must be owner/name=IMAGE.var (an image made by vpm build)")
        path = Path(image)
        if not path.is_file():
            raise CtoolError(f"--app {name}: the image {image} is not a file (vpm build makes one)")
        if name in [n for n, _p in out]:
            raise CtoolError(f"--app {name} is given twice")
        out.append((name, path.resolve()))
    return out


def _keep_apps(images: list[tuple[str, Path]], dest: Path) -> list[state.App]:
    """The images, copied beside cluster.json (a repeat must find them) under unique names."""
    kept = []
    for name, path in images:
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / f"{name.replace('/', '-')}-{path.name}"
        if path != target.resolve():
            shutil.copy2(path, target)
        kept.append(state.App(name=name, image=str(target)))
    return kept


# --------------------------------------------------------------------------------------------
# upgrade


def upgrade(opts: Options, server_wheel: Path | None) -> Cluster | None:
    """Rolling upgrade of the servers to this ctool's version (or the build of it ``server_wheel``
    is); None when every node runs that version already."""
    _prepare_dry_run(opts)
    folder = opts.state_folder
    try:
        cluster = state.load(folder)
    except state.StateError as exc:
        raise CtoolError(str(exc)) from None
    if cluster.cmd is not None:
        raise CtoolError(f"the command '{cluster.cmd}' is not completed: finish it first with: ctool repeat")
    found = state.problems(cluster)
    if found:
        raise CtoolError("cluster.json is inconsistent, not upgrading: " + "; ".join(found))
    if cluster.actual_version and _version_tuple(cluster.actual_version) > _version_tuple(__version__):
        raise CtoolError(
            f"cluster version {cluster.actual_version} is newer than ctool version {__version__}: "
            "a cluster is never downgraded"
        )
    try:
        built = (
            wheel.adopt(server_wheel.resolve(), folder / "wheels") if server_wheel else wheel.build(folder / "wheels")
        )
    except wheel.WheelError as exc:
        raise CtoolError(str(exc)) from None
    version = wheel.version_of(built)
    if all(n.actual is not None and n.actual.version == version for n in cluster.nodes):
        return None
    cluster.server_wheel = str(built)
    cluster.desired_version = version
    cluster.cmd = Command("upgrade", [version])
    for node in cluster.nodes:
        assert node.actual is not None
        node.desired = NodeState(address=node.actual.address, version=version)
    state.save(cluster, folder)
    return _apply(opts, cluster, "upgrade")


# --------------------------------------------------------------------------------------------
# backup and restore


def _idle(opts: Options, *, consistent: bool = True, same_version: bool = False) -> Cluster:
    """The cluster of cluster.json, with no command pending (else: finish it with ctool repeat);
    ``consistent``: refused when cluster.json has problems; ``same_version``: when it is not of
    this ctool's version (:func:`check_version`)."""
    try:
        cluster = state.load(opts.folder)
    except state.StateError as exc:
        raise CtoolError(str(exc)) from None
    if cluster.cmd is not None:
        raise CtoolError(f"the command '{cluster.cmd}' is not completed: finish it first with: ctool repeat")
    if same_version:
        check_version(cluster)
    found = state.problems(cluster) if consistent else []
    if found:
        raise CtoolError("cluster.json is inconsistent: " + "; ".join(found))
    return cluster


def _backup_ready(opts: Options) -> Cluster:
    """The cluster, which must be installed with no command pending, its nodes snapshottable."""
    cluster = _idle(opts)
    _not_scylla(cluster, "backup and restore")
    if cluster.edition == "SE" and not all(n.jmx_port for n in cluster.nodes):
        raise CtoolError(
            "this cluster's Cassandra nodes have no JMX port (installed before ctool took backups): "
            "nodetool cannot snapshot them"
        )
    return cluster


def _run_everywhere(
    opts: Options,
    cluster: Cluster,
    step: str,
    log: CommandLog,
    extra: dict[str, Any],
    nodes: Sequence[Node] | None = None,
) -> engine.StepResult:
    """``step`` on ``nodes`` (every node of the cluster by default), outside of any command."""
    problem = engine.environment_ok()
    if problem:
        raise CtoolError(problem)
    return engine.run_step(
        step,
        [_target(n, cluster) for n in (cluster.nodes if nodes is None else nodes)],
        _connection(cluster),
        log.dir / "ansible",
        {**_variables(cluster), **extra},
        lambda e: log.write(f"{e.node}: [{e.step}] {e.task}: {e.kind} {e.message}".rstrip()),
        verbose=opts.verbose,
    )


def _failures(cluster: Cluster, what: str, result: engine.StepResult, log: CommandLog) -> CtoolError:
    lines = [f"node {name} ({cluster.node(name).address}): {why}" for name, why in result.failures.items()]
    message = f"{what} failed:\n" + "\n".join(lines) + f"\nThe log is {log.path}."
    log.write(message)
    return CtoolError(message)


def backup_now(opts: Options, expire: str | None) -> tuple[backups.Backup, list[str]]:
    """A backup on every node, named after this moment; with ``expire``, the backups older than
    that removed afterwards. The backup, and the names of the backups removed."""
    keep = _expire(expire)
    cluster = _backup_ready(opts)
    now = dt.datetime.now(dt.UTC)
    return _backup(opts, cluster, cluster.nodes, backups.name_at(now), now, keep)


def backup_node(
    opts: Options, host: str, name: str | None = None, expire: str | None = None
) -> tuple[backups.Backup, list[str]]:
    """A backup of the one node ``host`` (its address or name), as Voedger's ``backup node``
    (which its backup cron runs for each node in turn). ``name``: the backup's name, a moment
    (``20261205T091500Z``), by default this one; the same name given for every node makes one
    backup that ``ctool restore`` can put back. With ``expire``, that node's backups older
    than that removed afterwards."""
    keep = _expire(expire)
    if name is not None:
        try:
            backups.moment_of(name)
        except backups.BackupError as exc:
            raise CtoolError(str(exc)) from None
    cluster = _backup_ready(opts)
    node = next((n for n in cluster.nodes if host in (n.name, n.address)), None)
    if node is None:
        raise CtoolError(f"host {host} not found in cluster: host not found")
    now = dt.datetime.now(dt.UTC)
    return _backup(opts, cluster, [node], name or backups.name_at(now), now, keep)


def _expire(expire: str | None) -> dt.timedelta | None:
    try:
        return backups.parse_duration(expire) if expire else None
    except backups.BackupError as exc:
        raise CtoolError(str(exc)) from None


def _backup(
    opts: Options,
    cluster: Cluster,
    nodes: Sequence[Node],
    name: str,
    now: dt.datetime,
    keep: dt.timedelta | None,
) -> tuple[backups.Backup, list[str]]:
    """The backup ``name`` taken on ``nodes`` at once; the backup and the expired ones removed."""
    log = CommandLog(opts.folder, "backup")
    try:
        extra: dict[str, Any] = {
            "backup_name": name,
            "expired_before": backups.expired_before(now, keep) if keep else "",
            "schema_file": "",
        }
        if cluster.edition == "SE":
            try:
                schema = backups.schema_cql([n.address for n in cluster.nodes])
            except Exception as exc:  # the driver's errors have no common base
                raise CtoolError(f"could not read the schema over CQL: {exc}") from None
            schema_file = log.dir / "schema.cql"
            schema_file.write_text(schema + "\n")
            extra["schema_file"] = str(schema_file)
        where = "" if len(nodes) == len(cluster.nodes) else " on " + ", ".join(n.name for n in nodes)
        log.write(f"ctool {__version__}: backup {name}{where}")
        result = _run_everywhere(opts, cluster, "backup", log, extra, nodes)
        if result.failures:
            raise _failures(cluster, f"the backup {name}", result, log)
        reports = [
            (n.name, str(result.outputs.get(n.name, {}).get("The backup is complete", {}).get("stdout", "")))
            for n in nodes
        ]
        made = backups.collect(reports)
        if len(made) != 1 or len(made[0].sizes) != len(nodes):
            raise CtoolError(f"the backup {name} is not on every node: {reports}")
        removed: set[str] = set()
        for node in nodes:
            out = result.outputs.get(node.name, {}).get("The backups older than --expire are removed", {})
            removed.update(ln.strip() for ln in str(out.get("stdout", "")).splitlines() if ln.strip())
        log.write(f"backup {name} done: {made[0].total} bytes; expired: {sorted(removed)}")
        return made[0], sorted(removed)
    finally:
        log.close()


def backup_list(opts: Options) -> tuple[Cluster, list[backups.Backup]]:
    try:
        cluster = state.load(opts.folder)
    except state.StateError as exc:
        raise CtoolError(str(exc)) from None
    log = CommandLog(opts.folder, "backup-list")
    try:
        result = _run_everywhere(opts, cluster, "backups", log, {})
        if result.failures:
            raise _failures(cluster, "listing the backups", result, log)
        return cluster, backups.collect(
            (n.name, str(result.outputs.get(n.name, {}).get("The node's backups", {}).get("stdout", "")))
            for n in cluster.nodes
        )
    finally:
        log.close()


def backup_cron(opts: Options, schedule: str, expire: str | None, cron_dir: Path | None = None) -> Cluster:
    """``backup node`` of every database node on ``schedule``, one backup name per run, each
    node's backups older than ``expire`` removed: a cron.d file on this machine (``cron_dir``,
    /etc/cron.d by default), recorded in cluster.json (``Cron``). Replaces the previous one."""
    try:
        schedule = cron.check_schedule(schedule)
        expire = cron.check_expire(expire) if expire else ""
    except cron.CronError as exc:
        raise CtoolError(str(exc)) from None
    cluster = _loaded(opts)
    path = (cron_dir or _cron_dir(cluster)) / cron.FILE_NAME
    entry = cron.Entry(
        schedule=schedule,
        user=getpass.getuser(),
        folder=opts.folder,
        nodes=[n.name for n in cluster.nodes],
        expire=expire,
        program=cron.ctool_program(),
        path=f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
    )
    old = Path(cluster.cron.file) if cluster.cron and cluster.cron.file else None
    try:
        cron.write(path, entry.render())
        if old is not None and old != path:
            cron.remove(old)
    except cron.CronError as exc:
        raise CtoolError(str(exc)) from None
    cluster.cron = state.Cron(backup=schedule, expire_time=expire, file=str(path))
    state.save(cluster, opts.folder)
    return cluster


def backup_cron_remove(opts: Options) -> tuple[Cluster, str]:
    """The scheduled backups dropped: the cron.d file removed, ``Cron`` cleared. The file's path
    ("" if there was no schedule)."""
    cluster = _loaded(opts)
    if cluster.cron is None:
        return cluster, ""
    path = Path(cluster.cron.file) if cluster.cron.file else cron.DEFAULT_DIR / cron.FILE_NAME
    try:
        cron.remove(path)
    except cron.CronError as exc:
        raise CtoolError(str(exc)) from None
    cluster.cron = None
    state.save(cluster, opts.folder)
    return cluster, str(path)


def backup_cron_show(opts: Options) -> Cluster:
    return _loaded(opts)


def _cron_dir(cluster: Cluster) -> Path:
    """Where the schedule's file goes: where it went last time, else /etc/cron.d."""
    if cluster.cron is not None and cluster.cron.file:
        return Path(cluster.cron.file).parent
    return cron.DEFAULT_DIR


def _loaded(opts: Options) -> Cluster:
    try:
        return state.load(opts.folder)
    except state.StateError as exc:
        raise CtoolError(str(exc)) from None


def restore(opts: Options, name: str) -> Cluster:
    """Every node's data replaced by the backup ``name``'s, with the cluster stopped meanwhile."""
    try:
        backups.moment_of(name)
    except backups.BackupError as exc:
        raise CtoolError(str(exc)) from None
    _backup_ready(opts)
    _cluster, known = backup_list(opts)
    cluster = _backup_ready(opts)
    found = next((b for b in known if b.name == name), None)
    if found is None:
        raise CtoolError(f"no backup {name} on the nodes (ctool backup list shows them)")
    missing = [n.name for n in cluster.nodes if n.name not in found.sizes]
    if missing:
        raise CtoolError(f"the backup {name} is not on every node (missing on {', '.join(missing)}): not restoring it")
    if found.edition and found.edition != cluster.edition:
        raise CtoolError(f"the backup {name} is of a {found.edition} cluster, this one is {cluster.edition}")
    version = cluster.actual_version
    cluster.desired_version = version
    cluster.cmd = Command("restore", [name])
    for node in cluster.nodes:
        assert node.actual is not None
        node.desired = NodeState(address=node.actual.address, version=node.actual.version)
    state.save(cluster, opts.folder)
    return _apply(opts, cluster, "restore")


# --------------------------------------------------------------------------------------------
# acme


def acme(
    opts: Options,
    action: str,
    domains: Sequence[str],
    *,
    directory: str | None = None,
    ca_bundle: Path | None = None,
    email: str | None = None,
    https_port: int | None = None,
) -> Cluster:
    """``ctool acme add|remove DOMAINS``: record the domains in cluster.json, then render the
    servers' program again with the ``--acme-*`` flags (HTTPS on the Acme HTTPSPort, the CA's
    challenges on the cluster's HTTP port) and restart them. Removing the last domain brings
    the servers back to plain HTTP on the HTTP port."""
    from voedger.certificates.order import check_domain

    try:
        cluster = state.load(opts.folder)
    except state.StateError as exc:
        raise CtoolError(str(exc)) from None
    check_version(cluster)
    if cluster.cmd is not None:
        raise CtoolError(f"the command '{cluster.cmd}' is pending: finish it first (ctool repeat)")
    found = state.problems(cluster)
    if found:
        raise CtoolError("cluster.json is inconsistent: " + "; ".join(found))
    if cluster.edition != "CE":
        raise CtoolError(
            "ctool acme is for CE clusters: the servers of an SE cluster forward requests to each other's "
            "addresses, which a certificate for the domains does not name"
        )
    names: list[str] = []
    for domain in domains:
        try:
            name = check_domain(domain)
        except ValueError as exc:
            raise CtoolError(str(exc)) from None
        if name not in names:
            names.append(name)
    current = cluster.acme or state.Acme(domains=[])
    if action == "add":
        if directory is not None and not directory.startswith("https://"):
            raise CtoolError(f"--directory {directory!r} must be an https:// URL")
        if ca_bundle is not None and not ca_bundle.is_file():
            raise CtoolError(f"--ca-bundle {ca_bundle} is not a file")
        port = https_port if https_port is not None else current.https_port
        if port == cluster.http_port:
            raise CtoolError(f"--https-port {port} is the cluster's HTTP port, where the CA's challenges are answered")
        updated = state.Acme(
            domains=[*current.domains, *(n for n in names if n not in current.domains)],
            https_port=port,
            directory=directory if directory is not None else current.directory,
            ca_bundle=str(ca_bundle.resolve()) if ca_bundle is not None else current.ca_bundle,
            email=email if email is not None else current.email,
        )
    elif action == "remove":
        unknown = [n for n in names if n not in current.domains]
        if unknown:
            raise CtoolError(f"not among the cluster's ACME domains: {', '.join(unknown)} (ctool acme list)")
        updated = dataclasses.replace(current, domains=[d for d in current.domains if d not in names])
    else:  # pragma: no cover - the CLI offers add and remove only
        raise CtoolError(f"ctool acme {action}: unknown action")
    cluster.acme = updated if updated.domains else None
    if updated.ca_bundle and not Path(updated.ca_bundle).is_file():
        raise CtoolError(f"the CA bundle {updated.ca_bundle} is gone: give --ca-bundle again")
    cluster.cmd = Command("acme", [action, *names])
    for node in cluster.nodes:
        assert node.actual is not None
        node.desired = NodeState(address=node.actual.address, version=node.actual.version)
    found = state.problems(cluster)
    if found:
        raise CtoolError("the cluster's new configuration is invalid: " + "; ".join(found))
    _prepare_dry_run(opts)
    state.save(cluster, opts.state_folder)
    return _apply(opts, cluster, "acme")


# --------------------------------------------------------------------------------------------
# replace


def _answers(address: str, port: int, timeout: float = 3.0) -> bool:
    """Whether something accepts a TCP connection on ``address``:``port``."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def replace(opts: Options, old: str, new: str, node_root: str | None = None) -> Cluster:
    """``ctool replace OLD NEW`` (SE): the dead node ``old`` (its address or name) is rebuilt on
    the host ``new``, which takes over its place in the ring, its data and its server.

    ``node_root``: the new node's root; by default the old node's, with the old address in it
    replaced by the new one (``/`` on real hosts stays ``/``)."""
    cluster = _idle(opts, same_version=True)
    if cluster.edition != "SE":
        raise CtoolError(
            f"ctool replace is for SE clusters: a {cluster.edition} cluster is one node that holds all of "
            "its data, there is no other node to rebuild a new one from (take a backup, install the new "
            "host with ctool init CE and restore the backup there)"
        )
    _not_scylla(cluster, "replace")
    try:
        ipaddress.ip_address(new)
    except ValueError:
        raise CtoolError(f"{new!r} is not an IP address: give the new node by address") from None
    node = next((n for n in cluster.nodes if old in (n.name, n.address)), None)
    if node is None:
        raise CtoolError(f"host {old} not found in cluster: host not found")
    old_address = node.address
    if any(n.address == new for n in cluster.nodes):
        raise CtoolError(f"host {new} already exists in cluster")
    if new in cluster.replaced_addresses:
        raise CtoolError(f"address {new} is in replaced list: address cannot be used")
    if not node.jmx_port:
        raise CtoolError(
            f"node {node.name} has no JMX port (installed before ctool had one): nodetool cannot follow the replacement"
        )
    root = node_root if node_root is not None else node.node_root.replace(old_address, new)
    if not root.startswith("/"):
        raise CtoolError(f"--node-root {root!r} must be an absolute path")
    root = state.node_root_for(root, new)
    if not opts.dry_run:
        port = cluster.acme.https_port if cluster.acme else cluster.http_port
        live = [what for what, p in (("Cassandra", 9042), ("server", port)) if _answers(old_address, p)]
        if live:
            raise CtoolError(
                f"cannot replace a live node {old_address}: its {' and '.join(live)} answer(s): "
                "command cannot be executed (stop the node first, or leave it be)"
            )
    if not _answers(new, cluster.ssh_port):
        raise CtoolError(f"host {new} is not available: host is not available (SSH port {cluster.ssh_port})")
    version = cluster.actual_version
    cluster.cmd = Command("replace", [old_address, new])
    cluster.desired_version = version
    for other in cluster.nodes:
        assert other.actual is not None
        if other is node:
            other.desired = NodeState(address=new, version=version)
            other.actual = None
            other.node_root = root
        else:
            other.desired = NodeState(
                address=other.actual.address, version=other.actual.version, steps_done=list(REPLACE_NEW_NODE_ONLY)
            )
    found = state.problems(cluster)
    if found:
        raise CtoolError("the cluster's new configuration is invalid: " + "; ".join(found))
    _prepare_dry_run(opts)
    state.save(cluster, opts.state_folder)
    return _apply(opts, cluster, "replace")


# --------------------------------------------------------------------------------------------
# repeat


def repeat(opts: Options) -> Cluster | None:
    """Finish the pending command; None if there is none."""
    _prepare_dry_run(opts)
    try:
        cluster = state.load(opts.state_folder)
    except state.StateError as exc:
        raise CtoolError(str(exc)) from None
    if cluster.cmd is None:
        return None
    check_version(cluster)
    found = state.problems(cluster)
    if found:
        raise CtoolError("cluster.json is inconsistent, not repeating: " + "; ".join(found))
    for node in cluster.nodes:
        node.error = ""
    return _apply(opts, cluster, "repeat")


# --------------------------------------------------------------------------------------------
# mon and alert: cluster.json changes, then the monitoring step on every node


MIN_PASSWORD = 8


def _change(opts: Options, cluster: Cluster, command: Command) -> Cluster:
    """Record ``command`` with every node's desired state, then run the monitoring step."""
    found = state.problems(cluster)
    if found:
        raise CtoolError("the new configuration is invalid: " + "; ".join(found))
    cluster.cmd = command
    cluster.desired_version = cluster.actual_version
    for node in cluster.nodes:
        assert node.actual is not None
        node.desired = NodeState(address=node.actual.address, version=node.actual.version)
    state.save(cluster, opts.folder)
    return _apply(opts, cluster, command.kind)


def mon_password(opts: Options, password: str) -> Cluster:
    """Basic auth on every node's Prometheus and Alertmanager: ``admin`` with ``password``."""
    if len(password) < MIN_PASSWORD:
        raise CtoolError(f"the password is too short: {MIN_PASSWORD} characters or more")
    cluster = _idle(opts, consistent=False, same_version=True)
    token = monitoring.read_token(opts.folder) or monitoring.new_token(opts.folder)
    cluster.monitoring.web_users = {
        monitoring.ADMIN_USER: monitoring.hash_password(password),
        monitoring.CTOOL_USER: monitoring.hash_password(token),
    }
    return _change(opts, cluster, Command("mon", ["password"]))


def _uploaded_refusal(cluster: Cluster) -> None:
    if cluster.monitoring.alertmanager_config:
        raise CtoolError(
            "alertmanager.yml was uploaded (ctool alert configs upload): edit that file and upload it again, "
            "or go back to ctool's receivers with: ctool alert configs reset"
        )


def alert_add(opts: Options, kind: str, target: str, smarthost: str = "", sender: str = "") -> Cluster:
    receiver = state.Receiver(kind=kind, target=target, smarthost=smarthost, sender=sender)
    found = state.receiver_problems(receiver)
    if found:
        raise CtoolError("; ".join(found))
    cluster = _idle(opts, consistent=False, same_version=True)
    _uploaded_refusal(cluster)
    if any((r.kind, r.target) == (kind, target) for r in cluster.monitoring.receivers):
        raise CtoolError(f"the {kind} receiver {target} is there already")
    cluster.monitoring.receivers.append(receiver)
    return _change(opts, cluster, Command("alert", ["add", kind]))


def alert_remove(opts: Options, kind: str, target: str) -> Cluster:
    cluster = _idle(opts, consistent=False, same_version=True)
    _uploaded_refusal(cluster)
    kept = [r for r in cluster.monitoring.receivers if (r.kind, r.target) != (kind, target)]
    if len(kept) == len(cluster.monitoring.receivers):
        there = ", ".join(f"{r.kind} {r.target}" for r in cluster.monitoring.receivers) or "none"
        raise CtoolError(f"no {kind} receiver {target} (the receivers: {there})")
    cluster.monitoring.receivers = kept
    return _change(opts, cluster, Command("alert", ["remove", kind]))


def alert_download(opts: Options, target: Path) -> None:
    """Write the alertmanager.yml every node has (rendered from cluster.json) to ``target``."""
    try:
        cluster = state.load(opts.folder)
    except state.StateError as exc:
        raise CtoolError(str(exc)) from None
    try:
        target.write_text(monitoring.alertmanager_config(cluster))
    except OSError as exc:
        raise CtoolError(f"cannot write {target}: {exc}") from None
    target.chmod(0o600)  # receivers' URLs and mail settings may hold secrets


def alert_upload(opts: Options, source: Path) -> Cluster:
    """Put the whole alertmanager.yml ``source`` on every node, after amtool accepts it."""
    try:
        text = source.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CtoolError(f"cannot read {source}: {exc}") from None
    if not text.strip():
        raise CtoolError(f"{source} is empty")
    try:
        monitoring.check_alertmanager_config(text)
    except monitoring.MonitoringError as exc:
        raise CtoolError(f"{source} is not a valid alertmanager.yml: {exc}") from None
    cluster = _idle(opts, consistent=False, same_version=True)
    cluster.monitoring.alertmanager_config = text
    return _change(opts, cluster, Command("alert", ["configs", "upload"]))


def alert_reset(opts: Options) -> Cluster:
    """Forget an uploaded alertmanager.yml: the one rendered from the receivers again."""
    cluster = _idle(opts, consistent=False, same_version=True)
    if not cluster.monitoring.alertmanager_config:
        raise CtoolError("no alertmanager.yml was uploaded: the nodes already have ctool's")
    cluster.monitoring.alertmanager_config = ""
    return _change(opts, cluster, Command("alert", ["configs", "reset"]))


# --------------------------------------------------------------------------------------------
# Carrying out a command


def _connection(cluster: Cluster) -> engine.Connection:
    return engine.Connection(
        user=cluster.ssh_user, port=cluster.ssh_port, key=cluster.ssh_key, known_hosts=cluster.known_hosts
    )


def server_storage(cluster: Cluster) -> str:
    """The server's ``--storage``: SQLite under the node root (CE), the nodes' Cassandra (SE)."""
    if cluster.edition != "SE":
        return ""
    hosts = ",".join(n.address for n in cluster.nodes)
    return f"cassandra://{hosts}/?replication={min(3, len(cluster.nodes))}"


def _variables(cluster: Cluster) -> dict[str, Any]:
    acme = cluster.acme
    return {
        "acme_on": acme is not None,
        "acme_domains": list(acme.domains) if acme else [],
        "https_port": acme.https_port if acme else 0,
        "acme_directory": acme.directory if acme else "",
        "acme_ca_bundle": acme.ca_bundle if acme else "",
        "acme_email": acme.email if acme else "",
        "server_wheel": cluster.server_wheel,
        "server_storage": server_storage(cluster),
        "check_retries": 90 if cluster.edition == "SE" else 30,
        "cassandra_jars": cluster.cassandra_jars,
        "java": "/usr/bin/java",
        "server_version": cluster.desired_version or cluster.actual_version,
        "http_port": cluster.http_port,
        "node_python": engine.NODE_PYTHON,
        "ctool_version": __version__,
        "metrics_port": monitoring.METRICS_PORT,
        "rules_file": str(RULES_FILE),
        "dashboards_dir": str(DASHBOARDS_DIR),
        "server_apps": [{"name": a.name, "image": a.image} for a in cluster.apps],
        "server_stop_seconds": SERVER_STOP_SECONDS,
        "switch_venv": cluster.cmd is None or cluster.cmd.kind in ("init", "replace"),
        "edition": cluster.edition,
        "backup_name": cluster.cmd.args[0] if cluster.cmd is not None and cluster.cmd.kind == "restore" else "",
        "restore_moment": backups.name_at(dt.datetime.now(dt.UTC)),
    }


def _target(node: Node, cluster: Cluster | None = None, folder: Path | None = None) -> engine.Target:
    extra: dict[str, Any] = {}
    if cluster is not None and cluster.scylla is not None:
        extra = {
            "scylla_list": cluster.scylla.list_url,
            "scylla_key": cluster.scylla.key_file,
            "scylla_developer_mode": cluster.scylla.developer_mode,
            "scylla_seeds": [n.address for n in cluster.nodes],
        }
    elif cluster is not None and cluster.edition == "SE":
        from voedger.ctool import cassandra

        addresses = [n.address for n in cluster.nodes]
        place = (node.node_root, node.address, addresses.index(node.address), addresses)
        extra = cassandra.node_files(*place, cluster.cassandra_heap, node.jmx_port)
        extra["nodetool"] = cassandra.nodetool(node.node_root, node.jmx_port) if node.jmx_port else ""
        replacing = _replacing(cluster)
        if replacing is not None and node.address == replacing[1]:
            # The first boot of the new node's Cassandra, in place of the dead one (step replace).
            first = cassandra.node_files(*place, cluster.cassandra_heap, node.jmx_port, replace_address=replacing[0])
            extra["cassandra_replace_yaml"] = first["cassandra_yaml"]
            extra["cassandra_replace_script"] = first["cassandra_script"]
            extra["replaced_address"] = replacing[0]
    if cluster is not None and folder is not None:
        extra = {**extra, **monitoring.node_files(cluster, node, folder)}
    extra = {**extra, "service_manager": node.service_manager or units.SUPERVISORD}
    return engine.Target(name=node.name, address=node.address, node_root=node.node_root, extra=extra)


def _service_manager(result: engine.StepResult, node: Node) -> str:
    """What the prepare step found runs the node's services (a dry run: what it was)."""
    found = str(result.outputs.get(node.name, {}).get("The node's init system", {}).get("stdout", "")).strip()
    return found if found in units.MANAGERS else node.service_manager


def _replacing(cluster: Cluster) -> tuple[str, str] | None:
    """The old and the new address while a ``replace`` is pending, else None."""
    if cluster.cmd is None or cluster.cmd.kind != "replace" or len(cluster.cmd.args) != 2:
        return None
    return cluster.cmd.args[0], cluster.cmd.args[1]


def _apply(opts: Options, cluster: Cluster, command_name: str) -> Cluster:
    assert cluster.cmd is not None
    problem = engine.environment_ok()
    if problem:
        raise CtoolError(problem)
    folder = opts.state_folder
    steps = steps_of(cluster)
    log = CommandLog(folder, command_name)
    log.write(f"ctool {__version__}: {command_name} of '{cluster.cmd}'" + (" (dry run)" if opts.dry_run else ""))
    files = [("the server's wheel", cluster.server_wheel), ("Cassandra's jars", cluster.cassandra_jars)]
    files += [(f"the image of {a.name}", a.image) for a in cluster.apps]
    if cluster.scylla is not None:
        files.append(("Scylla's repository key", cluster.scylla.key_file))
    for what, path in files:
        if path and not Path(path).is_file():
            raise CtoolError(f"{what} {path} is gone: put it back, then run: ctool repeat")
    failed: dict[str, tuple[str, str, bool]] = {}
    began = time.monotonic()
    try:
        with Display(log, verbose=opts.verbose or opts.dry_run) as display:
            pending = [n for n in cluster.nodes if n.desired is not None]
            replacing = _replacing(cluster)
            if replacing is not None:
                # The new node's server starts first: the cluster is whole again before the
                # others are restarted one by one with the new contact points.
                pending.sort(key=lambda n: n.address != replacing[1])
            for node in pending:
                assert node.desired is not None
                done = len([s for s in steps if s in node.desired.steps_done])
                display.add_node(node.name, f"{node.name} ({node.address})", len(steps), done)

            def run(step: str, nodes: list[Node]) -> None:
                """``step`` on those of ``nodes`` that have not done it; results recorded."""
                todo: list[Node] = []
                for node in nodes:
                    assert node.desired is not None
                    if node.name in failed:
                        continue
                    if step in node.desired.steps_done:
                        display.step_skipped(node.name, step)
                        continue
                    todo.append(node)
                if not todo:
                    return
                for node in todo:
                    display.step_started(node.name, step)
                result = engine.run_step(
                    step,
                    [_target(n, cluster, opts.folder) for n in todo],
                    _connection(cluster),
                    log.dir / "ansible",
                    _variables(cluster),
                    display.event,
                    check=opts.dry_run,
                    verbose=opts.verbose,
                )
                for node in todo:
                    assert node.desired is not None
                    if result.ok(node.name):
                        if step == "prepare":
                            node.service_manager = _service_manager(result, node)
                        node.desired.steps_done.append(step)
                        display.step_done(node.name, step)
                    else:
                        why = result.failures[node.name]
                        node.error = f"step {step}: {why}"
                        failed[node.name] = (step, why, node.name in result.unreachable)
                        display.step_failed(node.name, step, why)
                state.save(cluster, folder)

            first_serial = next((i for i, st in enumerate(steps) if st in SERIAL_STEPS), len(steps))
            for step in steps[:first_serial]:
                run(step, pending)
                if failed and cluster.cmd.kind == "restore":
                    break
            serial = steps[first_serial:]
            if serial and not failed:
                # One node at a time; the first failure stops the rollout, the others serve on.
                for index, node in enumerate(pending):
                    assert node.desired is not None
                    todo_steps = [st for st in serial if st not in node.desired.steps_done]
                    node_began = time.monotonic()
                    for step in serial:
                        run(step, [node])
                        if failed:
                            break
                    if failed:
                        break
                    if todo_steps and not opts.dry_run:
                        took = time.monotonic() - node_began
                        others = " (the other nodes served meanwhile)" if len(pending) > 1 else ""
                        display.say(
                            f"{node.name}: version {node.desired.version} serves; "
                            f"the server was stopped and back in {took:.1f} s{others}"
                        )
                        if index + 1 < len(pending):
                            time.sleep(SETTLE_SECONDS)

            def kept(what: str, last_error: str, fixed: str = "the cause is fixed") -> CtoolError:
                """The command stays in cluster.json for ``ctool repeat``; the error to raise."""
                cluster.last_attempt_error = last_error
                state.save(cluster, folder)
                message = (
                    f"ctool {command_name} ({cluster.cmd}){what}"
                    + f"\nThe command is kept in {state.cluster_file(folder)}; the log is {log.path}."
                    + f"\nWhen {fixed}, run: ctool repeat"
                )
                log.write(message)
                return CtoolError(message)

            if not failed and not opts.dry_run and _has_cassandra_ring(cluster):
                problems = ring_settles(cluster, time.monotonic() + RING_SECONDS)
                if problems:
                    raise kept(
                        f": every step is done, but the database ring is not whole {RING_SECONDS:.0f} s after: "
                        + "; ".join(problems),
                        "database ring: " + "; ".join(problems),
                        "the cause is fixed (ctool status shows the ring)",
                    )
            if not failed:
                for node in pending:
                    assert node.desired is not None
                    node.actual = NodeState(address=node.desired.address, version=node.desired.version)
                    node.desired = None
                    node.error = ""
                cluster.actual_version = cluster.desired_version or cluster.actual_version
                cluster.desired_version = ""
                if replacing is not None and replacing[0] not in cluster.replaced_addresses:
                    cluster.replaced_addresses.append(replacing[0])
                cluster.cmd = None
                cluster.last_attempt_error = ""
                state.save(cluster, folder)
                if replacing is not None:
                    display.say(f"Replaced address: {replacing[0]} (by {replacing[1]})")
                display.say(
                    f"{cluster.edition} cluster: {command_name} done in {time.monotonic() - began:.1f} s"
                    + (" (dry run: nothing was changed on the nodes)" if opts.dry_run else "")
                    + f"; log: {log.path}"
                )
                return cluster
            lines = []
            for name, (step, why, unreachable) in failed.items():
                node = cluster.node(name)
                where = f"node {name} ({node.address})"
                if unreachable:
                    lines.append(
                        f"{where} is unreachable over SSH (port {cluster.ssh_port}) at step '{step}': {why}\n"
                        "  check that the host is up and its sshd answers"
                    )
                else:
                    lines.append(f"{where} failed at step '{step}': {why}")
            raise kept(
                " did not complete:\n" + "\n".join(lines),
                "; ".join(f"{name}: step {step}: {why}" for name, (step, why, _u) in failed.items()),
            )
    finally:
        log.close()


# --------------------------------------------------------------------------------------------
# validate and status


def validate(opts: Options) -> list[str]:
    try:
        cluster = state.load(opts.folder)
    except state.StateError as exc:
        return [str(exc)]
    found = state.problems(cluster)
    try:
        check_version(cluster)
    except CtoolError as exc:
        found.append(str(exc))
    return found


@dataclass(frozen=True, slots=True)
class NodeStatus:
    name: str
    address: str
    role: str
    state: str
    ssh: str
    services: list[str]
    server: str
    prometheus: str = ""
    alertmanager: str = ""


def server_answer(address: str, port: int, timeout: float = 3.0, https: bool = False) -> str:
    """What ``/api/check`` answers; over HTTPS (ACME), the certificate names the domains, not
    the address asked: it is not verified here, only whether the server answers."""
    try:
        scheme = "https" if https else "http"
        response = httpx.get(f"{scheme}://{address}:{port}/api/check", timeout=timeout, verify=not https)
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    return f"{response.status_code} {response.text.strip()[:40]}"


STATUS_RING_SECONDS = 20.0
"""How long ``ctool status`` tries before it calls the ring not healthy: a node the driver has
just marked down (a busy JVM, a connection timed out) is often back a few seconds later."""


def _has_cassandra_ring(cluster: Cluster) -> bool:
    return cluster.edition == "SE" and cluster.scylla is None


def ring_settles(cluster: Cluster, deadline: float) -> list[str]:
    """Ask the ring (every node up, each sees the others, each answers at ALL) until it is whole
    or ``deadline`` (monotonic) passes; what is still wrong then, or ``[]``."""
    from voedger.devtools import cassandra as dev

    ring = [dev.Node(n.name, n.address, Path("/"), "", "", 0, None, False) for n in cluster.nodes]
    while True:
        problems = dev.ring_problems(ring)
        if not problems or time.monotonic() + 2 > deadline:
            return problems
        time.sleep(2)


def ring_status(cluster: Cluster) -> str:
    """SE: what the Cassandra ring looks like from here (every node sees every other), else ""."""
    if cluster.edition != "SE":
        return ""
    problems = ring_settles(cluster, time.monotonic() + STATUS_RING_SECONDS)
    if problems:
        return "database ring: NOT healthy: " + "; ".join(problems)
    return f"database ring: healthy, {len(cluster.nodes)} nodes, each sees the others"


def _cluster_view(address: str, port: int, timeout: float) -> dict[str, Any] | str:
    """A node's ``GET /api/cluster``, or why there is none."""
    try:
        reply = httpx.get(f"http://{address}:{port}/api/cluster", timeout=timeout)
        reply.raise_for_status()
        view = reply.json()
        view["members"] = [dict(m) for m in view["members"]]
        view["partitions"] = [dict(p) for p in view["partitions"]]
    except httpx.HTTPError as exc:
        return f"no cluster view ({type(exc).__name__})"
    except (ValueError, KeyError, TypeError):
        return "no cluster view (the answer is not one)"
    return dict(view)


def servers_view(cluster: Cluster, port: int = monitoring.METRICS_PORT, timeout: float = 3.0) -> list[str]:
    """What the servers say of who serves which partition (``GET /api/cluster`` on each node's
    metrics port, asked of all nodes at once), a line each: SE, the members each server sees,
    whether it is settled (every partition owned by a live member, the members' rows agreeing
    with the leases) and how many partitions each node owns; CE, the partitions its one process
    serves. Then, when two or more servers of a cluster answered, whether they name the same
    owner and epoch for every partition (each view is its server's last read of the leases)."""
    names = {n.address: n.name for n in cluster.nodes}
    with ThreadPoolExecutor(max_workers=max(1, len(cluster.nodes))) as pool:
        views = list(pool.map(lambda n: _cluster_view(n.address, port, timeout), cluster.nodes))
    lines = []
    owners_seen: dict[str, dict[tuple[str, int], str]] = {}
    for node, view in zip(cluster.nodes, views, strict=True):
        if isinstance(view, str):
            lines.append(f"{node.name}: {view}")
            continue
        members, parts = view["members"], view["partitions"]
        if not view.get("cluster"):
            lines.append(f"{node.name}: one process serves {len(parts)} partitions")
            continue
        member_names = {str(m.get("id")): _host_name(names, m.get("address")) for m in members}
        owners: dict[str, int] = {}
        for part in parts:
            owners[str(part.get("owner", ""))] = owners.get(str(part.get("owner", "")), 0) + 1
        shares = [f"{member_names[str(m.get('id'))]} {owners.pop(str(m.get('id')), 0)}" for m in members]
        unowned = sum(owners.values())
        if view.get("settled"):
            verdict = "settled"
        else:
            why = [f"{unowned} partitions without a live owner"] if unowned else []
            if not view.get("claims_agree"):
                why.append("the members' rows disagree with the leases")
            verdict = "NOT settled" + (f" ({'; '.join(why)})" if why else "")
        lines.append(
            f"{node.name}: {len(members)} members, {verdict}; partitions owned: {', '.join(shares)} of {len(parts)}"
        )
        owners_seen[node.name] = {
            (str(p.get("app")), _int(p.get("partition"))): _owner_text(p, member_names) for p in parts
        }
    if len(owners_seen) > 1:
        lines.append(views_compared(owners_seen))
    return lines


def _host_name(names: dict[str, str], address: object) -> str:
    host = httpx.URL(str(address or "")).host
    return names.get(host, host or "?")


def _int(value: object) -> int:
    return value if isinstance(value, int) else -1


def _owner_text(part: dict[str, Any], member_names: dict[str, str]) -> str:
    owner = str(part.get("owner", ""))
    if not owner:
        return "none"
    return f"{member_names.get(owner, 'a process gone')} (epoch {part.get('epoch')})"


def views_compared(owners_seen: dict[str, dict[tuple[str, int], str]]) -> str:
    """One line: whether the servers' views (node name: (app, partition) -> "owner (epoch N)")
    name the same owner and epoch for every partition, and where they do not (three at most)."""
    keys = sorted(set().union(*owners_seen.values()))
    differ = [k for k in keys if len({seen.get(k, "none") for seen in owners_seen.values()}) > 1]
    servers = ", ".join(owners_seen)
    if not differ:
        return f"views agree: {servers} name the same owner and epoch for all {len(keys)} partitions"
    shown = "; ".join(
        f"{app}/{pid}: "
        + ", ".join(f"{name} says {seen.get((app, pid), 'none')}" for name, seen in owners_seen.items())
        for app, pid in differ[:3]
    )
    more = f"; and {len(differ) - 3} more" if len(differ) > 3 else ""
    return (
        f"views differ on {len(differ)} of {len(keys)} partitions ({shown}{more}):"
        " a move under way, or a server that has not read the leases since"
    )


def status(opts: Options) -> tuple[Cluster, list[NodeStatus]]:
    try:
        cluster = state.load(opts.folder)
    except state.StateError as exc:
        raise CtoolError(str(exc)) from None
    credentials = monitoring.auth(opts.folder) if cluster.monitoring.web_users else None
    log = CommandLog(opts.folder, "status")
    try:
        result = engine.run_step(
            "status",
            [_target(n) for n in cluster.nodes],
            _connection(cluster),
            log.dir / "ansible",
            _variables(cluster),
            lambda e: log.write(f"{e.node}: {e.task}: {e.kind} {e.message}".rstrip()),
        )
    finally:
        log.close()
    rows = []
    for node in cluster.nodes:
        if node.desired is not None:
            steps = steps_of(cluster) if cluster.edition in STEPS else ()
            done = [s for s in steps if s in node.desired.steps_done]
            what = f"pending {cluster.cmd}: {len(done)}/{len(steps)} steps done"
        else:
            what = f"installed {node.actual.version}" if node.actual else "unknown"
        if node.error:
            what += f" (error: {node.error[:80]})"
        out = result.outputs.get(node.name, {}).get("supervisorctl status", {})
        lines = [ln for ln in str(out.get("stdout", "")).splitlines() if ln.strip()]
        if node.name in result.unreachable:
            ssh = "unreachable"
        elif node.name in result.failures:
            ssh = "error: " + result.failures[node.name][:80]
        else:
            ssh = "ok"
        if not lines and ssh == "ok":
            idle = "no unit of ctool's" if node.service_manager == units.SYSTEMD else "supervisord not running"
            lines = [str(out.get("stderr", "") or idle).strip()[:80]]
        rows.append(
            NodeStatus(
                name=node.name,
                address=node.address,
                role=node.role,
                state=what,
                ssh=ssh,
                services=[" ".join(ln.split()[:2]) for ln in lines],
                server=(
                    server_answer(node.address, cluster.acme.https_port, https=True)
                    if cluster.acme
                    else server_answer(node.address, cluster.http_port)
                ),
                prometheus=monitoring.targets_up(node.address, credentials),
                alertmanager=monitoring.alertmanager_state(node.address, credentials),
            )
        )
    return cluster, rows
