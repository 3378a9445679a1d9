"""Who is asking: the roles of a request's principal, computed as Voedger's
``iauthnzimpl.Authenticate`` does.

Without a token: ``sys.Anonymous`` (hence ``sys.Everyone``) plus the roles that ``sys.Subject``
records of the request workspace give the login ``sys.Guest``.

With a valid token, ``sys.AuthenticatedUser`` (hence ``sys.Everyone``), then:

1. an API token adds only its roles bound to the request workspace, and nothing else;
2. otherwise the token's global roles, and the roles of the active ``sys.Subject`` records of the
   request workspace whose ``Login`` is the token's login or alias;
3. if those include ``sys.System``, or the token's ProfileWSID is 0 (a system token), the
   principal is the System and nothing else matters;
4. the SubjectKind must be user or device (else the token is refused);
5. ``sys.ProfileOwner`` when the request WSID is the token's ProfileWSID; otherwise
   ``sys.WorkspaceOwner`` for a user whose profile owns the workspace (the descriptor's
   ``OwnerWSID`` equals the ProfileWSID), or ``sys.WorkspaceDevice`` for a device the application
   allows there;
6. the roles of an enriched token whose WSID is the workspace's OwnerWSID.

Given the workspace kind, the roles are then expanded through ``GRANT role TO role`` (e.g.
ProfileOwner brings WorkspaceOwner, which brings BLOBUploader and the application's roles granted
to it).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

from voedger.appdef import SYS_IS_ACTIVE, QName, QNameError, Workspace
from voedger.auth.errors import TokenError, TokenErrorKind
from voedger.auth.tokens import PrincipalPayload, SubjectKind, TokenInfo
from voedger.processors.principal import Principal

__all__ = [
    "GUEST_LOGIN",
    "GUEST_WSID",
    "ROLE_ANONYMOUS",
    "ROLE_AUTHENTICATED_USER",
    "ROLE_EVERYONE",
    "ROLE_PROFILE_OWNER",
    "ROLE_SYSTEM",
    "ROLE_WORKSPACE_DEVICE",
    "ROLE_WORKSPACE_OWNER",
    "build_principal",
    "parse_roles",
    "roles_from_subjects",
    "subject_logins",
]

GUEST_LOGIN: Final = "sys.Guest"
"""The login of requests without a token; ``sys.Subject`` records may give it roles."""
GUEST_WSID: Final = 98304
"""Voedger's ``istructs.GuestWSID``: the guest user's (notional) profile."""

ROLE_EVERYONE: Final = QName("sys", "Everyone")
ROLE_ANONYMOUS: Final = QName("sys", "Anonymous")
ROLE_AUTHENTICATED_USER: Final = QName("sys", "AuthenticatedUser")
ROLE_SYSTEM: Final = QName("sys", "System")
ROLE_PROFILE_OWNER: Final = QName("sys", "ProfileOwner")
ROLE_WORKSPACE_OWNER: Final = QName("sys", "WorkspaceOwner")
ROLE_WORKSPACE_DEVICE: Final = QName("sys", "WorkspaceDevice")

_log = logging.getLogger(__name__)


def subject_logins(payload: PrincipalPayload | TokenInfo | None) -> tuple[str, ...]:
    """The logins whose ``sys.Subject`` records give roles: ``sys.Guest`` without a token, else
    the token's login and its alias (none for API and system tokens)."""
    if isinstance(payload, TokenInfo):
        payload = payload.payload
    if payload is None:
        return (GUEST_LOGIN,)
    if payload.is_api_token:
        return ()
    logins = [payload.login]
    if payload.alias and payload.alias != payload.login:
        logins.append(payload.alias)
    return tuple(logins)


def parse_roles(csv: str) -> tuple[QName, ...]:
    """The roles of a comma-separated list (``sys.Subject.Roles``, ``Login.GlobalRoles``);
    blanks are skipped, invalid names are skipped and logged."""
    roles: list[QName] = []
    for part in csv.split(","):
        text = part.strip()
        if not text:
            continue
        try:
            roles.append(QName.parse(text))
        except QNameError:
            _log.warning("ignoring invalid role name %r", text[:100])
    return tuple(roles)


def roles_from_subjects(subjects: Iterable[Mapping[str, Any]], logins: Collection[str]) -> tuple[QName, ...]:
    """The roles that active ``sys.Subject`` records (dicts of their fields) give the logins."""
    found: dict[QName, None] = {}
    for s in subjects:
        if s.get("Login") not in logins:
            continue
        if s.get(SYS_IS_ACTIVE, True) is False:
            continue
        roles = s.get("Roles")
        if isinstance(roles, str):
            found.update(dict.fromkeys(parse_roles(roles)))
    return tuple(found)


def build_principal(
    token: TokenInfo | PrincipalPayload | None,
    request_wsid: int,
    *,
    descriptor: Mapping[str, Any] | None = None,
    subjects: Iterable[Mapping[str, Any]] = (),
    workspace: Workspace | None = None,
    device_allowed: bool = True,
) -> Principal:
    """The principal of a request to ``request_wsid``.

    ``token`` is the validated token (or its payload), None without one. ``descriptor`` is the
    workspace's ``sys.WorkspaceDescriptor`` as a dict (None if the workspace has none yet),
    ``subjects`` its ``sys.Subject`` records (all of them, or only those of
    :func:`subject_logins`). ``workspace`` is the workspace kind, to expand roles through
    inheritance; ``device_allowed`` is the application's answer to "may this device work here".

    Raises TokenError for a token of an unsupported SubjectKind (HTTP 401, as Voedger).
    """
    payload = token.payload if isinstance(token, TokenInfo) else token
    roles: dict[QName, None] = {}
    extra: dict[str, object] = {"subject_kind": int(SubjectKind.USER)}

    def add(*qnames: QName) -> None:
        roles.update(dict.fromkeys(qnames))

    def done(*, login: str, profile_wsid: int, system: bool = False, **more: object) -> Principal:
        direct = frozenset(roles)
        expanded = workspace.expand_roles(direct) if workspace is not None and not system else direct
        return Principal(
            roles=expanded,
            profile_wsid=profile_wsid,
            login=login,
            is_system=system,
            extra={"direct_roles": direct, **extra, **more},
        )

    if payload is None:
        add(ROLE_ANONYMOUS, ROLE_EVERYONE)
        add(*roles_from_subjects(subjects, (GUEST_LOGIN,)))
        return done(login="", profile_wsid=0, system=ROLE_SYSTEM in roles)

    extra.update(subject_kind=int(payload.subject_kind), alias=payload.alias)
    add(ROLE_AUTHENTICATED_USER, ROLE_EVERYONE)

    if payload.is_api_token:
        add(*(r.role for r in payload.roles if r.wsid == request_wsid))
        return done(login=payload.login, profile_wsid=payload.profile_wsid, api_token=True)

    add(*payload.global_roles)
    add(*roles_from_subjects(subjects, subject_logins(payload)))

    if payload.subject_kind not in (SubjectKind.USER, SubjectKind.DEVICE):
        raise TokenError(TokenErrorKind.INVALID_PAYLOAD, f"unsupported subject kind {payload.subject_kind}")

    if ROLE_SYSTEM in roles or payload.profile_wsid == 0:
        add(ROLE_SYSTEM)
        return done(login=payload.login, profile_wsid=payload.profile_wsid, system=True)

    owner_wsid = _owner_wsid(descriptor)
    if request_wsid == payload.profile_wsid:
        add(ROLE_PROFILE_OWNER)
    elif payload.subject_kind == SubjectKind.USER:
        if owner_wsid is not None and owner_wsid == payload.profile_wsid:
            add(ROLE_WORKSPACE_OWNER)
    elif device_allowed:
        add(ROLE_WORKSPACE_DEVICE)

    if owner_wsid is not None:
        add(*(r.role for r in payload.roles if r.wsid == owner_wsid))

    return done(login=payload.login, profile_wsid=payload.profile_wsid)


def _owner_wsid(descriptor: Mapping[str, Any] | None) -> int | None:
    """The descriptor's OwnerWSID; 0 when it is empty (application workspaces), None without a
    descriptor."""
    if descriptor is None:
        return None
    v = descriptor.get("OwnerWSID")
    return v if isinstance(v, int) and not isinstance(v, bool) else 0
