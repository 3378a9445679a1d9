"""How Python code implements the extensions a schema declares.

An application's modules register their functions by QName with the decorators below::

    from voedger.extensions import command, projector

    @command("restaurant.CloseBill")
    def close_bill(state, intents): ...

The names must match the schema both ways, which :func:`check_extensions` verifies before an
application is deployed: a declared extension without an implementation, or an implementation of
nothing declared, is an error naming both sides. Extensions of the ``sys`` package are exempt:
the platform implements them, not the application.

Decorators register into the *current* registry: the module-level :data:`registry` unless
:func:`load_extensions` (or :func:`collecting`) is importing an application's modules into a
registry of its own, so that two applications loaded by one process never mix.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from voedger.appdef import AppDef, ExtensionEngine, QName, TypeKind, qname

__all__ = [
    "ExtensionLoadError",
    "ExtensionRegistrationError",
    "Implementation",
    "Registry",
    "check_extensions",
    "collecting",
    "command",
    "job",
    "load_extensions",
    "projector",
    "query",
    "registry",
]

F = TypeVar("F", bound=Callable[..., Any])

_KIND_WORDS = {
    TypeKind.Command: "command",
    TypeKind.Query: "query",
    TypeKind.Projector: "projector",
    TypeKind.Job: "job",
}


class ExtensionRegistrationError(ValueError):
    """A registration is malformed: a bad QName, a non-callable, or a name registered twice."""


@dataclass(frozen=True, slots=True)
class Implementation:
    """A Python function registered as the implementation of an extension."""

    qname: QName
    kind: TypeKind
    func: Callable[..., Any]

    @property
    def where(self) -> str:
        """``module:function``, to tell the user which code a message is about."""
        module = getattr(self.func, "__module__", "?")
        name = getattr(self.func, "__qualname__", repr(self.func))
        return f"{module}:{name}"

    def __str__(self) -> str:
        return f"{_KIND_WORDS[self.kind]} {self.qname} ({self.where})"


class Registry:
    """Implementations by QName; one per application."""

    def __init__(self) -> None:
        self._impls: dict[QName, Implementation] = {}

    def add(self, kind: TypeKind, name: QName | str, func: Callable[..., Any]) -> Implementation:
        if kind not in _KIND_WORDS:
            raise ExtensionRegistrationError(f"{kind} is not a kind of extension")
        try:
            q = qname(name)
        except ValueError as e:
            raise ExtensionRegistrationError(str(e)) from None
        if not callable(func):
            raise ExtensionRegistrationError(f"the implementation of {q} is not callable")
        impl = Implementation(q, kind, func)
        if (old := self._impls.get(q)) is not None:
            raise ExtensionRegistrationError(f"{q} is implemented twice: by {old.where} and {impl.where}")
        self._impls[q] = impl
        return impl

    def get(self, name: QName | str) -> Implementation | None:
        return self._impls.get(qname(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, QName | str) and self.get(name) is not None

    def __iter__(self) -> Iterator[Implementation]:
        return iter(sorted(self._impls.values(), key=lambda i: i.qname))

    def __len__(self) -> int:
        return len(self._impls)

    def _decorator(self, kind: TypeKind, name: str) -> Callable[[F], F]:
        def register(func: F) -> F:
            self.add(kind, name, func)
            return func

        return register

    def command(self, name: str) -> Callable[[F], F]:
        return self._decorator(TypeKind.Command, name)

    def query(self, name: str) -> Callable[[F], F]:
        return self._decorator(TypeKind.Query, name)

    def projector(self, name: str) -> Callable[[F], F]:
        return self._decorator(TypeKind.Projector, name)

    def job(self, name: str) -> Callable[[F], F]:
        return self._decorator(TypeKind.Job, name)


registry = Registry()
"""Where the decorators register when no application is being loaded."""

_current: ContextVar[Registry | None] = ContextVar("voedger_extension_registry", default=None)


def _target() -> Registry:
    current = _current.get()
    return registry if current is None else current


def command(name: str) -> Callable[[F], F]:
    """Register the decorated function as the command ``name`` (``"pkg.Name"``)."""
    return _target().command(name)


def query(name: str) -> Callable[[F], F]:
    """Register the decorated function as the query ``name``."""
    return _target().query(name)


def projector(name: str) -> Callable[[F], F]:
    """Register the decorated function as the projector ``name``; whether it runs SYNC is the
    schema's business, not the code's."""
    return _target().projector(name)


def job(name: str) -> Callable[[F], F]:
    """Register the decorated function as the job ``name``; its schedule is in the schema."""
    return _target().job(name)


@contextlib.contextmanager
def collecting(into: Registry) -> Iterator[Registry]:
    """Make the decorators register into ``into`` while the block runs."""
    token = _current.set(into)
    try:
        yield into
    finally:
        _current.reset(token)


_load_counter = itertools.count(1)


def _is_extension_module(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    if any(p.startswith((".", "_")) or p in ("tests", "__pycache__") for p in parts[:-1]):
        return False
    return not path.name.startswith(("_", "test_", ".")) and path.name != "conftest.py"


def load_extensions(app_dir: Path | str, package_dirs: Iterable[Path] = ()) -> Registry:
    """Import the Python modules of an application into a registry of its own.

    The modules are the ``.py`` files of the application's folder and of its package subfolders
    (files and folders starting with ``_``, ``.`` or ``test_`` are skipped), then those of
    ``package_dirs``, the folders of packages that live outside it (mapped by ``vpm.toml`` or
    published by an installed distribution). Each load imports them afresh under private module
    names, so loading an application twice registers twice into two registries rather than finding
    stale modules in ``sys.modules``.
    """
    reg = Registry()
    batch = next(_load_counter)
    roots = [(Path(app_dir), f"_voedger_app{batch}")]
    roots += [(Path(d), f"_voedger_app{batch}._pkg{i}") for i, d in enumerate(package_dirs)]
    with collecting(reg):
        for root, prefix in roots:
            _load_modules(root, prefix)
    return reg


def _package(name: str, folder: Path) -> None:
    """Register ``name`` as the package of ``folder`` (and its parents, as needed), so that an
    extension module may import its neighbours relatively (``from .orm import Item``)."""
    if name in sys.modules:
        return
    parent, _, _ = name.rpartition(".")
    if parent:
        _package(parent, folder.parent)
    module = types.ModuleType(name)
    module.__path__ = [str(folder)]
    module.__package__ = name
    sys.modules[name] = module


def _load_modules(root: Path, prefix: str) -> None:
    for path in sorted(root.rglob("*.py")):
        if not _is_extension_module(path, root):
            continue
        rel = path.relative_to(root).with_suffix("")
        name = f"{prefix}." + ".".join(rel.parts)
        _package(name.rpartition(".")[0], path.parent)
        if name in sys.modules:  # imported already, by a neighbour
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            where = path.relative_to(root.parent).as_posix()
            raise ExtensionLoadError(f"{where}: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            del sys.modules[name]
            raise


class ExtensionLoadError(ImportError):
    """A module of an application failed to import; the message names it (its folder and file)."""


def check_extensions(app: AppDef, impls: Registry) -> list[str]:
    """Compare the extensions the schema declares with the implementations; one message per
    mismatch (empty when they agree).

    Every extension of an application package needs an implementation of the same kind, whatever
    its declared engine: a WASM extension is an export of its package's ``pkg.wasm``
    (``voedger.wasm.add_wasm_extensions`` registers those first) or, without one, Python.
    Extensions of the sys package are the platform's: an application may not implement them.
    """
    problems: list[str] = []
    for ext in app.extensions():
        word = _KIND_WORDS[ext.kind]
        impl = impls.get(ext.qname)
        if ext.qname.is_sys:
            if impl is not None:
                problems.append(
                    f"{ext.qname}: the {word} is built into the platform (sys), "
                    f"but the application implements it too: {impl.where}"
                )
            continue
        if impl is None and ext.engine is ExtensionEngine.WASM:
            problems.append(
                f"{ext.qname}: {word} declared in EXTENSION ENGINE WASM has no implementation: "
                f"neither a pkg.wasm in its package's folder nor Python"
            )
        elif impl is None:
            problems.append(f"{ext.qname}: {word} declared in VSQL has no Python implementation")
        elif impl.kind is not ext.kind:
            problems.append(
                f"{ext.qname}: declared in VSQL as a {word}, implemented as a {_KIND_WORDS[impl.kind]} by {impl.where}"
            )
    for impl in impls:
        if app.find(impl.qname) is None or not app.type(impl.qname).kind.is_extension:
            problems.append(f"{impl.qname}: {impl} is not declared in VSQL")
    return problems
