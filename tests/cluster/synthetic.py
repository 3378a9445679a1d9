"""A synthetic load: events, records, view rows and a history written the way the server writes
them, into ``mem://`` storage, with knobs to break each rule the checker verifies.

The checker's unit tests (``test_checker.py``) start from a consistent run and break one thing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import orjson

from tests.cluster.checker import APP_NAME, COUNT_KEY, COUNT_PROJECTOR, LOAD_COUNT, LOAD_ITEM
from tests.cluster.history import ACKED, Attempt, History
from voedger.appdef import AppDef
from voedger.processors.actualizers import put_offset
from voedger.storage import AppStorage, open_storage
from voedger.structs.events import CUD, Event
from voedger.structs.ids import FIRST_USER_RECORD_ID
from voedger.structs.keys import plog_key, record_key, wlog_key
from voedger.structs.pending import Pending
from voedger.structs.views import put_row
from voedger.structs.wsid import app_wsid, partition_of


@dataclass
class Synthetic:
    """A run of the load application over ``workspaces`` app workspaces, built by hand."""

    appdef: AppDef
    num_partitions: int = 3
    workspaces: int = 4
    history: History = field(default_factory=History)
    rows: dict[tuple[bytes, bytes], bytes] = field(default_factory=dict)
    next_plog: defaultdict[int, int] = field(default_factory=lambda: defaultdict(lambda: 1))
    next_wlog: defaultdict[int, int] = field(default_factory=lambda: defaultdict(lambda: 1))
    next_id: defaultdict[int, int] = field(default_factory=lambda: defaultdict(lambda: FIRST_USER_RECORD_ID))
    counted: Counter[int] = field(default_factory=Counter)
    """LoadItems the projector has counted, per workspace."""
    last_counted: dict[int, int] = field(default_factory=dict)
    projected: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.history.load_started = 0.0

    @property
    def wsids(self) -> list[int]:
        return [app_wsid(1, n) for n in range(self.workspaces)]

    def event(self, wsid: int, token: str, record_id: int | None = None) -> Event:
        """The next event of ``wsid``, creating one LoadItem (offsets and ID taken in turn)."""
        partition = partition_of(wsid, self.num_partitions)
        if record_id is None:
            record_id = self.next_id[wsid]
            self.next_id[wsid] += 1
        cud = CUD(True, record_id, LOAD_ITEM, {"Token": token, "Client": 0, "Seq": 0, "sys.IsActive": True})
        e = Event("sys.CUD", wsid, partition, self.next_plog[partition], self.next_wlog[wsid], 1_000, cuds=(cud,))
        self.next_plog[partition] += 1
        self.next_wlog[wsid] += 1
        return e

    def write(self, e: Event, *, plog: bool = True, wlog: bool = True, record: bool = True) -> None:
        """Store an event as the partition does: PLog, WLog and the after-image of its record."""
        if plog:
            self.rows[plog_key(e.partition, e.plog_offset)] = e.encode()
        if wlog:
            self.rows[wlog_key(e.wsid, e.wlog_offset)] = e.encode(with_extra=False)
        if record:
            for c in e.cuds:
                self.rows[record_key(e.wsid, c.id)] = orjson.dumps(c.record())

    def attempt(
        self,
        wsid: int,
        token: str,
        outcome: str = ACKED,
        status: int | None = 200,
        wlog_offset: int | None = None,
        new_id: int | None = None,
    ) -> Attempt:
        """An attempt of the history, one second after the one before it."""
        n = len(self.history.attempts)
        return self.history.add(
            Attempt(
                request=n,
                attempt=1,
                token=token,
                target="p0",
                wsid=wsid,
                started=float(n),
                ended=n + 0.5,
                status=status,
                outcome=outcome,
                wlog_offset=wlog_offset,
                new_id=new_id,
            )
        )

    def command(self, wsid: int, token: str, outcome: str = ACKED, status: int | None = 200) -> Event:
        """A command that landed: its event stored, its attempt answered as ``outcome``."""
        e = self.event(wsid, token)
        self.write(e)
        if outcome == ACKED:
            self.attempt(wsid, token, outcome, status, wlog_offset=e.wlog_offset, new_id=e.cuds[0].id)
        else:
            self.attempt(wsid, token, outcome, status)
        self.count(e)
        return e

    def count(self, e: Event) -> None:
        """The projector handles ``e``: the workspace's counter and the partition's offset move on."""
        self.counted[e.wsid] += len(e.cuds)
        self.last_counted[e.wsid] = e.wlog_offset
        self.projected[e.partition] = max(self.projected.get(e.partition, 0), e.plog_offset)

    def run(self, per_workspace: int = 5) -> None:
        """A clean load: ``per_workspace`` acknowledged commands in every workspace."""
        for n in range(per_workspace):
            for wsid in self.wsids:
                self.command(wsid, f"t-{wsid}-{n}")
        self.history.load_ended = float(len(self.history.attempts))

    async def storage(self) -> AppStorage:
        """A ``mem://`` storage holding everything written, with the projector's view rows."""
        provider = open_storage("mem://")
        storage = await provider.app_storage(APP_NAME)
        writes = Pending(storage)
        for (p_key, c_col), value in self.rows.items():
            writes.put(p_key, c_col, value)
        for wsid, count in self.counted.items():
            row = {**COUNT_KEY, "Count": count, "LastOffset": self.last_counted[wsid]}
            put_row(writes, self.appdef.view(LOAD_COUNT), wsid, row)
        for partition, offset in self.projected.items():
            put_offset(writes, partition, COUNT_PROJECTOR, offset)
        await storage.put_batch(writes.items())
        return storage
