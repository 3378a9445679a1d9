"""What every scenario does: a fresh storage on the three-node Cassandra, server processes on
it, a load with a history, and the checker at the end.

Each scenario gets keyspaces of its own through the URL's ``keyspace_suffix`` (every keyspace
the servers create, ``sysmeta`` included, carries it), so runs sharing the cluster never see
each other's data; they are dropped afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import string
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.checker import APP_DIR, APP_NAME, Report, check, settled_snapshot
from tests.cluster.harness import Harness
from tests.cluster.history import History
from tests.cluster.load import Load, LoadConfig
from voedger.storage import StorageError, open_storage
from voedger.storage.cassandra import CassandraStorageFactory
from voedger.storage.provider import META_STORAGE
from voedger.structs.wsid import app_wsid
from voedger.vvm.image import AppImage, load_image

log = logging.getLogger("tests.cluster")

CLUSTER_ENV = "VOEDGER_TEST_CLUSTER"
READ_ATTEMPTS = 5
"""Tries of the checker's read of the storage (each a settled snapshot)."""
_TAKEN = b"\x02"
"""The clustering column under which ``sysmeta`` records which application took a safe name."""


def cluster_hosts() -> list[str]:
    value = os.environ.get(CLUSTER_ENV, "").strip()
    if not value:
        pytest.fail(f"{CLUSTER_ENV} is not set: run this tier with `make test-cluster`")
    return [h.strip() for h in value.split(",") if h.strip()]


def cassandra_url(hosts: Sequence[str], suffix: str) -> str:
    """RF=3 and QUORUM: what issue 13's cluster runs on."""
    return f"cassandra://{','.join(hosts)}/?replication=3&consistency=QUORUM&keyspace_suffix={suffix}"


async def _keyspaces(factory: CassandraStorageFactory) -> set[str]:
    rows = await asyncio.to_thread(factory.session.execute, "SELECT keyspace_name FROM system_schema.keyspaces")
    return {str(r[0]) for r in rows}


async def fresh_suffix(hosts: Sequence[str]) -> str:
    """A keyspace suffix no keyspace of the cluster carries yet (its ``sysmeta`` is free)."""
    factory = await CassandraStorageFactory.connect(list(hosts))
    try:
        existing = await _keyspaces(factory)
        alphabet = string.ascii_lowercase + string.digits
        while True:
            suffix = "h" + "".join(secrets.choice(alphabet) for _ in range(4))
            if META_STORAGE + suffix not in existing:
                return suffix
    finally:
        await factory.close()


async def drop_keyspaces(url: str, suffix: str) -> list[str]:
    """Drop the keyspaces the servers made under ``url``: ``sysmeta`` and every storage it
    registers (found by name among the keyspaces carrying ``suffix``, so nothing else is
    touched). Returns what was dropped."""
    provider = open_storage(url)
    factory = provider.factory
    assert isinstance(factory, CassandraStorageFactory)
    dropped: list[str] = []
    try:
        await factory.open()
        names = {k[: -len(suffix)] for k in await _keyspaces(factory) if k.endswith(suffix)}
        if META_STORAGE not in names:
            return dropped
        meta = await factory.app_storage(META_STORAGE)
        for name in sorted(names - {META_STORAGE}):
            if await meta.get(name.encode(), _TAKEN) is not None:
                dropped.append(name)
        dropped.append(META_STORAGE)
        await asyncio.gather(*(factory.drop(name) for name in dropped))  # one by one: seconds each
        return dropped
    finally:
        await provider.close()


@dataclass
class Scenario:
    """One scenario's processes, history and storage."""

    workdir: Path
    storage_url: str
    harness: Harness
    image: AppImage
    history: History = field(default_factory=History)
    loads: list[Load] = field(default_factory=list)

    @property
    def wsids(self) -> list[int]:
        """Every application workspace of the load application (so every partition)."""
        return [app_wsid(1, n) for n in range(self.image.num_app_workspaces)]

    def new_load(self, config: LoadConfig | None = None, prefer: Callable[[int], str | None] | None = None) -> Load:
        load = Load(self.history, APP_NAME, self.wsids, self.harness.targets, config, prefer)
        self.loads.append(load)
        return load

    async def load(
        self, duration: float, config: LoadConfig | None = None, prefer: Callable[[int], str | None] | None = None
    ) -> History:
        return await self.new_load(config, prefer).run(duration)

    def start_load(self, duration: float, config: LoadConfig | None = None) -> asyncio.Task[History]:
        """The load as a task, so that the scenario injects faults meanwhile."""
        return asyncio.create_task(self.new_load(config).run(duration))

    async def check(self, catch_up_timeout: float = 60.0) -> Report:
        """Read the storage back once it is still (with the processes up, so that the projector
        catches up and a write in flight finishes) and verify the history; the history is saved
        next to the logs."""
        self.history.save(self.workdir / "history.json")
        began = time.monotonic()
        for attempt in range(1, READ_ATTEMPTS + 1):
            provider = open_storage(self.storage_url)
            try:
                storage = await provider.app_storage(APP_NAME)
                state, settled = await settled_snapshot(
                    storage, self.image.appdef, self.wsids, self.image.num_partitions, catch_up_timeout
                )
                break
            except StorageError as exc:
                # A node of the shared cluster just restarted may not know the keyspaces yet;
                # reading again is harmless, and the servers' own errors are in the history.
                if attempt == READ_ATTEMPTS:
                    raise
                log.warning("reading the storage back failed (attempt %d): %s", attempt, exc)
                await asyncio.sleep(3)
            finally:
                await provider.close()
        report = check(self.history, state, settled)
        log.info("checker (%.1f s):\n%s", time.monotonic() - began, report.summary())
        return report

    def context(self, report: Report | None = None) -> str:
        """What an assertion message should show: the report, the processes, where the logs are,
        and the Cassandra nodes the servers saw go down (other tests of the shared cluster kill
        nodes now and then; a stall or a 503 then may be theirs)."""
        down = self.harness.storage_nodes_down()
        parts = [
            report.summary() if report else "",
            self.harness.describe(),
            f"history: {self.workdir}/history.json",
            f"Cassandra nodes seen down during the run: {', '.join(down)}" if down else "",
        ]
        return "\n".join(p for p in parts if p)


@asynccontextmanager
async def running_scenario(
    workdir: Path,
    storage_url: str,
    processes: int,
    *,
    cluster: bool = False,
    lease_ttl: float | None = None,
    **harness_options: Any,
) -> AsyncIterator[Scenario]:
    """``processes`` servers of the load application on ``storage_url``, all ended afterwards."""
    image = load_image(APP_NAME, APP_DIR)
    apps = [(APP_NAME, APP_DIR)]
    harness = Harness(workdir, storage_url, apps, cluster=cluster, lease_ttl=lease_ttl, **harness_options)
    began = time.monotonic()
    try:
        await harness.start(processes)
        log.info("%d server process(es) ready in %.1f s", processes, time.monotonic() - began)
        yield Scenario(workdir, storage_url, harness, image)
    finally:
        await harness.close()


@asynccontextmanager
async def cassandra_scenario(
    workdir: Path, processes: int, *, cluster: bool, lease_ttl: float | None = None, **harness_options: Any
) -> AsyncIterator[Scenario]:
    """``processes`` servers on fresh keyspaces of the three-node cluster (RF=3, QUORUM); the
    keyspaces are dropped afterwards."""
    hosts = cluster_hosts()
    suffix = await fresh_suffix(hosts)
    url = cassandra_url(hosts, suffix)
    try:
        async with running_scenario(
            workdir, url, processes, cluster=cluster, lease_ttl=lease_ttl, **harness_options
        ) as scenario:
            yield scenario
    finally:
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                began = time.monotonic()
                dropped = await drop_keyspaces(url, suffix)
                log.info("dropped keyspaces %s (suffix %s) in %.1f s", dropped, suffix, time.monotonic() - began)
                break
            except Exception as exc:  # a node down now must not fail a passing test
                log.warning("could not drop the keyspaces of suffix %s (attempt %d): %s", suffix, attempt, exc)
                await asyncio.sleep(3)
