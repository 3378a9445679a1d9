"""Principal and system tokens: JWTs signed with Ed25519 (EdDSA), bound to the application they
were issued for.

A token carries Voedger's claims, so that tokens pass between our servers and Voedger's clients
unchanged:

- ``iat``, ``exp``: seconds since the epoch; ``aud``: the payload's type name
  (``payloads.PrincipalPayload`` for principal tokens);
- ``Duration`` (the TTL in nanoseconds, as Go's ``time.Duration``), ``AppQName`` (``owner/app``),
  ``IssuedAt`` (RFC 3339);
- the payload's fields merged in: ``Login``, ``Alias``, ``SubjectKind`` (1 user, 2 device),
  ``ProfileWSID``, ``Roles`` (``[{"WSID", "QName"}]``), ``GlobalRoles`` (QNames), ``IsAPIToken``;
- ours: ``IssuerClusterID``, the cluster whose key signed the token (clients ignore it).

Signing and verifying (see :mod:`voedger.auth.keys`): a token is signed by the issuing cluster's
current Ed25519 key, its ID in the header's ``kid``, and verified locally by every cluster with
its key ring. Keys of the main cluster may sign any token; a worker's keys sign only the System
principal's tokens (its federation calls) and tokens for itself (verification codes), so a token
of a user or device signed by a worker is refused (401) everywhere, and a worker cannot issue one.

HS256 tokens (signed with the node's 64-byte secret, as before the upgrade and as Voedger does)
are still accepted on the main cluster, for tokens issued before its Ed25519 keys were made, for
168 hours after that (the longest a token lives): tokens in clients' hands stay valid across the
upgrade, and then HS256 is refused. Workers never accept HS256 (their secret would let them
mint). New tokens are always EdDSA. The secret also keys :meth:`Tokens.crypto_hash256`.

:class:`Tokens` holds the cluster's keys, the secret and an injectable clock; ``validate`` raises
one error type, :class:`~voedger.auth.errors.TokenError` (HTTP 401), whatever is wrong. Neither the
tokens, the secret nor a private key ever appear in an error message or a ``repr``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, Final

import jwt

from voedger.appdef import QName, QNameError
from voedger.auth.errors import TokenError, TokenErrorKind
from voedger.auth.keys import SIGNING_ALGORITHM, KeyScope, VerificationKey
from voedger.auth.keystore import LEGACY_HMAC_WINDOW, ClusterKeys
from voedger.clock import SYSTEM_CLOCK, Clock
from voedger.structs.wsid import MAIN_CLUSTER_ID
from voedger.syserror import SysError

__all__ = [
    "DEFAULT_PRINCIPAL_TOKEN_TTL",
    "ISSUER_CLAIM",
    "MAX_PRINCIPAL_TOKEN_TTL",
    "PRINCIPAL_AUDIENCE",
    "SECRET_KEY_LENGTH",
    "SYSTEM_LOGIN",
    "SYSTEM_TOKEN_TTL",
    "AppTokens",
    "PrincipalPayload",
    "RoleInWorkspace",
    "SubjectKind",
    "TokenInfo",
    "Tokens",
    "principal_token_ttl",
]

SECRET_KEY_LENGTH: Final = 64
"""Bytes of the JWT signing secret (Voedger's ``itokensjwt.SecretKeyLength``); shorter is refused."""

DEFAULT_PRINCIPAL_TOKEN_TTL: Final = timedelta(hours=1)
MAX_PRINCIPAL_TOKEN_TTL: Final = timedelta(hours=168)
SYSTEM_TOKEN_TTL: Final = timedelta(minutes=10)
SYSTEM_LOGIN: Final = "system"

PRINCIPAL_AUDIENCE: Final = "payloads.PrincipalPayload"
"""The ``aud`` claim of principal tokens: the Go type name of the payload, as Voedger writes it."""

ISSUER_CLAIM: Final = "IssuerClusterID"
"""The claim of ours naming the cluster whose key signed the token."""

_HMAC_ALGORITHMS: Final = ("HS256", "HS384", "HS512")  # Voedger accepts any HMAC method
_RESERVED_CLAIMS: Final = frozenset({"iat", "exp", "aud", "Duration", "AppQName", "IssuedAt", ISSUER_CLAIM})
_NANOS: Final = 1_000_000_000
_APP_QNAME: Final = re.compile(r"[^/\s]+/[^/\s]+")
_TOKEN_SHAPE: Final = re.compile(r"[A-Za-z0-9_\-=]+\.[A-Za-z0-9_\-=]+\.[A-Za-z0-9_\-=]*")


class SubjectKind(IntEnum):
    """Who a login belongs to (Voedger's ``istructs.SubjectKindType``)."""

    NULL = 0
    USER = 1
    DEVICE = 2


@dataclass(frozen=True, slots=True)
class RoleInWorkspace:
    """A role a token grants in one workspace: for an enriched token the WSID is the OwnerWSID of
    the workspaces it counts in; for an API token, the workspace itself."""

    wsid: int
    role: QName


@dataclass(frozen=True, slots=True, kw_only=True)
class PrincipalPayload:
    """What a principal token says about its bearer (Voedger's ``payloads.PrincipalPayload``).

    ``profile_wsid`` 0 marks the System principal (see :meth:`Tokens.issue_system`).
    """

    login: str
    subject_kind: int = SubjectKind.USER
    profile_wsid: int = 0
    alias: str = ""
    roles: tuple[RoleInWorkspace, ...] = ()
    global_roles: tuple[QName, ...] = ()
    is_api_token: bool = False

    @property
    def is_system(self) -> bool:
        return self.profile_wsid == 0

    def to_claims(self) -> dict[str, Any]:
        """The payload's JSON fields, named and shaped as Go marshals them (empty lists are null)."""
        return {
            "Login": self.login,
            "Alias": self.alias,
            "SubjectKind": int(self.subject_kind),
            "ProfileWSID": self.profile_wsid,
            "Roles": [{"WSID": r.wsid, "QName": str(r.role)} for r in self.roles] or None,
            "GlobalRoles": [str(r) for r in self.global_roles] or None,
            "IsAPIToken": self.is_api_token,
        }

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> PrincipalPayload:
        """Read the payload back; raises ValueError naming the first field that is wrong."""
        roles: list[RoleInWorkspace] = []
        for item in _list(claims, "Roles"):
            if not isinstance(item, Mapping):
                raise ValueError("Roles must hold objects")
            roles.append(RoleInWorkspace(_uint(item, "WSID"), _qname(item.get("QName"), "Roles.QName")))
        return cls(
            login=_str(claims, "Login"),
            alias=_str(claims, "Alias"),
            subject_kind=_uint(claims, "SubjectKind"),
            profile_wsid=_uint(claims, "ProfileWSID"),
            roles=tuple(roles),
            global_roles=tuple(_qname(r, "GlobalRoles") for r in _list(claims, "GlobalRoles")),
            is_api_token=_bool(claims, "IsAPIToken"),
        )


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A validated principal token: its payload and its generic claims."""

    payload: PrincipalPayload
    app: str
    issued_at: float
    """Seconds since the epoch (the ``iat`` claim)."""
    expires_at: float
    """Seconds since the epoch (the ``exp`` claim)."""
    duration: timedelta
    """The TTL it was issued with; a refreshed token gets the same."""
    claims: Mapping[str, Any] = field(repr=False, compare=False)
    issuer_cluster: int = MAIN_CLUSTER_ID
    """The cluster whose key signed it: for a System token, the cluster making the call."""


def principal_token_ttl(hours: int) -> timedelta:
    """The TTL of a token a client asked for in whole hours (``TTLHours`` of IssuePrincipalToken):
    0 means the default (1 h); more than 168 h is a 400, as in Voedger."""
    if hours == 0:
        return DEFAULT_PRINCIPAL_TOKEN_TTL
    max_hours = int(MAX_PRINCIPAL_TOKEN_TTL / timedelta(hours=1))
    if hours < 0 or hours > max_hours:
        raise SysError(400, f"max token TTL hours is {max_hours} hours")
    return timedelta(hours=hours)


_SYSTEM_PAYLOAD: Final = PrincipalPayload(login=SYSTEM_LOGIN, profile_wsid=0)


class Tokens:
    """Issues tokens with the cluster's signing key and validates them with its key ring
    (``keys``: see :mod:`voedger.auth.keystore`; without it, a key made for this object alone, of
    the main cluster). ``secret`` is the node's 64-byte secret (shared by every node of a
    cluster: see :mod:`voedger.auth.secretstore`): it keys :meth:`crypto_hash256` and verifies
    the HS256 tokens of before the upgrade while ``keys`` accepts them."""

    __slots__ = ("_clock", "_key", "keys")

    def __init__(self, secret: bytes, clock: Clock = SYSTEM_CLOCK, keys: ClusterKeys | None = None) -> None:
        if not isinstance(secret, bytes) or len(secret) < SECRET_KEY_LENGTH:
            raise ValueError(f"the JWT secret must be at least {SECRET_KEY_LENGTH} bytes")
        self._key = secret
        self._clock = clock
        self.keys = keys if keys is not None else ClusterKeys.ephemeral(MAIN_CLUSTER_ID, clock)

    def __repr__(self) -> str:
        return f"Tokens(cluster_id={self.keys.cluster_id}, signing={self.keys.signing.kid!r}, <secret hidden>)"

    @property
    def cluster_id(self) -> int:
        """The cluster these tokens are issued by."""
        return self.keys.cluster_id

    @property
    def may_issue_principals(self) -> bool:
        """True on the main cluster: only its keys sign the tokens of users and devices."""
        return self.keys.scope is KeyScope.PRINCIPAL

    def for_app(self, app: str) -> AppTokens:
        """The tokens of one application (Voedger's ``IAppTokens``)."""
        return AppTokens(self, app)

    # --- principal tokens

    def issue(self, app: str, payload: PrincipalPayload, ttl: timedelta = DEFAULT_PRINCIPAL_TOKEN_TTL) -> str:
        """A principal token for ``app``, valid for ``ttl`` (more than 0, at most 168 h)."""
        if not timedelta(0) < ttl <= MAX_PRINCIPAL_TOKEN_TTL:
            raise ValueError(f"a principal token lives more than 0 and at most {MAX_PRINCIPAL_TOKEN_TTL}, not {ttl}")
        return self.issue_claims(app, PRINCIPAL_AUDIENCE, payload.to_claims(), ttl)

    def issue_system(self, app: str) -> str:
        """The System principal's token for calls into ``app`` (``Login="system"``,
        ``ProfileWSID=0``, 10 minutes)."""
        return self.issue(app, PrincipalPayload(login=SYSTEM_LOGIN, profile_wsid=0), SYSTEM_TOKEN_TTL)

    def issue_api_token(
        self,
        app: str,
        current: PrincipalPayload,
        roles: Sequence[QName],
        wsid: int,
        ttl: timedelta = DEFAULT_PRINCIPAL_TOKEN_TTL,
    ) -> str:
        """A personal access token (Voedger's ``IssueAPIToken``): the current principal's payload
        plus ``roles`` bound to workspace ``wsid``; with it a request to ``wsid`` gets those roles
        and AuthenticatedUser only. Roles of the ``sys`` package cannot be given (ValueError)."""
        if wsid == 0:
            raise ValueError("an API token needs a workspace")
        if any(r.is_sys for r in roles):
            raise ValueError("an API token cannot carry a sys role")
        payload = dataclasses.replace(
            current,
            roles=current.roles + tuple(RoleInWorkspace(wsid, r) for r in roles),
            is_api_token=True,
        )
        return self.issue(app, payload, ttl)

    def validate(self, app: str, token: str) -> TokenInfo:
        """The principal token's payload; raises TokenError if it is malformed, forged, expired,
        issued for another application or not a principal token."""
        claims = self.validate_claims(app, PRINCIPAL_AUDIENCE, token)
        try:
            payload = PrincipalPayload.from_claims(claims)
        except ValueError as exc:
            raise TokenError(TokenErrorKind.INVALID_PAYLOAD, f"invalid token payload: {exc}") from None
        try:
            return TokenInfo(
                payload=payload,
                app=claims["AppQName"],
                issued_at=float(claims["iat"]),
                expires_at=float(claims["exp"]),
                duration=timedelta(microseconds=claims["Duration"] // 1000),
                claims=claims,
                issuer_cluster=claims[ISSUER_CLAIM],
            )
        except (OverflowError, ValueError):
            raise TokenError(TokenErrorKind.INVALID_PAYLOAD, "invalid token payload: a time is out of range") from None

    def refresh(self, app: str, token: str) -> str:
        """A new token with the same payload and TTL (``q.sys.RefreshPrincipalToken``)."""
        info = self.validate(app, token)
        ttl = min(max(info.duration, timedelta(seconds=1)), MAX_PRINCIPAL_TOKEN_TTL)
        return self.issue(app, info.payload, ttl)

    # --- any payload

    def issue_claims(self, app: str, audience: str, payload: Mapping[str, Any], ttl: timedelta) -> str:
        """A token of any payload type (``audience`` names it, e.g. ``payloads.VerifiedValuePayload``).

        On a worker cluster a principal token can only be the System principal's: for a user or
        a device this raises SysError 403 (the main cluster issues those)."""
        if not _APP_QNAME.fullmatch(app):
            raise ValueError(f"application name {app!r} is not owner/app")
        if ttl <= timedelta(0):
            raise ValueError("a token needs a positive TTL")
        signing = self.keys.signing
        if audience == PRINCIPAL_AUDIENCE and signing.scope is not KeyScope.PRINCIPAL and not _is_system(payload):
            raise SysError(
                403, f"cluster {signing.cluster_id} cannot issue principal tokens: the main cluster issues them"
            )
        now = self._clock.now()
        nanos = (ttl // timedelta(microseconds=1)) * 1000
        claims: dict[str, Any] = {k: v for k, v in payload.items() if k not in _RESERVED_CLAIMS}
        claims.update(
            {
                "iat": int(now // 1),
                "exp": int((now + ttl.total_seconds()) // 1),
                "aud": audience,
                "Duration": nanos,
                "AppQName": app,
                "IssuedAt": _rfc3339(now),
                ISSUER_CLAIM: signing.cluster_id,
            }
        )
        return signing.sign(claims)

    def validate_claims(self, app: str, audience: str, token: str) -> dict[str, Any]:
        """All claims of a valid token for ``app`` whose ``aud`` is ``audience``; raises TokenError."""
        if not isinstance(token, str) or not _TOKEN_SHAPE.fullmatch(token):
            raise TokenError(TokenErrorKind.MALFORMED, "token is malformed: expected a JWT")
        now = self._clock.now()
        key, verifier, algorithms = self._verifier(token, now)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                verifier,
                algorithms=algorithms,
                audience=audience,
                options={
                    # Expiry is checked below against the injected clock, not PyJWT's.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "iat", "aud"],
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenError(TokenErrorKind.BAD_SIGNATURE, "token signature is invalid") from None
        except jwt.InvalidAudienceError:
            raise TokenError(
                TokenErrorKind.WRONG_AUDIENCE, f"token is not a {audience.rpartition('.')[2]} token"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(TokenErrorKind.INVALID_PAYLOAD, f"token has no {exc.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise TokenError(TokenErrorKind.MALFORMED, "token is not signed with an accepted algorithm") from None
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, UnicodeError):
            raise TokenError(TokenErrorKind.MALFORMED, "token is malformed") from None
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or isinstance(exp, bool) or not _is_number(iat):
            raise TokenError(TokenErrorKind.INVALID_PAYLOAD, "token times (iat, exp) are not numbers")
        if now > exp:
            raise TokenError(TokenErrorKind.EXPIRED, "token expired")
        duration, token_app = claims.get("Duration"), claims.get("AppQName")
        if not isinstance(duration, int) or isinstance(duration, bool) or not isinstance(token_app, str):
            raise TokenError(TokenErrorKind.INVALID_PAYLOAD, "token has no valid Duration or AppQName claim")
        if not hmac.compare_digest(token_app.encode(), app.encode()):
            raise TokenError(TokenErrorKind.WRONG_APP, "token issued for another application")
        if key is None:
            # HS256 of before the upgrade: only tokens issued before the keys were made.
            assert isinstance(iat, int | float)
            if iat >= self.keys.hmac_until - LEGACY_HMAC_WINDOW:
                raise TokenError(TokenErrorKind.BAD_SIGNATURE, "HS256 tokens are no longer issued: sign in again")
            claims[ISSUER_CLAIM] = self.keys.cluster_id
        else:
            self._check_issuer(key, audience, claims)
        return claims

    def _verifier(self, token: str, now: float) -> tuple[VerificationKey | None, Any, list[str]]:
        """The key that must have signed ``token`` (None for a legacy HS256 token), what PyJWT
        verifies it with, and the one algorithm (family) accepted."""
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError, UnicodeError):
            raise TokenError(TokenErrorKind.MALFORMED, "token is malformed") from None
        alg = header.get("alg")
        if alg == SIGNING_ALGORITHM:
            kid = header.get("kid")
            key = self.keys.ring.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise TokenError(TokenErrorKind.BAD_SIGNATURE, "token is signed by an unknown key")
            return key, key.public_key, [SIGNING_ALGORITHM]
        if alg in _HMAC_ALGORITHMS and self.keys.accepts_hmac(now):
            return None, self._key, list(_HMAC_ALGORITHMS)
        raise TokenError(TokenErrorKind.MALFORMED, "token is not signed with an accepted algorithm")

    def _check_issuer(self, key: VerificationKey, audience: str, claims: Mapping[str, Any]) -> None:
        """May ``key`` sign this token? The main cluster's keys sign anything; the others sign
        the System principal's tokens and their own cluster's other tokens only."""
        issuer = claims.get(ISSUER_CLAIM)
        if not isinstance(issuer, int) or isinstance(issuer, bool) or issuer != key.cluster_id:
            raise TokenError(TokenErrorKind.WRONG_ISSUER, "token names another issuer than the key that signed it")
        if key.scope is KeyScope.PRINCIPAL:
            return
        if audience == PRINCIPAL_AUDIENCE:
            if not _is_system(claims):
                raise TokenError(
                    TokenErrorKind.WRONG_ISSUER, f"cluster {key.cluster_id} may not issue the tokens of users"
                )
        elif key.cluster_id != self.keys.cluster_id:
            raise TokenError(TokenErrorKind.WRONG_ISSUER, f"token issued by cluster {key.cluster_id} for itself")

    # --- keyed hashes

    def crypto_hash256(self, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` with the secret (Voedger's ``CryptoHash256``), e.g. for
        verification codes kept in tokens."""
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def verify_hash256(self, data: bytes, digest: bytes) -> bool:
        """True if ``digest`` is :meth:`crypto_hash256` of ``data``; compares in constant time."""
        return hmac.compare_digest(self.crypto_hash256(data), digest)


class AppTokens:
    """:class:`Tokens` bound to one application: what a partition of that application uses."""

    __slots__ = ("app", "tokens")

    def __init__(self, tokens: Tokens, app: str) -> None:
        if not _APP_QNAME.fullmatch(app):
            raise ValueError(f"application name {app!r} is not owner/app")
        self.tokens = tokens
        self.app = app

    def __repr__(self) -> str:
        return f"AppTokens({self.app!r})"

    def issue(self, payload: PrincipalPayload, ttl: timedelta = DEFAULT_PRINCIPAL_TOKEN_TTL) -> str:
        return self.tokens.issue(self.app, payload, ttl)

    def issue_system(self) -> str:
        return self.tokens.issue_system(self.app)

    def validate(self, token: str) -> TokenInfo:
        return self.tokens.validate(self.app, token)

    def refresh(self, token: str) -> str:
        return self.tokens.refresh(self.app, token)


# --- helpers


def _rfc3339(ts: float) -> str:
    """Go's JSON form of a time.Time in UTC: RFC 3339 with the fraction's trailing zeros cut."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{dt.microsecond:06d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def _is_system(claims: Mapping[str, Any]) -> bool:
    """True if ``claims`` are exactly the System principal's (login ``system``, ProfileWSID 0, no
    roles, not an API token): all a key that may not sign principal tokens may sign."""
    try:
        return PrincipalPayload.from_claims(claims) == _SYSTEM_PAYLOAD
    except ValueError:
        return False


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _str(claims: Mapping[str, Any], name: str) -> str:
    v = claims.get(name, "")
    if v is None:
        return ""
    if not isinstance(v, str):
        raise ValueError(f"{name} must be a string")
    return v


def _uint(claims: Mapping[str, Any], name: str) -> int:
    v = claims.get(name, 0)
    if v is None:
        return 0
    if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v >= 1 << 64:
        raise ValueError(f"{name} must be an unsigned integer")
    return v


def _bool(claims: Mapping[str, Any], name: str) -> bool:
    v = claims.get(name, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise ValueError(f"{name} must be a boolean")
    return v


def _list(claims: Mapping[str, Any], name: str) -> Sequence[Any]:
    v = claims.get(name)
    if v is None:
        return ()
    if not isinstance(v, list):
        raise ValueError(f"{name} must be a list")
    return v


def _qname(v: object, name: str) -> QName:
    if not isinstance(v, str):
        raise ValueError(f"{name} must hold QName strings")
    try:
        return QName.parse(v)
    except QNameError:
        raise ValueError(f"{name} holds an invalid QName") from None
