"""The command processor: CUDs, arguments, validation, sync projectors, recovery, group commit."""

from __future__ import annotations

import asyncio

import pytest

from tests.processors.conftest import WS, Shop
from voedger.storage.mem import MemAppStorage
from voedger.structs import keys
from voedger.structs.logs import read_plog, read_wlog
from voedger.structs.pending import Pending
from voedger.structs.records import get_record
from voedger.structs.views import get_row
from voedger.syserror import SysError


async def item(shop: Shop, raw: int = 1, **fields: object) -> int:
    body = {"cuds": [{"fields": {"sys.ID": raw, "sys.QName": "shop.Item", "Name": "tea", **fields}}]}
    res = await shop.cmd(WS, "sys.CUD", body)
    return res.new_ids[str(raw)]


async def record(shop: Shop, rid: int) -> dict[str, object] | None:
    return await get_record(Pending(shop.storage), WS, rid)


async def test_workspace_must_exist(shop: Shop) -> None:
    with pytest.raises(SysError) as e:
        await item(shop)
    assert e.value.status == 403 and e.value.message == "workspace is not initialized"


async def test_create_update_deactivate(shop: Shop) -> None:
    await shop.create_ws(WS)
    rid = await item(shop, Price=5)
    assert rid == 200001
    rec = await record(shop, rid)
    assert rec == {"sys.QName": "shop.Item", "sys.ID": rid, "Name": "tea", "Price": 5, "sys.IsActive": True}
    res = await shop.cmd(WS, "sys.CUD", {"cuds": [{"sys.ID": rid, "fields": {"Price": 7}}]})
    assert res.new_ids == {} and res.wlog_offset == 3
    assert (await record(shop, rid) or {})["Price"] == 7
    await shop.cmd(WS, "sys.CUD", {"cuds": [{"sys.ID": rid, "fields": {"sys.IsActive": False}}]})
    assert (await record(shop, rid) or {})["sys.IsActive"] is False
    # an inactive record's fields may still change, as in Voedger
    await shop.cmd(WS, "sys.CUD", {"cuds": [{"sys.ID": rid, "fields": {"Price": 1}}]})
    assert (await record(shop, rid) or {})["Price"] == 1
    events = [ev async for ev in read_wlog(shop.storage, WS)]
    assert [ev.wlog_offset for ev in events] == [1, 2, 3, 4, 5]
    assert events[2].cuds[0].fields == {"Price": 7}


@pytest.mark.parametrize(
    ("fields", "status", "text"),
    [
        ({"Nope": 1}, 400, "has no field «Nope»"),
        ({"Name": None}, 400, "field is empty"),
        ({"Name": "x" * 51}, 400, "at most 50"),
        ({"Price": "cheap"}, 400, "expected a number"),
        ({"Price": 1 << 40}, 400, "out of the range of int32"),
    ],
)
async def test_invalid_fields(shop: Shop, fields: dict[str, object], status: int, text: str) -> None:
    await shop.create_ws(WS)
    with pytest.raises(SysError) as e:
        await item(shop, **fields)
    assert e.value.status == status and text in e.value.message


async def test_malformed_requests(shop: Shop) -> None:
    await shop.create_ws(WS)
    cases = [
        ({"cuds": {"a": 1}}, 400, "expected an array"),
        ({"cuds": []}, 400, "CUDs are missing"),
        ({"cuds": [{"fields": {"sys.QName": "shop.Item"}}]}, 400, '"sys.ID" field missing'),
        ({"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Nope"}}]}, 400, "is not a table"),
        ({"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Order"}}]}, 400, "command argument"),
        ({"cuds": [{"sys.ID": 999999, "fields": {"Name": "x"}}]}, 404, "does not exist"),
        (
            {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Item", "Name": "a"}}] * 101},
            400,
            "too many cuds",
        ),
        ({"bogus": 1}, 400, "CUDs are missing"),  # an unknown key is let through, as in Voedger
    ]
    for body, status, text in cases:
        with pytest.raises(SysError) as e:
            await shop.cmd(WS, "sys.CUD", body)
        assert e.value.status == status and text in e.value.message, (body, e.value)
    with pytest.raises(SysError) as e:
        await shop.cmd(WS, "shop.NoSuchCommand", {})
    assert e.value.status == 404


async def sku(shop: Shop, code: str) -> int:
    body = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "shop.Sku", "Code": code}}]}
    return (await shop.cmd(WS, "sys.CUD", body)).new_ids["1"]


async def test_unique_field(shop: Shop) -> None:
    await shop.create_ws(WS)
    first = await sku(shop, "A1")
    with pytest.raises(SysError) as e:
        await sku(shop, "A1")
    assert e.value.status == 409 and str(first) in e.value.message
    with pytest.raises(SysError) as e:
        await shop.cmd(WS, "sys.CUD", {"cuds": [{"sys.ID": first, "fields": {"Code": "B"}}]})
    assert e.value.status == 403 and "can not be changed: unique field update denied" in e.value.message
    await shop.cmd(WS, "sys.CUD", {"cuds": [{"sys.ID": first, "fields": {"sys.IsActive": False}}]})
    second = await sku(shop, "A1")  # a deactivated record frees its unique value
    with pytest.raises(SysError) as e:
        await shop.cmd(WS, "sys.CUD", {"cuds": [{"sys.ID": first, "fields": {"sys.IsActive": True}}]})
    assert e.value.status == 409 and str(second) in e.value.message


async def test_odoc_argument_refs_and_sync_projector(shop: Shop) -> None:
    await shop.create_ws(WS)
    rid = await item(shop)
    res = await shop.cmd(WS, "shop.MakeOrder", {"args": {"sys.ID": 1, "Item": rid, "Qty": 2}})
    order_id = res.new_ids["1"]
    await shop.cmd(WS, "shop.MakeOrder", {"args": {"sys.ID": 5, "Item": rid, "Qty": 3}})
    view = shop.runtime.appdef.view("shop.Sales")
    row = await get_row(Pending(shop.storage), view, WS, {"Item": rid, "Day": 1})
    assert row is not None and row["Qty"] == 5
    reg = shop.runtime.appdef.view("sys.RecordsRegistry")
    entry = await get_row(Pending(shop.storage), reg, WS, {"IDHi": order_id >> 18, "ID": order_id})
    assert entry is not None and entry["QName"] == "shop.Order"
    with pytest.raises(SysError) as e:
        await shop.cmd(WS, "shop.MakeOrder", {"args": {"sys.ID": 1, "Item": 424242, "Qty": 1}})
    assert e.value.status == 400 and "record ID 424242 referenced by shop.Order.Item does not exist" in e.value.message
    with pytest.raises(SysError) as e:
        await shop.cmd(WS, "shop.MakeOrder", {"args": {"sys.ID": 1, "Item": order_id}})
    assert e.value.status == 400 and "whereas [shop.Item] QNames are only allowed" in e.value.message
    with pytest.raises(SysError) as e:
        await shop.cmd(WS, "shop.MakeOrder", {"args": {"sys.ID": 1}})
    assert e.value.status == 400 and "Item" in e.value.message


async def test_restart_continues_sequences(shop: Shop) -> None:
    await shop.create_ws(WS)
    first = await item(shop)
    shop2 = await shop.restart()
    second = await item(shop2, raw=3)
    assert second == first + 1
    res = await shop2.cmd(WS, "sys.CUD", {"cuds": [{"sys.ID": second, "fields": {"Price": 1}}]})
    assert res.wlog_offset == 4
    for p in shop2.partitions.values():
        await p.stop()


async def test_recovery_rewrites_records_and_views_from_the_plog(shop: Shop) -> None:
    """What recovery re-applies from the PLog alone (new records from their CUDs, updated ones
    from their after-images, SYNC projectors' rows) equals what the commands wrote."""
    await shop.create_ws(WS)
    rid = await item(shop, Name="tea", Price=3)
    await shop.cmd(WS, "sys.CUD", {"cuds": [{"sys.ID": rid, "fields": {"Price": 7}}]})
    other = await item(shop, raw=2, Name="coffee")
    part = shop.partition(WS)
    fresh = Pending(MemAppStorage(shop.runtime.clock))
    async for event in read_plog(shop.storage, part.id, 1):
        part._reapply(event, fresh)
    for rec_id in (rid, other):
        assert await get_record(fresh, WS, rec_id) == await record(shop, rec_id)
    assert (await get_record(fresh, WS, rid) or {})["Price"] == 7
    reg = shop.runtime.appdef.view("sys.RecordsRegistry")
    key = {"IDHi": other >> 18, "ID": other}
    assert await get_row(fresh, reg, WS, key) == await get_row(Pending(shop.storage), reg, WS, key)


async def test_concurrent_commands_share_durable_writes(shop: Shop) -> None:
    await shop.create_ws(WS)
    part = shop.partition(WS)
    before = part.groups
    ids = await asyncio.gather(*(item(shop, raw=1, Name=f"n{i}") for i in range(50)))
    assert sorted(ids) == list(range(200001, 200051))
    assert part.groups - before < 50
    offsets = [ev.wlog_offset async for ev in read_wlog(shop.storage, WS)]
    assert offsets == list(range(1, 52))


async def test_a_full_partition_refuses_with_503_and_loses_nothing(shop: Shop) -> None:
    await shop.create_ws(WS)
    part = shop.partition(WS)
    part.max_queued = 3
    results = await asyncio.gather(*(item(shop, Name=f"n{i}") for i in range(30)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, SysError)]
    acked = [r for r in results if isinstance(r, int)]
    assert refused and acked and len(refused) + len(acked) == 30
    assert all(e.status == 503 and f"partition {part.id}" in e.message for e in refused)
    assert refused[0].headers.get("Retry-After") == "1"
    offsets = [ev.wlog_offset async for ev in read_wlog(shop.storage, WS)]
    assert offsets == list(range(1, len(acked) + 2))  # the workspace's creation, then each acknowledged one
    part.max_queued = 4096
    assert await item(shop, Name="later") > max(acked)


async def test_failed_command_in_group_leaves_no_trace(shop: Shop) -> None:
    await shop.create_ws(WS)
    results = await asyncio.gather(
        item(shop, Name="ok1"), item(shop, Nope=1), item(shop, Name="ok2"), return_exceptions=True
    )
    assert isinstance(results[1], SysError)
    assert [r for r in results if not isinstance(r, BaseException)] == [200001, 200002]
    offsets = [ev.wlog_offset async for ev in read_wlog(shop.storage, WS)]
    assert offsets == [1, 2, 3]


async def test_failed_durable_write_acknowledges_nothing_of_it_or_what_was_built_on_it(shop: Shop) -> None:
    """When a group's write fails, none of its commands is acknowledged, the partition recovers
    from storage before the next group, and the log stays whole."""
    await shop.create_ws(WS)
    storage = shop.runtime.storage
    real_put_batch = storage.put_batch
    calls = 0

    async def flaky(items):  # type: ignore[no-untyped-def]
        nonlocal calls
        if any(p.startswith(keys.plog_key(0, 0)[0][:2]) for p, _, _ in items):  # a partition's group
            calls += 1
            await asyncio.sleep(0.02)
            if calls == 2:
                raise OSError("disk on fire")
        await real_put_batch(items)

    async def later(i: int) -> int:
        await asyncio.sleep(i * 0.003)
        return await item(shop, Name=f"n{i}")

    storage.put_batch = flaky  # type: ignore[method-assign]
    results = await asyncio.gather(*(later(i) for i in range(40)), return_exceptions=True)
    storage.put_batch = real_put_batch  # type: ignore[method-assign]
    failed = [r for r in results if isinstance(r, SysError)]
    acked = [r for r in results if isinstance(r, int)]
    assert failed and all(e.status == 503 for e in failed)
    assert acked
    for rid in acked:
        assert await record(shop, rid) is not None
    events = [ev async for ev in read_wlog(shop.storage, WS)]
    assert [ev.wlog_offset for ev in events] == list(range(1, len(events) + 1))
    assert len(events) == 1 + len(acked)  # the workspace's creation and every acknowledged command
    assert await item(shop, Name="after") > max(acked)
