"""``c.sys.RenameQName``: rename a QName of the application, keeping the data stored under it.

The rename goes into the application's QName table (``structs/qnames.py``) and takes effect
when the application is deployed again with the new name in its schema. Records and views are
read through that table; other stored QNames are not yet (events' command and CUD names,
projector offsets, QName and role texts in record fields), so only tables and views may be
renamed: anything else answers 400.
"""

from __future__ import annotations

from voedger.appdef import QName, QNameError, TypeKind
from voedger.apps.sys.builtins import platform
from voedger.state import Intents, State
from voedger.structs.qnames import RenameError
from voedger.syserror import SysError

RENAMEABLE = frozenset({TypeKind.CDoc, TypeKind.WDoc, TypeKind.CRecord, TypeKind.WRecord, TypeKind.View})
"""The kinds whose stored names the QName table covers: records and views."""


@platform.command("sys.RenameQName")
async def rename_qname(state: State, intents: Intents) -> None:
    arg = state.arg
    existing, new = str(arg["ExistingQName"]), str(arg["NewQName"])
    fmt = f"can not rename QName from «{existing}» to «{new}»: "
    try:
        old_name, new_name = QName.parse(existing), QName.parse(new)
    except QNameError as err:
        raise SysError(400, fmt + str(err)) from None
    t = state.app.find(old_name)
    if old_name.is_sys or new_name.is_sys:
        raise SysError(400, fmt + "QNames of the sys package can not be renamed")
    if t is not None and t.kind not in RENAMEABLE:
        raise SysError(400, fmt + f"a {t.kind} can not be renamed here: only tables (CDoc, WDoc) and views")
    try:
        await state.rename_qname(existing, new)
    except RenameError as err:
        raise SysError(400, str(err)) from None
