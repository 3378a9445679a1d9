"""The shop's extensions, loaded by the server from the application folder."""

from voedger.extensions import command, projector, query
from voedger.state import Intents, State


@command("shop.MakeOrder")
def make_order(state: State, intents: Intents) -> None:
    intents.result(Total=state.arg["Qty"] * 10)


@command("shop.FileReceipt")
def file_receipt(state: State, intents: Intents) -> None:
    pass


@projector("shop.SalesProjector")
async def sales(state: State, intents: Intents) -> None:
    order = state.event.args or {}
    row = await state.view("shop.Sales", Item=order["Item"], Day=1)
    qty = (row or {}).get("Qty", 0) + order["Qty"]
    intents.put_view("shop.Sales", Item=order["Item"], Day=1, Qty=qty)


@projector("shop.CountItems")
async def count_items(state: State, intents: Intents) -> None:
    ev = state.event
    new = sum(1 for c in ev.cuds if c.is_new and c.qname == "shop.Item")
    row = await state.view("shop.ItemCount", Part=0, Kind=0)
    count = (row or {}).get("Count", 0) + new
    intents.put_view("shop.ItemCount", Part=0, Kind=0, Count=count, LastOffset=ev.wlog_offset)


@projector("shop.ApplyDailyIdx")
def apply_daily_idx(state: State, intents: Intents) -> None:
    for cud in state.event.cuds:
        if cud.is_new and cud.qname == "shop.Daily":
            f = cud.fields
            key = {"Year": f["Year"], "Month": f["Month"], "Day": f["Day"]}
            intents.put_view("shop.DailyIdx", **key, StringValue=f["StringValue"], offs=state.event.wlog_offset)


@query("shop.QryDailyIdx")
async def qry_daily_idx(state: State, intents: Intents) -> None:
    key = {"Year": state.arg["Year"]}
    if state.arg.get("Month"):
        key["Month"] = state.arg["Month"]
    async for row in state.read_view("shop.DailyIdx", **key):
        intents.result(Year=row["Year"], Month=row["Month"], Day=row["Day"], StringValue=row["StringValue"])


@query("shop.QryVoid")
def qry_void(state: State, intents: Intents) -> None:
    pass


@query("shop.QryRawArg")
def qry_raw_arg(state: State, intents: Intents) -> None:
    intents.result(Res=state.arg["Body"])


@command("shop.Pay")
def pay(state: State, intents: Intents) -> None:
    pass
