"""``vpm init``: a new application that compiles, whose generated tests pass as a user runs them
(pytest in its folder, no plugin), and that builds into an image without its tests."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from voedger.cli.vpm import main

SRC = Path(__file__).resolve().parents[2] / "src"


def vpm(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_a_new_application_compiles_tests_and_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = vpm("init", "github.com/acme/loans")
    assert r.exit_code == 0, r.output
    app = tmp_path / "loans"
    assert sorted(p.name for p in app.iterdir()) == ["__init__.py", "app.vsql", "ext.py", "test_app.py", "vpm.toml"]
    assert 'path = "github.com/acme/loans"' in (app / "vpm.toml").read_text()
    r = vpm("compile", app)
    assert r.exit_code == 0, r.output
    assert "application loans" in r.output
    # the generated tests, run as the user runs them: in the folder, with no project configuration
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"],
        cwd=app,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    r = vpm("build", "-C", app, "-o", tmp_path / "loans.var")
    assert r.exit_code == 0, r.output
    assert "3 extensions" in r.output
    with zipfile.ZipFile(tmp_path / "loans.var") as zf:
        assert "test_app.py" not in zf.namelist()
        assert "ext.py" in zf.namelist()


def test_init_into_a_named_folder_and_refusals(tmp_path: Path) -> None:
    r = vpm("init", "shop", tmp_path / "here")
    assert r.exit_code == 0, r.output
    assert "WORKSPACE ShopWS" in (tmp_path / "here" / "app.vsql").read_text()
    again = vpm("init", "shop", tmp_path / "here")
    assert again.exit_code == 2 and "is not empty" in again.output
    for bad in ("github.com/acme/", "9lives", "a/b-c", ""):
        r = vpm("init", bad, tmp_path / "x")
        assert r.exit_code == 2 and "is not a package path" in r.output, bad
    assert not (tmp_path / "x").exists()
