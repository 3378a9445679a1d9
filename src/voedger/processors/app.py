"""Everything the processors of one deployed application share."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voedger.appdef import AppDef, Extension, QName
from voedger.clock import SYSTEM_CLOCK, Clock
from voedger.extensions import Registry
from voedger.processors.principal import AllowAll, Authorizer, DirectResolver, PrincipalResolver, RateLimiter
from voedger.processors.readcache import ReadCache
from voedger.state import Intents, State
from voedger.state.access import Access
from voedger.state.federation import Federation
from voedger.state.state import PeerApp
from voedger.storage import AppStorage
from voedger.structs.pending import Pending
from voedger.structs.rowcache import RowCache
from voedger.structs.wsid import DEFAULT_NUM_APP_WORKSPACES, DEFAULT_NUM_PARTITIONS, MAIN_CLUSTER_ID
from voedger.syserror import SysError


@dataclass
class AppRuntime:
    """One application as its processors see it: the schema, the storage, the code."""

    name: str
    appdef: AppDef
    storage: AppStorage
    impls: Registry
    """The application's own implementations."""
    platform: Registry
    """The platform's implementations of sys extensions."""
    singleton_ids: Mapping[QName, int]
    num_partitions: int = DEFAULT_NUM_PARTITIONS
    num_app_workspaces: int = DEFAULT_NUM_APP_WORKSPACES
    cluster_id: int = MAIN_CLUSTER_ID
    authorizer: Authorizer = field(default_factory=AllowAll)
    resolver: PrincipalResolver = field(default_factory=DirectResolver)
    limiter: RateLimiter | None = None
    """RATE/LIMIT of the application (None: no limits)."""
    """Turns an authenticated caller into the principal of a workspace."""
    clock: Clock = SYSTEM_CLOCK
    secrets: Mapping[str, str] = field(default_factory=dict)
    templates: Mapping[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    """Workspace templates by (workspace kind, template name): the records of their data.json."""
    verify_value: Callable[[str, QName, str], Any] | None = None
    """Checks a verified value token for a VERIFIABLE field (entity, field) and returns the value it
    proves; raises a 400 SysError. None: the application cannot take VERIFIABLE fields."""
    federation: Federation | None = None
    """Calls to other workspaces and applications (workspace creation, owners' updates)."""
    peer_query: Callable[[str, int, dict[str, Any], Any], Awaitable[dict[str, Any]]] | None = None
    """Runs an API v1 query of another application of this process (app, WSID, body) as the same
    caller (q.sys.SqlQuery with an application prefix); None: no other application is reachable."""
    views_changed: Callable[[list[tuple[int, str, int]]], None] | None = None
    """Told (WSID, view, WLog offset) of the view rows made durable: by a command's SYNC
    projectors when its group is written, by an async projector when it flushes (notifications)."""
    read_cache: Callable[[int], ReadCache | None] | None = None
    """The read cache of a workspace's partition (by WSID) where this process writes it and
    may use it (``processors/readcache.py``); None, or a None answer: read storage."""
    rows: RowCache = field(default_factory=RowCache)
    """Storage rows that reads found, read through where ``read_cache`` answers (a partition
    written here); every writer of workspace rows tells it what it writes
    (``structs/rowcache.py``)."""
    platform_app: bool = False
    """The application is the platform's own (sys/cluster: its Python ships with the platform
    and cannot be deployed by anyone): its extensions run unrestricted, as sys ones do."""
    peer_apps: Callable[[str], PeerApp | None] | None = None
    """Other applications of this process by name, for the platform's own code."""
    _runners: dict[QName, tuple[Callable[..., Any] | None, Access, Extension]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def state(self, access: Access, reader: Pending, wsid: int, **contexts: Any) -> State:
        """A State for an extension of this application, with everything the application offers
        (singletons, secrets, federation calls); ``contexts`` are the call's own (command=...,
        query=..., job=..., event=...)."""
        return State(
            access,
            reader,
            wsid,
            singleton_ids=self.singleton_ids,
            secrets=self.secrets,
            federation=self.federation,
            app_name=self.name,
            num_app_workspaces=self.num_app_workspaces,
            templates=self.templates,
            peer_apps=self.peer_apps,
            **contexts,
        )

    def implementation(self, ext: Extension) -> Callable[..., Any] | None:
        return self.runner(ext)[0]

    def runner(self, ext: Extension) -> tuple[Callable[..., Any] | None, Access]:
        """An extension's implementation (None if it has none) and the rules it runs under
        (sys extensions and those of the platform's own application are unrestricted).
        Memoised: asked for every command and every projected event."""
        hit = self._runners.get(ext.qname)
        if hit is None or hit[2] is not ext:
            access = Access.of(self.appdef, ext, unrestricted=ext.qname.is_sys or self.platform_app)
            hit = self._runners[ext.qname] = (None, access, ext)
        if hit[0] is None:  # looked up again each time: an implementation may be registered later
            impl = (self.platform if ext.qname.is_sys else self.impls).get(ext.qname)
            if impl is not None:
                hit = self._runners[ext.qname] = (impl.func, hit[1], ext)
        return hit[0], hit[1]


async def invoke(func: Callable[..., Any], state: State, intents: Intents) -> None:
    """Run an extension, sync or async; its own failures become a 500 that names it."""
    try:
        result = func(state, intents)
        if result is not None and inspect.isawaitable(result):
            await result
    except SysError:
        raise
    except Exception as exc:
        name = getattr(func, "__qualname__", repr(func))
        raise SysError(500, f"extension {name} failed: {type(exc).__name__}: {exc}") from exc
