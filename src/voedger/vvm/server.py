"""The server process (Voedger's VVM): deploys the cluster application and the configured
applications, starts one writer per partition, bootstraps application workspaces, and stops
cleanly, finishing what it has accepted."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import logging
import math
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from voedger.appdef import QName
from voedger.appdef.compat import build_tree, check_compat, renamed_tree, tree_from_json, tree_to_json
from voedger.apps.cluster import CLUSTER_APP, CLUSTER_APP_DIR, numbers_changed
from voedger.apps.registry import REGISTRY_APP, REGISTRY_APP_DIR, AuthServices, bind_services, unbind_services
from voedger.apps.sys.implementations import not_built, platform
from voedger.apps.sys.mail import Mailer
from voedger.auth import (
    ACL,
    JWT_SECRET_NAME,
    ClusterKeys,
    Limiter,
    StorageKeySetStore,
    StorageSecretStore,
    TokenError,
    Tokens,
    jwt_secret,
)
from voedger.auth.attempts import PasswordGuard
from voedger.auth.errors import TokenErrorKind
from voedger.auth.resolver import TokenResolver
from voedger.auth.tokens import TokenInfo
from voedger.blobs.store import DEFAULT_MAX_SIZE
from voedger.clock import SYSTEM_CLOCK, Clock
from voedger.n10n import Broker, Notifications, Quotas
from voedger.processors.actualizers import Actualizers
from voedger.processors.app import AppRuntime
from voedger.processors.command import WS_DESCRIPTOR, CommandRequest, CommandResult
from voedger.processors.fence import FencedWriter, next_epoch
from voedger.processors.jobs import JobScheduler
from voedger.processors.partition import NOT_OWNER_HEADER, Partition
from voedger.processors.principal import SYSTEM, AllowAll, Authorizer, DirectResolver, PrincipalResolver
from voedger.processors.query import SQL_QUERY, ApiPath, QueryProcessor, QueryRequest
from voedger.processors.readcache import ReadCache
from voedger.state.federation import Federation, FederationReply
from voedger.state.secrets import SecretFiles
from voedger.state.state import PeerApp
from voedger.storage import StorageError, StorageProvider, open_storage
from voedger.structs import qnames
from voedger.structs.keys import app_state_key
from voedger.structs.pending import Pending
from voedger.structs.records import get_record
from voedger.structs.singletons import load_singleton_ids
from voedger.structs.wsid import MAIN_CLUSTER_ID, app_wsid, cluster_id, is_pseudo, partition_of, pseudo_to_app_wsid
from voedger.syserror import SysError
from voedger.vvm.federation import HttpFederation, counted
from voedger.vvm.image import AppImage, ImageError, load_image
from voedger.vvm.leases import Key, Lease, LeaseStore
from voedger.vvm.looplag import LoopLag
from voedger.vvm.ownership import DEFAULT_TTL, Ownership
from voedger.vvm.stats import FederationStats, ForwardStats, HttpStats, ProcessorStats
from voedger.vvm.versions import SwapGate, Version, VersionStore, digest_of

log = logging.getLogger("voedger.vvm")

__all__ = ["NOT_OWNER_HEADER", "VVM", "ServerConfig"]

APP_WORKSPACE_KIND = "sys.AppWorkspace"
VVM_APP = "sys/vvm"
VERIFIED_VALUE_AUDIENCE = "payloads.VerifiedValuePayload"
"""Not an application: the storage of the server processes' own state (secrets, leases)."""
DEPLOY_APP = QName("cluster", "DeployApp")
DEPLOYED_SCHEMAS = app_state_key("schema", b"")
"""The compatibility tree of each application's schema as last served (sys/vvm's storage), so that
a start over its data with an incompatible schema is told."""
DEPLOYED_IMAGES = app_state_key("image", b"")
"""Where the images deployed through c.cluster.DeployApp were kept (in sys/vvm's storage), by
application name, before the version rows (``vvm.versions``): read at start for an application
that has no version row."""
VERSION_POLL = 2.0
"""Seconds between two reads of the deployed versions by a process of a cluster (a deploy also
wakes the others through ``POST /_cluster/wake``: the poll is the safety net)."""


@dataclass
class ServerConfig:
    storage_url: str
    apps: list[tuple[str, Path]] = field(default_factory=list)
    cluster_id: int = MAIN_CLUSTER_ID
    insecure_dev: bool = False
    clock: Clock = SYSTEM_CLOCK
    federation_url: str | None = None
    """Where calls between applications go (``http://127.0.0.1:8822``); None: in-process."""
    mailer: Mailer | None = None
    """Sends verification codes (``q.sys.InitiateEmailVerification``); None: they cannot be sent."""
    secrets_dir: Path | None = None
    """The files extensions read by name through ``sys.AppSecret`` (Voedger's ``SECRET_ROOT``);
    None: none."""
    max_queries_per_ws: int = 10
    """Reads of one workspace running at once (Voedger's ``MaxQueriesPerWS``); more answer 503
    with ``Retry-After``. 0: no limit."""
    advertise: str = ""
    """This process's address for requests forwarded by the others (``http://host:port``)."""
    lease_ttl: int = DEFAULT_TTL
    """Seconds a partition lease lives without renewal (shared storage only)."""
    reads_at_owner: bool = True
    """In a cluster, a read of a partition another process owns goes to that owner, which keeps
    the rows its reads found (``router/cluster.py``); False: it is served here, from storage."""
    read_hop_seconds: float = 1.0
    """How long such a read waits for the owner before it is served here instead (a paused or
    overloaded owner must not stall reads that storage can answer)."""
    cluster: bool | None = None
    """Share the partitions with other processes by lease, and fence every write. None: when
    the storage can be shared (Cassandra); an embedded store is locked by one process."""
    join_later: bool = False
    """In a cluster, ``start`` does not take partitions yet: the caller calls ``join`` once the
    process listens (``http.serve(after_start=vvm.join)``), so that the others can forward to it
    the moment it owns something. ``voedger server`` does so; meanwhile ``ready`` is false and
    ``GET /api/check`` answers 503, so clients and load balancers wait for the share."""
    federated: bool = False
    """This cluster is one of a federation: calls between workspaces go through the router
    (``federation_url``, or ``advertise``), which sends those of other clusters there."""
    n10n_quotas: Quotas = field(default_factory=Quotas)
    """Notification channels and subscriptions, in all and per subject (Voedger's defaults)."""
    n10n_heartbeat: float = 30.0
    """Seconds between the heartbeats of channels subscribed to ``sys.Heartbeat30``."""
    blob_max_size: int = DEFAULT_MAX_SIZE
    """Bytes a BLOB may have (Voedger's ``BLOBMaxSize``, 20 MiB); a larger upload answers 413."""
    reader: bool = False
    """A reader process of ``voedger server --processes`` (embedded SQLite only): the storage is
    opened read-only beside the process that writes it, which must have started it; no partition
    runs here, nothing is written; the applications, keys and deployed versions are read from
    storage (and read again as they change), and the router sends here only the reads it may
    serve (``router.readers``)."""


@dataclass
class DeployedApp:
    image: AppImage
    runtime: AppRuntime
    partitions: dict[int, Partition]
    actualizers: Actualizers
    queries: QueryProcessor
    jobs: list[JobScheduler]
    stats: ProcessorStats = field(default_factory=ProcessorStats)

    def read_cache(self, wsid: int) -> ReadCache | None:
        """The read cache of the workspace's partition while it is written here."""
        partition = self.partitions.get(partition_of(wsid, self.runtime.num_partitions))
        return partition.reads if partition is not None and partition.serves_reads() else None

    def partition(self, wsid: int) -> Partition:
        pid = partition_of(wsid, self.runtime.num_partitions)
        try:
            return self.partitions[pid]
        except KeyError:
            raise SysError(
                503,
                f"partition {pid} of {self.image.name} is not served here; retry",
                headers={"Retry-After": "1", NOT_OWNER_HEADER: "1"},
            ) from None


class VVM:
    """One server process of a cluster."""

    def __init__(self, config: ServerConfig, authorizer: Authorizer | None = None) -> None:
        self.config = config
        if authorizer is None:
            authorizer = AllowAll() if config.insecure_dev else ACL()
        self.authorizer: Authorizer = authorizer
        self.resolver: PrincipalResolver = DirectResolver() if config.insecure_dev else TokenResolver()
        self.tokens: Tokens | None = None
        """Signs and checks tokens: the cluster's Ed25519 keys and secret, shared through storage by
        all its processes; ``tokens.keys.ring`` verifies the other clusters' tokens too."""
        self.key_reloads: asyncio.Task[None] | None = None
        """Reads the cluster's key set now and then (a cluster of several processes only)."""
        self.federation_stats = FederationStats()
        """Calls through the federation, by target (``voedger_federation_*``)."""
        self.federation: Federation = LocalFederation(self)
        self.apps: dict[str, DeployedApp] = {}
        self.provider: StorageProvider | None = None
        self.services: AuthServices | None = None
        self.vvm_storage: Any = None
        self._deploying = asyncio.Lock()
        """One deploy or catch-up with the deployed versions at a time in this process."""
        self.versions: VersionStore | None = None
        self.seen: dict[str, int] = {}
        """The newest version number of each application's version row this process has read."""
        self.serving: dict[str, Version] = {}
        """The deployed version (its row) each application deployed through DeployApp has
        here; an application started from the command line has none, or the row it overrode."""
        self._gate = SwapGate()
        self._versions_hint = asyncio.Event()
        self.version_watch: asyncio.Task[None] | None = None
        """Reads the deployed versions now and then (a cluster of several processes only)."""
        self.started = asyncio.Event()
        self.ownership: Ownership | None = None
        """Partition leases, when the storage is shared with other processes."""
        self.forwards = ForwardStats()
        """Requests the router sent on to other processes of the cluster."""
        self.http = HttpStats()
        """Requests answered by the HTTP front, counted by ``router.access`` (if it wraps the app)."""
        self.loop_lag = LoopLag()
        """How late this process's event loop wakes what is due (``voedger_event_loop_lag_seconds``)."""
        self.peer_waker: Callable[[Sequence[str]], Awaitable[None]] | None = None
        """Set by the router: tells other processes to look at the leases now."""
        self.knows_cluster: Callable[[int], bool] = lambda cluster: cluster == self.config.cluster_id
        """Whether a cluster ID names a cluster of the federation (set by the federation's
        wiring from its directory; alone, only this cluster's own)."""

        self.n10n = Notifications(Broker(config.n10n_quotas, config.n10n_heartbeat))
        """Notifications: the views changed here, to the clients subscribed here and (in a
        cluster, once the router gives it a sender) to the other processes."""

    def _knows_cluster(self, cluster_id: int) -> bool:
        return self.knows_cluster(cluster_id)

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop_lag.start()
        reader = self.config.reader
        if reader:
            self.provider = open_storage(self.config.storage_url, self.config.clock, read_only=True)
        else:
            self.provider = open_storage(self.config.storage_url, self.config.clock)
        await self.provider.open(server=True)
        self.n10n.broker.start()
        vvm_storage = await self.provider.app_storage(VVM_APP)
        secrets = StorageSecretStore(vvm_storage)
        # A JWT secret from before the Ed25519 keys: HS256 tokens are out there, still accepted
        # for a week after the keys are made (see voedger.auth.tokens).
        upgrading = await secrets.read(JWT_SECRET_NAME) is not None
        keys = await ClusterKeys.open(
            StorageKeySetStore(vvm_storage), self.config.cluster_id, self.config.clock, legacy_hmac=upgrading
        )
        self.tokens = Tokens(await jwt_secret(secrets), self.config.clock, keys)
        cluster = self.config.cluster
        if cluster is None:
            cluster = self.provider.capabilities.name == "cassandra"
        if (cluster or self.config.federated) and self.config.advertise:
            # A workspace of another partition may be another process's, or another cluster's:
            # calls between workspaces go through the router, which forwards them to the owner.
            self.federation = HttpFederation(
                self.config.federation_url or self.config.advertise,
                self.tokens,
                knows=self._knows_cluster,
                stats=self.federation_stats,
            )
        elif self.config.federation_url and not self.config.insecure_dev:
            self.federation = HttpFederation(
                self.config.federation_url, self.tokens, knows=self._knows_cluster, stats=self.federation_stats
            )
        images = [load_image(CLUSTER_APP, CLUSTER_APP_DIR)]
        images[0] = dataclasses.replace(images[0], num_partitions=1, num_app_workspaces=1)
        images.append(load_image(REGISTRY_APP, REGISTRY_APP_DIR))
        names = {CLUSTER_APP, REGISTRY_APP}
        for name, directory in self.config.apps:
            if name in names:
                raise ValueError(f"application {name} is given twice")
            names.add(name)
            images.append(load_image(name, directory))
        self.versions = VersionStore(vvm_storage)
        uploaded = await self._stored_images(vvm_storage, names)
        images += uploaded
        services = AuthServices(
            self.tokens,
            apps=self._num_app_workspaces,
            mailer=self.config.mailer,
            guard=PasswordGuard(self.config.clock),
        )
        self.services = services
        self.vvm_storage = vvm_storage
        for image in images:
            if image.name not in (CLUSTER_APP, REGISTRY_APP) and not reader:
                await self._check_schema(vvm_storage, image)
        for image in images:
            bind_services(image.appdef, services)  # token issuing for sign-in and refresh
            await self._deploy(image)
        if cluster or self.config.federated or reader:
            # Keys another process of the cluster (or `voedger keys`) rotates reach this one
            # within seconds, and a federated one publishes them in the directory.
            self.key_reloads = asyncio.create_task(keys.run_reloads(), name="key-reloads")
        if cluster:
            store = LeaseStore(vvm_storage, self.config.lease_ttl)
            self.ownership = Ownership(store, self.config.advertise, self)
            if not self.config.join_later:
                await self.ownership.start()
            self.version_watch = asyncio.create_task(self._watch_versions(), name="deployed-versions")
        elif reader:  # the writer deploys; a reader serves what it deployed, and runs no partition
            self.version_watch = asyncio.create_task(self._watch_versions(), name="deployed-versions")
        else:
            # Every partition recovers and takes commands before any projector, job or bootstrap
            # runs: those call commands of other partitions, which must not answer 503 here.
            for app in self.apps.values():
                await asyncio.gather(*(self._open_partition(app, pid) for pid in range(app.runtime.num_partitions)))
            for app in self.apps.values():
                await asyncio.gather(*(self._run_partition(app, pid) for pid in range(app.runtime.num_partitions)))
        self.started.set()

    # --- partitions, as the leases give and take them ---------------------------------------------

    def partition_keys(self) -> list[Key]:
        return [(name, pid) for name, app in self.apps.items() for pid in range(app.runtime.num_partitions)]

    async def acquired(self, lease: Lease, valid: Callable[[], bool]) -> int:
        """Start serving a partition whose lease this process got: a new epoch, fenced writes."""
        await self._gate.begin_move()  # on the version deployed now, not on one being replaced
        try:
            app = self.apps[lease.app]
            storage = app.runtime.storage
            epoch = await next_epoch(storage, lease.partition)
            writer = FencedWriter(storage, lease.partition, epoch, lease.owner, valid)
            await self._start_partition(app, lease.partition, writer)
            return epoch
        finally:
            await self._gate.end_move()

    async def released(self, key: Key, lost: bool) -> None:
        """Stop serving a partition: drained for a handover, failed at once when it was lost."""
        app = self.apps.get(key[0])
        partition = app.partitions.get(key[1]) if app is not None else None
        if lost and partition is not None:
            partition.closed = True
            partition.writer.fenced = True  # nothing more reaches storage from here
        await self._gate.begin_move()
        try:
            await self._stop_partition(key, lost)
        finally:
            await self._gate.end_move()

    async def _stop_partition(self, key: Key, lost: bool) -> None:
        app = self.apps.get(key[0])
        if app is None:
            return
        pid = key[1]
        partition = app.partitions.get(pid)
        for scheduler in [s for s in app.jobs if s.partition_id == pid]:
            app.jobs.remove(scheduler)
            await scheduler.stop()
        await app.actualizers.remove_partition(pid, abort=lost)
        if partition is not None:
            await partition.stop()
            if app.partitions.get(pid) is partition:
                del app.partitions[pid]

    async def _start_partition(self, app: DeployedApp, pid: int, writer: Any = None) -> None:
        await self._open_partition(app, pid, writer)
        await self._run_partition(app, pid)

    async def _open_partition(self, app: DeployedApp, pid: int, writer: Any = None) -> None:
        """Recover a partition and take its commands."""
        partition = Partition(app.runtime, pid)
        if writer is not None:
            partition.writer = writer
        partition.on_fenced = lambda p: self._fenced(app.image.name, p)
        await partition.start()
        app.partitions[pid] = partition

    async def _run_partition(self, app: DeployedApp, pid: int) -> None:
        """Start what follows an open partition: its projectors, its jobs, its bootstrap."""
        partition = app.partitions[pid]
        await app.actualizers.add_partition(partition)
        scheduler = JobScheduler(app.runtime, pid)
        await scheduler.start()
        app.jobs.append(scheduler)
        await self._bootstrap_partition(app, pid)

    def cluster_status(self) -> dict[str, Any]:
        """What ``GET /api/cluster`` shows: the members, and who owns each partition under
        which epoch (as this process last read the leases)."""
        own = self.ownership
        if own is None:
            parts = [
                {"app": name, "partition": pid, "owner": "", "address": self.config.advertise, "epoch": 0}
                for name, app in sorted(self.apps.items())
                for pid in sorted(app.partitions)
            ]
            return {
                "cluster": False,
                "self": {"id": "", "address": self.config.advertise},
                "members": [],
                "partitions": parts,
            }
        members = {m.id: m for m in own.members}
        members[own.me.id] = own.me
        claims = own.claims()
        claimed_by: dict[tuple[str, int], list[str]] = {}
        holds: dict[str, int] = {}
        for key, (member, _epoch) in claims:
            claimed_by.setdefault(key, []).append(member)
            holds[member] = holds.get(member, 0) + 1
        parts = []
        for key in self.partition_keys():
            lease = own.owner(key)
            parts.append(
                {
                    "app": key[0],
                    "partition": key[1],
                    "owner": lease.owner if lease else "",
                    "address": lease.address if lease else "",
                    "epoch": lease.epoch if lease else 0,
                    "claimed_by": sorted(claimed_by.get(key, [])),
                }
            )
        read_ago = own.leases_read_ago()
        agree = own.claims_agree()
        return {
            "cluster": True,
            "self": {"id": own.me.id, "address": own.me.address},
            "members": [
                {
                    "id": m.id,
                    "address": m.address,
                    "pid": m.pid,
                    "since": m.since,
                    "partitions": sum(1 for p in parts if p["owner"] == m.id),
                    # the leases its row says it holds (None: a version whose rows do not say)
                    "holds": holds.get(m.id, 0) if m.holds is not None or m.id == own.me.id else None,
                }
                for m in sorted(members.values(), key=lambda m: m.id)
            ],
            "partitions": parts,
            "versions": {name: v.number for name, v in sorted(self.serving.items())},
            # whether the members' rows say what the leases said when this process last read
            # them, and how long ago that was: a settled cluster agrees and reads seldom
            "claims_agree": agree,
            "settled": agree and all(p["owner"] in members for p in parts),
            "leases_read_ago": round(read_ago, 3) if math.isfinite(read_ago) else None,
            "leases": {
                "acquired": own.stats.acquired,
                "released": own.stats.released,
                "lost": own.stats.lost,
                "failed_starts": own.stats.failed_starts,
            },
        }

    def _fenced(self, app: str, partition: Partition) -> None:
        """A write found the partition another process's: let go of it now, not at the next tick."""
        if self.ownership is not None:
            asyncio.get_running_loop().create_task(self.ownership._lose((app, partition.id), "a write was fenced"))

    async def _deploy(self, image: AppImage) -> None:
        assert self.provider is not None
        storage = await self.provider.app_storage(image.name)
        appdef = image.appdef
        renamed = await qnames.deploy(storage, appdef)
        if renamed:
            log.info("%s: renamed QNames read from their stored names: %r", image.name, renamed)
        runtime = AppRuntime(
            name=image.name,
            appdef=image.appdef,
            storage=storage,
            impls=image.impls,
            platform=platform,
            singleton_ids=await load_singleton_ids(storage, image.appdef),
            num_partitions=image.num_partitions,
            num_app_workspaces=image.num_app_workspaces,
            cluster_id=self.config.cluster_id,
            authorizer=self.authorizer,
            resolver=self.resolver,
            limiter=Limiter(image.appdef, self.config.clock),
            clock=self.config.clock,
            federation=self.federation,
            views_changed=functools.partial(self.n10n.views_changed, image.name),
            verify_value=self._value_verifier(image.name),
            templates=image.templates,
            secrets=SecretFiles(self.config.secrets_dir) if self.config.secrets_dir is not None else {},
        )
        runtime.peer_query = self._peer_query
        runtime.peer_apps = self._peer_app
        runtime.platform_app = image.name == CLUSTER_APP
        actualizers = Actualizers(runtime)
        deployed = self.apps[image.name] = DeployedApp(image, runtime, {}, actualizers, QueryProcessor(runtime), [])
        runtime.read_cache = deployed.read_cache
        missing = not_built(image.appdef)
        if missing:
            log.info("%s: %d sys extensions are not built yet (calls answer 501)", image.name, len(missing))
            log.debug("%s: not built: %s", image.name, ", ".join(map(str, missing)))

    async def _bootstrap_partition(self, app: DeployedApp, pid: int) -> None:
        """Make the app workspaces of a partition just started; the owner of sys/cluster's
        partition also deploys every application there."""
        await self._init_app_workspaces(app, pid)
        if app.image.name != CLUSTER_APP:
            return
        cluster = app
        cluster_ws = app_wsid(self.config.cluster_id, 0)
        for name, other in self.apps.items():
            if name == CLUSTER_APP:
                continue
            body = {
                "args": {
                    "AppQName": name,
                    "NumPartitions": other.runtime.num_partitions,
                    "NumAppWorkspaces": other.runtime.num_app_workspaces,
                }
            }
            await cluster.partition(cluster_ws).submit(
                CommandRequest(cluster_ws, QName("cluster", "DeployApp"), body, SYSTEM)
            )

    async def _init_app_workspaces(self, app: DeployedApp, pid: int) -> None:
        rt = app.runtime
        descriptor_id = rt.singleton_ids[WS_DESCRIPTOR]
        for n in range(rt.num_app_workspaces):
            wsid = app_wsid(self.config.cluster_id, n)
            if partition_of(wsid, rt.num_partitions) != pid:
                continue
            if await get_record(Pending(rt.storage), wsid, descriptor_id) is not None:
                continue
            now = rt.now_ms()
            body = {
                "cuds": [
                    {
                        "fields": {
                            "sys.ID": 1,
                            "sys.QName": str(WS_DESCRIPTOR),
                            "WSName": f"appWS{n}",
                            "WSKind": APP_WORKSPACE_KIND,
                            "CreatedAtMs": now,
                            "InitCompletedAtMs": now,
                        }
                    }
                ]
            }
            await app.partition(wsid).submit(CommandRequest(wsid, QName("sys", "CUD"), body, SYSTEM, synced=True))

    def _value_verifier(self, app: str) -> Callable[[str, QName, str], Any]:
        """Checks verified value tokens (``payloads.VerifiedValuePayload``) for ``app``'s
        VERIFIABLE fields: issued for this app, for this entity and field, not expired."""

        def verify(token: str, entity: QName, field: str) -> Any:
            assert self.tokens is not None
            where = f"{entity}.{field}"
            try:
                claims = self.tokens.validate_claims(app, VERIFIED_VALUE_AUDIENCE, token)
            except TokenError as exc:
                # Voedger's words: the reason, then "invalid token" (its itokens.ErrInvalidToken,
                # which clients look for), an expired token aside.
                reason = exc.message if exc.kind is TokenErrorKind.EXPIRED else f"{exc.message}. invalid token"
                raise SysError(400, f"verification token for {where} is invalid: {reason}") from None
            if claims.get("Entity") != str(entity):
                raise SysError(400, f"verified entity is «{claims.get('Entity')}», but «{entity}» expected")
            if claims.get("Field") != field:
                raise SysError(400, f"verified field is «{claims.get('Field')}», but «{field}» expected")
            if claims.get("Value") in (None, ""):
                raise SysError(400, f"wrong value for verified {where}")
            return claims["Value"]

        return verify

    async def _peer_query(self, app_name: str, wsid: int, body: dict[str, Any], caller: Any) -> dict[str, Any]:
        """An API v1 query of another application of this process, as the same caller: its token
        counts there as if issued for that application (Voedger re-issues it), a pseudo WSID
        maps to that application's workspaces."""
        app = self.apps.get(app_name)
        if app is None:
            raise SysError(400, f"application {app_name} is not deployed here")
        if is_pseudo(wsid):
            wsid = pseudo_to_app_wsid(wsid, app.runtime.num_app_workspaces, cluster_id(wsid))
        if isinstance(caller, TokenInfo):
            caller = dataclasses.replace(caller, app=app_name)
        return await app.queries.execute(QueryRequest(wsid, SQL_QUERY, caller, body=body))

    def _peer_app(self, name: str) -> PeerApp | None:
        """The schema and app workspace count another application is served with here now."""
        app = self.apps.get(name)
        return PeerApp(app.runtime.appdef, app.runtime.num_app_workspaces) if app is not None else None

    def _num_app_workspaces(self, name: str) -> int | None:
        app = self.apps.get(name)
        return app.runtime.num_app_workspaces if app is not None else None

    @property
    def ready(self) -> bool:
        """Started, and in a cluster joined with its share taken and not leaving: what
        ``GET /api/check`` reports (200, else 503), as a load balancer's health check reads it."""
        if not self.started.is_set():
            return False
        return self.ownership is None or self.ownership.serving

    async def join(self) -> None:
        """Take this process's share of the partitions (a cluster started with ``join_later``);
        returns once it serves it, or after a while if the share keeps moving."""
        if self.ownership is not None and not self.ownership.started:
            await self.ownership.start()

    async def leave(self) -> None:
        """Hand every partition over to the rest of the cluster (nothing on a single node).
        Called on SIGTERM while the process still answers requests, which it forwards to the
        partitions' new owners; ``stop`` comes after. Notification streams end here (clients
        connect again, to another process): they would hold the graceful stop to its end."""
        self.n10n.broker.shut()
        if self.ownership is not None:
            await self.ownership.stop()

    def wake(self) -> None:
        """Another process let a partition go, or deployed a version: look at the leases and
        the deployed versions now."""
        if self.ownership is not None:
            self.ownership.wake()
        self._versions_hint.set()

    async def wake_peers(self, addresses: Sequence[str]) -> None:
        """``Host.wake_peers``: through the router's transport, once it is there."""
        if self.peer_waker is not None:
            await self.peer_waker(addresses)

    async def stop(self) -> None:
        """Finish every accepted command, hand the partitions over, then release storage."""
        if self.version_watch is not None:
            self.version_watch.cancel()
            await asyncio.gather(self.version_watch, return_exceptions=True)
            self.version_watch = None
        await self.n10n.stop()
        if self.ownership is not None:
            await self.ownership.stop()
        for app in self.apps.values():
            for scheduler in app.jobs:
                await scheduler.stop()
            await app.actualizers.stop()
        for app in self.apps.values():
            await asyncio.gather(*(p.stop() for p in app.partitions.values()))
        for app in self.apps.values():
            unbind_services(app.image.appdef)
        if self.key_reloads is not None:
            self.key_reloads.cancel()
            self.key_reloads = None
        if isinstance(self.federation, HttpFederation):
            await self.federation.close()
        if self.provider is not None:
            await self.provider.close()
            self.provider = None
        await self.loop_lag.stop()

    # --- requests ------------------------------------------------------------------------------

    def app(self, name: str) -> DeployedApp:
        try:
            return self.apps[name]
        except KeyError:
            raise SysError(400, f"unknown app {name}") from None  # Voedger's words

    async def command(
        self,
        app_name: str,
        wsid: int,
        command: QName,
        body: dict[str, Any],
        principal: object,
        ip: str = "",
        table: QName | None = None,
    ) -> CommandResult:
        """Run a command; ``table`` is the table an API v2 URL names for the records it updates.
        A c.cluster.DeployApp that carries an image (``unloggedArgs.Image``) deploys it here."""
        if app_name == CLUSTER_APP and command == DEPLOY_APP and isinstance(body.get("unloggedArgs"), dict):
            return await self.deploy_uploaded(wsid, body, principal)
        app = self.app(app_name)
        with app.stats.commands.timing():
            return await app.partition(wsid).submit(CommandRequest(wsid, command, body, principal, ip=ip, table=table))

    async def query(
        self,
        app_name: str,
        wsid: int,
        name: QName,
        principal: object,
        *,
        body: dict[str, Any] | None = None,
        api_v2: bool = False,
        path: str = "queries",
        params: dict[str, str] | None = None,
        doc_id: int = 0,
        ip: str = "",
    ) -> dict[str, Any]:
        """Run a read: an API v1 query, or an API v2 query, view, document or collection read."""
        app = self.app(app_name)
        try:
            api_path = ApiPath(path)
        except ValueError:
            raise SysError(400, f"unknown read path {path!r}") from None
        request = QueryRequest(
            wsid, name, principal, body=body, params=params or {}, api_v2=api_v2, path=api_path, doc_id=doc_id, ip=ip
        )
        with app.stats.queries.timing():
            return await app.queries.execute(request)

    # --- deploying an image on a running server -------------------------------------------------

    async def deploy_uploaded(self, wsid: int, body: dict[str, Any], caller: object) -> CommandResult:
        """``c.cluster.DeployApp`` with the image (a ``vpm build`` file, base64) in
        ``unloggedArgs.Image``: checked (it compiles, its extensions match, and a new version of a
        deployed application is backward compatible with it, by ``vpm compat``'s rules), made the
        deployed version (``vvm.versions``: the image kept, then the version row advanced by
        compare-and-swap), recorded in sys/cluster (through the owner of its partition), and
        served instead of the old version, here at once and by the other processes of a cluster
        once they read the version row (they are woken to do it now). Anything refused changes
        nothing. Only the System principal may deploy."""
        if not self._is_system(caller):
            raise SysError(403, "only the System principal (a system token of sys/cluster) deploys applications")
        args = body.get("args")
        unlogged = body.get("unloggedArgs")
        if not isinstance(args, dict) or not isinstance(unlogged, dict) or set(unlogged) != {"Image"}:
            raise SysError(400, "DeployApp with an image takes args (AppQName) and unloggedArgs {Image: base64}")
        name = args.get("AppQName")
        if not isinstance(name, str) or name in (CLUSTER_APP, REGISTRY_APP, VVM_APP):
            raise SysError(400, f"AppQName must name an application other than the platform's, not {name!r}")
        try:
            data = base64.b64decode(unlogged["Image"], validate=True)
        except (ValueError, TypeError):
            raise SysError(400, "unloggedArgs.Image must be the image file in base64") from None
        async with self._deploying:
            image = await asyncio.to_thread(_image_from_bytes, name, data)
            for key in ("NumPartitions", "NumAppWorkspaces"):
                given = args.get(key)
                mine = image.num_partitions if key == "NumPartitions" else image.num_app_workspaces
                if given is not None and given != mine:
                    raise SysError(400, f"args.{key} is {given}, the image's descriptor.json says {mine}")
            versions = self.versions
            assert versions is not None
            deployed = await self._make_deployed(versions, image, data)
            old = self.apps.get(name)
            try:
                result = await self._record_deploy(image)
            finally:
                # The version is deployed whether or not the record went through: served here
                # now, and by the others once they read it (woken to do it at once).
                serving = self.serving.get(name)
                if old is None or serving is None or serving.digest != deployed.digest:
                    await self._check_schema(self.vvm_storage, image)
                    await self._replace(old, image)
                    self.serving[name] = deployed
                await self._wake_members()
        log.info("%s: version %d deployed from an uploaded image (%d bytes)", name, deployed.number, len(data))
        return result

    async def _make_deployed(self, versions: VersionStore, image: AppImage, data: bytes) -> Version:
        """Check ``image`` against the deployed version (and against the one served here, if
        that is another: started from the command line, or not caught up yet) and make it the
        deployed version; the same image again is deployed already. Refusals change nothing."""
        name = image.name
        digest = digest_of(data)
        current = await versions.current(name)
        if current is not None and current.digest == digest:
            self.seen[name] = max(self.seen.get(name, 0), current.number)
            return current
        for base in await self._deployed_bases(versions, name, current):
            for key, theirs, mine in (
                ("NumPartitions", base.num_partitions, image.num_partitions),
                ("NumAppWorkspaces", base.num_app_workspaces, image.num_app_workspaces),
            ):
                if theirs != mine:
                    raise numbers_changed(name, key, mine, theirs)
            try:
                rename = await self._renames(image)
            except qnames.RenameError as err:
                raise SysError(409, f"application {name}: {err}; nothing was changed") from None
            breaks = check_compat(renamed_tree(build_tree(base.appdef), rename), image.appdef)
            if breaks:
                lines = "\n".join(str(b) for b in breaks)
                raise SysError(
                    409,
                    f"application {name}: the new version is not compatible with the deployed one "
                    f"({len(breaks)} break(s)); nothing was changed:\n{lines}",
                )
        await versions.keep_image(name, digest, data)
        new = Version(current.number + 1 if current is not None else 1, digest)
        if not await versions.advance(name, current, new):
            now = await versions.current(name)
            if now is None or now.digest != digest:
                with contextlib.suppress(StorageError):
                    await versions.forget_image(name, digest)
                number = now.number if now is not None else 0
                raise SysError(
                    409,
                    f"application {name}: another version (version {number}) was deployed at the same time, "
                    "through another process; nothing was changed: deploy again to check this one against it",
                )
            new = now
        else:
            new = Version(new.number, digest, new.encode())
        self.seen[name] = max(self.seen.get(name, 0), new.number)
        if current is not None:
            with contextlib.suppress(StorageError):
                await versions.forget_image(name, current.digest)  # no version row names it now
        return new

    async def _deployed_bases(self, versions: VersionStore, name: str, current: Version | None) -> list[AppImage]:
        """The images a new version of ``name`` must be compatible with: the one served here and
        the deployed version's, when they differ."""
        bases: list[AppImage] = []
        local = self.apps.get(name)
        if local is not None:
            bases.append(local.image)
        serving = self.serving.get(name)
        if current is not None and (local is None or serving is None or serving.digest != current.digest):
            stored = await versions.image(name, current.digest)
            if stored is None:
                raise SysError(
                    503,
                    f"application {name}: the image of its deployed version {current.number} cannot be read now; retry",
                    headers={"Retry-After": "1"},
                )
            bases.append(await asyncio.to_thread(_image_from_bytes, name, stored))
        return bases

    async def _record_deploy(self, image: AppImage) -> CommandResult:
        """``c.cluster.DeployApp`` in sys/cluster's workspace, through the federation: in a
        cluster it goes through the router to the process that owns that partition."""
        cluster_ws = app_wsid(self.config.cluster_id, 0)
        numbers = {"NumPartitions": image.num_partitions, "NumAppWorkspaces": image.num_app_workspaces}
        request: dict[str, Any] = {"args": {"AppQName": image.name, **numbers}}
        reply = await self.federation.command(CLUSTER_APP, cluster_ws, f"c.{DEPLOY_APP}", request)
        if reply.status != 200:
            raise SysError(
                reply.status,
                f"application {image.name} is deployed, but recording it in sys/cluster failed "
                f"({reply.message or reply.status}); deploy the same image again to record it",
            )
        return CommandResult(reply.wlog_offset, reply.new_ids, reply.result)

    async def _wake_members(self) -> None:
        """Tell the other processes of the cluster to read the deployed versions now."""
        own = self.ownership
        if own is None:
            return
        addresses = sorted(
            {m.address for m in own.members if m.id != own.me.id and m.address and m.address != own.me.address}
        )
        if addresses:
            await self.wake_peers(addresses)

    async def _watch_versions(self) -> None:
        """Serve each version another process deploys: read the version rows when woken, or
        every ``VERSION_POLL`` seconds."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(VERSION_POLL):
                    await self._versions_hint.wait()
            self._versions_hint.clear()
            try:
                await self.catch_up()
            except StorageError as exc:
                log.warning("reading the deployed versions failed: %s", exc)
            except Exception:  # pragma: no cover - a bug; the watch must go on
                log.exception("catching up with the deployed versions failed")

    async def catch_up(self) -> None:
        """Serve the deployed version of every application whose version row is newer than
        the one this process saw last."""
        versions = self.versions
        assert versions is not None
        async with self._deploying:
            for name, row in sorted((await versions.all()).items()):
                if row.number <= self.seen.get(name, 0):
                    continue
                data = await versions.image(name, row.digest)
                if data is None:  # replaced by a newer version meanwhile: the next read finds it
                    log.warning("%s: the image of version %d is gone; reading the versions again", name, row.number)
                    continue
                try:
                    image = await asyncio.to_thread(_image_from_bytes, name, data)
                except SysError as exc:
                    log.error("%s: version %d cannot be served here: %s", name, row.number, exc.message)
                    self.seen[name] = row.number
                    continue
                await self._replace(self.apps.get(name), image)
                self.seen[name] = row.number
                self.serving[name] = row
                log.info("%s: serving version %d, deployed through another process", name, row.number)

    def _is_system(self, caller: object) -> bool:
        if self.config.insecure_dev:
            return True
        if isinstance(caller, TokenInfo):
            return caller.payload.is_system and caller.app == CLUSTER_APP
        return caller is SYSTEM

    async def _replace(self, old: DeployedApp | None, image: AppImage) -> None:
        """Serve ``image`` instead of ``old``: the partitions served here finish the commands they
        accepted, then serve the new version under the same writers (in a cluster: the same
        leases and epochs); requests meanwhile find them not served and are held by the router.
        A new application's partitions start here (one process) or are taken by lease."""
        await self._gate.begin_swap()
        try:
            pids: list[int] = []
            writers: dict[int, Any] = {}
            if old is not None:
                pids = sorted(old.partitions)
                writers = {pid: old.partitions[pid].writer for pid in pids}
                await asyncio.gather(*(self._stop_partition((image.name, pid), lost=False) for pid in pids))
                await old.actualizers.stop()
                unbind_services(old.image.appdef)
            elif self.ownership is None and not self.config.reader:
                pids = list(range(image.num_partitions))
            if self.services is not None:
                bind_services(image.appdef, self.services)
            await self._deploy(image)
            app = self.apps[image.name]
            await asyncio.gather(*(self._open_partition(app, pid, writers.get(pid)) for pid in pids))
            await asyncio.gather(*(self._run_partition(app, pid) for pid in pids))
        finally:
            await self._gate.end_swap()
        if old is None and self.ownership is not None:
            self.ownership.wake()  # its partitions are to be shared out now

    async def _renames(self, image: AppImage) -> Callable[[str], str]:
        """What the QName table of ``image``'s application makes of the QNames of a schema served
        before (``c.sys.RenameQName``): the names they have now."""
        assert self.provider is not None
        _, table = await qnames.read_table(await self.provider.app_storage(image.name))
        return qnames.in_use(table, qnames.declared_by(image.appdef)).name

    async def _check_schema(self, storage: Any, image: AppImage) -> list[str]:
        """Compare the schema about to be served with the one last served over this data: each
        backward-incompatible change is logged as a warning (and returned); then the new one is
        remembered."""
        tree = build_tree(image.appdef)
        stored = await storage.get(DEPLOYED_SCHEMAS, image.name.encode())
        breaks: list[str] = []
        if stored is not None:
            old = None
            try:
                old = tree_from_json(orjson.loads(stored))
            except (ValueError, orjson.JSONDecodeError):
                log.warning("%s: the schema last served here cannot be read; not compared", image.name)
            if old is not None:
                with contextlib.suppress(qnames.RenameError):  # the deploy refuses such a schema
                    old = renamed_tree(old, await self._renames(image))
                breaks = [str(b) for b in check_compat(old, tree)]
        if breaks:
            log.warning(
                "%s: the schema is not compatible with the one last served over this data (%d break(s)):\n  %s",
                image.name,
                len(breaks),
                "\n  ".join(breaks),
            )
        await storage.put(DEPLOYED_SCHEMAS, image.name.encode(), orjson.dumps(tree_to_json(tree)))
        return breaks

    async def _stored_images(self, storage: Any, given: set[str]) -> list[AppImage]:
        """The deployed version of each application deployed through DeployApp before (and the
        images kept before version rows existed), except those the command line names (it wins
        until the next deploy; a log line says so)."""
        versions = self.versions
        assert versions is not None
        images: list[AppImage] = []
        for name, row in sorted((await versions.all()).items()):
            self.seen[name] = row.number
            if name in given:
                log.warning("%s: the image given on the command line replaces the one deployed through DeployApp", name)
                continue
            data = await versions.image(name, row.digest)
            if data is None:
                raise ImageError(f"{name}: the image of its deployed version {row.number} is missing from storage")
            images.append(self._stored_image(name, data))
            self.serving[name] = row
            given.add(name)
        async for c_col, data in storage.read(DEPLOYED_IMAGES):
            name = c_col.decode()
            if name in given or name in self.seen:
                continue
            images.append(self._stored_image(name, data))
            given.add(name)
        return images

    def _stored_image(self, name: str, data: bytes) -> AppImage:
        try:
            return _image_from_bytes(name, data)
        except SysError as exc:
            raise ImageError(f"{name}, deployed through DeployApp, cannot be deployed again: {exc}") from None


def _image_from_bytes(name: str, data: bytes) -> AppImage:
    """Load an image file's bytes (written to a scratch file that the unpacking replaces)."""
    with tempfile.NamedTemporaryFile(suffix=".var") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            return load_image(name, Path(tmp.name))
        except ImageError as exc:
            raise SysError(400, str(exc)) from None


class LocalFederation:
    """Calls between workspaces and applications of this process, as the System principal.

    The federation of several clusters replaces it with calls over HTTP carrying system tokens;
    the extensions that use it do not change.
    """

    def __init__(self, vvm: VVM) -> None:
        self.vvm = vvm
        self.stats = vvm.federation_stats.target("local")

    def knows_cluster(self, cluster_id: int) -> bool:
        return self.vvm.knows_cluster(cluster_id)

    async def command(self, app: str, wsid: int, command: str, body: dict[str, Any]) -> FederationReply:
        return await counted(self.stats, self._command(app, wsid, command, body))

    async def query(self, app: str, wsid: int, query: str, body: dict[str, Any]) -> FederationReply:
        try:
            qname = QName.parse(query.removeprefix("q."))
            result = await self.vvm.query(app, wsid, qname, SYSTEM, body=body)
        except SysError as err:
            return FederationReply(err.status, err.message)
        except ValueError as err:
            return FederationReply(400, str(err))
        return FederationReply(200, "", result=result)

    async def _command(self, app: str, wsid: int, command: str, body: dict[str, Any]) -> FederationReply:
        name = command.removeprefix("c.")
        try:
            qname = QName.parse(name)
            result = await self.vvm.command(app, wsid, qname, body, SYSTEM)
        except SysError as err:
            return FederationReply(err.status, err.message)
        except ValueError as err:
            return FederationReply(400, str(err))
        return FederationReply(200, "", result.new_ids, result.result, result.wlog_offset)
