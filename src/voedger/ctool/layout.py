"""Where ctool puts things on a node, relative to the node's root (``/`` on a real host)."""

from __future__ import annotations

from pathlib import PurePosixPath

VENV = PurePosixPath("opt/voedger/venv")
WHEELS = PurePosixPath("opt/voedger/wheels")
ETC = PurePosixPath("etc/voedger")
SUPERVISORD_CONF = ETC / "supervisord.conf"
PROGRAMS = ETC / "supervisor.d"
DATA = PurePosixPath("var/lib/voedger")
LOGS = PurePosixPath("var/log/voedger")
RUN = PurePosixPath("run/voedger")
SUPERVISORD_PID = RUN / "supervisord.pid"
SUPERVISOR_SOCK = RUN / "supervisor.sock"


def under(root: str, relative: PurePosixPath) -> str:
    """``relative`` under the node root ``root``."""
    return str(PurePosixPath(root) / relative)


BACKUPS = PurePosixPath("var/backups/voedger")
"""One folder per backup, named after its moment (``backups.NAME_FORMAT``), with ``backup.json``."""
CASSANDRA_HOME = PurePosixPath("var/lib/cassandra")
