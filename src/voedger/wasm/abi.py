"""The names of the WASM extension ABI (docs/extensions.md, "WASM extensions").

A package's ``pkg.wasm`` exports one function per extension, named as the extension (``Lend``
for ``library.Lend``), taking and returning nothing. It imports three functions from the
module ``voedger``; every value crosses as JSON in the guest's memory:

- ``input(buf, cap) -> len``: the call's input (``{"wsid", "args"}`` for a command or query,
  ``{"wsid", "event"}`` for a projector);
- ``read(req, req_len, buf, cap) -> len``: one read of the state (``{"record": ID}``,
  ``{"singleton": "pkg.Table"}``, ``{"view": "pkg.View", "key": {...}}``), answered with the
  record or row, or ``null``; ``{"http": {...}}`` and ``{"send_mail": {...}}`` (Voedger's field
  names), answered with the HTTP answer or the mail's outcome;
- ``intent(req, req_len) -> i64``: one intent (``{"insert": "pkg.Table", "fields": {...}}``
  answers the new record's raw ID; ``{"update": ID, "fields": {...}}``, ``{"view": "pkg.View",
  "row": {...}}``, ``{"result": {...}}``, ``{"respond": {"status": N, "message": "..."}}``,
  ``{"log": "..."}``, ``{"send_mail": {...}}`` answer 0).

``input`` and ``read`` write their answer at ``buf`` only if it fits in ``cap`` bytes, and
return its length either way: a guest whose buffer was too small calls again with a larger one.
"""

from __future__ import annotations

from typing import Final

WASM_FILE: Final = "pkg.wasm"
"""The module of a package: beside its ``.vsql`` files."""
HOST_MODULE: Final = "voedger"
WASI_MODULE: Final = "wasi_snapshot_preview1"
"""WASI preview 1 is offered too (a guest's stdout and stderr are kept to explain a failure)."""
IMPORT_INPUT: Final = "input"
IMPORT_READ: Final = "read"
IMPORT_INTENT: Final = "intent"
MEMORY_EXPORT: Final = "memory"
INIT_EXPORT: Final = "_initialize"
"""A reactor's initialiser (Go's runtime, TinyGo's), called once per instance."""
START_EXPORT: Final = "_start"
RESERVED_EXPORTS: Final = frozenset({INIT_EXPORT, START_EXPORT, MEMORY_EXPORT, "malloc", "free", "calloc", "realloc"})
"""Exports that are never extensions."""
