"""The server's ACME certificate, from order to renewal: a background task of ``voedger server
--acme-domain``.

Each round reads the cluster's storage first. A stored certificate for the same directory and
domains that is not due is served as it is (a restart, or another process of the cluster,
orders nothing). A missing one, or one with less than a third of its lifetime left, is ordered:
one process of the cluster takes the ordering lock, the others wait for its certificate to
appear in storage. The certificate served changes for new connections without a restart
(:mod:`voedger.certificates.served`). A failure (the directory unreachable, a challenge the CA
could not validate) is logged and the round is tried again after a delay that doubles from
10 s up to an hour, while a certificate still valid goes on being served.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from datetime import datetime
from typing import Final

from voedger.certificates.challenges import ChallengeResponder
from voedger.certificates.order import AcmeError, AcmeSettings, Order, covers, new_private_key
from voedger.certificates.served import ServedCertificate
from voedger.certificates.store import AcmeStore, StoredCertificate, utcnow
from voedger.storage import AppStorage, StorageError
from voedger.tasks import cancelled

__all__ = ["RENEW_FRACTION", "CertificateManager"]

log = logging.getLogger("voedger.acme")

RENEW_FRACTION: Final = 1 / 3
"""Renew once less than this part of the certificate's lifetime is left (Let's Encrypt's advice)."""
RETRY_FIRST: Final = 10.0
RETRY_MAX: Final = 3600.0
RELOAD_INTERVAL: Final = 60.0
"""Seconds between two reads of the stored certificate by a process that has one: how soon it
serves what another process of the cluster renewed."""
LOCK_WAIT: Final = 2.0
"""Seconds between two looks at storage while another process orders."""


class CertificateManager:
    """Orders, stores, serves and renews the certificate of ``settings.domains``."""

    def __init__(self, settings: AcmeSettings, served: ServedCertificate, responder: ChallengeResponder) -> None:
        self.settings = settings
        self.served = served
        self.responder = responder
        self.orders = 0
        """Orders this process completed."""
        self.failures = 0
        """Rounds that failed (each logged)."""
        self._task: asyncio.Task[None] | None = None

    def start(self, storage: AppStorage) -> None:
        """Begin the rounds in the background (``storage``: the cluster's ``sys/vvm``)."""
        self.responder.storage = storage
        self._task = asyncio.get_running_loop().create_task(self.run(storage), name="acme")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancelled(task)

    async def run(self, storage: AppStorage) -> None:
        store = AcmeStore(storage, self.settings.directory, self.settings.domains)
        retry = RETRY_FIRST
        while True:
            try:
                wait = await self._round(store)
                retry = RETRY_FIRST
            except (AcmeError, StorageError, ssl.SSLError, ValueError) as exc:
                self.failures += 1
                what = "the cluster's storage failed" if isinstance(exc, StorageError) else "ordering failed"
                if isinstance(exc, (ssl.SSLError, ValueError)):
                    what = "the stored certificate cannot be used"
                log.error(
                    "ACME certificate for %s: %s: %s; trying again in %.0f s",
                    ", ".join(self.settings.domains),
                    what,
                    exc,
                    retry,
                )
                wait, retry = retry, min(retry * 2, RETRY_MAX)
            await asyncio.sleep(wait)

    def _serve(self, cert: StoredCertificate) -> None:
        current = self.served.certificate
        if current is not None and current.chain_pem == cert.chain_pem:
            return
        self.served.load(cert)
        log.info(
            "serving the ACME certificate for %s: serial %x, valid until %s",
            ", ".join(cert.domains),
            cert.serial,
            f"{cert.not_after:%Y-%m-%d %H:%M:%S}Z",
        )

    def _usable(self, cert: StoredCertificate | None, now: datetime) -> StoredCertificate | None:
        if cert is None or not covers(cert, self.settings.domains) or cert.not_after <= now:
            return None
        return cert

    async def _round(self, store: AcmeStore) -> float:
        """Serve what storage holds, order if it is missing or due; seconds until the next round."""
        now = utcnow()
        cert = self._usable(await store.certificate(), now)
        if cert is not None:
            self._serve(cert)  # still valid: served while a renewal is ordered
            due = cert.renewal_due(RENEW_FRACTION)
            if now < due:
                return min((due - now).total_seconds(), RELOAD_INTERVAL)
        holder = secrets.token_bytes(16)
        if not await store.lock(holder):
            log.info("ACME: another process of the cluster is ordering the certificate; waiting for it")
            return LOCK_WAIT
        try:
            # The previous holder may have stored a certificate just before we locked.
            stored = self._usable(await store.certificate(), utcnow())
            if stored is not None and utcnow() < stored.renewal_due(RENEW_FRACTION):
                self._serve(stored)
                return 0.0
            cert = await self._order(store, renewal=cert is not None)
            await store.save_certificate(cert)
        finally:
            await store.unlock(holder)
        self.orders += 1
        self._serve(cert)
        return 0.0

    async def _order(self, store: AcmeStore, renewal: bool) -> StoredCertificate:
        domains = ", ".join(self.settings.domains)
        log.info(
            "ACME: %s the certificate for %s at %s",
            "renewing" if renewal else "ordering",
            domains,
            self.settings.directory,
        )
        account_key = await store.account_key(new_private_key())
        order = Order(self.settings, account_key)
        published = await order.begin()
        for token, key_authorization in published:
            self.responder.local[token] = key_authorization
            await store.publish_challenge(token, key_authorization)
        try:
            return await order.finish()
        finally:
            for token, _ in published:
                self.responder.local.pop(token, None)
