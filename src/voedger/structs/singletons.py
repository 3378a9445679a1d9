"""Singleton IDs: each singleton table gets one fixed record ID per application, kept in
storage so that adding a singleton to the schema never moves the others."""

from __future__ import annotations

import orjson

from voedger.appdef import AppDef, QName, Structure
from voedger.storage import AppStorage
from voedger.storage.conditional import write_if
from voedger.structs import ids
from voedger.structs.keys import app_state_key
from voedger.structs.qnames import names_of

_KEY = app_state_key("singletons", b"")


def _is_singleton(t: object) -> bool:
    return isinstance(t, Structure) and t.singleton


async def load_singleton_ids(storage: AppStorage, app: AppDef) -> dict[QName, int]:
    """The IDs of every singleton of ``app``, assigning (and storing) IDs for new ones."""
    names = names_of(storage)
    while True:
        raw = await storage.get(_KEY, b"")
        known: dict[str, int] = orjson.loads(raw) if raw is not None else {}
        # keyed by the stored text of each QName: a renamed singleton keeps its ID
        stored = {q: names.stored(q) for q in sorted(str(t.qname) for t in app.structures() if _is_singleton(t))}
        missing = [q for q, s in stored.items() if s not in known]
        if not missing:
            return {QName.parse(q): known[s] for q, s in stored.items()}
        updated = dict(known)
        next_id = max(known.values(), default=ids.FIRST_SINGLETON_ID - 1) + 1
        for q in missing:
            if next_id > ids.MAX_SINGLETON_ID:
                raise ValueError(f"too many singletons: no ID left for {q}")
            updated[stored[q]] = next_id
            next_id += 1
        data = orjson.dumps(updated, option=orjson.OPT_SORT_KEYS)
        await write_if(storage, _KEY, b"", raw, data)  # read again either way
