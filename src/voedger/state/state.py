"""The read side of the extension model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voedger.appdef import AppDef, QName, StorageOp, View, qname
from voedger.blobs import BlobKey, BlobStore
from voedger.state.access import (
    SYS_APP_SECRET,
    SYS_FEDERATION_COMMAND,
    SYS_HTTP,
    SYS_RECORD,
    SYS_SEND_MAIL,
    SYS_VIEW,
    SYS_WLOG,
    Access,
)
from voedger.state.appttl import AppTTL
from voedger.state.errors import StateError
from voedger.state.federation import Federation, FederationReply
from voedger.state.http import HttpAnswer, http_request
from voedger.state.mail import MailOutcome, deliver, mail_message
from voedger.structs import qnames
from voedger.structs.events import Event
from voedger.structs.logs import read_wlog
from voedger.structs.pending import Pending
from voedger.structs.records import Record, get_record
from voedger.structs.views import Row, get_row, read_rows
from voedger.structs.wsid import CLUSTER_SHIFT

_COMMAND_CONTEXT = QName("sys", "CommandContext")
_QUERY_CONTEXT = QName("sys", "QueryContext")
_JOB_CONTEXT = QName("sys", "JobContext")
_EVENT = QName("sys", "Event")


@dataclass(frozen=True)
class CommandContext:
    wsid: int
    arg: dict[str, Any] | None
    unlogged_arg: dict[str, Any] | None
    wlog_offset: int
    """The offset the command's event will get."""
    principal: Mapping[str, Any] = field(default_factory=dict)
    registered_at: int = 0
    """Milliseconds since the epoch: the time the event will carry."""
    ip: str = ""
    """The client's address, as the edge saw it."""


@dataclass(frozen=True)
class QueryContext:
    wsid: int
    arg: dict[str, Any] | None
    principal: Mapping[str, Any] = field(default_factory=dict)
    ip: str = ""
    """The client's address, as the edge saw it."""
    host: Any = None
    """What the query processor lends the platform's own queries (``q.sys.SqlQuery``): the
    caller's SELECT rights, other workspaces, the partition's log; None for others."""
    reset_limit: Callable[[], None] | None = None
    """Fills the rate limits of this query for this caller again (Voedger's workpiece
    ``ResetRateLimit``): a query that finds the caller right, such as a verification code
    entered correctly, stops counting their earlier attempts. None outside the query processor."""


@dataclass(frozen=True)
class PeerApp:
    """Another application this process deploys, as the platform's own code sees it."""

    appdef: AppDef
    num_app_workspaces: int


@dataclass(frozen=True)
class JobContext:
    wsid: int
    unix_time: int


class State:
    """What an extension may read: the context of its call, records, views, the WLog, secrets.

    Reads of records and views see the writes of the commands processed before this one, even
    those not yet durable.
    """

    def __init__(
        self,
        access: Access,
        reader: Pending,
        wsid: int,
        *,
        singleton_ids: Mapping[QName, int] | None = None,
        secrets: Mapping[str, str] | None = None,
        command: CommandContext | None = None,
        query: QueryContext | None = None,
        job: JobContext | None = None,
        event: Event | None = None,
        federation: Federation | None = None,
        app_name: str = "",
        num_app_workspaces: int = 0,
        templates: Mapping[tuple[str, str], list[dict[str, Any]]] | None = None,
        peer_apps: Callable[[str], PeerApp | None] | None = None,
    ) -> None:
        self._access = access
        self._reader = reader
        self.wsid = wsid
        self._singletons = singleton_ids or {}
        self._secrets = secrets or {}
        self._command = command
        self._query = query
        self._job = job
        self._event = event
        self._federation = federation
        self.app_name = app_name
        """The deployed application's name, ``owner/app``."""
        self.num_app_workspaces = num_app_workspaces
        self._templates = templates or {}
        self._peer_apps = peer_apps

    @property
    def app(self) -> AppDef:
        """The application's definition, for extensions that look at types."""
        return self._access.app

    # --- contexts ----------------------------------------------------------------------------

    @property
    def command_context(self) -> CommandContext:
        self._access.check(_COMMAND_CONTEXT, StorageOp.Get)
        assert self._command is not None
        return self._command

    @property
    def query_context(self) -> QueryContext:
        self._access.check(_QUERY_CONTEXT, StorageOp.Get)
        assert self._query is not None
        return self._query

    @property
    def job_context(self) -> JobContext:
        self._access.check(_JOB_CONTEXT, StorageOp.Get)
        assert self._job is not None
        return self._job

    @property
    def event(self) -> Event:
        self._access.check(_EVENT, StorageOp.Get)
        assert self._event is not None
        return self._event

    @property
    def arg(self) -> dict[str, Any]:
        """The argument object of the command or query (empty when it takes none)."""
        ctx = self._command or self._query
        if ctx is None:
            raise StateError(f"{self._access.who} has no argument")
        return ctx.arg or {}

    # --- records -----------------------------------------------------------------------------

    async def record(self, record_id: int) -> Record | None:
        """The record with this ID in the workspace, or None.

        A record of a table the extension does not declare in STATE is not visible to it (None):
        an ID a client passes may name any record, and the extension answers for a missing one.
        """
        self._access.check(SYS_RECORD, StorageOp.Get)
        rec = await get_record(self._reader, self.wsid, record_id)
        if rec is not None and not self._access.may(SYS_RECORD, StorageOp.Get, qname(rec["sys.QName"])):
            return None
        return rec

    async def records(self, record_ids: list[int]) -> list[Record | None]:
        return [await self.record(i) for i in record_ids]

    async def singleton(self, table: QName | str) -> Record | None:
        """The workspace's record of a singleton table, or None if it has none yet."""
        q = qname(table)
        self._access.check(SYS_RECORD, StorageOp.Get, q)
        sid = self._singletons.get(q)
        if sid is None:
            raise StateError(f"{q} is not a singleton")
        return await get_record(self._reader, self.wsid, sid)

    # --- views -------------------------------------------------------------------------------

    def _view(self, name: QName | str) -> View:
        return self._access.app.view(name)

    async def view(self, name: QName | str, **key: Any) -> Row | None:
        """The row of a view with this full key, or None."""
        v = self._view(name)
        self._access.check(SYS_VIEW, StorageOp.Get, v.qname)
        return await get_row(self._reader, v, self.wsid, key)

    def read_view(self, name: QName | str, **key: Any) -> AsyncIterator[Row]:
        """Rows of a view with this partition key and a leading part of the clustering columns."""
        v = self._view(name)
        self._access.check(SYS_VIEW, StorageOp.Read, v.qname)
        return read_rows(self._reader, v, self.wsid, key)

    # --- other workspaces ----------------------------------------------------------------------

    async def federation_command(
        self, app: str, wsid: int, command: str, body: dict[str, Any], expected: tuple[int, ...] = (200,)
    ) -> FederationReply:
        """Call a command of another workspace (or application) as the System principal.

        A status outside ``expected`` raises a :class:`StateError` naming the call, so that an
        async projector retries it with backoff.
        """
        return await self._federated(command, app, wsid, expected, lambda f: f.command(app, wsid, command, body))

    async def federation_query(
        self, app: str, wsid: int, query: str, body: dict[str, Any], expected: tuple[int, ...] = (200,)
    ) -> FederationReply:
        """Run an API v1 query of another workspace (or application) as the System principal,
        through the ``sys.FederationCommand`` storage as a command call goes; a status outside
        ``expected`` raises a :class:`StateError` naming the call."""
        return await self._federated(query, app, wsid, expected, lambda f: f.query(app, wsid, query, body))

    async def _federated(
        self,
        name: str,
        app: str,
        wsid: int,
        expected: tuple[int, ...],
        call: Callable[[Federation], Awaitable[FederationReply]],
    ) -> FederationReply:
        self._access.check(SYS_FEDERATION_COMMAND, StorageOp.Get)
        if self._federation is None:
            raise StateError(f"{self._access.who}: no federation is configured to call {name}")
        reply = await call(self._federation)
        if reply.status not in expected:
            raise StateError(f"{name} at {app} workspace {wsid} answered {reply.status}: {reply.message}")
        return reply

    # --- beyond the platform: HTTP and mail --------------------------------------------------------

    async def http(
        self,
        url: str,
        *,
        method: str = "GET",
        body: bytes | str = b"",
        headers: Mapping[str, str] | Iterable[str] | None = None,
        timeout_ms: int = 0,
        handle_errors: bool = False,
    ) -> HttpAnswer:
        """One outgoing HTTP request (``sys.Http``, READ: queries, projectors, jobs): its answer
        whatever the status; no answer at all fails the extension, or with ``handle_errors``
        comes back with ``error`` set (state/http.py)."""
        self._access.check(SYS_HTTP, StorageOp.Read)
        return await http_request(
            url, method=method, body=body, headers=headers, timeout_ms=timeout_ms, handle_errors=handle_errors
        )

    async def send_mail(self, **message: Any) -> MailOutcome:
        """Send a message now (``sys.SendMail``, GET: projectors, jobs) and report how it went;
        ``message``: host, port, sender, to, subject, body, cc, bcc, username, password
        (state/mail.py). A message without host, port, sender or recipient is reported failed."""
        self._access.check(SYS_SEND_MAIL, StorageOp.Get)
        try:
            await deliver(mail_message(**message))
        except StateError as exc:
            return MailOutcome(False, exc.message)
        return MailOutcome(True)

    def cluster_known(self, cluster_id: int) -> bool:
        """Whether ``cluster_id`` names a cluster of the federation: this workspace's own always;
        another one when the federation's directory lists it."""
        if cluster_id == self.wsid >> CLUSTER_SHIFT:
            return True
        # Every server's federation tells (``knows_cluster``); test doubles may not.
        knows = getattr(self._federation, "knows_cluster", None)
        return callable(knows) and bool(knows(cluster_id))

    def workspace_template(self, kind: str, name: str) -> list[dict[str, Any]] | None:
        """The records of a workspace template of the application (platform code only)."""
        if not self._access.unrestricted:
            raise StateError(f"{self._access.who} may not read workspace templates")
        records = self._templates.get((kind, name))
        return None if records is None else [dict(r) for r in records]

    def peer_app(self, name: str) -> PeerApp | None:
        """Another application of this process by name, or None (platform code only:
        ``c.cluster.VSqlUpdate`` checks a statement against the target's schema before it
        sends the target a CUD)."""
        if not self._access.unrestricted:
            raise StateError(f"{self._access.who} may not read other applications")
        return self._peer_apps(name) if self._peer_apps is not None else None

    async def write_blob(self, wsid: int, blob_id: int, name: str, content_type: str, data: bytes, owner: str) -> None:
        """Store the bytes of the ``sys.BLOB`` ``blob_id`` (platform code only: a workspace
        template's BLOBs); ``owner`` is ``pkg.Table.Field``, the field meant to take it."""
        if not self._access.unrestricted:
            raise StateError(f"{self._access.who} may not write BLOBs")
        table, _, field = owner.rpartition(".")
        key = BlobKey(wsid, blob_id=blob_id)
        store = BlobStore(self._reader.storage)
        await store.write_bytes(key, name, content_type, data, owner_record=table, owner_record_field=field)

    # --- the application's QName table ----------------------------------------------------------

    async def rename_qname(self, old: str, new: str) -> None:
        """Rename a QName in the application's QName table (``c.sys.RenameQName``: the platform's
        code only). Takes effect when the application is deployed again; raises
        :class:`~voedger.structs.qnames.RenameError` for a rename the table refuses."""
        if not self._access.unrestricted:
            raise StateError(f"{self._access.who} may not rename QNames")
        await qnames.rename(self._reader.storage, old, new, qnames.declared_by(self.app))

    # --- logs and secrets ----------------------------------------------------------------------

    def read_wlog(self, offset: int = 1, count: int | None = None) -> AsyncIterator[Event]:
        self._access.check(SYS_WLOG, StorageOp.Read)
        return read_wlog(self._reader.storage, self.wsid, offset, count)

    @property
    def app_ttl(self) -> AppTTL:
        """The application's store of short-lived values (Voedger's ``AppTTLStorage``, which its
        built-in extensions reach through ``AppStructs``): any extension, no declaration."""
        return AppTTL(self._reader.storage)

    def app_secret(self, name: str) -> str:
        self._access.check(SYS_APP_SECRET, StorageOp.Get)
        try:
            return self._secrets[name]
        except KeyError:
            raise StateError(f"no application secret named {name!r}") from None
