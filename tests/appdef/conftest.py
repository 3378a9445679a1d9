"""Fixtures that build AppDefs from VSQL text, with the real sys package."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from voedger.appdef import AppDef
from voedger.appdef.build import build_appdef
from voedger.appdef.load import compile_app, compile_packages
from voedger.apps.sys import sys_package_dir
from voedger.vsql import ast
from voedger.vsql.parser import parse_package, parse_string

SAMPLE_APP = Path(__file__).resolve().parents[2] / "examples" / "restaurant"

BuildFn = Callable[..., AppDef]


@pytest.fixture(scope="session")
def sys_pkg() -> ast.Package:
    return dataclasses.replace(parse_package(sys_package_dir(), name="sys"), path="sys")


@pytest.fixture(scope="session")
def sys_app(sys_pkg: ast.Package) -> AppDef:
    """The sys package with an empty application, as every application has it."""
    app = ast.Package(name="app", path="", files=(parse_string("APPLICATION app();", "app.vsql"),))
    return compile_packages([app, sys_pkg])


@pytest.fixture(scope="session")
def sample_app() -> AppDef:
    return compile_app(SAMPLE_APP)


@pytest.fixture
def build(sys_pkg: ast.Package) -> BuildFn:
    """``build(main_text, other_pkg=text, ...)``: analyse and build one file per package, the first
    one named ``app``; the others are imported by their names."""

    def _build(main: str, **others: str) -> AppDef:
        packages = [
            ast.Package(name="app", path="", files=(parse_string(main, "app.vsql"),)),
            *(
                ast.Package(name=name, path=name, files=(parse_string(text, f"{name}/{name}.vsql"),))
                for name, text in others.items()
            ),
            sys_pkg,
        ]
        return compile_packages(packages)

    return _build


@pytest.fixture
def build_unanalysed(sys_pkg: ast.Package) -> BuildFn:
    """Like ``build``, but skipping the analyser: shows what the builder itself reports."""

    def _build(main: str) -> AppDef:
        app = ast.Package(name="app", path="", files=(parse_string(main, "app.vsql"),))
        return build_appdef([app, sys_pkg])

    return _build
