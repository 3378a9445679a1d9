"""Platform projectors that produce view rows directly.

The platform's SYNC projectors (the records registry, the collection, uniques, the workspace
indexes) run inside every command. Written against ``State`` and ``Intents`` they cost a State,
an Intents, access checks and a coroutine per projector per event, about a fifth of what they
do. Written as row producers (the application, the event and its reads in; view rows out), the
command processor and the actualizers call them directly; ``producing_rows`` wraps one into the
usual ``(state, intents)`` form for every other caller (the test kit, whose State checks what
they read and write), so there is one implementation of each.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from voedger.appdef import AppDef, QName
from voedger.state.intents import Intents
from voedger.state.state import State
from voedger.structs.events import Event
from voedger.structs.pending import Pending
from voedger.structs.records import Record, get_record
from voedger.structs.views import get_row, put_trusted_row
from voedger.syserror import SysError

ViewRows = list[tuple[QName, dict[str, Any]]]
Projector = Callable[[State, Intents], Awaitable[None]]


class Reads(Protocol):
    """What a row producer may read in the event's workspace; a ``State`` is one."""

    async def record(self, record_id: int) -> Record | None: ...

    async def view(self, name: QName | str, **key: Any) -> dict[str, Any] | None: ...


RowProducer = Callable[[AppDef, Event, Reads], Awaitable[ViewRows]]


class PendingReads:
    """The reads of the platform's own producers: through the writes so far, without the
    access checks a State makes for extensions."""

    __slots__ = ("_app", "_reader", "_wsid")

    def __init__(self, app: AppDef, reader: Pending, wsid: int) -> None:
        self._app = app
        self._reader = reader
        self._wsid = wsid

    async def record(self, record_id: int) -> Record | None:
        return await get_record(self._reader, self._wsid, record_id)

    async def view(self, name: QName | str, **key: Any) -> dict[str, Any] | None:
        return await get_row(self._reader, self._app.view(name), self._wsid, key)


async def write_produced_rows(
    produce: RowProducer, projector: QName, app: AppDef, event: Event, writes: Pending
) -> ViewRows:
    """Run a platform row producer on ``event`` (reading through ``writes``) and write its rows
    there, trusted; the rows written. Any failure is the projector's: a 500 naming it."""
    try:
        rows = await produce(app, event, PendingReads(app, writes, event.wsid))
        for view, row in rows:
            put_trusted_row(writes, app.view(view), event.wsid, row)
    except Exception as exc:
        raise SysError(500, f"projector {projector} failed: {type(exc).__name__}: {exc}") from exc
    return rows


_ROWS_ATTR = "__voedger_rows__"


def producing_rows(produce: RowProducer) -> Projector:
    """The ``(state, intents)`` form of a row producer; ``row_producer`` finds it again."""

    @functools.wraps(produce)
    async def projector(state: State, intents: Intents) -> None:
        for view, row in await produce(state.app, state.event, state):
            intents.put_view(view, **row)

    setattr(projector, _ROWS_ATTR, produce)
    return projector


def row_producer(func: Callable[..., Any]) -> RowProducer | None:
    """The row producer behind a projector made by ``producing_rows``, or None."""
    produce: RowProducer | None = getattr(func, _ROWS_ATTR, None)
    return produce
