"""Checks of commands, queries, projectors and jobs, and of their STATE and INTENTS."""

from __future__ import annotations

from voedger.vsql import ast
from voedger.vsql.cron import is_valid_cron
from voedger.vsql.rules.base import UNDEFINED, AnalyserBase, kinds
from voedger.vsql.rules.tables import O_KINDS
from voedger.vsql.schema import TableKind
from voedger.vsql.symbols import SYS_PACKAGE, Ctx, DeclKind, NameLookupError

__all__ = ["APP_WORKSPACE_WS", "ExtensionRules"]

APP_WORKSPACE_WS = ast.QName(SYS_PACKAGE, "AppWorkspaceWS")


class ExtensionRules(AnalyserBase):
    """Parameters and results, projector triggers, job schedules and storage scopes."""

    def ext_engine(self, stmt: ast.ExtEngineStmt, ctx: Ctx) -> None:
        for ext in stmt.statements:
            if isinstance(ext, ast.CommandStmt):
                self.command(ext, ctx)
            elif isinstance(ext, ast.QueryStmt):
                self.query(ext, ctx)
            elif isinstance(ext, ast.ProjectorStmt):
                self.projector(ext, ctx)
            elif isinstance(ext, ast.JobStmt):
                self.job(ext, ctx)
            elif isinstance(ext, ast.StorageStmt) and not ctx.pkg.is_sys:
                self.err(ext.pos, "storages are only declared in sys package")

    def command(self, stmt: ast.CommandStmt, ctx: Ctx) -> None:
        for param in (stmt.param, stmt.unlogged_param, stmt.returns):
            if param is not None and param.type is not None:
                self.resolve(param.type, kinds(DeclKind.TYPE, DeclKind.TABLE), ctx, "undefined type or table: {}")
        self.with_(stmt.with_, ctx)
        self.state(stmt.state, ctx, ast.StorageScope.COMMANDS, intents=False)
        self.state(stmt.intents, ctx, ast.StorageScope.COMMANDS, intents=True)

    def query(self, stmt: ast.QueryStmt, ctx: Ctx) -> None:
        if stmt.param is not None and stmt.param.type is not None:
            self.resolve(stmt.param.type, kinds(DeclKind.TYPE), ctx)
        if stmt.returns is None:
            self.err(stmt.pos, "query must have a return type")
        elif stmt.returns.type is not None:
            self.resolve(stmt.returns.type, kinds(DeclKind.TYPE), ctx)
        self.with_(stmt.with_, ctx)
        self.state(stmt.state, ctx, ast.StorageScope.QUERIES, intents=False)

    def projector(self, stmt: ast.ProjectorStmt, ctx: Ctx) -> None:
        for trigger in stmt.triggers:
            if trigger.cron is not None:
                self.err(stmt.pos, "scheduled projector deprecated; use jobs instead")
            for ref in trigger.on:
                if trigger.actions:
                    self.trigger_table(ref, trigger, ctx)
                elif trigger.with_param:
                    self.trigger_param(ref, ctx)
                else:
                    self.resolve(ref, kinds(DeclKind.COMMAND), ctx)
        self.state(stmt.state, ctx, ast.StorageScope.PROJECTORS, intents=False)
        self.state(stmt.intents, ctx, ast.StorageScope.PROJECTORS, intents=True)

    def trigger_table(self, ref: ast.DefQName, trigger: ast.ProjectorTrigger, ctx: Ctx) -> None:
        target = self.resolve(ref, kinds(DeclKind.TABLE, DeclKind.DESCRIPTOR), ctx, "undefined table: {}")
        if target is None or target.kind is DeclKind.DESCRIPTOR:
            return
        sys_record = target.package.is_sys and target.qname.entity in ("CRecord", "WRecord")
        if target.node.abstract and not sys_record:
            self.err(ref.pos, f"projector refers to abstract table {ref}")
            return
        info = self.info_of(target)
        if info is not None and info.kind in O_KINDS and set(trigger.actions) - {ast.TableAction.INSERT}:
            self.err(ref.pos, "only INSERT allowed for ODoc or ORecord")

    def trigger_param(self, ref: ast.DefQName, ctx: Ctx) -> None:
        target = self.find(ref, kinds(DeclKind.TYPE, DeclKind.TABLE), ctx)
        if target is not None and target.kind is DeclKind.TABLE:
            info = self.info_of(target)
            if info is None or info.kind is not TableKind.ODOC:
                target = None
        if target is None:
            self.resolved.pop(ref, None)
            try:
                self.st.package_for(ref.package, ctx)
            except NameLookupError as e:
                self.err(ref.pos, str(e))
                return
            self.err(ref.pos, f"undefined type or ODoc: {ref}")

    def job(self, stmt: ast.JobStmt, ctx: Ctx) -> None:
        if ctx.ws is None or ctx.ws.qname != APP_WORKSPACE_WS:
            self.err(stmt.pos, "JOB is only allowed in AppWorkspaceWS")
        if not stmt.cron:
            self.err(stmt.pos, "job without cron schedule is not allowed")
            return
        if not is_valid_cron(stmt.cron):
            self.err(stmt.pos, f"invalid cron schedule: {stmt.cron}")
        self.state(stmt.state, ctx, ast.StorageScope.JOBS, intents=False)
        self.state(stmt.intents, ctx, ast.StorageScope.JOBS, intents=True)

    def state(self, storages: tuple[ast.StateStorage, ...], ctx: Ctx, scope: ast.StorageScope, intents: bool) -> None:
        """Check STATE or INTENTS entries against the SCOPE of their STORAGE declarations."""
        ops = ("INSERT", "UPDATE") if intents else ("GET", "GETBATCH", "READ")
        for entry in storages:
            storage = self.resolve(entry.storage, kinds(DeclKind.STORAGE), ctx)
            if storage is None:
                continue
            stmt: ast.StorageStmt = storage.node
            if (stmt.entity_record or stmt.entity_view) and not entry.entities:
                self.err(entry.storage.pos, f"storage {entry.storage} requires entity")
                continue
            if not self.state_entities(entry, stmt, ctx):
                continue
            if not any(op.op in ops and scope in op.scopes for op in stmt.ops):
                where = "intents" if intents else "state"
                self.err(
                    entry.storage.pos,
                    f"this kind of extension cannot use storage {entry.storage} in the {where}",
                )

    def state_entities(self, entry: ast.StateStorage, storage: ast.StorageStmt, ctx: Ctx) -> bool:
        """Resolve the entities of a STATE/INTENTS entry; as in Voedger, the first problem is
        reported at the storage's name."""
        if not (storage.entity_record or storage.entity_view):
            return True
        kind = DeclKind.TABLE if storage.entity_record else DeclKind.VIEW
        for entity in entry.entities:
            try:
                target = self.st.find(entity, kinds(kind), ctx)
            except NameLookupError as e:
                self.err(entry.storage.pos, str(e))
                return False
            if target is None:
                self.err(entry.storage.pos, UNDEFINED[kind].format(entity))
                return False
            self.resolved[entity] = target.qname
            if kind is DeclKind.TABLE and target.node.abstract:
                self.err(entry.storage.pos, f"projector refers to abstract table {entity}")
                return False
        return True
