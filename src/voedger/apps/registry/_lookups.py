"""Finding a login's record and the index of login aliases, for the registry's extensions.

A sign-in identifier (a login or an alias) lives in the application workspace its name maps to
(``crc16 mod NumAppWorkspaces``): a login's ``Login`` record through ``LoginIdx``, an alias's
``LoginAlias`` record through the ``sys.Uniques`` view of its ``UNIQUE (AppName, Alias)``. The two
share one name space per application: an identifier is either a login or an active alias.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from voedger.appdef import SYS_IS_ACTIVE, Structure
from voedger.apps.registry._logins import LOGIN_IDX, MAX_LOGIN_LENGTH, login_hash, login_idx_key
from voedger.processors.uniques import UNIQUES_VIEW, unique_entries
from voedger.state import State
from voedger.structs.records import Record
from voedger.syserror import SysError

__all__ = [
    "LOGIN_ALIAS_TABLE",
    "aliased_login",
    "check_identifier_available",
    "find_active_alias",
    "find_login",
    "login_does_not_exist",
]

LOGIN_ALIAS_TABLE: Final = "registry.LoginAlias"
_TAKEN: Final = "sign-in identifier already exists"


async def find_login(state: State, app_wsid: int, app_name: str, login: str) -> Record | None:
    """The active Login of ``login`` in ``app_name``, kept in this application workspace."""
    key = login_idx_key(app_name, login_hash(login))
    if len(key.encode()) > MAX_LOGIN_LENGTH:
        return None  # no such key was ever written: CreateLogin checks the AppName
    row = await state.view(LOGIN_IDX, AppWSID=app_wsid, AppIDLoginHash=key)
    if row is None:
        return None
    rec = await state.record(int(row["CDocLoginID"]))
    if rec is None or rec.get(SYS_IS_ACTIVE) is False:
        return None  # a deactivated login is a missing one: its name may be registered again
    return rec


async def find_active_alias(state: State, app_name: str, alias: str) -> Record | None:
    """The active ``LoginAlias`` of ``alias`` in ``app_name``, kept in this application workspace
    (a deactivated one has freed its unique value: it is not found)."""
    table = state.app.find(LOGIN_ALIAS_TABLE)
    if not isinstance(table, Structure) or not alias:
        return None
    for entry in unique_entries(table, {"AppName": app_name, "Alias": alias}):
        row = await state.view(UNIQUES_VIEW, **entry.key())
        if row and row.get("ID"):
            rec = await state.record(int(row["ID"]))
            if rec is not None and rec.get(SYS_IS_ACTIVE, True):
                return rec
    return None


async def check_identifier_available(
    state: State, app_wsid: int, app_name: str, identifier: str, owner: tuple[int, int] | None = None
) -> None:
    """409 if ``identifier`` is a login of ``app_name`` or the active alias of a login other than
    ``owner`` (the Login's application workspace and record ID), as Voedger's
    ``assertIdentifierAvailable``."""
    if await find_login(state, app_wsid, app_name, identifier) is not None:
        raise SysError(409, _TAKEN)
    alias = await find_active_alias(state, app_name, identifier)
    if alias is None:
        return
    if owner is not None and (int(alias["SourceAppWSID"]), int(alias["CDocLoginID"])) == owner:
        return
    raise SysError(409, _TAKEN)


def login_does_not_exist(login: str) -> SysError:
    return SysError(401, f"login {login[:MAX_LOGIN_LENGTH]} does not exist")


async def aliased_login(state: State, alias: Record, submitted: str) -> dict[str, Any] | None:
    """The Login an active alias points to, if it is active and still names that alias (the
    index is written before the Login takes the alias, and an old one deactivated before it
    leaves it: only the Login says which alias is in force)."""
    source_wsid, login_id = int(alias["SourceAppWSID"]), int(alias["CDocLoginID"])
    if source_wsid == state.wsid:
        found = await state.record(login_id)
        rec: dict[str, Any] | None = dict(found) if found is not None else None
    else:
        reply = await state.federation_query(
            state.app_name,
            source_wsid,
            "q.sys.GetCDoc",
            {"args": {"ID": login_id}, "elements": [{"fields": ["Result"]}]},
        )
        rows = reply.rows()
        rec = orjson.loads(rows[0][0]) if rows and isinstance(rows[0][0], str) else None
    if rec is None or rec.get(SYS_IS_ACTIVE) is False or rec.get("Alias") != submitted:
        return None
    return rec
