"""The embedded driver's promises: an acknowledged write survives ``kill -9``, and concurrent
writers share commits (group commit) without losing that promise."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from voedger.storage import open_storage
from voedger.storage.errors import InvalidKeyError
from voedger.storage.sqlite import SQLiteAppStorage

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from voedger.storage import open_storage

    async def main(directory):
        provider = open_storage("sqlite://" + directory)
        storage = await provider.app_storage("test/crash")

        async def writer(w):
            i = 0
            while True:
                key = b"%d-%d" % (w, i)
                if i % 3 == 0:
                    await storage.put_batch([(b"batch", key, key), (key, b"", key)])
                else:
                    await storage.put(key, b"", key)
                sys.stdout.write(key.decode() + "\\n")
                sys.stdout.flush()
                i += 1

        await asyncio.gather(*(writer(w) for w in range(16)))

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True, bufsize=1)
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        while len(acked) < 600:
            line = proc.stdout.readline()
            assert line, "the writer process ended early"
            acked.append(line.strip())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    provider = open_storage(f"sqlite://{tmp_path}")
    storage = await provider.app_storage("test/crash")
    missing = [k for k in acked if await storage.get(k.encode(), b"") != k.encode()]
    assert missing == []
    batch_keys = {c async for c, _ in storage.read(b"batch")}
    for k in acked:
        _, i = k.split("-")
        if int(i) % 3 == 0:
            assert k.encode() in batch_keys
    await provider.close()


async def test_concurrent_writers_share_commits(tmp_path: Path) -> None:
    provider = open_storage(f"sqlite://{tmp_path}")
    storage = await provider.app_storage("test/group")
    assert isinstance(storage, SQLiteAppStorage)
    before = storage.writer.commits
    await asyncio.gather(*(storage.put(b"k%d" % i, b"", b"v") for i in range(256)))
    commits = storage.writer.commits - before
    assert 1 <= commits < 256
    assert all([await storage.get(b"k%d" % i, b"") == b"v" for i in range(256)])
    await provider.close()


async def test_row_groups_of_every_size_are_written_whole(tmp_path: Path) -> None:
    """A group of plain rows goes in as one padded statement, or in several within a transaction
    when it is larger than one statement holds; either way every row lands, the last write of a
    key wins, and nothing else is written."""
    provider = open_storage(f"sqlite://{tmp_path}")
    storage = await provider.app_storage("test/sizes")
    for n in (1, 5, 300, 8193, 20_000):
        rows = [(b"p%d" % n, b"c%06d" % i, b"v%d" % i) for i in range(n)]
        rows.append((b"p%d" % n, b"c000000", b"last"))  # the same key again, later in the group
        await storage.put_batch(rows)
        got = [(c, v) async for c, v in storage.read(b"p%d" % n)]
        assert len(got) == n
        assert got[0] == (b"c000000", b"last")
        if n > 1:
            assert got[-1] == (b"c%06d" % (n - 1), b"v%d" % (n - 1))
    await provider.close()


async def test_begin_put_batch_hands_the_rows_over_before_the_loop_turns(tmp_path: Path) -> None:
    """The command processor starts its group's write this way: the writer thread commits it
    even while the event loop is still busy, and failures surface where it is awaited."""
    provider = open_storage(f"sqlite://{tmp_path}")
    storage = await provider.app_storage("test/begin")
    assert isinstance(storage, SQLiteAppStorage)
    before = storage.writer.commits
    durable = storage.begin_put_batch([(b"p", b"c", b"v")])
    deadline = time.monotonic() + 10
    while storage.writer.commits == before and time.monotonic() < deadline:
        time.sleep(0.01)  # the loop does not turn: no coroutine of the write could run
    assert storage.writer.commits == before + 1
    await durable
    assert await storage.get(b"p", b"c") == b"v"
    bad = storage.begin_put_batch([(b"", b"c", b"v")])  # an empty partition key
    with pytest.raises(InvalidKeyError):
        await bad
    await storage.begin_put_batch([])
    await provider.close()
