"""cluster.json: its shape, atomic writes and the consistency checks (no SSH: unit tier)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from voedger import __version__
from voedger.cli import ctool
from voedger.ctool import atomic, state
from voedger.ctool.state import Cluster, Command, Node, NodeState


def pending_ce() -> Cluster:
    return Cluster(
        edition="CE",
        ssh_port=22,
        ssh_user="root",
        ssh_key="/k",
        known_hosts="/kh",
        http_port=80,
        desired_version=__version__,
        cmd=Command("init", ["CE", "10.0.0.11"]),
        nodes=[
            Node(
                name="n1-node",
                role="N1Node",
                node_root="/",
                desired=NodeState("10.0.0.11", __version__, ["prepare"]),
            )
        ],
    )


def test_round_trip_keeps_desired_and_actual_state(tmp_path: Path) -> None:
    cluster = pending_ce()
    state.save(cluster, tmp_path)
    data = json.loads((tmp_path / "cluster.json").read_text())
    assert data["Cmd"] == {"Kind": "init", "Args": ["CE", "10.0.0.11"]}
    assert data["Nodes"][0]["DesiredNodeState"] == {
        "Address": "10.0.0.11",
        "NodeVersion": __version__,
        "StepsDone": ["prepare"],
    }
    assert data["Nodes"][0]["ActualNodeState"] is None
    again = state.load(tmp_path)
    assert again == cluster
    assert state.problems(again) == []
    # Written atomically: no temporary file is left beside it.
    assert [p.name for p in tmp_path.iterdir()] == ["cluster.json"]


def test_a_failed_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state.save(pending_ce(), tmp_path)
    before = (tmp_path / "cluster.json").read_text()
    changed = pending_ce()
    changed.http_port = 8080

    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        state.save(changed, tmp_path)
    assert (tmp_path / "cluster.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["cluster.json"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: setattr(c, "edition", "XE"), "Edition is 'XE'"),
        (lambda c: c.nodes.append(Node("n2", "N1Node", "/", desired=NodeState("10.0.0.12", "0.1.0"))), "one node"),
        (lambda c: setattr(c.nodes[0].desired, "address", "not-an-ip"), "is not an IP address"),
        (lambda c: setattr(c.nodes[0], "node_root", "relative/root"), "not an absolute path"),
        (lambda c: setattr(c.nodes[0], "role", "DBNode"), "NodeRole 'DBNode'"),
        (lambda c: setattr(c, "cmd", None), "no command (Cmd) is pending"),
        (lambda c: setattr(c, "ssh_port", 0), "SSHPort 0"),
        (lambda c: setattr(c, "desired_version", "latest"), "'latest' is not a version"),
        (lambda c: setattr(c.nodes[0], "desired", None), "neither an actual nor a desired state"),
    ],
)
def test_problems_name_what_is_wrong(change: object, expected: str) -> None:
    cluster = pending_ce()
    change(cluster)  # type: ignore[operator]
    found = state.problems(cluster)
    assert any(expected in p for p in found), found


def test_se_needs_three_nodes_with_distinct_addresses() -> None:
    cluster = pending_ce()
    cluster.edition = "SE"
    cluster.nodes = [
        Node(f"node-{i}", "DBAppNode", "/", desired=NodeState(addr, __version__))
        for i, addr in enumerate(["10.0.0.1", "10.0.0.2", "10.0.0.2"], 1)
    ]
    found = state.problems(cluster)
    assert any("10.0.0.2 is used by another node" in p for p in found), found
    cluster.nodes = cluster.nodes[:2]
    assert any("3 nodes or more" in p for p in state.problems(cluster))


def test_validate_command(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(ctool.main, ["validate", "--cluster-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "run ctool init first" in missing.output
    state.save(pending_ce(), tmp_path)
    ok = runner.invoke(ctool.main, ["validate", "--cluster-dir", str(tmp_path)])
    assert ok.exit_code == 0 and "cluster.json is valid" in ok.output
    broken = pending_ce()
    broken.nodes[0].desired.address = "nowhere"  # type: ignore[union-attr]
    broken.desired_version = "9.0.0"
    state.save(broken, tmp_path)
    bad = runner.invoke(ctool.main, ["validate", "--cluster-dir", str(tmp_path)])
    assert bad.exit_code == 1
    assert "'nowhere' is not an IP address" in bad.output
    assert f"cluster version 9.0.0 is newer than ctool version {__version__}" in bad.output
    (tmp_path / "cluster.json").write_text("{not json")
    assert "is not JSON" in runner.invoke(ctool.main, ["validate", "--cluster-dir", str(tmp_path)]).output


def test_init_refuses_bad_arguments_before_touching_anything(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("x")
    runner = CliRunner()
    base = ["init", "--cluster-dir", str(tmp_path), "--ssh-key", str(key), "--known-hosts", str(key)]
    r = runner.invoke(ctool.main, [*base[:1], "XE", "10.0.0.1", *base[1:]])
    assert r.exit_code == 1 and "invalid cluster edition 'XE' (expected CE or SE)" in r.output
    r = runner.invoke(ctool.main, [*base[:1], "CE", "10.0.0.1", "10.0.0.2", *base[1:]])
    assert r.exit_code == 1 and "invalid number of arguments" in r.output
    r = runner.invoke(ctool.main, [*base[:1], "CE", "node.example", *base[1:]])
    assert r.exit_code == 1 and "is not an IP address" in r.output
    r = runner.invoke(ctool.main, [*base[:1], "CE", "10.0.0.1", *base[1:], "--node-root", "rel"])
    assert r.exit_code == 1 and "must be an absolute path" in r.output
    r = runner.invoke(ctool.main, [*base[:1], "CE", "10.0.0.1", *base[1:-1], str(tmp_path / "none")])
    assert r.exit_code == 1 and "ctool checks the nodes' host keys" in r.output
    assert not (tmp_path / "cluster.json").exists()
    state.save(pending_ce(), tmp_path)
    r = runner.invoke(ctool.main, [*base[:1], "CE", "10.0.0.1", *base[1:]])
    assert r.exit_code == 1 and "the cluster configuration already exists" in r.output and "ctool repeat" in r.output


def test_repeat_with_nothing_pending(tmp_path: Path) -> None:
    done = pending_ce()
    done.cmd = None
    done.desired_version = ""
    done.actual_version = __version__
    node = done.nodes[0]
    node.actual, node.desired = NodeState("10.0.0.11", __version__), None
    state.save(done, tmp_path)
    r = CliRunner().invoke(ctool.main, ["repeat", "--cluster-dir", str(tmp_path)])
    assert r.exit_code == 0 and "Nothing to repeat" in r.output
