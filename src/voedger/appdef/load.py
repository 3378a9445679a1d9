"""From an application's folder to its AppDef: load its packages, analyse them, build.

Loading and analysis are the VSQL layer's (:mod:`voedger.vsql.loader`, :mod:`voedger.vsql.analyser`):
the application folder is the main package, ``IMPORT SCHEMA`` paths name its subfolders, and the
platform's ``sys`` package joins implicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from voedger.appdef.app import AppDef
from voedger.appdef.build import build_appdef
from voedger.vsql import ast
from voedger.vsql.analyser import analyse
from voedger.vsql.errors import Diagnostic, VSQLError
from voedger.vsql.loader import load_app_packages, with_stand_in_app

__all__ = ["compile_app", "compile_packages"]


def compile_packages(packages: Sequence[ast.Package], *, variables: Mapping[str, int] | None = None) -> AppDef:
    """Analyse parsed packages (sys among them) and build their AppDef; raises VSQLError."""
    try:
        return build_appdef(analyse(packages, variables=variables))
    except RecursionError:  # the parser refuses deep nesting; this is the last safety net
        where = packages[0].path or packages[0].name if packages else "<application>"
        raise VSQLError([Diagnostic(where, 1, 1, "schema is nested too deeply to compile")]) from None


def compile_app(
    app_dir: str | os.PathLike[str], *, variables: Mapping[str, int] | None = None, stand_in: bool = False
) -> AppDef:
    """The AppDef of the application in ``app_dir``; raises VSQLError with every error found.
    With ``stand_in``, a library package (no APPLICATION) compiles in a stand-in application."""
    packages = load_app_packages(app_dir)
    return compile_packages(with_stand_in_app(packages) if stand_in else packages, variables=variables)
