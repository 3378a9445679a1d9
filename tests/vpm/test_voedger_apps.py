"""``benchmarks/voedger_apps.py`` on a miniature of Voedger's repository: the mapping files it writes
(go.work, go.mod modules, Voedger's own module, siblings) and the count it prints."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from benchmarks import voedger_apps


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "voedger"
    # a Go workspace: the application imports a module the go.work uses; another module of the
    # same path elsewhere must not be taken
    write(root / "cmd/vpm/testdata/myapp/go.work", "go 1.22\n\nuse (\n\t./app\n\t./mypkg1\n)\n")
    write(root / "cmd/vpm/testdata/myapp/app/go.mod", "module app\n\ngo 1.22\n")
    write(
        root / "cmd/vpm/testdata/myapp/app/app.vsql",
        "IMPORT SCHEMA 'mypkg1';\nAPPLICATION app (USE mypkg1);\nWORKSPACE W INHERITS mypkg1.Base ();",
    )
    write(root / "cmd/vpm/testdata/myapp/mypkg1/go.mod", "module mypkg1\n")
    write(root / "cmd/vpm/testdata/myapp/mypkg1/s.vsql", "ABSTRACT WORKSPACE Base ();")
    write(root / "cmd/vpm/testdata/other/mypkg1/go.mod", "module mypkg1\n")
    write(root / "cmd/vpm/testdata/other/mypkg1/s.vsql", "this is not VSQL")
    # Voedger's own module
    write(root / "pkg/registry/r.vsql", "ABSTRACT WORKSPACE Reg ();")
    write(
        root / "pkg/vvm/builtin/registryapp/schema.vsql",
        "IMPORT SCHEMA 'github.com/voedger/voedger/pkg/registry'\nAPPLICATION registry (USE registry);",
    )
    # siblings, and an application Voedger refuses on purpose
    write(root / "pkg/parser/test/pkg1.vsql", "APPLICATION TEST();\nIMPORT SCHEMA 'x';")
    # two applications in one folder, and a folder that is not an application's
    write(root / "pkg/vit/schemaTestApp1.vsql", "APPLICATION app1();\nWORKSPACE W (ROLE R);")
    write(root / "pkg/vit/schemaTestApp2.vsql", "APPLICATION app2();\nWORKSPACE W (ROLE R);")
    write(root / "pkg/appdefcompat/testdata/sys.old.vsql", "APPLICATION TEST();")
    return root


def test_the_count_from_a_checkout(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    voedger_apps.main([str(repo), "--keep", str(work)])
    out = capsys.readouterr().out
    assert "4 of 5 applications compile; 5 of 5 verdicts agree with Voedger's" in out, out
    assert "FAIL" in out and "pkg/parser/test" in out
    assert "left out pkg/appdefcompat/testdata" in out
    mapping = (work / "cmd/vpm/testdata/myapp/app/vpm.toml").read_text()
    assert 'path = "app"' in mapping
    assert '"mypkg1" = "../mypkg1"' in mapping
    registry = (work / "pkg/vvm/builtin/registryapp/vpm.toml").read_text()
    assert '"github.com/voedger/voedger/pkg/registry" = "../../../registry"' in registry
    vit = (work / "pkg/vit.schemaTestApp1/vpm.toml").read_text()
    assert 'path = "github.com/voedger/voedger/pkg/vit/app1pkg"' in vit
    # the source is never written to
    assert not list(repo.rglob("vpm.toml"))


def test_the_applications_of_a_git_directory(repo: Path, tmp_path: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    work = tmp_path / "work"
    work.mkdir()
    voedger_apps.materialize(repo / ".git", work)
    apps, notes = voedger_apps.applications(work)
    assert [name for name, _, _ in apps] == [
        "cmd/vpm/testdata/myapp/app",
        "pkg/parser/test",
        "pkg/vit/schemaTestApp1.vsql",
        "pkg/vit/schemaTestApp2.vsql",
        "pkg/vvm/builtin/registryapp",
    ]
    assert (work / "cmd/vpm/testdata/myapp/go.work").is_file()
    assert len(notes) == 1
