"""The monitoring files ctool renders, checked by Debian's promtool and amtool; the CLI's refusals
(no SSH: the unit tier, but promtool and amtool must be installed)."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import bcrypt
import pytest
import yaml
from click.testing import CliRunner

from voedger import __version__
from voedger.cli import ctool
from voedger.ctool import monitoring, state
from voedger.ctool.state import Cluster, Node, NodeState, Receiver
from voedger.monitoring import RULES_FILE

needs_tools = pytest.mark.skipif(
    shutil.which("promtool") is None or shutil.which("amtool") is None,
    reason="promtool/amtool missing: python -m voedger.devtools.monitoring install",
)

RECEIVERS = [
    Receiver("webhook", "http://127.0.0.1:9999/alerts"),
    Receiver("email", "ops@example.com", smarthost="mail.example.com:587", sender="alerts@example.com"),
    Receiver("discord", "https://discord.example.com/api/webhooks/1/abc"),
    Receiver("slack", "https://hooks.slack.example.com/services/T/B/X"),
]


def installed_se(root: Path, count: int = 3) -> Cluster:
    return Cluster(
        edition="SE",
        ssh_port=22,
        ssh_user="root",
        ssh_key="/k",
        known_hosts="/kh",
        http_port=80,
        cassandra_heap="1G",
        actual_version=__version__,
        nodes=[
            Node(
                name=f"node-{i}",
                role="DBAppNode",
                node_root=str(root / f"10.0.0.{i}"),
                actual=NodeState(f"10.0.0.{i}", __version__),
            )
            for i in range(1, count + 1)
        ],
    )


def tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)


@needs_tools
def test_prometheus_config_scrapes_every_node_and_passes_promtool(tmp_path: Path) -> None:
    cluster = installed_se(tmp_path)
    token = monitoring.new_token(tmp_path)
    cluster.monitoring.web_users = {"admin": monitoring.hash_password("secret-pw"), "ctool": "x"}
    node = cluster.nodes[1]
    conf = Path(monitoring.path(node, monitoring.CONF))
    conf.mkdir(parents=True)
    shutil.copy(RULES_FILE, conf / RULES_FILE.name)
    (conf / "ctool.token").write_text(token)
    text = monitoring.prometheus_config(cluster, node)
    (conf / "prometheus.yml").write_text(text)
    checked = tool("promtool", "check", "config", str(conf / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = sum(len(group["rules"]) for group in yaml.safe_load(RULES_FILE.read_text())["groups"])
    assert rules >= 20 and f"{rules} rules found" in checked.stdout + checked.stderr  # promtool loaded them all

    config = yaml.safe_load(text)
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert jobs == {
        "voedger": ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000"],
        "node": ["10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.3:9100"],
        "prometheus": ["10.0.0.2:9090"],
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "10.0.0.1:9093",
        "10.0.0.2:9093",
        "10.0.0.3:9093",
    ]
    # With a password, Prometheus authenticates as ctool with the token's file; no password in it.
    assert config["alerting"]["alertmanagers"][0]["basic_auth"]["password_file"] == str(conf / "ctool.token")
    assert token not in text and "secret-pw" not in text


@needs_tools
def test_alertmanager_config_of_every_kind_passes_amtool(tmp_path: Path) -> None:
    cluster = installed_se(tmp_path)
    cluster.monitoring.receivers = list(RECEIVERS)
    text = monitoring.alertmanager_config(cluster)
    monitoring.check_alertmanager_config(text)  # raises if amtool refuses it
    receiver = yaml.safe_load(text)["receivers"][0]
    assert receiver["webhook_configs"][0]["url"] == "http://127.0.0.1:9999/alerts"
    assert receiver["email_configs"][0]["smarthost"] == "mail.example.com:587"
    assert receiver["discord_configs"][0]["webhook_url"].startswith("https://discord.")
    assert receiver["slack_configs"][0]["api_url"].startswith("https://hooks.")
    # No receiver: a valid configuration still (alerts go nowhere).
    monitoring.check_alertmanager_config(monitoring.alertmanager_config(installed_se(tmp_path)))
    with pytest.raises(monitoring.MonitoringError, match="amtool check-config refuses it"):
        monitoring.check_alertmanager_config("route: {receiver: nobody}\nreceivers: []\n")


@needs_tools
def test_web_config_holds_bcrypt_hashes_only(tmp_path: Path) -> None:
    cluster = installed_se(tmp_path)
    assert monitoring.web_config(cluster) == ""  # no password: no auth
    cluster.monitoring.web_users = {"admin": monitoring.hash_password("secret-pw")}
    text = monitoring.web_config(cluster)
    assert "secret-pw" not in text
    stored = yaml.safe_load(text)["basic_auth_users"]["admin"]
    assert bcrypt.checkpw(b"secret-pw", stored.encode()) and not bcrypt.checkpw(b"other-pw", stored.encode())
    (tmp_path / "web.yml").write_text(text)
    checked = tool("promtool", "check", "web-config", str(tmp_path / "web.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alertmanagers_cluster_on_se_only(tmp_path: Path) -> None:
    se = installed_se(tmp_path)
    args = monitoring.alertmanager_cluster_args(se, se.nodes[0]).split()
    assert args == [
        "--cluster.listen-address=10.0.0.1:9094",
        "--cluster.advertise-address=10.0.0.1:9094",
        "--cluster.peer=10.0.0.2:9094",
        "--cluster.peer=10.0.0.3:9094",
    ]
    ce = installed_se(tmp_path, count=1)
    assert monitoring.alertmanager_cluster_args(ce, ce.nodes[0]) == "--cluster.listen-address="


def test_token_is_written_0600(tmp_path: Path) -> None:
    assert monitoring.read_token(tmp_path) == "" and monitoring.auth(tmp_path) is None
    token = monitoring.new_token(tmp_path)
    assert stat.S_IMODE(monitoring.token_path(tmp_path).stat().st_mode) == 0o600
    assert monitoring.auth(tmp_path) == ("ctool", token)


def test_receiver_problems_name_what_is_wrong() -> None:
    assert all(state.receiver_problems(r) == [] for r in RECEIVERS)
    assert "not an http(s) URL" in state.receiver_problems(Receiver("webhook", "ftp://x"))[0]
    problems = state.receiver_problems(Receiver("email", "nobody", smarthost="mail", sender="a@b"))
    assert len(problems) == 2 and "'nobody' is not an e-mail address" in problems[0] and "host:port" in problems[1]
    assert "is not one of" in state.receiver_problems(Receiver("pager", "x"))[0]


def test_monitoring_round_trips_in_cluster_json(tmp_path: Path) -> None:
    cluster = installed_se(tmp_path)
    cluster.monitoring.receivers = list(RECEIVERS)
    cluster.monitoring.web_users = {"admin": "$2b$10$hash"}
    cluster.monitoring.scrape_interval = "5s"
    state.save(cluster, tmp_path)
    data = json.loads(state.cluster_file(tmp_path).read_text())
    assert data["Monitoring"]["Receivers"][1] == {
        "Kind": "email",
        "Target": "ops@example.com",
        "Smarthost": "mail.example.com:587",
        "From": "alerts@example.com",
    }
    loaded = state.load(tmp_path)
    assert loaded.monitoring == cluster.monitoring
    assert state.problems(loaded) == []
    loaded.monitoring.scrape_interval = "often"
    assert any("ScrapeInterval" in p for p in state.problems(loaded))


def test_cli_refuses_mistakes_before_touching_a_node(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--cluster-dir", str(tmp_path)]
    short = runner.invoke(ctool.main, ["mon", "password", "short", *base])
    assert short.exit_code == 1 and "too short" in short.output
    no_cluster = runner.invoke(ctool.main, ["mon", "password", "long-enough", *base])
    assert no_cluster.exit_code == 1 and "run ctool init first" in no_cluster.output
    bad_kind = runner.invoke(ctool.main, ["alert", "add", "pager", "x", *base])
    assert bad_kind.exit_code == 2 and "'pager' is not one of" in bad_kind.output
    bad_url = runner.invoke(ctool.main, ["alert", "add", "webhook", "not-a-url", *base])
    assert bad_url.exit_code == 1 and "is not an http(s) URL" in bad_url.output
    state.save(installed_se(tmp_path), tmp_path)
    missing = runner.invoke(ctool.main, ["alert", "remove", "webhook", "http://h/x", *base])
    assert missing.exit_code == 1 and "no webhook receiver http://h/x (the receivers: none)" in missing.output
    nothing = runner.invoke(ctool.main, ["alert", "configs", "reset", *base])
    assert nothing.exit_code == 1 and "no alertmanager.yml was uploaded" in nothing.output
    out = tmp_path / "am.yml"
    downloaded = runner.invoke(ctool.main, ["alert", "configs", "download", str(out), *base])
    assert downloaded.exit_code == 0, downloaded.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and "receiver: ctool" in out.read_text()


@needs_tools
def test_upload_refuses_a_file_amtool_refuses(tmp_path: Path) -> None:
    state.save(installed_se(tmp_path), tmp_path)
    bad = tmp_path / "bad.yml"
    bad.write_text("route:\n  receiver: nobody\nreceivers: []\n")
    done = CliRunner().invoke(ctool.main, ["alert", "configs", "upload", str(bad), "--cluster-dir", str(tmp_path)])
    assert done.exit_code == 1 and "is not a valid alertmanager.yml" in done.output and "nobody" in done.output
    assert state.load(tmp_path).monitoring.alertmanager_config == ""


@needs_tools
def test_the_nodes_script_writes_every_file_once_and_promtool_takes_them(tmp_path: Path) -> None:
    from importlib import resources

    cluster = installed_se(tmp_path / "nodes")
    monitoring.new_token(tmp_path)
    cluster.monitoring.web_users = {"admin": monitoring.hash_password("secret-pw"), "ctool": "x"}
    node = cluster.nodes[0]
    variables = monitoring.node_files(cluster, node, tmp_path)
    assert "{{" not in variables["mon_files"]
    script = str(resources.files("voedger.ctool") / "playbooks" / "files" / "write_files.py")

    def run() -> list[str]:
        done = subprocess.run(
            ["python3", script], input=variables["mon_files"], capture_output=True, text=True, check=True
        )
        written: list[str] = json.loads(done.stdout)
        return written

    first = run()
    conf = Path(variables["mon_conf"])
    assert len(first) == 12 and str(conf / "ctool.token") in first  # 7 files, the token, 4 dashboards
    assert run() == []  # nothing differs the second time
    for name, mode in (("web.yml", 0o600), ("ctool.token", 0o600), ("alertmanager.yml", 0o600)):
        assert stat.S_IMODE((conf / name).stat().st_mode) == mode
    assert (Path(node.node_root) / "var/lib/voedger-monitoring/alertmanager").is_dir()
    assert "{{ $labels.instance }}" in (conf / RULES_FILE.name).read_text()  # not expanded on the way
    checked = tool("promtool", "check", "config", str(conf / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    programs = (Path(node.node_root) / "etc/voedger/supervisor.d/monitoring.conf").read_text()
    assert "--cluster.peer=10.0.0.2:9094 --cluster.peer=10.0.0.3:9094" in programs
