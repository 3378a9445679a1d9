"""``ctool backup cron``: a scheduled ``backup node`` of every database node, as a cron.d file.

As in Voedger's ctool, the schedule runs ctool itself: ``backup node`` for each database node
in turn (CE: its one node; SE: every node, each a Cassandra node), all with one backup name,
so that each run makes one backup ``ctool restore`` can put back, and with ``--expire`` each
node's older backups are removed. The entry therefore lives on the machine that runs ctool,
where cluster.json, the SSH key and Ansible are (Voedger's runs on the node that holds its
ctool): a cron.d file, ``/etc/cron.d/voedger-backup`` by default, with the user who runs
ctool, the cluster's folder and the ``ctool`` program of this installation. Nodes are named by
their names, which ``ctool replace`` keeps, so the file outlives a replacement.
"""

from __future__ import annotations

import datetime as dt
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from croniter import croniter  # type: ignore[import-untyped,unused-ignore]

from voedger.ctool import backups
from voedger.ctool.atomic import write_atomic

FILE_NAME = "voedger-backup"
"""The cron.d file's name (cron.d ignores names with dots)."""
DEFAULT_DIR = Path("/etc/cron.d")
LOG_FILE = "log/backup-cron.log"
"""Where each run's output goes, in the cluster's folder (each command also writes its own log)."""
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
"""The nicknames cron.d understands (``@reboot`` is no schedule of backups)."""
MARK = "# ctool backup cron"


class CronError(ValueError):
    """A schedule or a duration that is not one, or a file that cannot be written."""


def check_schedule(text: str) -> str:
    """The schedule as cron.d takes it: five fields (minute, hour, day of month, month, day of
    week) or one of :data:`DESCRIPTORS`; whitespace collapsed."""
    schedule = " ".join(text.split())
    if schedule.startswith("@"):
        if schedule in DESCRIPTORS:
            return schedule
        raise CronError(f"{text!r} is not a cron schedule: the nicknames are {', '.join(DESCRIPTORS)}")
    if len(schedule.split(" ")) != 5 or "%" in schedule or not croniter.is_valid(schedule):
        raise CronError(
            f"{text!r} is not a cron schedule: five fields, minute hour day-of-month month day-of-week "
            "(such as '0 2 * * *', every day at 02:00), or @daily, @hourly, @weekly, @monthly"
        )
    return schedule


def check_expire(text: str) -> str:
    try:
        backups.parse_duration(text)
    except backups.BackupError as exc:
        raise CronError(str(exc)) from None
    return text.strip()


def next_run(schedule: str, after: dt.datetime) -> dt.datetime:
    """When cron runs ``schedule`` next after ``after`` (in the time zone of ``after``)."""
    nickname = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *"}
    nickname |= {"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
    result: dt.datetime = croniter(nickname.get(schedule, schedule), after).get_next(dt.datetime)
    return result


def ctool_program() -> list[str]:
    """This installation's ``ctool``: the script beside this Python, else ``python -m``."""
    beside = Path(sys.executable).with_name("ctool")
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-m", "voedger.cli.ctool"]


@dataclass(frozen=True, slots=True)
class Entry:
    """What the cron.d file says: when, as whom, from which folder, which nodes."""

    schedule: str
    user: str
    folder: Path
    nodes: Sequence[str]
    expire: str = ""
    program: Sequence[str] = ()
    path: str = "/usr/local/bin:/usr/bin:/bin"

    def backup_calls(self, name: str) -> list[list[str]]:
        """The ``ctool`` calls one run makes, with the backup's name ``name``."""
        expire = ["--expire", self.expire] if self.expire else []
        return [[*self.program, "backup", "node", node, name, *expire] for node in self.nodes]

    def command(self) -> str:
        """The shell command of the entry, as ``/bin/sh`` runs it (before cron's ``%`` escapes)."""
        folder = shlex.quote(str(self.folder))
        expire = f" --expire {shlex.quote(self.expire)}" if self.expire else ""
        calls = [
            f'{shlex.join([*self.program, "backup", "node", node])} "$name"{expire} >>{LOG_FILE} 2>&1'
            for node in self.nodes
        ]
        return f"cd {folder} || exit 1; mkdir -p log; name=$(date -u +%Y%m%dT%H%M%SZ); " + "; ".join(calls)

    def render(self) -> str:
        """The cron.d file: the environment cron gives the command, then the one entry."""
        # cron turns an unescaped % of a command into a newline: every % is escaped.
        line = f"{self.schedule} {self.user} {self.command().replace('%', chr(92) + '%')}"
        return (
            f"{MARK}: written by ctool, replaced by the next 'ctool backup cron', removed by"
            " 'ctool backup cron --remove'.\n"
            f"# backup node of {', '.join(self.nodes)}, one backup name per run"
            f"{', older than ' + self.expire + ' removed' if self.expire else ''}.\n"
            "SHELL=/bin/sh\n"
            f"PATH={self.path}\n"
            f"{line}\n"
        )


def cron_command(line: str) -> tuple[str, str, str]:
    """A cron.d entry line split as cron does: (schedule, user, the command ``/bin/sh`` runs,
    with ``\\%`` turned back into ``%``)."""
    fields = line.split()
    width = 1 if fields[0].startswith("@") else 5
    head = line.split(None, width + 1)
    schedule, user, command = " ".join(head[:width]), head[width], head[width + 1]
    if "%" in command.replace("\\%", ""):
        raise CronError("an unescaped % in the command: cron would cut it there")
    return schedule, user, command.replace("\\%", "%")


def write(path: Path, text: str) -> None:
    """``text`` into ``path`` atomically, 0644 (cron ignores files that others may write)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text, 0o644)
    except OSError as exc:
        raise CronError(f"cannot write {path}: {exc.strerror} (run ctool as root, or give --cron-dir)") from None


def remove(path: Path) -> bool:
    """The file removed; False if there was none."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CronError(f"cannot remove {path}: {exc.strerror}") from None
    return True
