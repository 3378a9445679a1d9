"""Resolving who calls, inside the processor that owns the workspace.

The edge authenticates (a token, or nobody); the roles of the caller in a workspace depend on
the workspace's descriptor and on its ``sys.Subject`` records, which the processors read here,
through the same reader as the rest of the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voedger.appdef import SYS_IS_ACTIVE, QName, Structure, View, Workspace
from voedger.processors.app import AppRuntime
from voedger.processors.principal import Principal
from voedger.processors.uniques import UNIQUES_VIEW, unique_entries
from voedger.structs.pending import Pending
from voedger.structs.records import Record, get_record
from voedger.structs.views import get_row

SUBJECT = QName("sys", "Subject")


async def subject_by_login(app: AppRuntime, reader: Pending, wsid: int, login: str) -> Record | None:
    """The active ``sys.Subject`` of ``login`` in the workspace (its Login is unique there)."""
    t = app.appdef.find(SUBJECT)
    view = app.appdef.find(UNIQUES_VIEW)
    if not isinstance(t, Structure) or not isinstance(view, View):
        return None
    for entry in unique_entries(t, {"Login": login}):
        row = await get_row(reader, view, wsid, entry.key())
        if row and row.get("ID"):
            rec = await get_record(reader, wsid, int(row["ID"]))
            if rec is not None and rec.get(SYS_IS_ACTIVE, True):
                return rec
    return None


async def resolve_principal(
    app: AppRuntime,
    caller: object,
    wsid: int,
    ws: Workspace,
    descriptor: Mapping[str, Any] | None,
    reader: Pending,
    known: dict[str, Record | None] | None = None,
) -> Principal:
    """The caller's principal in this workspace (a principal passes through as it is).

    ``known`` caches subjects by login for a reader that sees every change of them (the
    partition that writes the workspace); it must be emptied when a ``sys.Subject`` changes.
    """
    if isinstance(caller, Principal):
        return caller
    subjects = []
    for login in app.resolver.subject_logins(caller):
        if known is not None and login in known:
            rec = known[login]
        else:
            rec = await subject_by_login(app, reader, wsid, login)
            if known is not None:
                known[login] = rec
        if rec is not None:
            subjects.append(rec)
    return app.resolver.principal(caller, wsid, ws, descriptor, subjects)
