"""``c.cluster.VSqlUpdate``: an operator's ``update``/``insert`` of a record of any application's
workspace (Voedger's ``pkg/cluster/impl_vsqlupdate.go``, its logged kinds).

The statement is checked here against the target application's schema, with Voedger's answers,
then sent to the target workspace as a ``c.sys.CUD`` of the System through the federation: it
reaches the partition's owner wherever that runs and becomes an ordinary event there, read back,
projected and cached like any other. The kinds that write storage beside that owner (``unlogged
update``/``insert``, ``update corrupted``, the older ``direct`` names, ``q.cluster.VSqlUpdate2``)
would bypass its read cache and its fencing: they answer 400 (docs/design.md, "The sys functions").
"""

from __future__ import annotations

from typing import Any, Final

from voedger.appdef import QNameError, TypeKind
from voedger.apps.cluster import CLUSTER_APP
from voedger.apps.cluster._dml import LOGGED, Kind, check_denied, parse_kind, parse_tail
from voedger.apps.sys.sqlparse import Op, WorkspaceKind
from voedger.extensions import command, query
from voedger.state import Intents, State
from voedger.state.state import PeerApp
from voedger.structs.wsid import app_wsid, cluster_id, pseudo_to_app_wsid, pseudo_wsid
from voedger.syserror import SysError

DOC_KINDS: Final = frozenset({TypeKind.CDoc, TypeKind.WDoc})
ANY_STATUS: Final = tuple(range(100, 600))

NOT_HERE: Final = (
    "is not supported here: it writes storage beside the partition's owner, "
    "so only the logged 'update' and 'insert' are"
)


@command("cluster.VSqlUpdate")
async def vsql_update(state: State, intents: Intents) -> None:
    statement: str = state.arg["Query"]
    written, op, kind = parse_kind(statement)
    if kind is None and written.lower().startswith("select"):
        raise SysError(400, "'update' or 'insert' clause expected")
    if kind not in LOGGED:
        raise SysError(400, f"{written.lower()} {NOT_HERE}")
    assert kind is not None
    peer = _target_app(state, op)
    wsid = _target_wsid(op, peer, cluster_id(state.wsid))
    _check_table(peer, op.qname)
    sets, where = parse_tail(op, written)
    check_denied(sets)
    _validate(kind, op, sets, where)
    if kind is Kind.UPDATE:
        body: dict[str, Any] = {"cuds": [{"sys.ID": op.entity_id, "fields": sets}]}
    else:
        body = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": op.qname, **sets}}]}
    reply = await state.federation_command(op.app, wsid, "c.sys.CUD", body, ANY_STATUS)
    if reply.status != 200:
        # The target's refusal, as it answered (Voedger keeps the status of the CUD's error).
        raise SysError(reply.status, reply.message)
    if kind is Kind.INSERT:
        intents.result(NewID=reply.new_ids["1"])


@query("cluster.VSqlUpdate2")
async def vsql_update2(state: State, intents: Intents) -> None:
    """Voedger's query form runs every kind beside the command processor: not here."""
    raise SysError(400, f"q.cluster.VSqlUpdate2 {NOT_HERE} (use c.cluster.VSqlUpdate)")


def _target_app(state: State, op: Op) -> PeerApp:
    name = op.app or "/"
    peer = state.peer_app(op.app) if op.app else None
    if peer is None:
        raise SysError(400, f"application not found: {name}")
    if op.app == CLUSTER_APP:
        # Its one partition runs this command: a CUD sent there would wait behind it for ever.
        raise SysError(400, f"{CLUSTER_APP} records can not be changed by c.cluster.VSqlUpdate here")
    return peer


def _target_wsid(op: Op, peer: PeerApp, cluster: int) -> int:
    if op.ws_kind is WorkspaceKind.WSID:
        return int(op.ws_value)
    if op.ws_kind is WorkspaceKind.APP_WS_NUM:
        return app_wsid(cluster, int(op.ws_value))
    if op.ws_kind is WorkspaceKind.PSEUDO:
        return pseudo_to_app_wsid(pseudo_wsid(str(op.ws_value), cluster), peer.num_app_workspaces, cluster)
    raise SysError(400, "location must be specified")


def _check_table(peer: PeerApp, name: str) -> None:
    try:
        found = peer.appdef.find(name)
    except QNameError:
        found = None
    if found is None:
        raise SysError(400, f"qname {name} is not found")
    if found.kind not in DOC_KINDS:
        raise SysError(400, "CDoc or WDoc only expected")


def _validate(kind: Kind, op: Op, sets: dict[str, Any], where: dict[str, Any]) -> None:
    """Voedger's checks of an ``update`` (a record ID, fields) and an ``insert`` (no ID, fields)."""
    if kind is Kind.UPDATE:
        if op.entity_id == 0:
            raise SysError(400, "record ID is not provided on update table")
        if where:
            raise SysError(400, "conditions are not allowed on update table")
        if not sets:
            raise SysError(400, "no fields to update")
        return
    if op.entity_id != 0:
        raise SysError(400, "record ID must not be provided on insert table")
    if where:
        raise SysError(400, "conditions are not allowed on insert table")
    if not sets:
        raise SysError(400, "no fields to set")
