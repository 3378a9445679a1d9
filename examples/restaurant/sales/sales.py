"""Extensions of the sales package: counting orders into sales views, and reading them."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voedger.extensions import job, projector, query
from voedger.state import Intents, State
from voedger.syserror import SysError

SALES_BY_DAY = "sales.SalesByDay"
ARTICLE_SALES = "sales.ArticleSales"
NIGHTLY_RUNS = "sales.NightlyRuns"


def local_date(unix_ms: int, time_zone: str) -> dt.date:
    """The calendar day at a location when ``unix_ms`` happened there (UTC if the zone is unknown)."""
    try:
        zone: dt.tzinfo = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return dt.datetime.fromtimestamp(unix_ms / 1000, zone).date()


@projector("sales.ApplySales")
async def apply_sales(state: State, intents: Intents) -> None:
    """Add each new order to ``SalesByDay`` (the local day of its location) and to
    ``ArticleSales`` (per article and month); ``offs`` records the event's WLog offset so that
    readers can wait for an order to be counted.

    Async projectors may see an event twice (after a crash, the events since the last stored
    offset are projected again), so a row whose ``offs`` is already at this event's offset is
    left as it is: counting is idempotent.
    """
    event = state.event
    order = event.args or {}
    offs = event.wlog_offset
    location = await state.record(order["Location"])
    day = local_date(order["OrderedAt"], location["TimeZone"] if location else "UTC")

    amount = sum(item["Quantity"] * item["Price"] for item in order.get("Items", ()))
    key = {"Location": order["Location"], "Year": day.year, "Month": day.month, "Day": day.day}
    row = await state.view(SALES_BY_DAY, **key)
    if row is None or row["offs"] < offs:
        orders = (row["Orders"] if row else 0) + 1
        total = (row["Amount"] if row else 0) + amount
        intents.put_view(SALES_BY_DAY, **key, Orders=orders, Amount=total, offs=offs)

    per_article: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # one order may list an article twice
    for item in order.get("Items", ()):
        sums = per_article[item["Article"]]
        sums[0] += item["Quantity"]
        sums[1] += item["Quantity"] * item["Price"]
    for article, (quantity, article_amount) in per_article.items():
        key = {"Article": article, "Year": day.year, "Month": day.month}
        row = await state.view(ARTICLE_SALES, **key)
        if row is not None and row["offs"] >= offs:
            continue
        intents.put_view(
            ARTICLE_SALES,
            **key,
            Quantity=(row["Quantity"] if row else 0) + quantity,
            Amount=(row["Amount"] if row else 0) + article_amount,
            offs=offs,
        )


@query("sales.DailySales")
async def daily_sales(state: State, intents: Intents) -> None:
    """Answer one ``DailySalesResult`` row per day of the requested month at a location, read
    from ``SalesByDay``; days without orders have no row."""
    args = state.arg
    if not 1 <= args["Month"] <= 12:
        raise SysError(400, f"Month must be from 1 to 12, not {args['Month']}")
    async for row in state.read_view(SALES_BY_DAY, Location=args["Location"], Year=args["Year"], Month=args["Month"]):
        intents.result(Day=row["Day"], Orders=row["Orders"], Amount=row["Amount"])


@job("sales.NightlyDigest")
def nightly_digest(state: State, intents: Intents) -> None:
    """Note in ``NightlyRuns`` that the nightly digest ran (the ``JobContext`` gives the time)."""
    ctx = state.job_context
    when = dt.datetime.fromtimestamp(ctx.unix_time, dt.UTC)
    intents.put_view(
        NIGHTLY_RUNS,
        Year=when.year,
        DayOfYear=when.timetuple().tm_yday,
        StartedAt=ctx.unix_time,
    )
