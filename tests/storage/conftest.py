"""Fixtures for the one contract suite: the same tests run against every driver.

Each driver gets one storage for the whole session; every test works under partition keys
of its own (``keys``), so the Cassandra tier does not pay for a keyspace per test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from voedger.clock import ManualClock
from voedger.storage import AppStorage, AppStorageFactory, open_factory
from voedger.storage.cassandra import CassandraStorageFactory

CASSANDRA_ENV = "VOEDGER_TEST_CASSANDRA"


def cassandra_url(extra: str = "") -> str:
    hosts = os.environ.get(CASSANDRA_ENV)
    if not hosts:
        pytest.fail(f"{CASSANDRA_ENV} is not set: run the Cassandra tier with `make test-cassandra`")
    return f"cassandra://{hosts}/?replication=1&consistency=QUORUM{extra}"


@dataclass
class Driver:
    factory: AppStorageFactory
    storage: AppStorage
    clock: ManualClock | None


DRIVERS = [
    pytest.param("mem", id="mem"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("cassandra", id="cassandra", marks=pytest.mark.cassandra),
]


@pytest.fixture(scope="session", params=DRIVERS)
async def driver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Driver]:
    name: str = request.param
    clock = ManualClock()
    if name == "mem":
        factory = open_factory("mem://", clock)
    elif name == "sqlite":
        factory = open_factory(f"sqlite://{tmp_path_factory.mktemp('sqlite')}", clock)
    else:
        factory = open_factory(cassandra_url())
    await factory.open()
    safe = "contract" + uuid.uuid4().hex[:12]
    await factory.init(safe)
    storage = await factory.app_storage(safe)
    yield Driver(factory, storage, clock if factory.capabilities.manual_clock else None)
    if isinstance(factory, CassandraStorageFactory):
        await factory.drop(safe)  # a keyspace left behind costs the shared cluster heap
    await factory.close()


@pytest.fixture
def storage(driver: Driver) -> AppStorage:
    return driver.storage


@pytest.fixture
def keys() -> Callable[[bytes], bytes]:
    """Partition keys unique to one test: ``keys(b"x")``."""
    prefix = uuid.uuid4().bytes

    def make(name: bytes = b"") -> bytes:
        return prefix + name

    return make


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path
