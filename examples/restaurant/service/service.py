"""Extensions of the service package: taking orders and closing bills.

The platform calls each function with the state the schema lets it read and the intents it may
write; it applies the intents only after the function returns without raising. A
``SysError(400, ...)`` refuses the request with that message; nothing of it is written.
"""

from __future__ import annotations

from typing import Any

from voedger.extensions import command, projector
from voedger.state import Intents, State
from voedger.syserror import SysError

BILL = "service.Bill"
ARTICLE = "menu.Article"
ORDER = "service.Order"
OPEN_BILLS = "service.OpenBills"
BILL_COUNTER = "service.BillCounter"


def view_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A view row as read, without the ``sys.QName`` the platform adds and without ``Open``."""
    return {k: v for k, v in row.items() if k not in ("sys.QName", "Open")}


def order_amount(order: dict[str, Any]) -> int:
    """What an order costs, in cents: the sum of its items' quantity times price."""
    return sum(int(item["Quantity"]) * int(item["Price"]) for item in order.get("Items", ()))


async def open_bill(state: State, bill_id: int, where: str) -> dict[str, Any]:
    """The bill with this ID, refusing (400) anything else: no such record, not a bill, closed."""
    bill = await state.record(bill_id)
    if bill is None or bill["sys.QName"] != BILL:
        raise SysError(400, f"{where}: {bill_id} is not the ID of a bill")
    if bill.get("ClosedAt") or bill.get("sys.IsActive") is False:
        raise SysError(400, f"{where}: bill {bill_id} is closed (number {bill.get('Number', 0)})")
    return bill


@command("service.MakeOrder")
async def make_order(state: State, intents: Intents) -> None:
    """Accept an order for the kitchen.

    The order (an ODoc) is the command's argument, so the platform already stores it with the
    event; this function only has to refuse orders that make no sense: on a closed bill or one of
    another location, without items, with a zero quantity or a negative price, or for an article
    that is sold out. It finds the bill and the articles through ``sys.Record``.
    """
    order = state.arg
    bill = await open_bill(state, order["Bill"], "Bill")
    if bill["Location"] != order["Location"]:
        where = f"bill {bill['sys.ID']} is at location {bill['Location']}"
        raise SysError(400, f"Location: {where}, not {order['Location']}")
    items = order.get("Items", [])
    if not items:
        raise SysError(400, "Items: an order needs at least one item")
    for i, item in enumerate(items):
        where = f"Items[{i}]"
        if item["Quantity"] == 0:
            raise SysError(400, f"{where}: Quantity cannot be 0 (a correction has a negative quantity)")
        if item["Price"] < 0:
            raise SysError(400, f"{where}: Price cannot be negative")
        article = await state.record(item["Article"])
        if article is None or article["sys.QName"] != ARTICLE:
            raise SysError(400, f"{where}: {item['Article']} is not the ID of an article")
        if article.get("Available") is False or article.get("sys.IsActive") is False:
            raise SysError(400, f"{where}: article {article['Number']} «{article['Name']}» is not available")


@command("service.CloseBill")
async def close_bill(state: State, intents: Intents) -> None:
    """Close a bill: give it the next fiscal number, record tip and payment, answer the number.

    Reads the bill through ``sys.Record`` and its total through the ``OpenBills`` view (kept by
    the SYNC projector below, so it counts every order accepted before this command). Refuses a
    payment that does not cover the total and the tip. Updates the bill and the
    ``BillCounter`` singleton, adds the ``Payment`` record through Record intents and writes the
    CloseBillResult through ``sys.Result``.
    """
    args = state.arg
    bill = await open_bill(state, args["Bill"], "Bill")
    payment = args["Payment"]
    if isinstance(payment, list):  # a nested object arrives as a container of one
        payment = payment[0]
    tip = int(args.get("Tip") or 0)
    if tip < 0:
        raise SysError(400, "Tip cannot be negative")
    row = await state.view(OPEN_BILLS, Location=bill["Location"], DiningTable=bill["DiningTable"], Bill=bill["sys.ID"])
    total = int(row["Total"]) if row else 0
    if payment["Amount"] < total + tip:
        raise SysError(400, f"Payment: {payment['Amount']} does not cover the bill's total {total} and tip {tip}")
    counter = await state.singleton(BILL_COUNTER)
    number = (counter["Last"] if counter else 0) + 1
    if counter is None:
        intents.insert(BILL_COUNTER, Last=number)
    else:
        intents.update(counter, Last=number)
    closed_at = state.command_context.registered_at
    intents.update(bill, Number=number, ClosedAt=closed_at, Total=total, Tip=tip)
    intents.insert(
        "service.Payment",
        **{"sys.ParentID": bill["sys.ID"], "sys.Container": "Payments"},
        Kind=payment["Kind"],
        Amount=payment["Amount"],
    )
    intents.result(Number=number)


@projector("service.IndexOpenBills")
async def index_open_bills(state: State, intents: Intents) -> None:
    """Keep ``OpenBills`` in step with bills: insert a row when a bill opens, add each order's
    amount to it, and set ``Open`` to false when the bill gets its ClosedAt (or is deactivated,
    or moves to another table: the row at the old table is closed, the new one carries the
    total). Runs synchronously, so the POS sees the table as busy at once."""
    event = state.event
    if event.args is not None and event.args.get("sys.QName") == ORDER:
        bill = await state.record(event.args["Bill"])
        if bill is not None:
            key = {"Location": bill["Location"], "DiningTable": bill["DiningTable"], "Bill": bill["sys.ID"]}
            row = await state.view(OPEN_BILLS, **key)
            opened_at = row["OpenedAt"] if row else bill["OpenedAt"]
            total = (row["Total"] if row else 0) + order_amount(event.args)
            intents.put_view(OPEN_BILLS, **key, OpenedAt=opened_at, Total=total, Open=True)
    for cud in event.cuds:
        if cud.qname != BILL:
            continue
        bill = await state.record(cud.id)
        if bill is None:
            continue
        key = {"Location": bill["Location"], "DiningTable": bill["DiningTable"], "Bill": bill["sys.ID"]}
        is_open = not bill.get("ClosedAt") and bill.get("sys.IsActive", True)
        total = 0
        if not cud.is_new:
            # The bill's rows at this location: the one at its table, and the open one at a table
            # it has just left, which is closed and hands its total over.
            here: dict[str, Any] | None = None
            left: dict[str, Any] | None = None
            async for row in state.read_view(OPEN_BILLS, Location=bill["Location"]):
                if row["Bill"] != bill["sys.ID"]:
                    continue
                if row["DiningTable"] == bill["DiningTable"]:
                    here = row
                elif row["Open"]:
                    left = row
            if left is not None:
                intents.put_view(OPEN_BILLS, **view_fields(left), Open=False)
            source = left or here
            total = source["Total"] if source else 0
        intents.put_view(OPEN_BILLS, **key, OpenedAt=bill["OpenedAt"], Total=total, Open=is_open)
