"""Fencing: a partition writer that lost its ownership cannot append, even unaware of it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from tests.processors.conftest import WS, Shop
from voedger.appdef import QName
from voedger.clock import SYSTEM_CLOCK
from voedger.processors.command import CommandRequest
from voedger.processors.fence import HEAD_CCOL, FencedError, FencedWriter, Head, chunk_key, next_epoch
from voedger.processors.partition import NOT_OWNER_HEADER, Partition
from voedger.processors.principal import SYSTEM
from voedger.storage.mem import MemAppStorage
from voedger.structs.keys import ROWS_PER_PARTITION, plog_key
from voedger.structs.logs import read_plog, read_wlog
from voedger.structs.wsid import partition_of
from voedger.syserror import SysError


def _insert(name: str) -> dict[str, object]:
    return {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": name}}]}


async def _owner(shop: Shop, owner: str) -> Partition:
    """A new owner of WS's partition: a new epoch, claimed, recovered (as the VVM does)."""
    pid = partition_of(WS, shop.runtime.num_partitions)
    part = Partition(shop.runtime, pid)
    part.writer = FencedWriter(shop.storage, pid, await next_epoch(shop.storage, pid), owner)
    await part.start()
    return part


async def _send(part: Partition, name: str) -> int:
    result = await part.submit(CommandRequest(WS, QName("sys", "CUD"), _insert(name), SYSTEM))
    return result.wlog_offset


async def test_a_zombie_writer_is_fenced_and_the_new_owner_continues_the_log(shop: Shop) -> None:
    await shop.create_ws(WS)
    for p in shop.partitions.values():
        await p.stop()
    old = await _owner(shop, "a")
    assert await _send(old, "one") == 2
    new = await _owner(shop, "b")  # takes over while the old one still runs, unaware
    assert isinstance(new.writer, FencedWriter) and new.writer.epoch == 2
    fenced: list[Partition] = []
    old.on_fenced = fenced.append
    with pytest.raises(SysError) as err:
        await _send(old, "zombie")
    assert err.value.status == 503 and err.value.headers.get("Retry-After") == "1"
    assert fenced == [old]
    with pytest.raises(SysError) as err:  # and it takes nothing more
        await _send(old, "zombie again")
    assert err.value.status == 503
    assert await _send(new, "two") == 3
    names = [ev.cuds[0].fields.get("Name") for ev in [e async for e in read_wlog(shop.storage, WS)]]
    assert names == [None, "one", "two"]
    offsets = [ev.plog_offset async for ev in read_plog(shop.storage, new.id)]
    assert offsets == list(range(1, len(offsets) + 1))
    await new.stop()
    await old.stop()


async def test_events_a_former_owner_wrote_before_the_claim_are_kept(shop: Shop) -> None:
    await shop.create_ws(WS)
    for p in shop.partitions.values():
        await p.stop()
    old = await _owner(shop, "a")
    await _send(old, "one")
    new = await _owner(shop, "b")
    # The old owner's last group landed before the claim: the new owner recovered past it.
    assert new.next_plog == old.next_plog
    assert await _send(new, "two") == 3
    await new.stop()
    await old.stop()


async def test_claim_refuses_an_older_or_equal_epoch() -> None:
    storage = MemAppStorage(SYSTEM_CLOCK)
    newer = FencedWriter(storage, 0, 5, "b")
    await newer.claim(1)
    older = FencedWriter(storage, 0, 4, "a")
    with pytest.raises(FencedError):
        await older.claim(1)
    rival = FencedWriter(storage, 0, 5, "c")
    with pytest.raises(FencedError):
        await rival.claim(1)
    head = await storage.get(chunk_key(0, 0), HEAD_CCOL)
    assert head is not None and Head.decode(head).owner == "b"


async def test_a_writer_enters_a_chunk_nobody_claimed_and_is_fenced_in_one_a_newer_owner_claimed() -> None:
    storage = MemAppStorage(SYSTEM_CLOCK)
    old = FencedWriter(storage, 0, 1, "a")
    await old.claim(ROWS_PER_PARTITION - 1)  # chunks 0 and 1
    row = plog_key(0, 2 * ROWS_PER_PARTITION)
    await old.begin([(row[0], row[1], b"e")], 2 * ROWS_PER_PARTITION + 1)  # chunk 2: if not exists
    new = FencedWriter(storage, 0, 2, "b")
    await new.claim(2 * ROWS_PER_PARTITION + 1)  # chunks 2 and 3
    nxt = plog_key(0, 2 * ROWS_PER_PARTITION + 1)
    with pytest.raises(FencedError):
        await old.begin([(nxt[0], nxt[1], b"zombie")], 2 * ROWS_PER_PARTITION + 2)
    assert await storage.get(*nxt) is None


async def test_an_expired_lease_writes_nothing() -> None:
    storage = MemAppStorage(SYSTEM_CLOCK)
    valid = [True]
    writer = FencedWriter(storage, 0, 1, "a", lambda: valid[0])
    await writer.claim(1)
    valid[0] = False
    row = plog_key(0, 1)
    with pytest.raises(FencedError):
        await writer.begin([(row[0], row[1], b"e"), (b"other", b"", b"x")], 2)
    assert await storage.get(*row) is None and await storage.get(b"other", b"") is None


class _LeaseRunsOutDuringTheWrite(MemAppStorage):
    """Storage whose conditional write applies, and then the writer's lease has run out (the
    process was paused between its two writes)."""

    def __init__(self) -> None:
        super().__init__(SYSTEM_CLOCK)
        self.valid = True
        self.armed = False

    async def put_batch_if(self, *args: Any, **kwargs: Any) -> bool:
        applied = await super().put_batch_if(*args, **kwargs)
        if self.armed:
            self.valid = False
        return applied


class _ClaimedWhileUnknown(MemAppStorage):
    """Storage where a conditional write's outcome was unknown and a newer owner's claim settled
    it: the events landed, and the head is the claimant's (the write reports "not applied")."""

    def __init__(self) -> None:
        super().__init__(SYSTEM_CLOCK)
        self.armed = False

    async def put_batch_if(
        self, p_key: bytes, c_col: bytes, expected: bytes | None, new: bytes, rows: Sequence[tuple[bytes, bytes]]
    ) -> bool:
        applied = await super().put_batch_if(p_key, c_col, expected, new, rows)
        if self.armed and applied and rows:
            claim = Head(99, "claimant", 0).encode()
            await super().put_batch_if(p_key, c_col, new, claim, [])
            return False
        return applied


def _not_unserved(err: SysError) -> None:
    """A 503 that a router does not send again (no not-owner mark): the outcome is unknown."""
    assert err.status == 503 and err.headers.get("Retry-After") == "1", err
    assert NOT_OWNER_HEADER not in err.headers and "may or may not have been applied" in err.message, err


async def test_a_group_fenced_after_its_plog_write_is_not_answered_as_unserved(shop: Shop) -> None:
    # A process paused between a group's PLog write and the rest of it: the events are in the
    # log (the next owner re-applies them), so "not mine" would make a router run them again.
    storage = _LeaseRunsOutDuringTheWrite()
    pid = partition_of(WS, shop.runtime.num_partitions)
    writer = FencedWriter(storage, pid, 1, "a", lambda: storage.valid)
    await writer.claim(1)
    row = plog_key(pid, 1)
    storage.armed = True
    with pytest.raises(FencedError) as fenced:
        await writer.begin([(row[0], row[1], b"event"), (b"other", b"", b"x")], 2)
    assert fenced.value.written and await storage.get(*row) == b"event"

    # Through a partition: its command's answer is "outcome unknown", not "not mine".
    await shop.create_ws(WS)
    for p in shop.partitions.values():
        await p.stop()
    part = await _owner(shop, "a")
    assert isinstance(part.writer, FencedWriter)
    valid = [True]
    part.writer.valid = lambda: valid[0]
    real = part.writer.storage.put_batch_if

    async def then_paused(*args: Any) -> bool:
        applied = await real(*args)
        valid[0] = False
        return applied

    part.writer.storage = _Delegate(part.writer.storage, put_batch_if=then_paused)
    with pytest.raises(SysError) as err:
        await _send(part, "logged")
    _not_unserved(err.value)
    new = await _owner(shop, "b")  # the next owner has it in the log, once
    names = [ev.cuds[0].fields.get("Name") async for ev in read_wlog(shop.storage, WS)]
    assert names.count("logged") == 1, names
    await new.stop()
    await part.stop()


async def test_a_write_settled_by_a_newer_claim_is_not_answered_as_unserved() -> None:
    storage = _ClaimedWhileUnknown()
    writer = FencedWriter(storage, 0, 1, "a")
    await writer.claim(1)
    storage.armed = True
    row = plog_key(0, 1)
    with pytest.raises(FencedError) as fenced:
        await writer.begin([(row[0], row[1], b"event")], 2)
    assert fenced.value.written  # the event is there: it landed before the claim
    # A write the claim came before: nothing of it landed, so unserved it is.
    other = FencedWriter(storage, 0, 1, "a")
    other.heads[0] = Head(1, "a", 2)
    nxt = plog_key(0, 2)
    with pytest.raises(FencedError) as fenced:
        await other.begin([(nxt[0], nxt[1], b"late")], 3)
    assert not fenced.value.written and await storage.get(*nxt) is None


class _Delegate:
    """Another object's attributes, some replaced."""

    def __init__(self, target: object, **overrides: Any) -> None:
        self._target = target
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)
