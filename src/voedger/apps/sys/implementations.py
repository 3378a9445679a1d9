"""Every platform implementation of the sys package, registered when this module is imported."""

from voedger.apps.sys import queries, workspaces
from voedger.apps.sys.builtins import PROCESSOR_BUILT_INS, not_built, platform

__all__ = ["PROCESSOR_BUILT_INS", "not_built", "platform", "queries", "workspaces"]
