"""The registry's extensions: creating logins, changing passwords and global roles, signing in,
and asking the target application for a login's profile workspace.

Every function runs in the registry's application workspace that keeps the login (the router
turns the login's pseudo WSID into it). Passwords arrive as unlogged arguments of commands (never
in an event) or as an argument of a query (never logged); only their bcrypt hashes are stored.
"""

from __future__ import annotations

from typing import Any, Final

from voedger.appdef import SYS_ID, QName, QNameError
from voedger.apps.registry._logins import (
    LOGIN_IDX,
    LOGIN_TABLE,
    check_app_name,
    check_app_wsid,
    check_login_format,
    check_new_password,
    decode_pwd_hash,
    encode_pwd_hash,
    hash_password,
    login_hash,
    login_idx_key,
    password_matches,
    profile_kind,
    profile_ws_name,
)
from voedger.apps.registry._lookups import (
    aliased_login,
    check_identifier_available,
    find_active_alias,
    find_login,
    login_does_not_exist,
)
from voedger.apps.registry._services import bound_services, services_of
from voedger.auth.attempts import PasswordGuard
from voedger.auth.principals import parse_roles
from voedger.auth.tokens import PrincipalPayload, SubjectKind, principal_token_ttl
from voedger.extensions import command, projector, query
from voedger.state import Intents, State, StateError
from voedger.structs import wsid as ws
from voedger.syserror import SysError

_LOGIN_OR_PASSWORD: Final = "login or password is incorrect"
_MAX_CLUSTER_ID: Final = 0xFFFF
_ANY_STATUS: Final = tuple(range(100, 600))
_TRANSIENT: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
"""Answers of the target application that a retry may cure (Voedger's federation retries them)."""


def _guard(state: State) -> PasswordGuard | None:
    services = bound_services(state.app)
    return services.guard if services is not None else None


@command("registry.CreateLogin")
async def create_login(state: State, intents: Intents) -> None:
    await _create_login(state, intents, state.arg["Login"])


@command("registry.CreateEmailLogin")
async def create_email_login(state: State, intents: Intents) -> None:
    """CreateLogin with the e-mail a verified value token proves as the login. The token must be
    for this application, for ``registry.CreateEmailLoginParams.Email``, of the e-mail kind (as
    Voedger checks a VERIFIABLE field)."""
    # Email is VERIFIABLE: the command processor has checked the token (issued for this field) and
    # put the e-mail it proves in its place.
    await _create_login(state, intents, state.arg["Email"])


async def _create_login(state: State, intents: Intents, login: str) -> None:
    ctx = state.command_context
    arg = state.arg
    app_name: str = arg["AppName"]
    subject_kind: int = arg["SubjectKind"]
    if profile_kind(subject_kind) is None:
        raise SysError(400, f"SubjectKind must be {int(SubjectKind.USER)} (user) or {int(SubjectKind.DEVICE)} (device)")
    check_app_name(app_name)
    services = bound_services(state.app)
    if services is not None and services.apps is not None and services.apps(app_name) is None:
        raise SysError(400, f"target app {app_name} is not found")
    check_app_wsid(login, ctx.wsid, state.num_app_workspaces)
    check_login_format(login)
    profile_cluster: int = arg["ProfileCluster"]
    if not 0 < profile_cluster <= _MAX_CLUSTER_ID:
        raise SysError(400, f"ProfileCluster must be from 1 to {_MAX_CLUSTER_ID}")
    if not state.cluster_known(profile_cluster):
        # The Login records it and the profile is asked for there: a cluster the federation
        # does not have could never make it, so say so now.
        raise SysError(400, f"cluster {profile_cluster} is not known to this federation")
    password: str = (ctx.unlogged_arg or {}).get("Password", "")
    check_new_password(password)
    await check_identifier_available(state, ctx.wsid, app_name, login)
    fields: dict[str, Any] = {
        "ProfileCluster": profile_cluster,
        "PwdHash": encode_pwd_hash(await hash_password(password)),
        "AppName": app_name,
        "SubjectKind": subject_kind,
        "LoginHash": login_hash(login),
    }
    if arg.get("WSKindInitializationData"):
        fields["WSKindInitializationData"] = arg["WSKindInitializationData"]
    intents.insert(LOGIN_TABLE, **fields)


@command("registry.ChangePassword")
async def change_password(state: State, intents: Intents) -> None:
    ctx = state.command_context
    arg = state.arg
    unlogged = ctx.unlogged_arg or {}
    login: str = arg["Login"]
    app_name: str = arg["AppName"]
    guard = _guard(state)
    if guard is not None:
        guard.check(app_name, login, ctx.ip, change=True)
    rec = await find_login(state, ctx.wsid, app_name, login)
    if rec is None:
        if guard is not None:
            guard.failed(app_name, login, ctx.ip, change=True)
        raise login_does_not_exist(login)
    if not await password_matches(decode_pwd_hash(rec.get("PwdHash")), unlogged.get("OldPassword", "")):
        if guard is not None:
            guard.failed(app_name, login, ctx.ip, change=True)
        raise SysError(401, "password is incorrect")
    if guard is not None:
        guard.succeeded(app_name, login)
    intents.update(rec, PwdHash=encode_pwd_hash(await hash_password(unlogged.get("NewPassword", ""))))


@command("registry.UpdateGlobalRoles")
async def update_global_roles(state: State, intents: Intents) -> None:
    arg = state.arg
    roles: str = arg.get("GlobalRoles") or ""
    if roles:
        for role in roles.split(","):
            try:
                QName.parse(role)
            except QNameError as exc:
                raise SysError(400, f"GlobalRoles: {exc}") from None
    login: str = arg["Login"]
    rec = await find_login(state, state.command_context.wsid, arg["AppName"], login)
    if rec is None:
        raise login_does_not_exist(login)
    intents.update(rec, GlobalRoles=roles)


@query("registry.IssuePrincipalToken")
async def issue_principal_token(state: State, intents: Intents) -> None:
    """Sign in by the login itself (unless its CanonicalLoginDisabled) or by its active alias
    (found here, at the alias's application workspace; its Login read where it lives). Either way
    the token names the login itself, and its alias."""
    arg = state.arg
    login: str = arg["Login"]
    app_name: str = arg["AppName"]
    ctx = state.query_context
    guard = _guard(state)
    if guard is not None:
        guard.check(app_name, login, ctx.ip)  # before the password is looked at
    canonical = login
    rec = await find_login(state, ctx.wsid, app_name, login)
    if rec is not None:
        if rec.get("CanonicalLoginDisabled"):
            rec = None  # answered as an unknown login
    else:
        alias = await find_active_alias(state, app_name, login)
        if alias is not None:
            rec = await aliased_login(state, alias, login)
            canonical = str(alias["Login"])
    pwd_hash = decode_pwd_hash(rec.get("PwdHash")) if rec is not None else None
    if not await password_matches(pwd_hash, arg["Password"]) or rec is None:
        if guard is not None:
            guard.failed(app_name, login, ctx.ip)
        raise SysError(401, _LOGIN_OR_PASSWORD)
    if guard is not None:
        guard.succeeded(app_name, login)
    profile_wsid = int(rec.get("WSID") or 0)
    ws_error: str = rec.get("WSError") or ""
    if profile_wsid == 0 or ws_error:
        intents.result(PrincipalToken="", WSID=profile_wsid, WSError=ws_error)
        return
    ttl = principal_token_ttl(int(arg.get("TTLHours") or 0))
    payload = PrincipalPayload(
        login=canonical,
        alias=str(rec.get("Alias") or ""),
        subject_kind=int(rec.get("SubjectKind") or SubjectKind.USER),
        profile_wsid=profile_wsid,
        global_roles=parse_roles(rec.get("GlobalRoles") or ""),
    )
    token = services_of(state).tokens.issue(app_name, payload, ttl)
    intents.result(PrincipalToken=token, WSID=profile_wsid, WSError="")


@projector("registry.ProjectorLoginIdx")
def project_login_idx(state: State, intents: Intents) -> None:
    ev = state.event
    for cud in ev.cuds:
        if cud.is_new and cud.qname == LOGIN_TABLE:
            f = cud.fields
            key = login_idx_key(f["AppName"], f["LoginHash"])
            intents.put_view(LOGIN_IDX, AppWSID=ev.wsid, AppIDLoginHash=key, CDocLoginID=cud.id)


@projector("registry.InvokeCreateWorkspaceID_registry")
async def invoke_create_workspace_id(state: State, intents: Intents) -> None:
    """Ask the target application for the login's profile: ``c.sys.CreateWorkspaceID`` in its
    application workspace for the profile's name. The chain that follows reports the profile's
    WSID (or error) back to the Login through ``c.sys.CUD``. A refusal that a retry cannot cure
    is written to ``Login.WSError`` at once; anything else is retried."""
    ev = state.event
    for cud in ev.cuds:
        if not cud.is_new or cud.qname != LOGIN_TABLE:
            continue
        f = cud.fields
        kind = profile_kind(int(f.get("SubjectKind") or 0))
        if kind is None:
            await _report_error(state, ev.wsid, cud.id, f"unsupported Login.SubjectKind {f.get('SubjectKind')}")
            continue
        target_app: str = f["AppName"]
        cluster = int(f["ProfileCluster"])
        ws_name = profile_ws_name(f["LoginHash"])
        services = bound_services(state.app)
        num_app_ws = state.num_app_workspaces
        if services is not None and services.apps is not None:
            deployed = services.apps(target_app)
            if deployed is None:
                raise StateError(f"target application {target_app} is not deployed (yet)")
            num_app_ws = deployed
        target = ws.pseudo_to_app_wsid(ws.pseudo_wsid(ws_name, cluster), num_app_ws, cluster)
        args: dict[str, Any] = {
            "OwnerWSID": ev.wsid,
            "OwnerQName2": LOGIN_TABLE,
            "OwnerID": cud.id,
            "OwnerApp": state.app_name,
            "WSName": ws_name,
            "WSKind": kind,
        }
        if f.get("WSKindInitializationData"):
            args["WSKindInitializationData"] = f["WSKindInitializationData"]
        reply = await state.federation_command(
            target_app, target, "c.sys.CreateWorkspaceID", {"args": args}, expected=_ANY_STATUS
        )
        if reply.status in (200, 409):
            continue
        if reply.status in _TRANSIENT:
            raise StateError(f"c.sys.CreateWorkspaceID at {target_app} workspace {target} answered {reply.status}")
        await _report_error(state, ev.wsid, cud.id, f"c.sys.CreateWorkspaceID failed: {reply.status} {reply.message}")


async def _report_error(state: State, app_wsid: int, login_id: int, error: str) -> None:
    body = {"cuds": [{SYS_ID: login_id, "fields": {"WSError": error[:1024]}}]}
    await state.federation_command(state.app_name, app_wsid, "c.sys.CUD", body)
