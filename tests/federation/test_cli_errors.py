"""The operator commands that work on a cluster's storage (``voedger federation``, ``keys``,
``token``) refuse a storage that is not there, instead of creating an empty one; only the
commands that set a main cluster up before its servers first start (``add-cluster``, ``secret``)
make it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from voedger.cli.voedger import main


@pytest.mark.parametrize(
    "command",
    [["federation", "list"], ["federation", "remove-cluster", "--id", "2"], ["keys", "list"], ["token", "system"]],
)
def test_a_missing_data_directory_is_refused_and_not_created(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "no-such-dir"
    result = CliRunner().invoke(main, [*command, "--storage", f"sqlite://{missing}"])
    assert result.exit_code == 1
    assert f"error: {missing} is no data directory" in result.output
    assert not missing.exists()


def test_an_unknown_storage_scheme_is_refused() -> None:
    result = CliRunner().invoke(main, ["keys", "list", "--storage", "bogus://x"])
    assert result.exit_code == 1
    assert "unknown scheme 'bogus'" in result.output


def test_add_cluster_sets_up_a_main_cluster_not_started_yet(tmp_path: Path) -> None:
    data = tmp_path / "main"
    args = ["--id", "1", "--name", "main", "--region", "eu", "--public-url", "http://a", "--internal-url", "http://b"]
    result = CliRunner().invoke(main, ["federation", "add-cluster", "--storage", f"sqlite://{data}", *args])
    assert result.exit_code == 0, result.output
    listed = CliRunner().invoke(main, ["federation", "list", "--storage", f"sqlite://{data}"])
    assert listed.exit_code == 0 and "1 cluster(s)" in listed.output, listed.output
