"""One certificate order with HTTP-01 challenges (RFC 8555), through certbot's ``acme`` library:
it signs every request (JWS with the account key), keeps the nonces, polls and finalizes.

The library is synchronous (``requests``): :class:`Order` runs each step in a worker thread, and
between the steps the caller publishes the key authorizations where the challenge port finds
them. The account key and the certificate's key are ECDSA P-256; the account is registered on
the first order, and found again by its key on the later ones.
"""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from voedger.certificates.store import StoredCertificate

__all__ = [
    "LETS_ENCRYPT",
    "AcmeError",
    "AcmeSettings",
    "Order",
    "check_domain",
    "new_private_key",
]

LETS_ENCRYPT: Final = "https://acme-v02.api.letsencrypt.org/directory"
"""Let's Encrypt's production directory: the default of ``--acme-directory``."""
ORDER_TIMEOUT: Final = 90.0
"""Seconds the CA has to validate the challenges and issue the certificate."""
_DOMAIN: Final = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?")


class AcmeError(Exception):
    """Ordering failed; the message says why (and holds no key)."""


@dataclass(frozen=True)
class AcmeSettings:
    """What ``--acme-*`` gave: the domains of the certificate, the CA's directory, the bundle
    that verifies the CA's own HTTPS (None: the system's), the contact address."""

    domains: tuple[str, ...]
    directory: str = LETS_ENCRYPT
    ca_bundle: str | None = None
    email: str | None = None


def check_domain(name: str) -> str:
    """``name`` in lower case if it is a DNS name a certificate can be ordered for by HTTP-01
    (no wildcard, no IP address, at least two labels); else ValueError."""
    lowered = name.strip().lower().rstrip(".")
    if lowered.startswith("*."):
        raise ValueError(f"{name!r}: wildcard certificates need DNS-01 challenges; HTTP-01 cannot get them")
    if not _DOMAIN.fullmatch(lowered):
        raise ValueError(f"{name!r} is not a domain name (letters, digits and '-' in two or more labels)")
    return lowered


def new_private_key() -> bytes:
    """A new ECDSA P-256 private key, PEM (PKCS #8)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _describe(exc: BaseException, settings: AcmeSettings) -> str:
    if isinstance(exc, errors.ValidationError):
        failures = []
        for authzr in exc.failed_authzrs:
            for challenge in authzr.body.challenges:
                if challenge.error is not None:
                    detail = challenge.error.detail or challenge.error.typ
                    failures.append(f"{authzr.body.identifier.value}: {challenge.chall.typ} challenge failed: {detail}")
        return "; ".join(failures) or "the CA refused the authorizations"
    if isinstance(exc, errors.TimeoutError):
        return f"the CA did not validate and issue within {ORDER_TIMEOUT:.0f} s"
    if isinstance(exc, messages.Error):
        return f"the CA answered an error: {exc.detail or exc.typ}"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"cannot verify the HTTPS certificate of {settings.directory} (--acme-ca-bundle?)"
    if isinstance(exc, requests.exceptions.RequestException):
        return f"cannot reach the ACME directory {settings.directory}: {type(exc).__name__}"
    return f"{type(exc).__name__}: {exc}"


class Order:
    """One order for ``settings.domains`` with the account of ``account_key`` (PEM)."""

    def __init__(self, settings: AcmeSettings, account_key: bytes) -> None:
        self.settings = settings
        private = serialization.load_pem_private_key(account_key, password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise AcmeError("the stored ACME account key is not an ECDSA key")
        self._jwk = JWKEC(key=private)
        self._key_pem = new_private_key()
        self._client: client.ClientV2 | None = None
        self._order: messages.OrderResource | None = None
        self._pending: list[tuple[messages.ChallengeBody, challenges.ChallengeResponse]] = []

    def __repr__(self) -> str:
        return f"Order({', '.join(self.settings.domains)})"

    async def _in_thread(self, step: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(step, *args)
        except AcmeError:
            raise
        except Exception as exc:
            raise AcmeError(_describe(exc, self.settings)) from None

    async def begin(self) -> list[tuple[str, str]]:
        """Register (or find) the account, create the order; the (token, key authorization) pairs
        to publish before :meth:`finish`."""
        result: list[tuple[str, str]] = await self._in_thread(self._begin)
        return result

    async def finish(self) -> StoredCertificate:
        """Tell the CA the challenges are ready, wait for it to validate them and issue."""
        result: StoredCertificate = await self._in_thread(self._finish)
        return result

    def _begin(self) -> list[tuple[str, str]]:
        net = client.ClientNetwork(self._jwk, alg=ES256, user_agent="voedger")
        if self.settings.ca_bundle:
            # requests takes a CA bundle's path where the library passes its verify flag.
            net.verify_ssl = self.settings.ca_bundle  # type: ignore[assignment]
        directory = client.ClientV2.get_directory(self.settings.directory, net)
        acme = client.ClientV2(directory, net)
        registration = messages.NewRegistration.from_data(email=self.settings.email, terms_of_service_agreed=True)
        try:
            acme.new_account(registration)
        except errors.ConflictError as exc:  # the key's account exists: go on with it
            net.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
        csr = crypto_util.make_csr(self._key_pem, list(self.settings.domains))
        self._order = acme.new_order(csr)
        self._client = acme
        published = []
        for authzr in self._order.authorizations:
            if authzr.body.status == messages.STATUS_VALID:
                continue  # the CA still trusts an earlier validation
            challb = next((c for c in authzr.body.challenges if isinstance(c.chall, challenges.HTTP01)), None)
            if challb is None:
                raise AcmeError(f"the CA offers no HTTP-01 challenge for {authzr.body.identifier.value}")
            response, validation = challb.response_and_validation(self._jwk)
            self._pending.append((challb, response))
            published.append((challb.chall.encode("token"), str(validation)))
        return published

    def _finish(self) -> StoredCertificate:
        assert self._client is not None and self._order is not None
        for challb, response in self._pending:
            self._client.answer_challenge(challb, response)
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=ORDER_TIMEOUT)
        done = self._client.poll_and_finalize(self._order, deadline)
        if not done.fullchain_pem:
            raise AcmeError("the CA finished the order without a certificate")
        return StoredCertificate(self.settings.domains, done.fullchain_pem.encode(), self._key_pem)


def covers(cert: StoredCertificate, domains: Sequence[str]) -> bool:
    return sorted(cert.domains) == sorted(domains)
