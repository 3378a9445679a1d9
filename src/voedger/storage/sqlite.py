"""The embedded driver: one SQLite file per application storage.

Durability: a write returns only after its transaction is committed with ``synchronous=FULL``
in WAL mode, so it survives ``kill -9`` and power loss. Throughput: every write goes to one
writer thread per storage, which takes all the writes queued while it was busy and commits
them in one transaction (group commit), so many concurrent writers share one fsync. Reads
have connections of their own (WAL lets them proceed during writes): point reads and the first
``INLINE_ROWS`` rows of a range run on the caller's thread (microseconds from the page cache,
cheaper than a hand-off), the rest of a long range on a small thread pool. A third thread
copies the WAL back into the database file (checkpoints), so that work and its fsync stay off
the writer's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import math
import os
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from voedger.clock import SYSTEM_CLOCK, Clock
from voedger.storage.contract import (
    AppStorage,
    AppStorageFactory,
    BatchItem,
    Capabilities,
    PartitionRow,
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
    StorageLockedError,
    StorageUnavailableError,
)
from voedger.storage.snapshot import ReadScope, current_scope

SQLITE_CAPABILITIES = Capabilities(name="sqlite", manual_clock=True, persistent=True)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv (p BLOB NOT NULL, c BLOB NOT NULL, v BLOB NOT NULL,"
    " exp INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (p, c)) WITHOUT ROWID"
)
_LIVE = "(exp = 0 OR exp > ?)"
_READ_PAGE = 1000
INLINE_ROWS = 64
"""Rows a read may fetch on the event loop's thread (``SQLiteAppStorage._inline``)."""
_MAX_GROUP = 2000  # writes committed together at most; bounds a transaction's size


class _Rows:
    """Plain rows to insert or replace (``put``, ``put_batch``). The writer inserts a run of
    these together, with no savepoint each: such a write fails only when the database does, and
    then the whole group fails."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[BatchItem]) -> None:
        self.rows = rows


_WriteOp = Callable[[sqlite3.Connection, int], Any] | _Rows


log = logging.getLogger("voedger.storage.sqlite")

CHECKPOINT_INTERVAL = 0.2
"""Seconds between checkpoints of the WAL by the checkpointer thread."""
WRITER_AUTOCHECKPOINT = 50_000
"""WAL pages (about 200 MiB) after which the writer checkpoints by itself: a backstop for a
checkpointer that falls behind (SQLite's default is 1,000 pages, checkpointed inline on the
writer's commit, which stalled every commit queued behind it)."""


def _connect(path: Path, autocheckpoint: int | None = None, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        # Another process writes the file (see ``SQLiteStorageFactory``): opened read-only, it
        # reads the WAL that process keeps, and can change nothing.
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False, timeout=30
        )
        conn.execute("PRAGMA cache_size=-16384")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA cache_size=-16384")  # 16 MiB per connection
    conn.execute("PRAGMA temp_store=MEMORY")
    if autocheckpoint is not None:
        conn.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
    return conn


class _Checkpointer(threading.Thread):
    """Copies committed WAL frames into the database file every ``CHECKPOINT_INTERVAL``.

    PASSIVE checkpoints neither wait for nor block the writer or the readers; sqlite3 lets go of
    the GIL while one runs, so it uses the other core instead of the writer's time.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(name=f"sqlite-checkpoint-{path.name}", daemon=True)
        self._path = path
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        self.join()

    def run(self) -> None:
        conn = _connect(self._path)
        try:
            while not self._stopping.wait(CHECKPOINT_INTERVAL):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the writer's own backstop still bounds the WAL
                    log.warning("%s: checkpoint failed: %s", self._path.name, exc)
        finally:
            conn.close()


class _Pending:
    """A write waiting for the writer thread, and the future its caller awaits."""

    __slots__ = ("future", "loop", "op", "result")

    def __init__(self, op: _WriteOp, loop: asyncio.AbstractEventLoop) -> None:
        self.op = op
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.result: Any = None


def _settle(batch: list[_Pending], failure: BaseException | None) -> None:
    """Runs on the caller's loop: hand each write its result once the group is durable."""
    for item in batch:
        if item.future.done():
            continue
        if failure is not None:
            item.future.set_exception(failure)
        elif isinstance(item.result, BaseException):
            item.future.set_exception(item.result)
        else:
            item.future.set_result(item.result)


class _Writer(threading.Thread):
    """The one thread that writes a storage's file; commits queued writes as one group."""

    def __init__(self, path: Path, clock: Clock) -> None:
        super().__init__(name=f"sqlite-writer-{path.name}", daemon=True)
        self._conn = _connect(path, autocheckpoint=WRITER_AUTOCHECKPOINT)
        self._clock = clock
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self.commits = 0  # groups committed; lets benchmarks and tests see group commit at work

    def submit(self, op: _WriteOp) -> asyncio.Future[Any]:
        item = _Pending(op, asyncio.get_running_loop())
        self._queue.put(item)
        return item.future

    def stop(self) -> None:
        self._queue.put(None)
        self.join()
        self._conn.close()

    def run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < _MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            failure = self._commit(batch)
            by_loop: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
            for item in batch:
                by_loop.setdefault(item.loop, []).append(item)
            for loop, items in by_loop.items():
                # a closed loop raises RuntimeError: nobody is waiting for these results
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, items, failure)

    def _commit(self, batch: list[_Pending]) -> BaseException | None:
        conn = self._conn
        if all(type(item.op) is _Rows for item in batch):
            rows: list[BatchItem] = [row for item in batch for row in item.op.rows]  # type: ignore[union-attr]
            if len(rows) <= _STATEMENT_ROWS:
                # One statement is its own transaction: a single step of SQLite with the GIL let
                # go, where BEGIN, the inserts and COMMIT took it back three times or more, each
                # a wait of up to the switch interval while the event loop was busy.
                try:
                    _insert_rows(conn, rows)
                except Exception as exc:
                    return StorageUnavailableError(f"sqlite write failed: {exc}")
                self.commits += 1
                return None
        now_ms = int(self._clock.now() * 1000)
        try:
            conn.execute("BEGIN IMMEDIATE")
            i = 0
            while i < len(batch):
                item = batch[i]
                if isinstance(item.op, _Rows):
                    rows = []
                    while i < len(batch) and isinstance(batch[i].op, _Rows):
                        rows += batch[i].op.rows  # type: ignore[union-attr]
                        i += 1
                    _insert_rows(conn, rows)
                    continue
                i += 1
                conn.execute("SAVEPOINT op")
                try:
                    item.result = item.op(conn, now_ms)
                except Exception as exc:  # one bad write must not sink its group
                    conn.execute("ROLLBACK TO op")
                    item.result = exc
                conn.execute("RELEASE op")
            conn.execute("COMMIT")
            self.commits += 1
            return None
        except Exception as exc:  # sqlite3.Error, or a row the database refused: the group fails
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return StorageUnavailableError(f"sqlite write failed: {exc}")


_STATEMENT_ROWS = 8192
"""Rows one INSERT carries at most (3 parameters a row, under SQLite's 32,766)."""
_SIZES = tuple(sorted({2**k for k in range(14)} | {3 * 2**k for k in range(12)}))
"""Row counts of the prepared INSERTs (1, 2, 3, 4, 6, 8, 12 ... 8192): a group is padded up to
the next, so a few statements serve every size and padding adds at most half again."""
_INSERT = {n: "INSERT OR REPLACE INTO kv (p, c, v, exp) VALUES " + ",".join(["(?, ?, ?, 0)"] * n) for n in _SIZES}


def _insert_rows(conn: sqlite3.Connection, rows: Sequence[BatchItem]) -> None:
    """Insert rows with as few statements as possible: one up to ``_STATEMENT_ROWS`` rows.

    The sqlite3 module lets go of the GIL around every statement step and must take it back
    after; with the event loop busy that wait is the switch interval, so a row at a time made
    a group's commit as slow as the loop was busy. A run is padded with its last row (writing
    a row over itself changes nothing), so that the prepared statements stay few.
    """
    i, n = 0, len(rows)
    while n - i > _STATEMENT_ROWS:
        conn.execute(_INSERT[_STATEMENT_ROWS], [x for row in rows[i : i + _STATEMENT_ROWS] for x in row])
        i += _STATEMENT_ROWS
    rest = n - i
    if rest:
        size = next(s for s in _SIZES if s >= rest)
        params = [x for row in rows[i:] for x in row]
        params += rows[-1] * (size - rest)
        conn.execute(_INSERT[size], params)


def _fetch_all(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[Any]:
    return conn.execute(sql, args).fetchall()


def _live_value(row: tuple[bytes, int] | None, now_ms: int) -> bytes | None:
    if row is None:
        return None
    value, exp = row
    return None if exp and exp <= now_ms else value


class _NoWriter:
    """The writer of a storage opened read-only: every write fails, nothing is written."""

    commits = 0

    def __init__(self, path: Path) -> None:
        self._name = path.name

    def submit(self, op: _WriteOp) -> asyncio.Future[Any]:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_exception(
            StorageError(f"storage {self._name} is open read-only here: writes go to its server process")
        )
        return done

    def stop(self) -> None:
        pass


class SQLiteAppStorage(AppStorage):
    capabilities = SQLITE_CAPABILITIES

    def __init__(self, path: Path, clock: Clock, readers: ThreadPoolExecutor, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._clock = clock
        self._readers = readers
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._snapshot_conns: list[sqlite3.Connection] = []
        """Idle connections for read transactions (``read_snapshot``)."""
        self.writer: _Writer | _NoWriter
        self._checkpointer: _Checkpointer | None = None
        if read_only:
            self.writer = _NoWriter(path)
            return
        conn = _connect(path)
        conn.execute(_SCHEMA)
        conn.close()
        self.writer = _Writer(path, clock)
        self.writer.start()
        self._checkpointer = _Checkpointer(path)
        self._checkpointer.start()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.writer.stop()
        with self._reader_lock:
            for conn in self._reader_conns + self._snapshot_conns:
                conn.close()
            self._reader_conns.clear()
            self._snapshot_conns.clear()

    def _now_ms(self) -> int:
        return int(self._clock.now() * 1000)

    def _expiry(self, now_ms: int, ttl: int) -> int:
        return now_ms + ttl * 1000 if ttl else 0

    # --- reads ---------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        scope = current_scope()
        if scope is not None:
            return self._in_snapshot(scope)
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, read_only=self.read_only)
            self._local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    def _in_snapshot(self, scope: ReadScope) -> sqlite3.Connection:
        """The connection of this storage's read transaction in ``scope``, begun on first use:
        every read of the scope sees the same snapshot of whole transactions."""
        held = scope.held.get(self)
        if held is not None:
            return held  # type: ignore[return-value]
        with self._reader_lock:
            conn = self._snapshot_conns.pop() if self._snapshot_conns else None
        if conn is None:
            conn = _connect(self.path, read_only=self.read_only)
        conn.execute("BEGIN")
        scope.held[self] = conn
        scope.ends.append(partial(self._end_snapshot, conn))
        return conn

    def _end_snapshot(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.warning("%s: ending a read transaction failed: %s", self.path.name, exc)
            conn.close()
            return
        with self._reader_lock:
            self._snapshot_conns.append(conn)

    async def _in_reader(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        loop = asyncio.get_running_loop()
        scope = current_scope()
        try:
            if scope is not None:  # the scope's connection, on a reader thread, in the scope's transaction
                conn = self._in_snapshot(scope)
                return await loop.run_in_executor(self._readers, fn, conn)
            return await loop.run_in_executor(self._readers, lambda: fn(self._reader()))
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite read failed: {exc}") from exc

    def _inline(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """A short read on the calling thread (the event loop's), with its own connection.

        A point read or a page of ``INLINE_ROWS`` rows from the page cache takes a few
        microseconds; handing it to a reader thread and back took 5-10 times as much CPU, and
        on two cores the hand-off, not SQLite, bounded the reads per second. Each statement is
        its own read transaction, ended when its rows are fetched, so it sees every group
        committed before it started (read-your-writes) and no part of one (WAL snapshots).
        Longer reads (the pages after the first of a range) stay on the reader threads."""
        try:
            return fn(self._reader())
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite read failed: {exc}") from exc

    async def get(self, p_key: bytes, c_col: bytes) -> bytes | None:
        check_key(p_key, c_col)
        now = self._now_ms()

        def q(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT v, exp FROM kv WHERE p=? AND c=?", (p_key, c_col)).fetchone()
            return _live_value(row, now)

        result: bytes | None = self._inline(q)
        return result

    async def get_batch(self, p_key: bytes, c_cols: Sequence[bytes]) -> list[bytes | None]:
        for c_col in c_cols:
            check_key(p_key, c_col)
        now = self._now_ms()
        wanted = list(c_cols)

        def q(conn: sqlite3.Connection) -> list[bytes | None]:
            found: dict[bytes, bytes | None] = {}
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT c, v, exp FROM kv WHERE p=? AND c IN ({marks})"
                for c, v, exp in conn.execute(sql, (p_key, *chunk)):
                    found[c] = _live_value((v, exp), now)
            return [found.get(c) for c in wanted]

        if len(wanted) <= INLINE_ROWS:
            inline: list[bytes | None] = self._inline(q)
            return inline
        result: list[bytes | None] = await self._in_reader(q)
        return result

    async def read(self, p_key: bytes, start: bytes = b"", finish: bytes = b"") -> AsyncIterator[tuple[bytes, bytes]]:
        check_key(p_key, start)
        check_key(p_key, finish)
        if range_is_empty(start, finish):
            return
        now = self._now_ms()
        lower, inclusive = start, True
        first = True  # the first page is short and read inline; most ranges end within it
        while True:
            size = INLINE_ROWS if first else _READ_PAGE
            sql = f"SELECT c, v FROM kv WHERE p=? AND c {'>=' if inclusive else '>'} ? AND {_LIVE}"
            args: tuple[Any, ...] = (p_key, lower, now)
            if finish:
                sql += " AND c < ?"
                args += (finish,)
            sql += f" ORDER BY c LIMIT {size}"
            fetch = partial(_fetch_all, sql=sql, args=args)
            page: list[tuple[bytes, bytes]] = self._inline(fetch) if first else await self._in_reader(fetch)
            if first:
                # One turn of the loop after the inline page. Without it, q.sys.Collection over
                # HTTP had a p99 of 190-370 ms against 60-100 ms with it (and with reader
                # threads), at less CPU per read with it, in alternating runs (docs/benchmarks.md).
                await asyncio.sleep(0)
            first = False
            for row in page:
                yield row
            if len(page) < size:
                return
            lower, inclusive = page[-1][0], False

    async def query_ttl(self, p_key: bytes, c_col: bytes) -> int | None:
        check_key(p_key, c_col)
        now = self._now_ms()

        def q(conn: sqlite3.Connection) -> int | None:
            row = conn.execute("SELECT exp FROM kv WHERE p=? AND c=?", (p_key, c_col)).fetchone()
            if row is None:
                return None
            exp = int(row[0])
            if exp == 0:
                return 0
            if exp <= now:
                return None
            return math.ceil((exp - now) / 1000)

        result: int | None = await self._in_reader(q)
        return result

    # --- writes --------------------------------------------------------------------------

    async def put(self, p_key: bytes, c_col: bytes, value: bytes) -> None:
        await self.begin_put_batch([(p_key, c_col, value)])

    async def put_batch(self, items: Sequence[BatchItem]) -> None:
        await self.begin_put_batch(items)

    def begin_put_batch(self, items: Sequence[BatchItem]) -> Awaitable[None]:
        """Queue the rows for the writer thread right now (no turn of the event loop first)."""
        rows = list(items)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            for p_key, c_col, value in rows:
                check_key(p_key, c_col)
                check_value(value)
        except StorageError as exc:
            done.set_exception(exc)
            return done
        if not rows:
            done.set_result(None)
            return done
        return self.writer.submit(_Rows(rows))

    @staticmethod
    def _current(conn: sqlite3.Connection, p_key: bytes, c_col: bytes, now_ms: int) -> bytes | None:
        row = conn.execute("SELECT v, exp FROM kv WHERE p=? AND c=?", (p_key, c_col)).fetchone()
        return _live_value(row, now_ms)

    async def insert_if_not_exists(self, p_key: bytes, c_col: bytes, value: bytes, ttl: int = 0) -> bool:
        check_key(p_key, c_col)
        check_value(value)
        check_ttl(ttl)

        def op(conn: sqlite3.Connection, now_ms: int) -> bool:
            if self._current(conn, p_key, c_col, now_ms) is not None:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO kv (p, c, v, exp) VALUES (?, ?, ?, ?)",
                (p_key, c_col, value, self._expiry(now_ms, ttl)),
            )
            return True

        result: bool = await self.writer.submit(op)
        return result

    async def compare_and_swap(self, p_key: bytes, c_col: bytes, old: bytes, new: bytes, ttl: int = 0) -> bool:
        check_key(p_key, c_col)
        check_value(new)
        check_ttl(ttl)

        def op(conn: sqlite3.Connection, now_ms: int) -> bool:
            if self._current(conn, p_key, c_col, now_ms) != old:
                return False
            conn.execute(
                "UPDATE kv SET v=?, exp=? WHERE p=? AND c=?",
                (new, self._expiry(now_ms, ttl), p_key, c_col),
            )
            return True

        result: bool = await self.writer.submit(op)
        return result

    async def compare_and_delete(self, p_key: bytes, c_col: bytes, expected: bytes) -> bool:
        check_key(p_key, c_col)

        def op(conn: sqlite3.Connection, now_ms: int) -> bool:
            if self._current(conn, p_key, c_col, now_ms) != expected:
                return False
            conn.execute("DELETE FROM kv WHERE p=? AND c=?", (p_key, c_col))
            return True

        result: bool = await self.writer.submit(op)
        return result

    async def put_batch_if(
        self, p_key: bytes, c_col: bytes, expected: bytes | None, new: bytes, rows: Sequence[PartitionRow]
    ) -> bool:
        check_conditional_batch(p_key, c_col, expected, new, rows)
        items = [(p_key, c_col, new), *((p_key, row_col, value) for row_col, value in rows)]

        def op(conn: sqlite3.Connection, now_ms: int) -> bool:
            if self._current(conn, p_key, c_col, now_ms) != expected:
                return False
            _insert_rows(conn, items)
            return True

        result: bool = await self.writer.submit(op)
        return result

    async def purge_expired(self) -> int:
        """Delete rows whose TTL ran out (reads already hide them); returns how many."""

        def op(conn: sqlite3.Connection, now_ms: int) -> int:
            return conn.execute("DELETE FROM kv WHERE exp <> 0 AND exp <= ?", (now_ms,)).rowcount

        result: int = await self.writer.submit(op)
        return result


LOCK_FILE = "voedger.lock"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_STORAGE_FILES = (".db", ".db-wal", ".db-shm", ".db-journal")


def secure_data_dir(directory: Path) -> None:
    """Make ``directory`` and its storage files private to the server's user: 0700 and 0600.

    The storages hold secrets (``sys/vvm`` keeps the JWT signing secret: whoever reads it mints
    any token) besides every application's data. A directory or file found open to other users
    is closed (with a warning); one that cannot be closed refuses the start.
    """
    directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _make_private(directory, PRIVATE_DIR)
    for path in directory.iterdir():
        if (path.name.endswith(_STORAGE_FILES) or path.name == LOCK_FILE) and path.is_file() and not path.is_symlink():
            _make_private(path, PRIVATE_FILE)


def _make_private(path: Path, mode: int) -> None:
    current = path.stat().st_mode & 0o777
    if not current & 0o077:
        return
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise StorageError(
            f"{path} is open to other users (mode {current:o}) and cannot be made {mode:o}: {exc.strerror}; "
            "it holds secrets (the token signing key among them), so the server does not start"
        ) from None
    log.warning("%s was open to other users (mode %o); made it %o: it holds secrets", path, current, mode)


class DirectoryLock:
    """An exclusive ``flock`` on ``<dir>/voedger.lock``, holding the holder's pid.

    An embedded data directory belongs to one server process: two writers of one SQLite file
    would each keep their own sequences and overwrite each other's acknowledged events. The
    kernel drops the lock when its holder dies, however it dies, so a stale file never blocks.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StorageLockedError(
                f"data directory {self.path.parent} is in use by another server process (pid {holder}); "
                "an embedded store serves one process: stop that one, or give this one another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class SQLiteStorageFactory(AppStorageFactory):
    """Storages as ``<dir>/<safe_name>.db`` files.

    ``read_only``: for the reader processes of a server (``voedger server --processes``), which
    serve reads beside the process that holds the directory: they take no lock, create nothing,
    open the files read-only, and every write fails."""

    capabilities = SQLITE_CAPABILITIES

    def __init__(self, directory: Path, clock: Clock = SYSTEM_CLOCK, read_only: bool = False) -> None:
        self.directory = directory
        self.read_only = read_only
        self._clock = clock
        self._readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sqlite-reader")
        self._open: dict[str, SQLiteAppStorage] = {}
        self._lock = DirectoryLock(directory)

    async def take(self) -> None:
        """Take the directory for this server process (see :class:`DirectoryLock`), private to
        its user (see :func:`secure_data_dir`). A read-only factory takes nothing: the directory
        is its writer's."""
        if self.read_only:
            return
        self._lock.acquire()
        try:
            await asyncio.to_thread(secure_data_dir, self.directory)
        except BaseException:
            self._lock.release()
            raise

    def _path(self, safe_name: str) -> Path:
        return self.directory / f"{safe_name}.db"

    async def init(self, safe_name: str) -> None:
        path = self._path(safe_name)
        if path.exists():
            raise StorageAlreadyExistsError(f"storage {safe_name!r} already exists at {path.name}")
        if self.read_only:
            raise StorageDoesNotExistError(f"storage {safe_name!r} does not exist, and a read-only server creates none")
        await asyncio.to_thread(self._create, path)

    @staticmethod
    def _create(path: Path) -> None:
        path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        # Made 0600 before SQLite opens it: its WAL and shared-memory files take the same mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
        conn = _connect(path)
        conn.execute(_SCHEMA)
        conn.close()

    async def app_storage(self, safe_name: str) -> AppStorage:
        if safe_name in self._open:
            return self._open[safe_name]
        path = self._path(safe_name)
        if not path.exists():
            raise StorageDoesNotExistError(f"storage {safe_name!r} does not exist")
        storage = await asyncio.to_thread(SQLiteAppStorage, path, self._clock, self._readers, self.read_only)
        self._open[safe_name] = storage
        return storage

    async def close(self) -> None:
        for storage in self._open.values():
            await asyncio.to_thread(storage.close)
        self._open.clear()
        self._readers.shutdown(wait=True)
        if not self.read_only:
            self._lock.release()
