"""Events: what a command did, as kept in the PLog (per partition) and the WLog (per workspace).

An event is kept as one JSON object; records and the argument object inside it are plain JSON
field maps, so that reading a log back needs no schema. ODocs and ORecords live only here,
inside the event's argument object, as in Voedger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from voedger.structs.qnames import StoredNames

SYS_ERROR = "sys.Error"
"""The QName of an event kept for a command that failed validation after it was accepted."""

Fields = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CUD:
    """One record created (``is_new``) or updated by an event.

    ``fields`` holds every field of a new record, and only the fields an update changed.
    """

    is_new: bool
    id: int
    qname: str
    fields: Fields

    def to_json(self) -> Fields:
        return {"IsNew": self.is_new, "sys.ID": self.id, "sys.QName": self.qname, "fields": self.fields}

    def record(self) -> Fields:
        """The whole record a new-record CUD created (its ``fields`` are all the others)."""
        return {"sys.QName": self.qname, "sys.ID": self.id, **self.fields}

    @staticmethod
    def from_json(raw: Fields) -> CUD:
        return CUD(raw["IsNew"], raw["sys.ID"], raw["sys.QName"], raw["fields"])


@dataclass(frozen=True, slots=True)
class Event:
    qname: str
    wsid: int
    partition: int
    plog_offset: int
    wlog_offset: int
    registered_at: int
    """Milliseconds since the epoch."""
    args: Fields | None = None
    cuds: tuple[CUD, ...] = ()
    device_id: int = 0
    synced: bool = False
    synced_at: int = 0
    error: Fields | None = None
    """For ``sys.Error`` events: ``{"ErrStr", "QNameFromParams", "ValidEvent"}``."""
    extra: Fields = field(default_factory=dict)
    """Room for derived data a later reader needs (kept verbatim)."""
    _shape: tuple[object, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def shape(self) -> tuple[object, ...]:
        """Everything about the event that projector triggers look at: the command, whether it
        failed, the argument's type, and each CUD's type, operation and activation change.
        Computed once: every projector of the partition asks for every event."""
        shape = self._shape
        if shape is None:
            arg = (self.args or {}).get("sys.QName")
            cuds = tuple((c.qname, c.is_new, None if c.is_new else c.fields.get("sys.IsActive")) for c in self.cuds)
            shape = (self.qname, self.is_error, arg, cuds)
            object.__setattr__(self, "_shape", shape)
        return shape

    def to_json(self, with_extra: bool = True, names: StoredNames | None = None) -> Fields:
        """``names``: the application's QName table, when it renamed QNames: the tables of CUDs
        and records, and the views of rows, are stored by their stored text."""
        out: Fields = {
            "sys.QName": self.qname,
            "WSID": self.wsid,
            "Partition": self.partition,
            "PLogOffset": self.plog_offset,
            "WLogOffset": self.wlog_offset,
            "RegisteredAt": self.registered_at,
        }
        if self.args is not None:
            out["args"] = self.args
        if self.cuds:
            out["cuds"] = [c.to_json() for c in self.cuds]
            if names:
                for c in out["cuds"]:
                    c["sys.QName"] = names.stored(c["sys.QName"])
        if self.device_id:
            out["DeviceID"] = self.device_id
        if self.synced:
            out["Synced"] = True
            out["SyncedAt"] = self.synced_at
        if self.error is not None:
            out["error"] = self.error
        if self.extra and with_extra:
            out["extra"] = _renamed_extra(self.extra, names.stored) if names else self.extra
        return out

    def encode(self, with_extra: bool = True, names: StoredNames | None = None) -> bytes:
        """The stored form; the WLog's copy leaves out ``extra``, which only recovery reads."""
        return orjson.dumps(self.to_json(with_extra, names))

    def encode_both(self, names: StoredNames | None = None) -> tuple[bytes, bytes]:
        """The PLog form (with ``extra``) and the WLog form, serialising the event once."""
        wlog = orjson.dumps(self.to_json(with_extra=False, names=names))
        if not self.extra:
            return wlog, wlog
        extra = _renamed_extra(self.extra, names.stored) if names else self.extra
        return wlog[:-1] + b',"extra":' + orjson.dumps(extra) + b"}", wlog

    @staticmethod
    def from_json(raw: Fields, names: StoredNames | None = None) -> Event:
        if names:
            for c in raw.get("cuds", ()):
                c["sys.QName"] = names.name(c["sys.QName"])
            if "extra" in raw:
                raw["extra"] = _renamed_extra(raw["extra"], names.name)
        return Event(
            qname=raw["sys.QName"],
            wsid=raw["WSID"],
            partition=raw["Partition"],
            plog_offset=raw["PLogOffset"],
            wlog_offset=raw["WLogOffset"],
            registered_at=raw["RegisteredAt"],
            args=raw.get("args"),
            cuds=tuple(CUD.from_json(c) for c in raw.get("cuds", ())),
            device_id=raw.get("DeviceID", 0),
            synced=raw.get("Synced", False),
            synced_at=raw.get("SyncedAt", 0),
            error=raw.get("error"),
            extra=raw.get("extra", {}),
        )

    @staticmethod
    def decode(data: bytes, names: StoredNames | None = None) -> Event:
        return Event.from_json(orjson.loads(data), names)

    @property
    def is_error(self) -> bool:
        return self.qname == SYS_ERROR

    def arg_records(self) -> list[Fields]:
        """The ODoc in the argument and every ORecord nested in it, parents first."""
        out: list[Fields] = []
        if self.args is not None:
            _collect_records(self.args, out)
        return out


def _renamed_extra(extra: Fields, rename: Callable[[str], str]) -> Fields:
    """``extra`` with the tables of its records and the views of its rows renamed (the fields
    of the rows are the view's, which ``structs/views.py`` stores)."""
    out = dict(extra)
    records = extra.get("records")
    if records:
        out["records"] = [{**r, "sys.QName": rename(r["sys.QName"])} if "sys.QName" in r else r for r in records]
    views = extra.get("views")
    if views:
        out["views"] = [[rename(v[0]), v[1]] for v in views]
    return out


def _collect_records(obj: Fields, out: list[Fields]) -> None:
    """Depth first, parents first. A module function, not a closure: a recursive closure is a
    reference cycle, garbage for the cycle collector on every call."""
    if "sys.ID" in obj:
        out.append(obj)
    for value in obj.values():
        if isinstance(value, list):
            for child in value:
                if isinstance(child, dict):
                    _collect_records(child, out)
