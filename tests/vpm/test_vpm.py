"""``vpm`` end to end through its click entry point: compile, baseline, compat, build."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from voedger.cli.vpm import BASELINE_FILE, main

SAMPLE_APP = Path(__file__).resolve().parents[2] / "examples" / "restaurant"
DIAGNOSTIC = re.compile(r"^.+\.vsql:\d+:\d+: .+$")

APP = """
IMPORT SCHEMA 'lib';
APPLICATION shop (USE lib);
WORKSPACE Shop INHERITS lib.Base (
    TABLE Item INHERITS sys.CDoc (Name varchar NOT NULL, Price int64, UNIQUE (Name));
    TYPE Params (Item ref(Item) NOT NULL);
    VIEW Sold (Item ref(Item) NOT NULL, Day int32 NOT NULL, Qty int64 NOT NULL,
               PRIMARY KEY ((Item), Day)) AS RESULT OF CountSales;
    EXTENSION ENGINE BUILTIN (
        COMMAND Sell(Params) RETURNS Params;
        PROJECTOR CountSales AFTER EXECUTE ON Sell INTENTS(sys.View(Sold));
    );
);
"""
LIB = "ABSTRACT WORKSPACE Base (ROLE Clerk;);"
EXT = """
from voedger.extensions import command, projector

@command("shop.Sell")
def sell(state, intents):
    "Sells an item."

@projector("shop.CountSales")
def count_sales(state, intents):
    "Counts sales."
"""


def vpm(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def write_app(parent: Path, app: str = APP, lib: str | None = LIB, ext: str | None = EXT) -> Path:
    """Write the application into ``parent/shop``: the main package is named after its folder."""
    root = parent / "shop"
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.vsql").write_text(app)
    if lib is not None:
        (root / "lib").mkdir(exist_ok=True)
        (root / "lib" / "lib.vsql").write_text(lib)
    if ext is not None:
        (root / "ext.py").write_text(ext)
    return root


class TestCompile:
    def test_sample_app(self) -> None:
        r = vpm("compile", "-C", SAMPLE_APP)
        assert r.exit_code == 0, r.output
        assert r.output == "application restaurant: 6 packages, 207 types, 10 workspaces\n"

    def test_change_dir_on_the_group(self, tmp_path: Path) -> None:
        r = vpm("-C", write_app(tmp_path), "compile")
        assert r.exit_code == 0, r.output
        assert r.output.startswith("application shop: 3 packages, ")

    def test_every_error_is_printed(self, tmp_path: Path) -> None:
        app = """APPLICATION shop ();
WORKSPACE Shop (
    TABLE A INHERITS sys.CDoc (X Nothing);
    TABLE B INHERITS sys.CDoc (Y ref(Nowhere));
    VIEW V (K varchar, C int32, PRIMARY KEY ((K), C)) AS RESULT OF Nobody;
);"""
        r = vpm("compile", "-C", write_app(tmp_path, app, lib=None))
        assert r.exit_code == 1
        lines = r.output.splitlines()
        assert len(lines) >= 4 and lines[-1] == f"{len(lines) - 1} error(s)"
        assert all(DIAGNOSTIC.match(line) for line in lines[:-1]), lines
        text = r.output
        assert ":3:" in text and "Nothing" in text
        assert ":4:" in text and "Nowhere" in text
        assert ":5:" in text

    def test_syntax_errors_of_several_files(self, tmp_path: Path) -> None:
        app = write_app(tmp_path, APP.replace("NOT NULL,", "NOT NULL"))
        (app / "more.vsql").write_text("ROLE")
        r = vpm("compile", "-C", app)
        assert r.exit_code == 1
        assert "app.vsql:5:" in r.output and "more.vsql:1:" in r.output
        assert r.output.splitlines()[-1] == "2 error(s)"

    def test_no_schema(self, tmp_path: Path) -> None:
        r = vpm("compile", "-C", tmp_path)
        assert r.exit_code == 1 and "error" in r.output


class TestBaselineAndCompat:
    def test_baseline_is_stable_json(self, tmp_path: Path) -> None:
        app = write_app(tmp_path)
        assert vpm("baseline", tmp_path / "b1", "-C", app).exit_code == 0
        assert vpm("baseline", tmp_path / "b2", "-C", app).exit_code == 0
        first = (tmp_path / "b1" / BASELINE_FILE).read_text()
        assert first == (tmp_path / "b2" / BASELINE_FILE).read_text()
        doc = json.loads(first)
        assert doc["application"] == "shop" and doc["tree"]["name"] == "AppDef"
        assert [p["name"] for p in doc["packages"]] == ["shop", "lib", "sys"]
        assert str(tmp_path) not in first  # nothing machine-specific
        assert '{"name": "Price", "value": "int64"}' in first  # one line per field

    def test_sample_app_is_compatible_with_itself(self, tmp_path: Path) -> None:
        assert vpm("baseline", tmp_path, "-C", SAMPLE_APP).exit_code == 0
        r = vpm("compat", tmp_path, "-C", SAMPLE_APP)
        assert r.exit_code == 0 and r.output.startswith("compatible with ")

    def compat_after(self, tmp_path: Path, old: str, new: str, lib: str | None = LIB, *opts: str) -> Result:
        app = write_app(tmp_path, old)
        assert vpm("baseline", tmp_path / "base", "-C", app).exit_code == 0
        write_app(tmp_path, new, lib=lib)
        return vpm("compat", tmp_path / "base", "-C", app, *opts)

    def test_additions_are_compatible(self, tmp_path: Path) -> None:
        new = APP.replace("Price int64,", "Price int64, Note varchar,").replace(
            "TYPE Params", "TABLE Extra INHERITS sys.WDoc (X int32); TYPE Params"
        )
        new = new.replace("Price int64, Note varchar, UNIQUE (Name)", "Price int64, UNIQUE (Name), Note varchar")
        r = self.compat_after(tmp_path, APP, new)
        assert r.exit_code == 0, r.output

    @pytest.mark.parametrize(
        ("old", "new", "expected"),
        [
            ("Price int64,", "", "AppDef/Types/shop.Item/Fields/Price: NodeRemoved"),
            ("Price int64,", "Price int32,", "AppDef/Types/shop.Item/Fields/Price: ValueChanged"),
            (
                "Name varchar NOT NULL, Price int64,",
                "Price int64, Name varchar NOT NULL,",
                "AppDef/Types/shop.Item/Fields/Name: OrderChanged",
            ),
            (
                "Name varchar NOT NULL,",
                "Name varchar NOT NULL, Code int32,",
                "AppDef/Types/shop.Item/Fields: NodeInserted",
            ),
            (
                "UNIQUE (Name)",
                "UNIQUE (Name, Price)",
                "AppDef/Types/shop.Item/Uniques/shop.Item$uniques$01/UniqueFields: NodeModified",
            ),
            (
                "PRIMARY KEY ((Item), Day)",
                "PRIMARY KEY ((Item, Day), Qty)",
                "AppDef/Types/shop.Sold/PartKeyFields: NodeModified",
            ),
            ("COMMAND Sell(Params)", "COMMAND Sell", "AppDef/Types/shop.Sell/CommandArgs: ValueChanged"),
            ("RETURNS Params", "RETURNS any", "AppDef/Types/shop.Sell/CommandResult: ValueChanged"),
            (
                "TYPE Params (Item ref(Item) NOT NULL);",
                "TYPE Params (Item ref(Item) NOT NULL); TYPE Args (Item ref(Item) NOT NULL);",
                None,
            ),
        ],
    )
    def test_each_rule(self, tmp_path: Path, old: str, new: str, expected: str | None) -> None:
        assert old in APP
        r = self.compat_after(tmp_path, APP, APP.replace(old, new))
        if expected is None:
            assert r.exit_code == 0, r.output
            return
        assert r.exit_code == 1
        lines = r.output.splitlines()
        assert expected in lines, r.output
        assert lines[-1].startswith(f"{len(lines) - 1} compatibility break(s) against ")

    def test_removed_type_and_package(self, tmp_path: Path) -> None:
        new = APP.replace("IMPORT SCHEMA 'lib';", "").replace("(USE lib)", "()").replace("INHERITS lib.Base ", "")
        r = self.compat_after(tmp_path, APP, new, None)
        assert r.exit_code == 1
        lines = r.output.splitlines()
        assert "AppDef/Packages/lib: NodeRemoved" in lines
        assert "AppDef/Types/lib.Base: NodeRemoved" in lines
        assert "AppDef/Types/lib.Clerk: NodeRemoved" in lines

    def test_ignore_file(self, tmp_path: Path) -> None:
        ignore = tmp_path / "ignore.txt"
        ignore.write_text("# accepted on purpose\nAppDef/Types/shop.Item/Fields/Price\n- 'AppDef/Types/x.Y'\n")
        r = self.compat_after(tmp_path, APP, APP.replace("Price int64,", ""), LIB, "--ignore", str(ignore))
        assert r.exit_code == 0, r.output

    def test_ignore_file_takes_the_lines_compat_prints(self, tmp_path: Path) -> None:
        new = (
            APP.replace("Price int64,", "")
            .replace("Price int64, UNIQUE", "UNIQUE")
            .replace("Qty int64 NOT NULL", "Qty int32 NOT NULL")
        )
        r = self.compat_after(tmp_path, APP, new, LIB)
        assert r.exit_code == 1
        breaks = [line for line in r.output.splitlines() if line.startswith("AppDef/")]
        assert len(breaks) >= 2, r.output
        ignore = tmp_path / "ignore.txt"
        ignore.write_text("\n".join(breaks[:-1]) + "\n")
        partly = self.compat_after(tmp_path / "2", APP, new, LIB, "--ignore", str(ignore))
        assert partly.exit_code == 1 and breaks[-1] in partly.output
        assert not any(b in partly.output for b in breaks[:-1])
        ignore.write_text("\n".join(breaks) + "\n")
        assert self.compat_after(tmp_path / "3", APP, new, LIB, "--ignore", str(ignore)).exit_code == 0
        # the kind given must be the kind found
        ignore.write_text("\n".join(b.rsplit(":", 1)[0] + ": OrderChanged" for b in breaks) + "\n")
        assert self.compat_after(tmp_path / "4", APP, new, LIB, "--ignore", str(ignore)).exit_code == 1

    def test_missing_or_bad_baseline(self, tmp_path: Path) -> None:
        app = write_app(tmp_path)
        r = vpm("compat", tmp_path / "nowhere", "-C", app)
        assert r.exit_code == 2 and "cannot read the baseline" in r.output
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / BASELINE_FILE).write_text('{"format": "other"}')
        assert vpm("compat", tmp_path / "bad", "-C", app).exit_code == 2


class TestBuild:
    def test_sample_app(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        app = tmp_path / "restaurant"
        shutil.copytree(SAMPLE_APP, app, ignore=shutil.ignore_patterns("__pycache__"))
        (app / "tests").mkdir()
        (app / "tests" / "test_menu.py").write_text("def test_x() -> None:\n    pass\n")
        (app / "sales" / "test_sales.py").write_text("def test_y() -> None:\n    pass\n")
        (app / "conftest.py").write_text("")
        out = tmp_path / "out"
        out.mkdir()
        monkeypatch.chdir(out)
        r = vpm("build", "-C", app)
        assert r.exit_code == 0, r.output
        assert "6 extensions" in r.output
        assert not list(app.glob("*.var")), "the image is written into the current folder, not the sources"
        with zipfile.ZipFile(out / "restaurant.var") as zf:
            names = set(zf.namelist())
            manifest = json.loads(zf.read("image.json"))
        assert {"app.vsql", "descriptor.json", "sales/sales.vsql", "sales/sales.py", "image.json", "vpm.toml"} <= names
        assert not [n for n in names if "test" in n], "tests are not packed into the image"
        assert manifest["format"] == "voedger-image/1"
        assert manifest["application"] == "restaurant"

    def test_output_option(self, tmp_path: Path) -> None:
        app = write_app(tmp_path)
        r = vpm("build", "-C", app, "-o", tmp_path / "out.var")
        assert r.exit_code == 0, r.output
        with zipfile.ZipFile(tmp_path / "out.var") as zf:
            assert sorted(zf.namelist()) == ["app.vsql", "ext.py", "image.json", "lib/lib.vsql", "vpm.toml"]

    def test_missing_implementation(self, tmp_path: Path) -> None:
        ext = EXT.split("@projector")[0]
        r = vpm("build", "-C", write_app(tmp_path, ext=ext))
        assert r.exit_code == 1
        assert "shop.CountSales: projector declared in VSQL has no Python implementation" in r.output
        assert not list(tmp_path.rglob("*.var"))

    def test_undeclared_implementation(self, tmp_path: Path) -> None:
        ext = EXT + '\n@command("shop.Refund")\ndef refund(state, intents):\n    "Refunds."\n'
        r = vpm("build", "-C", write_app(tmp_path, ext=ext))
        assert r.exit_code == 1
        assert re.search(r"shop\.Refund: command shop\.Refund \(.*:refund\) is not declared in VSQL", r.output)

    def test_broken_module(self, tmp_path: Path) -> None:
        r = vpm("build", "-C", write_app(tmp_path, ext="import nowhere_to_be_found\n"))
        assert r.exit_code == 1 and "cannot load the application's Python modules" in r.output


def test_help_lists_only_built_subcommands() -> None:
    from click.testing import CliRunner

    from voedger.cli import ctool

    listed = vpm("--help").output
    assert "compile" in listed and "build" in listed and "deploy" in listed and "init" in listed
    assert "tidy" in listed and "orm" in listed
    assert "not built" not in listed
    ctool_help = CliRunner().invoke(ctool.main, ["--help"]).output
    # Every command ctool lists is built: none of them is a placeholder that says "not built".
    listed_ctool = [name for name, cmd in ctool.main.commands.items() if not cmd.hidden]
    assert set(listed_ctool) == {
        "init",
        "repeat",
        "validate",
        "status",
        "version",
        "upgrade",
        "backup",
        "restore",
        "replace",
        "acme",
        "mon",
        "alert",
    }
    for name in listed_ctool:
        assert f"  {name} " in ctool_help
        assert "not built" not in CliRunner().invoke(ctool.main, [name, "--help"]).output
