"""TLS on the server's port: a self-signed certificate made at test time with the openssl
command, a client that trusts only it, TLS 1.2 or newer."""

from __future__ import annotations

import asyncio
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.router.test_crash import start_server
from tests.router.test_http_server import Receive, Scope, Send, app_of, read_reply, respond, serving
from tests.support import free_port
from voedger.router.http import tls_context

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def trusting(cert: Path, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    if maximum is not None:
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = maximum
    return context


async def test_requests_are_served_over_tls_1_2_or_newer(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    schemes: list[str] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        schemes.append(scope["scheme"])
        message = await receive()
        await respond(send, 200, b"tls " + message["body"])

    async with serving(app_of(handler), tls=tls_context(str(cert), str(key))) as (_, port):
        for maximum in (ssl.TLSVersion.TLSv1_2, None):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trusting(cert, maximum))
            try:
                version = writer.get_extra_info("ssl_object").version()
                assert version == ("TLSv1.2" if maximum else "TLSv1.3")
                writer.write(b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\nhi")
                reply = await read_reply(reader)
                assert (reply.status, reply.body) == (200, b"tls hi")
            finally:
                writer.close()
        # Plain HTTP on the TLS port gets no answer in clear.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
        assert not (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
        writer.close()
    assert schemes == ["https", "https"]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_tls_1_1_is_refused(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    async with serving(app_of(lambda s, r, send: respond(send, 200)), tls=tls_context(str(cert), str(key))) as (
        _,
        port,
    ):
        old = trusting(cert, ssl.TLSVersion.TLSv1_1)
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1 at all
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=old)
            writer.close()


async def test_voedger_server_with_tls_cert_and_key(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    proc = start_server(tmp_path / "data", port, None, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(verify=trusting(cert)) as client:
            while True:
                assert proc.poll() is None, "the server exited"
                try:
                    r = await client.get(f"https://127.0.0.1:{port}/api/check")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the server did not start"
                    await asyncio.sleep(0.2)
        assert (r.status_code, r.text, r.http_version) == (200, "ok", "HTTP/1.1")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_a_key_that_does_not_fit_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cert, _ = self_signed(tmp_path / "a")
    _, other_key = self_signed(tmp_path / "b")
    proc = start_server(tmp_path / "data", free_port(), None, "--tls-cert", str(cert), "--tls-key", str(other_key))
    assert proc.wait(timeout=60) == 2
