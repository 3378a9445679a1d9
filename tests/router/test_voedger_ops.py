"""Voedger's operations scenarios over HTTP, against a real in-process server (the VVM, its
router through httpx's ASGI transport) restarted on the same SQLite data where Voedger's
scenario restarts its VVM:

- ``impl_recovery_test.go``: IDs issued after a restart do not collide with those issued before.
- ``impl_bootstrap_test.go``: a restart with other NumPartitions or NumAppWorkspaces is refused
  (409 in Voedger's words); ``c.cluster.DeployApp``'s refusals; app workspaces initialized once;
  schema and code that do not match stop the start.
- ``impl_metrics_test.go``: the series after a command, as text (the service's check and its
  404s: ``tests/metrics/test_metrics.py::test_check_answers_ok_and_anything_else_is_a_404``).
- ``db_cert_cache_test.go``: the ACME certificate kept in the server's storage, read back, kept
  over a restart, missing for other domains. No delete here: a certificate is only replaced by
  its renewal (``certificates/store.py``), we do not use Go's autocert cache interface.

Not ported, one line each:

- ``impl_vsqlupdate_test.go``: in ``tests/router/test_vsql_update.py`` (the logged ``update``
  and ``insert``; the other kinds answer 400 here).
- ``reverseproxy_test.go``: our server proxies nothing (no ``--route``, ``--route-rewrite``,
  ``--route-default``, ``--route-domain``); the paths Voedger's scenario forwards are our 404
  (``test_paths_voedger_would_forward_are_not_found_here``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.certificates.test_acme_parts import _certificate
from tests.support import owned_workspace
from voedger.apps.cluster import CLUSTER_APP
from voedger.auth import PrincipalPayload
from voedger.certificates.store import AcmeStore
from voedger.metrics import metrics_app
from voedger.router.app import build_app
from voedger.router.local import LocalTransport
from voedger.structs.wsid import DEFAULT_NUM_APP_WORKSPACES, app_wsid, new_wsid
from voedger.syserror import SysError
from voedger.vvm.image import ImageError
from voedger.vvm.server import VVM, ServerConfig

APP = "test/ops"
PROFILE = new_wsid(1, 400_001)
WS = new_wsid(1, 400_002)
V1 = f"/api/{APP}/{WS}"
CLUSTER_WS = app_wsid(1, 0)
NUM_PARTS, NUM_APP_WS = 3, 4

SCHEMA = """APPLICATION ops();
WORKSPACE OpsWS (
    DESCRIPTOR OpsDesc (Name varchar);
    TABLE Root INHERITS sys.CDoc (
        FldRoot int32,
        Nested TABLE Nested (FldNested int32, Third TABLE Third (Fld1 int32))
    );
    TABLE Receipt INHERITS sys.ODoc (
        Total int32,
        Lines TABLE ReceiptLine (Qty int32, Parts TABLE ReceiptPart (Code int32))
    );
    GRANT ALL ON ALL TABLES TO sys.WorkspaceOwner;
    GRANT EXECUTE ON ALL COMMANDS TO sys.WorkspaceOwner;
    GRANT EXECUTE ON ALL QUERIES TO sys.WorkspaceOwner;
    EXTENSION ENGINE BUILTIN (COMMAND Pay(Receipt, UNLOGGED Receipt););
);
"""

EXT = """from voedger.extensions import command


@command("ops.Pay")
def pay(state, intents):
    pass
"""

# An ODoc with records two levels deep and unlogged arguments, as Voedger's CmdODocOne takes.
PAY = {
    "args": {"sys.ID": 1, "Lines": [{"sys.ID": 2, "sys.ParentID": 1, "Parts": [{"sys.ID": 3, "sys.ParentID": 2}]}]},
    "unloggedArgs": {"sys.ID": 4},
}
# A CDoc with records two levels deep.
TREE = {
    "cuds": [
        {"fields": {"sys.ID": 1, "sys.QName": "ops.Root", "FldRoot": 2}},
        {"fields": {"sys.ID": 2, "sys.QName": "ops.Nested", "sys.ParentID": 1, "sys.Container": "Nested"}},
        {"fields": {"sys.ID": 3, "sys.QName": "ops.Third", "sys.ParentID": 2, "sys.Container": "Third", "Fld1": 42}},
    ]
}


def app_folder(
    root: Path, schema: str = SCHEMA, ext: str = EXT, parts: int = NUM_PARTS, app_ws: int = NUM_APP_WS
) -> Path:
    """A fresh folder of the application (the package is named after its folder)."""
    folder = root / f"v{len(list(root.glob('v*')))}" / "ops"
    folder.mkdir(parents=True)
    (folder / "ops.vsql").write_text(schema)
    (folder / "ops_ext.py").write_text(ext)
    (folder / "descriptor.json").write_bytes(orjson.dumps({"NumParts": parts, "NumAppWorkspaces": app_ws}))
    return folder


async def start_vvm(data: Path, folder: Path) -> VVM:
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{data}", apps=[(APP, folder)]))
    try:
        await vvm.start()
    except BaseException:
        await vvm.stop()
        raise
    return vvm


@dataclass
class Server:
    data: Path
    vvm: VVM
    client: httpx.AsyncClient

    @staticmethod
    async def open(data: Path, folder: Path) -> Server:
        vvm = await start_vvm(data, folder)
        transport = httpx.ASGITransport(app=build_app(vvm, {1: LocalTransport(vvm)}))
        return Server(data, vvm, httpx.AsyncClient(transport=transport, base_url="http://t"))

    async def close(self) -> None:
        """Stop the server (once: a test that stopped it may fail before starting it again)."""
        if not self.client.is_closed:
            await self.client.aclose()
            await self.vvm.stop()

    async def restart(self, folder: Path) -> None:
        """Stop the server and start it again on the same data."""
        await self.close()
        fresh = await Server.open(self.data, folder)
        self.vvm, self.client = fresh.vvm, fresh.client

    def system(self, app: str = APP) -> dict[str, str]:
        assert self.vvm.tokens is not None
        return {"Authorization": f"Bearer {self.vvm.tokens.issue_system(app)}"}

    def owner(self) -> dict[str, str]:
        assert self.vvm.tokens is not None
        token = self.vvm.tokens.issue(APP, PrincipalPayload(login="alice", profile_wsid=PROFILE), timedelta(hours=1))
        return {"Authorization": f"Bearer {token}"}

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.owner() if headers is None else headers)

    async def new_ids(self, path: str, body: dict[str, Any]) -> set[int]:
        r = await self.post(path, body)
        assert r.status_code == 200, r.text
        return {int(v) for v in r.json()["NewIDs"].values()}

    async def deploy_app(self, app: str, parts: int, app_ws: int) -> httpx.Response:
        body = {"args": {"AppQName": app, "NumPartitions": parts, "NumAppWorkspaces": app_ws}}
        return await self.post(f"/api/{CLUSTER_APP}/{CLUSTER_WS}/c.cluster.DeployApp", body, self.system(CLUSTER_APP))

    async def wlog(self, app: str, wsid: int) -> list[dict[str, Any]]:
        body = {"args": {"Query": "select * from sys.wlog"}, "elements": [{"fields": ["Result"]}]}
        r = await self.post(f"/api/{app}/{wsid}/q.sys.SqlQuery", body, self.system(app))
        assert r.status_code == 200, r.text
        sections = r.json().get("sections") or [{"elements": []}]
        return [orjson.loads(e[0][0][0]) for e in sections[0]["elements"]]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    (tmp_path / "data").mkdir()
    s = await Server.open(tmp_path / "data", app_folder(tmp_path))
    try:
        await owned_workspace(s.vvm, APP, PROFILE, WS, "ops.OpsDesc", "ops")
        yield s
    finally:
        await s.close()


def v1_error(r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, r.text
    error = r.json()["sys.Error"]
    assert error["HTTPStatus"] == status and text in error["Message"], error


# --- impl_recovery_test.go ---------------------------------------------------------------------


async def test_ids_issued_after_a_restart_do_not_collide(tmp_path: Path, server: Server) -> None:
    """TestCorrectIDsIssueAfterRecovery: an ODoc with records and unlogged arguments, then a
    CDoc tree; after a restart the same CDoc tree again gets new IDs (Voedger's ID generator
    must be restored at recovery; ours continues the workspace's sequences)."""
    before = await server.new_ids(f"{V1}/c.ops.Pay", PAY)
    assert len(before) == 3  # the ODoc and its two records; the unlogged arguments are not stored
    tree = await server.new_ids(f"{V1}/c.sys.CUD", TREE)
    assert len(tree) == 3 and not tree & before
    before |= tree

    await server.restart(app_folder(tmp_path))

    after = await server.new_ids(f"{V1}/c.sys.CUD", TREE)
    assert len(after) == 3 and not after & before and min(after) > max(before)
    paid = await server.new_ids(f"{V1}/c.ops.Pay", PAY)
    assert len(paid) == 3 and not paid & (before | after)
    # what was written before the restart is read back under its IDs
    root = min(tree)
    r = await server.client.get(f"/api/v2/apps/{APP}/workspaces/{WS}/docs/ops.Root/{root}", headers=server.owner())
    assert r.status_code == 200 and r.json()["FldRoot"] == 2, r.text


# --- impl_bootstrap_test.go --------------------------------------------------------------------


async def test_a_restart_with_other_numbers_is_refused(tmp_path: Path, server: Server) -> None:
    """TestBoostrap_BasicUsage: the application deployed with its NumPartitions and
    NumAppWorkspaces bootstraps again with the same; another NumPartitions or NumAppWorkspaces
    stops the start with Voedger's 409 (Voedger's bootstrap panics with it); nothing is lost."""
    tree = await server.new_ids(f"{V1}/c.sys.CUD", TREE)
    await server.restart(app_folder(tmp_path))  # the same numbers: bootstraps again
    await server.close()

    cases = [
        (
            {"parts": NUM_PARTS + 1},
            f"num partitions changed: app {APP} declaring NumPartitions={NUM_PARTS + 1} "
            f"but was previously deployed with NumPartitions={NUM_PARTS}",
        ),
        (
            {"app_ws": NUM_APP_WS + 1},
            f"num application workspaces changed: app {APP} declaring NumAppWorkspaces={NUM_APP_WS + 1} "
            f"but was previously deployed with NumAppWorkspaces={NUM_APP_WS}",
        ),
    ]
    for changed, message in cases:
        with pytest.raises(SysError) as refused:
            await start_vvm(server.data, app_folder(tmp_path, **changed))
        assert refused.value.status == 409 and refused.value.message == message

    fresh = await Server.open(server.data, app_folder(tmp_path))
    server.vvm, server.client = fresh.vvm, fresh.client
    r = await server.client.get(f"/api/v2/apps/{APP}/workspaces/{WS}/docs/ops.Root/{min(tree)}", headers=server.owner())
    assert r.status_code == 200 and r.json()["FldRoot"] == 2, r.text


async def test_deploy_app_refusals(server: Server) -> None:
    """TestDeployAppErrors, c.cluster.DeployApp with sys/cluster's System token."""
    # sys/cluster itself is not deployed by DeployApp
    v1_error(
        await server.deploy_app(CLUSTER_APP, 1, 1), 400, "sys/cluster app can not be deployed by c.cluster.DeployApp"
    )
    # other numbers than the deployed ones: 409, nothing created
    for parts, app_ws, message in (
        (NUM_PARTS + 1, NUM_APP_WS, "num partitions changed"),
        (NUM_PARTS, NUM_APP_WS + 1, "num application workspaces changed"),
    ):
        r = await server.deploy_app(APP, parts, app_ws)
        v1_error(r, 409, message)
        assert "NewIDs" not in r.json()
    # a name that is not an application's
    v1_error(await server.deploy_app("wrong", 1, 1), 400, "failed to parse AppQName wrong")
    # the deployed numbers again: nothing to do
    r = await server.deploy_app(APP, NUM_PARTS, NUM_APP_WS)
    assert r.status_code == 200 and not r.json().get("NewIDs"), r.text


async def test_app_workspaces_are_initialized_once(tmp_path: Path, server: Server) -> None:
    """TestAppWSInitIndempotency: every app workspace of every application has its workspace
    descriptor; a restart initializes none of them again."""
    numbers = {CLUSTER_APP: 1, "sys/registry": DEFAULT_NUM_APP_WORKSPACES, APP: NUM_APP_WS}

    async def descriptors() -> dict[tuple[str, int], list[dict[str, Any]]]:
        found: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for app, count in numbers.items():
            for n in range(count):
                events = await server.wlog(app, app_wsid(1, n))
                found[(app, n)] = [
                    cud for e in events for cud in e["CUDs"] if cud["sys.QName"] == "sys.WorkspaceDescriptor"
                ]
        return found

    first = await descriptors()
    for (app, n), cuds in first.items():
        assert len(cuds) == 1 and cuds[0]["IsNew"], (app, n, cuds)
        assert cuds[0]["fields"]["WSKind"] == "sys.AppWorkspace" and cuds[0]["fields"]["WSName"] == f"appWS{n}"
    await server.restart(app_folder(tmp_path))
    assert await descriptors() == first


@pytest.mark.parametrize(
    ("schema", "ext", "messages"),
    [
        pytest.param(
            SCHEMA.replace(
                "COMMAND Pay(Receipt, UNLOGGED Receipt);", "COMMAND Pay(Receipt, UNLOGGED Receipt); COMMAND Missing();"
            ),
            EXT,
            ("ops.Missing: command declared in VSQL has no Python implementation",),
            id="in vsql, not in code",
        ),
        pytest.param(
            SCHEMA,
            EXT + '\n\n@command("ops.Extra")\ndef extra(state, intents):\n    pass\n',
            ("ops.Extra: command ops.Extra", "is not declared in VSQL"),
            id="in code, not in vsql",
        ),
    ],
)
async def test_schema_and_code_must_match_at_start(
    tmp_path: Path, schema: str, ext: str, messages: tuple[str, ...]
) -> None:
    """TestVVMLaunch_VSQLCodeMismatch: the server does not start (Voedger: ErrDeployment)."""
    (tmp_path / "data").mkdir()
    with pytest.raises(ImageError) as refused:
        await start_vvm(tmp_path / "data", app_folder(tmp_path, schema, ext))
    for message in ("schema and code do not match", *messages):
        assert message in str(refused.value)


# --- impl_metrics_test.go ----------------------------------------------------------------------


async def test_metrics_after_a_command(server: Server) -> None:
    """TestBasicUsage_Metrics and TestCommandProcessorMetrics: the text carries the application
    label first, and the command processor's series after a command."""
    await server.new_ids(f"{V1}/c.sys.CUD", TREE)
    transport = httpx.ASGITransport(app=metrics_app(server.vvm, "node-1"))
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as metrics:
        r = await metrics.get("/metrics")
    assert r.status_code == 200 and '{app="' in r.text
    for name in ("voedger_cp_commands_total", "voedger_cp_commands_seconds", "voedger_cp_exec_seconds"):
        assert f'{name}{{app="{APP}",' in r.text, name
    assert "voedger_cp_projectors_seconds" in r.text


# --- db_cert_cache_test.go ---------------------------------------------------------------------


async def test_a_certificate_is_kept_in_the_servers_storage(tmp_path: Path, server: Server) -> None:
    """TestBasicUsage_db_cache: written by domain, read back, still there after a restart;
    a domain nothing was stored for is a miss."""
    directory, domain = "https://acme.test/directory", "test.domain.com"

    def store(domains: list[str]) -> AcmeStore:
        assert server.vvm.vvm_storage is not None
        return AcmeStore(server.vvm.vvm_storage, directory, domains)

    certificate = _certificate(domain)
    assert await store([domain]).certificate() is None
    await store([domain]).save_certificate(certificate)
    assert await store([domain]).certificate() == certificate

    await server.restart(app_folder(tmp_path))
    assert await store([domain]).certificate() == certificate
    assert await store(["other.domain.com"]).certificate() is None


# --- reverseproxy_test.go ----------------------------------------------------------------------


async def test_paths_voedger_would_forward_are_not_found_here(server: Server) -> None:
    """Voedger forwards these to the routes it is configured with; ours has none: 404."""
    for path in ("/grafana/foo", "/grafana/foo/bar/", "/grafana-rewrite/foo", "/unknown/foo"):
        v1_error(await server.client.post(path, content=b"world"), 404, "no such endpoint")
    v1_error(
        await server.client.post("/api/untill/airs-bp//c.air.StoreSubscriptionProfile", content=b"world"),
        404,
        "no such endpoint",
    )
