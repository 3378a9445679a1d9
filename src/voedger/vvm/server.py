"""The server process (Voedger's VVM): deploys the cluster application and the configured
applications, starts one writer per partition, bootstraps application workspaces, and stops
cleanly, finishing what it has accepted."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voedger.appdef import QName
from voedger.apps.cluster import CLUSTER_APP, CLUSTER_APP_DIR
from voedger.apps.registry import REGISTRY_APP, REGISTRY_APP_DIR, AuthServices, bind_services, unbind_services
from voedger.apps.sys.implementations import not_built, platform
from voedger.apps.sys.mail import Mailer
from voedger.auth import ACL, Limiter, StorageSecretStore, TokenError, Tokens, jwt_secret
from voedger.auth.resolver import TokenResolver
from voedger.clock import SYSTEM_CLOCK, Clock
from voedger.processors.actualizers import Actualizers
from voedger.processors.app import AppRuntime
from voedger.processors.command import WS_DESCRIPTOR, CommandRequest, CommandResult, Partition
from voedger.processors.jobs import JobScheduler
from voedger.processors.principal import SYSTEM, AllowAll, Authorizer, DirectResolver, PrincipalResolver
from voedger.processors.query import ApiPath, QueryProcessor, QueryRequest
from voedger.state.federation import Federation, FederationReply
from voedger.storage import StorageProvider, open_storage
from voedger.structs.pending import Pending
from voedger.structs.records import get_record
from voedger.structs.singletons import load_singleton_ids
from voedger.structs.wsid import MAIN_CLUSTER_ID, app_wsid, partition_of
from voedger.syserror import SysError
from voedger.vvm.federation import HttpFederation
from voedger.vvm.image import AppImage, load_image
from voedger.vvm.stats import ProcessorStats

log = logging.getLogger("voedger.vvm")

APP_WORKSPACE_KIND = "sys.AppWorkspace"
VVM_APP = "sys/vvm"
VERIFIED_VALUE_AUDIENCE = "payloads.VerifiedValuePayload"
"""Not an application: the storage of the server processes' own state (secrets, leases)."""


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
        return self.partitions[partition_of(wsid, self.runtime.num_partitions)]


class VVM:
    """One server process of a cluster."""

    def __init__(self, config: ServerConfig, authorizer: Authorizer | None = None) -> None:
        self.config = config
        if authorizer is None:
            authorizer = AllowAll() if config.insecure_dev else ACL()
        self.authorizer: Authorizer = authorizer
        self.resolver: PrincipalResolver = DirectResolver() if config.insecure_dev else TokenResolver()
        self.tokens: Tokens | None = None
        self.federation: Federation = LocalFederation(self)
        """Signs and checks principal tokens; the secret is shared through storage by all nodes."""
        self.apps: dict[str, DeployedApp] = {}
        self.provider: StorageProvider | None = None
        self.started = asyncio.Event()

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.provider = open_storage(self.config.storage_url, self.config.clock)
        await self.provider.open()
        vvm_storage = await self.provider.app_storage(VVM_APP)
        self.tokens = Tokens(await jwt_secret(StorageSecretStore(vvm_storage)), self.config.clock)
        if self.config.federation_url and not self.config.insecure_dev:
            self.federation = HttpFederation(self.config.federation_url, self.tokens)
        images = [load_image(CLUSTER_APP, CLUSTER_APP_DIR)]
        images[0] = dataclasses.replace(images[0], num_partitions=1, num_app_workspaces=1)
        images.append(load_image(REGISTRY_APP, REGISTRY_APP_DIR))
        names = {CLUSTER_APP, REGISTRY_APP}
        for name, directory in self.config.apps:
            if name in names:
                raise ValueError(f"application {name} is given twice")
            names.add(name)
            images.append(load_image(name, directory))
        services = AuthServices(self.tokens, apps=self._num_app_workspaces, mailer=self.config.mailer)
        for image in images:
            bind_services(image.appdef, services)  # token issuing for sign-in and refresh
            await self._deploy(image)
        await self._bootstrap()
        self.started.set()

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
            verify_value=self._value_verifier(image.name),
            templates=image.templates,
        )
        partitions = {i: Partition(runtime, i) for i in range(image.num_partitions)}
        await asyncio.gather(*(p.start() for p in partitions.values()))
        actualizers = Actualizers(runtime, partitions)
        await actualizers.start()
        jobs = [JobScheduler(runtime, pid) for pid in partitions]
        for scheduler in jobs:
            await scheduler.start()
        self.apps[image.name] = DeployedApp(image, runtime, partitions, actualizers, QueryProcessor(runtime), jobs)
        missing = not_built(image.appdef)
        if missing:
            log.info("%s: %d sys extensions are not built yet (calls answer 501)", image.name, len(missing))
            log.debug("%s: not built: %s", image.name, ", ".join(map(str, missing)))

    async def _bootstrap(self) -> None:
        """Deploy every application through sys/cluster, then make its app workspaces."""
        cluster = self.apps[CLUSTER_APP]
        await self._init_app_workspaces(cluster)
        cluster_ws = app_wsid(self.config.cluster_id, 0)
        for name, app in self.apps.items():
            if name == CLUSTER_APP:
                continue
            body = {
                "args": {
                    "AppQName": name,
                    "NumPartitions": app.runtime.num_partitions,
                    "NumAppWorkspaces": app.runtime.num_app_workspaces,
                }
            }
            await cluster.partition(cluster_ws).submit(
                CommandRequest(cluster_ws, QName("cluster", "DeployApp"), body, SYSTEM)
            )
            await self._init_app_workspaces(app)

    async def _init_app_workspaces(self, app: DeployedApp) -> None:
        rt = app.runtime
        descriptor_id = rt.singleton_ids[WS_DESCRIPTOR]
        for n in range(rt.num_app_workspaces):
            wsid = app_wsid(self.config.cluster_id, n)
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

    def _num_app_workspaces(self, name: str) -> int | None:
        app = self.apps.get(name)
        return app.runtime.num_app_workspaces if app is not None else None

    async def stop(self) -> None:
        """Finish every accepted command, then release storage."""
        for app in self.apps.values():
            for scheduler in app.jobs:
                await scheduler.stop()
            await app.actualizers.stop()
        for app in self.apps.values():
            await asyncio.gather(*(p.stop() for p in app.partitions.values()))
        for app in self.apps.values():
            unbind_services(app.image.appdef)
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
        """Run a command; ``table`` is the table an API v2 URL names for the records it updates."""
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


class LocalFederation:
    """Calls between workspaces and applications of this process, as the System principal.

    The federation of several clusters replaces it with calls over HTTP carrying system tokens;
    the extensions that use it do not change.
    """

    def __init__(self, vvm: VVM) -> None:
        self.vvm = vvm

    async def command(self, app: str, wsid: int, command: str, body: dict[str, Any]) -> FederationReply:
        name = command.removeprefix("c.")
        try:
            qname = QName.parse(name)
            result = await self.vvm.command(app, wsid, qname, body, SYSTEM)
        except SysError as err:
            return FederationReply(err.status, err.message)
        except ValueError as err:
            return FederationReply(400, str(err))
        return FederationReply(200, "", result.new_ids, result.result, result.wlog_offset)
