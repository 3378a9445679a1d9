"""The conditional one-row writes the stores above the storage layer share."""

from __future__ import annotations

import pytest

from voedger.clock import SYSTEM_CLOCK
from voedger.storage.conditional import insert_or_get, write_if
from voedger.storage.mem import MemAppStorage

P, C = b"p", b"c"


async def test_insert_or_get_keeps_the_first_value() -> None:
    storage = MemAppStorage(SYSTEM_CLOCK)
    first = b"first"
    assert await insert_or_get(storage, P, C, first, RuntimeError("gone")) is first
    assert await insert_or_get(storage, P, C, b"second", RuntimeError("gone")) == b"first"
    assert await storage.get(P, C) == b"first"


async def test_insert_or_get_raises_when_the_row_vanished() -> None:
    class Vanishing(MemAppStorage):
        async def insert_if_not_exists(self, p_key: bytes, c_col: bytes, value: bytes, ttl: int = 0) -> bool:
            return False  # as if another writer had inserted the row and it was gone since

    with pytest.raises(RuntimeError, match="gone"):
        await insert_or_get(Vanishing(SYSTEM_CLOCK), P, C, b"v", RuntimeError("gone"))


async def test_write_if_inserts_only_a_missing_row_and_swaps_only_the_expected_value() -> None:
    storage = MemAppStorage(SYSTEM_CLOCK)
    assert await write_if(storage, P, C, None, b"1")
    assert not await write_if(storage, P, C, None, b"other")
    assert not await write_if(storage, P, C, b"0", b"2")
    assert await storage.get(P, C) == b"1"
    assert await write_if(storage, P, C, b"1", b"2")
    assert await storage.get(P, C) == b"2"
