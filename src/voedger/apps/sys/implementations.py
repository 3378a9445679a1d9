"""Every platform implementation of the sys package, registered when this module is imported."""

from voedger.appdef import TypeKind
from voedger.apps.registry import refresh_principal_token
from voedger.apps.sys import blobs, describe, enrich, invites, queries, rename, sqlquery, verifier, workspaces
from voedger.apps.sys.builtins import PROCESSOR_BUILT_INS, not_built, platform

if "sys.RefreshPrincipalToken" not in platform:
    platform.add(TypeKind.Query, "sys.RefreshPrincipalToken", refresh_principal_token)

__all__ = [
    "PROCESSOR_BUILT_INS",
    "blobs",
    "describe",
    "enrich",
    "invites",
    "not_built",
    "platform",
    "queries",
    "rename",
    "sqlquery",
    "verifier",
    "workspaces",
]
