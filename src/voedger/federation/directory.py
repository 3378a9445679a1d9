"""The federation directory: which clusters exist, where their routers are, which keys they sign with.

The main cluster (ID 1) keeps it; every cluster reads it to route a WSID of another cluster to
that cluster's router and to verify the tokens other clusters sign. A ``Directory`` is an
immutable snapshot with a version that grows with every change, encoded as JSON; ``parse``
refuses anything malformed with a message naming the first thing wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from voedger.structs import wsid as ws

__all__ = ["ClusterEntry", "Directory", "DirectoryError"]

_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,62}")
_REGION: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}")
_FIELDS: Final = frozenset({"id", "name", "region", "public_url", "internal_url", "keys"})


class DirectoryError(ValueError):
    """A directory or an entry that is not valid: the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class ClusterEntry:
    """One cluster of the federation."""

    id: int
    name: str
    region: str
    public_url: str
    """Where clients reach the cluster's routers (``https://eu.example.com``)."""
    internal_url: str
    """Where the routers of other clusters forward requests to (``http://10.0.0.5:8822``)."""
    keys: tuple[Mapping[str, Any], ...] = ()
    """The public keys (JWKs) that verify the tokens this cluster signs."""

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or not 1 <= self.id <= ws.MAX_CLUSTER_ID:
            raise DirectoryError(f"cluster ID {self.id!r} must be an integer from 1 to {ws.MAX_CLUSTER_ID}")
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise DirectoryError(f"cluster {self.id}: name {self.name!r} must be a letter then letters, digits, _ . -")
        if not isinstance(self.region, str) or not _REGION.fullmatch(self.region):
            raise DirectoryError(f"cluster {self.id}: region {self.region!r} must be letters, digits, _ . -")
        _check_url(self.id, "public_url", self.public_url)
        _check_url(self.id, "internal_url", self.internal_url)
        if not isinstance(self.keys, tuple) or not all(isinstance(k, Mapping) for k in self.keys):
            raise DirectoryError(f"cluster {self.id}: keys must be a list of JWK objects")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "region": self.region,
            "public_url": self.public_url,
            "internal_url": self.internal_url,
            "keys": [dict(k) for k in self.keys],
        }

    @classmethod
    def from_json(cls, data: Any) -> ClusterEntry:
        if not isinstance(data, dict):
            raise DirectoryError("a cluster entry must be a JSON object")
        unknown = sorted(set(data) - _FIELDS)
        if unknown:
            raise DirectoryError(f"a cluster entry has unknown field(s): {', '.join(unknown)}")
        missing = sorted(_FIELDS - {"keys"} - set(data))
        if missing:
            raise DirectoryError(f"a cluster entry lacks {', '.join(missing)}")
        keys = data.get("keys", [])
        if not isinstance(keys, list):
            raise DirectoryError(f"cluster {data.get('id')!r}: keys must be a list")
        return cls(data["id"], data["name"], data["region"], data["public_url"], data["internal_url"], tuple(keys))


@dataclass(frozen=True, slots=True)
class Directory:
    """Every cluster of the federation, by ID, at one version."""

    version: int = 0
    clusters: Mapping[int, ClusterEntry] = field(default_factory=dict)

    def get(self, cluster_id: int) -> ClusterEntry | None:
        return self.clusters.get(cluster_id)

    def knows(self, cluster_id: int) -> bool:
        return cluster_id in self.clusters

    def with_cluster(self, entry: ClusterEntry) -> Directory:
        """The next version, with ``entry`` added or replacing the cluster of the same ID. Names
        are unique: another cluster with the same name is refused."""
        for other in self.clusters.values():
            if other.id != entry.id and other.name == entry.name:
                raise DirectoryError(f"cluster {other.id} is already named {entry.name!r}")
        return replace(self, version=self.version + 1, clusters={**self.clusters, entry.id: entry})

    def without_cluster(self, cluster_id: int) -> Directory:
        if cluster_id not in self.clusters:
            raise DirectoryError(f"cluster {cluster_id} is not in the directory")
        if cluster_id == ws.MAIN_CLUSTER_ID and len(self.clusters) > 1:
            raise DirectoryError("the main cluster (1) can only be removed last")
        rest = {k: v for k, v in self.clusters.items() if k != cluster_id}
        return replace(self, version=self.version + 1, clusters=rest)

    def with_keys(self, cluster_id: int, keys: Sequence[Mapping[str, Any]]) -> Directory:
        """The next version, with the keys of ``cluster_id`` replaced (a cluster publishes its own)."""
        entry = self.clusters.get(cluster_id)
        if entry is None:
            raise DirectoryError(f"cluster {cluster_id} is not in the directory")
        return replace(
            self, version=self.version + 1, clusters={**self.clusters, cluster_id: replace(entry, keys=tuple(keys))}
        )

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "clusters": [self.clusters[k].to_json() for k in sorted(self.clusters)]}

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_json())

    @classmethod
    def parse(cls, raw: bytes) -> Directory:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise DirectoryError(f"the directory is not JSON: {exc}") from None
        if not isinstance(data, dict) or set(data) != {"version", "clusters"}:
            raise DirectoryError("the directory must be an object of version and clusters")
        version = data["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise DirectoryError("the directory's version must be a non-negative integer")
        if not isinstance(data["clusters"], list):
            raise DirectoryError("the directory's clusters must be a list")
        clusters: dict[int, ClusterEntry] = {}
        for item in data["clusters"]:
            entry = ClusterEntry.from_json(item)
            if entry.id in clusters:
                raise DirectoryError(f"cluster {entry.id} is listed twice")
            clusters[entry.id] = entry
        return cls(version, clusters)


def _check_url(cluster_id: int, name: str, url: object) -> None:
    if not isinstance(url, str):
        raise DirectoryError(f"cluster {cluster_id}: {name} must be a URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise DirectoryError(f"cluster {cluster_id}: {name} {url!r} must be http(s)://host[:port]")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise DirectoryError(f"cluster {cluster_id}: {name} {url!r} must carry no query, fragment or credentials")
