"""The ``sys/cluster`` application: VSQL plus the Python of its extensions, in this folder."""

from __future__ import annotations

from pathlib import Path

from voedger.syserror import SysError

CLUSTER_APP = "sys/cluster"
CLUSTER_APP_DIR = Path(__file__).parent

_CHANGED = {"NumPartitions": "num partitions changed", "NumAppWorkspaces": "num application workspaces changed"}


def numbers_changed(app: str, field: str, declared: int, deployed: int) -> SysError:
    """The 409 of a deploy that changes ``field`` (NumPartitions or NumAppWorkspaces), in
    Voedger's words: data already placed by the deployed number would no longer be found."""
    return SysError(
        409,
        f"{_CHANGED[field]}: app {app} declaring {field}={declared} "
        f"but was previously deployed with {field}={deployed}",
    )
