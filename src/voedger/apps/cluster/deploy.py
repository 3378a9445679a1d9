"""The cluster application's extensions: deploying an application is idempotent, and refuses a
change of the numbers that place data (partitions, application workspaces)."""

from __future__ import annotations

from voedger.apps.cluster import CLUSTER_APP, numbers_changed
from voedger.extensions import command, projector
from voedger.state import Intents, State
from voedger.syserror import SysError
from voedger.vvm.image import APP_NAME

DEPLOYED = "cluster.DeployedApps"


@command("cluster.DeployApp")
async def deploy_app(state: State, intents: Intents) -> None:
    arg = state.arg
    name = arg["AppQName"]
    # As Voedger's: a name that is no application's and sys/cluster itself (deployed by every
    # process at start, with fixed numbers) are refused before anything is recorded.
    if not APP_NAME.fullmatch(name):
        raise SysError(400, f"failed to parse AppQName {name}: it must look like owner/app")
    if name == CLUSTER_APP:
        raise SysError(400, f"{CLUSTER_APP} app can not be deployed by c.cluster.DeployApp")
    known = await state.view(DEPLOYED, Part=0, AppQName=name)
    if known is None:
        intents.insert(
            "cluster.App",
            AppQName=name,
            NumPartitions=arg["NumPartitions"],
            NumAppWorkspaces=arg["NumAppWorkspaces"],
        )
        return
    for field in ("NumPartitions", "NumAppWorkspaces"):
        if known[field] != arg[field]:
            raise numbers_changed(name, field, arg[field], known[field])


@projector("cluster.DeployedAppsProjector")
def deployed_apps(state: State, intents: Intents) -> None:
    for cud in state.event.cuds:
        if cud.is_new and cud.qname == "cluster.App":
            f = cud.fields
            intents.put_view(
                DEPLOYED,
                Part=0,
                AppQName=f["AppQName"],
                AppID=cud.id,
                NumPartitions=f["NumPartitions"],
                NumAppWorkspaces=f["NumAppWorkspaces"],
            )
