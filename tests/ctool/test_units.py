"""systemd units of a node's services (unit tier): rendered from the playbooks' templates for a
sample cluster as ctool's steps render them and checked with ``systemd-analyze verify`` in a root
of their own; where systemd runs the services (cluster.json's ServiceManager, found by the
prepare step), the monitoring step writes units instead of supervisord programs. No machine
here runs systemd, so no unit is started: the tests on nodes use supervisord."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ctool.test_acme_state import installed_ce
from tests.ctool.test_replace_state import installed_se
from voedger.ctool import engine, monitoring, ops, state, units
from voedger.ctool.state import Acme, App, Cluster, Node

SYSTEM_UNITS = Path("/usr/lib/systemd/system")


@pytest.fixture(autouse=True)
def no_cassandra_jars(monkeypatch: pytest.MonkeyPatch) -> None:
    """SE's node variables without Cassandra's jars (its files are not what is tested here)."""
    from voedger.ctool import cassandra

    def node_files(*_args: Any, **_kwargs: Any) -> dict[str, str]:
        return {"cassandra_yaml": "", "cassandra_logback": "", "cassandra_script": ""}

    monkeypatch.setattr(cassandra, "node_files", node_files)


def on_systemd(cluster: Cluster) -> Cluster:
    for node in cluster.nodes:
        node.node_root, node.service_manager = "/", "systemd"
    return cluster


def variables(cluster: Cluster, node: Node, folder: Path) -> dict[str, Any]:
    """The variables a playbook sees for ``node``: the host's, as engine.run_step sets them."""
    target = ops._target(node, cluster, folder)
    return {
        **ops._variables(cluster),
        "node_name": target.name,
        "node_address": target.address,
        "node_root": target.node_root,
        **target.extra,
    }


def every_unit(cluster: Cluster, folder: Path) -> dict[str, str]:
    """Every unit of every node: (node, unit path) to its text."""
    out: dict[str, str] = {}
    for node in cluster.nodes:
        values = variables(cluster, node, folder)
        programs = ["voedger"] + (["cassandra"] if cluster.edition == "SE" else [])
        for program in programs:
            out[f"{node.name}:{units.unit_path(program)}"] = units.render(f"{program}.service.j2", values)
        for path, (text, _mode) in monitoring.files(cluster, node, folder).items():
            if path.endswith(".service"):
                out[f"{node.name}:{path}"] = text
    return out


def exec_starts(text: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(("ExecStart=", "ExecReload="))]


def verify(root: Path, texts: dict[str, str], stubs: bool = True) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify --root`` of ``texts`` (unit name to text), in ``root``: the
    system's own units copied in (the targets the units name), every program they start a stub."""
    if not (root / "usr/lib/systemd/system").exists():
        shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    units_dir = root / "etc/systemd/system"
    shutil.rmtree(units_dir, ignore_errors=True)
    units_dir.mkdir(parents=True)
    for name, text in texts.items():
        (units_dir / name).write_text(text)
        for command in exec_starts(text):
            binary = root / command.split()[0].lstrip("/")
            if stubs and not binary.exists():
                binary.parent.mkdir(parents=True, exist_ok=True)
                binary.write_text("#!/bin/sh\n")
                binary.chmod(0o755)
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *texts],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        check=False,
    )


needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not SYSTEM_UNITS.is_dir(),
    reason="systemd-analyze (Debian's systemd) is not installed here",
)


@needs_systemd_analyze
@pytest.mark.parametrize("edition", ["SE", "CE"])
def test_every_unit_of_a_sample_cluster_verifies(tmp_path: Path, edition: str) -> None:
    folder = tmp_path / "cluster"
    cluster = on_systemd(installed_se(folder) if edition == "SE" else installed_ce(folder))
    cluster.apps = [App("untill/restaurant", "/images/restaurant.var")]
    if edition == "CE":
        cluster.acme = Acme(["api.example.com"], directory="https://ca.example.com/dir", email="ops@example.com")
    found = every_unit(cluster, folder)
    per_node = 5 if edition == "SE" else 4
    assert len(found) == per_node * len(cluster.nodes)
    for node in cluster.nodes:
        texts = {key.rsplit("/", 1)[1]: text for key, text in found.items() if key.startswith(node.name + ":")}
        result = verify(tmp_path / "root", texts)
        assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
            node.name,
            result.stdout + result.stderr,
        )
        server = texts["voedger.service"]
        assert f"--host {node.address}" in server and "ExecStart=/opt/voedger/venv/bin/voedger server" in server
        assert "TimeoutStopSec=75" in server and "Restart=always" in server and "KillMode=control-group" in server
        if edition == "SE":
            assert "--storage cassandra://" in server
            assert "ExecStart=/opt/cassandra/bin/cassandra-node" in texts["voedger-cassandra.service"]
        else:
            assert "--acme-domain api.example.com" in server and "--acme-email ops@example.com" in server
        assert "ExecReload=/bin/kill -HUP $MAINPID" in texts["voedger-prometheus.service"]
        assert "ExecReload" not in texts["voedger-node-exporter.service"]


@needs_systemd_analyze
def test_verify_finds_a_broken_unit(tmp_path: Path) -> None:
    """The check has teeth: a wrong setting is reported (a warning: the units above must verify
    with no output at all), a program that is not there fails."""
    folder = tmp_path / "cluster"
    cluster = on_systemd(installed_ce(folder))
    text = units.render("voedger.service.j2", variables(cluster, cluster.nodes[0], folder))
    assert verify(tmp_path / "root", {"voedger.service": text}).returncode == 0
    broken = text.replace("KillMode=control-group", "KillMode=everything")
    result = verify(tmp_path / "root", {"voedger.service": broken})
    assert "Failed to parse kill mode specification, ignoring: everything" in result.stdout + result.stderr
    (tmp_path / "root/opt/voedger/venv/bin/voedger").unlink()
    result = verify(tmp_path / "root", {"voedger.service": text}, stubs=False)
    assert result.returncode != 0 and "is not executable" in result.stdout + result.stderr


@pytest.mark.parametrize("acme", [False, True])
def test_the_program_and_the_unit_run_the_same_server(tmp_path: Path, acme: bool) -> None:
    """One macro gives the server's command line to its supervisord program and to its unit."""
    cluster = installed_ce(tmp_path)
    cluster.apps = [App("untill/restaurant", "/images/restaurant.var")]
    if acme:
        cluster.acme = Acme(["api.example.com"], ca_bundle="/ca.pem")
    values = variables(cluster, cluster.nodes[0], tmp_path)
    program = units.render("voedger.conf.j2", values)
    unit = units.render("voedger.service.j2", values)
    command = re.search(r"^command=(.*)$", program, re.M)
    assert command is not None and exec_starts(unit) == [command.group(1)]
    assert ("--acme-ca-bundle" in command.group(1)) is acme


def test_monitoring_writes_units_or_programs(tmp_path: Path) -> None:
    cluster = installed_se(tmp_path)
    on_supervisord = monitoring.files(cluster, cluster.nodes[0], tmp_path)
    assert any(p.endswith("supervisor.d/monitoring.conf") for p in on_supervisord)
    assert not any(p.startswith("/etc/systemd/") for p in on_supervisord)
    on_systemd(cluster)
    written = monitoring.files(cluster, cluster.nodes[0], tmp_path)
    assert not any(p.endswith("monitoring.conf") for p in written)
    assert {p for p in written if p.startswith("/etc/systemd/")} == {
        "/etc/systemd/system/voedger-prometheus.service",
        "/etc/systemd/system/voedger-alertmanager.service",
        "/etc/systemd/system/voedger-node-exporter.service",
    }
    peers = [f"--cluster.peer={n.address}:9094" for n in cluster.nodes[1:]]
    alertmanager = written["/etc/systemd/system/voedger-alertmanager.service"][0]
    assert all(p in alertmanager for p in peers)


def test_service_manager_in_cluster_json(tmp_path: Path) -> None:
    cluster = installed_se(tmp_path)
    assert ops._target(cluster.nodes[0], cluster).extra["service_manager"] == "supervisord"
    cluster.nodes[0].service_manager = "systemd"
    found = state.problems(cluster)
    assert any("ServiceManager systemd needs the NodeRoot /" in p for p in found)
    cluster.nodes[0].node_root = "/"
    assert not state.problems(cluster)
    state.save(cluster, tmp_path)
    again = state.load(tmp_path)
    assert again.nodes[0].service_manager == "systemd" and again.nodes[1].service_manager == ""
    assert ops._target(again.nodes[0], again).extra["service_manager"] == "systemd"
    again.nodes[1].service_manager = "upstart"
    assert any("ServiceManager 'upstart' is not systemd or supervisord" in p for p in state.problems(again))


def test_the_prepare_step_answer_is_recorded() -> None:
    node = Node("node-1", "DBAppNode", "/")
    answer = {"node-1": {"The node's init system": {"stdout": "systemd\n"}}}
    found = engine.StepResult(failures={}, outputs=answer, unreachable=set())
    assert ops._service_manager(found, node) == "systemd"
    dry = engine.StepResult(failures={}, outputs={}, unreachable=set())
    assert ops._service_manager(dry, node) == ""


def has_ansible() -> bool:
    try:
        engine.ansible_playbook()
    except engine.EngineError:
        return False
    return True


@pytest.mark.skipif(not has_ansible(), reason="ansible-playbook is not installed (the ctool extra)")
def test_every_playbook_passes_ansible_syntax_check(tmp_path: Path) -> None:
    playbooks = sorted(units.templates_dir().parent.glob("*.yml"))
    assert len(playbooks) > 10
    result = subprocess.run(
        [engine.ansible_playbook(), "--syntax-check", "-i", "localhost,", *map(str, playbooks)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def shell_tasks(node: Any) -> list[dict[str, Any]]:
    """Every ``ansible.builtin.shell`` task of a playbook or a task file, blocks included."""
    found: list[dict[str, Any]] = []
    if isinstance(node, list):
        for item in node:
            found.extend(shell_tasks(item))
    elif isinstance(node, dict):
        if "ansible.builtin.shell" in node:
            found.append(node)
        for key in ("tasks", "block", "rescue"):
            found.extend(shell_tasks(node.get(key)))
    return found


@pytest.mark.parametrize("manager", ["systemd", "supervisord"])
def test_every_shell_task_is_valid_sh_for_either_manager(manager: str) -> None:
    """The shell of every task, rendered as Ansible renders it for ``manager`` (its Jinja
    branches), passes ``sh -n``: the systemd branches, which no host here runs, at least parse."""
    import jinja2
    import yaml  # type: ignore[import-untyped]

    env = jinja2.Environment(trim_blocks=True)
    env.filters["basename"] = lambda p: Path(str(p)).name
    env.tests["match"] = lambda value, pattern: re.match(pattern, str(value)) is not None
    values: dict[str, Any] = {
        "service_manager": manager,
        "node_root": "/",
        "conf": "/etc/voedger/supervisord.conf",
        "mon_conf": "/etc/voedger/monitoring",
        "changed_files": ["/etc/systemd/system/voedger-prometheus.service", "/etc/voedger/monitoring/prometheus.yml"],
        "init_system": {"stdout": manager},
        "scylla_developer_mode": False,
    }
    playbooks = units.templates_dir().parent
    checked = 0
    for path in sorted([*playbooks.glob("*.yml"), *playbooks.glob("tasks/*.yml")]):
        for task in shell_tasks(yaml.safe_load(path.read_text())):
            script = task["ansible.builtin.shell"]
            script = script["cmd"] if isinstance(script, dict) else script
            text = env.from_string(script).render({**values, **(task.get("vars") or {}), **values})
            result = subprocess.run(["sh", "-n", "-c", text], capture_output=True, text=True, timeout=30, check=False)
            assert result.returncode == 0, (path.name, task["name"], result.stderr, text)
            checked += 1
    assert checked > 20
