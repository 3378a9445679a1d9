"""``vpm build`` writes an image the server deploys as it is: a real server started on the image
file alone (the sources gone) runs the commands of the application's Python extensions and of a
package it imports from outside its folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from tests.support import free_port, wait_ready
from voedger.cli.vpm import main
from voedger.structs.wsid import app_wsid
from voedger.vvm.image import ImageError, load_image

APP = """IMPORT SCHEMA 'example.com/tools/calc'
APPLICATION shop (USE calc);
ALTER WORKSPACE sys.AppWorkspaceWS (
    TYPE Num (N int32 NOT NULL);
    EXTENSION ENGINE BUILTIN (COMMAND Double(Num) RETURNS Num;);
);
"""
APP_EXT = """from voedger.extensions import command


@command("shop.Double")
def double(state, intents):
    intents.result(N=state.arg["N"] * 2)
"""
CALC = """ALTER WORKSPACE sys.AppWorkspaceWS (
    TYPE Arg (N int32 NOT NULL);
    EXTENSION ENGINE BUILTIN (COMMAND Triple(Arg) RETURNS Arg;);
);
"""
CALC_EXT = """from voedger.extensions import command


@command("calc.Triple")
def triple(state, intents):
    intents.result(N=state.arg["N"] * 3)
"""


def vpm(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_sources(src: Path) -> Path:
    app = src / "shop"
    write(app / "app.vsql", APP)
    write(app / "ext.py", APP_EXT)
    write(app / "vpm.toml", '[packages]\n"example.com/tools/calc" = "../calc"\n')
    # tests that would break the server if they were packed and loaded
    write(app / "tests" / "test_shop.py", "import nowhere_to_be_found\n")
    write(app / "test_ext.py", "import nowhere_to_be_found\n")
    write(src / "calc" / "calc.vsql", CALC)
    write(src / "calc" / "calc.py", CALC_EXT)
    write(src / "calc" / "test_calc.py", "import nowhere_to_be_found\n")
    return app


def test_the_image_holds_the_imported_package_and_no_tests(tmp_path: Path) -> None:
    app = write_sources(tmp_path / "src")
    image = tmp_path / "out" / "nested" / "shop.var"
    r = vpm("build", "-C", app, "-o", image)
    assert r.exit_code == 0, r.output
    assert "2 extensions" in r.output
    with zipfile.ZipFile(image) as zf:
        names = sorted(zf.namelist())
        toml = zf.read("vpm.toml").decode()
    assert names == [
        "app.vsql",
        "ext.py",
        "image.json",
        "pkg/example.com/tools/calc/calc.py",
        "pkg/example.com/tools/calc/calc.vsql",
        "vpm.toml",
    ]
    assert '"example.com/tools/calc" = "pkg/example.com/tools/calc"' in toml
    shutil.rmtree(tmp_path / "src")
    deployed = load_image("test/shop", image)
    assert "shop.Double" in deployed.impls
    assert "calc.Triple" in deployed.impls


def test_what_is_not_an_image_is_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "plain.var", "w") as zf:
        zf.writestr("app.vsql", "APPLICATION a();")
    with pytest.raises(ImageError, match=r"not an application image: it has no image\.json"):
        load_image("test/a", tmp_path / "plain.var")
    (tmp_path / "junk.var").write_bytes(b"not a zip")
    with pytest.raises(ImageError, match="is not an application image"):
        load_image("test/a", tmp_path / "junk.var")
    with zipfile.ZipFile(tmp_path / "evil.var", "w") as zf:
        zf.writestr("image.json", '{"format": "voedger-image/1"}')
        zf.writestr("../escape.vsql", "APPLICATION a();")
    with pytest.raises(ImageError, match="unsafe file name"):
        load_image("test/a", tmp_path / "evil.var")
    with pytest.raises(ImageError, match="neither a directory nor an image file"):
        load_image("test/a", tmp_path / "nowhere.var")


async def test_a_server_deploys_the_built_image(tmp_path: Path) -> None:
    app = write_sources(tmp_path / "src")
    image = tmp_path / "shop.var"
    assert vpm("build", "-C", app, "-o", image).exit_code == 0
    shutil.rmtree(tmp_path / "src")  # the image is all the server gets
    port = free_port()
    cmd = [sys.executable, "-m", "voedger.cli.voedger", "server", "--data-dir", str(tmp_path / "data")]
    cmd += ["--port", str(port), "--insecure-dev", "--app", f"test/shop={image}"]
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
    try:
        await wait_ready(port, proc)
        base = f"http://127.0.0.1:{port}/api/test/shop/{app_wsid(1, 0)}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            r = await c.post("/c.shop.Double", json={"args": {"N": 21}})
            assert r.status_code == 200, r.text
            assert r.json()["Result"]["N"] == 42
            r = await c.post("/c.calc.Triple", json={"args": {"N": 5}})
            assert r.status_code == 200, r.text
            assert r.json()["Result"]["N"] == 15
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
    assert "Traceback" not in log.read_text(errors="replace")


def test_the_server_refuses_a_broken_image_before_serving(tmp_path: Path) -> None:
    (tmp_path / "broken.var").write_bytes(b"not a zip")
    cmd = [sys.executable, "-m", "voedger.cli.voedger", "server", "--data-dir", str(tmp_path / "d")]
    done = subprocess.run(
        [*cmd, "--port", str(free_port()), "--app", f"test/shop={tmp_path / 'broken.var'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "is not an application image" in done.stderr


async def test_the_test_kit_runs_the_extensions_of_mapped_packages(tmp_path: Path) -> None:
    from voedger.testkit import ExtensionTestKit

    kit = ExtensionTestKit(write_sources(tmp_path / "src"))
    out = await kit.run_command("calc.Triple", args={"N": 2})
    assert out.result is not None and out.result["N"] == 6
