"""The embedded driver's reads: short ones on the caller's thread, the rest of a long range on
the reader threads; either way every row once, in order, and every acknowledged write seen."""

from __future__ import annotations

import threading
from pathlib import Path

from voedger.storage import open_storage
from voedger.storage import sqlite as driver


async def test_ranges_across_the_inline_page_and_the_reader_pages(tmp_path: Path) -> None:
    provider = open_storage(f"sqlite://{tmp_path}")
    storage = await provider.app_storage("test/ranges")
    inline = driver.INLINE_ROWS
    page = driver._READ_PAGE
    sizes = (0, 1, inline - 1, inline, inline + 1, inline + page - 1, inline + page, inline + page + 1, 2500)
    for n in sizes:
        p = b"p%d" % n
        await storage.put_batch([(p, b"c%06d" % i, b"v%d" % i) for i in range(n)])
        got = [c async for c, _ in storage.read(p)]
        assert got == [b"c%06d" % i for i in range(n)], n
        # From a start and up to a finish, crossing the pages' edges.
        got = [c async for c, _ in storage.read(p, b"c%06d" % 3, b"c%06d" % (n - 2))]
        assert got == [b"c%06d" % i for i in range(3, n - 2)], n
    await provider.close()


async def test_a_short_read_runs_on_the_callers_thread_and_sees_every_acknowledged_write(tmp_path: Path) -> None:
    provider = open_storage(f"sqlite://{tmp_path}")
    storage = await provider.app_storage("test/inline")
    assert isinstance(storage, driver.SQLiteAppStorage)
    threads: list[int] = []
    reader = storage._reader

    def spy() -> object:
        threads.append(threading.get_ident())
        return reader()

    storage._reader = spy  # type: ignore[method-assign]
    for i in range(50):
        await storage.put(b"p", b"c", b"v%d" % i)
        assert await storage.get(b"p", b"c") == b"v%d" % i  # acknowledged, so seen at once
        assert await storage.get_batch(b"p", [b"c", b"x"]) == [b"v%d" % i, None]
        assert [v async for _, v in storage.read(b"p")] == [b"v%d" % i]
    assert set(threads) == {threading.get_ident()}  # short reads: no hand-off to a reader thread
    await storage.put_batch([(b"q", b"c%04d" % i, b"v") for i in range(driver.INLINE_ROWS + 5)])
    threads.clear()
    assert len([c async for c, _ in storage.read(b"q")]) == driver.INLINE_ROWS + 5
    assert threads[0] == threading.get_ident() and threading.get_ident() not in threads[1:]
    await provider.close()
