"""Registering Python implementations and checking them against the schema, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.appdef.conftest import SAMPLE_APP, BuildFn
from voedger import extensions
from voedger.appdef import AppDef, QName, TypeKind
from voedger.extensions import (
    ExtensionLoadError,
    ExtensionRegistrationError,
    Registry,
    check_extensions,
    collecting,
    load_extensions,
)

SCHEMA = """
APPLICATION app();
WORKSPACE W (
    TABLE T INHERITS sys.CDoc (A int32);
    VIEW V (K int32, C int32, X int32, PRIMARY KEY ((K), C)) AS RESULT OF Proj;
    EXTENSION ENGINE BUILTIN (
        COMMAND Cmd();
        QUERY Qry RETURNS void;
        PROJECTOR Proj AFTER INSERT ON T INTENTS(sys.View(V));
    );
);
ALTER WORKSPACE sys.AppWorkspaceWS (
    EXTENSION ENGINE WASM (JOB Nightly '0 3 * * *';);
);
"""


def noop(state: object, intents: object) -> None:
    """Does nothing; stands for an implementation."""


@pytest.fixture
def app(build: BuildFn) -> AppDef:
    return build(SCHEMA)


def full_registry() -> Registry:
    reg = Registry()
    reg.command("app.Cmd")(noop)
    reg.query("app.Qry")(noop)
    reg.projector("app.Proj")(noop)
    reg.job("app.Nightly")(noop)
    return reg


class TestRegistry:
    def test_decorators_register_and_return_the_function(self) -> None:
        reg = Registry()
        assert reg.command("app.Cmd")(noop) is noop
        impl = reg.get("app.Cmd")
        assert impl is not None and impl.kind is TypeKind.Command and impl.func is noop
        assert "app.Cmd" in reg and QName("app", "Cmd") in reg and "app.X" not in reg
        assert impl.where.endswith(":noop") and str(impl).startswith("command app.Cmd (")
        assert len(reg) == 1 and [i.qname for i in reg] == [QName("app", "Cmd")]

    def test_rejects_bad_registrations(self) -> None:
        reg = Registry()
        reg.command("app.Cmd")(noop)
        with pytest.raises(ExtensionRegistrationError, match="twice"):
            reg.query("app.Cmd")(noop)
        with pytest.raises(ExtensionRegistrationError, match="qualified name"):
            reg.command("NoPackage")(noop)
        with pytest.raises(ExtensionRegistrationError, match="not callable"):
            reg.add(TypeKind.Command, "app.X", 42)  # type: ignore[arg-type]
        with pytest.raises(ExtensionRegistrationError, match="not a kind of extension"):
            reg.add(TypeKind.View, "app.X", noop)

    def test_module_decorators_follow_the_current_registry(self) -> None:
        mine = Registry()
        with collecting(mine):
            extensions.command("app.Inside")(noop)
        assert "app.Inside" in mine and "app.Inside" not in extensions.registry

    def test_load_extensions_of_the_sample(self) -> None:
        reg = load_extensions(SAMPLE_APP)
        assert {str(i.qname) for i in reg} == {
            "service.MakeOrder",
            "service.CloseBill",
            "service.IndexOpenBills",
            "sales.ApplySales",
            "sales.DailySales",
            "sales.NightlyDigest",
        }
        assert reg.get("sales.NightlyDigest").kind is TypeKind.Job  # type: ignore[union-attr]
        assert reg.get("sales.ApplySales").func.__doc__  # type: ignore[union-attr]
        again = load_extensions(SAMPLE_APP)  # a fresh import, not stale modules
        assert len(again) == len(reg) and again is not reg

    def test_load_skips_private_and_test_modules(self, tmp_path: Path) -> None:
        (tmp_path / "ext.py").write_text(
            "from voedger.extensions import command\n@command('app.Cmd')\ndef f(state, intents): ...\n"
        )
        (tmp_path / "_private.py").write_text("raise RuntimeError('must not be imported')\n")
        (tmp_path / "test_ext.py").write_text("raise RuntimeError('must not be imported')\n")
        (tmp_path / "tests").mkdir()
        (tmp_path / "tests" / "x.py").write_text("raise RuntimeError('must not be imported')\n")
        assert [str(i.qname) for i in load_extensions(tmp_path)] == ["app.Cmd"]

    def test_load_failure_propagates(self, tmp_path: Path) -> None:
        (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
        with pytest.raises(ExtensionLoadError, match=r"broken\.py: RuntimeError: boom") as exc:
            load_extensions(tmp_path)
        assert isinstance(exc.value.__cause__, RuntimeError)  # the module is named, the cause kept


class TestCheckExtensions:
    def test_match(self, app: AppDef) -> None:
        assert check_extensions(app, full_registry()) == []

    def test_declared_but_not_implemented(self, app: AppDef) -> None:
        reg = full_registry()
        reg._impls.pop(QName("app", "Proj"))
        reg._impls.pop(QName("app", "Nightly"))
        assert check_extensions(app, reg) == [
            "app.Nightly: job declared in EXTENSION ENGINE WASM has no implementation: "
            "neither a pkg.wasm in its package's folder nor Python",
            "app.Proj: projector declared in VSQL has no Python implementation",
        ]

    def test_implemented_but_not_declared(self, app: AppDef) -> None:
        reg = full_registry()
        reg.command("app.Ghost")(noop)
        reg.query("app.T")(noop)  # a table, not an extension
        problems = check_extensions(app, reg)
        assert len(problems) == 2
        assert problems[0].startswith("app.Ghost: command app.Ghost (") and problems[0].endswith(
            "noop) is not declared in VSQL"
        )
        assert problems[1].startswith("app.T: query app.T (")

    def test_kind_mismatch_names_both_sides(self, app: AppDef) -> None:
        reg = Registry()
        reg.query("app.Cmd")(noop)
        reg.query("app.Qry")(noop)
        reg.projector("app.Proj")(noop)
        reg.job("app.Nightly")(noop)
        [problem] = check_extensions(app, reg)
        assert problem.startswith("app.Cmd: declared in VSQL as a command, implemented as a query by ")

    def test_sys_extensions_are_the_platforms(self, app: AppDef) -> None:
        assert any(e.qname.is_sys for e in app.extensions())  # sys.CUD & co need no implementation
        reg = full_registry()
        reg.command("sys.CUD")(noop)
        [problem] = check_extensions(app, reg)
        assert problem.startswith("sys.CUD: the command is built into the platform (sys)")

    def test_sample_app_matches_its_modules(self, sample_app: AppDef) -> None:
        assert check_extensions(sample_app, load_extensions(SAMPLE_APP)) == []
