"""Bytes of their own size, for values kept long.

orjson (3.12 on) returns bytes whose buffer is at least 4 KiB whatever their length, and never
shrinks it (``sys.getsizeof`` shows the length, not the buffer). A value that is written and
dropped costs nothing more, but one kept in memory (the ``mem://`` driver's rows, a cache) holds
its 4 KiB: a 300-byte row kept that way made a server grow 13 times the bytes it held. Whatever
keeps serialised values for long keeps ``trimmed(value)``.
"""

from __future__ import annotations


def trimmed(value: bytes) -> bytes:
    """A copy of ``value`` in a buffer of its own length (a fraction of a microsecond)."""
    return bytes(memoryview(value))
