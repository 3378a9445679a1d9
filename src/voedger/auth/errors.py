"""The errors of the identity layer. Each is a :class:`SysError` carrying the HTTP status the
client gets (401, 403 or 429), so the router and the processors can raise or re-raise them as
they are. Messages never contain a token, a password or a secret."""

from __future__ import annotations

import math
from enum import StrEnum

from voedger.syserror import SysError

__all__ = [
    "AccessDeniedError",
    "AuthError",
    "CredentialsError",
    "RateLimitedError",
    "SecretStoreError",
    "TokenError",
    "TokenErrorKind",
]


class AuthError(SysError):
    """Base of the client-facing errors of :mod:`voedger.auth`."""


class TokenErrorKind(StrEnum):
    """Why a token was refused; the message says it in words."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad signature"
    EXPIRED = "expired"
    WRONG_APP = "wrong application"
    WRONG_AUDIENCE = "wrong audience"
    INVALID_PAYLOAD = "invalid payload"
    WRONG_ISSUER = "wrong issuer"
    """Signed by a key that may not sign such a token (e.g. a worker cluster's key, a user's token)."""


class TokenError(AuthError):
    """A token is not valid for this application (HTTP 401)."""

    def __init__(self, kind: TokenErrorKind, message: str) -> None:
        super().__init__(401, message)
        self.kind = kind

    def __repr__(self) -> str:
        return f"TokenError({self.kind.value!r}, {self.message!r})"


class CredentialsError(AuthError):
    """An ``Authorization`` header or cookie that cannot be read (HTTP 401)."""

    def __init__(self, message: str) -> None:
        super().__init__(401, message)

    def __repr__(self) -> str:
        return f"CredentialsError({self.message!r})"


class AccessDeniedError(AuthError):
    """The ACL denies the operation (HTTP 403)."""

    def __init__(self, message: str, *, qname: str = "") -> None:
        super().__init__(403, message, qname=qname)

    def __repr__(self) -> str:
        return f"AccessDeniedError({self.message!r})"


class RateLimitedError(AuthError):
    """A RATE/LIMIT is exceeded (HTTP 429 with ``Retry-After`` in whole seconds)."""

    def __init__(self, message: str, retry_after: float, *, limit: str = "") -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(429, message, qname=limit, headers={"Retry-After": str(seconds)})
        self.retry_after = seconds

    def __repr__(self) -> str:
        return f"RateLimitedError({self.message!r}, retry_after={self.retry_after})"


class SecretStoreError(RuntimeError):
    """A stored secret is missing, unreadable or malformed: a server problem, not the client's."""
