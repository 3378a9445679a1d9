"""Files only their owner reads, written whole or not at all: the file stores of secrets and
signing keys write a temporary file (0600, synced) beside the target, then link or rename it
into place and sync the directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["fsync_dir", "write_private_tmp"]


def write_private_tmp(directory: Path, name: str, value: bytes) -> Path:
    """A new temporary file for ``name`` in ``directory`` (0600), holding ``value`` on disk;
    nothing is left behind if writing fails."""
    tmp = directory / f".{name}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, value)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` durable (a link or rename into it), where the system can."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
