"""The HTTP-01 challenge port (``--acme-http-port``, 80 by default): ``GET
/.well-known/acme-challenge/{token}`` answers the key authorization published for the token,
by this process or (through the cluster's storage) by any other of the cluster, since the CA's
validation request may reach any of them. Anything else is a 404 in Voedger's error format.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from voedger.certificates.store import key_authorization
from voedger.storage import AppStorage, StorageError
from voedger.syserror import SysError

__all__ = ["ChallengeResponder"]

_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")


class ChallengeResponder:
    """The challenge port's ASGI ``app``; ``storage`` (the cluster's ``sys/vvm``) once open."""

    def __init__(self) -> None:
        self.local: dict[str, str] = {}
        """Key authorizations this process published, by token."""
        self.storage: AppStorage | None = None
        self.app = Starlette(
            routes=[Route("/.well-known/acme-challenge/{token}", self._challenge, methods=["GET"])],
            exception_handlers={404: self._not_found, 405: self._not_found},
        )

    async def _challenge(self, request: Request) -> Response:
        token = request.path_params["token"]
        if not _TOKEN.fullmatch(token):
            return _error(404, "no such ACME challenge token")
        answer = self.local.get(token)
        if answer is None and self.storage is not None:
            try:
                answer = await key_authorization(self.storage, token)
            except StorageError:
                return _error(503, "the cluster's storage does not answer")
        if answer is None:
            return _error(404, "no such ACME challenge token")
        return PlainTextResponse(answer)

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return _error(404, "this port answers ACME HTTP-01 challenges only (/.well-known/acme-challenge/TOKEN)")


def _error(status: int, message: str) -> Response:
    return Response(SysError(status, message).to_v1(), status_code=status, media_type="application/json")
