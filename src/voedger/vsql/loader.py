"""From an application folder to the packages `analyse` takes.

An application folder holds its main package (the schema files directly in it, one of them with
APPLICATION). ``IMPORT SCHEMA 'path'`` is found, in this order:

1. through the application's mapping file, ``vpm.toml`` in its folder (``import_map`` adds to it)::

       [packages]
       "github.com/untillpro/airs-bp3/packages/untill" = "../untill"   # relative to the application

2. through an installed Python distribution that publishes the package: an entry point of the group
   ``voedger.vsql_packages`` named by the import path, whose value is the Python package (module)
   whose folder holds the schema files, e.g. in ``pyproject.toml``::

       [project.entry-points."voedger.vsql_packages"]
       "github.com/acme/loans" = "acme_loans"

3. as a subfolder of the application: at the import path itself if there is one, else the subfolder
   named by the path's last element.

The key ``sys`` in ``[packages]`` replaces the platform's sys package by a folder (as Voedger's
own tests compile against a sys package of their own). When none has it, the error says where it
looked. Only imported packages are loaded (transitively),
then ``sys``. As in Voedger, a package's name (the prefix of its QNames) is the name the
application's own IMPORT gives it (its alias, or the last element of the import path), and a
package's ``path`` is its import path; the main package's path is ``""`` unless ``vpm.toml`` gives
it (top-level ``path = "..."``); its name is the last element of that path, or its folder's name.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path

from voedger.vsql import ast
from voedger.vsql.errors import Diagnostic, VSQLError
from voedger.vsql.parser import parse_package
from voedger.vsql.symbols import SYS_PACKAGE

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAPPING_FILE",
    "AppConfig",
    "default_sys_dir",
    "external_packages",
    "installed_packages",
    "load_app_packages",
    "read_config",
    "resolve_import",
    "with_stand_in_app",
]

STAND_IN_APP = "dummyApp"
"""The name (package and application) of the stand-in application a library package compiles in."""
MAPPING_FILE = "vpm.toml"
ENTRY_POINT_GROUP = "voedger.vsql_packages"


def default_sys_dir() -> Path:
    """Where the platform's sys package lives (``voedger/apps/sys``), found without importing it."""
    return Path(__file__).resolve().parent.parent / "apps" / "sys"


@dataclass(frozen=True)
class AppConfig:
    """The application's ``vpm.toml``: its own import path and where its imports are."""

    path: str = ""
    packages: Mapping[str, Path] = dataclasses.field(default_factory=dict)
    """Import path -> folder (absolute, or relative to the current folder as the application's is)."""


def read_config(app_dir: str | os.PathLike[str]) -> AppConfig:
    """Read ``vpm.toml`` of an application folder (an empty config when there is none); raises
    VSQLError naming the file when it is not valid."""
    root = Path(app_dir)
    file = root / MAPPING_FILE
    if not file.is_file():
        return AppConfig()
    where = os.fspath(file)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise VSQLError([Diagnostic(where, 1, 1, f"cannot read {MAPPING_FILE}: {exc}")]) from None
    problems: list[str] = []
    unknown = sorted(set(data) - {"path", "packages"})
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)} (expected path and [packages])")
    path = data.get("path", "")
    if not isinstance(path, str):
        problems.append("path must be a string (the application package's import path)")
        path = ""
    packages: dict[str, Path] = {}
    table = data.get("packages", {})
    if not isinstance(table, dict):
        problems.append("[packages] must be a table of import path = folder")
        table = {}
    for key, value in table.items():
        if not isinstance(value, str) or not value:
            problems.append(f"[packages] {key!r}: the folder must be a non-empty string")
            continue
        folder = Path(value)
        packages[key] = folder if folder.is_absolute() else root / folder
    if problems:
        raise VSQLError([Diagnostic(where, 1, 1, p) for p in problems])
    return AppConfig(path=path.strip("/"), packages=packages)


def _last(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def installed_packages() -> dict[str, str]:
    """The VSQL packages installed Python distributions publish: import path -> Python module."""
    found: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value.split(":", 1)[0].strip())
    return found


def _module_folder(module: str) -> tuple[Path | None, str]:
    """The folder of an installed Python package, or why there is none."""
    try:
        spec = util.find_spec(module)
    except (ImportError, ValueError) as exc:
        return None, f"module {module} cannot be found: {type(exc).__name__}: {exc}"
    if spec is None:
        return None, f"module {module} is not installed"
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))), ""
    if spec.origin:
        return Path(spec.origin).parent, ""
    return None, f"module {module} has no folder"


def _explain(root: Path, rel: Path) -> str:
    return Path(os.path.relpath(rel, root)).as_posix() if rel.is_absolute() and root.is_absolute() else rel.as_posix()


def resolve_import(
    app_dir: Path, path: str, config: AppConfig, installed: Mapping[str, str] | None = None
) -> tuple[Path | None, list[str]]:
    """The folder of the package an import path denotes, or None with the places looked in."""
    looked: list[str] = []
    if path in config.packages:
        folder = config.packages[path]
        if folder.is_dir():
            return folder, looked
        looked.append(f"{MAPPING_FILE} maps it to {_explain(app_dir, folder)}, which is not a folder")
    else:
        has = "has no entry for it" if (app_dir / MAPPING_FILE).is_file() else "does not exist"
        looked.append(f"{MAPPING_FILE} [packages] of the application {has}")
    published = installed_packages() if installed is None else installed
    if path in published:
        folder_or_none, why = _module_folder(published[path])
        if folder_or_none is not None and folder_or_none.is_dir():
            return folder_or_none, looked
        looked.append(f"installed distributions publish it as {published[path]}, but {why or 'it has no folder'}")
    else:
        looked.append(f"no installed distribution publishes it (entry point group {ENTRY_POINT_GROUP})")
    clean = path.strip("/")
    candidates = [app_dir / clean] if clean else []
    if _last(path) and _last(path) != clean:
        candidates.append(app_dir / _last(path))
    for folder in candidates:
        if folder.is_dir():
            return folder, looked
    names = " nor ".join(f"{c.relative_to(app_dir).as_posix()}/" for c in candidates) or "nothing"
    looked.append(f"the application has no subfolder {names}")
    return None, looked


def _local_names(pkg: ast.Package) -> Iterator[tuple[str, str]]:
    for imp in pkg.imports:
        yield imp.path, imp.local_name


def load_app_packages(
    app_dir: str | os.PathLike[str],
    *,
    sys_dir: str | os.PathLike[str] | None = None,
    import_map: Mapping[str, str | os.PathLike[str]] | None = None,
) -> list[ast.Package]:
    """Parse the application in `app_dir`, the packages it imports and sys; every file's syntax
    errors are raised together. `import_map` maps an import path to a folder (relative to
    `app_dir` or absolute) and wins over ``vpm.toml``; `sys_dir` replaces the platform's sys
    package."""
    root = Path(app_dir)
    if not root.is_dir():
        raise VSQLError([Diagnostic(os.fspath(root), 1, 1, "not a directory")])
    config = read_config(root)
    if import_map:
        extra = {k: Path(v) if Path(v).is_absolute() else root / v for k, v in import_map.items()}
        config = dataclasses.replace(config, packages={**config.packages, **extra})
    installed = installed_packages()
    diagnostics: list[Diagnostic] = []
    packages: list[ast.Package] = []
    loaded: dict[Path, str] = {}
    main_names: dict[str, str] = {}
    queue: list[tuple[Path, ast.ImportStmt | None]] = [(root, None)]
    while queue:
        folder, imp = queue.pop(0)
        key = folder.resolve()
        if key in loaded:
            continue
        loaded[key] = imp.path if imp is not None else config.path
        try:
            pkg = parse_package(folder)
        except VSQLError as e:
            diagnostics.extend(e.diagnostics)
            continue
        if imp is None:
            name = _last(config.path) if config.path else pkg.name
            pkg = dataclasses.replace(pkg, name=name, path=config.path)
            main_names = dict(_local_names(pkg))
        else:
            pkg = dataclasses.replace(pkg, name=main_names.get(imp.path, _last(imp.path)), path=imp.path)
        packages.append(pkg)
        for i in pkg.imports:
            if i.path in loaded.values():
                continue
            found, looked = resolve_import(root, i.path, config, installed)
            if found is None:
                text = f"package {i.path} not found; looked: " + "; ".join(looked)
                diagnostics.append(Diagnostic(i.pos.file, i.pos.line, i.pos.col, text))
                loaded[Path(f"<missing {i.path}>")] = i.path
                continue
            queue.append((found, i))
    sys_folder = Path(sys_dir) if sys_dir is not None else config.packages.get(SYS_PACKAGE, default_sys_dir())
    if not any(p.name == SYS_PACKAGE for p in packages):
        try:
            packages.append(dataclasses.replace(parse_package(sys_folder, name=SYS_PACKAGE), path=SYS_PACKAGE))
        except VSQLError as e:
            diagnostics.extend(e.diagnostics)
    if diagnostics:
        raise VSQLError(diagnostics)
    return packages


def with_stand_in_app(packages: list[ast.Package]) -> list[ast.Package]:
    """The packages as they are when one of them has an APPLICATION; otherwise (a library package
    compiled on its own) with a stand-in application package, as Voedger's compiler adds: it
    imports the main package and every package imported anywhere, and USEs each of them."""
    if any(isinstance(s, ast.ApplicationStmt) for p in packages for s in p.statements) or not packages:
        return packages
    main = packages[0]
    pos = ast.Pos(f"<{STAND_IN_APP}>", 1, 1)
    imports: dict[str, ast.ImportStmt] = {}
    for p in packages:
        if p.name == SYS_PACKAGE:
            continue
        path = p.path or p.name
        imports.setdefault(path, ast.ImportStmt(pos=pos, path=path, alias=p.name if _last(path) != p.name else None))
    app = ast.ApplicationStmt(
        pos=pos, name=STAND_IN_APP, uses=tuple(ast.UseStmt(pos=pos, name=i.local_name) for i in imports.values())
    )
    stand_in = ast.Package(
        name=STAND_IN_APP,
        path=STAND_IN_APP,
        files=(ast.File(pos=pos, path=pos.file, imports=tuple(imports.values()), statements=(app,)),),
    )
    if not main.path:  # the stand-in imports the main package by its name
        packages = [dataclasses.replace(main, path=main.name), *packages[1:]]
    return [*packages, stand_in]


def external_packages(app_dir: str | os.PathLike[str], packages: list[ast.Package]) -> list[tuple[ast.Package, Path]]:
    """The packages of an application whose folders lie outside its folder (mapped by ``vpm.toml``
    or published by installed distributions), with their folders; the platform's sys is not one."""
    root = Path(app_dir).resolve()
    platform_sys = default_sys_dir().resolve()
    out: list[tuple[ast.Package, Path]] = []
    for pkg in packages:
        if not pkg.files:
            continue
        folder = Path(pkg.files[0].path).parent.resolve()
        if folder == platform_sys or folder.is_relative_to(root):
            continue
        out.append((pkg, folder))
    return out
