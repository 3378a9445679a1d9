"""Storage URLs: which driver to use and how to reach it.

- ``mem://``
- ``sqlite:///absolute/dir`` or ``sqlite://relative/dir``
- ``cassandra://[user:password@]host1[:port],host2,host3/?replication=3&consistency=QUORUM&dc=dc1``
  (``scylla://`` is the same). ``replication`` is a replication factor (SimpleStrategy) or a
  list of ``dc:factor`` pairs (NetworkTopologyStrategy), e.g. ``replication=dc1:3,dc2:3``.

  How the driver copes with a lost node (all in seconds; the defaults keep the loss of one node
  of three under ~3 s without acknowledgements, see docs/benchmarks.md):

  - ``connect_timeout`` (10): to open a connection to a node.
  - ``request_timeout`` (8): a request with no answer by then fails on the client (a
    coordinator that died silently). Keep it above the cluster's own timeouts (Cassandra's
    defaults: 2 s for writes, 5 s for reads), so that the cluster's answer, which the driver
    retries on the next coordinator, comes first.
  - ``speculative_delay`` (0.5): a read not answered by then is also sent to another
    coordinator, and the first answer wins; 0 turns this off. Only reads are sent twice.
  - ``batchlog_bypass`` (60): for this long after the driver saw a node go down, or a logged
    batch timed out at the coordinators' batch log, batches are made atomic with the storage's
    own batch log instead (coordinators keep picking a dead node for theirs until they convict
    it, ~18 s on a default Cassandra); 0 turns this off, and logged batches then retry until
    the node is convicted.
  - ``reconnect_max`` (4): the longest wait between attempts to reconnect to a node that is
    down (from 0.5 s, doubling).
  - ``heartbeat`` (5): an idle connection is probed this often, and given up (its node marked
    down) when a probe is not answered within as long.

  ``compression`` (``none``; or ``lz4``) compresses the frames between the server and the
  nodes. It saves bandwidth on a slow link (nodes in another region) and costs CPU at both ends:
  on a LAN, or a machine shared with the nodes, it costs more than it saves (on the development
  cluster, one machine, 5-11 % more commands a second without it: docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from voedger.storage.errors import StorageURLError

CONSISTENCY_LEVELS = frozenset(
    {"ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"}
)
DEFAULT_CQL_PORT = 9042
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_REQUEST_TIMEOUT = 8.0
DEFAULT_SPECULATIVE_DELAY = 0.5
DEFAULT_BATCHLOG_BYPASS = 60.0
DEFAULT_RECONNECT_MAX = 4.0
DEFAULT_HEARTBEAT = 5.0
COMPRESSIONS = ("none", "lz4")

_SECONDS: dict[str, tuple[float, float, bool]] = {
    # name: (smallest, largest, whether 0 is allowed to turn the behaviour off)
    "connect_timeout": (0.0, 300.0, False),
    "request_timeout": (0.0, 600.0, False),
    "speculative_delay": (0.0, 60.0, True),
    "batchlog_bypass": (0.0, 3600.0, True),
    "reconnect_max": (0.0, 600.0, False),
    "heartbeat": (0.0, 600.0, False),
}
_CASSANDRA_PARAMS = frozenset({"replication", "consistency", "dc", "keyspace_suffix", "compression", *_SECONDS})


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
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    speculative_delay: float = DEFAULT_SPECULATIVE_DELAY
    batchlog_bypass: float = DEFAULT_BATCHLOG_BYPASS
    reconnect_max: float = DEFAULT_RECONNECT_MAX
    heartbeat: float = DEFAULT_HEARTBEAT
    compression: str = "none"


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
    if (compression := one("compression")) is not None:
        if compression.lower() not in COMPRESSIONS:
            raise StorageURLError(
                f"storage URL {_redact(url)!r}: unknown compression {compression!r}; one of {', '.join(COMPRESSIONS)}"
            )
        kwargs["compression"] = compression.lower()
    for name, (low, high, zero_ok) in _SECONDS.items():
        if (text := one(name)) is None:
            continue
        try:
            seconds = float(text)
        except ValueError:
            seconds = -1.0
        if not (low < seconds <= high or (zero_ok and seconds == 0)):
            lowest = "0" if zero_ok else "more than 0"
            raise StorageURLError(f"storage URL {_redact(url)!r}: {name} must be {lowest} to {high:.0f} seconds")
        kwargs[name] = seconds
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
