"""Storage URLs: which driver to use and how to reach it.

- ``mem://``
- ``sqlite:///absolute/dir`` or ``sqlite://relative/dir``
- ``cassandra://[user:password@]host1[:port],host2,host3/?replication=3&consistency=QUORUM&dc=dc1``
  (``scylla://`` is the same). ``replication`` is a replication factor (SimpleStrategy) or a
  list of ``dc:factor`` pairs (NetworkTopologyStrategy), e.g. ``replication=dc1:3,dc2:3``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from voedger.storage.errors import StorageURLError

CONSISTENCY_LEVELS = frozenset(
    {"ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"}
)
_CASSANDRA_PARAMS = frozenset({"replication", "consistency", "dc", "keyspace_suffix", "connect_timeout"})
DEFAULT_CQL_PORT = 9042


@dataclass(frozen=True)
class MemURL:
    pass


@dataclass(frozen=True)
class SQLiteURL:
    directory: Path


@dataclass(frozen=True)
class CassandraURL:
    hosts: tuple[tuple[str, int], ...]
    replication: dict[str, str] = field(default_factory=lambda: {"class": "SimpleStrategy", "replication_factor": "1"})
    consistency: str = "QUORUM"
    dc: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    keyspace_suffix: str = ""
    connect_timeout: float = 10.0


StorageURL = MemURL | SQLiteURL | CassandraURL


def parse_storage_url(url: str) -> StorageURL:
    """Parse a storage URL or raise :class:`StorageURLError` saying what is wrong."""
    if not isinstance(url, str) or "://" not in url:
        raise StorageURLError(
            f"storage URL {url!r} is malformed: expected scheme://..., e.g. mem://, "
            "sqlite:///path/to/dir or cassandra://host:9042"
        )
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme == "mem":
        if rest.strip("/"):
            raise StorageURLError(f"storage URL {url!r}: mem:// takes no host or path")
        return MemURL()
    if scheme == "sqlite":
        if not rest or rest == "/":
            raise StorageURLError(f"storage URL {url!r}: sqlite:// needs a directory, e.g. sqlite://data")
        if "?" in rest or "#" in rest:
            raise StorageURLError(f"storage URL {url!r}: sqlite:// takes no parameters")
        return SQLiteURL(Path(unquote(rest)))
    if scheme in ("cassandra", "scylla"):
        return _parse_cassandra(url)
    raise StorageURLError(
        f"storage URL {url!r}: unknown scheme {scheme!r}; known schemes are mem, sqlite, cassandra, scylla"
    )


def _parse_cassandra(url: str) -> CassandraURL:
    parts = urlsplit(url)
    netloc = parts.netloc
    username = password = None
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, _, pwd = userinfo.partition(":")
        username, password = unquote(user) or None, unquote(pwd) or None
    if not netloc:
        raise StorageURLError(f"storage URL {_redact(url)!r}: no host given, e.g. cassandra://127.0.0.1:9042")
    hosts = tuple(_parse_host(h, url) for h in netloc.split(","))
    if parts.path not in ("", "/"):
        raise StorageURLError(f"storage URL {_redact(url)!r}: unexpected path {parts.path!r}")
    params = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(params) - _CASSANDRA_PARAMS)
    if unknown:
        raise StorageURLError(
            f"storage URL {_redact(url)!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_CASSANDRA_PARAMS))}"
        )

    def one(name: str) -> str | None:
        values = params.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise StorageURLError(f"storage URL {_redact(url)!r}: parameter {name!r} given twice")
        return values[0]

    kwargs: dict[str, object] = {}
    if (rep := one("replication")) is not None:
        kwargs["replication"] = _parse_replication(rep, url)
    if (cons := one("consistency")) is not None:
        if cons.upper() not in CONSISTENCY_LEVELS:
            raise StorageURLError(
                f"storage URL {_redact(url)!r}: unknown consistency {cons!r}; "
                f"one of {', '.join(sorted(CONSISTENCY_LEVELS))}"
            )
        kwargs["consistency"] = cons.upper()
    if (dc := one("dc")) is not None:
        if not dc:
            raise StorageURLError(f"storage URL {_redact(url)!r}: dc is empty")
        kwargs["dc"] = dc
    if (suffix := one("keyspace_suffix")) is not None:
        if not suffix.isalnum() or len(suffix) > 5 or suffix.lower() != suffix:
            raise StorageURLError(
                f"storage URL {_redact(url)!r}: keyspace_suffix must be 1-5 lowercase letters or digits"
            )
        kwargs["keyspace_suffix"] = suffix
    if (timeout := one("connect_timeout")) is not None:
        try:
            seconds = float(timeout)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= 300:
            raise StorageURLError(f"storage URL {_redact(url)!r}: connect_timeout must be 0-300 seconds")
        kwargs["connect_timeout"] = seconds
    return CassandraURL(hosts=hosts, username=username, password=password, **kwargs)  # type: ignore[arg-type]


def parse_host(text: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` as (host, port); the CQL port by default."""
    return _parse_host(text, text)


def _parse_host(text: str, url: str) -> tuple[str, int]:
    text = text.strip()
    if not text:
        raise StorageURLError(f"storage URL {_redact(url)!r}: empty host in the host list")
    host, sep, port_text = text.rpartition(":") if not text.startswith("[") else _split_v6(text, url)
    if not sep:
        return text, DEFAULT_CQL_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise StorageURLError(f"storage URL {_redact(url)!r}: bad port {port_text!r} for host {host!r}")
    if not host:
        raise StorageURLError(f"storage URL {_redact(url)!r}: empty host before port {port_text}")
    return host, int(port_text)


def _split_v6(text: str, url: str) -> tuple[str, str, str]:
    end = text.find("]")
    if end < 0:
        raise StorageURLError(f"storage URL {_redact(url)!r}: unclosed '[' in host {text!r}")
    host, rest = text[1:end], text[end + 1 :]
    if not rest:
        return host, "", ""
    if not rest.startswith(":"):
        raise StorageURLError(f"storage URL {_redact(url)!r}: unexpected {rest!r} after host {host!r}")
    return host, ":", rest[1:]


def _parse_replication(text: str, url: str) -> dict[str, str]:
    if text.isdigit():
        if int(text) < 1:
            raise StorageURLError(f"storage URL {_redact(url)!r}: replication factor must be at least 1")
        return {"class": "SimpleStrategy", "replication_factor": text}
    result = {"class": "NetworkTopologyStrategy"}
    for pair in text.split(","):
        dc, sep, factor = pair.partition(":")
        if not sep or not dc or not factor.isdigit() or int(factor) < 1:
            raise StorageURLError(
                f"storage URL {_redact(url)!r}: replication {text!r} must be a factor (e.g. 3) "
                "or dc:factor pairs (e.g. dc1:3,dc2:3)"
            )
        result[dc] = factor
    return result


def _redact(url: str) -> str:
    """The URL without its password, so that an error message never shows a secret."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
