"""``voedger server --acme-*``: the flags checked, and what the server runs for them."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from voedger.certificates.challenges import ChallengeResponder
from voedger.certificates.manager import CertificateManager
from voedger.certificates.order import LETS_ENCRYPT, AcmeSettings, check_domain
from voedger.certificates.served import ServedCertificate

if TYPE_CHECKING:
    from voedger.vvm.server import VVM

__all__ = ["DEFAULT_HTTP_PORT", "AcmeSetup"]

DEFAULT_HTTP_PORT = 80
"""Where the CA sends HTTP-01 validation requests: port 80 of the domain, always."""


@dataclass
class AcmeSetup:
    settings: AcmeSettings
    http_port: int
    served: ServedCertificate
    responder: ChallengeResponder
    manager: CertificateManager

    @staticmethod
    def from_flags(
        domains: Sequence[str],
        *,
        directory: str | None,
        ca_bundle: str | None,
        email: str | None,
        http_port: int | None,
        tls_given: bool,
        taken_ports: Mapping[int, str],
    ) -> AcmeSetup:
        """The setup the flags ask for; ValueError naming the flag that is wrong."""
        if not domains:
            raise ValueError("--acme-directory, --acme-ca-bundle, --acme-email and --acme-http-port need --acme-domain")
        if tls_given:
            raise ValueError(
                "--acme-domain orders the certificate; --tls-cert/--tls-key give one: use one or the other"
            )
        names: list[str] = []
        for domain in domains:
            name = check_domain(domain)
            if name not in names:
                names.append(name)
        directory = directory or LETS_ENCRYPT
        if urlsplit(directory).scheme != "https" or not urlsplit(directory).hostname:
            raise ValueError(f"--acme-directory {directory!r} must be an https:// URL")
        if ca_bundle is not None:
            if not Path(ca_bundle).is_file():
                raise ValueError(f"--acme-ca-bundle {ca_bundle!r} is not a file")
            try:
                ssl.create_default_context(cafile=ca_bundle)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(f"--acme-ca-bundle {ca_bundle!r} holds no usable CA certificate: {exc}") from None
        if email is not None and ("@" not in email or email.startswith("@") or email.endswith("@")):
            raise ValueError(f"--acme-email {email!r} is not a mail address")
        port = DEFAULT_HTTP_PORT if http_port is None else http_port
        if port in taken_ports:
            raise ValueError(
                f"--acme-http-port {port} is {taken_ports[port]} already: the challenges need a port of their own"
            )
        settings = AcmeSettings(tuple(names), directory, ca_bundle, email)
        served = ServedCertificate()
        responder = ChallengeResponder()
        return AcmeSetup(settings, port, served, responder, CertificateManager(settings, served, responder))

    def hooks(self, vvm: VVM) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
        """The server's ``after_start`` (the rounds begin, on the cluster's storage) and
        ``before_stop`` (they end, then the VVM leaves its cluster)."""
        from voedger.vvm.server import VVM_APP

        async def after_start() -> None:
            assert vvm.provider is not None
            self.manager.start(await vvm.provider.app_storage(VVM_APP))

        async def before_stop() -> None:
            await self.manager.stop()
            await vvm.leave()

        return after_start, before_stop
