"""What ACME leaves in the cluster's storage (the ``sys/vvm`` one, beside the signing keys), so
that every process of a cluster serves the same certificate and a restart orders nothing:

- the account key, one per ACME directory (a JWK; created once with ``insert_if_not_exists``,
  the loser of a race reads the winner's);
- the certificate with its private key, one per (directory, domains): PEM chain, PEM key and
  the validity, written by the process that ordered it;
- the ordering lock, one per (directory, domains): a row with a TTL, so that of the processes
  finding the certificate missing or due, one orders and the others wait for its result;
- the HTTP-01 key authorizations by token, with a TTL, so that whichever process the CA's
  validation request reaches can answer it.

Keys and certificates never appear in a ``repr``, a log line or an error message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import orjson
from cryptography import x509

from voedger.storage import AppStorage
from voedger.storage.conditional import insert_or_get
from voedger.structs.keys import app_state_key

__all__ = ["CHALLENGE_TTL", "LOCK_TTL", "AcmeStore", "StoredCertificate"]

LOCK_TTL: Final = 300
"""Seconds an ordering lock lives: a process that dies while ordering holds up the others that
long at most (an order takes seconds)."""
CHALLENGE_TTL: Final = 600
"""Seconds a key authorization stays answerable (the CA validates within seconds)."""
_KIND: Final = "acme"


@dataclass(frozen=True, repr=False)
class StoredCertificate:
    """A certificate chain (leaf first) with its private key, both PEM."""

    domains: tuple[str, ...]
    chain_pem: bytes
    key_pem: bytes

    def __repr__(self) -> str:
        until = f"{self.not_after:%Y-%m-%d %H:%M:%S}Z"
        return f"StoredCertificate({', '.join(self.domains)}, serial {self.serial:x}, until {until})"

    @property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.chain_pem)

    @property
    def serial(self) -> int:
        return self.leaf.serial_number

    @property
    def not_before(self) -> datetime:
        return self.leaf.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        return self.leaf.not_valid_after_utc

    def renewal_due(self, fraction: float) -> datetime:
        """When to renew: once less than ``fraction`` of the lifetime is left."""
        return self.not_after - (self.not_after - self.not_before) * fraction

    def encode(self) -> bytes:
        return orjson.dumps(
            {"domains": list(self.domains), "chain": self.chain_pem.decode(), "key": self.key_pem.decode()}
        )

    @staticmethod
    def decode(data: bytes) -> StoredCertificate:
        record = orjson.loads(data)
        return StoredCertificate(tuple(record["domains"]), record["chain"].encode(), record["key"].encode())


def _name(what: str, directory: str, domains: Sequence[str] = ()) -> bytes:
    digest = hashlib.sha256("\n".join([directory, *sorted(domains)]).encode()).hexdigest()[:32]
    return f"{what}:{digest}".encode()


class AcmeStore:
    """The rows of one ACME directory and one set of domains."""

    __slots__ = ("_account", "_cert", "_lock", "_storage")

    def __init__(self, storage: AppStorage, directory: str, domains: Sequence[str]) -> None:
        self._storage = storage
        self._account = app_state_key(_KIND, _name("account", directory))
        self._cert = app_state_key(_KIND, _name("certificate", directory, domains))
        self._lock = app_state_key(_KIND, _name("ordering", directory, domains))

    def __repr__(self) -> str:
        return "AcmeStore(<storage>)"

    async def account_key(self, fresh: bytes) -> bytes:
        """The account key stored for the directory; ``fresh`` is stored if there is none yet."""
        vanished = RuntimeError("the ACME account key vanished while it was being created")
        return await insert_or_get(self._storage, self._account, b"", fresh, vanished)

    async def certificate(self) -> StoredCertificate | None:
        data = await self._storage.get(self._cert, b"")
        return None if data is None else StoredCertificate.decode(data)

    async def save_certificate(self, cert: StoredCertificate) -> None:
        await self._storage.put(self._cert, b"", cert.encode())

    async def lock(self, holder: bytes) -> bool:
        """Take the ordering lock; False if another process holds it."""
        return await self._storage.insert_if_not_exists(self._lock, b"", holder, LOCK_TTL)

    async def unlock(self, holder: bytes) -> None:
        await self._storage.compare_and_delete(self._lock, b"", holder)

    async def publish_challenge(self, token: str, key_authorization: str) -> None:
        await self._storage.put_ttl(*challenge_key(token), key_authorization.encode(), CHALLENGE_TTL)


def challenge_key(token: str) -> tuple[bytes, bytes]:
    return app_state_key(_KIND, f"challenge:{token}".encode()), b""


async def key_authorization(storage: AppStorage, token: str) -> str | None:
    """The key authorization published for ``token`` by any process of the cluster."""
    value = await storage.get(*challenge_key(token))
    return None if value is None else value.decode()


def utcnow() -> datetime:
    return datetime.now(UTC)
