"""The JWT secret: generated once, shared by every node (first writer wins), never shown."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from voedger.auth import (
    CLUSTER_SECRET_NAME,
    JWT_SECRET_NAME,
    FileSecretStore,
    SecretStoreError,
    StorageSecretStore,
    Tokens,
    cluster_secret,
    generate_secret,
    jwt_secret,
)
from voedger.auth.keystore import ClusterKeys, StorageKeySetStore
from voedger.auth.tokens import PrincipalPayload
from voedger.clock import ManualClock
from voedger.storage import AppStorage
from voedger.storage.mem import MemStorageFactory
from voedger.structs.keys import app_state_key


async def _storage() -> AppStorage:
    factory = MemStorageFactory(ManualClock())
    await factory.init("sys_vvm")
    return await factory.app_storage("sys_vvm")


class _LateReader(AppStorage):
    """A storage whose first read misses a row another node has just written: the race."""

    def __init__(self, inner: AppStorage) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.missed = False

    async def get(self, p_key: bytes, c_col: bytes) -> bytes | None:
        if not self.missed:
            self.missed = True
            return None
        return await self.inner.get(p_key, c_col)

    async def insert_if_not_exists(self, p_key: bytes, c_col: bytes, value: bytes, ttl: int = 0) -> bool:
        return await self.inner.insert_if_not_exists(p_key, c_col, value, ttl)

    async def put(self, p_key: bytes, c_col: bytes, value: bytes) -> None:  # pragma: no cover
        raise NotImplementedError

    async def put_batch(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> None:  # pragma: no cover
        raise NotImplementedError

    async def get_batch(self, p_key: bytes, c_cols: Sequence[bytes]) -> list[bytes | None]:  # pragma: no cover
        raise NotImplementedError

    def read(self, p_key: bytes, start: bytes = b"", finish: bytes = b"") -> object:  # type: ignore[override]  # pragma: no cover
        raise NotImplementedError

    async def compare_and_swap(  # pragma: no cover
        self, p_key: bytes, c_col: bytes, old: bytes, new: bytes, ttl: int = 0
    ) -> bool:
        raise NotImplementedError

    async def compare_and_delete(self, p_key: bytes, c_col: bytes, expected: bytes) -> bool:  # pragma: no cover
        raise NotImplementedError

    async def put_batch_if(  # pragma: no cover
        self, p_key: bytes, c_col: bytes, expected: bytes | None, new: bytes, rows: Sequence[tuple[bytes, bytes]]
    ) -> bool:
        raise NotImplementedError

    async def query_ttl(self, p_key: bytes, c_col: bytes) -> int | None:  # pragma: no cover
        raise NotImplementedError


def test_generate_secret() -> None:
    a, b = generate_secret(), generate_secret()
    assert len(a) == 64 and a != b
    with pytest.raises(ValueError):
        generate_secret(0)


class TestStorageStore:
    async def test_created_once(self) -> None:
        store = StorageSecretStore(await _storage())
        assert await store.read(JWT_SECRET_NAME) is None
        first = await jwt_secret(store)
        assert len(first) == 64
        assert await jwt_secret(store) == first
        assert await store.read(JWT_SECRET_NAME) == first

    async def test_the_cluster_secret_is_another_one_shared_alike(self) -> None:
        storage = await _storage()
        nodes = [StorageSecretStore(storage) for _ in range(4)]
        secrets = await asyncio.gather(*(cluster_secret(n) for n in nodes))
        assert len(set(secrets)) == 1 and len(secrets[0]) == 32
        assert await nodes[0].read(CLUSTER_SECRET_NAME) == secrets[0]
        assert secrets[0] != await jwt_secret(nodes[0])

    async def test_nodes_share_it(self) -> None:
        storage = await _storage()
        nodes = [StorageSecretStore(storage) for _ in range(8)]
        secrets = await asyncio.gather(*(jwt_secret(n) for n in nodes))
        assert len(set(secrets)) == 1

    async def test_a_given_value_is_kept_once(self) -> None:
        store = StorageSecretStore(await _storage())
        first, second = b"a" * 32, b"b" * 32
        assert await store.keep("given", first) == first
        assert await store.keep("given", second) == first  # the name was taken: the kept one
        assert await store.read("given") == first

    async def test_loser_of_the_race_reads_the_winner(self) -> None:
        storage = await _storage()
        winner = await jwt_secret(StorageSecretStore(storage))
        late = _LateReader(storage)
        assert await jwt_secret(StorageSecretStore(late)) == winner
        assert late.missed

    async def test_tokens_of_one_node_are_valid_on_another(self) -> None:
        storage = await _storage()
        clock = ManualClock()
        keys = [await ClusterKeys.open(StorageKeySetStore(storage), 1, clock) for _ in range(2)]
        node1 = Tokens(await jwt_secret(StorageSecretStore(storage)), clock, keys[0])
        node2 = Tokens(await jwt_secret(StorageSecretStore(storage)), clock, keys[1])
        token = node1.issue("untill/restaurant", PrincipalPayload(login="alice", profile_wsid=1))
        assert node2.validate("untill/restaurant", token).payload.login == "alice"

    async def test_short_stored_secret(self) -> None:
        storage = await _storage()
        await storage.put(app_state_key("secret", JWT_SECRET_NAME.encode()), b"", b"short")
        with pytest.raises(SecretStoreError) as info:
            await jwt_secret(StorageSecretStore(storage))
        assert "short" not in str(info.value)

    async def test_names(self) -> None:
        store = StorageSecretStore(await _storage())
        assert len(await store.get_or_create("smtpPassword", 16)) == 16
        for bad in ["", "../x", "a b", ".hidden"]:
            with pytest.raises(ValueError):
                await store.get_or_create(bad)


class TestFileStore:
    async def test_created_once_with_mode_0600(self, tmp_path: Path) -> None:
        store = FileSecretStore(tmp_path / "secrets")
        assert await store.read(JWT_SECRET_NAME) is None
        first = await jwt_secret(store)
        assert len(first) == 64
        path = tmp_path / "secrets" / JWT_SECRET_NAME
        assert path.read_bytes() == first
        if sys.platform != "win32":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
        assert await jwt_secret(FileSecretStore(tmp_path / "secrets")) == first
        assert [p.name for p in (tmp_path / "secrets").iterdir()] == [JWT_SECRET_NAME]  # no temporary files

    def test_processes_racing(self, tmp_path: Path) -> None:
        stores = [FileSecretStore(tmp_path) for _ in range(16)]
        with ThreadPoolExecutor(8) as pool:
            secrets = list(pool.map(lambda s: s.get_or_create_sync(JWT_SECRET_NAME), stores))
        assert len(set(secrets)) == 1
        assert sorted(os.listdir(tmp_path)) == [JWT_SECRET_NAME]

    def test_short_file(self, tmp_path: Path) -> None:
        (tmp_path / JWT_SECRET_NAME).write_bytes(b"x" * 10)
        with pytest.raises(SecretStoreError):
            FileSecretStore(tmp_path).get_or_create_sync(JWT_SECRET_NAME)

    @pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
    def test_unwritable_directory(self, tmp_path: Path) -> None:
        if os.geteuid() == 0:
            pytest.skip("root writes anywhere")
        tmp_path.chmod(0o500)
        try:
            with pytest.raises(SecretStoreError):
                FileSecretStore(tmp_path).get_or_create_sync(JWT_SECRET_NAME)
        finally:
            tmp_path.chmod(0o700)

    def test_repr(self, tmp_path: Path) -> None:
        store = FileSecretStore(tmp_path)
        secret = store.get_or_create_sync(JWT_SECRET_NAME)
        assert secret.hex() not in repr(store)
