"""``voedger server --acme-domain`` against a real ACME server: Pebble, Let's Encrypt's test CA
(built with ``go install`` by ``voedger.devtools.pebble``), with pebble-challtestsrv as its DNS,
resolving the test domains to the server's loopback address. ``make test-acme`` runs them."""

from __future__ import annotations

import asyncio
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.support import free_port
from voedger.devtools.pebble import ChallTestSrv, Pebble, https_ca, install

pytestmark = [pytest.mark.acme, pytest.mark.timeout(120)]

DOMAIN = "voedger.test"


@pytest.fixture(scope="session")
def dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChallTestSrv]:
    install()
    server = ChallTestSrv(tmp_path_factory.mktemp("challtestsrv"), "127.0.0.1")
    server.start()
    yield server
    server.stop()


def _pebble(workdir: Path, dns: ChallTestSrv, validity: int = 7776000) -> Pebble:
    pebble = Pebble(workdir, dns=dns.dns, http_port=free_port(), validity=validity)
    pebble.start()
    return pebble


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory, dns: ChallTestSrv) -> Iterator[Pebble]:
    server = _pebble(tmp_path_factory.mktemp("pebble"), dns)
    yield server
    server.stop()


async def peer_certificate(port: int, domain: str, root: Path, host: str = "127.0.0.1") -> x509.Certificate | None:
    """The certificate a server presents to a client that trusts only Pebble's ``root`` and
    checks the name ``domain``; None while the handshake fails."""
    context = ssl.create_default_context(cafile=str(root))
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context, server_hostname=domain), 10)
    except (OSError, ssl.SSLError, TimeoutError):
        return None
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der)
    finally:
        writer.close()


class Server:
    """A ``voedger server`` process with ``--acme-*`` flags for ``pebble``."""

    def __init__(self, data: Path, pebble: Pebble, domain: str, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.root = data.parent / f"root-{pebble.port}.pem"
        self.root.write_text(pebble.root())
        self.domain = domain
        self.command = [
            *(sys.executable, "-m", "voedger.cli.voedger", "server", "--data-dir", str(data)),
            *("--port", str(self.port), "--acme-domain", domain, "--acme-directory", pebble.directory),
            *("--acme-ca-bundle", str(https_ca()), "--acme-http-port", str(pebble.http_port)),
            *("--acme-email", "ops@voedger.test"),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def peer_certificate(self) -> x509.Certificate | None:
        return await peer_certificate(self.port, self.domain, self.root)

    async def wait_certificate(self, timeout: float = 60, other_than: int | None = None) -> x509.Certificate:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, f"the server exited:\n{self.output()}"
            cert = await self.peer_certificate()
            if cert is not None and cert.serial_number != other_than:
                return cert
            await asyncio.sleep(0.25)
        raise AssertionError(f"no certificate in {timeout} s:\n{self.output()}")


def san(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


async def test_a_certificate_is_ordered_served_and_reused_after_a_restart(tmp_path: Path, pebble: Pebble) -> None:
    server = Server(tmp_path / "data", pebble, DOMAIN, tmp_path / "server.log")
    orders = pebble.orders()
    server.start()
    try:
        first = await server.wait_certificate()
        # The handshake verified the chain to Pebble's root and the name; the SAN is the domain.
        assert san(first) == [DOMAIN]
        assert pebble.orders() == orders + 1
        # The challenge port answers only challenges, in Voedger's error format.
        reader, writer = await asyncio.open_connection("127.0.0.1", pebble.http_port)
        writer.write(b"GET /.well-known/acme-challenge/nothing-here HTTP/1.1\r\nhost: voedger.test\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        writer.close()
        assert head.startswith(b"HTTP/1.1 404")
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode == 0
    server.start()
    try:
        again = await server.wait_certificate()
        assert again.serial_number == first.serial_number
    finally:
        server.stop()
    assert pebble.orders() == orders + 1, "the restart ordered again"
    text = server.output()
    assert text.count("ACME: ordering") == 1
    assert "PRIVATE KEY" not in text


async def test_renewal_swaps_the_served_certificate_without_a_restart(tmp_path: Path, dns: ChallTestSrv) -> None:
    # Certificates valid 12 s: renewed once less than 4 s are left.
    pebble = _pebble(tmp_path / "pebble", dns, validity=12)
    server = Server(tmp_path / "data", pebble, DOMAIN, tmp_path / "server.log")
    server.start()
    try:
        first = await server.wait_certificate()
        lifetime = first.not_valid_after_utc - first.not_valid_before_utc
        assert lifetime.total_seconds() < 12
        second = await server.wait_certificate(timeout=60, other_than=first.serial_number)
        assert second.not_valid_after_utc > first.not_valid_after_utc
        assert san(second) == [DOMAIN]
        assert server.proc is not None and server.proc.poll() is None
        assert "ACME: renewing the certificate for voedger.test" in server.output()
        assert pebble.orders() >= 2
    finally:
        server.stop()
        pebble.stop()


async def test_a_failing_challenge_is_reported_and_tried_again(
    tmp_path: Path, pebble: Pebble, dns: ChallTestSrv
) -> None:
    domain = "retry.voedger.test"
    # The CA looks for the challenge on 127.0.0.2, where nothing listens: the validation fails.
    dns.add_a(domain, ["127.0.0.2"])
    server = Server(tmp_path / "data", pebble, domain, tmp_path / "server.log")
    server.start()
    try:
        deadline = time.monotonic() + 60
        while "trying again in" not in server.output():
            assert server.proc is not None and server.proc.poll() is None, server.output()
            assert time.monotonic() < deadline, server.output()
            await asyncio.sleep(0.2)
        text = server.output()
        assert f"ACME certificate for {domain}: ordering failed: {domain}: http-01 challenge failed" in text
        assert "trying again in 10 s" in text
        assert await server.peer_certificate() is None  # no certificate: handshakes are refused
        dns.clear_a(domain)
        dns.add_a(domain, ["127.0.0.1"])  # the DNS is fixed: the next round succeeds
        cert = await server.wait_certificate()
        assert san(cert) == [domain]
        assert "Traceback" not in server.output()
    finally:
        server.stop()
        dns.clear_a(domain)


async def test_processes_of_a_cluster_share_one_order_through_storage(
    tmp_path: Path, pebble: Pebble, dns: ChallTestSrv
) -> None:
    """Two managers on one storage, as two processes of a cluster: the one that orders has no
    challenge port (the other's answers its tokens from storage); the second serves the stored
    certificate without ordering."""
    from voedger.certificates.challenges import ChallengeResponder
    from voedger.certificates.manager import CertificateManager
    from voedger.certificates.order import AcmeSettings
    from voedger.certificates.served import ServedCertificate
    from voedger.clock import ManualClock
    from voedger.router.http import HttpServer
    from voedger.storage.mem import MemStorageFactory

    domain = "cluster.voedger.test"
    factory = MemStorageFactory(ManualClock())
    await factory.init("sys_vvm")
    storage = await factory.app_storage("sys_vvm")
    settings = AcmeSettings((domain,), pebble.directory, str(https_ca()))
    managers = [CertificateManager(settings, ServedCertificate(), ChallengeResponder()) for _ in range(2)]
    port = HttpServer(managers[0].responder.app)
    await port.start("127.0.0.1", pebble.http_port)
    orders = pebble.orders()
    managers[0].responder.storage = storage
    try:
        # The process without the challenge port orders: its tokens reach the CA through storage.
        managers[1].start(storage)
        deadline = time.monotonic() + 60
        while managers[1].served.certificate is None:
            assert time.monotonic() < deadline, "no certificate in 60 s"
            await asyncio.sleep(0.2)
        managers[0].start(storage)
        while managers[0].served.certificate is None:
            assert time.monotonic() < deadline, "the stored certificate was not served"
            await asyncio.sleep(0.1)
    finally:
        for manager in managers:
            await manager.stop()
        await port.stop(1)
    first, second = (m.served.certificate for m in managers)
    assert first is not None and second is not None
    assert first.serial == second.serial
    assert [m.orders for m in managers] == [0, 1]
    assert pebble.orders() == orders + 1
