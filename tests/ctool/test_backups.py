"""Backup names, durations and reports; the refusals of upgrade, backup and restore (unit tier)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.ctool.test_state import pending_ce
from voedger import __version__
from voedger.cli import ctool
from voedger.ctool import backups, state, wheel
from voedger.ctool.state import App, NodeState


def test_names_sort_as_times_and_say_when() -> None:
    moment = dt.datetime(2026, 12, 5, 9, 15, 0, tzinfo=dt.UTC)
    name = backups.name_at(moment)
    assert name == "20261205T091500Z" and backups.moment_of(name) == moment
    earlier = backups.expired_before(moment, backups.parse_duration("7d"))
    assert earlier == "20261128T091500Z" and earlier < name
    with pytest.raises(backups.BackupError, match="is not a backup's name"):
        backups.moment_of("replaced-20261205T091500Z")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("12h", 43200), ("7d", 604800), ("2w", 1209600)]
)
def test_durations(text: str, seconds: int) -> None:
    assert backups.parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["7", "7 days", "0d", "-1d", "1y", ""])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(backups.BackupError, match="is not a duration"):
        backups.parse_duration(text)


def test_reports_merge_per_backup() -> None:
    line = '{{"Name": "{0}", "Edition": "SE", "Version": "0.1.0", "Node": "n", "Bytes": {1}}}'
    found = backups.collect(
        [
            ("node-1", line.format("20261205T091500Z", 100) + "\n" + line.format("20261204T091500Z", 7)),
            ("node-2", line.format("20261205T091500Z", 50) + "\nnot json\n"),
        ]
    )
    assert [b.name for b in found] == ["20261204T091500Z", "20261205T091500Z"]
    assert found[1].sizes == {"node-1": 100, "node-2": 50} and found[1].total == 150
    assert found[0].sizes == {"node-1": 7}


def test_wheel_versions() -> None:
    assert wheel.public("0.1.0+ops1") == "0.1.0"
    with pytest.raises(wheel.WheelError, match="with a local label"):
        wheel.build(Path("/nonexistent"), version="0.2.0")


def test_apps_and_jmx_ports_round_trip(tmp_path: Path) -> None:
    cluster = pending_ce()
    cluster.apps = [App("harness/loadtest", "/x/loadtest.var")]
    cluster.nodes[0].jmx_port = 7201
    state.save(cluster, tmp_path)
    data = json.loads((tmp_path / "cluster.json").read_text())
    assert data["Apps"] == [{"Name": "harness/loadtest", "Image": "/x/loadtest.var"}]
    assert data["Nodes"][0]["JMXPort"] == 7201
    again = state.load(tmp_path)
    assert again.apps == cluster.apps and again.nodes[0].jmx_port == 7201
    cluster.apps = [App("noslash", "/x")]
    cluster.nodes[0].jmx_port = 70000
    found = state.problems(cluster)
    assert any("'noslash' is not an application name" in p for p in found)
    assert any("JMXPort 70000 is not a port number" in p for p in found)


def installed(tmp_path: Path) -> None:
    done = pending_ce()
    done.cmd, done.desired_version, done.actual_version = None, "", __version__
    done.nodes[0].actual, done.nodes[0].desired = NodeState("10.0.0.11", __version__), None
    state.save(done, tmp_path)


def test_commands_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = ["--cluster-dir", str(tmp_path)]
    r = runner.invoke(ctool.main, ["backup", "now", *folder])
    assert r.exit_code == 1 and "no cluster.json" in r.output
    state.save(pending_ce(), tmp_path)
    for args in (["upgrade"], ["backup", "now"], ["restore", "20261205T091500Z"]):
        r = runner.invoke(ctool.main, [*args, *folder])
        assert r.exit_code == 1 and "is not completed: finish it first with: ctool repeat" in r.output, args
    installed(tmp_path)
    r = runner.invoke(ctool.main, ["backup", "now", "--expire", "soon", *folder])
    assert r.exit_code == 1 and "--expire 'soon' is not a duration" in r.output
    r = runner.invoke(ctool.main, ["restore", "yesterday", *folder])
    assert r.exit_code == 1 and "'yesterday' is not a backup's name" in r.output
    bad = tmp_path / "voedger-0.2.0-py3-none-any.whl"
    bad.write_text("x")
    r = runner.invoke(ctool.main, ["upgrade", "--wheel", str(bad), *folder])
    assert r.exit_code == 1 and "this ctool installs" in r.output
    empty = ["--cluster-dir", str(tmp_path / "new"), "--ssh-key", str(bad), "--known-hosts", str(bad)]
    r = runner.invoke(ctool.main, ["init", "CE", "10.0.0.1", *empty, "--app", "x"])
    assert r.exit_code == 1 and "--app 'x' must be owner/name=IMAGE.var" in r.output
    r = runner.invoke(ctool.main, ["init", "CE", "10.0.0.1", *empty, "--app", f"a/b={tmp_path}/none.var"])
    assert r.exit_code == 1 and "is not a file" in r.output
    assert not (tmp_path / "new").exists()


def test_backup_node_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = ["--cluster-dir", str(tmp_path)]
    state.save(pending_ce(), tmp_path)
    r = runner.invoke(ctool.main, ["backup", "node", "n1-node", *folder])
    assert r.exit_code == 1 and "is not completed: finish it first with: ctool repeat" in r.output
    installed(tmp_path)
    r = runner.invoke(ctool.main, ["backup", "node", "10.0.0.99", *folder])
    assert r.exit_code == 1 and "host 10.0.0.99 not found in cluster" in r.output
    r = runner.invoke(ctool.main, ["backup", "node", "n1-node", "monday", *folder])
    assert r.exit_code == 1 and "'monday' is not a backup's name" in r.output
    r = runner.invoke(ctool.main, ["backup", "node", "10.0.0.11", "--expire", "soon", *folder])
    assert r.exit_code == 1 and "--expire 'soon' is not a duration" in r.output
