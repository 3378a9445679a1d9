"""Copies every SQLite file of a data directory with SQLite's online backup API (run on a node).

Usage: python3 sqlite_backup.py DATA_DIR DEST_DIR. Each file is copied page by page from a
consistent read snapshot while the server writes on (WAL mode), into DEST_DIR/<name>.partial,
then renamed; prints the bytes written. Each application's file is consistent on its own.
"""

import sqlite3
import sys
from pathlib import Path


def main() -> None:
    data, dest = Path(sys.argv[1]), Path(sys.argv[2])
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for source in sorted(data.glob("*.db")):
        partial = dest / f"{source.name}.partial"
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        out = sqlite3.connect(partial)
        try:
            src.backup(out, pages=1024)
        finally:
            out.close()
            src.close()
        partial.rename(dest / source.name)
        total += (dest / source.name).stat().st_size
    print(total)


main()
