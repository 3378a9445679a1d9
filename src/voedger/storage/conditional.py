"""Conditional writes of one row, as the stores above the storage layer use them: a row created
once and read by whoever lost the race, and a row replaced only while it still holds what its
writer read (compare-and-swap; nothing read: the row must not exist yet)."""

from __future__ import annotations

from voedger.storage.contract import AppStorage

__all__ = ["insert_or_get", "write_if"]


async def insert_or_get(storage: AppStorage, p_key: bytes, c_col: bytes, value: bytes, vanished: Exception) -> bytes:
    """Store ``value`` in the row unless it exists; the value the row keeps: ``value`` itself
    (the same object) or the one another writer stored first. Raises ``vanished`` if the row is
    gone by the time it is read (rows written this way are never deleted)."""
    if await storage.insert_if_not_exists(p_key, c_col, value):
        return value
    winner = await storage.get(p_key, c_col)
    if winner is None:  # pragma: no cover - the callers' rows are never deleted
        raise vanished
    return winner


async def write_if(storage: AppStorage, p_key: bytes, c_col: bytes, expected: bytes | None, new: bytes) -> bool:
    """Set the row to ``new`` if it still holds ``expected`` (None: if it does not exist);
    False if another writer changed it first."""
    if expected is None:
        return await storage.insert_if_not_exists(p_key, c_col, new)
    return await storage.compare_and_swap(p_key, c_col, expected, new)
