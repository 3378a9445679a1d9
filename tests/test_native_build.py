"""The native build compiles what pyproject.toml lists, and the native tier really runs it."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import os
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NATIVE = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["voedger"]["native-modules"]


def _compiled(module: str) -> bool:
    origin = importlib.import_module(module).__file__ or ""
    return origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_every_listed_module_exists_and_has_no_async_generator() -> None:
    for module in NATIVE:
        path = ROOT / "src" / (module.replace(".", "/") + ".py")
        assert path.is_file(), module
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.AsyncFunctionDef):
                yields = [n for n in ast.walk(node) if isinstance(n, ast.Yield | ast.YieldFrom)]
                assert not yields, f"{module}: {node.name} is an async generator, which mypyc does not compile"


def test_no_await_inside_an_except_block_of_a_listed_module() -> None:
    """mypyc can resurrect another coroutine's exception after an await inside an except block
    (mypyc issue 1177): a bare ``raise`` there re-raised the wrong error, and a projector's
    retry loop let it out. Compiled modules keep the failure and act after the block."""
    for module in NATIVE:
        path = ROOT / "src" / (module.replace(".", "/") + ".py")
        for handler in ast.walk(ast.parse(path.read_text())):
            if not isinstance(handler, ast.ExceptHandler):
                continue
            inner = [n for stmt in handler.body for n in ast.walk(stmt)]
            awaits = [n for n in inner if isinstance(n, ast.Await | ast.AsyncWith | ast.AsyncFor)]
            assert not awaits, f"{module}, line {handler.lineno}: an await inside an except block"


def test_the_tier_runs_the_build_it_says() -> None:
    """`make test-native` sets VOEDGER_EXPECT_NATIVE=1: every listed module is then an extension
    module; in the plain tier every one is Python source."""
    expect = os.environ.get("VOEDGER_EXPECT_NATIVE") == "1"
    assert {m: _compiled(m) for m in NATIVE} == dict.fromkeys(NATIVE, expect)
    assert not _compiled("voedger.router.endpoint")  # Starlette needs its functions to be Python
