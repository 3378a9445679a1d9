"""Platform projectors that produce view rows directly.

The platform's SYNC projectors (the records registry, the collection, uniques, the workspace
indexes) run inside every command. Written against ``State`` and ``Intents`` they cost a State,
an Intents, access checks and a coroutine per projector per event, about a fifth of what they
do. Written as row producers (the application, the event and a record reader in; view rows
out), the command processor calls them directly; ``producing_rows`` wraps one into the usual
``(state, intents)`` form for every other caller (the test kit), so there is one
implementation of each.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from voedger.appdef import AppDef, QName
from voedger.state.intents import Intents
from voedger.state.state import State
from voedger.structs.events import Event
from voedger.structs.records import Record

RecordReader = Callable[[int], Awaitable[Record | None]]
ViewRows = list[tuple[QName, dict[str, Any]]]
RowProducer = Callable[[AppDef, Event, RecordReader], Awaitable[ViewRows]]
Projector = Callable[[State, Intents], Awaitable[None]]

_ROWS_ATTR = "__voedger_rows__"


def producing_rows(produce: RowProducer) -> Projector:
    """The ``(state, intents)`` form of a row producer; ``row_producer`` finds it again."""

    @functools.wraps(produce)
    async def projector(state: State, intents: Intents) -> None:
        for view, row in await produce(state.app, state.event, state.record):
            intents.put_view(view, **row)

    setattr(projector, _ROWS_ATTR, produce)
    return projector


def row_producer(func: Callable[..., Any]) -> RowProducer | None:
    """The row producer behind a projector made by ``producing_rows``, or None."""
    produce: RowProducer | None = getattr(func, _ROWS_ATTR, None)
    return produce
