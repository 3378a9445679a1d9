"""An embedded data directory holds secrets (sys/vvm keeps the JWT secret and signing keys): private to
the server's user. Tests run as root, who reads anything, so they check mode bits, not access."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from tests.router.conftest import SHOP_DIR
from voedger.auth import StorageKeySetStore, StorageSecretStore, jwt_secret
from voedger.storage.sqlite import SQLiteStorageFactory
from voedger.vvm.server import VVM, VVM_APP, ServerConfig


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_data_directory_and_its_storage_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{data}", apps=[("test/shop", SHOP_DIR)]))
    await vvm.start()
    try:
        assert vvm.provider is not None
        secret = await jwt_secret(StorageSecretStore(await vvm.provider.app_storage(VVM_APP)))
        assert len(secret) >= 32
        files = sorted(p for p in data.iterdir() if p.is_file())
        holders = [p for p in files if secret in p.read_bytes()]
        assert holders, "the JWT secret is in some file of the data directory"
        keys = await StorageKeySetStore(await vvm.provider.app_storage(VVM_APP)).load()
        assert keys is not None and vvm.tokens is not None
        assert vvm.tokens.keys.signing.kid.encode() in keys
        assert [p for p in files if keys in p.read_bytes()], "so are the signing keys"
        assert any(p.name.endswith("-wal") for p in files)  # WAL and shared memory files too
        assert mode(data) == 0o700
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        await vvm.stop()


async def test_storage_files_open_to_others_are_made_private_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = SQLiteStorageFactory(tmp_path)
    await first.take()
    await first.init("sys_vvm")
    await first.close()
    tmp_path.chmod(0o755)
    db = tmp_path / "sys_vvm.db"
    db.chmod(0o644)
    other = tmp_path / "notes.txt"  # not ours to judge
    other.write_text("x")
    other.chmod(0o644)
    caplog.set_level(logging.WARNING, "voedger.storage.sqlite")
    again = SQLiteStorageFactory(tmp_path)
    await again.take()
    await again.close()
    assert (mode(tmp_path), mode(db), mode(other)) == (0o700, 0o600, 0o644)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("sys_vvm.db" in w and "644" in w for w in warnings), warnings
    assert any(str(tmp_path) in w and "755" in w for w in warnings), warnings
