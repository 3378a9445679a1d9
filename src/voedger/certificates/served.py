"""The TLS context the HTTP front listens with, whose certificate can change while it serves.

Python's ``ssl`` fixes a context's certificate once connections use it, so the listening context
holds none: its SNI callback (called for every handshake, with or without a server name) hands
the connection over to the context of the current certificate. :meth:`ServedCertificate.load`
builds a new context and swaps it in: connections made afterwards get the new certificate,
those already open keep theirs, and nothing restarts. While there is no certificate yet, every
handshake is refused with a ``handshake_failure`` alert.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
from pathlib import Path

from voedger.certificates.store import StoredCertificate

__all__ = ["ServedCertificate"]

log = logging.getLogger("voedger.acme")


def _server_context() -> ssl.SSLContext:
    # As router.http.tls_context: TLS 1.2 or newer (as Voedger's router), HTTP/1.1 by ALPN.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


class ServedCertificate:
    """``context`` is what the listener gets; :meth:`load` changes the certificate behind it."""

    def __init__(self) -> None:
        self.context = _server_context()
        self.context.sni_callback = self._pick
        self._current: ssl.SSLContext | None = None
        self.certificate: StoredCertificate | None = None
        """The certificate served now (None: handshakes are refused)."""

    def __repr__(self) -> str:
        return f"ServedCertificate({self.certificate!r})"

    def _pick(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> int | None:
        current = self._current
        if current is None:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        connection.context = current
        return None

    def load(self, cert: StoredCertificate) -> None:
        """Serve ``cert`` to the connections made from now on. Raises ``ssl.SSLError`` if the
        chain and key do not go together."""
        context = _server_context()
        # ssl loads certificates and keys from files only: a private folder (0700) and file
        # (0600) of the temporary directory, removed as soon as they are read.
        with tempfile.TemporaryDirectory(prefix="voedger-tls-") as folder:
            chain, key = Path(folder) / "chain.pem", Path(folder) / "key.pem"
            for path, data in ((chain, cert.chain_pem), (key, cert.key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
            context.load_cert_chain(chain, key)
        self._current = context
        self.certificate = cert
