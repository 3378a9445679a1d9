"""Resetting a forgotten password by e-mail, as Voedger's registry does, in the application
workspace of the login (its pseudo WSID), without a token:

1. ``q.registry.InitiateResetPasswordByEmail(AppName, Email, Language)`` finds the login (the
   e-mail) of the application, mails it a code and answers a verification token, the login's
   profile WSID and the pseudo WSID of the login;
2. ``q.registry.IssueVerifiedValueTokenForResetPassword(VerificationToken, VerificationCode,
   ProfileWSID, AppName)`` trades token and code for a verified value token;
3. ``c.registry.ResetPasswordByEmail(AppName; unlogged Email, NewPwd)`` takes that token in
   ``Email`` (VERIFIABLE: the command processor checks it and puts the proven e-mail in its
   place) and sets the new password.

Voedger routes steps 1 and 2 through the login's profile (``q.sys.InitiateEmailVerification``
there, ForRegistry); here the registry mails and verifies itself, with the same tokens. Login
aliases are not supported yet, so the e-mail must be the login itself.
"""

from __future__ import annotations

from typing import Final

from voedger.appdef import SYS_IS_ACTIVE
from voedger.apps.registry._logins import (
    LOGIN_IDX,
    MAX_LOGIN_LENGTH,
    check_app_name,
    check_new_password,
    encode_pwd_hash,
    hash_password,
    login_hash,
    login_idx_key,
)
from voedger.apps.sys.verifier import check_email, issue_verified_value, send_verification_code
from voedger.extensions import command, query
from voedger.state import Intents, State
from voedger.structs import wsid as ws
from voedger.structs.records import Record
from voedger.syserror import SysError

REGISTRY_APP: Final = "sys/registry"
ENTITY: Final = "registry.ResetPasswordByEmailUnloggedParams"
FIELD: Final = "Email"
ERR_LOGIN_DOES_NOT_EXIST: Final = "login does not exist"


async def _login(state: State, wsid: int, app_name: str, login: str) -> Record | None:
    key = login_idx_key(app_name, login_hash(login))
    if len(key.encode()) > MAX_LOGIN_LENGTH:
        return None
    row = await state.view(LOGIN_IDX, AppWSID=wsid, AppIDLoginHash=key)
    rec = await state.record(int(row["CDocLoginID"])) if row else None
    if rec is None or rec.get(SYS_IS_ACTIVE) is False:
        return None
    return rec


@query("registry.InitiateResetPasswordByEmail")
async def initiate_reset_password_by_email(state: State, intents: Intents) -> None:
    arg = state.arg
    app_name, email = str(arg["AppName"]), str(arg["Email"])
    check_app_name(app_name)
    wsid = state.query_context.wsid
    rec = await _login(state, wsid, app_name, email)
    if rec is None:
        raise SysError(400, ERR_LOGIN_DOES_NOT_EXIST)
    profile = int(rec.get("WSID") or 0)
    if profile == 0:
        raise SysError(423, "login profile is not initialized")
    check_email(email)
    pseudo = ws.pseudo_wsid(email, ws.cluster_id(wsid))
    token = await send_verification_code(state, REGISTRY_APP, pseudo, ENTITY, FIELD, email)
    intents.result(VerificationToken=token, ProfileWSID=profile, CanonicalPseudoWSID=pseudo)


@query("registry.IssueVerifiedValueTokenForResetPassword")
async def issue_verified_value_token_for_reset_password(state: State, intents: Intents) -> None:
    arg = state.arg
    check_app_name(str(arg["AppName"]))
    token = issue_verified_value(state, REGISTRY_APP, str(arg["VerificationToken"]), str(arg["VerificationCode"]))
    intents.result(VerifiedValueToken=token)


@command("registry.ResetPasswordByEmail")
async def reset_password_by_email(state: State, intents: Intents) -> None:
    ctx = state.command_context
    unlogged = ctx.unlogged_arg or {}
    email = str(unlogged.get("Email", ""))  # the e-mail the verified value token proved
    app_name = str(state.arg["AppName"])
    rec = await _login(state, ctx.wsid, app_name, email)
    if rec is None:
        raise SysError(401, f"login {email[:MAX_LOGIN_LENGTH]} does not exist")
    password = str(unlogged.get("NewPwd", ""))
    check_new_password(password)
    intents.update(rec, PwdHash=encode_pwd_hash(await hash_password(password)))
