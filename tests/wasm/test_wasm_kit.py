"""WASM extensions in the test kit (the server's command pipeline over mem storage): the guide's
example as a command and a SYNC projector, and the sandbox's misbehaving extensions, each
stopped with a 500 that says why while the next call runs."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from voedger.syserror import SysError
from voedger.testkit import ExtensionTestKit


def test_the_guide_example_runs_as_command_and_projector(shelf_app: Path) -> None:
    async def steps() -> None:
        kit = ExtensionTestKit(shelf_app, sync_projectors=True)
        impl = kit.runtime.impls.get("shelf.Lend")
        assert impl is not None and impl.where == "shelf/pkg.wasm:Lend"
        out = await kit.run_command("shelf.AddBook", args={"Title": "Dune", "Genre": "sf", "Copies": 2})
        [book] = [c.id for c in out.event.cuds if c.qname == "shelf.Book"]
        dune = await kit.record(book)
        assert dune is not None and (dune["Title"], dune["Copies"]) == ("Dune", 2)
        await kit.run_command("shelf.AddBook", args={"Title": "Solaris", "Genre": "sf", "Copies": 1})
        assert await kit.view_rows("shelf.Stock", Part=0) == [
            {"sys.QName": "shelf.Stock", "Part": 0, "Genre": "sf", "Books": 2, "Copies": 3}
        ]
        lent = await kit.run_command("shelf.Lend", args={"Book": book})
        assert lent.result is not None and lent.result["Left"] == 1
        dune = await kit.record(book)
        assert dune is not None and dune["Copies"] == 1
        await kit.run_command("shelf.Lend", args={"Book": book})
        with pytest.raises(SysError) as refused:
            await kit.run_command("shelf.Lend", args={"Book": book})
        assert (refused.value.status, refused.value.message) == (409, "every copy of Dune is lent")
        with pytest.raises(SysError) as missing:
            await kit.run_command("shelf.Lend", args={"Book": 999999})
        assert missing.value.status in (400, 404)

    asyncio.run(steps())


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("sandbox.Spin", "failed: ran out of fuel (the limit is 1,000,000,000 instructions a call)"),
        ("sandbox.Hog", "failed: fatal error: out of memory (the limit is 64 MiB)"),
        ("sandbox.Boom", "failed: panic: the shelf collapsed"),
    ],
)
def test_a_failing_guest_answers_500_and_the_next_call_runs(sandbox_app: Path, command: str, says: str) -> None:
    async def steps() -> None:
        kit = ExtensionTestKit(sandbox_app)
        with pytest.raises(SysError) as failed:
            await kit.run_command(command)
        assert failed.value.status == 500
        assert failed.value.message.startswith(f"extension {command} (sandbox/pkg.wasm) failed: ")
        assert says in failed.value.message, failed.value.message
        for _ in range(2):  # a fresh instance, then the pooled one
            ok = await kit.run_command("sandbox.Ping")
            assert ok.result is not None and ok.result["Pong"] == 1

    asyncio.run(steps())


def test_host_calls_are_checked_as_python_ones_are(sandbox_app: Path) -> None:
    async def steps() -> None:
        kit = ExtensionTestKit(sandbox_app)
        with pytest.raises(SysError) as sneak:
            await kit.run_command("sandbox.Sneak")
        assert sneak.value.status == 500 and "sys.Record" in sneak.value.message, sneak.value.message
        assert "sandbox.Secret" in sneak.value.message
        with pytest.raises(SysError) as garble:
            await kit.run_command("sandbox.Garble")
        assert garble.value.status == 500
        assert "sandbox.Garble: the intent request is not JSON" in garble.value.message, garble.value.message
        ok = await kit.run_command("sandbox.Ping")
        assert ok.result is not None

    asyncio.run(steps())


def test_a_wasm_query_answers_its_rows(sandbox_app: Path) -> None:
    async def steps() -> None:
        kit = ExtensionTestKit(sandbox_app)
        rows = await kit.run_query("sandbox.Echo", args={"Pong": 41})
        assert [r["Pong"] for r in rows] == [41, 42]

    asyncio.run(steps())


def test_a_wasm_extension_reaches_http_and_mail(sandbox_app: Path) -> None:
    """``{"http": ...}`` and ``{"send_mail": ...}`` reads and the ``send_mail`` intent, with
    Voedger's field names; a guest asking again with a larger buffer does not send twice."""
    seen: list[tuple[str, str, str | None]] = []

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            seen.append((self.path, body, self.headers.get("X-Office")))
            payload = b"hello from the other side"
            self.send_response(201)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    async def steps() -> None:
        kit = ExtensionTestKit(sandbox_app)
        url = f"http://127.0.0.1:{server.server_address[1]}/in"
        [row] = await kit.run_query("sandbox.Fetch", args={"Url": url})
        assert row == {"sys.QName": "sandbox.Fetched", "Status": 201, "Body": "hello from the other side", "Error": ""}
        assert seen == [("/in", "from wasm", "wasm")]  # once, though the guest read twice
        out = await kit.run_job("sandbox.Mail")  # its GET to port 1 must be reported failed
        [mail] = out.mails
        assert (mail.host, mail.port, mail.to, mail.subject) == ("mail.test", 25, ("x@y.z",), "from wasm")

    try:
        asyncio.run(steps())
    finally:
        server.shutdown()
        server.server_close()
