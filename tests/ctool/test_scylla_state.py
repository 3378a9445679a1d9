"""``ctool init SE --database scylla`` before any node is touched (unit tier): the refusals, what
cluster.json records, the steps and the variables the ``scylla`` playbook gets, its scylla.yaml,
and the commands that refuse a Scylla cluster. The playbook itself has run on no host: no test
node reaches Scylla's repository or runs systemd (its syntax is checked in test_units.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from click.testing import CliRunner

from tests.ctool.test_replace_state import installed_se
from voedger.cli import ctool
from voedger.ctool import ops, state, units
from voedger.ctool.state import Cluster, Scylla

LIST = "https://repository.invalid/scylladb-2025.1.list"
"""A list file's URL (the reserved .invalid domain: nothing is fetched)."""


def scylla_cluster(folder: Path) -> Cluster:
    cluster = installed_se(folder)
    for node in cluster.nodes:
        node.node_root, node.jmx_port, node.service_manager = "/", 0, "systemd"
    cluster.cassandra_heap = ""
    cluster.scylla = Scylla(LIST, "/keys/scylladb.gpg")
    state.save(cluster, folder)
    return cluster


def init(folder: Path, *args: str) -> tuple[int, str]:
    key = folder / "id"
    key.write_text("k")
    common = ["--ssh-key", str(key), "--known-hosts", str(key), "--cluster-dir", str(folder / "c")]
    result = CliRunner().invoke(ctool.main, ["init", *args, *common])
    return result.exit_code, result.output


def test_cluster_json_and_its_checks(tmp_path: Path) -> None:
    cluster = scylla_cluster(tmp_path)
    data = json.loads((tmp_path / "cluster.json").read_text())
    assert data["Database"] == "scylla" and "CassandraJars" not in data and "CassandraHeap" not in data
    assert data["Scylla"] == {"List": LIST, "Key": "/keys/scylladb.gpg", "DeveloperMode": False}
    again = state.load(tmp_path)
    assert again.scylla == cluster.scylla and again.database == "scylla" and not state.problems(again)
    assert json.loads(json.dumps(installed_se(tmp_path / "c").to_json()))["Database"] == "cassandra"
    again.nodes[0].node_root = "/nodes/a"
    again.scylla = Scylla("ftp://x", "")
    found = state.problems(again)
    assert any("Scylla.List 'ftp://x' is not an http(s) URL" in p for p in found)
    assert any("Scylla.Key is empty" in p for p in found)
    assert any("node node-1: Scylla is installed on hosts whose NodeRoot is /" in p for p in found)


def test_steps_and_variables(tmp_path: Path) -> None:
    cluster = scylla_cluster(tmp_path)
    cluster.cmd = state.Command("init", ["SE"])
    assert ops.steps_of(cluster) == ("prepare", "scylla", "server", "service", "monitoring", "check")
    target = ops._target(cluster.nodes[1], cluster)
    assert target.extra["scylla_seeds"] == [n.address for n in cluster.nodes]
    assert target.extra["scylla_list"] == LIST and target.extra["scylla_developer_mode"] is False
    assert "cassandra_yaml" not in target.extra and target.extra["service_manager"] == "systemd"
    assert ops.server_storage(cluster).startswith("cassandra://")  # Scylla speaks CQL


def test_scylla_yaml(tmp_path: Path) -> None:
    cluster = scylla_cluster(tmp_path)
    node = cluster.nodes[2]
    values = {"node_address": node.address, **ops._target(node, cluster).extra}
    config = yaml.safe_load(units.render("scylla.yaml.j2", values))
    assert config["listen_address"] == config["rpc_address"] == node.address
    assert config["api_address"] == "127.0.0.1" and config["native_transport_port"] == 9042
    seeds = config["seed_provider"][0]["parameters"][0]["seeds"]
    assert seeds == ",".join(n.address for n in cluster.nodes)


SE_SCYLLA = ["SE", "10.0.0.1", "10.0.0.2", "10.0.0.3", "--database", "scylla"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["CE", "10.0.0.1", "--database", "scylla"], "--database scylla is for SE clusters"),
        (
            [*SE_SCYLLA, "--node-root", "/n/{host}"],
            "not with --node-root",
        ),
        (SE_SCYLLA, "needs --scylla-list"),
        ([*SE_SCYLLA, "--scylla-list", "x", "--scylla-key", "k"], "--scylla-list 'x' is not an http(s) URL"),
        ([*SE_SCYLLA, "--scylla-list", LIST, "--scylla-key", "/nokey"], "--scylla-key /nokey is not a file"),
    ],
)
def test_init_refusals_touch_nothing(tmp_path: Path, args: list[str], expected: str) -> None:
    code, out = init(tmp_path, *args)
    assert code == 1 and expected in out, out
    assert not (tmp_path / "c").exists()


def test_scylla_options_need_database_scylla(tmp_path: Path) -> None:
    code, out = init(tmp_path, "SE", "10.0.0.1", "10.0.0.2", "10.0.0.3", "--scylla-list", LIST)
    assert code == 2 and "go with --database scylla" in out


def test_commands_that_drive_cassandra_refuse(tmp_path: Path) -> None:
    scylla_cluster(tmp_path)
    runner = CliRunner()
    folder = ["--cluster-dir", str(tmp_path)]
    for args, what in (
        (["backup", "now"], "ctool cannot do backup and restore of a Scylla cluster"),
        (["backup", "node", "node-1"], "ctool cannot do backup and restore of a Scylla cluster"),
        (["restore", "20261205T091500Z"], "ctool cannot do backup and restore of a Scylla cluster"),
        (["replace", "node-1", "10.0.0.99"], "ctool cannot do replace of a Scylla cluster"),
    ):
        result = runner.invoke(ctool.main, [*args, *folder])
        assert result.exit_code == 1 and what in result.output, (args, result.output)
