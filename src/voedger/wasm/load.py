"""Binding an application's ``EXTENSION ENGINE WASM`` extensions to the ``pkg.wasm`` of their
packages, when the application is built or deployed.

A package with a ``pkg.wasm`` beside its ``.vsql`` files implements its WASM extensions there,
one export each, named as the extension; a package without one implements them in Python, as
its BUILTIN ones. Every mismatch is reported before the application runs: an extension the
module does not export, one implemented both ways, a module this engine cannot run.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from voedger.appdef import AppDef, ExtensionEngine
from voedger.extensions import Registry
from voedger.vsql import ast
from voedger.wasm.abi import WASM_FILE
from voedger.wasm.engine import wasm_function
from voedger.wasm.runtime import WasmFailure, WasmLimits, compile_module

__all__ = ["add_wasm_extensions", "package_folders"]


def package_folders(packages: Iterable[ast.Package]) -> dict[str, Path]:
    """The folder of each package by its name (the QName prefix of its types); not sys."""
    return {p.name: Path(p.files[0].path).parent for p in packages if p.files and p.name != "sys"}


def add_wasm_extensions(
    app: AppDef, folders: dict[str, Path], impls: Registry, limits: WasmLimits | None = None
) -> list[str]:
    """Register into ``impls`` a function for each WASM extension whose package has a
    ``pkg.wasm``; one message per problem (empty when all is well)."""
    limits = limits or WasmLimits()
    problems: list[str] = []
    wasm = [e for e in app.extensions(ExtensionEngine.WASM) if not e.qname.is_sys]
    for pkg in sorted({e.qname.pkg for e in wasm}):
        folder = folders.get(pkg)
        if folder is None or not (folder / WASM_FILE).is_file():
            continue  # implemented in Python: check_extensions says so if it is not
        source = f"{pkg}/{WASM_FILE}"
        try:
            module = compile_module(folder / WASM_FILE)
        except (WasmFailure, OSError) as exc:
            problems.append(f"{source} {exc}")
            continue
        unusable = module.problems()
        problems += [f"{source} {p}" for p in unusable]
        if unusable:
            continue
        for ext in (e for e in wasm if e.qname.pkg == pkg):
            name = ext.name
            if name not in module.functions:
                offered = ", ".join(module.extension_exports()) or "none"
                problems.append(
                    f"{ext.qname}: declared in EXTENSION ENGINE WASM, but {source} exports no function {name} "
                    f"(it exports: {offered})"
                )
            elif (python := impls.get(ext.qname)) is not None:
                problems.append(f"{ext.qname}: implemented both by {source} and in Python by {python.where}")
            else:
                impls.add(ext.kind, ext.qname, wasm_function(ext, module, source, limits))
    return problems
