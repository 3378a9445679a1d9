"""Backups of a cluster's data: their names, their age, and what a node reports of them.

A backup is one folder per node under ``var/backups/voedger`` of the node root, with the same
name on every node: the UTC moment it was taken (``20261205T091500Z``), so names sort as times
and say when. CE: the SQLite files of the data directory, each copied with SQLite's online backup
API while the server runs. SE: a Cassandra snapshot of the applications' keyspaces on every node
(nodetool over the node's local JMX port: a flush, then hard links of the SSTables, which are
immutable), moved out of the data directory, and the schema as CQL (the driver's metadata). A
folder is written as ``.NAME.partial`` and renamed when complete; ``backup.json`` in it says
what it holds.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

NAME_FORMAT = "%Y%m%dT%H%M%SZ"
NAME_PATTERN = re.compile(r"^\d{8}T\d{6}Z$")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SYSTEM_KEYSPACES = re.compile(r"^system(_.*)?$")
"""Cassandra's own keyspaces: not backed up, not restored (a node keeps its own)."""


class BackupError(ValueError):
    """A name or a duration that is not one; the message says what is expected."""


def name_at(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(NAME_FORMAT)


def moment_of(name: str) -> dt.datetime:
    if not NAME_PATTERN.match(name):
        raise BackupError(f"{name!r} is not a backup's name (such as 20261205T091500Z: ctool backup list shows them)")
    return dt.datetime.strptime(name, NAME_FORMAT).replace(tzinfo=dt.UTC)


def parse_duration(text: str) -> dt.timedelta:
    """``30s``, ``15m`` (minutes), ``12h``, ``7d``, ``2w``."""
    found = _DURATION.match(text.strip())
    if not found or int(found.group(1)) == 0:
        raise BackupError(
            f"--expire {text!r} is not a duration: a number and a unit, s, m (minutes), h, d or w (such as 7d)"
        )
    return dt.timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])


def expired_before(now: dt.datetime, expire: dt.timedelta) -> str:
    """The name of a backup taken ``expire`` before ``now``: older names are expired."""
    return name_at(now - expire)


@dataclass(slots=True)
class Backup:
    """One backup as the nodes report it: where it is, and its size on each."""

    name: str
    edition: str = ""
    version: str = ""
    sizes: dict[str, int] = field(default_factory=dict)
    """Per node name, the bytes of its folder."""

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def collect(reports: Iterable[tuple[str, str]]) -> list[Backup]:
    """The backups from each node's report (``backup.json`` documents, one a line), by name."""
    found: dict[str, Backup] = {}
    for node, text in reports:
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                data = json.loads(line)
                name = str(data["Name"])
            except (ValueError, KeyError, TypeError):
                continue
            if not NAME_PATTERN.match(name):
                continue
            backup = found.setdefault(name, Backup(name, str(data.get("Edition", "")), str(data.get("Version", ""))))
            backup.sizes[node] = int(data.get("Bytes", 0) or 0)
    return [found[n] for n in sorted(found)]


def schema_cql(addresses: Sequence[str]) -> str:
    """The applications' keyspaces and tables as CQL, from the CQL driver's metadata."""
    import logging

    from cassandra.cluster import Cluster

    logging.getLogger("cassandra").setLevel(logging.ERROR)
    cluster = Cluster(list(addresses), protocol_version=4, connect_timeout=15)
    try:
        cluster.connect()
        keyspaces = cluster.metadata.keyspaces
        return "\n\n".join(
            keyspaces[name].export_as_string() for name in sorted(keyspaces) if not SYSTEM_KEYSPACES.match(name)
        )
    finally:
        cluster.shutdown()


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
