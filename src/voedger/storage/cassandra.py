"""The cluster driver: Apache Cassandra or Scylla over CQL (the scylla-driver package).

Layout follows Voedger's own driver: one keyspace per application, holding one table
``values (p_key blob, c_col blob, value blob, PRIMARY KEY ((p_key), c_col))``. Plain reads and
writes run at QUORUM (configurable), so an acknowledged write survives the loss of a minority of
replicas; conditional writes are lightweight transactions (Paxos) with SERIAL consistency.

The driver's own I/O thread runs the requests; each ``ResponseFuture`` is bridged to an asyncio
future with ``call_soon_threadsafe``, so no coroutine here ever blocks the event loop. The few
blocking driver calls (connect, prepare, shutdown) run in a worker thread.

Losing one node of three must cost seconds, not the ~18 s a coordinator takes to convict it:

- requests time out on the client after ``request_timeout`` (a coordinator that died silently);
  the driver marks a node down at its first connection error and reconnects quickly;
- statements safe to run twice (reads, plain puts, batches of unconditional puts: the same
  values with the same client timestamp) are retried on the NEXT coordinator after a timeout,
  an unavailable or a connection error; reads also go to a second coordinator when the first
  has not answered within ``speculative_delay``;
- conditional writes (LWT) are never resent blindly: when their outcome is unknown, a read at
  SERIAL tells it (or the caller hears "unavailable");
- a logged batch cannot be written while the coordinators still pick the dead node for their
  batch log, so then the batch goes through a batch log of the storage's own
  (``cassandra_batchlog``), as soon as the driver sees a node go down (``cassandra_nodes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import struct
from collections import Counter
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cassandra import (
    AlreadyExists,
    ConsistencyLevel,
    CoordinationFailure,
    OperationTimedOut,
    Timeout,
    Unavailable,
    WriteTimeout,
    WriteType,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.connection import ConnectionException
from cassandra.policies import (
    ConstantSpeculativeExecutionPolicy,
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    RetryPolicy,
    TokenAwarePolicy,
)
from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage
from cassandra.query import BatchStatement, BatchType, BoundStatement, SimpleStatement, tuple_factory

from voedger.storage.cassandra_batchlog import TABLE as BATCHLOG_TABLE
from voedger.storage.cassandra_batchlog import BatchLog
from voedger.storage.cassandra_batchlog import create_table_cql as batchlog_table_cql
from voedger.storage.cassandra_nodes import NodeWatch
from voedger.storage.contract import (
    AppStorage,
    AppStorageFactory,
    BatchItem,
    Capabilities,
    PartitionRow,
    by_partition,
    check_conditional_batch,
    check_key,
    check_ttl,
    check_value,
    range_is_empty,
)
from voedger.storage.errors import (
    StorageAlreadyExistsError,
    StorageDoesNotExistError,
    StorageError,
    StorageUnavailableError,
)
from voedger.storage.url import (
    COMPRESSIONS,
    DEFAULT_BATCHLOG_BYPASS,
    DEFAULT_HEARTBEAT,
    DEFAULT_RECONNECT_MAX,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SPECULATIVE_DELAY,
    parse_host,
)

if TYPE_CHECKING:
    from voedger.storage.url import CassandraURL

log = logging.getLogger(__name__)

DEFAULT_REPLICATION: Mapping[str, str] = {"class": "SimpleStrategy", "replication_factor": "1"}
READ_PAGE_SIZE = 1000
"""Rows per page of a range read: bounded memory whatever the partition's size."""

GET_BATCH_CHUNK = 100
"""Clustering values per ``IN`` query of ``get_batch``; bigger batches run as concurrent chunks."""

TABLE = "values"
READS = "voedger-reads"
"""The execution profile of single-page reads: the default one plus speculative execution.
Not for paged reads (see ``_Bridge.pages``)."""

SCHEMA_TIMEOUT = 60.0
"""Seconds a schema change may take (they wait for every node, and are rare)."""

_KEYSPACE_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_CONSISTENCY_NAMES = (
    "ANY",
    "ONE",
    "TWO",
    "THREE",
    "QUORUM",
    "ALL",
    "LOCAL_QUORUM",
    "EACH_QUORUM",
    "LOCAL_ONE",
)
_PLAIN = "plain"
_LWT = "lwt"


def replication_factor(replication: Mapping[str, object]) -> int:
    """The largest number of copies one data centre keeps, from a CQL replication map."""
    factors: list[int] = []
    for key, value in replication.items():
        if key == "class":
            continue
        try:
            factors.append(int(str(value)))
        except ValueError:
            continue
    return max(factors, default=1)


def _cql_map(replication: Mapping[str, object]) -> str:
    """``{'class': 'SimpleStrategy', 'replication_factor': '3'}`` as CQL text, quoted safely."""

    def quote(text: object) -> str:
        return "'" + str(text).replace("'", "''") + "'"

    return "{" + ", ".join(f"{quote(k)}: {quote(v)}" for k, v in replication.items()) + "}"


def _describe_hosts(hosts: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{h}:{p}" for h, p in hosts)


def _is_unavailable(exc: BaseException) -> bool:
    """Errors that mean "the cluster cannot serve this now", as opposed to a bad request."""
    return isinstance(
        exc,
        (
            Unavailable,
            Timeout,
            CoordinationFailure,
            OperationTimedOut,
            NoHostAvailable,
            ConnectionException,
            OverloadedErrorMessage,
            IsBootstrappingErrorMessage,
            ConnectionError,
            TimeoutError,
        ),
    )


def _translate(exc: BaseException, what: str) -> StorageError:
    """A storage error with a message a user can act on, instead of a driver traceback."""
    if isinstance(exc, StorageError):
        return exc
    name = type(exc).__name__
    detail = str(exc) or name
    if _is_unavailable(exc):
        return StorageUnavailableError(f"Cassandra could not {what}: {name}: {detail}")
    return StorageError(f"Cassandra refused to {what}: {name}: {detail}")


PREPARE_ATTEMPTS = 30
"""Tries to prepare a keyspace's statements, a second apart, while its new table spreads."""

_BIGINT = struct.Struct(">q")
"""A CQL bigint's serialized form (a write timestamp in microseconds)."""

ROWS_BATCH_BYTES = 64 * 1024
"""Bytes of rows (keys and values) an unlogged batch of ``put_rows_at`` carries at most, unless
one storage partition's rows alone are more (then that partition goes alone, as a batch of one
partition). Scylla warns of a batch over 128 KiB and refuses one of several partitions over
1 MiB by default (the development Cassandra: 1 MiB and 8 MiB); half the warning leaves room for
what a node counts beyond the bytes (timestamps, cell overhead)."""


def row_batches(
    items: Sequence[BatchItem], replicas: Callable[[bytes], Hashable], limit: int = ROWS_BATCH_BYTES
) -> list[list[BatchItem]]:
    """``items`` as unlogged batches: the rows of a storage partition always in one batch, and
    the partitions with the same ``replicas`` (of their partition key) together, up to ``limit``
    bytes a batch.

    A batch goes to one of its first partition's replicas (token-aware routing), which
    coordinates it: when every partition of the batch has the same replicas, the nodes do no
    forwarding that a batch per partition would not, and the group's derived rows are one request
    instead of one per storage partition (about ten: its workspaces' WLog, records and views).
    Measured on the three development nodes (RF 3, so one replica set): a quarter more commands/s
    through one process and through three (docs/benchmarks.md, 2026-12-07). A batch still spans
    partitions, so it is atomic per partition only, as before.
    """
    sets: dict[Hashable, list[list[BatchItem]]] = {}
    for p_key, rows in by_partition(items).items():
        sets.setdefault(replicas(p_key), []).append(rows)
    batches: list[list[BatchItem]] = []
    for partitions in sets.values():
        batch: list[BatchItem] = []
        size = 0
        for rows in partitions:
            rows_size = sum(len(p) + len(c) + len(v) for p, c, v in rows)
            if batch and size + rows_size > limit:
                batches.append(batch)
                batch, size = [], 0
            batch.extend(rows)
            size += rows_size
        if batch:
            batches.append(batch)
    return batches


CAS_WRITE_UNKNOWN = 0x1700
"""Cassandra's "CAS operation result is unknown" (a proposal accepted by fewer than a quorum,
e.g. while a node goes down); the driver knows no class for it."""


REQUEST_KINDS = ("read", "write", "conditional", "batch", "logged_batch", "conditional_batch", "other")
"""What ``CassandraStorageFactory.requests`` counts: single-row reads and range reads, plain writes,
lightweight transactions (Paxos), unlogged and logged batches, conditional batches, and the rest
(schema, the own batch log, system tables)."""
_KIND = "voedger_kind"
"""The attribute of a prepared statement that says its kind."""


def request_kind(statement: Any) -> str:
    """The kind (``REQUEST_KINDS``) of a statement as it is handed to the driver: the one it is
    marked with (prepared statements, conditional batches: Cassandra does not tell the driver
    which statements are lightweight transactions, Scylla does), else by its type."""
    kind = getattr(statement, _KIND, None)
    if kind is not None:
        return str(kind)
    if isinstance(statement, BoundStatement):
        return str(getattr(statement.prepared_statement, _KIND, "other"))
    if isinstance(statement, BatchStatement):
        if statement.is_lwt():
            return "conditional_batch"
        return "logged_batch" if statement.batch_type == BatchType.LOGGED else "batch"
    return "other"


class _Bridge:
    """Runs driver requests and hands their results to the event loop that asked for them;
    counts them by kind in ``requests``."""

    def __init__(self, session: Any, requests: Counter[str] | None = None) -> None:
        self.session = session
        self.requests: Counter[str] = requests if requests is not None else Counter()

    def start(
        self,
        statement: Any,
        params: Sequence[Any] | None,
        host: Any = None,
        profile: object = EXEC_PROFILE_DEFAULT,
        timeout: float | None = None,
    ) -> asyncio.Future[list[Any]]:
        """Send a request now; the future gets its first page of rows or the driver's exception.

        ``host`` sends it to that node as coordinator (schema checks need it); ``timeout``
        replaces the profile's request timeout (schema changes take longer).
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[Any]] = loop.create_future()
        self.requests[request_kind(statement)] += 1
        if timeout is None:
            response = self.session.execute_async(statement, params, host=host, execution_profile=profile)
        else:
            response = self.session.execute_async(
                statement, params, host=host, execution_profile=profile, timeout=timeout
            )
        _attach(loop, response, lambda: fut)
        return fut

    async def run_raw(
        self,
        statement: Any,
        params: Sequence[Any] | None,
        host: Any = None,
        profile: object = EXEC_PROFILE_DEFAULT,
        timeout: float | None = None,
    ) -> list[Any]:
        """The first page of rows; driver exceptions are raised as they are."""
        return await self.start(statement, params, host, profile, timeout)

    async def run(
        self,
        statement: Any,
        params: Sequence[Any] | None,
        what: str,
        profile: object = EXEC_PROFILE_DEFAULT,
        timeout: float | None = None,
    ) -> list[Any]:
        """Like :meth:`run_raw`, with driver exceptions turned into storage errors."""
        try:
            return await self.run_raw(statement, params, None, profile, timeout)
        except Exception as exc:
            raise _translate(exc, what) from None

    async def pages(self, statement: Any, what: str) -> AsyncIterator[list[Any]]:
        """Each page of a paged query, fetching the next only when the previous was consumed.

        Never with speculative execution: measured with scylla-driver 3.29, a page fetched
        while an earlier speculative attempt was still out came back as the first page again
        (25 reads in 30 of a 4,500-row partition went wrong with a 1 ms delay).
        """
        loop = asyncio.get_running_loop()
        holder: list[asyncio.Future[list[Any]]] = [loop.create_future()]
        try:
            self.requests["read"] += 1
            response = self.session.execute_async(statement, execution_profile=EXEC_PROFILE_DEFAULT)
            _attach(loop, response, lambda: holder[0])
            while True:
                rows = await holder[0]
                more = response.has_more_pages
                yield rows
                if not more:
                    return
                holder[0] = loop.create_future()
                self.requests["read"] += 1  # each page is a request of its own
                response.start_fetching_next_page()
        except Exception as exc:
            raise _translate(exc, what) from None


def _attach(loop: asyncio.AbstractEventLoop, response: Any, current: Any) -> None:
    """Route a ResponseFuture's page results and errors (driver thread) to ``current()`` (loop)."""

    def resolve(result: Any, failed: bool) -> None:
        fut: asyncio.Future[Any] = current()
        if fut.done():
            return
        if failed:
            fut.set_exception(result)
        else:
            fut.set_result(result)

    def deliver(result: Any, failed: bool) -> None:
        # The loop may be closed by the time a request ends; then nobody waits any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(resolve, result, failed)

    response.add_callbacks(
        callback=lambda rows: deliver(list(rows) if rows is not None else [], False),
        errback=lambda exc: deliver(exc, True),
    )


class _Statements:
    """The prepared statements of one keyspace (prepared once, reused by every call)."""

    put: Any
    put_at: Any
    put_ttl: Any
    get: Any
    get_in: Any
    read_all: Any
    read_from: Any
    read_to: Any
    read_between: Any
    insert_ine: Any
    cas: Any
    cad: Any
    batch_ine: Any
    batch_if: Any
    ttl: Any
    serial_get: Any

    QUERIES: Mapping[str, tuple[str, str]] = {
        "put": ("INSERT INTO {t} (p_key, c_col, value) VALUES (?, ?, ?)", _PLAIN),
        "put_at": ("INSERT INTO {t} (p_key, c_col, value) VALUES (?, ?, ?) USING TIMESTAMP ?", _PLAIN),
        "put_ttl": ("INSERT INTO {t} (p_key, c_col, value) VALUES (?, ?, ?) USING TTL ?", _PLAIN),
        "get": ("SELECT value FROM {t} WHERE p_key = ? AND c_col = ?", _PLAIN),
        "get_in": ("SELECT c_col, value FROM {t} WHERE p_key = ? AND c_col IN ?", _PLAIN),
        "read_all": ("SELECT c_col, value FROM {t} WHERE p_key = ?", _PLAIN),
        "read_from": ("SELECT c_col, value FROM {t} WHERE p_key = ? AND c_col >= ?", _PLAIN),
        "read_to": ("SELECT c_col, value FROM {t} WHERE p_key = ? AND c_col < ?", _PLAIN),
        "read_between": (
            "SELECT c_col, value FROM {t} WHERE p_key = ? AND c_col >= ? AND c_col < ?",
            _PLAIN,
        ),
        "insert_ine": (
            "INSERT INTO {t} (p_key, c_col, value) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?",
            _LWT,
        ),
        "cas": ("UPDATE {t} USING TTL ? SET value = ? WHERE p_key = ? AND c_col = ? IF value = ?", _LWT),
        "cad": ("DELETE FROM {t} WHERE p_key = ? AND c_col = ? IF value = ?", _LWT),
        # The conditions of a conditional batch (``put_batch_if``); no TTL: the row stays.
        "batch_ine": ("INSERT INTO {t} (p_key, c_col, value) VALUES (?, ?, ?) IF NOT EXISTS", _LWT),
        "batch_if": ("UPDATE {t} SET value = ? WHERE p_key = ? AND c_col = ? IF value = ?", _LWT),
        "ttl": ("SELECT TTL(value) FROM {t} WHERE p_key = ? AND c_col = ?", _PLAIN),
        # A read at SERIAL finishes any Paxos round in flight: it tells what a timed-out LWT did.
        "serial_get": ("SELECT value FROM {t} WHERE p_key = ? AND c_col = ?", _PLAIN),
    }

    @classmethod
    async def prepare(cls, session: Any, keyspace: str, consistency: int, serial: int) -> _Statements:
        table = f'"{keyspace}"."{TABLE}"'

        def prepare_all() -> _Statements:
            stmts = cls()
            for name, (query, kind) in cls.QUERIES.items():
                prepared = session.prepare(query.format(t=table))
                plain = "read" if query.startswith("SELECT") else "write"
                setattr(prepared, _KIND, "conditional" if kind == _LWT else plain)
                prepared.consistency_level = serial if name == "serial_get" else consistency
                if kind == _LWT:
                    prepared.serial_consistency_level = serial
                    prepared.retry_policy = _LWTRetryPolicy()
                else:
                    prepared.is_idempotent = True
                setattr(stmts, name, prepared)
            return stmts

        try:
            return await asyncio.to_thread(prepare_all)
        except Exception as exc:
            raise _translate(exc, f"prepare the statements of keyspace {keyspace}") from None


def _idempotent(query: Any) -> bool:
    """Statements marked safe to run twice: plain reads and puts, batches of unconditional puts.

    A conditional statement (an LWT, a conditional batch) never carries the mark, so whatever
    builds one cannot have it resent by accident.
    """
    return bool(getattr(query, "is_idempotent", False))


class _WriteRetryPolicy(RetryPolicy):  # type: ignore[misc]
    """Retries what is safe to retry, on the NEXT coordinator: the one that failed may be the
    node that just died, or still waiting on it.

    Plain writes and batches carry a client timestamp that a retry reuses, so writing again is
    harmless. A logged batch that times out at BATCH_LOG (its coordinator picked a dead node,
    not yet convicted, for its batch log) is not retried when the storage has a batch log of its
    own to fall back on (``batch_log_retries=0``): retrying would fail the same way until the
    coordinators' failure detector convicts the node, ~18 s on a default Cassandra.
    """

    WRITE_RETRIES = 2
    READ_RETRIES = 1
    REQUEST_ERROR_RETRIES = 2
    BATCH_LOG_RETRIES = 12
    """Without a batch log of our own: at a 2 s write timeout this outlasts a default detector."""

    BATCH_LOG_WAIT = 30.0
    """The client timeout of such a logged batch, so that its retries can run their course."""

    def __init__(self, batch_log_retries: int = 0) -> None:
        self.batch_log_retries = batch_log_retries

    def on_write_timeout(
        self,
        query: Any,
        consistency: Any,
        write_type: Any,
        required_responses: int,
        received_responses: int,
        retry_num: int,
    ) -> tuple[int, Any]:
        if not _idempotent(query):
            return self.RETHROW, None
        if write_type == WriteType.BATCH_LOG:
            # Nothing of the batch was applied yet; the same coordinator may pick other nodes.
            return (self.RETRY, consistency) if retry_num < self.batch_log_retries else (self.RETHROW, None)
        plain = write_type in (WriteType.SIMPLE, WriteType.BATCH, WriteType.UNLOGGED_BATCH)
        if plain and retry_num < self.WRITE_RETRIES:
            return self.RETRY_NEXT_HOST, consistency
        return self.RETHROW, None

    def on_read_timeout(
        self,
        query: Any,
        consistency: Any,
        required_responses: int,
        received_responses: int,
        data_retrieved: bool,
        retry_num: int,
    ) -> tuple[int, Any]:
        if _idempotent(query) and retry_num < self.READ_RETRIES:
            return self.RETRY_NEXT_HOST, consistency
        return self.RETHROW, None

    def on_unavailable(
        self, query: Any, consistency: Any, required_replicas: int, alive_replicas: int, retry_num: int
    ) -> tuple[int, Any]:
        # The coordinator refused before doing anything: safe for any statement, once.
        return (self.RETRY_NEXT_HOST, None) if retry_num == 0 else (self.RETHROW, None)

    def on_request_error(self, query: Any, consistency: Any, error: Any, retry_num: int) -> tuple[int, Any]:
        # Overloaded and bootstrapping nodes refuse before executing; a broken connection leaves
        # the outcome unknown, which only an idempotent statement may shrug off.
        refused = isinstance(error, (OverloadedErrorMessage, IsBootstrappingErrorMessage))
        if (refused or _idempotent(query)) and retry_num < self.REQUEST_ERROR_RETRIES:
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None


class _LWTRetryPolicy(RetryPolicy):  # type: ignore[misc]
    """Never resend a conditional write blindly: a second try of an applied LWT reports "not
    applied". The error comes back instead, and the storage learns the outcome at SERIAL.

    Only an Unavailable is retried (once, on the next coordinator): it is refused before Paxos
    begins. Anything that builds a conditional statement (a conditional batch too) must set
    this policy on it.
    """

    def on_write_timeout(self, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        return self.RETHROW, None

    def on_read_timeout(self, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        return self.RETHROW, None

    def on_request_error(self, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        return self.RETHROW, None

    def on_unavailable(
        self, query: Any, consistency: Any, required_replicas: int, alive_replicas: int, retry_num: int
    ) -> tuple[int, Any]:
        return (self.RETRY_NEXT_HOST, None) if retry_num == 0 else (self.RETHROW, None)


def _is_batch_log_timeout(exc: BaseException) -> bool:
    return isinstance(exc, WriteTimeout) and getattr(exc, "write_type", None) == WriteType.BATCH_LOG


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Mark a finished future's exception as seen (its outcome no longer matters to anyone)."""
    if not fut.cancelled():
        fut.exception()


class CassandraAppStorage(AppStorage):
    """One application's keyspace.

    ``batchlog`` is the keyspace's own batch log, used for batches while ``watch`` says a
    coordinator may still pick a dead node for its batch log; None in a keyspace created before
    that table existed, whose logged batches then retry until the coordinators convict the node.
    """

    def __init__(
        self,
        bridge: _Bridge,
        keyspace: str,
        stmts: _Statements,
        capabilities: Capabilities,
        watch: NodeWatch | None = None,
        batchlog: BatchLog | None = None,
    ) -> None:
        self._bridge = bridge
        self.keyspace = keyspace
        self._s = stmts
        self.capabilities = capabilities
        self._watch = watch if watch is not None else NodeWatch(0.0)
        self.batchlog = batchlog if self._watch.bypass > 0 else None
        self._legacy_retry = (
            None if self.batchlog is not None else _WriteRetryPolicy(_WriteRetryPolicy.BATCH_LOG_RETRIES)
        )

    async def put(self, p_key: bytes, c_col: bytes, value: bytes) -> None:
        check_key(p_key, c_col)
        check_value(value)
        await self._bridge.run(self._s.put, (p_key, c_col, value), "write a row")

    async def put_batch(self, items: Sequence[BatchItem]) -> None:
        await self._put_batch(items, None)

    async def put_batch_at(self, items: Sequence[BatchItem], at: float) -> None:
        await self._put_batch(items, int(at * 1_000_000))

    async def put_rows_at(self, items: Sequence[BatchItem], at: float) -> None:
        for p_key, c_col, value in items:
            check_key(p_key, c_col)
            check_value(value)
        micros = _BIGINT.pack(int(at * 1_000_000))
        put = self._s.put_at
        metadata = self._bridge.session.cluster.metadata
        batches: list[BatchStatement] = []
        for rows in row_batches(items, lambda p_key: frozenset(metadata.get_replicas(self.keyspace, p_key))):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=put.consistency_level)
            batch.is_idempotent = True  # the same values at the same timestamp
            for p_key, c_col, value in rows:
                bound = BoundStatement(put)
                bound.values = [p_key, c_col, value, micros]
                batch.add(bound)
            batches.append(batch)
        what = f"write {len(items)} rows in {len(batches)} batches"
        results = await asyncio.gather(*(self._bridge.run(b, None, what) for b in batches), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _put_batch(self, items: Sequence[BatchItem], micros: int | None) -> None:
        """A logged batch (``micros``: the rows' write time; None: the driver's now)."""
        for p_key, c_col, value in items:
            check_key(p_key, c_col)
            check_value(value)
        if not items:
            return
        batchlog = self.batchlog
        if batchlog is not None and self._watch.bypassing():
            await batchlog.write(items, micros)
            return
        put = self._s.put if micros is None else self._s.put_at
        batch = BatchStatement(batch_type=BatchType.LOGGED, consistency_level=put.consistency_level)
        batch.is_idempotent = True  # unconditional puts: the same values at the same timestamp
        for p_key, c_col, value in items:
            # The columns are blobs (and a bigint timestamp), whose bytes are their serialized
            # form: setting the values skips ``bind``'s per-column checks and encoding (a third
            # of the cost; on one Cassandra node that was ~40 us of the event loop per 12-row group).
            bound = BoundStatement(put)
            bound.values = [p_key, c_col, value] if micros is None else [p_key, c_col, value, _BIGINT.pack(micros)]
            batch.add(bound)
        what = f"write a batch of {len(items)} rows"
        if batchlog is None:
            batch.retry_policy = self._legacy_retry
            await self._bridge.run(batch, None, what, timeout=_WriteRetryPolicy.BATCH_LOG_WAIT)
            return
        await self._logged_or_own(batch, items, batchlog, what, micros)

    async def _logged_or_own(
        self, batch: Any, items: Sequence[BatchItem], batchlog: BatchLog, what: str, micros: int | None = None
    ) -> None:
        """A logged batch, or the own batch log if it stalls on a node that just died.

        The logged batch waits out the coordinator's write timeout when a node dies under it;
        the driver usually knows sooner, and then the batch is written again through the own
        log at once. The logged batch may still apply later: the same values, at an older
        timestamp, so nothing newer is overwritten.
        """
        loop = asyncio.get_running_loop()
        logged = self._bridge.start(batch, None)
        logged.add_done_callback(_retrieve)
        wake: asyncio.Future[None] = loop.create_future()

        def nudge(_: object = None) -> None:
            if not wake.done():
                wake.set_result(None)

        logged.add_done_callback(nudge)
        unsubscribe = self._watch.subscribe(nudge)
        try:
            await wake
        finally:
            unsubscribe()
        if logged.done():
            exc = logged.exception()
            if exc is None:
                return
            if not _is_batch_log_timeout(exc):
                raise _translate(exc, what) from None
            self._watch.trip()
            log.warning("a logged batch timed out at the batch log (a node is down?); using the own batch log")
        await batchlog.write(items, micros)

    async def get(self, p_key: bytes, c_col: bytes) -> bytes | None:
        check_key(p_key, c_col)
        rows = await self._bridge.run(self._s.get, (p_key, c_col), "read a row", READS)
        return bytes(rows[0][0]) if rows else None

    async def get_batch(self, p_key: bytes, c_cols: Sequence[bytes]) -> list[bytes | None]:
        for c_col in c_cols:
            check_key(p_key, c_col)
        if not c_cols:
            return []
        unique = list(dict.fromkeys(c_cols))
        chunks = [unique[i : i + GET_BATCH_CHUNK] for i in range(0, len(unique), GET_BATCH_CHUNK)]
        results = await asyncio.gather(
            *(self._bridge.run(self._s.get_in, (p_key, chunk), "read rows", READS) for chunk in chunks)
        )
        found: dict[bytes, bytes] = {}
        for rows in results:
            for c_col, value in rows:
                found[bytes(c_col)] = bytes(value)
        return [found.get(c) for c in c_cols]

    async def read(self, p_key: bytes, start: bytes = b"", finish: bytes = b"") -> AsyncIterator[tuple[bytes, bytes]]:
        check_key(p_key, start)
        check_key(p_key, finish)
        if range_is_empty(start, finish):
            return
        params: tuple[bytes, ...]
        if start and finish:
            stmt, params = self._s.read_between, (p_key, start, finish)
        elif start:
            stmt, params = self._s.read_from, (p_key, start)
        elif finish:
            stmt, params = self._s.read_to, (p_key, finish)
        else:
            stmt, params = self._s.read_all, (p_key,)
        bound = stmt.bind(params)
        bound.fetch_size = READ_PAGE_SIZE
        async for page in self._bridge.pages(bound, "read a range of rows"):
            for c_col, value in page:
                yield bytes(c_col), bytes(value)

    async def _lwt(self, stmt: Any, params: Sequence[Any] | None, what: str) -> bool | None:
        """Run a conditional statement: True/False if it applied, None if its outcome is unknown."""
        try:
            rows = await self._bridge.run_raw(stmt, params)
        except (WriteTimeout, OperationTimedOut, ConnectionException) as exc:
            # The proposal may or may not have been accepted by a quorum.
            log.warning("the outcome of a conditional write is unknown (%s); asking at SERIAL", exc)
            return None
        except Exception as exc:
            if getattr(exc, "code", None) == CAS_WRITE_UNKNOWN:
                log.warning("the outcome of a conditional write is unknown (%s); asking at SERIAL", exc)
                return None
            raise _translate(exc, what) from None
        return bool(rows[0][0]) if rows else False

    async def _serial_get(self, p_key: bytes, c_col: bytes, what: str) -> bytes | None:
        rows = await self._bridge.run(self._s.serial_get, (p_key, c_col), f"learn whether {what} applied")
        return bytes(rows[0][0]) if rows else None

    async def insert_if_not_exists(self, p_key: bytes, c_col: bytes, value: bytes, ttl: int = 0) -> bool:
        check_key(p_key, c_col)
        check_value(value)
        check_ttl(ttl)
        what = "insert a row if it does not exist"
        for _ in range(2):
            applied = await self._lwt(self._s.insert_ine, (p_key, c_col, value, ttl), what)
            if applied is not None:
                return applied
            current = await self._serial_get(p_key, c_col, what)
            if current is not None:
                return current == value
        raise StorageUnavailableError(f"Cassandra could not {what}: the outcome stayed unknown")

    async def compare_and_swap(self, p_key: bytes, c_col: bytes, old: bytes, new: bytes, ttl: int = 0) -> bool:
        check_key(p_key, c_col)
        check_value(old)
        check_value(new)
        check_ttl(ttl)
        what = "compare and swap a row"
        for _ in range(2):
            applied = await self._lwt(self._s.cas, (ttl, new, p_key, c_col, old), what)
            if applied is not None:
                return applied
            current = await self._serial_get(p_key, c_col, what)
            if current != old:
                return current == new
            # Still ``old``: either it did not apply, or it wrote old == new. Running it again
            # is harmless then (it also renews the TTL), so do so.
        raise StorageUnavailableError(f"Cassandra could not {what}: the outcome stayed unknown")

    async def put_ttl(self, p_key: bytes, c_col: bytes, value: bytes, ttl: int) -> None:
        check_key(p_key, c_col)
        check_value(value)
        check_ttl(ttl)
        await self._bridge.run(self._s.put_ttl, (p_key, c_col, value, ttl), "write a row with a TTL")

    async def compare_and_delete(self, p_key: bytes, c_col: bytes, expected: bytes) -> bool:
        check_key(p_key, c_col)
        check_value(expected)
        what = "compare and delete a row"
        for _ in range(2):
            applied = await self._lwt(self._s.cad, (p_key, c_col, expected), what)
            if applied is not None:
                return applied
            current = await self._serial_get(p_key, c_col, what)
            if current != expected:
                return current is None
        raise StorageUnavailableError(f"Cassandra could not {what}: the outcome stayed unknown")

    async def put_batch_if(
        self, p_key: bytes, c_col: bytes, expected: bytes | None, new: bytes, rows: Sequence[PartitionRow]
    ) -> bool:
        check_conditional_batch(p_key, c_col, expected, new, rows)
        s = self._s
        batch = BatchStatement(
            batch_type=BatchType.LOGGED,
            consistency_level=s.batch_if.consistency_level,
            serial_consistency_level=s.batch_if.serial_consistency_level,
        )
        batch.retry_policy = _LWTRetryPolicy()
        setattr(batch, _KIND, "conditional_batch")
        if expected is None:
            batch.add(s.batch_ine, (p_key, c_col, new))
        else:
            batch.add(s.batch_if, (new, p_key, c_col, expected))
        for row_col, value in rows:
            bound = BoundStatement(s.put)
            bound.values = [p_key, row_col, value]
            batch.add(bound)
        what = f"write a conditional batch of {len(rows) + 1} rows"
        for _ in range(2):
            applied = await self._lwt(batch, None, what)
            if applied is not None:
                return applied
            # A read at SERIAL finishes the round in flight: the condition row then tells.
            current = await self._serial_get(p_key, c_col, what)
            if current == new and new != expected:
                return True
            if current != expected:
                # Another writer's value: ours may have applied before it. Not "refused".
                break
            # Still ``expected``: the batch did not apply (a coordinator lost before Paxos
            # accepted it), and the condition still holds: run it again. Answering False here
            # would tell the caller that the condition failed (for a partition's writer: that
            # a newer owner fenced it, which made it drop the partition for seconds).
        raise StorageUnavailableError(f"Cassandra could not {what}: the outcome stayed unknown")

    async def query_ttl(self, p_key: bytes, c_col: bytes) -> int | None:
        check_key(p_key, c_col)
        rows = await self._bridge.run(self._s.ttl, (p_key, c_col), "read a row's TTL", READS)
        if not rows:
            return None
        ttl = rows[0][0]
        return int(ttl) if ttl is not None else 0


class CassandraStorageFactory(AppStorageFactory):
    """Connects to a Cassandra or Scylla cluster; one keyspace per application storage.

    ``keyspace_suffix`` is appended to every keyspace name so that test runs sharing a cluster
    never see each other's data. The timing options are those of the ``cassandra://`` URL
    (``voedger.storage.url`` says what each does); ``batchlog_bypass=0`` turns the own batch
    log off.
    """

    def __init__(
        self,
        hosts: Sequence[str | tuple[str, int]],
        *,
        replication: Mapping[str, object] | None = None,
        consistency: str = "QUORUM",
        local_dc: str | None = None,
        username: str | None = None,
        password: str | None = None,
        keyspace_suffix: str = "",
        connect_timeout: float = 10.0,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        speculative_delay: float = DEFAULT_SPECULATIVE_DELAY,
        batchlog_bypass: float = DEFAULT_BATCHLOG_BYPASS,
        reconnect_max: float = DEFAULT_RECONNECT_MAX,
        heartbeat: float = DEFAULT_HEARTBEAT,
        compression: str = "none",
    ) -> None:
        if not hosts:
            raise StorageError("no Cassandra host given")
        self.hosts: list[tuple[str, int]] = [h if isinstance(h, tuple) else parse_host(h) for h in hosts]
        self.replication: dict[str, str] = {str(k): str(v) for k, v in (replication or DEFAULT_REPLICATION).items()}
        if "class" not in self.replication:
            raise StorageError(f"replication {self.replication} names no 'class'")
        consistency = consistency.upper()
        if consistency not in _CONSISTENCY_NAMES:
            raise StorageError(f"unknown consistency {consistency!r}; one of {', '.join(_CONSISTENCY_NAMES)}")
        self.consistency = consistency
        self.local_dc = local_dc
        self._username = username
        self._password = password
        if keyspace_suffix and not re.fullmatch(r"[a-z0-9_]{1,5}", keyspace_suffix):
            raise StorageError(f"keyspace suffix {keyspace_suffix!r} must be 1-5 lowercase letters or digits")
        self.keyspace_suffix = keyspace_suffix
        self.connect_timeout = connect_timeout
        for name, value in (
            ("request_timeout", request_timeout),
            ("reconnect_max", reconnect_max),
            ("heartbeat", heartbeat),
        ):
            if not value > 0:
                raise StorageError(f"{name} must be positive, got {value}")
        if speculative_delay < 0 or batchlog_bypass < 0:
            raise StorageError("speculative_delay and batchlog_bypass must not be negative")
        if compression not in COMPRESSIONS:
            raise StorageError(f"unknown compression {compression!r}; one of {', '.join(COMPRESSIONS)}")
        self.compression = compression
        self.request_timeout = request_timeout
        self.speculative_delay = speculative_delay
        self.batchlog_bypass = batchlog_bypass
        self.reconnect_max = reconnect_max
        self.heartbeat = heartbeat
        self.watch = NodeWatch(batchlog_bypass)
        self.capabilities = Capabilities(
            name="cassandra",
            manual_clock=False,
            persistent=True,
            replicated=replication_factor(self.replication) > 1,
        )
        self._cluster: Any = None
        self._requests: Counter[str] = Counter()
        self._session: Any = None
        self._bridge: _Bridge | None = None
        self._open_lock = asyncio.Lock()
        self._storages: dict[str, CassandraAppStorage] = {}
        self._batchlogs: list[BatchLog] = []
        self._prepare_locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_url(cls, url: CassandraURL) -> CassandraStorageFactory:
        """A factory for a parsed ``cassandra://`` URL; it connects on :meth:`open`."""
        return cls(
            list(url.hosts),
            replication=url.replication,
            consistency=url.consistency,
            local_dc=url.dc,
            username=url.username,
            password=url.password,
            keyspace_suffix=url.keyspace_suffix,
            connect_timeout=url.connect_timeout,
            request_timeout=url.request_timeout,
            speculative_delay=url.speculative_delay,
            batchlog_bypass=url.batchlog_bypass,
            reconnect_max=url.reconnect_max,
            heartbeat=url.heartbeat,
            compression=url.compression,
        )

    @classmethod
    async def connect(cls, hosts: Sequence[str | tuple[str, int]], **options: Any) -> CassandraStorageFactory:
        """Create a factory and connect it; raises StorageUnavailableError if no node answers."""
        factory = cls(hosts, **options)
        await factory.open()
        return factory

    def keyspace(self, safe_name: str) -> str:
        """The keyspace that holds the storage ``safe_name``."""
        name = safe_name + self.keyspace_suffix
        if not _KEYSPACE_RE.match(name):
            raise StorageError(
                f"storage name {safe_name!r} cannot be a keyspace: lowercase letters, digits and '_', "
                "a letter first, at most 48 characters with the suffix"
            )
        return name

    @property
    def session(self) -> Any:
        """The driver session (for tests and tools); None before :meth:`open`."""
        return self._session

    async def open(self) -> None:
        async with self._open_lock:
            if self._session is not None:
                return
            self.watch.attach(asyncio.get_running_loop())
            self._cluster, self._session = await asyncio.to_thread(self._connect_blocking)
            self._bridge = _Bridge(self._session, self._requests)

    def requests(self) -> Mapping[str, int]:
        """Requests sent so far, by kind (``REQUEST_KINDS``), each kind present."""
        return {kind: self._requests[kind] for kind in REQUEST_KINDS}

    def _profile(self, speculative: bool) -> ExecutionProfile:
        # Token-aware over round robin: a node the driver has marked down is in no query plan,
        # and the next host of a plan is another replica of the same partition.
        policy = TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=self.local_dc))
        spec = None
        if speculative and self.speculative_delay > 0:
            # Only statements marked idempotent are ever sent twice, and only reads use this.
            spec = ConstantSpeculativeExecutionPolicy(delay=self.speculative_delay, max_attempts=1)
        return ExecutionProfile(
            load_balancing_policy=policy,
            retry_policy=_WriteRetryPolicy(0 if self.batchlog_bypass > 0 else _WriteRetryPolicy.BATCH_LOG_RETRIES),
            consistency_level=getattr(ConsistencyLevel, self.consistency),
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL if self.local_dc else ConsistencyLevel.SERIAL,
            request_timeout=self.request_timeout,
            row_factory=tuple_factory,
            speculative_execution_policy=spec,
        )

    def _connect_blocking(self) -> tuple[Any, Any]:
        auth = PlainTextAuthProvider(username=self._username, password=self._password or "") if self._username else None
        cluster = Cluster(
            contact_points=list(self.hosts),
            execution_profiles={EXEC_PROFILE_DEFAULT: self._profile(False), READS: self._profile(True)},
            auth_provider=auth,
            connect_timeout=self.connect_timeout,
            control_connection_timeout=self.connect_timeout,
            # A node that went down is tried again soon (a refused connection costs nothing);
            # the default backs off to ten minutes.
            reconnection_policy=ExponentialReconnectionPolicy(
                base_delay=min(0.5, self.reconnect_max), max_delay=self.reconnect_max
            ),
            # Idle connections are probed, so a node that died silently is noticed without
            # waiting for a request to time out on it.
            idle_heartbeat_interval=self.heartbeat,
            idle_heartbeat_timeout=self.heartbeat,
            # The driver's default is whatever it can negotiate (lz4): on loopback and a LAN that
            # costs both ends more CPU than it saves (storage.url, ``compression``).
            compression=self.compression if self.compression != "none" else False,
        )
        cluster.register_listener(self.watch)
        try:
            session = cluster.connect()
        except Exception as exc:
            cluster.shutdown()
            reason = _short_reason(exc)
            raise StorageUnavailableError(
                f"no Cassandra node answers at {_describe_hosts(self.hosts)}: {reason}"
            ) from None
        return cluster, session

    async def _ready(self) -> _Bridge:
        if self._bridge is None:
            await self.open()
        assert self._bridge is not None
        return self._bridge

    def _consistency_levels(self) -> tuple[int, int]:
        serial = ConsistencyLevel.LOCAL_SERIAL if self.local_dc else ConsistencyLevel.SERIAL
        return getattr(ConsistencyLevel, self.consistency), serial

    async def _wait_for_schema_agreement(self, what: str, timeout: float = 30.0) -> None:
        """Wait until every node the driver sees up reports the same schema version.

        A node that has not yet applied a new keyspace would answer "no such table"; polling
        ``system.local`` on each node is what the driver itself does, minus its deprecated API.
        """
        bridge = await self._ready()
        query = SimpleStatement("SELECT schema_version FROM system.local", is_idempotent=True)
        deadline = asyncio.get_running_loop().time() + timeout
        versions: dict[str, object] = {}
        while True:
            hosts = [h for h in self._cluster.metadata.all_hosts() if h.is_up]
            try:
                results = await asyncio.gather(*(bridge.run_raw(query, None, host=h) for h in hosts))
                versions = {
                    str(h.endpoint): rows[0][0] if rows else None for h, rows in zip(hosts, results, strict=True)
                }
                if len(set(versions.values())) <= 1:
                    return
            except Exception as exc:
                versions = {"error": f"{type(exc).__name__}: {exc}"}
            if asyncio.get_running_loop().time() > deadline:
                raise StorageUnavailableError(
                    f"Cassandra nodes did not agree on the schema after {what} within {timeout:.0f} s: {versions}"
                )
            await asyncio.sleep(0.2)

    async def _tables(self, bridge: _Bridge, keyspace: str) -> set[str] | None:
        """The tables of ``keyspace``; None if there is no such keyspace."""
        ks = await bridge.run(
            SimpleStatement(
                "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s", is_idempotent=True
            ),
            (keyspace,),
            f"look up keyspace {keyspace}",
        )
        if not ks:
            return None
        tables = await bridge.run(
            SimpleStatement("SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", is_idempotent=True),
            (keyspace,),
            f"look up the tables of keyspace {keyspace}",
        )
        return {str(row[0]) for row in tables}

    async def _schema_change(self, bridge: _Bridge, cql: str, what: str, host: Any = None) -> None:
        try:
            await bridge.run_raw(SimpleStatement(cql), None, host=host, timeout=SCHEMA_TIMEOUT)
        except Exception as exc:
            raise _translate(exc, what) from None

    async def init(self, safe_name: str) -> None:
        keyspace = self.keyspace(safe_name)
        bridge = await self._ready()
        create_ks = SimpleStatement(f'CREATE KEYSPACE "{keyspace}" WITH replication = {_cql_map(self.replication)}')
        try:
            await bridge.run_raw(create_ks, None, timeout=SCHEMA_TIMEOUT)
        except AlreadyExists:
            raise StorageAlreadyExistsError(f"storage {safe_name!r} (keyspace {keyspace}) already exists") from None
        except Exception as exc:
            raise _translate(exc, f"create keyspace {keyspace}") from None
        await self._wait_for_schema_agreement(f"creating keyspace {keyspace}")
        # Both tables at once (a schema change costs about a second on a small cluster), through
        # one coordinator, which applies them one after the other: no two nodes race.
        host = next((h for h in self._cluster.metadata.all_hosts() if h.is_up), None)
        create_values = (
            f'CREATE TABLE IF NOT EXISTS "{keyspace}"."{TABLE}" '
            "(p_key blob, c_col blob, value blob, PRIMARY KEY ((p_key), c_col))"
        )
        await asyncio.gather(
            self._schema_change(
                bridge, batchlog_table_cql(keyspace), f"create table {keyspace}.{BATCHLOG_TABLE}", host
            ),
            self._schema_change(bridge, create_values, f"create table {keyspace}.{TABLE}", host),
        )
        await self._wait_for_schema_agreement(f"creating the tables of {keyspace}")

    async def app_storage(self, safe_name: str) -> AppStorage:
        keyspace = self.keyspace(safe_name)
        if (cached := self._storages.get(keyspace)) is not None:
            return cached
        bridge = await self._ready()
        lock = self._prepare_locks.setdefault(keyspace, asyncio.Lock())
        async with lock:
            if (cached := self._storages.get(keyspace)) is not None:
                return cached
            tables = await self._tables(bridge, keyspace)
            if tables is None or TABLE not in tables:
                hint = " (keyspace exists without its table: an interrupted init?)" if tables is not None else ""
                raise StorageDoesNotExistError(f"storage {safe_name!r} (keyspace {keyspace}) does not exist{hint}")
            consistency, serial = self._consistency_levels()
            for attempt in range(PREPARE_ATTEMPTS):
                try:
                    stmts = await _Statements.prepare(self._session, keyspace, consistency, serial)
                    batchlog = await self._open_batchlog(bridge, keyspace, BATCHLOG_TABLE in tables, consistency)
                    break
                except StorageError as exc:
                    # Created a moment ago by another process: a node that has not applied the
                    # new tables yet refuses to prepare. Once the nodes agree, it works.
                    if attempt == PREPARE_ATTEMPTS - 1:
                        raise
                    log.info("keyspace %s is not ready on every node yet (%s); waiting", keyspace, exc)
                    await self._wait_for_schema_agreement(f"opening keyspace {keyspace}")
                    await asyncio.sleep(1.0)
                    tables = await self._tables(bridge, keyspace) or tables
            storage = CassandraAppStorage(bridge, keyspace, stmts, self.capabilities, self.watch, batchlog)
            self._storages[keyspace] = storage
            return storage

    async def _open_batchlog(self, bridge: _Bridge, keyspace: str, exists: bool, consistency: int) -> BatchLog | None:
        """The keyspace's own batch log, with whatever was left in it replayed first."""
        if not exists:
            # Created before the table existed: no schema change here (two servers starting
            # at once would race to create it); such a keyspace keeps the slower retries.
            log.warning("keyspace %s has no %s table: batches wait while a node is lost", keyspace, BATCHLOG_TABLE)
            return None
        try:
            batchlog = await BatchLog.prepare(self._session, bridge, keyspace, TABLE, consistency)
        except Exception as exc:
            raise _translate(exc, f"prepare the batch log of keyspace {keyspace}") from None
        try:
            replayed = await batchlog.replay()
        except StorageError as exc:
            # Too few replicas up to read it: the storage still opens, as it did before it had
            # a batch log, and what is left is completed as soon as the log can be read.
            log.warning(
                "keyspace %s: its batch log cannot be replayed now (%s); retrying in the background", keyspace, exc
            )
            batchlog.replay_later()
        else:
            if replayed:
                log.info("keyspace %s: completed %d batch(es) left in its batch log", keyspace, replayed)
        self._batchlogs.append(batchlog)
        return batchlog

    async def drop(self, safe_name: str) -> None:
        """Drop a storage's keyspace (tests clean up with it; the platform never drops data)."""
        keyspace = self.keyspace(safe_name)
        bridge = await self._ready()
        dropped = self._storages.pop(keyspace, None)
        if dropped is not None and dropped.batchlog is not None:
            self._batchlogs.remove(dropped.batchlog)
            await dropped.batchlog.close()
        await self._schema_change(bridge, f'DROP KEYSPACE IF EXISTS "{keyspace}"', f"drop keyspace {keyspace}")
        await self._wait_for_schema_agreement(f"dropping keyspace {keyspace}")

    async def drop_all(self) -> list[str]:
        """Drop every keyspace ending in this factory's suffix: what one test run created.

        A shared development cluster runs out of heap with the keyspaces runs leave behind
        (each table costs a node memory). It goes by the name alone, so give each run a suffix
        nothing else ends in: 4-5 characters, one of them not a hex digit, because the other
        test keyspaces end in random hex digits. Refused for shorter suffixes.
        """
        suffix = self.keyspace_suffix
        if len(suffix) < 4:
            raise StorageError(f"drop_all needs a keyspace suffix of 4-5 characters, not {suffix!r}")
        bridge = await self._ready()
        rows = await bridge.run(
            SimpleStatement("SELECT keyspace_name FROM system_schema.keyspaces", is_idempotent=True),
            None,
            "list the keyspaces",
        )
        names = sorted(str(r[0]) for r in rows if str(r[0]).endswith(suffix) and _KEYSPACE_RE.match(str(r[0])))
        for name in names:
            await self.drop(name[: -len(suffix)])
        return names

    async def close(self) -> None:
        batchlogs, self._batchlogs = self._batchlogs, []
        for batchlog in batchlogs:
            await batchlog.close()
        cluster = self._cluster
        self._cluster = self._session = self._bridge = None
        self._storages.clear()
        if cluster is not None:
            await asyncio.to_thread(cluster.shutdown)


def _short_reason(exc: BaseException) -> str:
    """One line per host from a NoHostAvailable, instead of the driver's nested reprs."""
    errors = getattr(exc, "errors", None)
    if isinstance(errors, dict) and errors:
        return "; ".join(f"{host}: {type(err).__name__}: {err}" for host, err in errors.items())
    return f"{type(exc).__name__}: {exc}"
