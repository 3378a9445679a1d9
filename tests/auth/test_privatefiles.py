"""The temporary files the secret and signing-key file stores write before linking them in."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from voedger.auth.privatefiles import fsync_dir, write_private_tmp


def test_a_temporary_file_is_private_and_holds_the_value(tmp_path: Path) -> None:
    first = write_private_tmp(tmp_path, "secretKeyJWT", b"value")
    second = write_private_tmp(tmp_path, "secretKeyJWT", b"other")
    assert first != second and first.parent == tmp_path == second.parent
    assert first.name.startswith(".secretKeyJWT.") and first.name.endswith(".tmp")
    assert first.read_bytes() == b"value" and second.read_bytes() == b"other"
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    fsync_dir(tmp_path)


def test_nothing_is_left_when_writing_fails(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_private_tmp(tmp_path, "k", "not bytes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):
        write_private_tmp(tmp_path / "missing", "k", b"v")
