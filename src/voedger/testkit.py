"""A test kit for application developers: run one extension against an in-memory state.

Extensions are pure functions of a state and intents, so they can be tested without a server::

    kit = ExtensionTestKit("path/to/app")          # or ExtensionTestKit(appdef, registry)
    item = kit.put_record("shop.Item", Name="tea")
    out = await kit.run_command("shop.MakeOrder", args={"Item": item, "Qty": 2})
    await kit.run_projector("shop.SalesProjector", event=out.event)
    assert await kit.view_row("shop.Sales", Item=item, Day=1) == {...}
    rows = await kit.run_query("shop.GetSales", args={"Item": item})
    await kit.run_job("shop.Heartbeat")

Each ``run_*`` gives the extension the same ``State`` and ``Intents`` as the platform, with the
same checks of its STATE and INTENTS declarations and of the storages' scopes, and returns what
it asked for. By default the kit then applies those intents to its state (records of a command,
view rows of a projector or job), so steps can be chained; ``apply=False`` leaves the state as
it was.

``run_command`` runs the server's own command pipeline (``processors/command.py``) over the
kit's mem storage, so a command's body, arguments, IDs, references, records and result are
checked exactly as the server checks them. Its workspaces need no descriptor (one is of a
kind that has the command), and three stages are off unless switched on: the ACL
(``acl=True``, with ``run_command(..., roles=[...])``), unique checks (``uniques=True``) and
SYNC projectors (``sync_projectors=True``; uniques need ``sys.ApplyUniques``, a SYNC projector,
to record the values). Otherwise chain ``run_projector(..., event=out.event)`` for the
projectors you want to run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voedger.appdef import (
    SYS_ID,
    SYS_IS_ACTIVE,
    SYS_PARENT_ID,
    AppDef,
    Function,
    QName,
    Structure,
    TypeKind,
    qname,
)
from voedger.appdef.load import compile_packages
from voedger.apps.sys.builtins import platform
from voedger.auth import ACL
from voedger.clock import ManualClock
from voedger.extensions import Registry, load_extensions
from voedger.processors.actualizers import project_event
from voedger.processors.app import AppRuntime, invoke
from voedger.processors.command import WS_DESCRIPTOR, CommandPipeline, CommandRequest, triggered
from voedger.processors.cuds import parse_object
from voedger.processors.jobs import run_job
from voedger.processors.principal import AllowAll, Principal
from voedger.processors.sequences import Workspaces
from voedger.state import Intents, QueryContext
from voedger.state.access import Access
from voedger.state.federation import Federation
from voedger.state.intents import RecordInsert, RecordUpdate
from voedger.state.mail import MailMessage
from voedger.storage.mem import MemAppStorage
from voedger.structs import ids
from voedger.structs.events import CUD, SYS_ERROR, Event
from voedger.structs.pending import Pending
from voedger.structs.records import Record, get_record, put_record
from voedger.structs.views import Row, get_row, put_row, read_rows
from voedger.structs.wsid import FIRST_BASE_USER_WSID, MAIN_CLUSTER_ID, app_wsid, new_wsid
from voedger.syserror import SysError
from voedger.vsql.loader import external_packages, load_app_packages
from voedger.wasm import add_wasm_extensions, package_folders

__all__ = ["CommandOutcome", "ExtensionTestKit", "Outcome"]

DEFAULT_WSID = new_wsid(MAIN_CLUSTER_ID, FIRST_BASE_USER_WSID)
"""The workspace the kit works in unless told otherwise: the first user workspace."""


@dataclass
class Outcome:
    """What an extension asked for."""

    intents: Intents

    @property
    def view_rows(self) -> list[tuple[QName, dict[str, Any]]]:
        return self.intents.view_rows

    @property
    def mails(self) -> list[MailMessage]:
        """Messages the extension asked to send (``intents.send_mail``): the kit does not send them."""
        return self.intents.mails


@dataclass
class CommandOutcome(Outcome):
    """What a command asked for, and the event the platform would have logged for it."""

    event: Event
    result: dict[str, Any] | None = None
    new_ids: dict[int, int] = field(default_factory=dict)
    """Raw IDs (of inserted records and of the argument's ODoc) to the IDs they got."""

    @property
    def inserts(self) -> list[RecordInsert]:
        return self.intents.inserts

    @property
    def updates(self) -> list[RecordUpdate]:
        return self.intents.updates


def _singleton_ids(app: AppDef) -> dict[QName, int]:
    # As ``load_singleton_ids`` assigns them in a new storage: in QName order.
    names = sorted(str(t.qname) for t in app.structures() if t.singleton)
    return {QName.parse(q): ids.FIRST_SINGLETON_ID + i for i, q in enumerate(names)}


class ExtensionTestKit:
    """An application's extensions over an in-memory state; see the module's docstring.

    ``impls`` defaults to the application folder's Python modules; ``federation`` stands in for
    the other workspaces that ``state.federation_command`` calls (none by default); ``acl``,
    ``uniques`` and ``sync_projectors`` switch those stages of the command pipeline on.
    """

    def __init__(
        self,
        app: AppDef | str | os.PathLike[str],
        impls: Registry | None = None,
        *,
        wsid: int = DEFAULT_WSID,
        clock: ManualClock | None = None,
        secrets: Mapping[str, str] | None = None,
        federation: Federation | None = None,
        num_app_workspaces: int = 10,
        num_partitions: int = 10,
        acl: bool = False,
        uniques: bool = False,
        sync_projectors: bool = False,
    ) -> None:
        if isinstance(app, AppDef):
            appdef = app
            registry = impls if impls is not None else Registry()
        else:
            packages = load_app_packages(app)
            appdef = compile_packages(packages)
            external = [folder for _, folder in external_packages(app, packages)]
            if impls is not None:
                registry = impls
            else:
                registry = load_extensions(Path(app), external)
                problems = add_wasm_extensions(appdef, package_folders(packages), registry)
                if problems:
                    raise ValueError("the application's WASM extensions cannot run:\n" + "\n".join(problems))
        self.clock = clock or ManualClock()
        self.wsid = wsid
        self.runtime = AppRuntime(
            name="test/kit",
            appdef=appdef,
            storage=MemAppStorage(self.clock),
            impls=registry,
            platform=platform,
            singleton_ids=_singleton_ids(appdef),
            num_partitions=num_partitions,
            num_app_workspaces=num_app_workspaces,
            clock=self.clock,
            secrets=dict(secrets or {}),
            federation=federation,
            authorizer=ACL() if acl else AllowAll(),
        )
        self._state = Pending(self.runtime.storage)
        self.workspaces = Workspaces(self.runtime.singleton_ids.get(WS_DESCRIPTOR, 0))
        self.pipeline = CommandPipeline(
            self.runtime,
            0,
            self.workspaces,
            acl=acl,
            uniques=uniques,
            sync_projectors=sync_projectors,
            any_workspace=True,
        )
        """The server's command pipeline, with the kit's switches."""
        self._plog = ids.FIRST_OFFSET

    @property
    def app(self) -> AppDef:
        return self.runtime.appdef

    def _ws(self, wsid: int | None) -> int:
        return self.wsid if wsid is None else wsid

    def _ids(self, wsid: int) -> ids.IDGenerator:
        return self.workspaces.known(wsid).idgen

    def _impl(self, ext: Any) -> Any:
        func = self.runtime.implementation(ext)
        if func is None:
            raise SysError(500, f"{ext.kind.lower()} {ext.qname} has no implementation")
        return func

    async def _sync(self) -> None:
        """Make the state durable in the kit's storage (the WLog storage reads it directly)."""
        if self._state:
            await self.runtime.storage.put_batch(self._state.items())
            self._state = Pending(self.runtime.storage)

    # --- arranging the state -------------------------------------------------------------------

    def put_record(
        self, table: QName | str, fields: Mapping[str, Any] | None = None, /, *, wsid: int | None = None, **kw: Any
    ) -> int:
        """Store a record (checked as a client's CUD is) and return its ID. ``sys.ID`` may be
        given in ``fields``; otherwise singletons get theirs and others the next free ID."""
        t = self.app.structure(table)
        values = {**(fields or {}), **kw}
        ws = self._ws(wsid)
        obj = {k: v for k, v in values.items() if not k.startswith("sys.")}
        if t.kind in (TypeKind.ODoc, TypeKind.ORecord):
            obj[SYS_ID] = 1  # parse_object wants the raw ID a client sends; the real one follows
        rec = parse_object(self.app, t, obj, str(t.qname), True)
        if SYS_ID in values:
            rid = int(values[SYS_ID])
            self._ids(ws).observe(rid)
        elif t.singleton:
            rid = self.runtime.singleton_ids[t.qname]
        else:
            rid = self._ids(ws).next()
        rec[SYS_ID] = rid
        for sys_field in (SYS_PARENT_ID, SYS_IS_ACTIVE):
            if sys_field in values:
                rec[sys_field] = values[sys_field]
        if t.field(SYS_IS_ACTIVE) is not None:
            rec.setdefault(SYS_IS_ACTIVE, True)
        put_record(self._state, ws, rec)
        if t.qname == WS_DESCRIPTOR:
            self.workspaces.known(ws).descriptor = rec
        return rid

    def put_view_row(self, view: QName | str, /, *, wsid: int | None = None, **row: Any) -> None:
        """Store a view row (every key field, and value fields)."""
        put_row(self._state, self.app.view(view), self._ws(wsid), row)

    async def record(self, record_id: int, *, wsid: int | None = None) -> Record | None:
        return await get_record(self._state, self._ws(wsid), record_id)

    async def view_row(self, view: QName | str, /, *, wsid: int | None = None, **key: Any) -> Row | None:
        return await get_row(self._state, self.app.view(view), self._ws(wsid), key)

    async def view_rows(self, view: QName | str, /, *, wsid: int | None = None, **key: Any) -> list[Row]:
        """Rows with this partition key and a leading part of the clustering columns."""
        return [r async for r in read_rows(self._state, self.app.view(view), self._ws(wsid), key)]

    def event(
        self,
        command: QName | str,
        args: dict[str, Any] | None = None,
        *,
        cuds: tuple[CUD, ...] = (),
        wsid: int | None = None,
        error: str | None = None,
    ) -> Event:
        """An event to feed a projector; with ``error``, the ``sys.Error`` event the platform
        logs for a command of this name that failed validation."""
        ws = self._ws(wsid)
        name = str(qname(command))
        info = None
        if error is not None:
            info = {"ErrStr": error, "QNameFromParams": name, "ValidEvent": False}
        return Event(
            qname=name if error is None else SYS_ERROR,
            wsid=ws,
            partition=0,
            plog_offset=self._plog,
            wlog_offset=self.workspaces.known(ws).next_wlog,
            registered_at=int(self.clock.now() * 1000),
            args=args,
            cuds=cuds,
            error=info,
        )

    # --- running extensions ----------------------------------------------------------------------

    async def run_command(
        self,
        command: QName | str,
        args: dict[str, Any] | None = None,
        *,
        unlogged_args: dict[str, Any] | None = None,
        wsid: int | None = None,
        login: str = "",
        roles: Sequence[QName | str] = (),
        apply: bool = True,
    ) -> CommandOutcome:
        """Run a command through the server's pipeline; raises the ``SysError`` the client would
        get (an invalid argument, ``intents.respond``, a failure of the extension, records the
        intents make invalid). ``login`` and ``roles`` make the caller (roles count with
        ``acl=True``)."""
        await self._sync()
        cmd = self.app.command(command)
        ws = self._ws(wsid)
        body: dict[str, Any] = {}
        if args is not None:
            arg = dict(args)
            param_t = self.app.find(cmd.param) if cmd.param is not None else None
            if isinstance(param_t, Structure) and param_t.kind is TypeKind.ODoc and SYS_ID not in arg:
                arg[SYS_ID] = 1  # a test need not invent a raw ID for the one document it sends
            body["args"] = arg
        if unlogged_args is not None:
            body["unloggedArgs"] = dict(unlogged_args)
        caller = Principal(roles=frozenset(qname(r) for r in roles), login=login)
        writes = Pending(self._state)
        work = await self.pipeline.run(CommandRequest(ws, cmd.qname, body, caller), writes, self._plog)
        if apply:
            self.pipeline.commit(work)
            self._state.absorb(writes)
            self._plog += 1
        intents = work.intents or Intents(Access.of(self.app, cmd, unrestricted=True))
        return CommandOutcome(intents, work.event, work.result, dict(work.new_ids))

    async def run_projector(
        self, projector: QName | str, event: Event, *, apply: bool = True, check_trigger: bool = True
    ) -> Outcome:
        """Run a projector (SYNC or not) on an event; refuses an event that does not trigger it
        unless ``check_trigger`` is off."""
        await self._sync()
        prj = self.app.projector(projector)
        if check_trigger and not triggered(self.app, prj, event):
            raise ValueError(f"a {event.qname} event does not trigger projector {prj.qname}")
        writes = Pending(self._state)
        intents = await project_event(self.runtime, prj, self._impl(prj), event, writes)
        if apply:
            self._state.absorb(writes)
        return Outcome(intents)

    async def run_query(
        self, query: QName | str, args: dict[str, Any] | None = None, *, wsid: int | None = None, login: str = ""
    ) -> list[dict[str, Any]]:
        """Run a query and return its result rows (checked against its RETURNS type)."""
        await self._sync()
        q = self.app.query(query)
        ws = self._ws(wsid)
        arg = self._argument(q, q.param, args, "args")
        access = Access.of(self.app, q, unrestricted=q.qname.is_sys)
        state = self.runtime.state(access, Pending(self._state), ws, query=QueryContext(ws, arg, {"login": login}))
        intents = Intents(access)
        await invoke(self._impl(q), state, intents)
        if intents.response is not None:
            raise SysError(*intents.response)
        return [self._result(q, row) for row in intents.results]

    async def run_job(
        self, job: QName | str, *, wsid: int | None = None, now: float | None = None, apply: bool = True
    ) -> Outcome:
        """Run a job once, by default in app workspace 0 at the kit clock's time."""
        await self._sync()
        j = self.app.job(job)
        ws = app_wsid(self.runtime.cluster_id, 0) if wsid is None else wsid
        unix_time = int(self.clock.now() if now is None else now)
        writes = Pending(self._state)
        intents = await run_job(self.runtime, j, self._impl(j), ws, unix_time, writes)
        if apply:
            self._state.absorb(writes)
        return Outcome(intents)

    # --- as the processors check ---------------------------------------------------------------------

    def _argument(
        self, func: Function, param: QName | None, raw: dict[str, Any] | None, where: str
    ) -> dict[str, Any] | None:
        if param is None:
            if raw:
                raise SysError(400, f"{where} are not expected by {func.qname}")
            return None
        t = self.app.find(param)
        if not isinstance(t, Structure):
            return dict(raw or {})
        return parse_object(self.app, t, dict(raw or {}), where, allow_raw_ids=True)

    def _result(self, func: Function, raw: dict[str, Any]) -> dict[str, Any]:
        if func.result is None:
            raise SysError(500, f"{func.qname} returns nothing but its extension set a result")
        t = self.app.find(func.result)
        if isinstance(t, Structure):
            return parse_object(self.app, t, raw, "result", allow_raw_ids=False)
        return raw
