"""Logs read back in order across storage partitions; views read by key prefix; pending writes
are visible before they are durable."""

from __future__ import annotations

import orjson

from voedger.appdef import DataKind, Field, QName, View
from voedger.storage.mem import MemStorageFactory
from voedger.structs.events import CUD, Event
from voedger.structs.logs import put_plog, put_wlog, read_plog, read_wlog
from voedger.structs.pending import Pending
from voedger.structs.views import get_row, put_row, put_trusted_row, read_rows

SALES = View(
    qname=QName("app", "Sales"),
    partition_key=(Field(name="Year", kind=DataKind.int32),),
    clustering_columns=(Field(name="Month", kind=DataKind.int8), Field(name="Item", kind=DataKind.string)),
    value=(Field(name="Amount", kind=DataKind.int64),),
)


async def _storage() -> Pending:
    f = MemStorageFactory()
    await f.init("t")
    return Pending(await f.app_storage("t"))


async def test_logs_cross_storage_partitions() -> None:
    pending = await _storage()
    for off in range(1, 5000):
        ev = Event("app.Cmd", 7, 3, off, off, 0, cuds=(CUD(True, 200000 + off, "app.T", {"x": off}),))
        data = ev.encode()
        put_plog(pending, ev, data)
        put_wlog(pending, ev, data)
    await pending.storage.put_batch(pending.items())
    offsets = [e.plog_offset async for e in read_plog(pending.storage, 3)]
    assert offsets == list(range(1, 5000))
    tail = [e.wlog_offset async for e in read_wlog(pending.storage, 7, 4090, 10)]
    assert tail == list(range(4090, 4100))
    assert [e async for e in read_plog(pending.storage, 4)] == []
    last = [e async for e in read_plog(pending.storage, 3, 4999)]
    assert last[0].cuds[0].fields == {"x": 4999}


async def test_views_by_prefix_with_pending_overlay() -> None:
    pending = await _storage()
    put_row(pending, SALES, 1, {"Year": 2026, "Month": 1, "Item": "tea", "Amount": 3})
    await pending.storage.put_batch(pending.items())
    pending.clear()
    put_row(pending, SALES, 1, {"Year": 2026, "Month": 1, "Item": "coffee", "Amount": 5})
    put_row(pending, SALES, 1, {"Year": 2026, "Month": 2, "Item": "tea", "Amount": 1})
    put_row(pending, SALES, 2, {"Year": 2026, "Month": 1, "Item": "tea", "Amount": 100})
    rows = [r async for r in read_rows(pending, SALES, 1, {"Year": 2026, "Month": 1})]
    assert [(r["Item"], r["Amount"]) for r in rows] == [("coffee", 5), ("tea", 3)]
    all_rows = [r async for r in read_rows(pending, SALES, 1, {"Year": 2026})]
    assert len(all_rows) == 3
    one = await get_row(pending, SALES, 2, {"Year": 2026, "Month": 1, "Item": "tea"})
    assert one is not None and one["Amount"] == 100


async def test_a_trusted_row_lands_where_a_checked_one_does() -> None:
    """The platform's own rows skip the checks, not the layout: same key, same stored row.
    Keys of one integer field and of several fields of mixed kinds both count."""
    one_int = View(
        qname=QName("app", "ByID"),
        partition_key=(Field(name="Hi", kind=DataKind.int64),),
        clustering_columns=(Field(name="ID", kind=DataKind.RecordID),),
        value=(Field(name="Name", kind=DataKind.string),),
    )
    cases = [
        (SALES, {"Year": 2026, "Month": 2, "Item": "tea", "Amount": 4}),
        (one_int, {"Hi": 1, "ID": 262_145, "Name": "x"}),
    ]
    for view, row in cases:
        checked, trusted = await _storage(), await _storage()
        put_row(checked, view, 7, row)
        put_trusted_row(trusted, view, 7, row)
        [(c_p, c_c, c_v)], [(t_p, t_c, t_v)] = checked.items(), trusted.items()
        assert (t_p, t_c) == (c_p, c_c)
        assert orjson.loads(t_v) == orjson.loads(c_v)
        key = {f.name: row[f.name] for f in view.key}
        assert await get_row(trusted, view, 7, key) == orjson.loads(c_v)


def test_event_encoded_once_for_both_logs() -> None:
    cud = CUD(True, 200001, "shop.Item", {"Name": "tea", "sys.IsActive": True})
    plain = Event("sys.CUD", 7, 1, 10, 3, 1_700_000_000_000, cuds=(cud,))
    assert plain.encode_both() == (plain.encode(), plain.encode(with_extra=False))
    rich = Event("sys.CUD", 7, 1, 11, 4, 1_700_000_000_001, args={"x": 1}, cuds=(cud,), extra={"records": [{"a": 1}]})
    plog, wlog = rich.encode_both()
    assert (plog, wlog) == (rich.encode(), rich.encode(with_extra=False))
    assert Event.decode(plog) == rich and Event.decode(wlog).extra == {}
    assert plain.shape() == ("sys.CUD", False, None, (("shop.Item", True, None),))
