"""Extensions of the sales package: counting orders into sales views, and reading them."""

from __future__ import annotations

from typing import Any

from voedger.extensions import job, projector, query


@projector("sales.ApplySales")
def apply_sales(state: Any, intents: Any) -> None:
    """Add each new order to ``SalesByDay`` (the local day of its location) and to
    ``ArticleSales`` (per article and month); ``offs`` records the event's WLog offset so that
    readers can wait for an order to be counted."""


@query("sales.DailySales")
def daily_sales(state: Any, intents: Any) -> None:
    """Answer one ``DailySalesResult`` row per day of the requested month at a location, read
    from ``SalesByDay``."""


@job("sales.NightlyDigest")
def nightly_digest(state: Any, intents: Any) -> None:
    """Note in ``NightlyRuns`` that the nightly digest ran (the ``JobContext`` gives the time)."""
