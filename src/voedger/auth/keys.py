"""Ed25519 keys that sign tokens, and the key ring every cluster verifies tokens with.

A federation has one main cluster (cluster ID 1) and worker clusters. Each cluster has its own
signing keys (:class:`SigningKey`, private, generated once and kept in its own storage: see
:mod:`voedger.auth.keystore`), and every cluster verifies tokens locally with a
:class:`KeyRing`: ``kid`` -> (public key, the cluster it belongs to, its scope).

The scope says what a key may sign (:class:`KeyScope`):

- ``principal``: any token, above all the principal tokens of users and devices. Only keys of
  the main cluster have it: principal tokens are issued there (by ``sys/registry``) and nowhere
  else.
- ``system``: the System principal's tokens a cluster signs for its federation calls, and the
  tokens a cluster issues to itself (e.g. verification codes), which only that cluster accepts.
  A worker's keys have this scope, so that a worker can verify user tokens but never mint one
  that another cluster (or itself) accepts.

Public keys travel as JWKs (RFC 8037: ``kty`` ``OKP``, ``crv`` ``Ed25519``, ``x``, ``kid``)
with two members of ours, ``voedger_cluster`` and ``voedger_scope``: :meth:`KeyRing.jwks_of`
gives a cluster's keys to publish in the federation directory, :meth:`KeyRing.update_cluster`
takes another cluster's keys from it, refusing anything malformed with a
:class:`KeyImportError` that names the key and the member at fault.

A key ID is the key's RFC 7638 thumbprint (base64url SHA-256 of its canonical JWK), so the same
public key always has the same ID and two different keys never share one.

No private key ever appears in a ``repr``, a log line, an error message or a JWK this module
writes; a JWK that holds a private part (``d``) is refused on import.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from voedger.structs.wsid import MAIN_CLUSTER_ID, MAX_CLUSTER_ID

__all__ = [
    "JWK_CLUSTER",
    "JWK_SCOPE",
    "MAX_KEYS_PER_CLUSTER",
    "SIGNING_ALGORITHM",
    "KeyImportError",
    "KeyRing",
    "KeyScope",
    "SigningKey",
    "VerificationKey",
    "key_id",
    "scope_of",
]

SIGNING_ALGORITHM: Final = "EdDSA"
"""The JWT ``alg`` of the tokens signed with these keys (Ed25519)."""

JWK_CLUSTER: Final = "voedger_cluster"
"""JWK member of ours: the ID of the cluster the key belongs to."""
JWK_SCOPE: Final = "voedger_scope"
"""JWK member of ours: what the key may sign, a :class:`KeyScope` value."""

MAX_KEYS_PER_CLUSTER: Final = 16
"""Keys one cluster may publish at once (the signing one, a staged next one, retiring ones)."""

_KID: Final = re.compile(r"[A-Za-z0-9_\-]{8,64}")
_B64_KEY: Final = re.compile(r"[A-Za-z0-9_\-]{43}")  # 32 bytes, base64url without padding
_RAW_KEY_LENGTH: Final = 32


class KeyScope(StrEnum):
    """What a key may sign."""

    PRINCIPAL = "principal"
    """Any token, principal tokens of users and devices included: keys of the main cluster."""
    SYSTEM = "system"
    """The System principal's tokens and tokens its own cluster accepts: keys of workers."""


class KeyImportError(ValueError):
    """A JWK (set) that cannot be taken into a key ring; the message says which key and why."""


def scope_of(cluster_id: int) -> KeyScope:
    """The scope a cluster's keys have: principal on the main cluster, system elsewhere."""
    return KeyScope.PRINCIPAL if cluster_id == MAIN_CLUSTER_ID else KeyScope.SYSTEM


def key_id(public_raw: bytes) -> str:
    """The RFC 7638 thumbprint of an Ed25519 public key (its 32 raw bytes)."""
    if len(public_raw) != _RAW_KEY_LENGTH:
        raise ValueError("an Ed25519 public key has 32 bytes")
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"' + _b64(public_raw) + '"}'
    return _b64(hashlib.sha256(canonical.encode()).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _check_cluster(cluster_id: object) -> int:
    if not isinstance(cluster_id, int) or isinstance(cluster_id, bool) or not 1 <= cluster_id <= MAX_CLUSTER_ID:
        raise ValueError(f"a cluster ID is an integer 1..{MAX_CLUSTER_ID}")
    return cluster_id


def _check_scope(cluster_id: int, scope: KeyScope) -> None:
    if scope is KeyScope.PRINCIPAL and cluster_id != MAIN_CLUSTER_ID:
        raise ValueError(f"only keys of the main cluster ({MAIN_CLUSTER_ID}) may sign principal tokens")


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key of the ring: what verifies the tokens of one cluster."""

    kid: str
    cluster_id: int
    scope: KeyScope
    raw: bytes = field(repr=False)
    """The 32 bytes of the public key."""
    public_key: Ed25519PublicKey = field(repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not _KID.fullmatch(self.kid):
            raise ValueError("a key ID is 8..64 characters of A-Z, a-z, 0-9, '_' and '-'")
        _check_cluster(self.cluster_id)
        if not isinstance(self.scope, KeyScope):
            raise ValueError("scope must be a KeyScope")
        _check_scope(self.cluster_id, self.scope)
        if len(self.raw) != _RAW_KEY_LENGTH:
            raise ValueError("an Ed25519 public key has 32 bytes")

    @classmethod
    def from_raw(
        cls, raw: bytes, cluster_id: int, scope: KeyScope | None = None, kid: str | None = None
    ) -> VerificationKey:
        """The key of 32 raw bytes; its ID is its thumbprint unless given, its scope the one of
        its cluster unless given."""
        try:
            public = Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ValueError("not an Ed25519 public key") from None
        return cls(
            kid=kid if kid is not None else key_id(raw),
            cluster_id=cluster_id,
            scope=scope if scope is not None else scope_of(cluster_id),
            raw=raw,
            public_key=public,
        )

    def to_jwk(self) -> dict[str, Any]:
        """The key as a public JWK (RFC 8037) with our two members."""
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64(self.raw),
            "kid": self.kid,
            "use": "sig",
            "alg": SIGNING_ALGORITHM,
            JWK_CLUSTER: self.cluster_id,
            JWK_SCOPE: self.scope.value,
        }

    @classmethod
    def from_jwk(cls, jwk: object, cluster_id: int | None = None) -> VerificationKey:
        """The key of a public JWK; raises KeyImportError if anything is missing or wrong, or if
        ``cluster_id`` is given and the JWK names another cluster."""
        if not isinstance(jwk, Mapping):
            raise KeyImportError("a JWK must be a JSON object")
        if "d" in jwk:
            raise KeyImportError("a JWK with a private part ('d') is refused: publish public keys only")
        if jwk.get("kty") != "OKP":
            raise KeyImportError("'kty' must be 'OKP'")
        if jwk.get("crv") != "Ed25519":
            raise KeyImportError("'crv' must be 'Ed25519'")
        if jwk.get("use", "sig") != "sig":
            raise KeyImportError("'use' must be 'sig'")
        if jwk.get("alg", SIGNING_ALGORITHM) != SIGNING_ALGORITHM:
            raise KeyImportError(f"'alg' must be {SIGNING_ALGORITHM!r}")
        x = jwk.get("x")
        if not isinstance(x, str) or not _B64_KEY.fullmatch(x):
            raise KeyImportError("'x' must be 32 bytes in base64url without padding")
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not _KID.fullmatch(kid):
            raise KeyImportError("'kid' must be 8..64 characters of A-Z, a-z, 0-9, '_' and '-'")
        cluster = jwk.get(JWK_CLUSTER)
        try:
            _check_cluster(cluster)
        except ValueError as exc:
            raise KeyImportError(f"{JWK_CLUSTER!r}: {exc}") from None
        assert isinstance(cluster, int)
        if cluster_id is not None and cluster != cluster_id:
            raise KeyImportError(f"{JWK_CLUSTER!r} is {cluster}, but the keys are of cluster {cluster_id}")
        raw_scope = jwk.get(JWK_SCOPE)
        try:
            scope = KeyScope(raw_scope if isinstance(raw_scope, str) else "")
        except ValueError:
            raise KeyImportError(f"{JWK_SCOPE!r} must be one of {[s.value for s in KeyScope]}") from None
        raw = base64.urlsafe_b64decode(x + "=")
        try:
            return cls.from_raw(raw, cluster, scope, kid)
        except ValueError as exc:
            raise KeyImportError(str(exc)) from None


class SigningKey:
    """A private Ed25519 key of this cluster, with its ID, cluster and scope. Its ``repr`` and its
    JWK show the public part only."""

    __slots__ = ("_private", "verification_key")

    def __init__(self, private: Ed25519PrivateKey, cluster_id: int) -> None:
        if not isinstance(private, Ed25519PrivateKey):
            raise TypeError("an Ed25519 private key is needed")
        raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._private = private
        self.verification_key = VerificationKey.from_raw(raw, cluster_id)

    @classmethod
    def generate(cls, cluster_id: int) -> SigningKey:
        """A new key from the operating system's CSPRNG."""
        return cls(Ed25519PrivateKey.generate(), cluster_id)

    @classmethod
    def from_private_bytes(cls, raw: bytes, cluster_id: int) -> SigningKey:
        """The key of its 32-byte seed (as :meth:`private_bytes` gives it)."""
        if not isinstance(raw, bytes) or len(raw) != _RAW_KEY_LENGTH:
            raise ValueError("an Ed25519 private key has 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(raw), cluster_id)

    def private_bytes(self) -> bytes:
        """The 32-byte seed, to store; nothing else should ever see it."""
        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def kid(self) -> str:
        return self.verification_key.kid

    @property
    def cluster_id(self) -> int:
        return self.verification_key.cluster_id

    @property
    def scope(self) -> KeyScope:
        return self.verification_key.scope

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A JWT of ``claims`` signed with this key (``alg`` EdDSA, ``kid`` in the header)."""
        return jwt.encode(dict(claims), self._private, algorithm=SIGNING_ALGORITHM, headers={"kid": self.kid})

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r}, cluster_id={self.cluster_id}, scope={self.scope.value!r})"

    def __reduce__(self) -> Any:
        raise TypeError("a signing key is not pickled")


class KeyRing:
    """Verification keys by key ID: this cluster's own and, fed from the federation directory,
    every other cluster's.

    ``local_cluster`` is the cluster this ring serves: its keys come from its key store (see
    :class:`voedger.auth.keystore.ClusterKeys`), never from :meth:`update_cluster`. The mapping
    is replaced as a whole on each change, so a reader never sees half an update.
    """

    __slots__ = ("_keys", "local_cluster", "revocations")

    def __init__(self, local_cluster: int = MAIN_CLUSTER_ID) -> None:
        self.local_cluster = _check_cluster(local_cluster)
        self._keys: dict[str, VerificationKey] = {}
        self.revocations = 0
        """Grows each time a key stops verifying (removed or replaced): whoever caches validated
        tokens drops its cache when it changes."""

    def __repr__(self) -> str:
        return f"KeyRing(local_cluster={self.local_cluster}, keys={len(self._keys)})"

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def get(self, kid: str) -> VerificationKey | None:
        """The key of ID ``kid``, or None."""
        return self._keys.get(kid)

    def clusters(self) -> list[int]:
        """The clusters the ring has keys of, in order."""
        return sorted({k.cluster_id for k in self._keys.values()})

    def keys_of(self, cluster_id: int) -> list[VerificationKey]:
        """The keys of one cluster, by key ID."""
        return sorted((k for k in self._keys.values() if k.cluster_id == cluster_id), key=lambda k: k.kid)

    def jwks_of(self, cluster_id: int) -> list[dict[str, Any]]:
        """The public keys of one cluster as JWKs, to publish in the federation directory."""
        return [k.to_jwk() for k in self.keys_of(cluster_id)]

    def update_cluster(self, cluster_id: int, jwks: Sequence[object] | Mapping[str, object]) -> None:
        """Make ``jwks`` (a list of JWKs, or a JWK set ``{"keys": [...]}``) the keys of another
        cluster: keys it no longer lists stop verifying, new ones start. Everything is checked
        before anything changes; raises KeyImportError naming the first fault:

        - a malformed JWK, or one that names another cluster;
        - a key of scope ``principal`` for a cluster other than the main one;
        - a key ID twice, or one that a key of another cluster already has (a worker cannot
          take over a key ID of the main cluster);
        - more than :data:`MAX_KEYS_PER_CLUSTER` keys;
        - the local cluster's keys (they come from its own key store).
        """
        try:
            _check_cluster(cluster_id)
        except ValueError as exc:
            raise KeyImportError(str(exc)) from None
        if cluster_id == self.local_cluster:
            raise KeyImportError(f"the keys of the local cluster ({cluster_id}) come from its key store")
        if isinstance(jwks, Mapping):
            items = jwks.get("keys")
            if not isinstance(items, list):
                raise KeyImportError("a JWK set must have a 'keys' list")
        elif isinstance(jwks, Sequence) and not isinstance(jwks, str | bytes):
            items = list(jwks)
        else:
            raise KeyImportError("expected a list of JWKs or a JWK set")
        if len(items) > MAX_KEYS_PER_CLUSTER:
            raise KeyImportError(f"{len(items)} keys for cluster {cluster_id}; at most {MAX_KEYS_PER_CLUSTER}")
        fresh: dict[str, VerificationKey] = {}
        for i, jwk in enumerate(items):
            try:
                key = VerificationKey.from_jwk(jwk, cluster_id)
            except KeyImportError as exc:
                raise KeyImportError(f"key {i} of cluster {cluster_id}: {exc}") from None
            if key.kid in fresh:
                raise KeyImportError(f"key {i} of cluster {cluster_id}: key ID {key.kid!r} is given twice")
            held = self._keys.get(key.kid)
            if held is not None and held.cluster_id != cluster_id:
                raise KeyImportError(
                    f"key {i} of cluster {cluster_id}: key ID {key.kid!r} belongs to cluster {held.cluster_id}"
                )
            fresh[key.kid] = key
        self._replace(cluster_id, fresh.values())

    def remove_cluster(self, cluster_id: int) -> None:
        """Forget every key of another cluster (it left the federation)."""
        self.update_cluster(cluster_id, [])

    def set_local(self, keys: Iterable[VerificationKey]) -> None:
        """Make ``keys`` the local cluster's keys (called by the local key store's owner)."""
        keys = list(keys)
        for key in keys:
            if key.cluster_id != self.local_cluster:
                raise ValueError(f"key {key.kid!r} is of cluster {key.cluster_id}, not the local one")
            held = self._keys.get(key.kid)
            if held is not None and held.cluster_id != self.local_cluster:
                raise ValueError(f"key ID {key.kid!r} belongs to cluster {held.cluster_id}")
        self._replace(self.local_cluster, keys)

    def _replace(self, cluster_id: int, keys: Iterable[VerificationKey]) -> None:
        updated = {kid: k for kid, k in self._keys.items() if k.cluster_id != cluster_id}
        updated.update((k.kid, k) for k in keys)
        if any(updated.get(kid) != key for kid, key in self._keys.items()):
            self.revocations += 1
        self._keys = updated
