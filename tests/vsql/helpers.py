"""Shared helpers of the VSQL tests: in-memory packages and a small sys package."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from voedger.vsql import AppSchema, VSQLError, analyse, ast, parse_package, parse_string

FIXTURES = Path(__file__).parent / "fixtures"


@functools.cache
def sys_package() -> ast.Package:
    """The test stand-in for sys (tests/vsql/fixtures/sys)."""
    return parse_package(FIXTURES / "sys", name="sys")


def package(name: str, *texts: str, path: str | None = None) -> ast.Package:
    """A package named `name` from schema texts; files are named ``file.vsql``, ``file2.vsql``...
    for the main package and ``<name>.vsql`` ... for the others."""
    base = "file" if name == "main" else name
    files = tuple(parse_string(t, f"{base}{'' if i == 0 else i + 1}.vsql") for i, t in enumerate(texts))
    return ast.Package(name=name, path=path if path is not None else name, files=files)


def build(main: str, with_sys: bool = True, **others: str) -> AppSchema:
    """Analyse an application: package ``main`` from `main`, one package per keyword, plus sys."""
    pkgs = [package("main", main, path="")]
    pkgs += [package(name, text) for name, text in others.items()]
    if with_sys:
        pkgs.append(sys_package())
    return analyse(pkgs)


def errors(main: str, **others: str) -> list[str]:
    """The diagnostics of an application that must fail analysis, as ``file:line:col: message``."""
    with pytest.raises(VSQLError) as exc:
        build(main, **others)
    return [str(d) for d in exc.value.diagnostics]


def messages(main: str, **others: str) -> list[str]:
    """Like `errors`, without positions."""
    with pytest.raises(VSQLError) as exc:
        build(main, **others)
    return exc.value.messages


def syntax_error(text: str) -> str:
    """The single diagnostic of a text that must not parse."""
    with pytest.raises(VSQLError) as exc:
        parse_string(text, "file.vsql")
    assert len(exc.value.diagnostics) >= 1
    return str(exc.value.diagnostics[0])


def ws(body: str, name: str = "W") -> str:
    """An application with one workspace holding `body`."""
    return f"APPLICATION app();\nWORKSPACE {name} (\n{body}\n);\n"
