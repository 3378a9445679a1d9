"""The identity layer: tokens, secrets, credentials, principals, ACL evaluation, rates and limits.

What the router and the processors use:

- :class:`Tokens` / :class:`AppTokens`: issue and validate principal and system tokens (JWT
  EdDSA bound to an application); :class:`ClusterKeys` with a :class:`StorageKeySetStore` or
  :class:`FileKeySetStore` gives the cluster's Ed25519 signing keys and the :class:`KeyRing`
  that verifies the tokens of every cluster of the federation; :func:`jwt_secret` with a
  :class:`StorageSecretStore` or :class:`FileSecretStore` gives the cluster-wide secret (keyed
  hashes, HS256 tokens of before the upgrade), :func:`cluster_secret` the secret the cluster's
  processes forward requests to each other with;
- :func:`credentials_from` / :func:`parse_authorization`: the ``Authorization`` header or cookie;
- :func:`build_principal`: the roles of a request, as Voedger's authenticator computes them;
- :class:`ACL`: the :class:`~voedger.processors.principal.Authorizer` that evaluates the
  application's GRANTs and REVOKEs;
- :class:`Limiter`: the application's RATE and LIMIT declarations.

Errors are :class:`~voedger.syserror.SysError` subclasses with their HTTP status: TokenError and
CredentialsError (401), AccessDeniedError (403), RateLimitedError (429 with Retry-After).
"""

from voedger.auth.acl import ACL, Decision
from voedger.auth.errors import (
    AccessDeniedError,
    AuthError,
    CredentialsError,
    RateLimitedError,
    SecretStoreError,
    TokenError,
    TokenErrorKind,
)
from voedger.auth.headers import (
    AUTHORIZATION,
    Credentials,
    CredentialsKind,
    basic_header,
    bearer_header,
    credentials_from,
    looks_like_jwt,
    parse_authorization,
    parse_authorization_cookie,
)
from voedger.auth.keys import (
    JWK_CLUSTER,
    JWK_SCOPE,
    KeyImportError,
    KeyRing,
    KeyScope,
    SigningKey,
    VerificationKey,
)
from voedger.auth.keystore import (
    LEGACY_HMAC_WINDOW,
    ClusterKeys,
    FileKeySetStore,
    KeySetStore,
    StorageKeySetStore,
)
from voedger.auth.principals import (
    GUEST_LOGIN,
    GUEST_WSID,
    ROLE_ANONYMOUS,
    ROLE_AUTHENTICATED_USER,
    ROLE_EVERYONE,
    ROLE_PROFILE_OWNER,
    ROLE_SYSTEM,
    ROLE_WORKSPACE_DEVICE,
    ROLE_WORKSPACE_OWNER,
    build_principal,
    parse_roles,
    roles_from_subjects,
    subject_logins,
)
from voedger.auth.rates import Limiter, RateDecision
from voedger.auth.secretstore import (
    CLUSTER_SECRET_NAME,
    JWT_SECRET_NAME,
    FileSecretStore,
    SecretStore,
    StorageSecretStore,
    cluster_secret,
    generate_secret,
    jwt_secret,
)
from voedger.auth.tokens import (
    DEFAULT_PRINCIPAL_TOKEN_TTL,
    MAX_PRINCIPAL_TOKEN_TTL,
    PRINCIPAL_AUDIENCE,
    SECRET_KEY_LENGTH,
    SYSTEM_LOGIN,
    SYSTEM_TOKEN_TTL,
    AppTokens,
    PrincipalPayload,
    RoleInWorkspace,
    SubjectKind,
    TokenInfo,
    Tokens,
    principal_token_ttl,
)

__all__ = [
    "ACL",
    "AUTHORIZATION",
    "CLUSTER_SECRET_NAME",
    "DEFAULT_PRINCIPAL_TOKEN_TTL",
    "GUEST_LOGIN",
    "GUEST_WSID",
    "JWK_CLUSTER",
    "JWK_SCOPE",
    "JWT_SECRET_NAME",
    "LEGACY_HMAC_WINDOW",
    "MAX_PRINCIPAL_TOKEN_TTL",
    "PRINCIPAL_AUDIENCE",
    "ROLE_ANONYMOUS",
    "ROLE_AUTHENTICATED_USER",
    "ROLE_EVERYONE",
    "ROLE_PROFILE_OWNER",
    "ROLE_SYSTEM",
    "ROLE_WORKSPACE_DEVICE",
    "ROLE_WORKSPACE_OWNER",
    "SECRET_KEY_LENGTH",
    "SYSTEM_LOGIN",
    "SYSTEM_TOKEN_TTL",
    "AccessDeniedError",
    "AppTokens",
    "AuthError",
    "ClusterKeys",
    "Credentials",
    "CredentialsError",
    "CredentialsKind",
    "Decision",
    "FileKeySetStore",
    "FileSecretStore",
    "KeyImportError",
    "KeyRing",
    "KeyScope",
    "KeySetStore",
    "Limiter",
    "PrincipalPayload",
    "RateDecision",
    "RateLimitedError",
    "RoleInWorkspace",
    "SecretStore",
    "SecretStoreError",
    "SigningKey",
    "StorageKeySetStore",
    "StorageSecretStore",
    "SubjectKind",
    "TokenError",
    "TokenErrorKind",
    "TokenInfo",
    "Tokens",
    "VerificationKey",
    "basic_header",
    "bearer_header",
    "build_principal",
    "cluster_secret",
    "credentials_from",
    "generate_secret",
    "jwt_secret",
    "looks_like_jwt",
    "parse_authorization",
    "parse_authorization_cookie",
    "parse_roles",
    "principal_token_ttl",
    "roles_from_subjects",
    "subject_logins",
]
