"""The cluster application's extensions: deploying an application is idempotent, and refuses a
change of the numbers that place data (partitions, application workspaces)."""

from __future__ import annotations

from voedger.extensions import command, projector
from voedger.state import Intents, State
from voedger.syserror import SysError

DEPLOYED = "cluster.DeployedApps"


@command("cluster.DeployApp")
async def deploy_app(state: State, intents: Intents) -> None:
    arg = state.arg
    name = arg["AppQName"]
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
            raise SysError(
                409,
                f"application {name} is deployed with {field}={known[field]}; "
                f"it cannot be redeployed with {field}={arg[field]}",
            )


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
