"""Calling a WASM extension from the processors: the ``(state, intents)`` function registered
for it, which runs the module's export in a worker thread and waits for it without blocking the
event loop."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from voedger.appdef import Extension
from voedger.state import Intents, State
from voedger.syserror import SysError
from voedger.wasm.host import CallHost
from voedger.wasm.runtime import WasmFailure, WasmLimits, WasmModule

__all__ = ["wasm_function"]

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _the_executor() -> ThreadPoolExecutor:
    """Worker threads for WASM calls: as many as cores, at most 4 (wasmtime runs without the GIL)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            workers = max(1, min(4, os.cpu_count() or 1))
            _executor = ThreadPoolExecutor(workers, thread_name_prefix="voedger-wasm")
        return _executor


def wasm_function(
    ext: Extension, module: WasmModule, source: str, limits: WasmLimits
) -> Callable[[State, Intents], Awaitable[None]]:
    """The implementation of ``ext``: its export (the extension's name) of ``module``, which was
    loaded from ``source`` (named in messages). A guest that fails answers 500, naming the
    extension and what went wrong; what a host call refused keeps its own status."""
    export = ext.qname.entity

    async def run(state: State, intents: Intents) -> None:
        loop = asyncio.get_running_loop()
        host = CallHost(ext, state, intents, loop)
        try:
            await loop.run_in_executor(_the_executor(), module.call, export, host, limits)
        except WasmFailure as exc:
            raise SysError(500, f"extension {ext.qname} ({source}) failed: {exc}") from None

    run.__module__ = source
    run.__qualname__ = run.__name__ = export
    return run
