"""From an application folder to the packages `analyse` takes.

An application folder holds its main package (the schema files directly in it, one of them with
APPLICATION); its other packages are subfolders. ``IMPORT SCHEMA 'a/b/name'`` denotes the subfolder
at that relative path if there is one, else the subfolder named by the path's last element; an
import map can say otherwise. Only imported packages are loaded (transitively), then ``sys``.
A package's ``path`` is its folder relative to the application folder ("" for the main package).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from voedger.vsql import ast
from voedger.vsql.errors import Diagnostic, VSQLError
from voedger.vsql.parser import parse_package
from voedger.vsql.symbols import SYS_PACKAGE

__all__ = ["default_sys_dir", "load_app_packages"]


def default_sys_dir() -> Path:
    """Where the platform's sys package lives (``voedger/apps/sys``), found without importing it."""
    return Path(__file__).resolve().parent.parent / "apps" / "sys"


def _import_folder(app_dir: Path, path: str, import_map: Mapping[str, str | os.PathLike[str]]) -> Path:
    if path in import_map:
        folder = Path(import_map[path])
        return folder if folder.is_absolute() else app_dir / folder
    rel = app_dir / path.strip("/")
    if path.strip("/") and rel.is_dir():
        return rel
    return app_dir / path.rstrip("/").rsplit("/", 1)[-1]


def load_app_packages(
    app_dir: str | os.PathLike[str],
    *,
    sys_dir: str | os.PathLike[str] | None = None,
    import_map: Mapping[str, str | os.PathLike[str]] | None = None,
) -> list[ast.Package]:
    """Parse the application in `app_dir`, the packages it imports and sys; every file's syntax
    errors are raised together. `import_map` maps an import path to a folder (relative to
    `app_dir` or absolute); `sys_dir` replaces the platform's sys package."""
    root = Path(app_dir)
    mapping = dict(import_map or {})
    diagnostics: list[Diagnostic] = []
    packages: list[ast.Package] = []
    loaded: dict[Path, str] = {}
    queue: list[tuple[Path, ast.ImportStmt | None]] = [(root, None)]
    while queue:
        folder, imp = queue.pop(0)
        key = folder.resolve()
        if key in loaded:
            continue
        loaded[key] = folder.name
        if not folder.is_dir():
            if imp is not None:
                diagnostics.append(
                    Diagnostic(imp.pos.file, imp.pos.line, imp.pos.col, f"package folder not found: {imp.path}")
                )
            else:
                diagnostics.append(Diagnostic(os.fspath(folder), 1, 1, "not a directory"))
            continue
        try:
            pkg = parse_package(folder)
        except VSQLError as e:
            diagnostics.extend(e.diagnostics)
            continue
        rel = "" if folder == root else Path(os.path.relpath(folder, root)).as_posix()
        packages.append(dataclasses.replace(pkg, path=rel))
        for i in pkg.imports:
            queue.append((_import_folder(root, i.path, mapping), i))
    sys_folder = Path(sys_dir) if sys_dir is not None else default_sys_dir()
    if not any(p.name == SYS_PACKAGE for p in packages):
        try:
            packages.append(dataclasses.replace(parse_package(sys_folder, name=SYS_PACKAGE), path=SYS_PACKAGE))
        except VSQLError as e:
            diagnostics.extend(e.diagnostics)
    if diagnostics:
        raise VSQLError(diagnostics)
    return packages
