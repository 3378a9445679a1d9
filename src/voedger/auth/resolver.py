"""The auth layer's side of the processors' seam: a validated token (or none) becomes the
principal of the workspace a request addresses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from voedger.appdef import Workspace
from voedger.auth.principals import build_principal, subject_logins
from voedger.auth.tokens import TokenInfo
from voedger.processors.principal import Principal


class TokenResolver:
    """Implements ``processors.principal.PrincipalResolver`` for callers that are a
    :class:`TokenInfo` (a validated token) or None (no token: anonymous)."""

    def subject_logins(self, caller: object) -> Sequence[str]:
        return subject_logins(_token(caller))

    def principal(
        self,
        caller: object,
        wsid: int,
        ws: Workspace,
        descriptor: Mapping[str, Any] | None,
        subjects: Sequence[Mapping[str, Any]],
    ) -> Principal:
        return build_principal(_token(caller), wsid, descriptor=descriptor, subjects=subjects, workspace=ws)


def _token(caller: object) -> TokenInfo | None:
    if caller is None or isinstance(caller, TokenInfo):
        return caller
    raise TypeError(f"a caller must be a validated token or None, not {type(caller).__name__}")
