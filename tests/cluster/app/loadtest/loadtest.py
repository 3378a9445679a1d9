"""The load application's one extension: counting LoadItems per workspace."""

from voedger.extensions import projector
from voedger.state import Intents, State

LOAD_ITEM = "loadtest.LoadItem"
LOAD_COUNT = "loadtest.LoadCount"


@projector("loadtest.CountLoad")
async def count_load(state: State, intents: Intents) -> None:
    """Add the event's new LoadItems to its workspace's counter.

    An async projector sees an event again after a crash (its stored offset lags its view
    writes' durability by design), so an event at or below ``LastOffset`` was counted already
    and is skipped. A double count in the checker therefore means something the platform must
    not do: two writers projecting the same partition, or an event given two WLog offsets.
    """
    event = state.event
    row = await state.view(LOAD_COUNT, Part=0, Kind=0)
    if row is not None and row["LastOffset"] >= event.wlog_offset:
        return
    new = sum(1 for c in event.cuds if c.is_new and c.qname == LOAD_ITEM)
    count = (row["Count"] if row else 0) + new
    intents.put_view(LOAD_COUNT, Part=0, Kind=0, Count=count, LastOffset=event.wlog_offset)
