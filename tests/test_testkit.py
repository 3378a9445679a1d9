"""The extension test kit, used as an application developer would on the shop application."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.processors.conftest import SHOP, WS, Shop, shop_registry, start_shop
from voedger.appdef import AppDef, QName
from voedger.appdef.load import compile_app
from voedger.apps.sys.builtins import platform
from voedger.extensions import Registry
from voedger.state import Intents, State, StateError
from voedger.state.rows import PendingReads, row_producer
from voedger.storage.mem import MemStorageFactory
from voedger.structs.events import CUD
from voedger.structs.pending import Pending
from voedger.structs.wsid import app_wsid
from voedger.syserror import SysError
from voedger.testkit import DEFAULT_WSID, ExtensionTestKit


@pytest.fixture(scope="module")
def shop_app() -> AppDef:
    return compile_app(SHOP)


def registry(**overrides: Callable[..., Any]) -> Registry:
    reg = Registry()
    for impl in shop_registry():
        reg.add(impl.kind, impl.qname, overrides.get(impl.qname.entity, impl.func))
    return reg


@pytest.fixture
def kit(shop_app: AppDef) -> ExtensionTestKit:
    return ExtensionTestKit(shop_app, shop_registry())


async def test_command_then_projectors_then_query(kit: ExtensionTestKit) -> None:
    item = kit.put_record("shop.Item", Name="tea", Price=5)
    assert await kit.record(item) == {
        "sys.QName": "shop.Item",
        "sys.ID": item,
        "Name": "tea",
        "Price": 5,
        "sys.IsActive": True,
    }
    out = await kit.run_command("shop.MakeOrder", args={"Item": item, "Qty": 2})
    assert out.inserts == [] and out.result is None
    order_id = out.new_ids[1]
    assert out.event.qname == "shop.MakeOrder" and out.event.wsid == DEFAULT_WSID
    assert out.event.args is not None and out.event.args["sys.ID"] == order_id and order_id != item

    sales = await kit.run_projector("shop.SalesProjector", event=out.event)
    assert sales.view_rows == [(QName("shop", "Sales"), {"Item": item, "Day": 1, "Qty": 2})]
    await kit.run_projector("shop.OrderLogProjector", event=out.event)
    second = await kit.run_command("shop.MakeOrder", args={"Item": item, "Qty": 3})
    assert second.event.wlog_offset == out.event.wlog_offset + 1
    await kit.run_projector("shop.SalesProjector", event=second.event)  # reads the row the first wrote
    assert await kit.view_row("shop.Sales", Item=item, Day=1) == {
        "sys.QName": "shop.Sales",
        "Item": item,
        "Day": 1,
        "Qty": 5,
    }
    assert [r["PLogOffset"] for r in await kit.view_rows("shop.OrderLog", Item=item)] == [out.event.plog_offset]
    assert await kit.run_query("shop.GetSales", args={"Item": item}) == [
        {"sys.QName": "shop.SalesRow", "Day": 1, "Qty": 5}
    ]


async def test_arranged_view_rows_and_apply_false(kit: ExtensionTestKit) -> None:
    kit.put_view_row("shop.Sales", Item=7, Day=1, Qty=10)
    event = kit.event("shop.MakeOrder", {"sys.QName": "shop.Order", "sys.ID": 200500, "Item": 7, "Qty": 1})
    out = await kit.run_projector("shop.SalesProjector", event=event, apply=False)
    assert out.view_rows[0][1]["Qty"] == 11
    assert (await kit.view_row("shop.Sales", Item=7, Day=1) or {})["Qty"] == 10  # not applied


async def test_error_events_and_triggers(kit: ExtensionTestKit) -> None:
    failed = kit.event("shop.MakeOrder", error="Item is required")
    out = await kit.run_projector("shop.FailureProjector", event=failed)
    assert out.view_rows[0][1]["Error"] == "Item is required"
    with pytest.raises(ValueError, match="does not trigger"):
        await kit.run_projector("shop.OrderLogProjector", event=failed)  # not INCLUDING ERRORS
    with pytest.raises(ValueError, match="does not trigger"):
        await kit.run_projector("shop.SalesProjector", event=kit.event("sys.CUD"))


async def test_job(kit: ExtensionTestKit) -> None:
    kit.clock.advance(60)
    out = await kit.run_job("shop.Heartbeat")
    now = int(kit.clock.now())
    assert out.view_rows == [(QName("shop", "Heartbeats"), {"Bucket": 0, "UnixTime": now})]
    assert await kit.view_rows("shop.Heartbeats", wsid=app_wsid(1, 0), Bucket=0) == [
        {"sys.QName": "shop.Heartbeats", "Bucket": 0, "UnixTime": now}
    ]
    await kit.run_job("shop.Heartbeat", wsid=app_wsid(1, 3), now=1234)
    assert [r["UnixTime"] for r in await kit.view_rows("shop.Heartbeats", wsid=app_wsid(1, 3), Bucket=0)] == [1234]


async def test_command_inserts_and_updates_records(kit: ExtensionTestKit) -> None:
    item = kit.put_record("shop.Item", Name="tea", Price=5)
    out = await kit.run_command("shop.Restock", args={"Item": item})
    assert out.result == {"sys.QName": "shop.RestockResult", "Price": 6}
    assert [(u.id, u.changes) for u in out.updates] == [(item, {"Price": 6})]
    assert [(i.table, i.fields) for i in out.inserts] == [(QName("shop", "Item"), {"Name": "tea (spare)", "Price": 1})]
    spare = out.new_ids[1]
    assert [(c.is_new, c.id, c.fields.get("Price")) for c in out.event.cuds] == [(True, spare, 1), (False, item, 6)]
    assert (await kit.record(item) or {})["Price"] == 6
    assert (await kit.record(spare) or {})["Name"] == "tea (spare)"
    dry = await kit.run_command("shop.Restock", args={"Item": item}, apply=False)
    assert dry.result == {"sys.QName": "shop.RestockResult", "Price": 7}
    assert (await kit.record(item) or {})["Price"] == 6  # not applied
    with pytest.raises(SysError) as e:
        await kit.run_command("shop.Restock", args={"Item": 424242})
    # checked before the extension runs, as the server does: the client's mistake, not the extension's
    assert e.value.status == 400, e.value
    assert "record ID 424242 referenced by shop.SalesParams.Item does not exist" in e.value.message


async def test_invalid_intents_are_refused(shop_app: AppDef) -> None:
    async def bad_restock(state: State, intents: Intents) -> None:
        item = await state.record(state.arg["Item"])
        assert item is not None
        intents.update(item, Price="cheap")

    kit = ExtensionTestKit(shop_app, registry(Restock=bad_restock))
    item = kit.put_record("shop.Item", Name="tea", Price=5)
    with pytest.raises(SysError) as e:
        await kit.run_command("shop.Restock", args={"Item": item})
    assert e.value.status == 400 and "expected a number" in e.value.message
    assert (await kit.record(item) or {})["Price"] == 5


async def test_same_scope_checks_as_the_runtime(shop_app: AppDef) -> None:
    def command_writes_view(state: State, intents: Intents) -> None:
        intents.put_view("shop.Sales", Item=1, Day=1, Qty=1)

    def query_inserts(state: State, intents: Intents) -> None:
        intents.insert("shop.Item", Name="x")

    def projector_reads_undeclared(state: State, intents: Intents) -> None:
        state.app_secret("smtp")

    kit = ExtensionTestKit(
        shop_app,
        registry(MakeOrder=command_writes_view, GetSales=query_inserts, OrderLogProjector=projector_reads_undeclared),
    )
    item = kit.put_record("shop.Item", Name="tea")
    with pytest.raises(StateError, match="does not allow INSERT in COMMANDS"):
        await kit.run_command("shop.MakeOrder", args={"Item": item})
    with pytest.raises(StateError, match="does not allow INSERT in QUERIES"):
        await kit.run_query("shop.GetSales", args={"Item": item})
    event = kit.event("shop.MakeOrder", {"sys.QName": "shop.Order", "sys.ID": 200500, "Item": item})
    with pytest.raises(StateError, match="does not declare"):
        await kit.run_projector("shop.OrderLogProjector", event=event)


async def test_arguments_are_checked(kit: ExtensionTestKit) -> None:
    with pytest.raises(SysError) as e:
        await kit.run_command("shop.MakeOrder", args={"Qty": 1})
    assert e.value.status == 400 and "Item" in e.value.message
    with pytest.raises(SysError) as e:
        await kit.run_query("shop.GetSales", args={"Nope": 1})
    assert e.value.status == 400
    with pytest.raises(SysError) as e:
        kit.put_record("shop.Item", Price=1)
    assert e.value.status == 400 and "Name" in e.value.message


async def test_extension_failure_and_response(shop_app: AppDef) -> None:
    def boom(state: State, intents: Intents) -> None:
        raise ZeroDivisionError("oops")

    def no_sales(state: State, intents: Intents) -> None:
        intents.respond(404, "no sales for this item")

    kit = ExtensionTestKit(shop_app, registry(MakeOrder=boom, GetSales=no_sales))
    item = kit.put_record("shop.Item", Name="tea")
    with pytest.raises(SysError) as e:
        await kit.run_command("shop.MakeOrder", args={"Item": item})
    assert e.value.status == 500 and "ZeroDivisionError: oops" in e.value.message
    with pytest.raises(SysError) as e:
        await kit.run_query("shop.GetSales", args={"Item": item})
    assert (e.value.status, e.value.message) == (404, "no sales for this item")


async def test_kit_from_an_application_folder(tmp_path: Any) -> None:
    app_dir = tmp_path / "shop"
    app_dir.mkdir()
    (app_dir / "shop.vsql").write_text((SHOP / "shop.vsql").read_text())
    (app_dir / "impl.py").write_text(
        "from voedger.extensions import command, job, projector, query\n"
        "\n"
        "@command('shop.MakeOrder')\n"
        "def make_order(state, intents):\n"
        "    pass\n"
        "\n"
        "@projector('shop.SalesProjector')\n"
        "def sales(state, intents):\n"
        "    order = state.event.args\n"
        "    intents.put_view('shop.Sales', Item=order['Item'], Day=1, Qty=order['Qty'])\n"
        "\n"
        "for name in ('shop.OrderLogProjector', 'shop.FailureProjector'):\n"
        "    projector(name)(lambda state, intents: None)\n"
        "query('shop.GetSales')(lambda state, intents: None)\n"
        "command('shop.Restock')(lambda state, intents: None)\n"
        "job('shop.Heartbeat')(lambda state, intents: None)\n"
    )
    kit = ExtensionTestKit(app_dir)
    item = kit.put_record("shop.Item", Name="tea")
    out = await kit.run_command("shop.MakeOrder", args={"Item": item, "Qty": 4})
    await kit.run_projector("shop.SalesProjector", event=out.event)
    assert (await kit.view_row("shop.Sales", Item=item, Day=1) or {})["Qty"] == 4


async def test_platform_projectors_give_the_same_rows_in_both_forms(kit: ExtensionTestKit) -> None:
    """The platform's projectors are row producers, called directly by the command processor
    (SYNC) and the actualizers (async); the kit runs them through State and Intents, as any
    other caller. Both forms must write the same rows."""
    item = kit.put_record("shop.Item", Name="tea", Price=5)
    new = CUD(True, item + 1, "shop.Item", {"Name": "coffee", "Price": 7, "sys.IsActive": True})
    changed = CUD(False, item, "shop.Item", {"Price": 6})
    event = kit.event("sys.CUD", cuds=(new, changed))
    for name in (
        "sys.RecordsRegistryProjector",
        "sys.ProjectorCollection",
        "sys.ApplyUniques",
        "sys.ProjectorWLogDates",
    ):
        impl = platform.get(name)
        assert impl is not None
        produce = row_producer(impl.func)
        assert produce is not None, name
        reader = Pending(kit._state)
        direct = await produce(kit.app, event, PendingReads(kit.app, reader, event.wsid))
        if name == "sys.ProjectorWLogDates":  # the one that reads a view: it has a row to compare
            assert [row["LastOffset"] for _, row in direct] == [event.wlog_offset]
        through_intents = await kit.run_projector(name, event=event, apply=False, check_trigger=False)
        assert through_intents.view_rows == direct, name
    rows = await kit.run_projector("sys.ProjectorCollection", event=event, apply=False)
    assert [row["ElementID"] for _, row in rows.view_rows] == [item + 1, item]


async def _server_shop() -> Shop:
    factory = MemStorageFactory()
    await factory.init("shop")
    shop = await start_shop(compile_app(SHOP), await factory.app_storage("shop"))
    await shop.create_ws(WS)
    return shop


async def _server_error(shop: Shop, command: str, body: dict[str, Any]) -> SysError:
    with pytest.raises(SysError) as e:
        await shop.cmd(WS, command, body)
    return e.value


async def _kit_error(kit: ExtensionTestKit, command: str, args: dict[str, Any]) -> SysError:
    with pytest.raises(SysError) as e:
        await kit.run_command(command, args=args)
    return e.value


async def test_the_kit_and_the_server_refuse_the_same_raw_ids_and_references(kit: ExtensionTestKit) -> None:
    """The kit runs the server's pipeline. Before, it kept its own copy of the ID and reference
    rules: an argument's reference holding a raw ID that named no record of the request was
    left as it was, and one naming the argument's own ODoc (a ``shop.Order``, not the
    ``shop.Item`` the field takes) became its ID; the server refuses both with 400."""
    shop = await _server_shop()
    try:
        for args in ({"Item": 3, "Qty": 1}, {"Item": 1, "Qty": 1}):
            server = await _server_error(shop, "shop.MakeOrder", {"args": {"sys.ID": 1, **args}})
            in_kit = await _kit_error(kit, "shop.MakeOrder", args)
            assert server.status == 400, server
            assert (in_kit.status, in_kit.message) == (server.status, server.message)
        assert (
            "raw ID 3 refers to no record created by this request"
            in (await _kit_error(kit, "shop.MakeOrder", {"Item": 3, "Qty": 1})).message
        )
    finally:
        for p in shop.partitions.values():
            await p.stop()


async def test_the_acl_switch(shop_app: AppDef) -> None:
    """With ``acl=True`` the kit's pipeline asks the application's ACL, as the server does: the
    test shop grants nothing, so a caller with no role may not execute its commands."""
    kit = ExtensionTestKit(shop_app, shop_registry(), acl=True)
    item = kit.put_record("shop.Item", Name="tea")
    with pytest.raises(SysError) as e:
        await kit.run_command("shop.MakeOrder", args={"Item": item, "Qty": 1}, login="ann", roles=["sys.Everyone"])
    assert e.value.status == 403 and "shop.MakeOrder" in e.value.message, e.value
    without = ExtensionTestKit(shop_app, shop_registry())
    item = without.put_record("shop.Item", Name="tea")
    out = await without.run_command("shop.MakeOrder", args={"Item": item, "Qty": 1}, login="ann")
    assert out.event.qname == "shop.MakeOrder"  # without the switch, no ACL
