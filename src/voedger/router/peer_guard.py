"""What the endpoints between servers share: the secret a caller must present, and the refusals.

``POST /_cluster/...`` (processes of one cluster, the cluster secret) and ``POST
/_federation/...`` (routers of the federation, the federation secret) serve only callers that
present their secret in a header. It is compared in constant time and never logged; a request
without it answers 401, with a wrong one 403, in Voedger's error shape, before anything is read.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from typing import Final

from voedger.router.wire import MAX_HOPS, BusRequest, WireError, secret_text
from voedger.syserror import SysError

Reply = tuple[int, list[tuple[bytes, bytes]], bytes]
"""An HTTP status, headers (lower-case names) and body."""

JSON_HEADERS: Final = [(b"content-type", b"application/json")]


class PeerGuard:
    """Admits the callers that present ``secret`` in the ``header`` header.

    ``peers`` names the callers in the messages ("a forwarded request", "a request from another
    cluster") and ``secret_name`` the secret ("cluster secret", "federation secret").
    """

    def __init__(self, header: str, secret: bytes | str, peers: str, secret_name: str, log: logging.Logger) -> None:
        self.header = header
        self.peers = peers
        self.secret_name = secret_name
        self._log = log
        self._key = header.lower().encode("latin-1")
        self._secret = secret_text(secret).encode("latin-1")
        if not self._secret:
            raise ValueError(f"the {secret_name} is empty")

    def __repr__(self) -> str:
        return f"PeerGuard({self.header}, <secret>)"

    def refusal(self, headers: Iterable[tuple[bytes, bytes]]) -> Reply | None:
        """The refusal of a caller without the right secret, or None to go on."""
        given = next((v for k, v in headers if k == self._key), None)
        if given is None:
            return refuse(SysError(401, f"{self.peers} needs the {self.header} header"))
        if not hmac.compare_digest(given, self._secret):
            self._log.warning("refused %s with a wrong %s", self.peers, self.secret_name)
            return refuse(SysError(403, f"the {self.secret_name} is wrong"))
        return None


def refuse(err: SysError) -> Reply:
    """``err`` as the endpoint's answer, in Voedger's API v1 error shape."""
    return err.status, JSON_HEADERS, err.to_v1()


def bus_request(body: bytes) -> BusRequest | Reply:
    """The forwarded request in ``body``, or the refusal of bytes that are not one (400) or of a
    request forwarded too many times (508: a loop)."""
    try:
        request = BusRequest.from_bytes(body)
    except WireError as exc:
        return refuse(SysError(400, f"malformed bus request: {exc}"))
    if request.hops > MAX_HOPS:
        return refuse(SysError(508, f"the request was forwarded {request.hops} times: a loop"))
    return request
