"""Reading credentials from a request: the ``Authorization`` header, or the cookie of that name.

The forms Voedger accepts (``pkg/bus.GetPrincipalToken``, ``pkg/router.GetCookieBearerAuth``):

- ``Authorization: Bearer <token>``;
- ``Authorization: Basic base64(user:password)`` where the token is in the user part, in the
  password part, or split across both: Voedger removes the one colon and reads the rest as the
  token (``base64(token + ":")``, ``base64(":" + token)``, ``base64(tok + ":" + en)``);
- a cookie named ``Authorization`` holding a URL-escaped header value (``Bearer%20<token>``),
  read only when there is no header.

Beyond Voedger, a Basic header whose two parts do not look like a split JWT, and whose user part is
not empty, is read as a login and a password (RFC 7617; the password may hold colons). Voedger
would read ``login:password`` as a token and answer 401; the router may instead sign the login
in. Anything else raises :class:`~voedger.auth.errors.CredentialsError` (HTTP 401), whose message
never repeats the credentials.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final
from urllib.parse import unquote_plus

from voedger.auth.errors import CredentialsError

__all__ = [
    "AUTHORIZATION",
    "Credentials",
    "CredentialsKind",
    "basic_header",
    "bearer_header",
    "credentials_from",
    "looks_like_jwt",
    "parse_authorization",
    "parse_authorization_cookie",
]

AUTHORIZATION: Final = "Authorization"
"""The header's name, and the cookie's."""

MAX_HEADER_LEN: Final = 16 * 1024
_JWT: Final = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")
_TOKEN_CHARS: Final = re.compile(r"[\x21-\x7e]+")  # visible ASCII, no spaces
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9_\-]*)(?: +(.*))?", re.DOTALL)


class CredentialsKind(StrEnum):
    TOKEN = "token"
    LOGIN_PASSWORD = "login-password"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented. ``token`` is set for TOKEN, ``login`` and ``password`` for
    LOGIN_PASSWORD. ``scheme`` is ``Bearer`` or ``Basic``; ``from_cookie`` tells where it came from."""

    kind: CredentialsKind
    scheme: str
    token: str = field(default="", repr=False)
    login: str = ""
    password: str = field(default="", repr=False)
    from_cookie: bool = False


def looks_like_jwt(text: str) -> bool:
    """Three base64url segments separated by dots (a JWS in compact form)."""
    return bool(_JWT.fullmatch(text))


def bearer_header(token: str) -> str:
    """The header value that carries a token: ``Bearer <token>``."""
    return f"Bearer {token}"


def basic_header(user: str, password: str) -> str:
    """The header value of the Basic scheme for ``user`` and ``password``."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def parse_authorization(value: str | bytes | None) -> Credentials | None:
    """The credentials of an ``Authorization`` header value, or None when it is absent or empty.

    Raises CredentialsError for an unsupported scheme or a malformed value.
    """
    return _parse(value, from_cookie=False)


def parse_authorization_cookie(value: str | None) -> Credentials | None:
    """The credentials of an ``Authorization`` cookie (a URL-escaped header value), or None.

    A cookie holding a bare JWT (no scheme) is taken as a Bearer token too.
    """
    if value is None or not value.strip():
        return None
    if not isinstance(value, str):
        raise CredentialsError("the Authorization cookie is not text")
    if _BAD_ESCAPE.search(value):
        raise CredentialsError("the Authorization cookie has a malformed %-escape")
    try:
        unescaped = unquote_plus(value, errors="strict")
    except UnicodeDecodeError:
        raise CredentialsError("the Authorization cookie is not UTF-8 once unescaped") from None
    if looks_like_jwt(unescaped.strip()):
        return Credentials(CredentialsKind.TOKEN, "Bearer", token=unescaped.strip(), from_cookie=True)
    return _parse(unescaped, from_cookie=True)


def credentials_from(headers: Mapping[str, str], cookies: Mapping[str, str] | None = None) -> Credentials | None:
    """The request's credentials: the ``Authorization`` header, else the cookie, else None.

    ``headers`` may be Starlette's (case-insensitive) or a plain dict (looked up case-insensitively).
    """
    header = headers.get(AUTHORIZATION)
    if header is None:
        header = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if header is not None and header.strip():
        return parse_authorization(header)
    if cookies:
        return parse_authorization_cookie(cookies.get(AUTHORIZATION))
    return None


def _parse(value: str | bytes | None, *, from_cookie: bool) -> Credentials | None:
    if value is None:
        return None
    where = "Authorization cookie" if from_cookie else "Authorization header"
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    elif not isinstance(value, str):
        raise CredentialsError(f"the {where} is not text")
    if len(value) > MAX_HEADER_LEN:
        raise CredentialsError(f"the {where} is longer than {MAX_HEADER_LEN} characters")
    value = value.strip(" \t")
    if not value:
        return None
    m = _SCHEME.fullmatch(value)
    scheme = m.group(1).lower() if m else ""
    rest = (m.group(2) or "").strip(" \t") if m else ""
    if scheme == "bearer":
        if not rest:
            raise CredentialsError(f"the {where} has the Bearer scheme but no token")
        if not _TOKEN_CHARS.fullmatch(rest):
            raise CredentialsError(f"the {where} has a malformed Bearer token")
        return Credentials(CredentialsKind.TOKEN, "Bearer", token=rest, from_cookie=from_cookie)
    if scheme == "basic":
        return _basic(rest, where, from_cookie)
    shown = m.group(1)[:20] if m else "?"
    raise CredentialsError(f"unsupported {where}: scheme {shown!r}; Bearer or Basic is expected")


def _basic(encoded: str, where: str, from_cookie: bool) -> Credentials:
    if not encoded:
        raise CredentialsError(f"the {where} has the Basic scheme but no credentials")
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise CredentialsError(f"the {where} is not valid base64 of UTF-8 text after Basic") from None
    if ":" not in text:
        raise CredentialsError(f"unexpected Basic {where} format: no colon between user and password")
    user, _, password = text.partition(":")
    single_colon = ":" not in password
    if single_colon:
        joined = user + password
        if not user or not password or looks_like_jwt(joined):
            if not joined or not _TOKEN_CHARS.fullmatch(joined):
                raise CredentialsError(f"the {where} holds an empty or malformed token")
            return Credentials(CredentialsKind.TOKEN, "Basic", token=joined, from_cookie=from_cookie)
    if not user:
        raise CredentialsError(f"the {where} has an empty login")
    return Credentials(CredentialsKind.LOGIN_PASSWORD, "Basic", login=user, password=password, from_cookie=from_cookie)
