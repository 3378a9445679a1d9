"""How the Cassandra driver copes with a lost node, piece by piece, without a cluster.

The whole story (a real server, a node killed under load) is in
``tests/cluster/test_cassandra_node_loss.py``; here are its parts: which statements are retried
where, when batches bypass the coordinators' batch log, the own batch log's entry format, and
the URL options.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from cassandra import WriteType
from cassandra.policies import RetryPolicy
from cassandra.protocol import OverloadedErrorMessage
from cassandra.query import SimpleStatement

from voedger.devtools.nodeloss import Ack, longest_gap, rate
from voedger.storage import StorageError, StorageURLError, parse_storage_url
from voedger.storage.cassandra import CassandraStorageFactory, _LWTRetryPolicy, _WriteRetryPolicy
from voedger.storage.cassandra_batchlog import decode_rows, encode_rows
from voedger.storage.cassandra_nodes import NodeWatch
from voedger.storage.url import CassandraURL

RETRY, NEXT, RETHROW = RetryPolicy.RETRY, RetryPolicy.RETRY_NEXT_HOST, RetryPolicy.RETHROW


def _stmt(idempotent: bool) -> SimpleStatement:
    return SimpleStatement("SELECT 1", is_idempotent=idempotent)


# --- retries ------------------------------------------------------------------------------------


def test_idempotent_writes_are_retried_on_the_next_coordinator() -> None:
    policy = _WriteRetryPolicy()
    for write_type in (WriteType.SIMPLE, WriteType.BATCH, WriteType.UNLOGGED_BATCH):
        assert policy.on_write_timeout(_stmt(True), 4, write_type, 2, 1, 0)[0] == NEXT
        assert policy.on_write_timeout(_stmt(True), 4, write_type, 2, 1, _WriteRetryPolicy.WRITE_RETRIES)[0] == RETHROW
    # A conditional write (never marked idempotent), whatever its write type, is not resent.
    for write_type in (WriteType.SIMPLE, WriteType.BATCH, WriteType.CAS):
        assert policy.on_write_timeout(_stmt(False), 4, write_type, 2, 1, 0)[0] == RETHROW
    assert policy.on_write_timeout(_stmt(True), 4, WriteType.CAS, 2, 1, 0)[0] == RETHROW


def test_a_batch_log_timeout_is_handed_back_unless_there_is_no_own_batch_log() -> None:
    assert _WriteRetryPolicy(0).on_write_timeout(_stmt(True), 4, WriteType.BATCH_LOG, 2, 1, 0)[0] == RETHROW
    legacy = _WriteRetryPolicy(_WriteRetryPolicy.BATCH_LOG_RETRIES)
    assert legacy.on_write_timeout(_stmt(True), 4, WriteType.BATCH_LOG, 2, 1, 0)[0] == RETRY
    last = _WriteRetryPolicy.BATCH_LOG_RETRIES
    assert legacy.on_write_timeout(_stmt(True), 4, WriteType.BATCH_LOG, 2, 1, last)[0] == RETHROW


def test_reads_connection_errors_and_unavailable() -> None:
    policy = _WriteRetryPolicy()
    assert policy.on_read_timeout(_stmt(True), 4, 2, 1, False, 0)[0] == NEXT
    assert policy.on_read_timeout(_stmt(True), 4, 2, 1, False, 1)[0] == RETHROW
    assert policy.on_read_timeout(_stmt(False), 4, 2, 1, False, 0)[0] == RETHROW
    broken = ConnectionResetError("reset")
    assert policy.on_request_error(_stmt(True), 4, broken, 0)[0] == NEXT
    assert policy.on_request_error(_stmt(False), 4, broken, 0)[0] == RETHROW
    # An overloaded node refused before executing anything: any statement may go elsewhere.
    assert policy.on_request_error(_stmt(False), 4, OverloadedErrorMessage(0x1001, "busy", None), 0)[0] == NEXT
    assert policy.on_unavailable(_stmt(False), 4, 2, 1, 0)[0] == NEXT
    assert policy.on_unavailable(_stmt(False), 4, 2, 1, 1)[0] == RETHROW


def test_conditional_writes_are_never_resent() -> None:
    policy = _LWTRetryPolicy()
    assert policy.on_write_timeout(_stmt(False), 4, WriteType.CAS, 2, 1, 0)[0] == RETHROW
    assert policy.on_read_timeout(_stmt(False), 4, 2, 1, False, 0)[0] == RETHROW
    assert policy.on_request_error(_stmt(False), 4, ConnectionResetError("reset"), 0)[0] == RETHROW
    # Refused before Paxos began: once, elsewhere.
    assert policy.on_unavailable(_stmt(False), 4, 2, 1, 0)[0] == NEXT
    assert policy.on_unavailable(_stmt(False), 4, 2, 1, 1)[0] == RETHROW


# --- when to bypass the coordinators' batch log --------------------------------------------------


class _Host:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_node_going_down_bypasses_for_a_while() -> None:
    clock = _Clock()
    watch = NodeWatch(60.0, clock)
    assert not watch.bypassing()
    watch.on_down(_Host("127.0.0.2:9042"))
    assert watch.bypassing() and watch.down == {"127.0.0.2:9042"}
    clock.now += 59
    assert watch.bypassing()
    watch.on_up(_Host("127.0.0.2:9042"))
    assert watch.down == frozenset()
    clock.now += 2  # by now every coordinator has convicted the node, if it is still down
    assert not watch.bypassing()
    watch.trip()  # a logged batch timed out at the batch log
    assert watch.bypassing()


def test_no_bypass_when_turned_off() -> None:
    watch = NodeWatch(0.0)
    watch.on_down(_Host("127.0.0.2:9042"))
    watch.trip()
    assert not watch.bypassing()


async def test_subscribers_hear_of_a_node_going_down_on_their_loop() -> None:
    watch = NodeWatch(60.0)
    watch.attach(asyncio.get_running_loop())
    heard: list[str] = []
    done = asyncio.Event()

    def first() -> None:
        heard.append(threading.current_thread().name)
        done.set()

    watch.subscribe(first)
    unsubscribe = watch.subscribe(lambda: heard.append("unsubscribed"))
    unsubscribe()
    driver = threading.Thread(target=watch.on_down, args=(_Host("127.0.0.3:9042"),), name="driver")
    driver.start()
    driver.join()
    await asyncio.wait_for(done.wait(), 5)
    assert heard == [threading.current_thread().name]  # called on the loop, not the driver's thread
    # Each subscription is called once: a later loss wakes only new subscribers.
    watch.on_down(_Host("127.0.0.1:9042"))
    await asyncio.sleep(0.05)
    assert heard == [threading.current_thread().name]


# --- the own batch log's entries ----------------------------------------------------------------


def test_batch_log_entries_round_trip() -> None:
    rows = [(b"p1", b"", b""), (b"p\x00" * 300, b"c" * 70_000, b"v" * 100_000), (b"p1", b"c2", b"\xff")]
    assert decode_rows(encode_rows(rows)) == rows
    assert decode_rows(encode_rows([])) == []


@pytest.mark.parametrize("blob", [b"", b"\x02", b"\x01\x00\x00", b"\x01\x00\x00\x00\x05ab", b"\x01\x00\x00\x00\x01a"])
def test_unreadable_batch_log_entries_are_refused(blob: bytes) -> None:
    with pytest.raises(ValueError):
        decode_rows(blob)


# --- the URL options ------------------------------------------------------------------------------


def test_failover_options_have_defaults() -> None:
    url = parse_storage_url("cassandra://h")
    assert isinstance(url, CassandraURL)
    assert (url.request_timeout, url.speculative_delay, url.batchlog_bypass) == (8.0, 0.5, 60.0)
    assert (url.reconnect_max, url.heartbeat, url.connect_timeout) == (4.0, 5.0, 10.0)


def test_failover_options_are_parsed_and_reach_the_factory() -> None:
    url = parse_storage_url(
        "cassandra://h/?request_timeout=3.5&speculative_delay=0&batchlog_bypass=0&reconnect_max=1&heartbeat=2"
        "&connect_timeout=4"
    )
    assert isinstance(url, CassandraURL)
    factory = CassandraStorageFactory.from_url(url)
    assert factory.request_timeout == 3.5 and factory.speculative_delay == 0.0
    assert factory.batchlog_bypass == 0.0 and not factory.watch.bypass
    assert factory.reconnect_max == 1.0 and factory.heartbeat == 2.0 and factory.connect_timeout == 4.0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("request_timeout=0", "request_timeout must be more than 0"),
        ("request_timeout=abc", "request_timeout must be"),
        ("speculative_delay=-1", "speculative_delay must be 0 to 60"),
        ("batchlog_bypass=nan", "batchlog_bypass must be 0"),
        ("reconnect_max=0", "reconnect_max must be more than 0"),
        ("heartbeat=inf", "heartbeat must be"),
        ("connect_timeout=301", "connect_timeout must be"),
    ],
)
def test_bad_failover_options_are_named(query: str, message: str) -> None:
    with pytest.raises(StorageURLError, match=message):
        parse_storage_url(f"cassandra://h/?{query}")


def test_factory_refuses_nonsense_timings() -> None:
    with pytest.raises(Exception, match="request_timeout"):
        CassandraStorageFactory(["h"], request_timeout=0)
    with pytest.raises(Exception, match="must not be negative"):
        CassandraStorageFactory(["h"], batchlog_bypass=-1)


# --- the drill's arithmetic -----------------------------------------------------------------------


def _acks(*times: float) -> list[Ack]:
    return [Ack(t, 1, i, 0, i) for i, t in enumerate(times)]


def test_longest_gap_counts_from_the_last_ack_before_the_kill() -> None:
    acks = _acks(1.0, 2.0, 9.5, 3.5, 4.0)  # out of order, as concurrent clients record them
    assert longest_gap(acks, killed_at=3.0, ended_at=10.0) == (5.5, 1.0)  # 4.0 -> 9.5, from 2.0
    # A gap still open at the end counts.
    assert longest_gap(_acks(1.0, 3.2), killed_at=3.0, ended_at=10.0) == pytest.approx((6.8, 0.2))
    # No ack at all after the kill: the whole time since the last one.
    assert longest_gap(_acks(1.0), killed_at=3.0, ended_at=5.0) == (4.0, -2.0)
    assert rate(_acks(1.0, 2.0, 3.0, 4.0), 2.0, 4.0) == 1.0


async def test_dropping_a_runs_keyspaces_needs_a_distinctive_suffix() -> None:
    for suffix in ("", "a", "ab1"):
        with pytest.raises(StorageError, match="suffix of 4-5 characters"):
            await CassandraStorageFactory(["h"], keyspace_suffix=suffix).drop_all()
