"""Storage URLs: every form accepted, every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from voedger.storage import StorageURLError, parse_storage_url
from voedger.storage.url import CassandraURL, MemURL, SQLiteURL


def test_mem() -> None:
    assert parse_storage_url("mem://") == MemURL()


def test_sqlite_absolute_and_relative() -> None:
    assert parse_storage_url("sqlite:///var/lib/voedger") == SQLiteURL(Path("/var/lib/voedger"))
    assert parse_storage_url("sqlite://data/dir") == SQLiteURL(Path("data/dir"))


def test_cassandra_defaults() -> None:
    url = parse_storage_url("cassandra://127.0.0.1")
    assert isinstance(url, CassandraURL)
    assert url.hosts == (("127.0.0.1", 9042),)
    assert url.replication == {"class": "SimpleStrategy", "replication_factor": "1"}
    assert url.consistency == "QUORUM"


def test_cassandra_full() -> None:
    url = parse_storage_url(
        "scylla://user:s3cret@10.0.0.1:9142,10.0.0.2,[::1]:9043/?replication=dc1:3,dc2:2"
        "&consistency=local_quorum&dc=dc1&keyspace_suffix=t1"
    )
    assert isinstance(url, CassandraURL)
    assert url.hosts == (("10.0.0.1", 9142), ("10.0.0.2", 9042), ("::1", 9043))
    assert url.replication == {"class": "NetworkTopologyStrategy", "dc1": "3", "dc2": "2"}
    assert url.consistency == "LOCAL_QUORUM"
    assert url.dc == "dc1" and url.keyspace_suffix == "t1"
    assert url.username == "user" and url.password == "s3cret"
    assert "s3cret" not in repr(url)


def test_cassandra_simple_replication() -> None:
    url = parse_storage_url("cassandra://h/?replication=3")
    assert isinstance(url, CassandraURL)
    assert url.replication == {"class": "SimpleStrategy", "replication_factor": "3"}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "malformed"),
        ("localhost:9042", "malformed"),
        ("postgres://h", "unknown scheme 'postgres'"),
        ("mem://somewhere", "takes no host"),
        ("sqlite://", "needs a directory"),
        ("cassandra://", "no host"),
        ("cassandra://h:99999", "bad port"),
        ("cassandra://h:abc", "bad port"),
        ("cassandra://h,,k", "empty host"),
        ("cassandra://h/?replication=0", "at least 1"),
        ("cassandra://h/?replication=dc1", "dc:factor"),
        ("cassandra://h/?consistency=MOST", "unknown consistency"),
        ("cassandra://h/?colour=red", "unknown parameter"),
        ("cassandra://h/?dc=a&dc=b", "given twice"),
        ("cassandra://h/path", "unexpected path"),
        ("cassandra://h/?keyspace_suffix=TOO_LONG", "keyspace_suffix"),
    ],
)
def test_mistakes_are_named(url: str, message: str) -> None:
    with pytest.raises(StorageURLError, match=message):
        parse_storage_url(url)


def test_password_never_appears_in_errors() -> None:
    with pytest.raises(StorageURLError) as info:
        parse_storage_url("cassandra://u:topsecret@h/?colour=red")
    assert "topsecret" not in str(info.value)
