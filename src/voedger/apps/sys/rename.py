"""``c.sys.RenameQName``: rename a QName of the application, keeping the data stored under it.

The rename goes into the application's QName table (``structs/qnames.py``) and takes effect
when the application is deployed again with the new name in its schema. Records (their
``sys.QName`` and QName fields), views (names, QName and record fields), singleton IDs, uniques
and the CUDs of events are read through that table. Other stored QNames are not (commands and
argument types in events, projectors' offsets, workspace kinds in templates and requests), so
only tables and views other than workspace descriptors may be renamed: anything else is a 400.
"""

from __future__ import annotations

from voedger.appdef import QName, QNameError, TypeKind
from voedger.apps.sys.builtins import platform
from voedger.state import Intents, State
from voedger.structs.qnames import RenameError
from voedger.syserror import SysError

RENAMEABLE = frozenset({TypeKind.CDoc, TypeKind.WDoc, TypeKind.CRecord, TypeKind.WRecord, TypeKind.View})
"""The kinds whose stored names the QName table covers."""


@platform.command("sys.RenameQName")
async def rename_qname(state: State, intents: Intents) -> None:
    arg = state.arg
    existing, new = str(arg["ExistingQName"]), str(arg["NewQName"])
    fmt = f"can not rename QName from «{existing}» to «{new}»: "
    try:
        old_name, new_name = QName.parse(existing), QName.parse(new)
    except QNameError as err:
        raise SysError(400, fmt + str(err)) from None
    if old_name.is_sys or new_name.is_sys:
        raise SysError(400, fmt + "QNames of the sys package can not be renamed")
    app = state.app
    t = app.find(old_name)
    if t is not None and t.kind not in RENAMEABLE:
        raise SysError(400, fmt + f"a {t.kind} can not be renamed here: only tables (CDoc, WDoc) and views")
    if t is not None and app.workspace_by_descriptor(old_name) is not None:
        raise SysError(400, fmt + "a workspace descriptor can not be renamed here")
    try:
        await state.rename_qname(existing, new)
    except RenameError as err:
        raise SysError(400, str(err)) from None
