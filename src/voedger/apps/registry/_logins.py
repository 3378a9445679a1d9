"""What the registry knows about logins and passwords, apart from the extensions that use it.

Nothing here logs, and no message carries a password or a hash. bcrypt is CPU work: it runs in a
worker thread so that a partition's event loop keeps serving while a password is hashed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import zlib
from typing import Any, Final

import bcrypt

from voedger.auth.tokens import SubjectKind
from voedger.structs import wsid as ws
from voedger.syserror import SysError

__all__ = [
    "DEVICE_PROFILE",
    "LOGIN_IDX",
    "LOGIN_TABLE",
    "MAX_LOGIN_LENGTH",
    "MAX_PASSWORD_BYTES",
    "PASSWORD_HASH_COST",
    "USER_PROFILE",
    "check_app_name",
    "check_app_wsid",
    "check_login_format",
    "check_new_password",
    "create_login_args",
    "decode_pwd_hash",
    "device_credentials",
    "encode_pwd_hash",
    "expected_app_wsid",
    "hash_password",
    "login_hash",
    "login_idx_key",
    "password_matches",
    "profile_kind",
    "profile_ws_name",
]

LOGIN_TABLE: Final = "registry.Login"
LOGIN_IDX: Final = "registry.LoginIdx"
USER_PROFILE: Final = "sys.UserProfile"
DEVICE_PROFILE: Final = "sys.DeviceProfile"

LOGIN_PATTERN: Final = re.compile(r"[a-z0-9!#$%&'*+\-/=.?^_{|}~@]+")
"""Voedger's login characters (``validLoginRegexp``)."""
MAX_LOGIN_LENGTH: Final = 255
"""Bytes: the login argument is a ``text`` field, 255 bytes at most, as in Voedger."""
MAX_PASSWORD_BYTES: Final = 72
"""bcrypt reads no more than 72 bytes of a password; a longer one is refused, not cut."""
PASSWORD_HASH_COST: Final = 10
"""bcrypt's cost (log2 of its rounds) for new hashes: Go's DefaultCost. Voedger hashes with
MinCost (4); hashes of any cost verify."""
MAX_APP_NAME_LENGTH: Final = MAX_LOGIN_LENGTH - 65
"""So that ``AppName/LoginHash`` (a 64-character hash) fits the LoginIdx key, a text field."""

_APP_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]*/[A-Za-z][A-Za-z0-9_-]*")
_DEVICE_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"
_DEVICE_RANDOM_LENGTH: Final = 26
_dummy_hash: bytes | None = None


def login_hash(login: str) -> str:
    """The hex SHA-256 of a login: all the registry keeps of it."""
    return hashlib.sha256(login.encode()).hexdigest()


def login_idx_key(app_name: str, hashed_login: str) -> str:
    """LoginIdx's clustering column: ``AppName/LoginHash``."""
    return f"{app_name}/{hashed_login}"


def check_login_format(login: str) -> None:
    """400 unless the login is made of Voedger's login characters, does not start or end with
    ``-`` or ``.``, has no ``..``, does not start with ``sys.`` and is at most 255 bytes."""
    if (
        len(login.encode()) > MAX_LOGIN_LENGTH
        or login.startswith(("-", ".", "sys."))
        or login.endswith(("-", "."))
        or ".." in login
        or not LOGIN_PATTERN.fullmatch(login)
    ):
        raise SysError(400, f"incorrect login format: {login[:MAX_LOGIN_LENGTH]}")


def check_app_name(app_name: str) -> None:
    """400 unless the name looks like ``owner/app``."""
    if len(app_name) > MAX_APP_NAME_LENGTH or not _APP_NAME.fullmatch(app_name):
        raise SysError(
            400, f"failed to parse app qualified name {app_name[:MAX_APP_NAME_LENGTH]!r}: expected owner/app"
        )


def expected_app_wsid(login: str, request_wsid: int, num_app_workspaces: int) -> int:
    """The application workspace that keeps ``login``, in the cluster of ``request_wsid``."""
    number = ws.crc16(login.encode()) % num_app_workspaces
    return ws.new_wsid(ws.cluster_id(request_wsid), ws.FIRST_BASE_APP_WSID + number)


def check_app_wsid(login: str, request_wsid: int, num_app_workspaces: int) -> None:
    """403 unless the request came to the application workspace that keeps ``login`` (Voedger's
    ``CheckAppWSID``): the client is to address the login's pseudo WSID."""
    expected = expected_app_wsid(login, request_wsid, num_app_workspaces)
    if expected != request_wsid:
        raise SysError(403, f"wrong AppWSID: {expected} expected, {request_wsid} got")


def check_new_password(password: str) -> bytes:
    """The password's bytes; 400 if it is empty or longer than bcrypt takes."""
    data = password.encode()
    if not data:
        raise SysError(400, "password must not be empty")
    if len(data) > MAX_PASSWORD_BYTES:
        raise SysError(400, f"password is too long: at most {MAX_PASSWORD_BYTES} bytes")
    return data


async def hash_password(password: str, cost: int = PASSWORD_HASH_COST) -> bytes:
    """The bcrypt hash of a new password (400 for an empty or too long one)."""
    data = check_new_password(password)
    return await asyncio.to_thread(bcrypt.hashpw, data, bcrypt.gensalt(cost))


def _matches(pwd_hash: bytes, password: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, pwd_hash)
    except ValueError:  # not a bcrypt hash
        return False


async def password_matches(pwd_hash: bytes | None, password: str) -> bool:
    """Whether ``password`` is the one ``pwd_hash`` was made of (bcrypt compares in constant
    time). Without a hash (an unknown login) a dummy one is checked, so that the answer takes as
    long as for a known login. As bcrypt itself, reads the first 72 bytes of the password."""
    global _dummy_hash
    data = password.encode()[:MAX_PASSWORD_BYTES]
    if pwd_hash is None:
        if _dummy_hash is None:
            _dummy_hash = await asyncio.to_thread(bcrypt.hashpw, b"no such login", bcrypt.gensalt(PASSWORD_HASH_COST))
        await asyncio.to_thread(_matches, _dummy_hash, data)
        return False
    return await asyncio.to_thread(_matches, pwd_hash, data)


def encode_pwd_hash(pwd_hash: bytes) -> str:
    """A hash as a ``bytes`` field takes it: base64."""
    return base64.b64encode(pwd_hash).decode()


def decode_pwd_hash(stored: Any) -> bytes | None:
    """The hash a Login record keeps, or None if it keeps none that can be read."""
    if not isinstance(stored, str) or not stored:
        return None
    try:
        return base64.b64decode(stored, validate=True)
    except ValueError:
        return None


def profile_ws_name(hashed_login: str) -> str:
    """The name of a login's profile workspace: the CRC-32 of its LoginHash, in decimal."""
    return str(zlib.crc32(hashed_login.encode()))


def profile_kind(subject_kind: int) -> str | None:
    """The profile's workspace descriptor for a SubjectKind, None for an unknown kind."""
    if subject_kind == SubjectKind.USER:
        return USER_PROFILE
    if subject_kind == SubjectKind.DEVICE:
        return DEVICE_PROFILE
    return None


def device_credentials() -> tuple[str, str]:
    """A random login and password for a new device (API v2 ``POST /devices``), as Voedger
    makes them: ``device`` and 26 characters of ``[a-z2-7]``, and 26 such characters."""
    login = "device" + "".join(secrets.choice(_DEVICE_ALPHABET) for _ in range(_DEVICE_RANDOM_LENGTH))
    password = "".join(secrets.choice(_DEVICE_ALPHABET) for _ in range(_DEVICE_RANDOM_LENGTH))
    return login, password


def create_login_args(
    login: str,
    password: str,
    app_name: str,
    *,
    subject_kind: int = SubjectKind.USER,
    profile_cluster: int = ws.MAIN_CLUSTER_ID,
    init_data: str = "{}",
) -> tuple[int, dict[str, Any]]:
    """Where to send ``c.registry.CreateLogin`` (the login's pseudo WSID: logins live in the
    registry of the main cluster, wherever their profile is) and its body, for the API v2
    endpoints that create logins (``/devices``, ``/users``)."""
    body = {
        "args": {
            "Login": login,
            "AppName": app_name,
            "SubjectKind": int(subject_kind),
            "WSKindInitializationData": init_data,
            "ProfileCluster": profile_cluster,
        },
        "unloggedArgs": {"Password": password},
    }
    return ws.pseudo_wsid(login, ws.MAIN_CLUSTER_ID), body
