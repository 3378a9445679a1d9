"""What is refused before a WASM extension runs (``vpm build``, the deploy, the test kit): a
missing export, an extension implemented twice, what is not WASM, a WASI command, an import the
platform does not offer; and ``vpm build`` carries ``pkg.wasm`` into the image the server
deploys. Small modules are written in the WebAssembly text format; the Go ones are built."""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path

import pytest
import wasmtime
from click.testing import CliRunner

from tests.wasm.conftest import SANDBOX_VSQL, doc_block, make_app
from voedger.cli.vpm import main
from voedger.testkit import ExtensionTestKit
from voedger.vvm.image import ImageError, load_image

ONE_COMMAND = """\
APPLICATION tiny();
WORKSPACE TinyWS (
    DESCRIPTOR TinyDesc (Name varchar);
    EXTENSION ENGINE WASM (COMMAND Hello(); COMMAND Other(););
);
"""


def wat(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


MEMORY = '(memory (export "memory") 1)'
BOTH = '(func (export "Hello")) (func (export "Other"))'


REACTOR = wat('(module (memory (export "memory") 1) (func (export "Hello")) (func (export "Other")))')


def refusal(app: Path) -> str:
    with pytest.raises(ImageError) as refused:
        load_image("test/app", app)
    return str(refused.value)


def test_a_module_that_misses_an_extension_is_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path, "tiny", ONE_COMMAND, wat('(module (memory (export "memory") 1) (func (export "Hello")))'))
    assert (
        "tiny.Other: declared in EXTENSION ENGINE WASM, but tiny/pkg.wasm exports no function Other (it exports: Hello)"
        in refusal(app)
    )


def test_an_extension_implemented_twice_is_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path, "tiny", ONE_COMMAND, REACTOR)
    (app / "ext.py").write_text(
        "from voedger.extensions import command\n\n\n@command('tiny.Hello')\ndef hello(state, intents):\n    pass\n"
    )
    assert "tiny.Hello: implemented both by tiny/pkg.wasm and in Python by " in refusal(app)


@pytest.mark.parametrize(
    ("module", "says"),
    [
        (b"\x00asm but not really", "tiny/pkg.wasm is not a WASM module: "),
        (
            wat(f'(module {MEMORY} (func (export "_start")) {BOTH})'),
            "tiny/pkg.wasm is a WASI command (it exports _start): build a reactor",
        ),
        (
            wat('(module (func (export "Hello")) (func (export "Other")))'),
            "tiny/pkg.wasm exports no memory named 'memory'",
        ),
        (
            wat(f'(module (import "voedger" "delete_all" (func)) {MEMORY} {BOTH})'),
            "tiny/pkg.wasm imports voedger.delete_all, which the platform does not offer",
        ),
        (  # a module of Voedger's exttinygo SDK
            wat(f'(module (import "env" "hostGetKey" (func (param i32 i32 i32 i32) (result i64))) {MEMORY} {BOTH})'),
            "tiny/pkg.wasm imports env.hostGetKey, which the platform does not offer (it offers voedger.input",
        ),
    ],
)
def test_a_module_the_engine_cannot_run_is_refused(tmp_path: Path, module: bytes, says: str) -> None:
    assert says in refusal(make_app(tmp_path, "tiny", ONE_COMMAND, module))


def test_without_pkg_wasm_a_wasm_extension_needs_python(tmp_path: Path) -> None:
    assert "tiny.Hello: command declared in EXTENSION ENGINE WASM has no implementation: neither a pkg.wasm" in refusal(
        make_app(tmp_path, "tiny", ONE_COMMAND, None)
    )
    with pytest.raises(ValueError, match=r"tiny/pkg\.wasm exports no function Other"):
        ExtensionTestKit(
            make_app(
                tmp_path / "k",
                "tiny",
                ONE_COMMAND,
                wat('(module (memory (export "memory") 1) (func (export "Hello")))'),
            )
        )


def test_a_trap_in_wat_is_a_500_that_says_so(tmp_path: Path) -> None:
    module = wat(f'(module {MEMORY} (func (export "Hello") unreachable) (func (export "Other") (loop (br 0))))')
    app = make_app(tmp_path, "tiny", ONE_COMMAND, module)

    async def steps() -> None:
        from voedger.syserror import SysError

        kit = ExtensionTestKit(app)
        with pytest.raises(SysError) as trapped:
            await kit.run_command("tiny.Hello")
        assert trapped.value.status == 500
        assert (
            trapped.value.message == "extension tiny.Hello (tiny/pkg.wasm) failed: trapped: "
            "wasm trap: wasm `unreachable` instruction executed"
        )
        with pytest.raises(SysError) as spun:
            await kit.run_command("tiny.Other")
        assert "ran out of fuel" in spun.value.message

    asyncio.run(steps())


def test_vpm_build_carries_pkg_wasm_into_the_image(tmp_path: Path, shelf_wasm: Path) -> None:
    app = make_app(tmp_path, "shelf", doc_block("vsql wasm"), shelf_wasm)
    image = tmp_path / "shelf.var"
    r = CliRunner().invoke(main, ["build", "-C", str(app), "-o", str(image)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    with zipfile.ZipFile(image) as zf:
        assert zf.read("pkg.wasm") == shelf_wasm.read_bytes()
    deployed = load_image("test/shelf", image)
    lend = deployed.impls.get("shelf.Lend")
    assert lend is not None and lend.where == "shelf/pkg.wasm:Lend"


def test_vpm_build_refuses_a_module_that_misses_an_extension(tmp_path: Path, sandbox_wasm: Path) -> None:
    vsql = SANDBOX_VSQL.replace("COMMAND Ping() RETURNS Pong;", "COMMAND Ping() RETURNS Pong; COMMAND Missing();")
    app = make_app(tmp_path, "sandbox", vsql, sandbox_wasm)
    r = CliRunner().invoke(main, ["build", "-C", str(app), "-o", str(tmp_path / "x.var")])
    assert r.exit_code != 0
    assert (
        "sandbox.Missing: declared in EXTENSION ENGINE WASM, but sandbox/pkg.wasm exports no function Missing"
        in r.output
    )
    assert "Boom, Echo, Fetch, Garble, Hog, Mail, Ping, Sneak, Spin, Tally" in r.output
