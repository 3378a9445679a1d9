"""A partition's sequences per workspace (WLog offset, record IDs) and the rows that store them.

The partition is the only writer of its workspaces, so what is kept here is always current:
the command pipeline reads and advances it, the partition writer stores it with every group.
"""

from __future__ import annotations

import struct
from collections.abc import ItemsView
from dataclasses import dataclass, field

import orjson

from voedger.processors.principal import Principal, PrincipalMemo
from voedger.structs import ids
from voedger.structs.keys import app_state_key
from voedger.structs.pending import Pending
from voedger.structs.records import Record, get_record

MAX_CACHED_PRINCIPALS = 1024
"""Per workspace; the cache starts over when full."""


@dataclass
class WorkspaceSeq:
    """A workspace's sequences, and its descriptor: the partition is the only writer of both,
    so the copy kept here is always current."""

    next_wlog: int = ids.FIRST_OFFSET
    idgen: ids.IDGenerator = field(default_factory=ids.IDGenerator)
    descriptor: Record | None = None
    subjects: dict[str, Record | None] = field(default_factory=dict)
    """``sys.Subject`` records by login, as principals were resolved (emptied when one changes)."""
    principals: PrincipalMemo = field(default_factory=lambda: PrincipalMemo(MAX_CACHED_PRINCIPALS))
    """Principals by caller; emptied with ``subjects`` and on a new descriptor."""

    def known_principal(self, caller: object) -> Principal | None:
        return self.principals.get(caller)

    def remember_principal(self, caller: object, principal: Principal) -> None:
        self.principals.remember(caller, principal)

    def forget_principals(self) -> None:
        """A subject or the descriptor changed: resolve every caller again."""
        self.subjects.clear()
        self.principals.clear()

    def to_json(self) -> bytes:
        return orjson.dumps({"wlog": self.next_wlog, "id": self.idgen.next_id})

    @staticmethod
    def from_json(raw: bytes) -> WorkspaceSeq:
        data = orjson.loads(raw)
        return WorkspaceSeq(data["wlog"], ids.IDGenerator(data["id"]))


def ws_seq_key(wsid: int) -> bytes:
    return app_state_key("wsseq", struct.pack(">Q", wsid))


def part_seq_key(partition: int) -> bytes:
    return app_state_key("partseq", struct.pack(">H", partition))


class Workspaces:
    """The sequences of the workspaces a partition has met, loaded from storage on first use."""

    def __init__(self, descriptor_id: int) -> None:
        self.descriptor_id = descriptor_id
        """The singleton ID of ``sys.WorkspaceDescriptor``."""
        self._known: dict[int, WorkspaceSeq] = {}

    async def get(self, wsid: int, reader: Pending) -> WorkspaceSeq:
        ws = self._known.get(wsid)
        if ws is None:
            raw = await reader.get(ws_seq_key(wsid), b"")
            ws = WorkspaceSeq.from_json(raw) if raw is not None else WorkspaceSeq()
            ws.descriptor = await get_record(reader, wsid, self.descriptor_id)
            self._known[wsid] = ws
        return ws

    def known(self, wsid: int) -> WorkspaceSeq:
        """A workspace's sequences without reading storage: new ones where storage has none
        (the test kit, whose storage holds no sequence rows)."""
        ws = self._known.get(wsid)
        if ws is None:
            ws = self._known[wsid] = WorkspaceSeq()
        return ws

    def __getitem__(self, wsid: int) -> WorkspaceSeq:
        return self._known[wsid]

    def items(self) -> ItemsView[int, WorkspaceSeq]:
        return self._known.items()

    def clear(self) -> None:
        self._known.clear()
