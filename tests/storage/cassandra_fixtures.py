"""Helpers shared by the Cassandra tests: where the project's Cassandra runs, and fresh keyspaces.

The one-node tier reads ``VOEDGER_TEST_CASSANDRA`` (``host:port``), the cluster tier
``VOEDGER_TEST_CLUSTER`` (``host1,host2,host3``); both are set by the Makefile targets that start
the matching Cassandra, so a test that finds neither set fails with the command to run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import pytest

from voedger.storage.cassandra import CassandraAppStorage, CassandraStorageFactory

CASSANDRA_ENV = "VOEDGER_TEST_CASSANDRA"
CLUSTER_ENV = "VOEDGER_TEST_CLUSTER"


def _hosts(env: str, target: str) -> list[str]:
    value = os.environ.get(env, "").strip()
    if not value:
        pytest.fail(f"{env} is not set: run this tier with `make {target}`")
    return [h.strip() for h in value.split(",") if h.strip()]


def cassandra_hosts() -> list[str]:
    """The one-node Cassandra of ``make test-cassandra``."""
    return _hosts(CASSANDRA_ENV, "test-cassandra")


def cluster_hosts() -> list[str]:
    """The three nodes of ``make test-cluster``."""
    return _hosts(CLUSTER_ENV, "test-cluster")


def unique_name(prefix: str) -> str:
    """A storage name no other test or run uses, so tests sharing a cluster never collide."""
    return prefix + uuid.uuid4().hex[:12]


@asynccontextmanager
async def fresh_storage(
    hosts: list[str], replication: Mapping[str, str] | None = None, prefix: str = "t"
) -> AsyncIterator[tuple[CassandraStorageFactory, CassandraAppStorage, str]]:
    """A connected factory with one new keyspace, dropped afterwards."""
    factory = await CassandraStorageFactory.connect(hosts, replication=replication, consistency="QUORUM")
    name = unique_name(prefix)
    try:
        await factory.init(name)
        storage = await factory.app_storage(name)
        assert isinstance(storage, CassandraAppStorage)
        yield factory, storage, name
    finally:
        try:
            await factory.drop(name)
        finally:
            await factory.close()
