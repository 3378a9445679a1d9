"""The operator commands that work on a cluster's storage (``voedger federation``, ``keys``,
``token``) refuse a storage that is not there, instead of creating an empty one."""

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
