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
from voedger.vsql.loader import load_app_packages

__all__ = ["compile_app", "compile_packages"]


def compile_packages(packages: Sequence[ast.Package], *, variables: Mapping[str, int] | None = None) -> AppDef:
    """Analyse parsed packages (sys among them) and build their AppDef; raises VSQLError."""
    return build_appdef(analyse(packages, variables=variables))


def compile_app(app_dir: str | os.PathLike[str], *, variables: Mapping[str, int] | None = None) -> AppDef:
    """The AppDef of the application in ``app_dir``; raises VSQLError with every error found."""
    return compile_packages(load_app_packages(app_dir), variables=variables)
