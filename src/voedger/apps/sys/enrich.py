"""``q.sys.EnrichPrincipalToken``: the caller's token again, carrying the roles the caller has in
this workspace, so that they count in its child workspaces too (a token's role applies in a
workspace whose owner is the role's WSID). Voedger's query; its ``Login`` argument is not used."""

from __future__ import annotations

from dataclasses import replace

from voedger.appdef import QName
from voedger.apps.registry._services import services_of
from voedger.apps.sys.builtins import platform
from voedger.auth.errors import TokenError, TokenErrorKind
from voedger.auth.tokens import DEFAULT_PRINCIPAL_TOKEN_TTL, RoleInWorkspace, TokenInfo
from voedger.state import Intents, State

__all__ = ["enrich_principal_token"]


@platform.query("sys.EnrichPrincipalToken")
async def enrich_principal_token(state: State, intents: Intents) -> None:
    ctx = state.query_context
    caller = ctx.principal.get("token")
    tokens = services_of(state).tokens
    app = state.app_name
    if isinstance(caller, str) and caller:
        caller = tokens.validate(app, caller)
    if not isinstance(caller, TokenInfo):
        raise TokenError(TokenErrorKind.MALFORMED, "a principal token is required to enrich it")
    if caller.app != app:
        raise TokenError(TokenErrorKind.WRONG_APP, "token issued for another application")
    payload = caller.payload
    roles = list(payload.roles)
    for role in sorted(ctx.principal.get("roles") or (), key=str):
        if not isinstance(role, QName):
            continue
        item = RoleInWorkspace(ctx.wsid, role)
        if item not in roles:
            roles.append(item)
    enriched = tokens.issue(app, replace(payload, roles=tuple(roles)), DEFAULT_PRINCIPAL_TOKEN_TTL)
    intents.result(EnrichedToken=enriched)
