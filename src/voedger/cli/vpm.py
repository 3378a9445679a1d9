"""``vpm``: the application developer's tool: compile a schema, keep a baseline of it, check that
a new version stays compatible with the baseline, and build a deployable image.

Exit codes: 0 success, 1 the schema (or the image, or compatibility) has problems, which are all
printed, 2 bad usage.
"""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar

import click

from voedger import __version__
from voedger.appdef import AppDef
from voedger.appdef.compat import build_tree, check_compat, ignore_errors, tree_from_json, tree_to_json
from voedger.appdef.load import compile_app, compile_packages
from voedger.extensions import check_extensions, load_extensions
from voedger.vsql.errors import VSQLError
from voedger.vsql.loader import MAPPING_FILE, external_packages, installed_packages, load_app_packages, read_config
from voedger.vvm.image import IMAGE_FORMAT, IMAGE_MANIFEST
from voedger.wasm import add_wasm_extensions, package_folders

__all__ = ["BASELINE_FILE", "BASELINE_FORMAT", "main"]

BASELINE_FILE: Final = "baseline.json"
BASELINE_FORMAT: Final = "voedger-baseline/1"
_IMAGE_SUFFIXES: Final = (".vsql", ".sql", ".py", ".json", ".wasm")
_IMAGE_PACKAGES: Final = "pkg"
"""Where an image keeps the packages the application imports from outside its folder."""

F = TypeVar("F", bound=Callable[..., Any])


def _fail(lines: list[str] | str, code: int = 1) -> NoReturn:
    for line in [lines] if isinstance(lines, str) else lines:
        click.echo(line, err=True)
    sys.exit(code)


def _change_dir(func: F) -> F:
    """``-C/--change-dir`` on every subcommand, as in Voedger's vpm; it wins over the group's."""
    return click.option(
        "-C",
        "--change-dir",
        "change_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="The application's folder (default: the current one); other paths stay relative to the current folder.",
    )(func)


def _app_dir(ctx: click.Context, change_dir: Path | None) -> Path:
    group_dir = ctx.find_root().params.get("change_dir")
    return change_dir or group_dir or Path.cwd()


def _compile(app_dir: Path, *, stand_in: bool = True) -> AppDef:
    try:
        return compile_app(app_dir, stand_in=stand_in)
    except VSQLError as e:
        _fail([str(d) for d in e.diagnostics] + [f"{len(e.diagnostics)} error(s)"])


def _summary(app: AppDef) -> str:
    return (
        f"application {app.name or '?'}: {len(app.packages)} packages, {len(app)} types, "
        f"{len(app.workspaces())} workspaces"
    )


@click.group()
@click.version_option(__version__, prog_name="vpm")
@_change_dir
def main(change_dir: Path | None) -> None:
    """Compile, baseline, check and build Voedger applications."""


@main.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@_change_dir
@click.pass_context
def compile(ctx: click.Context, directory: Path | None, change_dir: Path | None) -> None:
    """Compile the application in DIRECTORY (or -C, or the current folder) and report every error.

    A library package (no APPLICATION) compiles in a stand-in application, as in Voedger."""
    if directory is not None and change_dir is not None and directory != change_dir:
        _fail("give the application's folder once: as DIRECTORY or as -C", code=2)
    app = _compile(directory or _app_dir(ctx, change_dir))
    click.echo(_summary(app))


@main.command()
@click.argument("baseline_dir", type=click.Path(file_okay=False, path_type=Path))
@_change_dir
@click.pass_context
def baseline(ctx: click.Context, baseline_dir: Path, change_dir: Path | None) -> None:
    """Write the current schema's baseline into BASELINE_DIR (a JSON file meant for version control)."""
    app = _compile(_app_dir(ctx, change_dir))
    document = {
        "format": BASELINE_FORMAT,
        "application": app.name,
        "packages": [{"name": p.name, "path": p.path} for p in app.packages],
        "tree": tree_to_json(build_tree(app)),
    }
    baseline_dir.mkdir(parents=True, exist_ok=True)
    target = baseline_dir / BASELINE_FILE
    target.write_text(_format_json(document) + "\n", encoding="utf-8")
    click.echo(f"baseline of {_summary(app)} written to {target}")


def _format_json(obj: Any, indent: str = "") -> str:
    """JSON with one line per leaf object: a baseline diff then shows one line per changed field."""
    inner = indent + " "
    if isinstance(obj, dict) and any(isinstance(v, dict | list) for v in obj.values()):
        items = [f"{inner}{json.dumps(k)}: {_format_json(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(obj, list) and obj:
        return "[\n" + ",\n".join(inner + _format_json(v, inner) for v in obj) + "\n" + indent + "]"
    return json.dumps(obj, ensure_ascii=False)


def _read_ignore(path: Path) -> list[str]:
    """Paths to ignore, one per line; ``#`` starts a comment; a leading ``- `` (a YAML list) is fine."""
    paths = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("- "):
            line = line[2:].strip().strip("'\"")
        if line:
            paths.append(line)
    return paths


@main.command()
@click.argument("baseline_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--ignore",
    "ignore_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A file of break paths to accept, one per line.",
)
@_change_dir
@click.pass_context
def compat(ctx: click.Context, baseline_dir: Path, ignore_file: Path | None, change_dir: Path | None) -> None:
    """Check that the current schema is backward compatible with the baseline in BASELINE_DIR."""
    source = baseline_dir / BASELINE_FILE
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or document.get("format") != BASELINE_FORMAT:
            raise ValueError(f"not a {BASELINE_FORMAT} document")
        old = tree_from_json(document.get("tree"))
    except (OSError, ValueError) as e:
        _fail(f"{source}: cannot read the baseline: {e}", code=2)
    app = _compile(_app_dir(ctx, change_dir))
    errors = check_compat(old, app)
    if ignore_file is not None:
        errors = ignore_errors(errors, _read_ignore(ignore_file))
    if errors:
        _fail([str(e) for e in errors] + [f"{len(errors)} compatibility break(s) against {source}"])
    click.echo(f"compatible with {source}")


def _is_test_file(rel: Path) -> bool:
    name = rel.name
    return (
        any(part in ("tests", "test") for part in rel.parts[:-1])
        or name == "conftest.py"
        or (name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")))
    )


def _image_files(folder: Path, *, whole: bool) -> list[Path]:
    """The files of a package folder an image holds: schema files, Python modules (not tests),
    and, for the application's own folder (``whole``), descriptor.json and templates/; hidden and
    dunder entries, images and tests are left out."""
    out: list[Path] = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or any(part.startswith((".", "__")) for part in rel.parts) or _is_test_file(rel):
            continue
        if p.suffix.lower() in (".var", ".pyc") or rel.as_posix() in (MAPPING_FILE, IMAGE_MANIFEST):
            continue
        in_templates = whole and rel.parts[0] == "templates"
        if p.suffix.lower() in _IMAGE_SUFFIXES or in_templates:
            out.append(p)
    return out


@main.command()
@click.option(
    "-o",
    "--output",
    "output",
    default=None,
    help="Image file to write (default: <application>.var in the current folder).",
)
@_change_dir
@click.pass_context
def build(ctx: click.Context, output: str | None, change_dir: Path | None) -> None:
    """Check the extensions against the schema and write the application's image: a file the
    server deploys as it is (``voedger server --app owner/name=IMAGE.var``).

    The image holds the application's folder (schema, Python modules, descriptor.json, templates;
    not its tests) and every package it imports from elsewhere (mapped in vpm.toml or published by
    an installed distribution) under pkg/<import path>, with a vpm.toml that finds them there."""
    app_dir = _app_dir(ctx, change_dir)
    try:
        packages = load_app_packages(app_dir)
        app = compile_packages(packages)
        config = read_config(app_dir)
    except VSQLError as e:
        _fail([str(d) for d in e.diagnostics] + [f"{len(e.diagnostics)} error(s)"])
    external = external_packages(app_dir, packages)
    try:
        impls = load_extensions(app_dir, [folder for _, folder in external])
    except Exception as e:  # the application's own code failed to import: report, do not crash
        _fail(f"cannot load the application's Python modules: {type(e).__name__}: {e}")
    problems = add_wasm_extensions(app, package_folders(packages), impls)
    problems += check_extensions(app, impls)
    if problems:
        _fail([*problems, f"{len(problems)} mismatch(es) between schema and extensions"])
    target = Path(output) if output else Path.cwd() / f"{app.name}.var"
    entries: dict[str, Path] = {p.relative_to(app_dir).as_posix(): p for p in _image_files(app_dir, whole=True)}
    mapping: dict[str, str] = {}
    root = app_dir.resolve()
    for key, folder in config.packages.items():  # mapped into the application's own folder: kept
        if folder.resolve().is_relative_to(root):
            mapping[key] = Path(os.path.relpath(folder.resolve(), root)).as_posix()
    for pkg, folder in external:
        key = pkg.path or pkg.name
        prefix = f"{_IMAGE_PACKAGES}/{key.strip('/')}"
        mapping[key] = prefix
        for p in _image_files(folder, whole=False):
            name = f"{prefix}/{p.relative_to(folder).as_posix()}"
            if name in entries:
                _fail(f"the image would hold {name} twice: the application has a {_IMAGE_PACKAGES}/ folder of its own")
            entries[name] = p
    # the main package keeps its name, whatever the folder the image is unpacked into
    toml = [f"path = {json.dumps(config.path or packages[0].name)}", "", "[packages]"]
    toml += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in sorted(mapping.items())]
    manifest = {
        "format": IMAGE_FORMAT,
        "application": app.name,
        "built_by": f"vpm {__version__}",
        "packages": [{"name": p.name, "path": p.path} for p in app.packages],
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(IMAGE_MANIFEST, json.dumps(manifest, indent=1) + "\n")
        zf.writestr(MAPPING_FILE, "\n".join(toml) + "\n")
        for name, p in sorted(entries.items()):
            zf.write(p, name)
    os.replace(tmp, target)
    click.echo(f"{_summary(app)}, {len(impls)} extensions: image written to {os.fspath(target)}")


@main.command()
@click.argument("url")
@click.argument("image", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--app", "app_name", required=True, help="The application's name on the cluster: owner/name.")
@click.option(
    "--token",
    "token",
    envvar="VOEDGER_TOKEN",
    default=None,
    help="A system token of sys/cluster (`voedger token system`); or the VOEDGER_TOKEN variable.",
)
@click.option("--cluster-id", default=1, show_default=True, type=click.IntRange(min=1, max=0xFFFF))
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for the server.")
def deploy(url: str, image: Path, app_name: str, token: str | None, cluster_id: int, timeout: float) -> None:
    """Deploy IMAGE (a file `vpm build` wrote) to the running server at URL as --app, through
    sys/cluster's DeployApp. A new version of a deployed application must be backward compatible
    with it (the rules of `vpm compat`); otherwise the server refuses it, lists the breaks and
    changes nothing."""
    import base64

    import httpx

    from voedger.structs.wsid import app_wsid

    if not token:
        _fail("a system token is needed: --token or VOEDGER_TOKEN (`voedger token system --storage URL`)", code=2)
    data = image.read_bytes()
    body = {"args": {"AppQName": app_name}, "unloggedArgs": {"Image": base64.b64encode(data).decode()}}
    endpoint = f"{url.rstrip('/')}/api/sys/cluster/{app_wsid(cluster_id, 0)}/c.cluster.DeployApp"
    try:
        r = httpx.post(endpoint, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    except httpx.HTTPError as e:
        _fail(f"cannot reach {url}: {type(e).__name__}: {e}", code=2)
    if r.status_code != 200:
        try:
            message = r.json()["sys.Error"]["Message"]
        except (ValueError, KeyError, TypeError):
            message = r.text
        _fail([f"{app_name} not deployed ({r.status_code}):", *str(message).splitlines()])
    click.echo(f"{app_name} deployed to {url} ({len(data)} bytes)")


@main.command()
@click.option(
    "-o", "--output", "output", default=None, help="File to write (default: orm.py in the application's folder)."
)
@_change_dir
@click.pass_context
def orm(ctx: click.Context, output: str | None, change_dir: Path | None) -> None:
    """Write typed Python for the application's schema: TypedDicts of its tables, objects and view
    rows, typed get/put/insert helpers and the arguments and results of its commands and queries.
    Extension modules import it (``from .orm import ...``) and mypy checks their use of fields."""
    from voedger.appdef.orm import generate_orm

    app_dir = _app_dir(ctx, change_dir)
    app = _compile(app_dir, stand_in=False)
    own = [p.name for p in app.packages if p.name != "sys"]
    target = Path(output) if output else app_dir / "orm.py"
    target.write_text(generate_orm(app, own), encoding="utf-8")
    click.echo(f"typed access to {', '.join(own)} written to {os.fspath(target)}")
    if _package_marker(target.parent, app.name):
        click.echo(
            f"{target.parent / '__init__.py'} written: mypy checks the folder as a package (mypy {target.parent})"
        )


def _package_marker(folder: Path, name: str) -> bool:
    """Make the application's folder a package for mypy (``from .orm import ...``); the server
    and ``vpm build`` ignore the file. Whether it was written."""
    marker = folder / "__init__.py"
    if marker.exists():
        return False
    marker.write_text(f'"""The {name} application: a package, so that its modules import each other relatively."""\n')
    return True


_PACKAGE_PATH = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._~-]*/)*[A-Za-z][A-Za-z0-9_]{0,254}")
_TEMPLATE_FILES: Final = {"app.vsql": "app.vsql.tmpl", "ext.py": "ext.py.tmpl", "test_app.py": "test_app.py.tmpl"}


@main.command()
@click.argument("package_path")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def init(package_path: str, directory: Path | None) -> None:
    """Make a new application in DIRECTORY (default: a new folder named by PACKAGE_PATH's last
    element): its schema, its Python extensions, their tests and its vpm.toml, ready for
    `vpm compile`, `vpm build` and `python -m pytest`.

    PACKAGE_PATH is the application package's import path, e.g. github.com/acme/loans; its last
    element (loans) names the application and prefixes its QNames."""
    from importlib import resources

    if not _PACKAGE_PATH.fullmatch(package_path):
        _fail(
            f"{package_path!r} is not a package path: elements separated by /, the last one an identifier "
            "(a letter, then letters, digits and _)",
            code=2,
        )
    name = package_path.rsplit("/", 1)[-1]
    target = directory if directory is not None else Path(name)
    if target.exists() and any(target.iterdir()):
        _fail(f"{target} is not empty: vpm init makes a new application in a new or empty folder", code=2)
    ws = name[0].upper() + name[1:] + ("" if name.endswith("WS") else "WS")
    values = {"name": name, "path": package_path, "ws": ws}
    template = resources.files("voedger.cli.template")
    target.mkdir(parents=True, exist_ok=True)
    for out, source in {**_TEMPLATE_FILES, MAPPING_FILE: "vpm.toml.tmpl"}.items():
        (target / out).write_text(template.joinpath(source).read_text(encoding="utf-8").format(**values))
    _package_marker(target, name)
    click.echo(f"application {name} made in {target}: app.vsql, ext.py, test_app.py, {MAPPING_FILE}, __init__.py")
    click.echo(f"next: vpm compile {target} && (cd {target} && python -m pytest) && vpm build -C {target}")


@main.command()
@_change_dir
@click.pass_context
def tidy(ctx: click.Context, change_dir: Path | None) -> None:
    """Tidy the application's vpm.toml: drop the [packages] entries that no package of the
    application imports (their lines go, comments and the rest stay), and say where each import
    is found. An import found nowhere is an error, with the places looked in."""
    import tomllib

    app_dir = _app_dir(ctx, change_dir)
    try:
        packages = load_app_packages(app_dir)
        config = read_config(app_dir)
    except VSQLError as e:
        _fail([str(d) for d in e.diagnostics] + [f"{len(e.diagnostics)} error(s)"])
    imported = {i.path for p in packages for i in p.imports} | {"sys"}
    file = app_dir / MAPPING_FILE
    unused = sorted(set(config.packages) - imported)
    if unused and file.is_file():
        kept: list[str] = []
        in_packages = False
        for line in file.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith("["):
                in_packages = stripped == "[packages]"
            elif in_packages and stripped and not stripped.startswith("#"):
                try:
                    keys = set(tomllib.loads(line))
                except tomllib.TOMLDecodeError:
                    keys = set()
                if keys and keys <= set(unused):
                    continue
            kept.append(line)
        file.write_text("\n".join(kept) + "\n", encoding="utf-8")
    installed = installed_packages()
    for p in packages:
        if p.path in ("", "sys") or p.name == "sys" or p is packages[0]:
            continue
        where = "vpm.toml" if p.path in config.packages else "an installed distribution"
        where = where if p.path in config.packages or p.path in installed else "a subfolder"
        click.echo(f"{p.path}: package {p.name}, found through {where}")
    click.echo(f"{len(unused)} unused entr{'y' if len(unused) == 1 else 'ies'} removed from {MAPPING_FILE}")


if __name__ == "__main__":
    main()
