"""Errors of the state layer."""

from __future__ import annotations

from voedger.syserror import SysError


class StateError(SysError):
    """An extension used a storage it did not declare, or one its kind may not use."""

    def __init__(self, message: str) -> None:
        super().__init__(500, message)
