"""WASM extensions built from Go in the tests: the example of docs/extensions.md ("WASM
extensions") and a sandbox package whose extensions misbehave. Each module is built once per
session with the Go toolchain (standard library only, no module download)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "extensions.md"
GO_MIN = (1, 24)
"""``//go:wasmexport`` (functions a host calls) arrived in Go 1.24."""

SANDBOX_VSQL = """\
APPLICATION sandbox();
WORKSPACE SandboxWS (
    DESCRIPTOR SandboxDesc (Name varchar);
    TABLE Secret INHERITS sys.CDoc (Note varchar);
    TYPE Pong (Pong int32 NOT NULL);
    VIEW Pings (Part int32 NOT NULL, Offset int64 NOT NULL, Pongs int32 NOT NULL, PRIMARY KEY ((Part), Offset))
        AS RESULT OF Tally;
    EXTENSION ENGINE WASM (
        COMMAND Spin();
        COMMAND Hog();
        COMMAND Boom();
        COMMAND Sneak();
        COMMAND Garble();
        COMMAND Ping() RETURNS Pong;
        PROJECTOR Tally AFTER EXECUTE ON Ping INTENTS(sys.View(Pings));
        QUERY Echo(Pong) RETURNS Pong;
        QUERY Fetch(Where) STATE(sys.Http) RETURNS Fetched;
    );
    TYPE Where (Url varchar(200) NOT NULL);
    TYPE Fetched (Status int32, Body varchar(1000), Error varchar(1000));
);
ALTER WORKSPACE sys.AppWorkspaceWS (
    EXTENSION ENGINE WASM (
        JOB Mail '@yearly' STATE(sys.SendMail) INTENTS(sys.SendMail);
    );
);
"""

SANDBOX_GO = """\
package main

import (
	"encoding/json"
	"fmt"
	"unsafe"
)

//go:wasmimport voedger input
func hostInput(buf unsafe.Pointer, size uint32) uint32

//go:wasmimport voedger intent
func hostIntent(req unsafe.Pointer, reqLen uint32) int64

//go:wasmimport voedger read
func hostRead(req unsafe.Pointer, reqLen uint32, buf unsafe.Pointer, size uint32) uint32

// read starts with a buffer too small for most answers, and asks again with one that fits.
func read(req []byte) []byte {
	buf := make([]byte, 16)
	n := hostRead(unsafe.Pointer(&req[0]), uint32(len(req)), unsafe.Pointer(&buf[0]), uint32(len(buf)))
	if int(n) > len(buf) {
		buf = make([]byte, n)
		n = hostRead(unsafe.Pointer(&req[0]), uint32(len(req)), unsafe.Pointer(&buf[0]), uint32(len(buf)))
	}
	return buf[:n]
}

func main() {}

func intent(req string) int64 {
	r := []byte(req)
	return hostIntent(unsafe.Pointer(&r[0]), uint32(len(r)))
}

var kept [][]byte
var spins int

//go:wasmexport Spin
func spin() {
	for {
		spins++
	}
}

//go:wasmexport Hog
func hog() {
	for {
		kept = append(kept, make([]byte, 1<<20))
	}
}

//go:wasmexport Boom
func boom() { panic("the shelf collapsed") }

// Sneak writes a table its INTENTS do not declare.
//
//go:wasmexport Sneak
func sneak() { intent(`{"insert": "sandbox.Secret", "fields": {"Note": "psst"}}`) }

//go:wasmexport Garble
func garble() { intent(`{"result": `) }

//go:wasmexport Ping
func ping() { intent(`{"result": {"Pong": 1}}`) }

// Echo, a query, answers two rows: its argument and the next number.
//
//go:wasmexport Echo
func echo() {
	buf := make([]byte, 4096)
	n := hostInput(unsafe.Pointer(&buf[0]), uint32(len(buf)))
	var in struct{ Args struct{ Pong int32 } }
	if err := json.Unmarshal(buf[:n], &in); err != nil {
		panic(err)
	}
	intent(fmt.Sprintf(`{"result": {"Pong": %d}}`, in.Args.Pong))
	intent(fmt.Sprintf(`{"result": {"Pong": %d}}`, in.Args.Pong+1))
}

// Fetch, a query, POSTs to a URL through sys.Http and answers the status and body.
//
//go:wasmexport Fetch
func fetch() {
	buf := make([]byte, 4096)
	n := hostInput(unsafe.Pointer(&buf[0]), uint32(len(buf)))
	var in struct{ Args struct{ Url string } }
	if err := json.Unmarshal(buf[:n], &in); err != nil {
		panic(err)
	}
	req, _ := json.Marshal(map[string]any{"http": map[string]any{
		"Url": in.Args.Url, "Method": "POST", "Body": "from wasm", "Header": []string{"X-Office: wasm"},
		"HandleErrors": true,
	}})
	var ans struct {
		StatusCode int32
		Body       string
		Error      string
	}
	if err := json.Unmarshal(read(req), &ans); err != nil {
		panic(err)
	}
	res, _ := json.Marshal(map[string]any{"result": map[string]any{
		"Status": ans.StatusCode, "Body": ans.Body, "Error": ans.Error,
	}})
	intent(string(res))
}

// Mail, a job: a message to a port nobody listens on, reported failed (GET); then one asked
// for (INSERT).
//
//go:wasmexport Mail
func mail() {
	req := []byte(`{"send_mail": {"Host": "127.0.0.1", "Port": 1, "From": "a@b.c", "To": ["x@y.z"]}}`)
	var out struct {
		Success      bool
		ErrorMessage string
	}
	if err := json.Unmarshal(read(req), &out); err != nil {
		panic(err)
	}
	if out.Success || out.ErrorMessage == "" {
		panic("a message to port 1 was sent")
	}
	intent(`{"send_mail": {"Host": "mail.test", "Port": 25, "From": "a@b.c", "To": ["x@y.z"], "Subject": "from wasm"}}`)
}

// Tally, an async projector, counts the Pings by their WLog offset.
//
//go:wasmexport Tally
func tally() {
	buf := make([]byte, 4096)
	n := hostInput(unsafe.Pointer(&buf[0]), uint32(len(buf)))
	var in struct{ Event struct{ WLogOffset int64 } }
	if err := json.Unmarshal(buf[:n], &in); err != nil {
		panic(err)
	}
	intent(fmt.Sprintf(`{"view": "sandbox.Pings", "row": {"Part": 0, "Offset": %d, "Pongs": 1}}`, in.Event.WLogOffset))
}
"""


def doc_block(tag: str) -> str:
    found = re.findall(rf"```{tag}\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    assert len(found) == 1, tag
    return str(found[0])


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        pytest.skip(
            "the Go toolchain (go 1.24 or later) is not installed: it builds the WASM extensions of these tests"
        )
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    m = re.match(r"go(\d+)\.(\d+)", out)
    if m is None or (int(m[1]), int(m[2])) < GO_MIN:
        pytest.skip(f"Go {out} cannot export functions to WASM (go:wasmexport needs Go 1.24)")
    return go


def build_go(source: str, folder: Path) -> Path:
    """Build ``source`` (one ``main.go``) into ``folder/pkg.wasm``, a WASI reactor."""
    go = _go()
    src = folder / "src"
    src.mkdir(parents=True)
    (src / "go.mod").write_text("module ext\n\ngo 1.24\n")
    (src / "main.go").write_text(source)
    env = {
        **os.environ,
        "GOOS": "wasip1",
        "GOARCH": "wasm",
        "CGO_ENABLED": "0",
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
    }
    if "GOCACHE" not in env and "HOME" not in env:
        env["GOCACHE"] = str(folder / "gocache")
    target = folder / "pkg.wasm"
    done = subprocess.run(
        [go, "build", "-buildmode=c-shared", "-o", str(target), "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"go build failed:\n{done.stderr}"
    return target


@pytest.fixture(scope="session")
def shelf_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pkg.wasm of the guide's example, built from the guide's Go."""
    return build_go(doc_block("go"), tmp_path_factory.mktemp("shelf-wasm"))


@pytest.fixture(scope="session")
def sandbox_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_go(SANDBOX_GO, tmp_path_factory.mktemp("sandbox-wasm"))


def make_app(parent: Path, name: str, vsql: str, wasm: Path | bytes | None) -> Path:
    """An application folder ``parent/name`` with ``app.vsql`` and, if given, ``pkg.wasm``."""
    app = parent / name
    app.mkdir(parents=True)
    (app / "app.vsql").write_text(vsql)
    if isinstance(wasm, Path):
        shutil.copyfile(wasm, app / "pkg.wasm")
    elif wasm is not None:
        (app / "pkg.wasm").write_bytes(wasm)
    return app


@pytest.fixture
def shelf_app(tmp_path: Path, shelf_wasm: Path) -> Path:
    return make_app(tmp_path, "shelf", doc_block("vsql wasm"), shelf_wasm)


@pytest.fixture
def sandbox_app(tmp_path: Path, sandbox_wasm: Path) -> Path:
    return make_app(tmp_path, "sandbox", SANDBOX_VSQL, sandbox_wasm)
