"""A worker's copy of the federation secret: hex in a file only its owner may read.

``write_secret_file`` creates the file with mode 0600 and refuses to overwrite one;
``read_secret_file`` refuses a file that others may read (as ssh refuses such a key), a file
that is not hex, or a secret of the wrong length. The secret never appears in an error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from voedger.federation.store import FEDERATION_SECRET_LENGTH

__all__ = ["read_secret_file", "write_secret_file"]


def write_secret_file(path: Path, secret: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")


def read_secret_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read the federation secret file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(
            f"the federation secret file {path} may be read by others (mode {mode & 0o777:o}); chmod 600 it"
        )
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"the federation secret file {path} does not hold hex digits") from None
    if len(secret) != FEDERATION_SECRET_LENGTH:
        raise ValueError(f"the federation secret in {path} is {len(secret)} bytes, not {FEDERATION_SECRET_LENGTH}")
    return secret
