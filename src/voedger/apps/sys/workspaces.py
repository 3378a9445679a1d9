"""Creating workspaces: the platform's implementation of the sys chain.

1. ``c.sys.InitChildWorkspace`` (in the owner's workspace) inserts a ``sys.ChildWorkspace``;
2. the async ``InvokeCreateWorkspaceID`` calls ``c.sys.CreateWorkspaceID`` in the application
   workspace that the name's pseudo WSID maps to, which allocates the new WSID and inserts a
   ``sys.WorkspaceID``;
3. the async ``InvokeCreateWorkspace`` calls ``c.sys.CreateWorkspace`` in the new workspace,
   which writes its ``sys.WorkspaceDescriptor`` and the descriptor of its kind;
4. the async ``InitializeWorkspace`` marks the workspace initialised and tells the owner its WSID
   (or the error).

Each step is idempotent (a repeated call answers 409, taken as success), so the projectors may
deliver at least once and retry.

WSIDs are allocated without a shared counter: application workspace ``n`` of ``N`` gives out the
bases ``FIRST_BASE_USER_WSID + (k * N) + n``, where ``k`` is the WLog offset of its
CreateWorkspaceID event. Offsets are unique within a workspace and workspace numbers within an
application, so no two allocations collide, and the partition that owns the application
workspace is the only writer: no lock across partitions or processes is needed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from voedger.appdef import Structure
from voedger.apps.sys.builtins import platform
from voedger.blobs.keys import TEMPLATE_BLOB
from voedger.blobs.store import STATUS_COMPLETED
from voedger.processors.cuds import check_fields
from voedger.processors.rows import COLLECTION_PART_KEY, COLLECTION_VIEW
from voedger.state import Intents, State, StateError
from voedger.structs import wsid as ws
from voedger.syserror import SysError

APP_WORKSPACE_KIND = "sys.AppWorkspace"
STATUS_ACTIVE = 0
_OWNER_FIELDS = ("OwnerWSID", "OwnerQName2", "OwnerID", "OwnerApp")
_KIND_FIELDS = ("WSName", "WSKind", "WSKindInitializationData", "TemplateName", "TemplateParams")


def _check_kind(state: State, kind: str) -> None:
    """400 unless ``kind`` is the descriptor of a workspace of the application, in Voedger's words."""
    try:
        ok = state.app.workspace_by_descriptor(kind) is not None
    except ValueError:
        ok = False
    if not ok:
        raise SysError(400, f"provided WSKind {kind} is not a QName of a workspace descriptor")


@platform.command("sys.InitChildWorkspace")
async def init_child_workspace(state: State, intents: Intents) -> None:
    arg = state.arg
    # A taken name first, then the kind: Voedger's order (a taken name with a wrong kind is a 409).
    if await state.view("sys.ChildWorkspaceIdx", dummy=1, WSName=arg["WSName"]) is not None:
        raise SysError(409, f"child workspace with name {arg['WSName']} already exists")
    _check_kind(state, arg["WSKind"])
    cluster = arg.get("WSClusterID") or ws.cluster_id(state.wsid)
    if not state.cluster_known(cluster):
        raise SysError(400, f"cluster {cluster} is not known to this federation")
    fields = {k: arg[k] for k in _KIND_FIELDS if arg.get(k) is not None}
    intents.insert("sys.ChildWorkspace", **fields, WSClusterID=cluster)


@platform.command("sys.CreateWorkspaceID")
async def create_workspace_id(state: State, intents: Intents) -> None:
    arg = state.arg
    _check_kind(state, arg["WSKind"])
    known = await state.view("sys.WorkspaceIDIdx", OwnerWSID=arg["OwnerWSID"], WSName=arg["WSName"])
    if known is not None:
        # Only while that workspace is active: a deactivated one's name may be taken again (a
        # login registered again after its profile was deactivated), the index then rewritten.
        previous = await state.record(int(known["IDOfCDocWorkspaceID"]))
        if previous is None or previous.get("sys.IsActive", True):
            raise SysError(409, f"workspace with name {arg['WSName']} and ownerWSID {arg['OwnerWSID']} already exists")
    ctx = state.command_context
    app_ws_number = ws.base_wsid(state.wsid) - ws.FIRST_BASE_APP_WSID
    num_app_ws = state.num_app_workspaces
    if not 0 <= app_ws_number < num_app_ws:
        raise SysError(400, "CreateWorkspaceID must be called in an application workspace")
    base = ws.FIRST_BASE_USER_WSID + ctx.wlog_offset * num_app_ws + app_ws_number
    new_wsid = ws.new_wsid(ws.cluster_id(state.wsid), base)
    fields = {k: arg[k] for k in (*_OWNER_FIELDS, *_KIND_FIELDS) if arg.get(k) is not None}
    intents.insert("sys.WorkspaceID", **fields, WSID=new_wsid)


@platform.command("sys.CreateWorkspace")
async def create_workspace(state: State, intents: Intents) -> None:
    arg = state.arg
    if await state.singleton("sys.WorkspaceDescriptor") is not None:
        raise SysError(409, f"workspace {state.wsid} already exists")
    _check_kind(state, arg["WSKind"])
    fields = {k: arg[k] for k in (*_OWNER_FIELDS, *_KIND_FIELDS) if arg.get(k) is not None}
    now = state.command_context.registered_at
    create_error = ""
    kind_fields: dict[str, Any] = {}
    raw = arg.get("WSKindInitializationData") or "{}"
    try:
        kind_fields = _init_data(raw)
        kind_t = state.app.find(arg["WSKind"])
        if isinstance(kind_t, Structure):
            check_fields(kind_t, kind_fields, "WSKindInitializationData", creating=True)
    except ValueError as exc:
        create_error = f"failed to unmarshal workspace initialization data: {exc}"
    except SysError as exc:
        create_error = f"failed to validate workspace initialization data: {exc.message}"
    intents.insert(
        "sys.WorkspaceDescriptor",
        **fields,
        WSID=state.wsid,
        CreatedAtMs=now,
        Status=STATUS_ACTIVE,
        **({"CreateError": create_error[:1024]} if create_error else {}),
    )
    if not create_error:
        intents.insert(arg["WSKind"], **kind_fields)


def _init_data(raw: str) -> dict[str, Any]:
    """The fields of ``WSKindInitializationData``: a JSON object, else ValueError (the owner then
    reads ``failed to unmarshal workspace initialization data: ...`` in ``WSError``, as in Voedger)."""
    parsed = orjson.loads(raw)
    if not isinstance(parsed, dict):
        raise ValueError("it must be a JSON object")
    return parsed


@platform.projector("sys.InvokeCreateWorkspaceID")
async def invoke_create_workspace_id(state: State, intents: Intents) -> None:
    ev = state.event
    for cud in ev.cuds:
        if not cud.is_new or cud.qname != "sys.ChildWorkspace":
            continue
        f = cud.fields
        cluster = f.get("WSClusterID") or ws.cluster_id(ev.wsid)
        target = ws.pseudo_wsid(f["WSName"], cluster, owner_wsid=ev.wsid)
        body = {
            "args": {
                "OwnerWSID": ev.wsid,
                "OwnerQName2": "sys.ChildWorkspace",
                "OwnerID": cud.id,
                "OwnerApp": state.app_name,
                **{k: f[k] for k in _KIND_FIELDS if f.get(k) is not None},
            }
        }
        app_wsid = ws.pseudo_to_app_wsid(target, state.num_app_workspaces, cluster)
        await state.federation_command(state.app_name, app_wsid, "c.sys.CreateWorkspaceID", body, (200, 409))


@platform.projector("sys.InvokeCreateWorkspace")
async def invoke_create_workspace(state: State, intents: Intents) -> None:
    for cud in state.event.cuds:
        if not cud.is_new or cud.qname != "sys.WorkspaceID":
            continue
        f = cud.fields
        body = {"args": {k: f[k] for k in (*_OWNER_FIELDS, *_KIND_FIELDS) if f.get(k) is not None}}
        await state.federation_command(state.app_name, f["WSID"], "c.sys.CreateWorkspace", body, (200, 409))


@platform.projector("sys.InitializeWorkspace")
async def initialize_workspace(state: State, intents: Intents) -> None:
    ev = state.event
    for cud in ev.cuds:
        if not cud.is_new or cud.qname != "sys.WorkspaceDescriptor":
            continue
        f = cud.fields
        if f.get("WSKind") == APP_WORKSPACE_KIND:
            continue
        error = f.get("CreateError", "")
        desc_id = cud.id
        if not error:
            current = await state.record(desc_id)
            if current is not None and current.get("InitStartedAtMs") and not current.get("InitCompletedAtMs"):
                error = "workspace data initialization was interrupted"  # a template half-applied
            elif current is not None and not current.get("InitCompletedAtMs"):
                now = ev.registered_at
                start = {"cuds": [{"sys.ID": desc_id, "fields": {"InitStartedAtMs": now}}]}
                await state.federation_command(state.app_name, ev.wsid, "c.sys.CUD", start)
                error = await _apply_template(state, ev.wsid, f)
                finish: dict[str, Any] = {"InitCompletedAtMs": now}
                if error:
                    finish["InitError"] = error[:1024]
                body = {"cuds": [{"sys.ID": desc_id, "fields": finish}]}
                await state.federation_command(state.app_name, ev.wsid, "c.sys.CUD", body)
        owner_app, owner_wsid, owner_id = f.get("OwnerApp"), f.get("OwnerWSID"), f.get("OwnerID")
        if owner_app and owner_wsid and owner_id:
            update = {"WSID": ev.wsid} if not error else {"WSError": error}
            body = {"cuds": [{"sys.ID": owner_id, "fields": update}]}
            await state.federation_command(owner_app, owner_wsid, "c.sys.CUD", body)


async def _apply_template(state: State, wsid: int, desc: dict[str, Any]) -> str:
    """Write the records of the workspace's template (``data.json``); the error text, if any."""
    name = desc.get("TemplateName")
    if not name:
        return ""
    records = state.workspace_template(str(desc["WSKind"]), str(name))
    if records is None:
        return f"unknown workspace template name {name} for workspace kind {desc['WSKind']}"
    if not records:
        return ""
    try:
        await _upload_template_blobs(state, wsid, records)
    except (OSError, StateError) as exc:
        return f"workspace template {name}: blobs uploading failed: {exc}"
    reply = await state.federation_command(
        state.app_name,
        wsid,
        "c.sys.CUD",
        {"cuds": [{"fields": r} for r in records]},
        expected=(200, 400, 403, 404, 409),
    )
    return "" if reply.status == 200 else f"workspace template {name}: {reply.message}"


async def _upload_template_blobs(state: State, wsid: int, records: list[dict[str, Any]]) -> None:
    """Each BLOB file of the template becomes a BLOB of the new workspace, meant for its record's
    field (as an API v2 upload would make it), and the record refers to it (as Voedger does:
    name = the file's name, content type = its extension)."""
    for record in records:
        for field, value in list(record.items()):
            if not (isinstance(value, dict) and TEMPLATE_BLOB in value):
                continue
            path = Path(value[TEMPLATE_BLOB])
            owner = (str(record["sys.QName"]), field)
            args = {"args": {"OwnerRecord": owner[0], "OwnerRecordField": field}}
            reply = await state.federation_command(state.app_name, wsid, "c.sys.UploadBLOBHelper", args)
            blob_id = reply.new_ids["1"]
            data = await asyncio.to_thread(path.read_bytes)
            await state.write_blob(wsid, blob_id, path.name, path.suffix[1:], data, ".".join(owner))
            done = {"cuds": [{"sys.ID": blob_id, "fields": {"status": STATUS_COMPLETED}}]}
            await state.federation_command(state.app_name, wsid, "c.sys.CUD", done)
            record[field] = blob_id


STATUS_TO_BE_DEACTIVATED = 1
STATUS_INACTIVE = 2
SUBJECT_KIND_USER = 1
JOINED_WORKSPACE_INDEX_DUMMY = 56  # as in sys.JoinedWorkspaceIndexView (apps/sys/invites.py)
_GONE_OK = (200, 403, 404, 410)


@platform.command("sys.InitiateDeactivateWorkspace")
async def initiate_deactivate_workspace(state: State, intents: Intents) -> None:
    """Mark the workspace to be deactivated; requests answer 410 from now on, and the async
    ApplyDeactivateWorkspace finishes the job (tells the owner, then marks it inactive)."""
    desc = await state.singleton("sys.WorkspaceDescriptor")
    if desc is None:
        raise SysError(403, "workspace is not initialized")
    if desc.get("Status", STATUS_ACTIVE) != STATUS_ACTIVE:
        # Voedger's words for this command, capitals and all (the processors' 410 is lower case).
        raise SysError(409, "Workspace Status is not Active")
    intents.update(desc, Status=STATUS_TO_BE_DEACTIVATED)


@platform.projector("sys.ApplyDeactivateWorkspace")
async def apply_deactivate_workspace(state: State, intents: Intents) -> None:
    """Tell everybody who keeps a record of the workspace, then mark it inactive:

    - the profile of each user the workspace's ``sys.Subject`` records name (their
      ``sys.JoinedWorkspace`` goes inactive: ``c.sys.OnJoinedWorkspaceDeactivated``);
    - the application workspace that keeps its ``sys.WorkspaceID`` (``c.sys.OnWorkspaceDeactivated``);
    - the owner's record of it (``c.sys.OnChildWorkspaceDeactivated``): a child's
      ``sys.ChildWorkspace``, a profile's ``registry.Login``.
    """
    ev = state.event
    desc = await state.singleton("sys.WorkspaceDescriptor")
    if desc is None or desc.get("Status") == STATUS_INACTIVE:
        return  # already done: the projector may see the event twice
    app = state.app_name
    profiles: set[int] = set()
    async for row in state.read_view(COLLECTION_VIEW, PartKey=COLLECTION_PART_KEY, DocQName="sys.Subject"):
        subject = row.get("Record") or {}
        if int(subject.get("SubjectKind") or 0) == SUBJECT_KIND_USER and subject.get("ProfileWSID"):
            profiles.add(int(subject["ProfileWSID"]))
    for profile in sorted(profiles):
        # A profile that is gone (or never was) has nothing to update: not a reason to stop here.
        notify = {"args": {"InvitedToWSID": ev.wsid}}
        await state.federation_command(app, profile, "c.sys.OnJoinedWorkspaceDeactivated", notify, _GONE_OK)
    owner_app, owner_wsid, owner_id = desc.get("OwnerApp"), desc.get("OwnerWSID"), desc.get("OwnerID")
    ws_name = str(desc.get("WSName") or "")
    cluster = ws.cluster_id(ev.wsid)
    if owner_app and ws_name:
        # sys.WorkspaceID lives where CreateWorkspaceID was called: for a child, in the owner's
        # application at the pseudo WSID of (owner, name); for a profile, in this application at
        # the pseudo WSID of its name.
        if owner_app == app:
            where_app, pseudo = app, ws.pseudo_wsid(ws_name, cluster, owner_wsid=int(owner_wsid or 0))
        else:
            where_app, pseudo = app, ws.pseudo_wsid(ws_name, cluster)
        target = ws.pseudo_to_app_wsid(pseudo, state.num_app_workspaces, cluster)
        body = {"args": {"OwnerWSID": int(owner_wsid or 0), "WSName": ws_name}}
        await state.federation_command(where_app, target, "c.sys.OnWorkspaceDeactivated", body)
    if owner_app and owner_wsid and owner_id:
        # The owner's record of the workspace goes inactive: a child's sys.ChildWorkspace, or a
        # profile's registry.Login (so the login answers as a missing one), as in Voedger.
        notify = {"args": {"OwnerID": owner_id}}
        await state.federation_command(owner_app, owner_wsid, "c.sys.OnChildWorkspaceDeactivated", notify)
    done = {"cuds": [{"sys.ID": desc["sys.ID"], "fields": {"Status": STATUS_INACTIVE}}]}
    await state.federation_command(app, ev.wsid, "c.sys.CUD", done)


@platform.command("sys.OnWorkspaceDeactivated")
async def on_workspace_deactivated(state: State, intents: Intents) -> None:
    """In the application workspace that made the workspace's WSID: its ``sys.WorkspaceID`` goes
    inactive (idempotent; nothing to do for a workspace this one does not know)."""
    arg = state.arg
    row = await state.view("sys.WorkspaceIDIdx", OwnerWSID=arg["OwnerWSID"], WSName=arg["WSName"])
    if row is None:
        return
    await _deactivate(state, intents, int(row["IDOfCDocWorkspaceID"]))


@platform.command("sys.OnJoinedWorkspaceDeactivated")
async def on_joined_workspace_deactivated(state: State, intents: Intents) -> None:
    """In a member's profile: the ``sys.JoinedWorkspace`` of the deactivated workspace goes
    inactive (idempotent; nothing to do if the member never joined it)."""
    row = await state.view(
        "sys.JoinedWorkspaceIndexView",
        Dummy=JOINED_WORKSPACE_INDEX_DUMMY,
        InvitingWorkspaceWSID=state.arg["InvitedToWSID"],
    )
    if row is None:
        return
    await _deactivate(state, intents, int(row["JoinedWorkspaceID"]))


@platform.command("sys.OnChildWorkspaceDeactivated")
async def on_child_workspace_deactivated(state: State, intents: Intents) -> None:
    """In the owner's workspace: its record of the child goes inactive (idempotent)."""
    await _deactivate(state, intents, state.arg["OwnerID"])


async def _deactivate(state: State, intents: Intents, record_id: int) -> None:
    """Record ``record_id`` goes inactive, if it exists and is active (idempotent)."""
    rec = await state.record(record_id)
    if rec is not None and rec.get("sys.IsActive", True):
        intents.update(rec, **{"sys.IsActive": False})
