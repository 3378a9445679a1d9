"""What every read of a workspace asks first, kept by the process that writes the workspace.

A read begins with the workspace's descriptor (its kind, whether it is active) and the caller's
principal there (the caller's ``sys.Subject`` records): two or three storage statements before
the data it asks for, and on Cassandra each statement costs the server a few hundred µs. The
partition that writes a workspace knows when either of them changes, since only its commands
write the descriptor and the subjects. So reads served by that process keep them here, per
partition (``Partition.reads``):

- when a group that wrote a descriptor or a ``sys.Subject`` is durable, the partition drops
  those workspaces' entries before it answers the group's commands: a read that starts after a
  command's answer reads storage again and sees the change (read-your-writes, as without the
  cache);
- a read that began before such a drop may still finish with what it read, as any read
  concurrent with a command may; what it read is not kept: an entry is only made when the
  partition's ``generation`` (moved on by every drop) is the one the read saw before it read
  the descriptor, and values read for an entry that was dropped meanwhile land in the dropped
  object, which nobody looks up again;
- a partition that recovers from storage, stops, hands over or is fenced is no longer asked
  (``AppRuntime.read_cache``); the next owner starts with an empty cache.

Records and view rows, what reads are for, are never kept here: they are read from storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from voedger.appdef import Workspace
from voedger.processors.principal import Principal, PrincipalMemo
from voedger.structs.records import Record

MAX_WORKSPACES = 4096
"""Entries per partition at most; the cache starts over when full."""
MAX_PRINCIPALS = 1024
"""Principals per workspace at most; the workspace's entry starts over when full."""


@dataclass
class KnownWorkspace:
    """A workspace's descriptor as last made durable, and principals resolved against it."""

    descriptor: Record
    kind: Workspace
    subjects: dict[str, Record | None] = field(default_factory=dict)
    """``sys.Subject`` records by login (None: the login has none here)."""
    principals: PrincipalMemo = field(default_factory=lambda: PrincipalMemo(MAX_PRINCIPALS))
    """Principals by caller, resolved against ``descriptor`` and ``subjects``."""

    def principal(self, caller: object) -> Principal | None:
        return self.principals.get(caller)

    def remember(self, caller: object, principal: Principal) -> None:
        if self.principals.remember(caller, principal):
            self.subjects.clear()  # started over: the subjects too, so that both stay bounded


class ReadCache:
    """One partition's ``KnownWorkspace`` entries (see the module's docstring)."""

    def __init__(self) -> None:
        self._known: dict[int, KnownWorkspace] = {}
        self.generation = 0
        """Moved on by every drop: an entry is made only by a read that saw the current one."""
        self.hits = 0
        self.misses = 0

    def get(self, wsid: int) -> KnownWorkspace | None:
        known = self._known.get(wsid)
        if known is None:
            self.misses += 1
        else:
            self.hits += 1
        return known

    def put(self, wsid: int, descriptor: Record, kind: Workspace, generation: int) -> KnownWorkspace:
        """An entry for what a read found; kept only if nothing was dropped since ``generation``
        (else the entry is returned for this read alone)."""
        known = KnownWorkspace(descriptor, kind)
        if generation == self.generation:
            if len(self._known) >= MAX_WORKSPACES:
                self._known.clear()
            self._known[wsid] = known
        return known

    def drop(self, wsids: Iterable[int]) -> None:
        """These workspaces' descriptors or subjects changed durably."""
        self.generation += 1
        for wsid in wsids:
            self._known.pop(wsid, None)

    def clear(self) -> None:
        self.generation += 1
        self._known.clear()

    def __len__(self) -> int:
        return len(self._known)
