"""One snapshot for a whole read: the storage side of "a reader never sees part of a group".

A read (a query, an API v2 GET) makes several storage reads: a workspace's descriptor, then its
records or view rows. Each is its own snapshot unless they share a transaction, so a read could
straddle a commit and see the descriptor from before a group and the rows from after it. Inside
``read_snapshot()`` a driver that can (SQLite) serves every read of the current task from one
read transaction per storage, begun at the first read and ended when the block ends; drivers
that cannot (Cassandra, mem) ignore it. The scope travels in a context variable, so the layers
between the caller and the storage need not know of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

__all__ = ["ReadScope", "current_scope", "read_snapshot"]


class ReadScope:
    """What a snapshot holds open: per storage, its connection in a read transaction, and how
    to end it (called once, when the scope closes)."""

    __slots__ = ("ends", "held")

    def __init__(self) -> None:
        self.held: dict[object, object] = {}
        self.ends: list[Callable[[], None]] = []

    def close(self) -> None:
        ends, self.ends = self.ends, []
        self.held.clear()
        for end in ends:
            end()


_SCOPE: ContextVar[ReadScope | None] = ContextVar("voedger_read_scope", default=None)


def current_scope() -> ReadScope | None:
    return _SCOPE.get()


@contextlib.contextmanager
def read_snapshot() -> Iterator[ReadScope]:
    """Serve the reads inside the block from one snapshot per storage (nested blocks share the
    outer one)."""
    outer = _SCOPE.get()
    if outer is not None:
        yield outer
        return
    scope = ReadScope()
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)
        scope.close()
