"""Extensions of the service package: taking orders and closing bills.

The platform calls each function with the state the schema lets it read and the intents it may
write; it applies the intents only after the function returns without raising.
"""

from __future__ import annotations

from typing import Any

from voedger.extensions import command, projector


@command("service.MakeOrder")
def make_order(state: Any, intents: Any) -> None:
    """Accept an order for the kitchen.

    The order (an ODoc) is the command's argument, so the platform already stores it with the
    event; this function only has to refuse orders that make no sense, e.g. on a closed bill,
    which it finds through ``sys.Record``.
    """


@command("service.CloseBill")
def close_bill(state: Any, intents: Any) -> None:
    """Close a bill: give it the next fiscal number, record tip and payment, answer the number.

    Reads the bill through ``sys.Record``, updates it through a Record intent and writes the
    CloseBillResult through ``sys.Result``.
    """


@projector("service.IndexOpenBills")
def index_open_bills(state: Any, intents: Any) -> None:
    """Keep ``OpenBills`` in step with bills: insert a row when a bill opens, clear it when the
    bill gets its ClosedAt. Runs synchronously, so the POS sees the table as busy at once."""
