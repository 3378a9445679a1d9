"""The server process (Voedger's VVM): deploys the cluster application and the configured
applications, starts one writer per partition, bootstraps application workspaces, and stops
cleanly, finishing what it has accepted."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from voedger.appdef import QName
from voedger.appdef.compat import build_tree, check_compat, tree_from_json, tree_to_json
from voedger.apps.cluster import CLUSTER_APP, CLUSTER_APP_DIR
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
from voedger.state.federation import Federation, FederationReply
from voedger.storage import StorageProvider, open_storage
from voedger.structs.keys import app_state_key
from voedger.structs.pending import Pending
from voedger.structs.records import get_record
from voedger.structs.singletons import load_singleton_ids
from voedger.structs.wsid import MAIN_CLUSTER_ID, app_wsid, cluster_id, is_pseudo, partition_of, pseudo_to_app_wsid
from voedger.syserror import SysError
from voedger.vvm.federation import HttpFederation
from voedger.vvm.image import AppImage, ImageError, load_image
from voedger.vvm.leases import Key, Lease, LeaseStore
from voedger.vvm.ownership import DEFAULT_TTL, Ownership
from voedger.vvm.stats import FederationStats, ForwardStats, HttpStats, ProcessorStats

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
"""Where the images deployed through c.cluster.DeployApp are kept (in sys/vvm's storage), by
application name, so that a restarted server deploys them again."""


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
    max_queries_per_ws: int = 10
    """Reads of one workspace running at once (Voedger's ``MaxQueriesPerWS``); more answer 503
    with ``Retry-After``. 0: no limit."""
    advertise: str = ""
    """This process's address for requests forwarded by the others (``http://host:port``)."""
    lease_ttl: int = DEFAULT_TTL
    """Seconds a partition lease lives without renewal (shared storage only)."""
    cluster: bool | None = None
    """Share the partitions with other processes by lease, and fence every write. None: when
    the storage can be shared (Cassandra); an embedded store is locked by one process."""
    join_later: bool = False
    """In a cluster, ``start`` does not take partitions yet: the caller calls ``join`` once the
    process listens (``http.serve(after_start=vvm.join)``), so that the others can forward to it
    the moment it owns something. Not used by ``voedger server`` yet: ``GET /api/check`` would
    then answer 200 before the process serves its share (and before a new cluster's application
    workspaces exist), and clients and load balancers take that for ready."""
    federated: bool = False
    """This cluster is one of a federation: calls between workspaces go through the router
    (``federation_url``, or ``advertise``), which sends those of other clusters there."""
    n10n_quotas: Quotas = field(default_factory=Quotas)
    """Notification channels and subscriptions, in all and per subject (Voedger's defaults)."""
    n10n_heartbeat: float = 30.0
    """Seconds between the heartbeats of channels subscribed to ``sys.Heartbeat30``."""
    blob_max_size: int = DEFAULT_MAX_SIZE
    """Bytes a BLOB may have (Voedger's ``BLOBMaxSize``, 20 MiB); a larger upload answers 413."""


@dataclass
class DeployedApp:
    image: AppImage
    runtime: AppRuntime
    partitions: dict[int, Partition]
    actualizers: Actualizers
    queries: QueryProcessor
    jobs: list[JobScheduler]
    stats: ProcessorStats = field(default_factory=ProcessorStats)

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
        self.started = asyncio.Event()
        self.ownership: Ownership | None = None
        """Partition leases, when the storage is shared with other processes."""
        self.forwards = ForwardStats()
        """Requests the router sent on to other processes of the cluster."""
        self.http = HttpStats()
        """Requests answered by the HTTP front, counted by ``router.access`` (if it wraps the app)."""
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
            if image.name not in (CLUSTER_APP, REGISTRY_APP):
                await self._check_schema(vvm_storage, image)
        for image in images:
            bind_services(image.appdef, services)  # token issuing for sign-in and refresh
            await self._deploy(image)
        if cluster or self.config.federated:
            # Keys another process of the cluster (or `voedger keys`) rotates reach this one
            # within seconds, and a federated one publishes them in the directory.
            self.key_reloads = asyncio.create_task(keys.run_reloads(), name="key-reloads")
        if cluster:
            store = LeaseStore(vvm_storage, self.config.lease_ttl)
            self.ownership = Ownership(store, self.config.advertise, self)
            if not self.config.join_later:
                await self.ownership.start()
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
        app = self.apps[lease.app]
        storage = app.runtime.storage
        epoch = await next_epoch(storage, lease.partition)
        writer = FencedWriter(storage, lease.partition, epoch, lease.owner, valid)
        await self._start_partition(app, lease.partition, writer)
        return epoch

    async def released(self, key: Key, lost: bool) -> None:
        """Stop serving a partition: drained for a handover, failed at once when it was lost."""
        app = self.apps.get(key[0])
        if app is None:
            return
        pid = key[1]
        partition = app.partitions.get(pid)
        if lost and partition is not None:
            partition.closed = True
            partition.writer.fenced = True  # nothing more reaches storage from here
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
                }
            )
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
                }
                for m in sorted(members.values(), key=lambda m: m.id)
            ],
            "partitions": parts,
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
        )
        runtime.peer_query = self._peer_query
        actualizers = Actualizers(runtime)
        self.apps[image.name] = DeployedApp(image, runtime, {}, actualizers, QueryProcessor(runtime), [])
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
                raise SysError(400, f"verification token for {where} is invalid: {exc.message}") from None
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

    def _num_app_workspaces(self, name: str) -> int | None:
        app = self.apps.get(name)
        return app.runtime.num_app_workspaces if app is not None else None

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
        """Another process let a partition go: look at the leases now."""
        if self.ownership is not None:
            self.ownership.wake()

    async def wake_peers(self, addresses: Sequence[str]) -> None:
        """``Host.wake_peers``: through the router's transport, once it is there."""
        if self.peer_waker is not None:
            await self.peer_waker(addresses)

    async def stop(self) -> None:
        """Finish every accepted command, hand the partitions over, then release storage."""
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

    # --- requests ------------------------------------------------------------------------------

    def app(self, name: str) -> DeployedApp:
        try:
            return self.apps[name]
        except KeyError:
            raise SysError(400, f"application {name} is not deployed") from None

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
        deployed application is backward compatible with it, by ``vpm compat``'s rules), recorded
        in sys/cluster, kept in storage, and served instead of the old version. Anything refused
        changes nothing. Only the System principal may deploy."""
        if not self._is_system(caller):
            raise SysError(403, "only the System principal (a system token of sys/cluster) deploys applications")
        if self.ownership is not None:
            raise SysError(
                501,
                "deploying to a running cluster of several processes is not built yet: "
                "restart its processes with --app owner/name=IMAGE.var",
            )
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
            old = self.apps.get(name)
            if old is not None:
                breaks = check_compat(build_tree(old.image.appdef), image.appdef)
                if breaks:
                    lines = "\n".join(str(b) for b in breaks)
                    raise SysError(
                        409,
                        f"application {name}: the new version is not compatible with the deployed one "
                        f"({len(breaks)} break(s)); nothing was changed:\n{lines}",
                    )
            cluster = self.app(CLUSTER_APP)
            cluster_ws = app_wsid(self.config.cluster_id, 0)
            numbers = {"NumPartitions": image.num_partitions, "NumAppWorkspaces": image.num_app_workspaces}
            request: dict[str, Any] = {"args": {"AppQName": name, **numbers}}
            result = await cluster.partition(cluster_ws).submit(CommandRequest(cluster_ws, DEPLOY_APP, request, SYSTEM))
            assert self.vvm_storage is not None
            await self.vvm_storage.put(DEPLOYED_IMAGES, name.encode(), data)
            await self._check_schema(self.vvm_storage, image)
            await self._replace(old, image)
        log.info("%s: deployed from an uploaded image (%d bytes)", name, len(data))
        return result

    def _is_system(self, caller: object) -> bool:
        if self.config.insecure_dev:
            return True
        if isinstance(caller, TokenInfo):
            return caller.payload.is_system and caller.app == CLUSTER_APP
        return caller is SYSTEM

    async def _replace(self, old: DeployedApp | None, image: AppImage) -> None:
        """Stop the old version's partitions (each finishes the commands it accepted), then serve
        the new one."""
        if old is not None:
            for pid in sorted(old.partitions):
                await self.released((image.name, pid), lost=False)
            await old.actualizers.stop()
            unbind_services(old.image.appdef)
            del self.apps[image.name]
        if self.services is not None:
            bind_services(image.appdef, self.services)
        await self._deploy(image)
        app = self.apps[image.name]
        await asyncio.gather(*(self._open_partition(app, pid) for pid in range(app.runtime.num_partitions)))
        await asyncio.gather(*(self._run_partition(app, pid) for pid in range(app.runtime.num_partitions)))

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
        """The images deployed through DeployApp before, except those the command line names
        (it wins; a log line says so)."""
        images: list[AppImage] = []
        async for c_col, data in storage.read(DEPLOYED_IMAGES):
            name = c_col.decode()
            if name in given:
                log.warning("%s: the image given on the command line replaces the one deployed through DeployApp", name)
                continue
            try:
                images.append(_image_from_bytes(name, data))
            except SysError as exc:
                raise ImageError(f"{name}, deployed through DeployApp, cannot be deployed again: {exc}") from None
            given.add(name)
        return images


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
        began = time.perf_counter()
        reply = await self._command(app, wsid, command, body)
        stats = self.stats
        stats.count += 1
        stats.observe(time.perf_counter() - began)
        if reply.status >= 500:
            stats.errors += 1
        return reply

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
