"""The command pipeline: what a partition does with one command, up to the event to log.

The partition writer (``processors/partition.py``) feeds it the commands of a group one after
another, each over an overlay of the writes of the ones before it, and writes the group.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from voedger.appdef import (
    SYS_ID,
    SYS_IS_ACTIVE,
    SYS_PARENT_ID,
    SYS_QNAME,
    AppDef,
    Command,
    OperationKind,
    Projector,
    QName,
    Structure,
    TypeKind,
    View,
    Workspace,
)
from voedger.processors import blob_owners
from voedger.processors.app import AppRuntime, invoke
from voedger.processors.cuds import (
    Create,
    QNameReader,
    Update,
    bad,
    check_object_refs,
    check_refs,
    check_update,
    command_result,
    misdirected_reference,
    parse_cuds,
    parse_object,
)
from voedger.processors.identity import resolve_principal
from voedger.processors.principal import Principal
from voedger.processors.sequences import Workspaces, WorkspaceSeq
from voedger.processors.tally import Tally
from voedger.processors.typecache import TypeCache, type_cache
from voedger.processors.uniques import (
    UNIQUES_VIEW,
    UniqueEntry,
    unique_entries,
    unique_field_names,
    unique_field_order,
    unique_too_long,
)
from voedger.state import CommandContext, Intents
from voedger.state.rows import row_producer, write_produced_rows
from voedger.structs import ids
from voedger.structs.events import CUD, Event
from voedger.structs.logs import put_plog, put_wlog
from voedger.structs.pending import Pending
from voedger.structs.qnames import names_of
from voedger.structs.records import Record, get_record, put_record
from voedger.structs.values import ValidationError, coerce
from voedger.structs.views import get_row, put_row
from voedger.syserror import SysError

log = logging.getLogger("voedger.command")

SYS_CUD = QName("sys", "CUD")
SYS_INIT = QName("sys", "Init")
CUD_COMMANDS = frozenset({SYS_CUD, SYS_INIT})
CREATE_WORKSPACE = QName("sys", "CreateWorkspace")
SYSTEM_ONLY = frozenset({QName("sys", "RenameQName")})
"""Commands only the System may call, whatever the ACL says: Voedger grants c.sys.RenameQName
to a workspace's owner, but it renames a QName of the whole application."""
WS_DESCRIPTOR = QName("sys", "WorkspaceDescriptor")
DESCRIPTOR_NAME = str(WS_DESCRIPTOR)
SUBJECT_NAME = "sys.Subject"
BODY_KEYS = frozenset({"args", "unloggedArgs", "cuds"})

ERR_WS_NOT_INITED = "workspace is not initialized"
ERR_WS_INACTIVE = "workspace status is not active"
WS_STATUS_ACTIVE = 0


@dataclass
class CommandRequest:
    wsid: int
    command: QName
    body: dict[str, Any]
    principal: Any
    """The caller as the edge authenticated it (a Principal passes through unresolved)."""
    synced: bool = False
    """A system write (bootstrap, workspace creation): may target a workspace with no descriptor."""
    ip: str = ""
    """The client's address, for rates per IP."""
    table: QName | None = None
    """The table an API v2 ``PATCH``/``DELETE docs/{table}/{id}`` names: the record must be one of it."""


@dataclass
class CommandResult:
    wlog_offset: int
    new_ids: dict[str, int]
    result: dict[str, Any] | None

    def to_v1(self) -> dict[str, Any]:
        out: dict[str, Any] = {"CurrentWLogOffset": self.wlog_offset}
        if self.new_ids:
            out["NewIDs"] = self.new_ids
        if self.result is not None:
            out["Result"] = self.result
        return out

    def to_v2(self) -> dict[str, Any]:
        out: dict[str, Any] = {"currentWLogOffset": self.wlog_offset}
        if self.new_ids:
            out["newIDs"] = self.new_ids
        if self.result is not None:
            out["result"] = self.result
        return out


def workspace_kind(appdef: AppDef, descriptor: Record) -> Workspace:
    """The kind of a workspace, named by its descriptor (a kind the app lacks is the server's fault)."""
    ws = type_cache(appdef).workspace_by_descriptor(descriptor["WSKind"])
    if ws is None:
        raise SysError(500, f"workspace kind {descriptor['WSKind']} is not in the application")
    return ws


def principal_context(principal: Principal) -> dict[str, Any]:
    """What a command sees of its caller (Voedger's ``sys.RequestSubject`` storage)."""
    extra = principal.extra
    return {
        "login": principal.login,
        "profile_wsid": principal.profile_wsid,
        "subject_kind": int(extra.get("subject_kind", principal.subject_kind)),  # type: ignore[call-overload]
        "alias": str(extra.get("alias") or ""),
    }


def check_active(descriptor: Record, principal: Principal) -> None:
    """410 for a workspace being or having been deactivated; the System works on regardless."""
    if descriptor.get("Status", WS_STATUS_ACTIVE) != WS_STATUS_ACTIVE and not principal.is_system:
        raise SysError(410, ERR_WS_INACTIVE)


def unique_violation(table: QName, entry: UniqueEntry, holder: int) -> SysError:
    return SysError(409, f'{table}: "{entry.name}" unique constraint violation with ID {holder}')


class CommandWork:
    """One command on its way through the pipeline: what each stage found, for the next ones.
    Everything here is a copy until ``CommandPipeline.commit`` (sequences) and the caller
    (``writes``) keep it."""

    ws: WorkspaceSeq
    principal: Principal
    ws_type: Workspace
    cmd: Command
    idgen: ids.IDGenerator
    qname_of: QNameReader
    event: Event

    def __init__(self, req: CommandRequest, writes: Pending, plog_offset: int) -> None:
        self.req = req
        self.writes = writes
        """The command's overlay: reads see the group's writes before it; kept only on success."""
        self.plog_offset = plog_offset
        self.args: dict[str, Any] | None = None
        self.unlogged: dict[str, Any] | None = None
        self.new_ids: dict[int, int] = {}
        """Raw IDs (of the argument's ODoc and of new records) to the IDs they get."""
        self.fixed: set[int] = set()
        """Raw IDs of singletons: their IDs are fixed, not reported in NewIDs (as in Voedger)."""
        self.arg_records: list[Record] = []
        self.creates: list[Create] = []
        self.updates: list[Update] = []
        self.intents: Intents | None = None
        self.result: dict[str, Any] | None = None
        self.records: list[Record] = []
        """After-images: new records first (in ``creates`` order), then updated ones."""
        self.cuds: list[CUD] = []
        self.views: list[tuple[QName, dict[str, Any]]] = []

    def record(self, record_id: int) -> Awaitable[Record | None]:
        return get_record(self.writes, self.req.wsid, record_id)


class CommandPipeline:
    """Executes one command of a partition's workspaces in named stages over one
    ``CommandWork`` (the order is ``run``'s); writing the event is the partition writer's
    (``processors/partition.py``). The test kit runs the same pipeline with switches:
    ``acl`` and ``uniques`` off skip those checks, ``sync_projectors`` off runs none, and
    ``any_workspace`` lets a workspace without a descriptor be of any kind that has the command."""

    def __init__(
        self,
        app: AppRuntime,
        partition_id: int,
        workspaces: Workspaces,
        *,
        acl: bool = True,
        uniques: bool = True,
        sync_projectors: bool = True,
        any_workspace: bool = False,
    ) -> None:
        self.app = app
        self.id = partition_id
        self.workspaces = workspaces
        self.acl = acl
        self.uniques_on = uniques
        self.sync_projectors_on = sync_projectors
        self.any_workspace = any_workspace
        self.exec = Tally()
        """Command extensions run (Voedger's ``voedger_cp_exec_seconds``)."""
        self.projectors = Tally()
        """Commands' SYNC projectors run (``voedger_cp_projectors_seconds``)."""
        self.identities_changed: set[int] = set()
        """Workspaces whose descriptor or subjects the commands committed since the partition
        last took this set (it drops their read cache entries once the group is durable)."""

    async def execute(self, req: CommandRequest, writes: Pending, plog_offset: int) -> tuple[CommandResult, Event]:
        """Execute a command over ``writes`` (an overlay the caller keeps only on success): its
        result and the event to log at ``plog_offset``; the workspace's sequences advance."""
        w = await self.run(req, writes, plog_offset)
        return self.commit(w), w.event

    async def run(self, req: CommandRequest, writes: Pending, plog_offset: int) -> CommandWork:
        """The stages, in order; any of them refuses the command with a ``SysError``."""
        w = CommandWork(req, writes, plog_offset)
        self.parse(w)
        await self.workspace_and_principal(w)
        self.authorize_and_rate(w)
        await self.arguments(w)
        await self.cuds(w)
        await self.extension(w)
        await self.record_ids(w)
        await self.references(w)
        await self.uniques(w)
        self.event(w)
        await self.sync_projectors(w)
        return w

    def commit(self, w: CommandWork) -> CommandResult:
        """The command succeeded: its workspace's sequences (and descriptor) advance."""
        ws = w.ws
        for rec in w.records:
            if rec[SYS_QNAME] == DESCRIPTOR_NAME:
                ws.descriptor = rec
            if rec[SYS_QNAME] in (DESCRIPTOR_NAME, SUBJECT_NAME):
                ws.forget_principals()
                self.identities_changed.add(w.req.wsid)
        ws.idgen = w.idgen
        ws.next_wlog += 1
        fixed = w.fixed
        reported = {str(k): v for k, v in w.new_ids.items() if k not in fixed}
        return CommandResult(w.event.wlog_offset, reported, w.result)

    # --- the stages ----------------------------------------------------------------------------

    def parse(self, w: CommandWork) -> None:
        """The request body: a JSON object. Other keys than the known ones are logged and let
        through, as Voedger still allows them for its older clients."""
        body = w.req.body
        if not isinstance(body, dict):
            raise bad("the request body must be a JSON object")
        unexpected = sorted(set(body) - BODY_KEYS)
        if unexpected:
            log.warning("%s: unexpected field(s): %s, allowed as in Voedger", w.req.command, ", ".join(unexpected))

    async def workspace_and_principal(self, w: CommandWork) -> None:
        """The workspace's sequences and kind, the caller's principal in it, the command (404
        if the workspace's kind has none of that name)."""
        app = self.app
        appdef = app.appdef
        req = w.req
        w.ws = ws = await self.workspaces.get(req.wsid, w.writes)
        known = type_cache(appdef).workspace_by_descriptor(ws.descriptor["WSKind"]) if ws.descriptor else None
        principal = ws.known_principal(req.principal)
        if principal is None:
            principal = await resolve_principal(
                app, req.principal, req.wsid, known or appdef.sys_workspace, ws.descriptor, w.writes, ws.subjects
            )
            ws.remember_principal(req.principal, principal)
        w.principal = principal
        w.ws_type = ws_type = self._workspace_type(req, principal, ws.descriptor)
        cmd = type_cache(appdef).find(req.command)
        if cmd is None or not ws_type.has_type(req.command):
            raise SysError(404, f"command {req.command} does not exist in workspace {ws_type.qname}")
        if not isinstance(cmd, Command):
            raise bad(f"{req.command} is not a command")
        w.cmd = cmd
        w.idgen = ids.IDGenerator(ws.idgen.next_id)  # a copy until the command succeeds

    def authorize_and_rate(self, w: CommandWork) -> None:
        """May the principal execute the command here, and is it within its rates?"""
        self._authorize(w.ws_type, w.principal, OperationKind.Execute, w.cmd.qname)
        if w.cmd.qname in SYSTEM_ONLY and not w.principal.is_system:
            raise SysError(403, f"{w.cmd.qname} may be executed by the System only")
        limiter = self.app.limiter
        if limiter is not None and not w.principal.is_system:
            req = w.req
            limiter.check(w.cmd.qname, partition=self.id, wsid=req.wsid, login=w.principal.login, ip=req.ip)

    async def arguments(self, w: CommandWork) -> None:
        """The arguments, checked against their types, verified values taken, references checked
        before the extension sees them (as Voedger does); an ODoc argument gets its IDs."""
        appdef = self.app.appdef
        cmd = w.cmd
        body = w.req.body
        args = w.args = self._args(cmd, body.get("args"), "args")
        if args is not None and cmd.param is not None:
            self._verify_fields(appdef.find(cmd.param), args, "args")
        unlogged = w.unlogged = self._args(cmd, body.get("unloggedArgs"), "unloggedArgs", unlogged=True)
        if unlogged is not None and cmd.unlogged_param is not None:
            self._verify_fields(appdef.find(cmd.unlogged_param), unlogged, "unloggedArgs")
        w.qname_of = qname_of = self._qname_reader(w.writes, w.req.wsid)
        for param, obj in ((cmd.param, args), (cmd.unlogged_param, unlogged)):
            param_t = appdef.find(param) if param is not None and obj else None
            if isinstance(param_t, Structure):
                assert obj is not None
                await check_object_refs(appdef, param_t, obj, qname_of)
        if args is not None and cmd.param is not None and appdef.type(cmd.param).kind is TypeKind.ODoc:
            self._assign_arg_ids(args, w.idgen, w.new_ids, w.arg_records)

    async def cuds(self, w: CommandWork) -> None:
        """The client's CUDs (``sys.CUD``, ``sys.Init``): parsed, updates read, each authorised
        by operation and fields."""
        appdef = self.app.appdef
        cmd = w.cmd
        body = w.req.body
        if body.get("cuds") and cmd.qname not in CUD_COMMANDS:
            raise bad("CUDs allowed for c.sys.CUD command only")
        table = w.req.table
        if table is not None and not w.ws_type.has_type(table):
            # An API v2 URL naming a table the workspace lacks: Voedger's 400 names the workspace
            # by ID and descriptor.
            raise bad(f"table {table} not found in workspace {w.req.wsid}:{w.ws_type.descriptor}")
        if cmd.qname in CUD_COMMANDS and not body.get("cuds"):
            raise bad(f"CUDs are missing: {cmd.qname} needs at least one")
        if "cuds" not in body:
            return
        creates, raw_updates = parse_cuds(appdef, w.ws_type, body.get("cuds", []))
        updates = w.updates
        for rid, f, where in raw_updates:  # a loop: mypyc compiles no await inside a comprehension
            updates.append(await check_update(appdef, rid, f, where, w.record))
        if table is not None:
            for u in updates:
                if u.type.qname != table:
                    mentioned = f"{table} QName is mentioned in the request"
                    raise bad(f"record id {u.id} leads to {u.type.qname} QName whereas {mentioned}")
        for c in creates:
            self._verify_fields(c.type, c.fields, c.where)
        for u in updates:
            self._verify_fields(u.type, u.changes, u.where)
        w.creates = creates
        principal = w.principal
        if principal.is_system or not self.acl:
            return
        ws_type = w.ws_type
        for c in creates:
            names = sorted(n for n in c.fields if not n.startswith("sys."))
            self._authorize_cud(ws_type, principal, OperationKind.Insert, c.type.qname, names, c.where)
        for u in updates:
            if u.activation is None:
                self._authorize_cud(ws_type, principal, OperationKind.Update, u.type.qname, sorted(u.changes), u.where)
            else:
                op = OperationKind.Activate if u.activation else OperationKind.Deactivate
                self._authorize_cud(ws_type, principal, op, u.type.qname, (), u.where)

    async def extension(self, w: CommandWork) -> None:
        """The command's extension: its intents' records join the CUDs, its result is checked."""
        app = self.app
        cmd = w.cmd
        func, access = app.runner(cmd)
        if func is None:
            if cmd.qname.is_sys and cmd.qname not in CUD_COMMANDS:
                raise SysError(501, f"command {cmd.qname} is not built yet")
            if not cmd.qname.is_sys:
                raise SysError(500, f"command {cmd.qname} has no implementation")
            return
        req = w.req
        context = CommandContext(
            req.wsid, w.args, w.unlogged, w.ws.next_wlog, principal_context(w.principal), app.now_ms(), req.ip
        )
        state = app.state(access, w.writes, req.wsid, command=context)
        intents = w.intents = Intents(access)
        with self.exec.timing():
            await invoke(func, state, intents)
        if intents.response is not None:
            status, message = intents.response
            raise SysError(status, message)
        if intents.inserts:
            w.creates += self._intent_creates(w.ws_type, intents)
        for upd in intents.updates:
            w.updates.append(
                await check_update(app.appdef, upd.id, upd.changes, f"intent {upd.table}", w.record, intent=True)
            )
        if intents.results:
            w.result = command_result(app.appdef, cmd.qname, cmd.result, intents.results[-1])

    async def record_ids(self, w: CommandWork) -> None:
        """Real IDs for new records (singletons have fixed ones, others come from the generator);
        the after-images and CUDs, with raw IDs in references replaced (400 for a raw ID that
        names no record of this request)."""
        new_ids = w.new_ids
        singleton_ids = self.app.singleton_ids
        for c in w.creates:
            if c.type.singleton:
                sid = singleton_ids[c.type.qname]
                if await w.record(sid) is not None or sid in new_ids.values():
                    raise SysError(409, f"{c.where}: singleton {c.type.qname} already exists in this workspace")
                new_ids[c.raw_id] = sid
                w.fixed.add(c.raw_id)
            else:
                new_ids[c.raw_id] = w.idgen.next()
        records = w.records
        cuds = w.cuds
        for c in w.creates:
            rec = self._resolve_refs(c.type, dict(c.fields), new_ids, c.where)
            rec = {SYS_QNAME: str(c.type.qname), SYS_ID: new_ids[c.raw_id], **rec}
            if c.type.field(SYS_IS_ACTIVE) is not None:
                rec[SYS_IS_ACTIVE] = True
            if SYS_PARENT_ID in rec and isinstance(rec[SYS_PARENT_ID], int) and ids.is_raw_id(rec[SYS_PARENT_ID]):
                rec[SYS_PARENT_ID] = self._map_raw(rec[SYS_PARENT_ID], new_ids, c.where)
            records.append(rec)
            cuds.append(
                CUD(
                    True,
                    rec[SYS_ID],
                    rec[SYS_QNAME],
                    {k: v for k, v in rec.items() if k not in (SYS_ID, SYS_QNAME)},
                )
            )
        for u in w.updates:
            changes = self._resolve_refs(u.type, dict(u.changes), new_ids, u.where)
            records.append({**u.before, **changes})
            cuds.append(CUD(False, u.id, str(u.type.qname), changes))

    async def references(self, w: CommandWork) -> None:
        """Every reference names a record of the workspace (or of this request) of a table the
        field allows; BLOBs put into fields get their owner; a subject's roles exist."""
        appdef = self.app.appdef
        records = w.records
        creates = w.creates
        created = {r[SYS_ID]: r[SYS_QNAME] for r in records[: len(creates)] + w.arg_records}
        for rec in w.arg_records:  # their other references were checked before the extension ran
            t = appdef.structure(rec[SYS_QNAME])
            for name in self._resolve_raw_refs(t, rec, w.new_ids, "args"):
                target, ref = rec[name], t.field(name)
                if ref is not None and ref.refs and QName.parse(created[target]) not in ref.refs:
                    raise misdirected_reference(target, t.qname, name, created[target], ref.refs)
        for rec in records:
            t = appdef.structure(rec[SYS_QNAME])
            if t.ref_fields:
                await check_refs(t, rec, w.qname_of, created)
        takers = [
            blob_owners.Taker(c.type, rec[SYS_ID], c.raw_id, rec)
            for c, rec in zip(creates, records, strict=False)
            if c.type.ref_fields
        ]
        takers += [  # an update takes the BLOBs it puts, not those its record holds already
            blob_owners.Taker(u.type, u.id, u.id, cud.fields)
            for u, cud in zip(w.updates, w.cuds[len(creates) :], strict=True)
            if u.type.ref_fields
        ]
        if takers:
            for blob in await blob_owners.claims(takers, w.record):
                records.append(blob)
                change = {blob_owners.OWNER_RECORD_ID: blob[blob_owners.OWNER_RECORD_ID]}
                w.cuds.append(CUD(False, blob[SYS_ID], str(blob_owners.BLOB_TABLE), change))
        for rec in records:
            if rec.get(SYS_QNAME) == SUBJECT_NAME:
                _check_subject_roles(appdef, rec.get("Roles"))

    async def uniques(self, w: CommandWork) -> None:
        """Unique values are free (409 if another record holds them), unique fields unchanged."""
        if not self.uniques_on:
            return
        tables = [c.type for c in w.creates] + [u.type for u in w.updates]
        if any(t.uniques or t.unique_field for t in tables):
            await self._check_uniques(w.req.wsid, w.creates, w.updates, w.records, w.writes)

    def event(self, w: CommandWork) -> None:
        """The event, numbered by the partition's PLog and the workspace's WLog; its records are
        written."""
        app = self.app
        req = w.req
        w.event = Event(
            qname=str(w.cmd.qname),
            wsid=req.wsid,
            partition=self.id,
            plog_offset=w.plog_offset,
            wlog_offset=w.ws.next_wlog,
            registered_at=app.now_ms(),
            args=w.args,
            cuds=tuple(w.cuds),
            synced=req.synced,
            synced_at=app.now_ms() if req.synced else 0,
        )
        writes = w.writes
        for rec in w.records:
            put_record(writes, req.wsid, rec)

    async def sync_projectors(self, w: CommandWork) -> None:
        """The SYNC projectors the event triggers write their views with the command; the PLog
        entry carries what recovery needs to re-apply the event without running anything."""
        event = w.event
        writes = w.writes
        if self.sync_projectors_on:
            with self.projectors.timing():
                w.views = await self._sync_projectors(event, writes)
        records = w.records
        created = len(w.creates)
        if len(records) > created:  # after-images of updates; a new record is its CUD
            event.extra["records"] = records[created:]
        event.extra["views"] = [[str(q), row] for q, row in w.views]
        plog_data, wlog_data = event.encode_both(names_of(writes.storage))
        put_plog(writes, event, plog_data)
        put_wlog(writes, event, wlog_data)

    # --- what the stages share -------------------------------------------------------------------

    def _authorize(
        self, ws: Workspace, principal: Principal, op: OperationKind, resource: QName, fields: Sequence[str] = ()
    ) -> None:
        if not self.acl or principal.is_system or self.app.authorizer.allowed(ws, principal, op, resource, fields):
            return
        what = f"{op} on {resource}" + (f" (fields {', '.join(fields)})" if fields else "")
        raise SysError(403, f"{what} is forbidden in workspace {ws.qname}")

    def _authorize_cud(
        self, ws: Workspace, principal: Principal, op: OperationKind, table: QName, fields: Sequence[str], where: str
    ) -> None:
        """A client's CUD the ACL refuses answers 403 in Voedger's words: the CUD's place, the
        operation and the table."""
        if self.app.authorizer.allowed(ws, principal, op, table, fields):
            return
        raise SysError(403, f"{where} OperationKind_{op} {table}: operation forbidden")

    def _workspace_type(self, req: CommandRequest, principal: Principal, descriptor: Record | None) -> Workspace:
        appdef = self.app.appdef
        if descriptor is None:
            if req.synced or (principal.is_system and req.command in CUD_COMMANDS):
                return self._new_workspace_type(req)
            if principal.is_system and req.command == CREATE_WORKSPACE:
                args = req.body.get("args")
                kind = args.get("WSKind") if isinstance(args, dict) else None
                ws = type_cache(appdef).workspace_by_descriptor(kind) if isinstance(kind, str) else None
                if ws is None:
                    raise bad(f"WSKind {kind!r} is not the descriptor of a workspace of the application")
                return ws
            if self.any_workspace:
                return self._workspace_with(req.command)
            raise SysError(403, ERR_WS_NOT_INITED)
        check_active(descriptor, principal)
        return workspace_kind(appdef, descriptor)

    def _workspace_with(self, command: QName) -> Workspace:
        """A workspace kind that has the command (the test kit's workspaces have no descriptor)."""
        appdef = self.app.appdef
        kinds = [ws for ws in appdef.workspaces() if ws.has_type(command)]
        concrete = [ws for ws in kinds if not ws.abstract]
        return (concrete or kinds or [appdef.sys_workspace])[0]

    def _verify_fields(self, t: object, values: dict[str, Any], where: str) -> None:
        """A VERIFIABLE field takes a verified value token; the value it proves is what is kept,
        so the token itself never reaches the event log (as in Voedger)."""
        if not isinstance(t, Structure):
            return
        for f in t.fields:
            if not f.verifiable or values.get(f.name) in (None, ""):
                continue
            if self.app.verify_value is None:
                raise bad(f"{where}: {t.qname} field «{f.name}» is verifiable, and this server verifies no values")
            value = self.app.verify_value(str(values[f.name]), t.qname, f.name)
            try:
                values[f.name] = coerce(t.qname, f, value)
            except ValidationError as exc:
                raise bad(f"{where}: {exc}") from None

    def _new_workspace_type(self, req: CommandRequest) -> Workspace:
        """The kind of a workspace being created: named by the descriptor the request writes."""
        appdef = self.app.appdef
        for cud in req.body.get("cuds", ()) if isinstance(req.body.get("cuds"), list) else ():
            fields = cud.get("fields") if isinstance(cud, dict) else None
            if isinstance(fields, dict) and fields.get(SYS_QNAME) == str(WS_DESCRIPTOR):
                kind = fields.get("WSKind")
                ws = appdef.workspace_by_descriptor(kind) if isinstance(kind, str) else None
                if ws is None:
                    raise bad(f"WSKind {kind!r} is not the descriptor of a workspace of the application")
                return ws
        return appdef.sys_workspace

    def _args(self, cmd: Command, raw: Any, where: str, unlogged: bool = False) -> dict[str, Any] | None:
        param = cmd.unlogged_param if unlogged else cmd.param
        if param is None:
            if raw not in (None, {}):
                raise bad(f"{where} are not expected")
            return None
        appdef = self.app.appdef
        t = appdef.find(param)
        if not isinstance(t, Structure):
            if raw is not None and not isinstance(raw, dict):
                raise bad(f"{where}: expected a JSON object")
            return raw if raw is not None else {}
        if raw is None:
            raw = {}
        return parse_object(appdef, t, raw, where, allow_raw_ids=True)

    def _assign_arg_ids(
        self, obj: dict[str, Any], idgen: ids.IDGenerator, new_ids: dict[int, int], out: list[Record]
    ) -> None:
        raw = obj[SYS_ID]
        if raw in new_ids:
            raise bad(f"args: raw ID {raw} is used twice")
        new_ids[raw] = idgen.next()
        obj[SYS_ID] = new_ids[raw]
        out.append(obj)
        for value in obj.values():
            if isinstance(value, list):
                for child in value:
                    if isinstance(child, dict) and SYS_ID in child:
                        child[SYS_PARENT_ID] = obj[SYS_ID]
                        self._assign_arg_ids(child, idgen, new_ids, out)

    def _intent_creates(self, ws_type: Workspace, intents: Intents) -> list[Create]:
        body = [{"fields": {SYS_ID: i.raw_id, SYS_QNAME: str(i.table), **i.fields}} for i in intents.inserts]
        creates, _ = parse_cuds(self.app.appdef, ws_type, body)
        return creates

    @staticmethod
    def _map_raw(raw: int, new_ids: dict[int, int], where: str) -> int:
        try:
            return new_ids[raw]
        except KeyError:
            raise bad(f"{where}: raw ID {raw} refers to no record created by this request") from None

    def _resolve_raw_refs(self, t: Structure, rec: Record, new_ids: dict[int, int], where: str) -> list[str]:
        """Resolve the raw IDs in a record's references; the names of the fields that had one."""
        names = []
        for f in t.ref_fields:
            v = rec.get(f.name)
            if isinstance(v, int) and ids.is_raw_id(v):
                rec[f.name] = self._map_raw(v, new_ids, where)
                names.append(f.name)
        return names

    def _resolve_refs(self, t: Structure, rec: Record, new_ids: dict[int, int], where: str) -> Record:
        for f in t.ref_fields:
            v = rec.get(f.name)
            if isinstance(v, int) and ids.is_raw_id(v):
                rec[f.name] = self._map_raw(v, new_ids, where)
        return rec

    def _qname_reader(self, reader: Pending, wsid: int) -> QNameReader:
        async def qname_of(record_id: int) -> str | None:
            target = await get_record(reader, wsid, record_id)
            if target is not None:
                return str(target[SYS_QNAME])
            return await self._registered_qname(reader, wsid, record_id)

        return qname_of

    async def _registered_qname(self, reader: Pending, wsid: int, record_id: int) -> str | None:
        view = self.app.appdef.find(QName("sys", "RecordsRegistry"))
        if view is None:
            return None
        row = await get_row(reader, self.app.appdef.view(view.qname), wsid, {"IDHi": record_id >> 18, "ID": record_id})
        return None if row is None else str(row["QName"])

    async def _check_uniques(
        self, wsid: int, creates: list[Create], updates: list[Update], records: list[Record], reader: Pending
    ) -> None:
        """Reject a new (or reactivated) record whose unique values another record holds, and any
        change of a unique field; ``sys.ApplyUniques`` then records the values."""
        view = self.app.appdef.find(UNIQUES_VIEW)
        if not isinstance(view, View):
            return
        claimed: dict[UniqueEntry, int] = {}

        async def holder(entry: UniqueEntry) -> int:
            if entry in claimed:
                return claimed[entry]
            row = await get_row(reader, view, wsid, entry.key())
            return int(row.get("ID", 0)) if row else 0

        for u in updates:
            changed = unique_field_names(u.type) & set(u.changes)
            if changed:
                name = next(n for n in unique_field_order(u.type) if n in changed)
                raise SysError(
                    403, f"{u.type.qname}: unique field «{name}» can not be changed: unique field update denied"
                )
            if u.activation is not None:
                for entry in unique_entries(u.type, u.before):
                    if u.activation:
                        other = await holder(entry)
                        if other and other != u.id:
                            raise unique_violation(u.type.qname, entry, other)
                        claimed[entry] = u.id
                    else:
                        claimed[entry] = 0
        for c, rec in zip(creates, records[: len(creates)], strict=True):  # creates come first
            too_long = unique_too_long(c.type, rec)
            if too_long is not None:
                raise too_long
            for entry in unique_entries(c.type, rec):
                other = await holder(entry)
                if other:
                    raise unique_violation(c.type.qname, entry, other)
                claimed[entry] = rec[SYS_ID]

    async def _sync_projectors(self, event: Event, writes: Pending) -> list[tuple[QName, dict[str, Any]]]:
        """Run the SYNC projectors the event triggers; their view rows join the command's writes."""
        appdef = self.app.appdef
        rows: list[tuple[QName, dict[str, Any]]] = []
        names = triggered_names(appdef, event)
        for prj in type_cache(appdef).sync_projectors:
            if prj.qname not in names:
                continue
            func, access = self.app.runner(prj)
            if func is None:
                if prj.qname.is_sys:
                    continue  # not built yet; listed when the application is deployed
                raise SysError(500, f"projector {prj.qname} has no implementation")
            produce = row_producer(func) if access.unrestricted else None
            if produce is not None:  # the platform's own: called directly, without State and Intents
                rows += await write_produced_rows(produce, prj.qname, appdef, event, writes)
                continue
            state = self.app.state(access, writes, event.wsid, event=event)
            intents = Intents(access)
            await invoke(func, state, intents)
            for view_name, row in intents.view_rows:
                view = appdef.view(view_name)
                try:
                    put_row(writes, view, event.wsid, row)
                except ValueError as exc:
                    raise SysError(500, f"projector {prj.qname}: {exc}") from exc
                rows.append((view.qname, row))
        return rows


def triggered(appdef: AppDef, prj: Projector, event: Event) -> bool:
    """Does the event trigger the projector? The rules of Voedger's actualizers: errors only
    for INCLUDING ERRORS; AFTER EXECUTE on the command; WITH PARAM on the argument's type; AFTER
    INSERT on new records; AFTER UPDATE on any change, ACTIVATE/DEACTIVATE on those changes.
    Memoised by the event's shape: every actualizer asks this for every event."""
    return prj.qname in triggered_names(appdef, event)


def triggered_names(appdef: AppDef, event: Event) -> frozenset[QName]:
    """The projectors (SYNC and async) the event triggers, memoised by its shape."""
    types = type_cache(appdef)
    shape = event.shape()
    names = types.triggered_by(shape)
    if names is None:
        names = types.remember_triggered(
            shape, frozenset(p.qname for p in types.all_projectors if _triggered(types, p, event))
        )
    return names


def _triggered(types: TypeCache, prj: Projector, event: Event) -> bool:
    if event.is_error:
        return prj.want_errors
    cmd = types.find(event.qname)
    if cmd is not None and types.triggers(prj, OperationKind.Execute, cmd):
        return True
    arg_qname = (event.args or {}).get(SYS_QNAME)
    if isinstance(arg_qname, str):
        param = types.find(arg_qname)
        if param is not None and types.triggers(prj, OperationKind.ExecuteWithParam, param):
            return True
    for cud in event.cuds:
        t = types.find(cud.qname)
        if t is None:
            continue
        if cud.is_new:
            if types.triggers(prj, OperationKind.Insert, t):
                return True
            continue
        if types.triggers(prj, OperationKind.Update, t):
            return True
        active = cud.fields.get(SYS_IS_ACTIVE)
        if active is False and types.triggers(prj, OperationKind.Deactivate, t):
            return True
        if active is True and types.triggers(prj, OperationKind.Activate, t):
            return True
    return False


def _check_subject_roles(appdef: AppDef, roles: object) -> None:
    """A ``sys.Subject`` gives roles the application has: a misspelt one is a 400, not a role
    that silently gives nothing."""
    if not isinstance(roles, str):
        return
    unknown: list[str] = []
    for part in roles.split(","):
        name = part.strip()
        if not name:
            continue
        try:
            t = appdef.find(QName.parse(name))
        except ValueError:
            t = None
        if t is None or t.kind is not TypeKind.Role:
            unknown.append(f"«{name[:100]}»")
    if unknown:
        raise SysError(400, f"{SUBJECT_NAME}: Roles names no role of the application: {', '.join(unknown)}")
