"""The platform's implementations of the sys package's extensions.

Applications never implement sys extensions; every application runtime looks here after its
own registry. ``NOT_BUILT`` names the sys extensions that have no implementation yet: calling
such a command or query answers 501, and such a projector is reported at start and skipped.
"""

from __future__ import annotations

from typing import Any

from voedger.appdef import (
    SYS_CONTAINER,
    SYS_ID,
    SYS_IS_ACTIVE,
    SYS_PARENT_ID,
    SYS_QNAME,
    AppDef,
    QName,
    Structure,
    TypeKind,
)
from voedger.extensions import Registry
from voedger.processors.rows import COLLECTION_PART_KEY, COLLECTION_VIEW, RECORDS_REGISTRY, WRECORD_CHILDREN_IDX
from voedger.processors.uniques import UNIQUES_VIEW, unique_entries
from voedger.state.rows import Reads, ViewRows, producing_rows
from voedger.structs.events import Event

platform = Registry()

CHILD_WORKSPACE_IDX = QName("sys", "ChildWorkspaceIdx")
WORKSPACE_ID_IDX = QName("sys", "WorkspaceIDIdx")


@platform.projector("sys.RecordsRegistryProjector")
@producing_rows
async def records_registry(app: AppDef, ev: Event, reads: Reads) -> ViewRows:
    """Remembers where each new record lives: its QName and the WLog offset that created it."""
    entries = [(c.id, c.qname) for c in ev.cuds if c.is_new]
    entries += [(r[SYS_ID], r[SYS_QNAME]) for r in ev.arg_records()]
    return [
        (RECORDS_REGISTRY, {"IDHi": record_id >> 18, "ID": record_id, "WLogOffset": ev.wlog_offset, "QName": qname})
        for record_id, qname in entries
    ]


@platform.projector("sys.ProjectorCollection")
@producing_rows
async def collection(app: AppDef, ev: Event, reads: Reads) -> ViewRows:
    """Keeps every CDoc and its CRecords, by document, for q.sys.Collection and q.sys.GetCDoc."""
    rows: ViewRows = []
    for cud in ev.cuds:
        t = app.find(cud.qname)
        if t is None or t.kind not in (TypeKind.CDoc, TypeKind.CRecord):
            continue
        if cud.is_new:  # a new record is all in its CUD: no need to read it back
            rec: dict[str, Any] | None = cud.record()
        else:
            rec = await reads.record(cud.id)
        if rec is None:
            continue
        doc = rec
        while doc.get(SYS_PARENT_ID):
            parent = await reads.record(doc[SYS_PARENT_ID])
            if parent is None:
                break
            doc = parent
        row = {
            "PartKey": COLLECTION_PART_KEY,
            "DocQName": doc[SYS_QNAME],
            "DocID": doc[SYS_ID],
            "ElementID": rec[SYS_ID],
            "Record": rec,
            "offs": ev.wlog_offset,
        }
        rows.append((COLLECTION_VIEW, row))
    return rows


@platform.projector("sys.ApplyUniques")
@producing_rows
async def apply_uniques(app: AppDef, ev: Event, reads: Reads) -> ViewRows:
    """Records unique values of new records; a deactivated record frees them, a reactivated one
    takes them back (the command processor has checked they are free)."""
    targets: list[tuple[Structure, dict[str, Any], int]] = []
    for cud in ev.cuds:
        t = app.find(cud.qname)
        if not isinstance(t, Structure) or not (t.uniques or t.unique_field):
            continue
        if cud.is_new:
            targets.append((t, cud.fields, cud.id))
        elif SYS_IS_ACTIVE in cud.fields:
            rec = await reads.record(cud.id)
            if rec is not None:
                targets.append((t, rec, cud.id if cud.fields[SYS_IS_ACTIVE] else 0))
    for rec in ev.arg_records():
        t = app.find(rec[SYS_QNAME])
        if isinstance(t, Structure) and (t.uniques or t.unique_field):
            targets.append((t, rec, rec[SYS_ID]))
    return [
        (UNIQUES_VIEW, {**entry.key(), "ID": holder})
        for t, fields, holder in targets
        for entry in unique_entries(t, fields)
    ]


@platform.projector("sys.ProjectorChildWorkspaceIdx")
@producing_rows
async def child_workspace_idx(app: AppDef, ev: Event, reads: Reads) -> ViewRows:
    return [
        (CHILD_WORKSPACE_IDX, {"dummy": 1, "WSName": cud.fields["WSName"], "ChildWorkspaceID": cud.id})
        for cud in ev.cuds
        if cud.is_new and cud.qname == "sys.ChildWorkspace"
    ]


@platform.projector("sys.ProjectorWorkspaceIDIdx")
@producing_rows
async def workspace_id_idx(app: AppDef, ev: Event, reads: Reads) -> ViewRows:
    return [
        (
            WORKSPACE_ID_IDX,
            {
                "OwnerWSID": cud.fields["OwnerWSID"],
                "WSName": cud.fields["WSName"],
                "WSID": cud.fields.get("WSID", 0),
                "IDOfCDocWorkspaceID": cud.id,
            },
        )
        for cud in ev.cuds
        if cud.is_new and cud.qname == "sys.WorkspaceID"
    ]


@platform.projector("sys.ProjectorWRecordChildrenIdx")
@producing_rows
async def wrecord_children_idx(app: AppDef, ev: Event, reads: Reads) -> ViewRows:
    """Indexes each new WRecord under its parent and container, so that API v2 ``include``
    finds the records of a WDoc (CDocs have sys.CollectionView). A record's parent and
    container never change: new records are all the index needs."""
    rows: ViewRows = []
    for cud in ev.cuds:
        if not cud.is_new:
            continue
        parent, container = cud.fields.get(SYS_PARENT_ID), cud.fields.get(SYS_CONTAINER)
        t = app.find(cud.qname)
        if not parent or not container or t is None or t.kind is not TypeKind.WRecord:
            continue
        rows.append(
            (WRECORD_CHILDREN_IDX, {"ParentID": parent, "ID": cud.id, "Container": container, "QName": cud.qname})
        )
    return rows


def not_built(app: AppDef) -> list[QName]:
    """sys extensions of ``app`` that the platform does not implement yet."""
    return sorted(
        e.qname
        for e in app.extensions()
        if e.qname.is_sys and e.qname not in platform and e.qname not in PROCESSOR_BUILT_INS
    )


PROCESSOR_BUILT_INS = frozenset({QName("sys", "CUD"), QName("sys", "Init")})
"""Commands the command processor carries out itself: their intents are the request's CUDs."""

from voedger.apps.sys import queries as _queries  # noqa: E402, F401  (registers the sys queries)
