"""Writes that a partition has decided but not yet made durable.

A partition's writer processes a group of commands before one durable ``put_batch``; later
commands of the group must see what earlier ones wrote. ``Pending`` collects rows and answers
reads from them first, falling back to its base: the storage, or another ``Pending`` (a
command's own writes sit over its group's, and are dropped if the command fails).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator

from voedger.storage import AppStorage, BatchItem
from voedger.trim import trimmed

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
            settled[key] = trimmed(value)  # kept for long: see voedger.trim
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

    def read(self, p_key: bytes, start: bytes = b"", finish: bytes = b"") -> AsyncIterator[tuple[bytes, bytes]]:
        """The base's rows of a partition key from ``start`` up to ``finish``, this set's over them."""
        mine = {c: v for (p, c), v in self._rows.items() if p == p_key and c >= start and (not finish or c < finish)}
        rows = self.base.read(p_key, start, finish)
        return _Overlaid(rows, mine) if mine else rows


class _Overlaid:
    """Rows of a base with some replaced or added, in clustering order. An async generator
    written out as a class: the native build (mypyc) compiles no async generators."""

    __slots__ = ("_base", "_merged", "_overlay")

    def __init__(self, base: AsyncIterator[tuple[bytes, bytes]], overlay: dict[bytes, bytes]) -> None:
        self._base = base
        self._overlay = overlay
        self._merged: Iterator[tuple[bytes, bytes]] | None = None

    def __aiter__(self) -> _Overlaid:
        return self

    async def __anext__(self) -> tuple[bytes, bytes]:
        if self._merged is None:
            merged: dict[bytes, bytes] = {}
            async for c, v in self._base:
                merged[c] = v
            merged.update(self._overlay)
            self._merged = iter(sorted(merged.items()))
        try:
            return next(self._merged)
        except StopIteration:
            raise StopAsyncIteration from None
