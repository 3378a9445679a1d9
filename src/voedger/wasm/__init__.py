"""``EXTENSION ENGINE WASM``: extensions compiled to WebAssembly (Go, TinyGo, Rust...) run in
wasmtime, sandboxed by a fuel and a memory limit, seeing the state and making the intents a
Python extension does through three host functions (``abi.py``; docs/extensions.md, "WASM
extensions")."""

from voedger.wasm.abi import WASM_FILE
from voedger.wasm.load import add_wasm_extensions, package_folders
from voedger.wasm.runtime import WasmFailure, WasmLimits

__all__ = ["WASM_FILE", "WasmFailure", "WasmLimits", "add_wasm_extensions", "package_folders"]
