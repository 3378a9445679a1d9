"""Where ``IMPORT SCHEMA`` finds a package (``vpm.toml``, installed distributions, subfolders), the
names packages get, and ``vpm compile`` on libraries, deep schemas and bad imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from voedger.appdef.load import compile_app
from voedger.cli.vpm import main
from voedger.vsql import VSQLError, load_app_packages, parse_string
from voedger.vsql.loader import ENTRY_POINT_GROUP, installed_packages

SRC = Path(__file__).resolve().parents[2] / "src"

APP = """IMPORT SCHEMA 'github.com/untillpro/airs-bp3/packages/untill'
APPLICATION air (USE untill);
WORKSPACE Restaurant INHERITS untill.Base (
    TABLE Bill INHERITS sys.CDoc (Article ref(untill.Article));
);
"""
UNTILL = """ABSTRACT WORKSPACE Base (
    TABLE Article INHERITS sys.CDoc (Name varchar);
);
"""


def vpm(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_mapping_file_and_the_package_name_from_the_import_path(tmp_path: Path) -> None:
    app = tmp_path / "apps" / "air"
    write(app / "app.vsql", APP)
    write(tmp_path / "packages" / "untill-src" / "untill.vsql", UNTILL)
    result = vpm("compile", app)
    assert result.exit_code == 1
    assert "package github.com/untillpro/airs-bp3/packages/untill not found; looked: " in result.output
    assert "vpm.toml [packages] of the application does not exist" in result.output
    assert f"no installed distribution publishes it (entry point group {ENTRY_POINT_GROUP})" in result.output
    assert "no subfolder github.com/untillpro/airs-bp3/packages/untill/ nor untill/" in result.output

    write(
        app / "vpm.toml", '[packages]\n"github.com/untillpro/airs-bp3/packages/untill" = "../../packages/untill-src"\n'
    )
    result = vpm("compile", app)
    assert result.exit_code == 0, result.output
    appdef = compile_app(app)
    # the folder is untill-src, the package's QName prefix is the last element of its import path
    assert {p.name: p.path for p in appdef.packages}["untill"] == "github.com/untillpro/airs-bp3/packages/untill"
    assert "untill.Article" in appdef
    assert "air.Bill" in appdef

    write(app / "vpm.toml", '[packages]\n"github.com/untillpro/airs-bp3/packages/untill" = "../nowhere"\n')
    result = vpm("compile", "-C", app)
    assert result.exit_code == 1
    assert "vpm.toml maps it to ../nowhere, which is not a folder" in result.output
    write(app / "vpm.toml", "[packages]\nx = 1\n")
    assert "the folder must be a non-empty string" in vpm("compile", app).output
    write(app / "vpm.toml", "[packages\n")
    assert "cannot read vpm.toml" in vpm("compile", app).output


def test_vpm_toml_names_the_application_package(tmp_path: Path) -> None:
    write(tmp_path / "app.vsql", APP)
    write(tmp_path / "untill" / "untill.vsql", UNTILL)
    write(tmp_path / "vpm.toml", 'path = "github.com/untillpro/airs-bp3/air"\n')
    appdef = compile_app(tmp_path)
    assert {p.name: p.path for p in appdef.packages}["air"] == "github.com/untillpro/airs-bp3/air"


def _fake_distribution(site: Path, import_path: str, module: str, schema: str) -> None:
    """An installed distribution as pip leaves it: the module and a dist-info with entry points."""
    write(site / module / "__init__.py", "")
    write(site / module / "schema.vsql", schema)
    info = site / f"{module}-1.0.dist-info"
    write(info / "METADATA", f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    write(info / "entry_points.txt", f"[{ENTRY_POINT_GROUP}]\n{import_path} = {module}\n")


def test_installed_distributions_publish_vsql_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    _fake_distribution(site, "github.com/untillpro/airs-bp3/packages/untill", "untill_vsql", UNTILL)
    write(tmp_path / "air" / "app.vsql", APP)
    monkeypatch.syspath_prepend(str(site))
    assert installed_packages()["github.com/untillpro/airs-bp3/packages/untill"] == "untill_vsql"
    pkgs = load_app_packages(tmp_path / "air")
    untill = next(p for p in pkgs if p.name == "untill")
    assert Path(untill.files[0].path).parent == site / "untill_vsql"
    # and through the command, in a process of its own, as a user runs it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(SRC)])}
    done = subprocess.run(
        [sys.executable, "-m", "voedger.cli.vpm", "compile", str(tmp_path / "air")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "application air: 3 packages" in done.stdout


def test_a_mapping_wins_over_a_subfolder(tmp_path: Path) -> None:
    write(tmp_path / "app.vsql", APP)
    write(tmp_path / "untill" / "untill.vsql", "this is not VSQL")
    write(tmp_path / "vendor" / "u" / "untill.vsql", UNTILL)
    write(tmp_path / "vpm.toml", '[packages]\n"github.com/untillpro/airs-bp3/packages/untill" = "vendor/u"\n')
    compile_app(tmp_path)


def test_alias_of_the_application_names_the_package(tmp_path: Path) -> None:
    write(
        tmp_path / "app.vsql",
        "IMPORT SCHEMA 'github.com/untillpro/airs-bp3/packages/untill' AS u;\nAPPLICATION air (USE u);\n"
        "WORKSPACE R INHERITS u.Base ();",
    )
    write(tmp_path / "untill" / "untill.vsql", UNTILL)
    appdef = compile_app(tmp_path)
    assert "u.Article" in appdef
    assert "untill.Article" not in appdef


def test_one_import_path_two_local_names(tmp_path: Path) -> None:
    write(
        tmp_path / "app.vsql",
        "IMPORT SCHEMA 'example.com/registry' AS reg;\nIMPORT SCHEMA 'lib';\nAPPLICATION a (USE reg; USE lib);",
    )
    write(tmp_path / "registry" / "r.vsql", "ABSTRACT WORKSPACE R ();")
    write(tmp_path / "lib" / "l.vsql", "IMPORT SCHEMA 'example.com/registry';\nABSTRACT WORKSPACE L ();")
    result = vpm("compile", tmp_path)
    assert result.exit_code == 1
    assert "l.vsql:1:1: local package name reg was redeclared as registry" in result.output


def test_semicolon_after_the_last_import_is_optional() -> None:
    f = parse_string("IMPORT SCHEMA 'a/b';\nIMPORT SCHEMA 'c' AS d\nAPPLICATION x();")
    assert [(i.path, i.local_name) for i in f.imports] == [("a/b", "b"), ("c", "d")]
    assert len(f.statements) == 1
    assert [i.path for i in parse_string("IMPORT SCHEMA 'a/b'").imports] == ["a/b"]
    with pytest.raises(VSQLError, match="IMPORT SCHEMA must come before all other statements"):
        parse_string("ROLE R; IMPORT SCHEMA 'x'")


@pytest.mark.parametrize(("levels", "ok"), [(64, True), (65, False), (500, False)])
def test_deeply_nested_tables_give_an_error_not_a_traceback(tmp_path: Path, levels: int, ok: bool) -> None:
    body = "".join(f"T{i} TABLE T{i} (" for i in range(levels)) + "x int32" + ")" * levels
    write(tmp_path / "app.vsql", f"APPLICATION a();\nWORKSPACE W (TABLE Root INHERITS sys.CDoc ({body}););\n")
    result = vpm("compile", tmp_path)
    if ok:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 1
    assert "tables nested too deeply: more than 64 levels of tables" in result.output
    assert "Traceback" not in result.output


def test_deeply_nested_workspaces(tmp_path: Path) -> None:
    body = "".join(f"WORKSPACE W{i} (" for i in range(500)) + "ROLE R" + ")" * 500
    write(tmp_path / "app.vsql", f"APPLICATION a();\n{body};\n")
    result = vpm("compile", tmp_path)
    assert result.exit_code == 1
    assert "workspaces nested too deeply" in result.output


def test_a_library_compiles_in_a_stand_in_application(tmp_path: Path) -> None:
    lib = tmp_path / "loans"
    write(
        lib / "loans.vsql",
        "IMPORT SCHEMA 'example.com/x/base'\n"
        "ABSTRACT WORKSPACE L INHERITS base.B (TABLE Loan INHERITS sys.CDoc (a int32););",
    )
    write(lib / "base" / "b.vsql", "ABSTRACT WORKSPACE B ();")
    result = vpm("compile", lib)
    assert result.exit_code == 0, result.output
    assert "application dummyApp: 4 packages" in result.output
    assert vpm("baseline", "-C", lib, tmp_path / "bl").exit_code == 0
    assert vpm("compat", "-C", lib, tmp_path / "bl").exit_code == 0
    write(lib / "loans.vsql", "ABSTRACT WORKSPACE L (TABLE Loan INHERITS sys.CDoc (a int64););")
    broken = vpm("compat", "-C", lib, tmp_path / "bl")
    assert broken.exit_code == 1
    assert "loans.Loan" in broken.output
    # an undefined name in a library is still an error
    write(lib / "loans.vsql", "ABSTRACT WORKSPACE L (TABLE Loan INHERITS sys.CDoc (a nope.T););")
    assert vpm("compile", lib).exit_code == 1
    # build needs a real application
    assert "application not defined" in vpm("build", "-C", lib).output


def test_compile_takes_the_folder_as_an_argument(tmp_path: Path) -> None:
    write(tmp_path / "app" / "app.vsql", "APPLICATION a();")
    assert vpm("compile", tmp_path / "app").exit_code == 0
    assert vpm("compile", tmp_path / "app", "-C", tmp_path / "app").exit_code == 0
    clash = vpm("compile", tmp_path / "app", "-C", tmp_path)
    assert clash.exit_code == 2
    assert "give the application's folder once" in clash.output


def test_the_mapping_key_sys_replaces_the_platform_sys_package(tmp_path: Path) -> None:
    write(tmp_path / "app" / "app.vsql", "APPLICATION a();\nWORKSPACE W INHERITS sys.Base ();")
    write(tmp_path / "mysys" / "sys.vsql", "ABSTRACT WORKSPACE Workspace ();\nABSTRACT WORKSPACE Base ();")
    assert vpm("compile", tmp_path / "app").exit_code == 1
    write(tmp_path / "app" / "vpm.toml", '[packages]\nsys = "../mysys"\n')
    result = vpm("compile", tmp_path / "app")
    assert result.exit_code == 0, result.output


def test_tidy_drops_unused_entries_and_keeps_the_rest(tmp_path: Path) -> None:
    app = tmp_path / "apps" / "air"
    write(app / "app.vsql", APP)
    write(tmp_path / "packages" / "untill" / "untill.vsql", UNTILL)
    write(
        app / "vpm.toml",
        'path = "github.com/untillpro/airs-bp3/air"  # the application\n\n[packages]\n'
        "# the shared package\n"
        '"github.com/untillpro/airs-bp3/packages/untill" = "../../packages/untill"\n'
        '"github.com/untillpro/old" = "../../packages/old"\n',
    )
    result = vpm("tidy", "-C", app)
    assert result.exit_code == 0, result.output
    assert "github.com/untillpro/airs-bp3/packages/untill: package untill, found through vpm.toml" in result.output
    assert "1 unused entry removed" in result.output
    text = (app / "vpm.toml").read_text()
    assert "old" not in text
    assert "# the shared package" in text and "# the application" in text
    assert vpm("compile", app).exit_code == 0
    assert "0 unused entries removed" in vpm("tidy", "-C", app).output
    (app / "vpm.toml").unlink()
    missing = vpm("tidy", "-C", app)
    assert missing.exit_code == 1 and "not found; looked" in missing.output
