"""Fixtures of the identity layer's tests: the restaurant sample app, hand-written schemas, a
manual clock and token issuers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from voedger.appdef import AppDef, Workspace
from voedger.appdef.load import compile_app, compile_packages
from voedger.apps.sys import sys_package_dir
from voedger.auth import Tokens, generate_secret
from voedger.clock import ManualClock
from voedger.vsql import ast
from voedger.vsql.parser import parse_package, parse_string

SAMPLE_APP = Path(__file__).resolve().parents[2] / "examples" / "restaurant"
APP = "untill/restaurant"

BuildFn = Callable[[str], AppDef]


@pytest.fixture(scope="session")
def sys_pkg() -> ast.Package:
    return dataclasses.replace(parse_package(sys_package_dir(), name="sys"), path="sys")


@pytest.fixture(scope="session")
def restaurant() -> AppDef:
    return compile_app(SAMPLE_APP)


@pytest.fixture(scope="session")
def rws(restaurant: AppDef) -> Workspace:
    """The restaurant.Restaurant workspace kind."""
    return restaurant.workspace("restaurant.Restaurant")


@pytest.fixture(scope="session")
def build(sys_pkg: ast.Package) -> BuildFn:
    """``build(text)``: an application of one package ``app`` (plus sys) from VSQL text."""

    def _build(main: str) -> AppDef:
        app = ast.Package(name="app", path="", files=(parse_string(main, "app.vsql"),))
        return compile_packages([app, sys_pkg])

    return _build


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def secret() -> bytes:
    return generate_secret()


@pytest.fixture
def tokens(secret: bytes, clock: ManualClock) -> Tokens:
    return Tokens(secret, clock)
