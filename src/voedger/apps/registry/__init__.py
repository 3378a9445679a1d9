"""The ``sys/registry`` application: VSQL plus the Python of its extensions, in this folder.

The server deploys it like any application folder (``load_image(REGISTRY_APP, REGISTRY_APP_DIR)``)
and binds it the token issuer (see :mod:`voedger.apps.registry._services`). The extensions are in
``logins.py``; the modules whose names start with ``_`` are ordinary modules the server, the
router and the extensions import (the image loader skips them).
"""

from __future__ import annotations

from pathlib import Path

from voedger.apps.registry._logins import (
    DEVICE_PROFILE,
    LOGIN_IDX,
    LOGIN_TABLE,
    MAX_LOGIN_LENGTH,
    MAX_PASSWORD_BYTES,
    PASSWORD_HASH_COST,
    USER_PROFILE,
    check_app_wsid,
    check_login_format,
    create_login_args,
    device_credentials,
    expected_app_wsid,
    login_hash,
    profile_ws_name,
)
from voedger.apps.registry._refresh import refresh_principal_token
from voedger.apps.registry._services import (
    AuthServices,
    bind_services,
    bound_services,
    services_of,
    unbind_services,
)

REGISTRY_APP = "sys/registry"
REGISTRY_APP_DIR = Path(__file__).parent

__all__ = [
    "DEVICE_PROFILE",
    "LOGIN_IDX",
    "LOGIN_TABLE",
    "MAX_LOGIN_LENGTH",
    "MAX_PASSWORD_BYTES",
    "PASSWORD_HASH_COST",
    "REGISTRY_APP",
    "REGISTRY_APP_DIR",
    "USER_PROFILE",
    "AuthServices",
    "bind_services",
    "bound_services",
    "check_app_wsid",
    "check_login_format",
    "create_login_args",
    "device_credentials",
    "expected_app_wsid",
    "login_hash",
    "profile_ws_name",
    "refresh_principal_token",
    "services_of",
    "unbind_services",
]
