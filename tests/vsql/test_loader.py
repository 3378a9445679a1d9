"""From an application folder to analysed packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vsql.helpers import FIXTURES
from voedger.vsql import VSQLError, analyse, ast, default_sys_dir, load_app_packages

SYS = FIXTURES / "sys"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_packages_are_found_by_import_path(tmp_path: Path) -> None:
    write(
        tmp_path / "app.vsql",
        "IMPORT SCHEMA 'example.org/shop/air';\nIMPORT SCHEMA 'libs/cash';\nIMPORT SCHEMA 'base';\n"
        "APPLICATION shop (USE air; USE cash; USE base;);\n"
        "WORKSPACE Shop INHERITS air.AirWS, cash.M (TABLE T INHERITS sys.CDoc (Amount cash.Amount););",
    )
    write(tmp_path / "air" / "air.vsql", "IMPORT SCHEMA 'base';\nABSTRACT WORKSPACE AirWS INHERITS base.B ();")
    write(tmp_path / "base" / "base.vsql", "ABSTRACT WORKSPACE B ();")
    write(
        tmp_path / "libs" / "cash" / "cash.vsql",
        "ABSTRACT WORKSPACE M (TABLE Amount INHERITS sys.CRecord (Value currency););",
    )
    write(tmp_path / "unused" / "unused.vsql", "this is not even VSQL")
    pkgs = load_app_packages(tmp_path, sys_dir=SYS)
    assert [(p.name, p.path) for p in pkgs] == [
        (tmp_path.name, ""),
        ("air", "example.org/shop/air"),
        ("cash", "libs/cash"),
        ("base", "base"),
        ("sys", "sys"),
    ]
    schema = analyse(pkgs)
    assert schema.name == "shop"
    assert schema.workspaces[ast.QName(tmp_path.name, "Shop")].ancestors == (
        ast.QName("air", "AirWS"),
        ast.QName("cash", "M"),
        ast.QName("base", "B"),
        ast.QName("sys", "Workspace"),
    )


def test_import_map_and_missing_folders(tmp_path: Path) -> None:
    write(tmp_path / "app.vsql", "IMPORT SCHEMA 'example.com/pkg/v2';\nAPPLICATION a (USE v2;);")
    with pytest.raises(VSQLError, match=r"package example\.com/pkg/v2 not found; looked: ") as exc:
        load_app_packages(tmp_path, sys_dir=SYS)
    assert exc.value.diagnostics[0].line == 1
    write(tmp_path / "vendor" / "pkg" / "p.vsql", "ABSTRACT WORKSPACE P ();")
    pkgs = load_app_packages(tmp_path, sys_dir=SYS, import_map={"example.com/pkg/v2": "vendor/pkg"})
    assert [(p.name, p.path) for p in pkgs] == [(tmp_path.name, ""), ("v2", "example.com/pkg/v2"), ("sys", "sys")]
    analyse(pkgs)


def test_syntax_errors_of_all_packages_are_raised_together(tmp_path: Path) -> None:
    write(tmp_path / "app.vsql", "IMPORT SCHEMA 'lib';\nIMPORT SCHEMA 'lib2';\nAPPLICATION a (USE lib;);")
    write(tmp_path / "lib" / "lib.vsql", "WORKSPACE L (TABLE);")
    write(tmp_path / "lib2" / "lib2.vsql", "WORKSPACE L2 (ROLE);")
    with pytest.raises(VSQLError) as exc:
        load_app_packages(tmp_path, sys_dir=SYS)
    assert [Path(d.file).name for d in exc.value.diagnostics] == ["lib.vsql", "lib2.vsql"]
    with pytest.raises(VSQLError, match="not a directory"):
        load_app_packages(tmp_path / "nope", sys_dir=SYS)


@pytest.mark.skipif(not any(default_sys_dir().glob("*.vsql")), reason="the platform's sys package is not there")
def test_the_platform_sys_package_analyses(tmp_path: Path) -> None:
    write(
        tmp_path / "app.vsql",
        "APPLICATION a();\nWORKSPACE W (TABLE T INHERITS sys.CDoc () WITH Tags=(Local); TAG Local;"
        " GRANT SELECT ON TABLE T TO sys.WorkspaceOwner;);",
    )
    schema = analyse(load_app_packages(tmp_path))
    assert ast.QName("sys", "Workspace") in schema.workspaces
