"""``q.sys.RefreshPrincipalToken``: a fresh token for the caller, with the same payload and TTL.

It is a query of the sys package (``sys.ProfileWS``, granted to ProfileOwner), so the platform
implements it, not the registry; it lives here because it shares the registry's token issuer.
Register it with the platform's implementations::

    platform.add(TypeKind.Query, "sys.RefreshPrincipalToken", refresh_principal_token)

It reads the caller's token from the query context's principal (Voedger reads it from the
``sys.RequestSubject`` storage): ``state.query_context.principal["token"]``, either the
:class:`~voedger.auth.tokens.TokenInfo` the edge validated or the raw token text.
"""

from __future__ import annotations

from datetime import timedelta

from voedger.apps.registry._services import services_of
from voedger.auth.errors import TokenError, TokenErrorKind
from voedger.auth.tokens import MAX_PRINCIPAL_TOKEN_TTL, TokenInfo
from voedger.state import Intents, State

__all__ = ["refresh_principal_token"]


async def refresh_principal_token(state: State, intents: Intents) -> None:
    caller = state.query_context.principal.get("token")
    tokens = services_of(state).tokens
    app = state.app_name
    if isinstance(caller, TokenInfo):
        if caller.app != app:
            raise TokenError(TokenErrorKind.WRONG_APP, "token issued for another application")
        ttl = min(max(caller.duration, timedelta(seconds=1)), MAX_PRINCIPAL_TOKEN_TTL)
        fresh = tokens.issue(app, caller.payload, ttl)
    elif isinstance(caller, str) and caller:
        fresh = tokens.refresh(app, caller)
    else:
        raise TokenError(TokenErrorKind.MALFORMED, "a principal token is required to refresh it")
    intents.result(NewPrincipalToken=fresh)
