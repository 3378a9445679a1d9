"""Writes that a partition has decided but not yet made durable.

A partition's writer processes a group of commands before one durable ``put_batch``; later
commands of the group must see what earlier ones wrote. ``Pending`` collects rows and answers
reads from them first, falling back to its base: the storage, or another ``Pending`` (a
command's own writes sit over its group's, and are dropped if the command fails).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator

from voedger.storage import AppStorage, BatchItem

SETTLED_ROWS = 8192


class Pending:
    __slots__ = ("_rows", "_settled", "base", "storage")

    def __init__(self, base: AppStorage | Pending) -> None:
        self.base = base
        self.storage: AppStorage = base.storage if isinstance(base, Pending) else base
        self._rows: dict[tuple[bytes, bytes], bytes] = {}
        self._settled: OrderedDict[tuple[bytes, bytes], bytes] | None = None
        """Made on the first ``settle``: most sets (one per command) never settle."""

    def put(self, p_key: bytes, c_col: bytes, value: bytes) -> None:
        self._rows[(p_key, c_col)] = value

    def items(self) -> list[BatchItem]:
        return [(p, c, v) for (p, c), v in self._rows.items()]

    def __len__(self) -> int:
        return len(self._rows)

    def __bool__(self) -> bool:
        return bool(self._rows)

    def clear(self) -> None:
        self._rows.clear()

    def settle(self) -> None:
        """The rows were written: keep the latest few thousand to answer point reads.

        Only for an owner that is the sole writer of its rows (an async projector's views in
        its partition): nobody else can change them behind its back.
        """
        settled = self._settled
        if settled is None:
            settled = self._settled = OrderedDict()
        for key, value in self._rows.items():
            settled[key] = value
            settled.move_to_end(key)
        self._rows.clear()
        while len(settled) > SETTLED_ROWS:
            settled.popitem(last=False)

    def absorb(self, other: Pending) -> None:
        """Take another set's rows (a command's writes joining its group's)."""
        self._rows.update(other._rows)

    async def get(self, p_key: bytes, c_col: bytes) -> bytes | None:
        hit = self._rows.get((p_key, c_col))
        if hit is None and self._settled:
            hit = self._settled.get((p_key, c_col))
        if hit is not None:
            return hit
        return await self.base.get(p_key, c_col)

    async def read(self, p_key: bytes, start: bytes = b"", finish: bytes = b"") -> AsyncIterator[tuple[bytes, bytes]]:
        mine = sorted(
            (c, v) for (p, c), v in self._rows.items() if p == p_key and c >= start and (not finish or c < finish)
        )
        if not mine:
            async for row in self.base.read(p_key, start, finish):
                yield row
            return
        overlay = dict(mine)
        merged: dict[bytes, bytes] = {}
        async for c, v in self.base.read(p_key, start, finish):
            merged[c] = v
        merged.update(overlay)
        for c in sorted(merged):
            yield c, merged[c]
