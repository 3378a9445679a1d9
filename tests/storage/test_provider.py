"""The provider: one storage per application, a registry that survives restarts and reports
half-created storages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from voedger.storage import (
    StorageError,
    open_storage,
    safe_app_name,
)
from voedger.storage.provider import DONE, PENDING, AppStorageDesc, StorageProvider


@pytest.mark.parametrize(
    ("app", "safe"),
    [
        ("sys/registry", "sysregistry"),
        ("untill/Air-Bo_Office", "untillairbooffice"),
        ("1test/app", "atestapp"),
        ("x/" + "a" * 60, "x" + "a" * 42),
    ],
)
def test_safe_app_name(app: str, safe: str) -> None:
    assert safe_app_name(app) == safe


def test_safe_app_name_of_nothing_usable_is_random() -> None:
    a, b = safe_app_name("/"), safe_app_name("/")
    assert a != b and len(a) == 32 and a[0].isalpha()


async def test_app_storage_is_created_once_and_cached() -> None:
    provider = open_storage("mem://")
    s1 = await provider.app_storage("test/app1")
    s2 = await provider.app_storage("test/app1")
    s3 = await provider.app_storage("test/app2")
    assert s1 is s2 and s1 is not s3
    await s1.put(b"p", b"c", b"v")
    assert await s3.get(b"p", b"c") is None
    assert await provider.describe("test/app1") == AppStorageDesc("testapp1", DONE)
    assert await provider.describe("never/asked") is None
    await provider.close()


async def test_colliding_safe_names_get_distinct_storages() -> None:
    provider = open_storage("mem://")
    a = await provider.app_storage("test/my-app")
    b = await provider.app_storage("test/myapp")
    assert a is not b
    da, db = await provider.describe("test/my-app"), await provider.describe("test/myapp")
    assert da is not None and db is not None
    assert da.safe_name == "testmyapp" and db.safe_name.startswith("testmyapp") and db.safe_name != "testmyapp"


@pytest.mark.parametrize("app", ["", "noslash", "a/b/c", "/app", "owner/"])
async def test_bad_application_names(app: str) -> None:
    provider = open_storage("mem://")
    with pytest.raises(StorageError, match="owner/app"):
        await provider.app_storage(app)


async def test_registry_survives_restart(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}"
    provider = open_storage(url)
    await (await provider.app_storage("test/app")).put(b"p", b"c", b"kept")
    await provider.close()
    provider = open_storage(url)
    assert await (await provider.app_storage("test/app")).get(b"p", b"c") == b"kept"
    await provider.close()


async def _write_desc(provider: StorageProvider, app: str, desc: AppStorageDesc) -> None:
    meta = await provider._meta_storage()
    await meta.put(app.encode(), b"\x01", desc.encode())


async def test_pending_storage_is_completed_on_next_start(tmp_path: Path) -> None:
    """A crash after the Pending descriptor but before the storage existed: finish the job."""
    provider = open_storage(f"sqlite://{tmp_path}")
    await _write_desc(provider, "test/app", AppStorageDesc("testapp", PENDING))
    storage = await provider.app_storage("test/app")
    await storage.put(b"p", b"c", b"v")
    assert await provider.describe("test/app") == AppStorageDesc("testapp", DONE)
    await provider.close()


async def test_storage_created_but_not_recorded_is_completed(tmp_path: Path) -> None:
    """A crash after the storage was created but before Done (or another process of the
    cluster creating it at this moment): its name is this application's, so it is opened and
    recorded as done."""
    provider = open_storage(f"sqlite://{tmp_path}")
    await _write_desc(provider, "test/app", AppStorageDesc("testapp", PENDING))
    await provider.factory.init("testapp")
    storage = await provider.app_storage("test/app")
    await storage.put(b"p", b"c", b"v")
    assert await provider.describe("test/app") == AppStorageDesc("testapp", DONE)
    await provider.close()


async def test_processes_creating_one_storage_at_once_all_get_it() -> None:
    """Several processes of a cluster start at once on a fresh storage: each gets the one storage."""
    from voedger.storage import StorageProvider
    from voedger.storage.mem import MemStorageFactory

    factory = MemStorageFactory()
    providers = [StorageProvider(factory) for _ in range(4)]
    storages = await asyncio.gather(*(p.app_storage("test/app") for p in providers))
    assert all(s is storages[0] for s in storages)
    assert await providers[0].describe("test/app") == AppStorageDesc("testapp", DONE)
