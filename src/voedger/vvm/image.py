"""An application image: its schema compiled, its Python loaded and checked against the
schema, and its deployment numbers (Voedger's ``descriptor.json``)."""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from voedger.appdef import AppDef
from voedger.appdef.load import compile_packages
from voedger.blobs.keys import TEMPLATE_BLOB
from voedger.extensions import Registry, check_extensions, load_extensions
from voedger.structs.wsid import DEFAULT_NUM_APP_WORKSPACES, DEFAULT_NUM_PARTITIONS, MAX_NUM_APP_WORKSPACES
from voedger.vsql.loader import external_packages, load_app_packages
from voedger.wasm import add_wasm_extensions, package_folders

APP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*/[A-Za-z][A-Za-z0-9_-]*")
MAX_PARTITIONS = 0xFFFF
IMAGE_FORMAT = "voedger-image/1"
IMAGE_MANIFEST = "image.json"
"""An image file is a zip of the application's folder (``vpm build``) with this manifest in it."""
MAX_IMAGE_BYTES = 512 * 1024 * 1024
"""The most an image may unpack to."""


class ImageError(Exception):
    """An application cannot be deployed; the message says why (every problem, one per line)."""


@dataclass(frozen=True)
class AppImage:
    name: str
    directory: Path
    appdef: AppDef
    impls: Registry
    num_partitions: int
    num_app_workspaces: int
    templates: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    """``templates/<WSKind>/<TemplateName>/data.json`` of the application folder."""


def load_image(name: str, directory: Path | str) -> AppImage:
    """Compile and check the application to be deployed as ``name``: a folder, or an image file
    ``vpm build`` wrote (unpacked into a folder of this process, removed when it exits)."""
    from voedger.vsql.errors import VSQLError

    if not APP_NAME.fullmatch(name):
        raise ImageError(f"application name {name!r} must look like owner/app (letters, digits, _ and -)")
    root = Path(directory)
    if root.is_file():
        root = unpack_image(root, f"application {name}")
    elif not root.is_dir():
        raise ImageError(f"application {name}: {root} is neither a directory nor an image file")
    try:
        packages = load_app_packages(root)
        appdef = compile_packages(packages)
    except VSQLError as exc:
        raise ImageError(f"application {name} does not compile:\n{exc}") from None
    try:
        impls = load_extensions(root, [folder for _, folder in external_packages(root, packages)])
    except Exception as exc:
        raise ImageError(f"application {name}: its Python modules fail to load: {type(exc).__name__}: {exc}") from exc
    problems = add_wasm_extensions(appdef, package_folders(packages), impls)
    problems += check_extensions(appdef, impls)
    if problems:
        raise ImageError(f"application {name}: schema and code do not match:\n" + "\n".join(problems))
    parts, app_ws = _descriptor(name, root)
    return AppImage(name, root, appdef, impls, parts, app_ws, _templates(name, root, appdef))


def _templates(name: str, root: Path, appdef: AppDef) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Workspace templates: an array of records (raw ``sys.ID``, ``sys.QName``, fields) per
    ``templates/<WSKind>/<TemplateName>/data.json``; checked now, so a broken one fails the deploy."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    base = root / "templates"
    if not base.is_dir():
        return found
    for data in sorted(base.glob("*/*/data.json")):
        kind, template = data.parent.parent.name, data.parent.name
        where = f"application {name}: template {kind}/{template}"
        try:
            if appdef.workspace_by_descriptor(kind) is None:
                raise ValueError("x")
        except ValueError:
            raise ImageError(f"{where}: {kind} is not the descriptor of a workspace kind") from None
        try:
            records = orjson.loads(data.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ImageError(f"{where}: data.json is not valid JSON: {exc}") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) and "sys.QName" in r for r in records):
            raise ImageError(f"{where}: data.json must be an array of records with sys.ID and sys.QName")
        _template_blobs(where, data.parent, records)
        found[(kind, template)] = records
    return found


def _template_blobs(where: str, folder: Path, records: list[dict[str, Any]]) -> None:
    """The BLOBs of a template, as Voedger keeps them: beside data.json, one file per BLOB named
    ``<raw ID of the record>_<field>.<ext>``; the record must give the field (any value)."""
    by_id = {r.get("sys.ID"): r for r in records}
    for path in sorted(folder.iterdir()):
        if path.name == "data.json" or not path.is_file():
            continue
        raw_id, underscore, rest = path.name.partition("_")
        field = rest.rsplit(".", 1)[0] if "." in rest else rest
        if not underscore or not raw_id.isdigit():
            raise ImageError(f"{where}: wrong blob file name format: {path.name} (expected <recordID>_<field>.<ext>)")
        if not field:
            raise ImageError(f"{where}: no fieldName in blob {path.name}")
        record = by_id.get(int(raw_id))
        if record is None:
            raise ImageError(f"{where}: orphaned blob {path.name}: no record with sys.ID {raw_id}")
        if field not in record:
            raise ImageError(f"{where}: have blob for an unknown field for recordID {raw_id}: {field}")
        if isinstance(record[field], dict):
            raise ImageError(f"{where}: recordID {raw_id}: blob for field {field} is met again: {path.name}")
        record[field] = {TEMPLATE_BLOB: str(path)}


def _descriptor(name: str, root: Path) -> tuple[int, int]:
    path = root / "descriptor.json"
    if not path.exists():
        return DEFAULT_NUM_PARTITIONS, DEFAULT_NUM_APP_WORKSPACES
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ImageError(f"application {name}: descriptor.json is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ImageError(f"application {name}: descriptor.json must hold an object")
    unknown = sorted(set(data) - {"NumParts", "NumAppWorkspaces"})
    if unknown:
        raise ImageError(f"application {name}: descriptor.json has unknown key(s) {', '.join(unknown)}")
    parts = data.get("NumParts", DEFAULT_NUM_PARTITIONS)
    app_ws = data.get("NumAppWorkspaces", DEFAULT_NUM_APP_WORKSPACES)
    for key, value, top in (
        ("NumParts", parts, MAX_PARTITIONS),
        ("NumAppWorkspaces", app_ws, MAX_NUM_APP_WORKSPACES),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ImageError(f"application {name}: descriptor.json {key} must be a number from 1 to {top}")
    return parts, app_ws


def unpack_image(file: Path, what: str = "image") -> Path:
    """Unpack an image file ``vpm build`` wrote into a fresh folder of this process (removed when
    the process exits) and return the folder; refuses what is not such an image."""
    try:
        with zipfile.ZipFile(file) as zf:
            infos = zf.infolist()
            try:
                manifest = orjson.loads(zf.read(IMAGE_MANIFEST))
            except KeyError:
                raise ImageError(f"{what}: {file} is not an application image: it has no {IMAGE_MANIFEST}") from None
            if not isinstance(manifest, dict) or manifest.get("format") != IMAGE_FORMAT:
                raise ImageError(f"{what}: {file}: {IMAGE_MANIFEST} is not a {IMAGE_FORMAT} manifest")
            if sum(i.file_size for i in infos) > MAX_IMAGE_BYTES:
                raise ImageError(f"{what}: {file} unpacks to more than {MAX_IMAGE_BYTES} bytes")
            for info in infos:
                parts = info.filename.split("/")
                if info.filename.startswith("/") or "\\" in info.filename or ".." in parts or ":" in parts[0]:
                    raise ImageError(f"{what}: {file}: unsafe file name in the image: {info.filename!r}")
            target = Path(tempfile.mkdtemp(prefix="voedger-image-"))
            atexit.register(shutil.rmtree, target, True)
            zf.extractall(target)
    except (zipfile.BadZipFile, orjson.JSONDecodeError, OSError) as exc:
        raise ImageError(f"{what}: {file} is not an application image: {exc}") from None
    return target
