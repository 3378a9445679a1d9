"""``vpm deploy`` to a running server (tokens on): a new application, a compatible new version that
replaces it without a restart, an incompatible one refused with its breaks and nothing changed, and
the deployed version served again after a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from tests.support import free_port, wait_ready
from voedger.cli.vpm import main
from voedger.structs.wsid import app_wsid

V1 = """APPLICATION shop();
ALTER WORKSPACE sys.AppWorkspaceWS (
    TYPE Num (N int32 NOT NULL);
    EXTENSION ENGINE BUILTIN (COMMAND Double(Num) RETURNS Num;);
);
"""
V1_EXT = """from voedger.extensions import command


@command("shop.Double")
def double(state, intents):
    intents.result(N=state.arg["N"] * 2)
"""
# a compatible new version: a command added, an implementation changed
V2 = V1.replace("COMMAND Double(Num) RETURNS Num;", "COMMAND Double(Num) RETURNS Num; COMMAND Triple(Num) RETURNS Num;")
V2_EXT = V1_EXT.replace("* 2", "* 20") + '\n\n@command("shop.Triple")\ndef triple(state, intents):\n'
V2_EXT += '    intents.result(N=state.arg["N"] * 3)\n'
# an incompatible one: a field's type changed, a command removed
V3 = V1.replace("N int32", "N int64")
V3_EXT = V1_EXT


def vpm(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def build(tmp: Path, version: str, schema: str, ext: str) -> Path:
    src = tmp / f"src-{version}" / "shop"
    src.mkdir(parents=True)
    (src / "app.vsql").write_text(schema)
    (src / "ext.py").write_text(ext)
    image = tmp / f"shop-{version}.var"
    r = vpm("build", "-C", src, "-o", image)
    assert r.exit_code == 0, r.output
    return image


class Server:
    def __init__(self, data: Path, log: Path) -> None:
        self.data, self.log = data, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.tokens: dict[str, str] = {}

    async def start(self) -> None:
        cmd = [sys.executable, "-m", "voedger.cli.voedger", "server", "--data-dir", str(self.data)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([*cmd, "--port", str(self.port)], stdout=out, stderr=out)
        await wait_ready(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def token(self, app: str) -> str:
        """A system token, as an operator gets one: ``voedger token system``."""
        if app not in self.tokens:
            storage = f"sqlite://{self.data.resolve()}"
            done = subprocess.run(
                [sys.executable, "-m", "voedger.cli.voedger", "token", "system", "--storage", storage, "--app", app],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            self.tokens[app] = done.stdout.strip()
        return self.tokens[app]

    async def call(self, command: str, n: int) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token('test/shop')}"}
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as c:
            return await c.post(
                f"/api/test/shop/{app_wsid(1, 0)}/c.{command}", json={"args": {"N": n}}, headers=headers
            )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "data", tmp_path / "server.log")
    try:
        yield s
    finally:
        s.stop()


async def test_deploy_upgrade_refuse_and_restart(tmp_path: Path, server: Server) -> None:
    v1 = build(tmp_path, "v1", V1, V1_EXT)
    v2 = build(tmp_path, "v2", V2, V2_EXT)
    v3 = build(tmp_path, "v3", V3, V3_EXT)
    await server.start()
    assert (await server.call("shop.Double", 1)).status_code == 400  # not deployed yet

    no_token = CliRunner(env={"VOEDGER_TOKEN": ""}).invoke(main, ["deploy", server.url, str(v1), "--app", "test/shop"])
    assert no_token.exit_code == 2 and "a system token is needed" in no_token.output
    # a token of another application is not one of sys/cluster's
    wrong = vpm("deploy", server.url, v1, "--app", "test/shop", "--token", server.token("test/shop"))
    assert wrong.exit_code == 1 and "not deployed" in wrong.output

    cluster_token = server.token("sys/cluster")
    r = vpm("deploy", server.url, v1, "--app", "test/shop", "--token", cluster_token)
    assert r.exit_code == 0, r.output
    assert "test/shop deployed" in r.output
    answer = await server.call("shop.Double", 21)
    assert answer.status_code == 200, answer.text
    assert answer.json()["Result"]["N"] == 42

    r = vpm("deploy", server.url, v2, "--app", "test/shop", "--token", cluster_token)
    assert r.exit_code == 0, r.output
    assert (await server.call("shop.Double", 2)).json()["Result"]["N"] == 40
    assert (await server.call("shop.Triple", 2)).json()["Result"]["N"] == 6

    r = vpm("deploy", server.url, v3, "--app", "test/shop", "--token", cluster_token)
    assert r.exit_code == 1
    assert "not compatible with the deployed one" in r.output
    assert "nothing was changed" in r.output
    assert "Types/shop.Triple: NodeRemoved" in r.output, r.output
    assert "ValueChanged" in r.output or "int32" in r.output, r.output
    # v2 is still what runs
    assert (await server.call("shop.Triple", 3)).json()["Result"]["N"] == 9

    # a restart deploys the stored image again
    server.stop()
    await server.start()
    assert (await server.call("shop.Double", 2)).json()["Result"]["N"] == 40
    assert "Traceback" not in server.log.read_text(errors="replace")


async def test_a_broken_image_is_refused(tmp_path: Path, server: Server) -> None:
    await server.start()
    bad = tmp_path / "bad.var"
    bad.write_bytes(b"not a zip at all")
    r = vpm("deploy", server.url, bad, "--app", "test/shop", "--token", server.token("sys/cluster"))
    assert r.exit_code == 1
    assert "is not an application image" in r.output
    r = vpm("deploy", server.url, bad, "--app", "sys/registry", "--token", server.token("sys/cluster"))
    assert r.exit_code == 1 and "other than the platform's" in r.output
