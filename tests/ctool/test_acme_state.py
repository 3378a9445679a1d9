"""``ctool acme add|remove|list`` before any node is touched: cluster.json's Acme record, the
checks, the server's program rendered with the --acme-* flags (no SSH: unit tier)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from voedger import __version__
from voedger.cli import ctool
from voedger.ctool import ops, state, units
from voedger.ctool.state import Acme, Cluster, NodeState

TEMPLATE = Path(ops.__file__).parent / "playbooks" / "templates" / "voedger.conf.j2"


def installed_ce(folder: Path) -> Cluster:
    cluster = Cluster(
        edition="CE",
        ssh_port=22,
        ssh_user="root",
        ssh_key="/k",
        known_hosts="/kh",
        http_port=80,
        actual_version=__version__,
        nodes=[state.Node(name="n1-node", role="N1Node", node_root="/", actual=NodeState("10.0.0.11", __version__))],
    )
    state.save(cluster, folder)
    return cluster


def test_acme_round_trips_and_is_checked() -> None:
    cluster = Cluster("CE", 22, "root", "/k", "/kh", 80, actual_version=__version__)
    cluster.nodes = [state.Node("n1-node", "N1Node", "/", actual=NodeState("10.0.0.11", __version__))]
    cluster.acme = Acme(["voedger.test"], 8443, "https://ca.test/dir", "/ca.pem", "ops@voedger.test")
    data = json.loads(json.dumps(cluster.to_json()))
    assert data["Acme"] == {
        "Domains": ["voedger.test"],
        "HTTPSPort": 8443,
        "Directory": "https://ca.test/dir",
        "CABundle": "/ca.pem",
        "Email": "ops@voedger.test",
    }
    assert Cluster.from_json(data).acme == cluster.acme
    assert state.problems(cluster) == []
    cluster.acme.https_port = 80
    assert any("is the HTTPPort" in p for p in state.problems(cluster))
    cluster.acme = Acme([])
    assert "Acme lists no Domains" in state.problems(cluster)


def test_bad_acme_commands_change_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = ["--cluster-dir", str(tmp_path)]
    missing = runner.invoke(ctool.main, ["acme", "add", "voedger.test", *folder])
    assert missing.exit_code == 1 and "run ctool init first" in missing.output
    installed_ce(tmp_path)
    before = (tmp_path / "cluster.json").read_text()
    for args, message in [
        (["add", "*.voedger.test"], "wildcard certificates need DNS-01"),
        (["add", "10.0.0.11"], "is not a domain name"),
        (["add", "voedger.test", "--https-port", "80"], "is the cluster's HTTP port"),
        (["add", "voedger.test", "--directory", "http://ca.test/dir"], "must be an https:// URL"),
        (["add", "voedger.test", "--ca-bundle", str(tmp_path / "none.pem")], "is not a file"),
        (["remove", "voedger.test"], "not among the cluster's ACME domains: voedger.test"),
    ]:
        result = runner.invoke(ctool.main, ["acme", *args, *folder])
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
    assert (tmp_path / "cluster.json").read_text() == before
    listed = runner.invoke(ctool.main, ["acme", "list", *folder])
    assert listed.exit_code == 0 and "No ACME domains" in listed.output


def test_the_program_gets_the_acme_flags() -> None:
    cluster = Cluster("CE", 22, "root", "/k", "/kh", 80, actual_version=__version__)
    cluster.acme = Acme(["voedger.test", "api.voedger.test"], 443, "https://ca.test/dir", "/ca.pem", "ops@x.test")
    # As Ansible renders it: with the templates' folder, whose macros.j2 it imports.
    variables = {**ops._variables(cluster), "node_root": "/n", "node_address": "10.0.0.11"}
    command = next(line for line in units.render(TEMPLATE.name, variables).splitlines() if line.startswith("command="))
    assert (
        "--host 10.0.0.11 --port 443 --metrics-port 8000 --acme-domain voedger.test --acme-domain api.voedger.test"
        in command
    )
    assert "--acme-http-port 80 --acme-directory https://ca.test/dir" in command
    assert "--acme-ca-bundle /n/etc/voedger/acme-ca.pem --acme-email ops@x.test" in command
    cluster.acme = None
    plain = next(
        line
        for line in units.render(
            TEMPLATE.name, {**ops._variables(cluster), "node_root": "/n", "node_address": "10.0.0.11"}
        ).splitlines()
        if line.startswith("command=")
    )
    assert plain.endswith("--host 10.0.0.11 --port 80 --metrics-port 8000") and "acme" not in plain
