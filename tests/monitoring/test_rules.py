"""The shipped alert rules: ``promtool check rules``, and ``promtool test rules`` with a case
where each alert fires and one where it stays silent (``voedger.rules.test.yml``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from voedger.devtools.monitoring import promtool
from voedger.monitoring import RULES_FILE

pytestmark = pytest.mark.monitoring
CASES = Path(__file__).with_name("voedger.rules.test.yml")


def rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def test_promtool_checks_the_rules() -> None:
    checked = promtool("check", "rules", str(RULES_FILE))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


def test_every_rule_has_a_severity_and_the_annotations_an_operator_reads() -> None:
    for name, rule in rules().items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        notes = rule["annotations"]
        assert set(notes) == {"summary", "description", "runbook"}, name
        assert all(len(text.strip()) > 20 for text in notes.values()), name
        assert "{{" not in notes["runbook"], f"{name}: runbooks are fixed text"


def test_the_rules_cover_what_the_issue_lists() -> None:
    wanted = {
        "VoedgerServerDown",  # a server process down
        "DatabaseNodeDown",
        "VoedgerPartitionWithoutOwner",
        "VoedgerLeaseChurn",
        "VoedgerHigh5xxRate",
        "VoedgerCommandLatencyHigh",
        "VoedgerQueryLatencyHigh",
        "VoedgerProjectorLag",
        "VoedgerProjectorsInError",
        "VoedgerJobsInError",
        "VoedgerJobsLate",
        "VoedgerStorageWriteErrors",
        "VoedgerStorageTimeouts",
        "DiskAlmostFull",
        "NodeMemoryLow",
        "NodeCPUHigh",
        "VoedgerCertificateExpiresSoon",
        "VoedgerFederationPeerUnreachable",
    }
    assert wanted <= set(rules())


def _with_fixed_annotations(cases: dict[str, Any], known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Cases state ``summary`` and the templated annotations; the fixed ones come from the rules."""
    for test in cases["tests"]:
        for check in test["alert_rule_test"]:
            rule = known[check["alertname"]]
            for alert in check["exp_alerts"]:
                expected = alert.setdefault("exp_annotations", {})
                assert "summary" in expected, f"{test['name']}: a case states the summary it expects"
                for key, text in rule["annotations"].items():
                    if key not in expected:
                        assert "{{" not in text, f"{test['name']}: {check['alertname']}'s {key} is templated: state it"
                        expected[key] = text
    return cases


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_is_silent() -> None:
    cases = yaml.safe_load(CASES.read_text())
    fired: set[str] = set()
    silent: set[str] = set()
    for test in cases["tests"]:
        for check in test["alert_rule_test"]:
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
    assert fired == set(rules()), set(rules()) ^ fired
    assert silent == set(rules()), set(rules()) ^ silent


def test_promtool_unit_tests_of_the_rules_pass(tmp_path: Path) -> None:
    cases = _with_fixed_annotations(yaml.safe_load(CASES.read_text()), rules())
    cases["rule_files"] = [str(RULES_FILE)]
    suite = tmp_path / "rules.test.yml"
    suite.write_text(yaml.safe_dump(cases, sort_keys=False))
    tested = promtool("test", "rules", str(suite))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout + tested.stderr


@pytest.mark.parametrize("broken", ["> 0.05", "for: 30s"])
def test_promtool_tests_fail_when_a_rule_changes(tmp_path: Path, broken: str) -> None:
    """The unit tests are not vacuous: a changed threshold or duration makes them fail."""
    text = RULES_FILE.read_text()
    changed = text.replace("> 0.05", "> 0.5") if broken == "> 0.05" else re.sub(r"for: 30s", "for: 5m", text)
    assert changed != text
    rules_file = tmp_path / "voedger.rules.yml"
    rules_file.write_text(changed)
    cases = _with_fixed_annotations(yaml.safe_load(CASES.read_text()), rules())
    cases["rule_files"] = [str(rules_file)]
    suite = tmp_path / "rules.test.yml"
    suite.write_text(yaml.safe_dump(cases, sort_keys=False))
    assert promtool("test", "rules", str(suite)).returncode != 0


def test_the_readme_prometheus_configuration_is_valid(tmp_path: Path) -> None:
    """README, "Monitoring a server": its prometheus.yml passes ``promtool check config`` with
    the shipped rules in place of the path it names."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Monitoring a server", 1)[1]
    config = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "job_name: voedger" in config
    config = config.replace("/etc/prometheus/voedger.rules.yml", str(RULES_FILE))
    (tmp_path / "prometheus.yml").write_text(config)
    checked = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout
