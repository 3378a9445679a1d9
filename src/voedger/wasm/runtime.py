"""wasmtime underneath the WASM engine: one engine per process, each ``pkg.wasm`` compiled once,
and a pool of initialised instances per module, each with its own store, fuel and memory limit.

Everything here is synchronous and runs in the engine's worker threads (see ``engine.py``): a
store is used by one thread at a time, the one that took its instance from the pool.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import wasmtime

from voedger.wasm.abi import (
    HOST_MODULE,
    IMPORT_INPUT,
    IMPORT_INTENT,
    IMPORT_READ,
    INIT_EXPORT,
    MEMORY_EXPORT,
    RESERVED_EXPORTS,
    START_EXPORT,
    WASI_MODULE,
)

__all__ = ["Host", "WasmFailure", "WasmLimits", "WasmModule", "compile_module"]

_STDERR_KEPT = 4096
"""The most of a guest's stderr kept to explain a failure (a Go panic prints its message there)."""


@dataclass(frozen=True, slots=True)
class WasmLimits:
    """The sandbox of one call."""

    fuel: int = 1_000_000_000
    """WASM instructions (roughly) one call may execute: about a fifth of a second of CPU."""
    memory: int = 64 << 20
    """Bytes of linear memory an instance may grow to (Go's runtime takes about 3 MiB)."""
    idle_instances: int = 4
    """Initialised instances kept per module for the next calls."""


class Host(Protocol):
    """What one call offers its guest; raising anything fails the call (the guest traps)."""

    def input(self) -> bytes: ...

    def read(self, request: bytes) -> bytes: ...

    def intent(self, request: bytes) -> int: ...


class WasmFailure(Exception):
    """The guest failed: trapped, ran out of fuel or memory, panicked or exited; the message says
    which in a sentence."""


_engine: wasmtime.Engine | None = None
_compiled: dict[bytes, wasmtime.Module] = {}
_lock = threading.Lock()


def _the_engine() -> wasmtime.Engine:
    global _engine
    with _lock:
        if _engine is None:
            config = wasmtime.Config()
            config.consume_fuel = True
            _engine = wasmtime.Engine(config)
        return _engine


def compile_module(path: Path) -> WasmModule:
    """Compile ``path`` (a few seconds for a Go module of some MiB; the same bytes are compiled
    once per process). Raises ``WasmFailure`` for what is not a WASM module."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).digest()
    engine = _the_engine()
    with _lock:
        module = _compiled.get(digest)
    if module is None:
        try:
            module = wasmtime.Module(engine, data)
        except wasmtime.WasmtimeError as exc:
            raise WasmFailure(f"is not a WASM module: {_first_line(str(exc))}") from None
        with _lock:
            module = _compiled.setdefault(digest, module)
    return WasmModule(module)


class WasmModule:
    """A compiled module and its idle instances."""

    def __init__(self, module: wasmtime.Module) -> None:
        self.module = module
        self.functions = frozenset(e.name for e in module.exports if isinstance(e.type, wasmtime.FuncType))
        memories = (e.name for e in module.exports if isinstance(e.type, wasmtime.MemoryType))
        self.has_memory = MEMORY_EXPORT in memories
        self._idle: list[_Instance] = []
        self._idle_lock = threading.Lock()

    def problems(self) -> list[str]:
        """What makes the module unusable by this engine, whatever it exports for extensions."""
        out: list[str] = []
        if not self.has_memory:
            out.append(f"exports no memory named {MEMORY_EXPORT!r}")
        if START_EXPORT in self.functions and INIT_EXPORT not in self.functions:
            out.append(
                f"is a WASI command (it exports {START_EXPORT}): build a reactor, "
                "e.g. GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared"
            )
        foreign = sorted(
            f"{imp.module}.{imp.name}"
            for imp in self.module.imports
            if imp.module != WASI_MODULE
            and not (imp.module == HOST_MODULE and imp.name in (IMPORT_INPUT, IMPORT_READ, IMPORT_INTENT))
        )
        if foreign:
            more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            out.append(
                f"imports {', '.join(foreign[:5])}{more}, which the platform does not offer "
                f"(it offers {HOST_MODULE}.{IMPORT_INPUT}, .{IMPORT_READ}, .{IMPORT_INTENT} and WASI)"
            )
        return out

    def extension_exports(self) -> list[str]:
        return sorted(self.functions - RESERVED_EXPORTS)

    def call(self, export: str, host: Host, limits: WasmLimits) -> None:
        """Run ``export`` on an idle instance (or a new one); an instance that failed is dropped,
        so the next call starts clean."""
        with self._idle_lock:
            inst = self._idle.pop() if self._idle else None
        if inst is None:
            inst = _Instance(self.module, limits)
        inst.run(export, host, limits)  # raises: the instance is not given back
        with self._idle_lock:
            if len(self._idle) < limits.idle_instances:
                self._idle.append(inst)


class _Instance:
    """One store with one instance of the module, initialised (``_initialize``) once."""

    def __init__(self, module: wasmtime.Module, limits: WasmLimits) -> None:
        self.store = wasmtime.Store(_the_engine())
        self.store.set_limits(memory_size=limits.memory)
        self.host: Host | None = None
        self.error: BaseException | None = None
        self.stderr = bytearray()
        wasi = wasmtime.WasiConfig()
        wasi.stderr_custom = self._keep_stderr
        wasi.stdout_custom = self._keep_stderr
        self.store.set_wasi(wasi)
        linker = wasmtime.Linker(_the_engine())
        linker.define_wasi()
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        self._define(linker, IMPORT_INPUT, [i32, i32], [i32], self._input)
        self._define(linker, IMPORT_READ, [i32, i32, i32, i32], [i32], self._read)
        self._define(linker, IMPORT_INTENT, [i32, i32], [i64], self._intent)
        self.store.set_fuel(limits.fuel)
        try:
            instance = linker.instantiate(self.store, module)
            self.exports = instance.exports(self.store)
            memory = self.exports.get(MEMORY_EXPORT)
            if not isinstance(memory, wasmtime.Memory):
                raise WasmFailure(f"exports no memory named {MEMORY_EXPORT!r}")
            self.memory = memory
            init = self.exports.get(INIT_EXPORT)
            if isinstance(init, wasmtime.Func):
                init(self.store)
        except WasmFailure:
            raise
        except Exception as exc:
            raise self._failure(exc, "while initialising", limits) from None

    def _define(
        self, linker: wasmtime.Linker, name: str, params: list[Any], results: list[Any], func: Callable[..., int]
    ) -> None:
        linker.define_func(HOST_MODULE, name, wasmtime.FuncType(params, results), func, access_caller=True)

    def _keep_stderr(self, data: bytes) -> None:
        room = _STDERR_KEPT - len(self.stderr)
        if room > 0:
            self.stderr += data[:room]

    def run(self, export: str, host: Host, limits: WasmLimits) -> None:
        func = self.exports.get(export)
        if not isinstance(func, wasmtime.Func):
            raise WasmFailure(f"exports no function {export}")
        self.host, self.error = host, None
        self.stderr.clear()
        self.store.set_fuel(limits.fuel)
        try:
            func(self.store)
        except BaseException as exc:
            # A host call that refused left its own error here (a SysError keeps its status).
            # wasmtime-py keeps a callback's exception in one global for the whole process, so
            # when two calls fail at once the exception raised here may be the other one's:
            # the error kept on the instance is the one to trust.
            if self.error is not None:
                raise self.error from None
            raise self._failure(exc, "", limits) from None
        finally:
            self.host = None

    def _failure(self, exc: BaseException, what: str, limits: WasmLimits) -> WasmFailure:
        """Why the guest failed, in a sentence; ``what`` is empty for a call, or says the stage."""
        if isinstance(exc, wasmtime.Trap) and exc.trap_code == wasmtime.TrapCode.OUT_OF_FUEL:
            text = f"ran out of fuel (the limit is {limits.fuel:,} instructions a call): an endless loop?"
        else:
            said = self._said()
            if "out of memory" in said:
                said += f" (the limit is {limits.memory >> 20} MiB)"
            if isinstance(exc, wasmtime.ExitTrap):
                text = f"exited with code {exc.code}" + (f": {said}" if said else "")
            elif said:
                text = said
            elif isinstance(exc, wasmtime.Trap | wasmtime.WasmtimeError):
                text = f"trapped: {_trap_reason(str(exc))}"
            else:
                text = f"{type(exc).__name__}: {exc}"
        return WasmFailure(f"{what}: {text}" if what else text)

    def _said(self) -> str:
        """The guest's last words: Go's ``panic: ...`` or ``fatal error: ...`` line, if any."""
        text = self.stderr.decode("utf-8", "replace")
        for line in text.splitlines():
            if line.startswith(("panic: ", "fatal error: ")):
                return line.strip()
        return _first_line(text)

    # --- host functions: (caller, i32...) -> int; a failure is kept and traps the guest -------

    def _bytes(self, caller: wasmtime.Caller, ptr: int, size: int) -> bytes:
        ptr, size = ptr & 0xFFFFFFFF, size & 0xFFFFFFFF
        if ptr + size > self.memory.data_len(caller):
            raise WasmFailure(f"a host call passed memory out of bounds ({ptr}+{size})")
        return bytes(self.memory.read(caller, ptr, ptr + size))

    def _answer(self, caller: wasmtime.Caller, data: bytes, ptr: int, cap: int) -> int:
        """Write ``data`` at ``ptr`` if it fits in ``cap`` bytes; its length either way (the guest
        calls again with a buffer that large when it did not fit)."""
        ptr, cap = ptr & 0xFFFFFFFF, cap & 0xFFFFFFFF
        if len(data) <= cap:
            if ptr + len(data) > self.memory.data_len(caller):
                raise WasmFailure(f"a host call passed memory out of bounds ({ptr}+{cap})")
            self.memory.write(caller, data, ptr)
        return len(data)

    def _guard(self, call: Callable[[], int]) -> int:
        host = self.host
        if host is None:
            self.error = WasmFailure("a host function was called outside an extension call (during initialisation?)")
            raise self.error
        try:
            return call()
        except BaseException as exc:
            self.error = exc
            raise

    def _input(self, caller: wasmtime.Caller, ptr: int, cap: int) -> int:
        return self._guard(lambda: self._answer(caller, self._host().input(), ptr, cap))

    def _read(self, caller: wasmtime.Caller, req: int, req_len: int, out: int, cap: int) -> int:
        return self._guard(lambda: self._answer(caller, self._host().read(self._bytes(caller, req, req_len)), out, cap))

    def _intent(self, caller: wasmtime.Caller, ptr: int, size: int) -> int:
        return self._guard(lambda: self._host().intent(self._bytes(caller, ptr, size)))

    def _host(self) -> Host:
        assert self.host is not None
        return self.host


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _trap_reason(text: str) -> str:
    """wasmtime's trap text is a backtrace, then ``Caused by:`` and the reason."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "Caused by:" in lines:
        rest = lines[lines.index("Caused by:") + 1 :]
        if rest:
            return rest[-1]
    return lines[0] if lines else "trap"
