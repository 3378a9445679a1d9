"""The ``sys`` package: the VSQL every application gets implicitly.

Its QNames and their meaning follow Voedger's ``sys`` package, so that clients written for Voedger
find the same tables, functions, roles and storages; the text and layout are our own. Built-in
extensions declared here are provided by the platform, not by applications.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["SYS_PACKAGE_PATH", "sys_package_dir", "sys_vsql_files"]

SYS_PACKAGE_PATH = "sys"
"""The package path applications see for ``sys`` (they never IMPORT it)."""


def sys_package_dir() -> Path:
    """The folder holding the sys package's ``.vsql`` files."""
    return Path(str(resources.files(__name__)))


def sys_vsql_files() -> list[Path]:
    """The sys package's schema files, in a stable order."""
    return sorted(sys_package_dir().glob("*.vsql"))
