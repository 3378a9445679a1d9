"""Login aliases and the canonical login's enablement, as Voedger's registry has them.

A login may have one alias, another sign-in identifier of the same application (an e-mail, a
short name): ``q.registry.IssuePrincipalToken`` takes it at the alias's pseudo WSID instead of
the login, and the token still names the login itself (and the alias). Only the System sets them:

- ``c.registry.InitiateSetLoginAlias(Login, AppName, Alias)`` at the login's application
  workspace checks the login and the alias's format and marks the Login (``AliasInProc``);
- the async ``ApplySetLoginAlias`` then, through the federation: ``PutLoginAliasIndex`` at the
  new alias's application workspace (a ``LoginAlias`` record, ``UNIQUE (AppName, Alias)``; 409 if
  the identifier is a login or another login's alias), ``DeactivateLoginAliasIndex`` at the old
  alias's, and last ``c.sys.CUD`` of the Login: ``Alias`` set, or ``AliasError`` if a step was
  refused. An empty Alias clears it. Sign-in by alias checks that the Login still names it, so
  an index written before the Login took the alias admits nobody.
- ``c.registry.SetCanonicalLoginEnablement(Login, AppName, Enabled)``: a login whose
  ``CanonicalLoginDisabled`` signs in only by its alias (the login answers as an unknown one) and
  stays reserved.
"""

from __future__ import annotations

from typing import Any, Final

from voedger.appdef import SYS_ID, SYS_IS_ACTIVE
from voedger.apps.registry._logins import check_app_wsid, check_login_format, expected_app_wsid
from voedger.apps.registry._lookups import (
    LOGIN_ALIAS_TABLE,
    check_identifier_available,
    find_active_alias,
    find_login,
    login_does_not_exist,
)
from voedger.extensions import command, projector
from voedger.state import Intents, State, StateError
from voedger.syserror import SysError

_ANY_STATUS: Final = tuple(range(100, 600))
_TRANSIENT: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_ERROR: Final = 1024


@command("registry.SetCanonicalLoginEnablement")
async def set_canonical_login_enablement(state: State, intents: Intents) -> None:
    arg = state.arg
    login: str = arg["Login"]
    enabled = bool(arg["Enabled"])
    wsid = state.command_context.wsid
    check_app_wsid(login, wsid, state.num_app_workspaces)
    rec = await find_login(state, wsid, arg["AppName"], login)
    if rec is None:
        raise login_does_not_exist(login)
    if "CanonicalLoginDisabled" in rec and bool(rec["CanonicalLoginDisabled"]) is not enabled:
        return  # already so (an absent value is written, as Voedger does)
    intents.update(rec, CanonicalLoginDisabled=not enabled)


@command("registry.InitiateSetLoginAlias")
async def initiate_set_login_alias(state: State, intents: Intents) -> None:
    arg = state.arg
    login: str = arg["Login"]
    alias: str = arg.get("Alias") or ""
    wsid = state.command_context.wsid
    check_app_wsid(login, wsid, state.num_app_workspaces)
    if alias:
        check_login_format(alias)
    rec = await find_login(state, wsid, arg["AppName"], login)
    if rec is None:
        raise login_does_not_exist(login)
    if rec.get("AliasInProc"):
        raise SysError(409, "login alias update is already in progress")
    intents.update(rec, AliasInProc=1)


@command("registry.PutLoginAliasIndex")
async def put_login_alias_index(state: State, intents: Intents) -> None:
    arg = state.arg
    alias: str = arg["Alias"]
    app_name: str = arg["AppName"]
    owner = (int(arg["SourceAppWSID"]), int(arg["CDocLoginID"]))
    wsid = state.command_context.wsid
    check_app_wsid(alias, wsid, state.num_app_workspaces)
    await check_identifier_available(state, wsid, app_name, alias, owner)
    if await find_active_alias(state, app_name, alias) is not None:
        return  # already this login's: a retry
    intents.insert(
        LOGIN_ALIAS_TABLE,
        AppName=app_name,
        SourceAppWSID=owner[0],
        CDocLoginID=owner[1],
        Login=arg["Login"],
        Alias=alias,
    )


@command("registry.DeactivateLoginAliasIndex")
async def deactivate_login_alias_index(state: State, intents: Intents) -> None:
    arg = state.arg
    alias: str = arg["Alias"]
    wsid = state.command_context.wsid
    check_app_wsid(alias, wsid, state.num_app_workspaces)
    rec = await find_active_alias(state, arg["AppName"], alias)
    if rec is None:
        return
    if (int(rec["SourceAppWSID"]), int(rec["CDocLoginID"])) != (int(arg["SourceAppWSID"]), int(arg["CDocLoginID"])):
        raise SysError(409, "login alias belongs to another login")
    intents.update(rec, **{SYS_IS_ACTIVE: False})


@projector("registry.ApplySetLoginAlias")
async def apply_set_login_alias(state: State, intents: Intents) -> None:
    """Carries an InitiateSetLoginAlias out (see the module's docstring). A refusal is written to
    ``Login.AliasError``; an answer a retry may cure (a workspace not reachable now) is retried."""
    ev = state.event
    args = ev.args or {}
    login: str = args.get("Login", "")
    app_name: str = args.get("AppName", "")
    new_alias: str = args.get("Alias") or ""
    rec = await find_login(state, ev.wsid, app_name, login)
    if rec is None:
        return  # deactivated meanwhile: nothing to change
    login_id = int(rec[SYS_ID])
    old_alias: str = rec.get("Alias") or ""
    if new_alias != old_alias:
        index = {"AppName": app_name, "SourceAppWSID": ev.wsid, "CDocLoginID": login_id}
        steps: list[tuple[str, str, dict[str, Any]]] = []
        if new_alias:
            steps.append(("c.registry.PutLoginAliasIndex", new_alias, {**index, "Alias": new_alias, "Login": login}))
        if old_alias:
            steps.append(("c.registry.DeactivateLoginAliasIndex", old_alias, {**index, "Alias": old_alias}))
        for func, alias, call_args in steps:
            target = expected_app_wsid(alias, ev.wsid, state.num_app_workspaces)
            reply = await state.federation_command(state.app_name, target, func, {"args": call_args}, _ANY_STATUS)
            if reply.status == 200:
                continue
            if reply.status in _TRANSIENT:
                raise StateError(f"{func} at workspace {target} answered {reply.status}")
            error = f"{func} failed: {reply.status} {reply.message}"
            await _update_login(state, ev.wsid, login_id, AliasError=error[:_MAX_ERROR], AliasInProc=0)
            return
    await _update_login(state, ev.wsid, login_id, Alias=new_alias, AliasError="", AliasInProc=0)


async def _update_login(state: State, app_wsid: int, login_id: int, **fields: Any) -> None:
    body = {"cuds": [{SYS_ID: login_id, "fields": fields}]}
    await state.federation_command(state.app_name, app_wsid, "c.sys.CUD", body)
