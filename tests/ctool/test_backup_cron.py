"""``ctool backup cron``: the schedule checked at the edge, recorded in cluster.json, written as a
cron.d file whose command is the very ``ctool backup node`` calls (unit tier: no cron daemon
runs here, so the entry's command is run by ``/bin/sh`` as cron would run it)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.ctool.test_backups import installed
from tests.ctool.test_replace_state import installed_se
from voedger.cli import ctool
from voedger.ctool import backups, cron, ops, state


def run(folder: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(ctool.main, ["backup", "cron", *args, "--cluster-dir", str(folder)])
    return result.exit_code, result.output


def entry_line(path: Path) -> str:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#") and "=" not in ln.split()[0]]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("schedule", ["0 2 * * *", "*/15 * * * *", "30 1 * * mon-fri", "@daily", " 0  3 1 * * "])
def test_schedules_cron_takes(schedule: str) -> None:
    assert cron.check_schedule(schedule) == " ".join(schedule.split())


@pytest.mark.parametrize(
    "schedule", ["", "0 2 * *", "0 2 * * * 5", "61 * * * *", "@every 1h", "@reboot", "a b c d e", "0 2 % * *"]
)
def test_what_is_no_schedule(schedule: str) -> None:
    with pytest.raises(cron.CronError, match="is not a cron schedule"):
        cron.check_schedule(schedule)


def test_next_run() -> None:
    at = dt.datetime(2026, 12, 5, 16, 0, tzinfo=dt.UTC)
    assert cron.next_run("0 2 * * *", at) == dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)
    assert cron.next_run("@hourly", at) == dt.datetime(2026, 12, 5, 17, 0, tzinfo=dt.UTC)


def test_refusals_exit_2_and_leave_cluster_json_as_it_was(tmp_path: Path) -> None:
    installed(tmp_path)
    before = (tmp_path / "cluster.json").read_bytes()
    for args, expected in (
        (["61 2 * * *"], "is not a cron schedule"),
        (["0 2 * *"], "five fields"),
        (["0 2 * * *", "--expire", "soon"], "--expire 'soon' is not a duration"),
        (["0 2 * * *", "--remove"], "--remove takes no SCHEDULE"),
        (["--expire", "7d"], "--expire goes with a SCHEDULE"),
    ):
        code, out = run(tmp_path, *args, "--cron-dir", str(tmp_path / "cron.d"))
        assert code == 2 and expected in out, (args, out)
    assert (tmp_path / "cluster.json").read_bytes() == before
    assert not (tmp_path / "cron.d").exists()
    code, out = run(tmp_path / "none", "0 2 * * *", "--cron-dir", str(tmp_path / "cron.d"))
    assert code == 1 and "no cluster.json" in out


def test_set_show_replace_remove(tmp_path: Path) -> None:
    folder, cron_dir = tmp_path / "cluster", tmp_path / "cron.d"
    installed_se(folder)
    code, out = run(folder)
    assert code == 0 and "No backup cron schedule." in out
    code, out = run(folder, "0 2 * * *", "--expire", "30d", "--cron-dir", str(cron_dir))
    assert code == 0 and "Cron schedule set successfully" in out and "next run: " in out, out
    path = cron_dir / cron.FILE_NAME
    data = json.loads((folder / "cluster.json").read_text())
    assert data["Cron"] == {"Backup": "0 2 * * *", "ExpireTime": "30d", "File": str(path)}
    assert state.load(folder).cron == state.Cron("0 2 * * *", "30d", str(path))
    assert not state.problems(state.load(folder))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    schedule, user, command = cron.cron_command(entry_line(path))
    assert schedule == "0 2 * * *" and user and "backup node node-1" in command and "backup node node-3" in command
    assert "--expire 30d" in command
    code, out = run(folder)
    assert code == 0 and f"Backup cron: 0 2 * * *, --expire 30d ({path})" in out

    # A new schedule replaces the old one, in the same place; without --expire, none.
    code, out = run(folder, "@daily")
    assert code == 0, out
    assert state.load(folder).cron == state.Cron("@daily", "", str(path))
    schedule, _user, command = cron.cron_command(entry_line(path))
    assert schedule == "@daily" and "--expire" not in command
    assert [p.name for p in cron_dir.iterdir()] == [cron.FILE_NAME]

    code, out = run(folder, "--remove")
    assert code == 0 and f"Cron schedule removed ({path})" in out
    assert not path.exists() and "Cron" not in json.loads((folder / "cluster.json").read_text())
    code, out = run(folder, "--remove")
    assert code == 0 and "No backup cron schedule." in out


def test_a_cron_dir_that_cannot_be_written(tmp_path: Path) -> None:
    installed(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out = run(tmp_path, "0 2 * * *", "--cron-dir", str(blocker / "cron.d"))
    assert code == 1 and "cannot write" in out and "--cron-dir" in out
    assert state.load(tmp_path).cron is None


def test_cron_in_cluster_json_is_checked(tmp_path: Path) -> None:
    cluster = installed_se(tmp_path)
    cluster.cron = state.Cron("0 25 * * *", "1y")
    found = [p for p in state.problems(cluster) if p.startswith("Cron")]
    assert len(found) == 1 and "is not a cron schedule" in found[0]
    cluster.cron = state.Cron("0 2 * * *", "1y")
    assert any("'1y' is not a duration" in p for p in state.problems(cluster))


def test_the_entry_runs_the_same_backup_node_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry's command, run by /bin/sh as cron runs it (``\\%`` unescaped), calls a program
    with exactly the arguments of ``ctool backup node`` for every node with one backup name, and
    those arguments, given to ctool's own command line, make the calls ``backup node`` makes."""
    folder = tmp_path / "a folder"  # a space: the quoting is tested too
    installed_se(folder)
    calls = tmp_path / "calls"
    stub = tmp_path / "ctool"
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(str(calls))}\necho done\n')
    stub.chmod(0o755)
    cluster = state.load(folder)
    entry = cron.Entry("0 2 * * *", "root", folder, [n.name for n in cluster.nodes], "7d", [str(stub)])
    _schedule, _user, command = cron.cron_command(entry.render().splitlines()[-1])
    env = {"PATH": entry.path, "SHELL": "/bin/sh", "HOME": str(tmp_path)}
    subprocess.run(["/bin/sh", "-c", command], check=True, env=env, cwd="/", timeout=30)
    made = [line.split() for line in calls.read_text().splitlines()]
    assert len(made) == 3
    name = made[0][3]
    assert backups.moment_of(name) <= dt.datetime.now(dt.UTC)
    assert made == [c[1:] for c in entry.backup_calls(name)]
    assert (folder / cron.LOG_FILE).read_text() == "done\ndone\ndone\n"

    seen: list[tuple[Any, ...]] = []

    def backup_node(opts: ops.Options, host: str, name: str | None = None, expire: str | None = None) -> Any:
        seen.append((opts.folder, host, name, expire))
        return backups.Backup(name or "", sizes={host: 1}), []

    monkeypatch.setattr(ops, "backup_node", backup_node)
    monkeypatch.chdir(folder)  # the entry cds into the cluster's folder
    for args in made:
        result = CliRunner().invoke(ctool.main, args)
        assert result.exit_code == 0, result.output
    assert seen == [(folder, f"node-{i}", name, "7d") for i in (1, 2, 3)]


def test_ctool_program_is_this_installation() -> None:
    program = cron.ctool_program()
    assert os.access(program[0], os.X_OK)
    result = subprocess.run([*program, "backup", "cron", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--expire" in result.stdout and "--remove" in result.stdout
