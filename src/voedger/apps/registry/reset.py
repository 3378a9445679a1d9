"""Resetting a forgotten password by e-mail, as Voedger's registry does, in the application
workspace of the identifier (its pseudo WSID), without a token:

1. ``q.registry.InitiateResetPasswordByEmail(AppName, Email, Language)`` takes the login or its
   active alias (``Email``), mails a code to it and answers a verification token, the login's
   profile WSID and the pseudo WSID of the login itself (``CanonicalPseudoWSID``, where step 3
   goes). A login whose ``CanonicalLoginDisabled`` answers as an unknown one (its alias still
   works); an alias counts only while its Login is active and names it;
2. ``q.registry.IssueVerifiedValueTokenForResetPassword(VerificationToken, VerificationCode,
   ProfileWSID, AppName)``, at the same pseudo WSID, trades token and code for a verified value
   token; for an alias that token proves the login itself;
3. ``c.registry.ResetPasswordByEmail(AppName; unlogged Email, NewPwd)`` at the login's pseudo
   WSID takes that token in ``Email`` (VERIFIABLE: the command processor checks it and puts the
   proven login in its place) and sets the new password, whether or not the login is disabled
   as a sign-in identifier meanwhile.

Voedger routes steps 1 and 2 through the login's profile (``q.sys.InitiateEmailVerification``
there, ForRegistry); here the registry mails and verifies itself, with the same tokens.
"""

from __future__ import annotations

from typing import Any, Final

from voedger.apps.registry._logins import (
    MAX_LOGIN_LENGTH,
    check_app_name,
    check_new_password,
    encode_pwd_hash,
    hash_password,
)
from voedger.apps.registry._lookups import aliased_login, find_active_alias, find_login
from voedger.apps.sys.verifier import (
    check_email,
    issue_verified_payload,
    send_verification_code,
    verified_payload,
)
from voedger.extensions import command, query
from voedger.state import Intents, State
from voedger.structs import wsid as ws
from voedger.syserror import SysError

REGISTRY_APP: Final = "sys/registry"
ENTITY: Final = "registry.ResetPasswordByEmailUnloggedParams"
FIELD: Final = "Email"
ERR_LOGIN_DOES_NOT_EXIST: Final = "login does not exist"


async def _reset_target(state: State, wsid: int, app_name: str, identifier: str) -> tuple[int, str]:
    """The profile WSID and the login itself that ``identifier`` (a login or an active alias,
    kept in this application workspace) resets; 400 as an unknown login otherwise."""
    rec: dict[str, Any] | None
    found = await find_login(state, wsid, app_name, identifier)
    if found is not None:
        if found.get("CanonicalLoginDisabled"):
            raise SysError(400, ERR_LOGIN_DOES_NOT_EXIST)
        rec, login = dict(found), identifier
    else:
        alias = await find_active_alias(state, app_name, identifier)
        rec = await aliased_login(state, alias, identifier) if alias is not None else None
        if alias is None or rec is None:
            raise SysError(400, ERR_LOGIN_DOES_NOT_EXIST)
        login = str(alias["Login"])
    profile = int(rec.get("WSID") or 0)
    if profile == 0:
        raise SysError(423, "login profile is not initialized")
    return profile, login


@query("registry.InitiateResetPasswordByEmail")
async def initiate_reset_password_by_email(state: State, intents: Intents) -> None:
    arg = state.arg
    app_name, email = str(arg["AppName"]), str(arg["Email"])
    check_app_name(app_name)
    wsid = state.query_context.wsid
    profile, login = await _reset_target(state, wsid, app_name, email)
    check_email(email)
    cluster = ws.cluster_id(wsid)
    target = ws.pseudo_wsid(email, cluster)
    language = str(arg.get("Language") or "")
    token = await send_verification_code(state, REGISTRY_APP, target, ENTITY, FIELD, email, language)
    intents.result(VerificationToken=token, ProfileWSID=profile, CanonicalPseudoWSID=ws.pseudo_wsid(login, cluster))


@query("registry.IssueVerifiedValueTokenForResetPassword")
async def issue_verified_value_token_for_reset_password(state: State, intents: Intents) -> None:
    arg = state.arg
    app_name = str(arg["AppName"])
    check_app_name(app_name)
    payload = verified_payload(state, REGISTRY_APP, str(arg["VerificationToken"]), str(arg["VerificationCode"]))
    value = payload.get("Value")
    if isinstance(value, str) and value:
        # a code mailed to an active alias proves the login itself: step 3 finds it by that
        alias = await find_active_alias(state, app_name, value)
        if alias is not None:
            payload["Value"] = str(alias["Login"])
    intents.result(VerifiedValueToken=issue_verified_payload(state, REGISTRY_APP, payload))


@command("registry.ResetPasswordByEmail")
async def reset_password_by_email(state: State, intents: Intents) -> None:
    ctx = state.command_context
    unlogged = ctx.unlogged_arg or {}
    email = str(unlogged.get("Email", ""))  # the e-mail the verified value token proved
    app_name = str(state.arg["AppName"])
    rec = await find_login(state, ctx.wsid, app_name, email)
    if rec is None:
        raise SysError(401, f"login {email[:MAX_LOGIN_LENGTH]} does not exist")
    password = str(unlogged.get("NewPwd", ""))
    check_new_password(password)
    intents.update(rec, PwdHash=encode_pwd_hash(await hash_password(password)))
