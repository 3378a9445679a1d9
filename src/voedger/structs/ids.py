"""Record IDs and log offsets, with Voedger's ranges.

Per workspace: 0 is null; 1..65535 are raw IDs a client picks inside one request (the server
maps them to real IDs and returns the map as ``NewIDs``); 65536..66047 are singleton IDs;
66048 is an ID that never exists (tests use it); generated IDs start at 200001.
Offsets (PLog per partition, WLog per workspace) start at 1; 0 is null.
"""

from __future__ import annotations

NULL_RECORD_ID = 0
MIN_RAW_RECORD_ID = 1
MAX_RAW_RECORD_ID = 0xFFFF
FIRST_SINGLETON_ID = 0x10000
MAX_SINGLETON_ID = FIRST_SINGLETON_ID + 0x1FF
NON_EXISTING_RECORD_ID = MAX_SINGLETON_ID + 1
FIRST_USER_RECORD_ID = 200001

NULL_OFFSET = 0
FIRST_OFFSET = 1


def is_raw_id(record_id: int) -> bool:
    return MIN_RAW_RECORD_ID <= record_id <= MAX_RAW_RECORD_ID


def is_singleton_id(record_id: int) -> bool:
    return FIRST_SINGLETON_ID <= record_id <= MAX_SINGLETON_ID


class IDGenerator:
    """Hands out a workspace's record IDs; recovery feeds it the IDs already in the log."""

    __slots__ = ("_next",)

    def __init__(self, next_id: int = FIRST_USER_RECORD_ID) -> None:
        self._next = next_id

    @property
    def next_id(self) -> int:
        return self._next

    def next(self) -> int:
        result = self._next
        self._next += 1
        return result

    def observe(self, record_id: int) -> None:
        """Remember an ID found in the log, so that it is never issued again."""
        if record_id >= self._next:
            self._next = record_id + 1
