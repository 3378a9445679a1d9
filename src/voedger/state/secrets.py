"""The deployment's secrets that extensions read by name (``sys.AppSecret``): files of one
folder, as Voedger reads them from its ``SECRET_ROOT`` (``voedger server --secrets-dir``).

A name is one file of that folder: a blank name, a path, or a hidden file is refused. A file is
read when asked for, so a secret changed on disk is seen at the next read. Contents are never
logged; keep the folder readable by the server's user alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["SecretFiles"]


class SecretFiles(Mapping[str, str]):
    """``name -> contents`` of the files of ``root`` (a KeyError for a missing one)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        if not name.strip() or name.startswith(".") or any(c in name for c in "/\\\0"):
            raise KeyError(name)
        return self.root / name

    def __getitem__(self, name: str) -> str:
        try:
            return self._path(name).read_text()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        if not self.root.is_dir():
            return iter(())
        return iter(sorted(p.name for p in self.root.iterdir() if p.is_file() and not p.name.startswith(".")))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"SecretFiles({len(self)} files)"
