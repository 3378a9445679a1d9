"""``c.cluster.VSqlUpdate`` over HTTP, against a real in-process server: Voedger's
``impl_vsqlupdate_test.go``, its logged kinds (``update``, ``insert``).

Ported: TestVSqlUpdate_BasicUsage_UpdateTable (API v1; the record read back, and its event in
the target's WLog), TestVSqlUpdate_BasicUsage_InsertTable (the NewID read back),
TestDirectUpdateManyTypes and TestUpdateDifferentLocations (through the logged kinds: numbers,
strings, true/false, 0x bytes; ``a<N>`` and ``"login"`` locations), TestVSqlUpdateValidateErrors
(its ``update``/``insert`` rows, with Voedger's texts).

Not built here on purpose, so answered 400 naming the kind (docs/design.md, "The sys functions"):
``unlogged update``/``insert``, ``update corrupted``, the older ``direct`` names and
``q.cluster.VSqlUpdate2`` write storage beside the partition's owner. So Voedger's scenarios of
those kinds (BasicUsage_Corrupted, DirectUpdate_View/_Record, DirectInsert,
VSqlUpdate2_DirectQuery_AllKinds) become one refusal each below, and
their rows of TestVSqlUpdateValidateErrors are refused before their own checks. The router shim
of Voedger's newer VSqlUpdate (TestVSqlUpdate_NoDeadlockOnSharedCommandProcessor, the v2 call)
is Voedger's cure for its command calling a command on the same processor: here the command
processor of sys/cluster is not the target's, and a target in sys/cluster itself is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.router.test_voedger_ops import APP, CLUSTER_WS, NUM_APP_WS, PROFILE, WS, Server, app_folder, v1_error
from tests.support import owned_workspace
from voedger.appdef import QName
from voedger.apps.cluster import CLUSTER_APP
from voedger.auth import PrincipalPayload
from voedger.structs.wsid import app_wsid, pseudo_to_app_wsid, pseudo_wsid

SCHEMA = """APPLICATION ops();
WORKSPACE OpsWS (
    DESCRIPTOR OpsDesc (Name varchar);
    TABLE Category INHERITS sys.CDoc (
        name varchar,
        int_fld int32,
        big int64,
        ratio float64,
        flag bool,
        data varbinary
    );
    TABLE Note INHERITS sys.WDoc (Text varchar);
    TABLE Receipt INHERITS sys.ODoc (Total int32);
    VIEW CategoryIdx (
        IntFld int32 NOT NULL,
        Dummy int32 NOT NULL,
        Name varchar,
        PRIMARY KEY ((IntFld), Dummy)
    ) AS RESULT OF CategoryIdxProjector;
    GRANT ALL ON ALL TABLES TO sys.WorkspaceOwner;
    GRANT EXECUTE ON ALL COMMANDS TO sys.WorkspaceOwner;
    GRANT EXECUTE ON ALL QUERIES TO sys.WorkspaceOwner;
    GRANT SELECT ON ALL VIEWS TO sys.WorkspaceOwner;
    EXTENSION ENGINE BUILTIN (
        COMMAND Pay(Receipt);
        SYNC PROJECTOR CategoryIdxProjector AFTER INSERT ON (Category) INTENTS(sys.View(CategoryIdx));
    );
);
ALTER WORKSPACE sys.AppWorkspaceWS (
    TABLE AppNote INHERITS sys.WDoc (Text varchar);
);
"""

EXT = """from voedger.extensions import command, projector


@command("ops.Pay")
def pay(state, intents):
    pass


@projector("ops.CategoryIdxProjector")
def category_idx(state, intents):
    pass
"""

VSQL_UPDATE = f"/api/{CLUSTER_APP}/{CLUSTER_WS}/c.cluster.VSqlUpdate"
TARGET = f"test.ops.{WS}"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    (tmp_path / "data").mkdir()
    s = await Server.open(tmp_path / "data", app_folder(tmp_path, SCHEMA, EXT))
    try:
        await owned_workspace(s.vvm, APP, PROFILE, WS, "ops.OpsDesc", "ops")
        yield s
    finally:
        await s.close()


async def vsql(server: Server, query: str, headers: dict[str, str] | None = None) -> Any:
    """``c.cluster.VSqlUpdate`` as the System of sys/cluster (unless ``headers`` say otherwise)."""
    auth = server.system(CLUSTER_APP) if headers is None else headers
    return await server.post(VSQL_UPDATE, {"args": {"Query": query}}, auth)


async def new_category(server: Server, name: str) -> int:
    body = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": "ops.Category", "name": name}}]}
    (new_id,) = await server.new_ids(f"/api/{APP}/{WS}/c.sys.CUD", body)
    return new_id


async def read_record(server: Server, record_id: int) -> dict[str, Any]:
    """The record as ``q.sys.SqlQuery`` in the target workspace answers it (Voedger's check)."""
    body = {
        "args": {"Query": f"select * from ops.Category where id = {record_id}"},
        "elements": [{"fields": ["Result"]}],
    }
    r = await server.post(f"/api/{APP}/{WS}/q.sys.SqlQuery", body)
    assert r.status_code == 200, r.text
    rows = r.json()["sections"][0]["elements"]
    return dict(orjson.loads(rows[-1][0][0][0]))


# --- TestVSqlUpdate_BasicUsage_UpdateTable ---------------------------------------------------------


async def test_update_changes_the_record_through_an_ordinary_event(server: Server) -> None:
    category = await new_category(server, "before")
    r = await vsql(server, f"update {TARGET}.ops.Category.{category} set name = 'after', int_fld = 7")
    assert r.status_code == 200, r.text
    assert "Result" not in r.json()  # NewID is filled by an insert only
    record = await read_record(server, category)
    assert record["name"] == "after" and record["int_fld"] == 7
    # The change is an event of the target workspace: a c.sys.CUD by the System.
    last = (await server.wlog(APP, WS))[-1]
    assert last["QName"] == "sys.CUD"
    assert [(c["sys.ID"], c["IsNew"], c["fields"]) for c in last["CUDs"]] == [
        (category, False, {"name": "after", "int_fld": 7})
    ]
    # ... and the operator's statement one of sys/cluster's workspace.
    logged = (await server.wlog(CLUSTER_APP, CLUSTER_WS))[-1]
    assert logged["QName"] == "cluster.VSqlUpdate"
    assert logged["ArgumentObject"]["Query"].startswith(f"update {TARGET}.ops.Category.{category}")


async def test_update_of_many_types(server: Server) -> None:
    """TestDirectUpdateManyTypes through the logged update: numbers, quoted strings (doubled
    quotes and backslash escapes as in MySQL), true/false and 0x bytes."""
    category = await new_category(server, "x")
    query = (
        f"update {TARGET}.ops.Category.{category} set big = -8, ratio = 10.25, flag = true, "
        "name = 'it''s \\'quoted\\'', data = 0x0102ff"
    )
    r = await vsql(server, query)
    assert r.status_code == 200, r.text
    record = await read_record(server, category)
    assert record["big"] == -8 and record["ratio"] == 10.25 and record["flag"] is True
    assert record["name"] == "it's 'quoted'"
    assert record["data"] == "AQL/"  # base64 of 01 02 ff
    r = await vsql(server, f'update {TARGET}.ops.Category.{category} set flag = FALSE, name = "dq"')
    assert r.status_code == 200, r.text
    record = await read_record(server, category)
    assert record["flag"] is False and record["name"] == "dq"


async def test_update_of_a_missing_record_is_the_targets_refusal(server: Server) -> None:
    """The CUD's own answer comes back with its status (Voedger keeps the federation error's)."""
    r = await vsql(server, f"update {TARGET}.ops.Category.{1 << 40} set name = 'x'")
    v1_error(r, 404, f"record with queried id {1 << 40} does not exist")


# --- TestVSqlUpdate_BasicUsage_InsertTable -----------------------------------------------------------


async def test_insert_answers_the_new_id(server: Server) -> None:
    r = await vsql(server, f"insert {TARGET}.ops.Category set name = 'fresh', int_fld = 3")
    assert r.status_code == 200, r.text
    new_id = r.json()["Result"]["NewID"]
    assert new_id > 0
    record = await read_record(server, new_id)
    assert record == {
        "sys.ID": new_id,
        "sys.QName": "ops.Category",
        "sys.IsActive": True,
        "name": "fresh",
        "int_fld": 3,
        "big": 0,
        "ratio": 0,
        "flag": False,
        "data": "",
    }
    last = (await server.wlog(APP, WS))[-1]
    assert last["QName"] == "sys.CUD" and last["CUDs"][0]["IsNew"] is True


async def test_insert_of_a_wdoc(server: Server) -> None:
    r = await vsql(server, f"insert {TARGET}.ops.Note set Text = 'n'")
    assert r.status_code == 200, r.text
    assert r.json()["Result"]["NewID"] > 0


async def test_app_workspace_locations(server: Server) -> None:
    """TestUpdateDifferentLocations, through the logged kinds: ``a<N>`` is the application
    workspace number N, ``"login"`` the application workspace that keeps that login's data."""
    for location, wsid in (("a1", app_wsid(1, 1)), ('"alice"', pseudo_to_app_wsid(pseudo_wsid("alice"), NUM_APP_WS))):
        r = await vsql(server, f"insert test.ops.{location}.ops.AppNote set Text = '{location}'")
        assert r.status_code == 200, (location, r.text)
        new_id = r.json()["Result"]["NewID"]
        body = {"args": {"Query": f"select * from ops.AppNote.{new_id}"}, "elements": [{"fields": ["Result"]}]}
        read = await server.post(f"/api/{APP}/{wsid}/q.sys.SqlQuery", body, server.system(APP))
        assert read.status_code == 200, read.text
        assert orjson.loads(read.json()["sections"][0]["elements"][0][0][0][0])["Text"] == location


# --- TestVSqlUpdateValidateErrors: update and insert --------------------------------------------------

VALIDATION = [
    ("", "field is empty"),
    (" ", "invalid query format"),
    ("update", "invalid query format"),
    ("update s s s", "invalid query format"),
    ("select * from sys.plog", "'update' or 'insert' clause expected"),
    ("wrong op kind test.ops.42.ops.Category.42 set name = 42", "invalid query format"),
    ("foo update test.ops.42.ops.Category.1 set name = 'x'", 'wrong dml operation kind "foo update"'),
    ("update test.ops.42.ops.Category.1", "no fields to update"),
    ("update test.ops.ops.Category.1 set name = 's'", "location must be specified"),
    ("update 42.42.42.wongQName set name = 42", "invalid query format"),
    ("update test.ops.42.ops.Category set name = 42", "record ID is not provided"),
    ("update test.ops.42.ops.Category.0 set name = 42", "provided offset or ID must not be 0"),
    ("update test.ops.42.ops.Category.1 set name = 42 where sys.ID = 1", "conditions are not allowed on update"),
    ("update test.ops.42.ops.Category.1 set sys.ID = 1", "field sys.ID can not be updated"),
    ("update test.ops.42.ops.Category.1 set sys.QName = 'sdsd.sds'", "field sys.QName can not be updated"),
    ("update test.ops.42.ops.Category.1 set x = 1, x = 2", "field x specified twice"),
    ("update test.ops.42.unknown.table.1 set x = 1, x = 2", "qname unknown.table is not found"),
    ("update unknown.app.42.ops.Category.1 set name = 'x'", "application not found: unknown/app"),
    ("update test.ops.42.ops.Category.1 set data = 0x1", "hex: odd length hex string"),
    ("update test.ops.42.ops.Category.1 set data = sin(42)", "unsupported value type"),
    ("update test.ops.42.ops.Category.1 set name = other", "unsupported value type"),
    ("update test.ops.42.ops.Pay set data = 0x00", "CDoc or WDoc only expected"),
    ("update test.ops.42.ops.Receipt.1 set Total = 1", "CDoc or WDoc only expected"),
    ("update test.ops.42.ops.Category.1 set data = null", "null value is not supported"),
    ("update test.ops.42.ops.Category.1 where x = 1", "syntax error"),
    ("update test.ops.42.ops.Category.1 set name = 'unterminated", "syntax error"),
    ("update test.ops.42.ops.Category.1 set name = 1 where x > 1", "condition is only supported"),
    ("update test.ops.42.ops.Category.1 set name = 1 where x = 1 or y = 1", "condition is only supported"),
    ("update test.ops.42.ops.Category.1 set name = 1 where x = 1 and x = 1", "key field x is specified twice"),
    ("insert test.ops.42.ops.CategoryIdx set Val = 42", "CDoc or WDoc only expected"),
    ("insert test.ops.1.ops.Pay set Val = 44, Name = 'x'", "CDoc or WDoc only expected"),
    ("insert test.ops.42.ops.Category", "no fields to set"),
    ("insert test.ops.42.ops.Category set a = 1 where x = 1", "conditions are not allowed on insert table"),
    ("insert test.ops.42.ops.Category.1 set a = 1", "record ID must not be provided on insert table"),
    ("insert test.ops.42.ops.Category set a = null", "null value is not supported"),
]


async def test_validation_errors(server: Server) -> None:
    for query, expected in VALIDATION:
        r = await vsql(server, query)
        assert r.status_code == 400, (query, r.text)
        message = r.json()["sys.Error"]["Message"]
        assert expected in message, (query, message)


async def test_an_unknown_field_is_the_targets_400(server: Server) -> None:
    category = await new_category(server, "x")
    r = await vsql(server, f"update {TARGET}.ops.Category.{category} set Unknown = 1")
    v1_error(r, 400, "ops.Category has no field «Unknown»")


# --- the kinds not built here --------------------------------------------------------------------------

UNSUPPORTED = [
    ("unlogged update", f"unlogged update {TARGET}.ops.CategoryIdx set Name = 'x' where IntFld = 43"),
    ("unlogged update", f"unlogged update {TARGET}.ops.Category.1 set name = 'x'"),
    ("unlogged insert", f"unlogged insert {TARGET}.ops.CategoryIdx set Name = 'x', IntFld = 1"),
    ("update corrupted", f"update corrupted {TARGET}.sys.WLog.1"),
    ("update corrupted", "update corrupted test.ops.1.sys.PLog.1"),
    ("direct update", f"direct update {TARGET}.ops.Category.1 set name = 'x'"),
    ("direct insert", f"direct insert {TARGET}.ops.CategoryIdx set Name = 'x', IntFld = 1"),
    ("unlogged update", f"Unlogged Update {TARGET}.ops.Category.1 set name = 'x'"),
]


async def test_unsupported_kinds_answer_400(server: Server) -> None:
    before = await server.wlog(APP, WS)
    for kind, query in UNSUPPORTED:
        r = await vsql(server, query)
        assert r.status_code == 400, (query, r.text)
        message = r.json()["sys.Error"]["Message"]
        assert message.startswith(f"{kind} is not supported here"), (query, message)
    assert await server.wlog(APP, WS) == before  # nothing written


async def test_vsql_update2_answers_400(server: Server) -> None:
    body = {"args": {"Query": f"insert {TARGET}.ops.Category set name = 'x'"}}
    r = await server.post(f"/api/{CLUSTER_APP}/{CLUSTER_WS}/q.cluster.VSqlUpdate2", body, server.system(CLUSTER_APP))
    v1_error(r, 400, "q.cluster.VSqlUpdate2 is not supported here")


async def test_records_of_sys_cluster_are_refused(server: Server) -> None:
    """The command runs on sys/cluster's one partition: a CUD there would wait behind it."""
    r = await vsql(server, f"update sys.cluster.{CLUSTER_WS}.cluster.App.1 set NumPartitions = 1")
    v1_error(r, 400, "sys/cluster records can not be changed by c.cluster.VSqlUpdate here")


# --- who may call it ----------------------------------------------------------------------------------


async def test_only_the_system_of_sys_cluster_may_call_it(server: Server) -> None:
    """Voedger grants VSqlUpdate to no role (not even ClusterAdmin): the System's only."""
    category = await new_category(server, "kept")
    query = f"update {TARGET}.ops.Category.{category} set name = 'changed'"
    # No token: a guest, granted nothing here (403, as for any function not granted to guests).
    assert (await vsql(server, query, {})).status_code == 403
    # A token of another application is no token of sys/cluster.
    for other in (server.system(APP), server.owner()):
        v1_error(await vsql(server, query, other), 401, "token issued for another application")
    # A user of sys/cluster itself, even a ClusterAdmin, is not granted it.
    assert server.vvm.tokens is not None
    for roles in ((), (QName("cluster", "ClusterAdmin"),)):
        payload = PrincipalPayload(login="op", profile_wsid=PROFILE, global_roles=roles)
        token = server.vvm.tokens.issue(CLUSTER_APP, payload, timedelta(hours=1))
        r = await vsql(server, query, {"Authorization": f"Bearer {token}"})
        assert r.status_code == 403, (roles, r.text)
    assert (await read_record(server, category))["name"] == "kept"
