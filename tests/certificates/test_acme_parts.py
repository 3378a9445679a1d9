"""The parts of ``voedger server --acme-*`` that need no CA: the flags, the challenge port, the
swap of the served certificate, a round of the manager on what storage holds. The server against
a real CA is in ``test_acme_pebble.py``."""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from voedger.certificates.challenges import ChallengeResponder
from voedger.certificates.manager import LOCK_WAIT, CertificateManager
from voedger.certificates.order import AcmeSettings, check_domain
from voedger.certificates.served import ServedCertificate
from voedger.certificates.store import AcmeStore, StoredCertificate
from voedger.cli.voedger import main
from voedger.clock import ManualClock
from voedger.storage import AppStorage
from voedger.storage.mem import MemStorageFactory

DOMAIN = "voedger.test"


async def _storage() -> AppStorage:
    factory = MemStorageFactory(ManualClock())
    await factory.init("sys_vvm")
    return await factory.app_storage("sys_vvm")


def _certificate(domain: str = DOMAIN, days: float = 90, age: float = 0) -> StoredCertificate:
    """A self-signed certificate for ``domain``, issued ``age`` days ago, valid ``days``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=age)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return StoredCertificate((domain,), cert.public_bytes(serialization.Encoding.PEM), key_pem)


# --- the flags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--acme-domain", DOMAIN, "--tls-cert", "c.pem", "--tls-key", "k.pem"], "use one or the other"),
        (["--acme-email", "ops@voedger.test"], "need --acme-domain"),
        (["--acme-http-port", "8080"], "need --acme-domain"),
        (["--acme-domain", "*.voedger.test"], "wildcard certificates need DNS-01"),
        (["--acme-domain", "127.0.0.1"], "is not a domain name"),
        (["--acme-domain", "localhost"], "is not a domain name"),
        (["--acme-domain", DOMAIN, "--acme-http-port", "8822"], "--acme-http-port 8822 is --port already"),
        (["--acme-domain", DOMAIN, "--acme-directory", "http://ca.test/dir"], "must be an https:// URL"),
        (["--acme-domain", DOMAIN, "--acme-ca-bundle", "missing.pem"], "is not a file"),
        (["--acme-domain", DOMAIN, "--acme-email", "nobody"], "is not a mail address"),
    ],
)
def test_bad_acme_flags_are_refused_at_start(tmp_path: Path, flags: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["server", "--data-dir", str(tmp_path), "--port", "8822", *flags])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_ca_bundle_that_holds_no_certificate_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("not a certificate\n")
    flags = ["--acme-domain", DOMAIN, "--acme-ca-bundle", str(bundle)]
    result = CliRunner().invoke(main, ["server", "--data-dir", str(tmp_path), *flags])
    assert result.exit_code == 2
    assert "holds no usable CA certificate" in result.output


def test_domains_are_lowered_and_checked() -> None:
    assert check_domain("Voedger.TEST.") == "voedger.test"
    with pytest.raises(ValueError, match="not a domain name"):
        check_domain("bad_name.test")


# --- the challenge port ----------------------------------------------------------------------


async def test_the_challenge_port_answers_published_tokens_only() -> None:
    storage = await _storage()
    responder = ChallengeResponder()
    responder.local["local-token"] = "local-token.thumbprint"
    responder.storage = storage
    # Published by another process of the cluster: found in storage.
    await AcmeStore(storage, "https://ca.test/dir", [DOMAIN]).publish_challenge("peer-token", "peer-token.print")
    transport = httpx.ASGITransport(app=responder.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://voedger.test") as client:
        local = await client.get("/.well-known/acme-challenge/local-token")
        assert (local.status_code, local.text) == (200, "local-token.thumbprint")
        peer = await client.get("/.well-known/acme-challenge/peer-token")
        assert (peer.status_code, peer.text) == (200, "peer-token.print")
        for method, path in [
            ("GET", "/.well-known/acme-challenge/unknown"),
            ("GET", "/.well-known/acme-challenge/bad.token"),
            ("POST", "/.well-known/acme-challenge/local-token"),
            ("GET", "/api/check"),
        ]:
            reply = await client.request(method, path)
            assert reply.status_code == 404, (method, path)
            assert orjson.loads(reply.content)["sys.Error"]["HTTPStatus"] == 404


# --- the served certificate --------------------------------------------------------------------


async def _peer_serial(port: int) -> int | None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=DOMAIN)
    except (OSError, ssl.SSLError):
        return None
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der).serial_number


async def test_the_served_certificate_changes_for_new_connections() -> None:
    served = ServedCertificate()

    async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(hello, "127.0.0.1", 0, ssl=served.context)
    port = listener.sockets[0].getsockname()[1]
    try:
        assert await _peer_serial(port) is None  # no certificate yet: the handshake is refused
        first, second = _certificate(), _certificate()
        served.load(first)
        assert await _peer_serial(port) == first.serial
        served.load(second)
        assert await _peer_serial(port) == second.serial
        assert served.certificate is second
        assert "PRIVATE" not in repr(served)
    finally:
        listener.close()
        await listener.wait_closed()


def test_a_key_that_does_not_fit_is_refused() -> None:
    one, other = _certificate(), _certificate()
    with pytest.raises(ssl.SSLError):
        ServedCertificate().load(StoredCertificate(one.domains, one.chain_pem, other.key_pem))


# --- the manager's rounds -------------------------------------------------------------------------

UNREACHABLE = "https://127.0.0.1:1/dir"


def _manager() -> CertificateManager:
    return CertificateManager(AcmeSettings((DOMAIN,), UNREACHABLE), ServedCertificate(), ChallengeResponder())


async def test_a_stored_certificate_is_served_without_asking_the_ca() -> None:
    storage = await _storage()
    store = AcmeStore(storage, UNREACHABLE, [DOMAIN])
    stored = _certificate(days=90, age=10)
    await store.save_certificate(stored)
    manager = _manager()
    wait = await manager._round(store)
    assert manager.served.certificate == stored
    assert manager.orders == 0
    assert 0 < wait <= 60


async def test_while_another_process_orders_this_one_waits_and_a_due_certificate_is_served_while_renewing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "voedger.acme")
    storage = await _storage()
    store = AcmeStore(storage, UNREACHABLE, [DOMAIN])
    # Another process holds the ordering lock: this one waits for its certificate.
    assert await store.lock(b"another")
    manager = _manager()
    assert await manager._round(store) == LOCK_WAIT
    await store.unlock(b"another")
    # Two thirds of its lifetime gone: still served, but renewed; the CA cannot be reached.
    due = _certificate(days=3, age=2.1)
    await store.save_certificate(due)
    task = asyncio.create_task(manager.run(storage))
    try:
        async with asyncio.timeout(20):
            while manager.failures == 0:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert manager.served.certificate == due
    assert manager.orders == 0
    errors = [r.getMessage() for r in caplog.records if r.name == "voedger.acme" and r.levelno == logging.ERROR]
    assert errors and f"cannot reach the ACME directory {UNREACHABLE}" in errors[0]
    assert "trying again in 10 s" in errors[0]
    # The lock is released after the failure.
    assert await store.lock(b"next")
