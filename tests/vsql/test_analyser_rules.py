"""Each semantic rule of the analyser, with a schema that breaks it and the exact diagnostics.

Messages follow Voedger's analyser (pkg/parser/errors.go) where it has one.
"""

from __future__ import annotations

import pytest

from tests.vsql.helpers import errors


def ws(body: str) -> str:
    return "APPLICATION app();\nWORKSPACE W (\n" + body + "\n);\n"


CASES: dict[str, tuple[str, list[str]]] = {
    "redefinition": (
        ws("TABLE T INHERITS sys.CDoc ();\nTYPE T ();\nTABLE WDescriptor INHERITS sys.CDoc ();"),
        [
            "file.vsql:4:1: redefinition of T",
            "file.vsql:5:1: redefinition of WDescriptor",
        ],
    ),
    "abstract_ws_descriptor": (
        ("APPLICATION app();\nABSTRACT WORKSPACE A (\n  DESCRIPTOR (X int);\n);\n"),
        [
            "file.vsql:3:14: abstract workspace cannot have a descriptor",
        ],
    ),
    "base_ws_not_abstract": (
        ("APPLICATION app();\nWORKSPACE A ();\nWORKSPACE B INHERITS A ();\n"),
        [
            "file.vsql:3:22: base workspace must be abstract",
        ],
    ),
    "ws_cycle": (
        ("APPLICATION app();\nABSTRACT WORKSPACE A INHERITS B ();\nABSTRACT WORKSPACE B INHERITS A ();\n"),
        [
            "file.vsql:2:31: circular reference in INHERITS",
            "file.vsql:3:31: circular reference in INHERITS",
        ],
    ),
    "ws_explicit_sys": (
        ("APPLICATION app();\nWORKSPACE A INHERITS sys.Workspace ();\n"),
        [
            "file.vsql:2:1: explicit inheritance from sys.Workspace not allowed",
        ],
    ),
    "ws_undefined": (
        ("APPLICATION app();\nWORKSPACE A INHERITS Nope ();\n"),
        [
            "file.vsql:2:22: undefined workspace: Nope",
        ],
    ),
    "use_ws": (
        (
            "APPLICATION app();\n"
            "ABSTRACT WORKSPACE A ();\n"
            "WORKSPACE B (\n"
            "  USE WORKSPACE A;\n"
            "  USE WORKSPACE Nope;\n"
            ");\n"
        ),
        [
            "file.vsql:4:17: use of abstract workspace A",
            "file.vsql:5:17: undefined workspace: main.Nope",
        ],
    ),
    "alter_not_alterable": (
        (
            "APPLICATION app();\n"
            "ALTER WORKSPACE sys.ClosedWS (ROLE R;);\n"
            "WORKSPACE Mine ();\n"
            "ALTER WORKSPACE Mine (ROLE S;);\n"
        ),
        [
            "file.vsql:2:17: workspace sys.ClosedWS is not alterable",
        ],
    ),
    "grant_after_revoke": (
        ws("ROLE R;\nREVOKE R FROM R;\nGRANT R TO R;"),
        [
            "file.vsql:5:1: GRANT follows REVOKE in the same container",
        ],
    ),
    "table_kind": (
        ws("TABLE T ();\nTABLE U INHERITS Nope ();"),
        [
            "file.vsql:3:1: undefined table kind",
            "file.vsql:4:1: undefined table kind",  # Voedger: an undefined base leaves the kind undefined
        ],
    ),
    "base_table_not_abstract": (
        ws("TABLE A INHERITS sys.CDoc ();\nTABLE B INHERITS A ();"),
        [
            "file.vsql:4:18: base table must be abstract",
        ],
    ),
    "table_kind_stops_analysis": (  # Voedger's Test_ODocUnknown: no follow-on error on the fields
        "APPLICATION registry(); WORKSPACE Workspace1 (\n"
        "TABLE MyTable1 INHERITS ODocUnknown ( MyField ref(registry.Login) NOT NULL ));\n",
        [
            "file.vsql:2:1: undefined table kind",
        ],
    ),
    "table_kind_before_other_rules": (
        ws("TABLE U INHERITS Nope ();\nTABLE V INHERITS sys.CDoc (A Undefined);"),
        [
            "file.vsql:3:1: undefined table kind",
        ],
    ),
    "order_on_one_line": (  # by line; on one line in the order of Voedger's checks (its Test_Grants)
        ws("GRANT SELECT ON TABLE Fake TO app1;\nVIEW V (A varchar, B int, PRIMARY KEY ((A))) AS RESULT OF P;"),
        [
            "file.vsql:3:31: undefined role: app1",
            "file.vsql:3:23: undefined table: Fake",
            "file.vsql:4:41: varchar field A not supported in partition key",
            "file.vsql:4:40: clustering columns not defined",  # and the view's checks end there, as in Voedger
        ],
    ),
    "table_cycle": (
        ws("ABSTRACT TABLE A INHERITS B ();\nABSTRACT TABLE B INHERITS A ();"),
        [
            "file.vsql:3:1: circular reference in INHERITS",
            "file.vsql:4:1: circular reference in INHERITS",
        ],
    ),
    "nested_abstract": (
        ws(
            "ABSTRACT TABLE Abs INHERITS sys.CRecord ();\n"
            "TABLE T INHERITS sys.CDoc (\n"
            "  Items ABSTRACT TABLE N (),\n"
            "  Other Abs\n"
            ");"
        ),
        [
            "file.vsql:5:3: nested abstract table N",
            "file.vsql:6:9: nested abstract table Abs",
        ],
    ),
    "nested_kind": (
        ws("TABLE T INHERITS sys.CDoc (\n  Items TABLE N INHERITS sys.WRecord ()\n);"),
        [
            "file.vsql:4:3: incorrect nested table kind",
        ],
    ),
    "container_types": (
        ws("TABLE D INHERITS sys.CDoc ();\nTABLE T INHERITS sys.CDoc (\n  A D,\n  B Nope\n);"),
        [
            "file.vsql:5:5: D type not supported",
            "file.vsql:6:5: undefined data type or table: Nope",
        ],
    ),
    "refs": (
        ws(
            "ABSTRACT TABLE Abs INHERITS sys.CDoc ();\n"
            "TABLE Wd INHERITS sys.WDoc ();\n"
            "TABLE Od INHERITS sys.ODoc ();\n"
            "TABLE C INHERITS sys.CDoc (\n"
            "  A ref(Abs),\n"
            "  B ref(Wd),\n"
            "  D ref(Od),\n"
            "  E ref(Nope)\n"
            ");\n"
            "TABLE Wx INHERITS sys.WDoc (F ref(Od));\n"
            "TABLE Ox INHERITS sys.ODoc (G ref(Wd, Od));\n"
            "TYPE Tx (H ref(Od));\n"
            "VIEW V (K int, L ref(Od), PRIMARY KEY ((K), L)) AS RESULT OF P;\n"
            "EXTENSION ENGINE BUILTIN (PROJECTOR P AFTER INSERT ON C INTENTS(sys.View(V)););"
        ),
        [
            "file.vsql:7:9: reference to abstract table Abs",
            "file.vsql:8:9: Wd: reference to WDoc/WRecord",
            "file.vsql:9:9: table main.C can not reference to ODoc «main.Od»",
            "file.vsql:10:9: undefined table: Nope",
            "file.vsql:12:35: table main.Wx can not reference to ODoc «main.Od»",
            "file.vsql:15:22: view main.V can not reference to ODoc «main.Od»",
        ],
    ),
    "blob_length": (
        ws(
            "TYPE T (B blob, S varchar(65536), Y bytes(70000));\n"
            "TABLE U INHERITS sys.CDoc (B blob, S varchar(65535));\n"
            "VIEW V (K int, B blob, PRIMARY KEY ((K), B)) AS RESULT OF P;\n"
            "EXTENSION ENGINE BUILTIN (PROJECTOR P AFTER INSERT ON U INTENTS(sys.View(V)););"
        ),
        [
            "file.vsql:3:11: BLOB field only allowed in table",
            "file.vsql:3:19: maximum field length is 65535",
            "file.vsql:3:37: maximum field length is 65535",
            "file.vsql:5:18: BLOB field only allowed in table",
        ],
    ),
    "regexp": (
        ws("TYPE T (\n  A int CHECK '^a$',\n  B varchar CHECK '(',\n  C varchar CHECK '^[a-z]+$'\n);"),
        [
            "file.vsql:4:15: regexp CHECK only available for varchar field",
            "file.vsql:5:19: CHECK regexp error:  missing ), unterminated subpattern at position 0",
        ],
    ),
    "field_set_and_types": (
        ws("TYPE T (Nope, X Missing, Items TABLE N ());"),
        [
            # on one line in Voedger's order: nested tables, field sets, fields
            "file.vsql:3:26: nested tables not supported in types",
            "file.vsql:3:9: undefined type: Nope",
            "file.vsql:3:17: undefined type: Missing",
        ],
    ),
    "dup_fields": (
        ws(
            "TYPE Base (A int);\n"
            "ABSTRACT TABLE P INHERITS sys.CDoc (B int);\n"
            "TABLE T INHERITS P (\n"
            "  Base,\n"
            "  A int,\n"
            "  B int,\n"
            "  C int,\n"
            "  C varchar,\n"
            "  Items TABLE N (),\n"
            "  Items int\n"
            ");"
        ),
        [
            "file.vsql:7:3: redefinition of A",
            "file.vsql:8:3: redefinition of B",
            "file.vsql:10:3: redefinition of C",
            "file.vsql:12:3: redefinition of Items",
        ],
    ),
    "constraints": (
        ws(
            "TABLE T INHERITS sys.CDoc (\n"
            "  A int, B int,\n"
            "  CONSTRAINT U1 UNIQUE (A),\n"
            "  CONSTRAINT U1 UNIQUE (B),\n"
            "  UNIQUE (A, X),\n"
            "  UNIQUEFIELD Y\n"
            ");"
        ),
        [
            "file.vsql:6:3: redefinition of U1",
            "file.vsql:7:3: field A already in unique constraint",
            "file.vsql:7:3: undefined field X",
            "file.vsql:8:3: undefined field Y",
        ],
    ),
    "field_set_cycle": (
        ws("TYPE A (B);\nTYPE B (A);"),
        [
            "file.vsql:3:9: circular reference in field set B",
            "file.vsql:4:9: circular reference in field set A",
        ],
    ),
    "view_pk": (
        ws(
            "VIEW V1 (A int) AS RESULT OF P;\n"
            "VIEW V2 (A int, PRIMARY KEY ((A)), PRIMARY KEY (A)) AS RESULT OF P;\n"
            "VIEW V3 (A int, A int, PRIMARY KEY ((A), Z)) AS RESULT OF P;\n"
            "EXTENSION ENGINE BUILTIN (PROJECTOR P AFTER EXECUTE ON sys.CUD INTENTS(sys.View(V1, V2, V3)););"
        ),
        [
            "file.vsql:3:1: primary key not defined",
            "file.vsql:4:49: redefinition of primary key",  # Voedger checks the fields first
            "file.vsql:4:30: clustering columns not defined",
            "file.vsql:5:17: redefinition of A",
            "file.vsql:5:42: undefined field Z",
        ],
    ),
    "view_key_types": (
        ws(
            "VIEW V (\n"
            "  S varchar, B bytes, R record, I int, S2 varchar, B2 bytes,\n"
            "  PRIMARY KEY ((S, B, R), S2, B2, I)\n"
            ") AS RESULT OF P;\n"
            "EXTENSION ENGINE BUILTIN (PROJECTOR P AFTER EXECUTE ON sys.CUD INTENTS(sys.View(V)););"
        ),
        [
            "file.vsql:4:23: record fields are only allowed in sys package",
            "file.vsql:5:17: varchar field S not supported in partition key",
            "file.vsql:5:20: bytes field B not supported in partition key",
            "file.vsql:5:23: record field R not supported in partition key",
            "file.vsql:5:27: varchar field S2 can only be the last one in clustering key",
            "file.vsql:5:31: bytes field B2 can only be the last one in clustering key",
        ],
    ),
    "view_result": (
        ws(
            "VIEW V1 (A int, B int, PRIMARY KEY ((A), B)) AS RESULT OF Nope;\n"
            "VIEW V2 (A int, B int, PRIMARY KEY ((A), B)) AS RESULT OF P;\n"
            "EXTENSION ENGINE BUILTIN (PROJECTOR P AFTER EXECUTE ON sys.CUD INTENTS(sys.View(V1)););"
        ),
        [
            "file.vsql:3:59: Nope undefined",
            "file.vsql:4:59: P does not declare intent for view V2",
        ],
    ),
    "query": (
        ws(
            "EXTENSION ENGINE BUILTIN (\n"
            "  QUERY Q1;\n"
            "  QUERY Q2(Nope) RETURNS Nope2;\n"
            "  QUERY Q3(T) RETURNS T;\n"
            "  COMMAND C1(Nope, UNLOGGED Nope) RETURNS Nope;\n"
            "  COMMAND C2(T, UNLOGGED D) RETURNS T;\n"
            ");\n"
            "TABLE D INHERITS sys.CDoc ();\n"
            "TYPE T ();"
        ),
        [
            "file.vsql:4:3: query must have a return type",
            "file.vsql:5:12: undefined type: Nope",
            "file.vsql:5:26: undefined type: Nope2",
            "file.vsql:7:14: undefined type or table: Nope",
            "file.vsql:7:29: undefined type or table: Nope",
            "file.vsql:7:43: undefined type or table: Nope",
        ],
    ),
    "projectors": (
        ws(
            "TABLE O INHERITS sys.ODoc ();\n"
            "ABSTRACT TABLE A INHERITS sys.CDoc ();\n"
            "TYPE T ();\n"
            "EXTENSION ENGINE BUILTIN (\n"
            "  COMMAND C;\n"
            "  PROJECTOR P1 CRON '* * * * *';\n"
            "  PROJECTOR P2 AFTER UPDATE ON O;\n"
            "  PROJECTOR P3 AFTER INSERT ON A;\n"
            "  PROJECTOR P4 AFTER EXECUTE WITH PARAM ON Nope;\n"
            "  PROJECTOR P5 AFTER EXECUTE ON Nope;\n"
            "  PROJECTOR P6 AFTER INSERT ON (sys.CRecord, sys.WRecord, WDescriptor)"
            " OR AFTER EXECUTE WITH PARAM ON (T, O) OR AFTER EXECUTE ON C;\n"
            "  PROJECTOR P7 AFTER EXECUTE WITH PARAM ON A;\n"
            ");"
        ),
        [
            "file.vsql:8:3: scheduled projector deprecated; use jobs instead",
            "file.vsql:9:32: only INSERT allowed for ODoc or ORecord",
            "file.vsql:10:32: projector refers to abstract table A",
            "file.vsql:11:44: undefined type or ODoc: Nope",
            "file.vsql:12:33: undefined command: Nope",
            "file.vsql:14:44: undefined type or ODoc: A",
        ],
    ),
    "jobs": (
        (
            "APPLICATION app();\n"
            "WORKSPACE W (\n"
            "  EXTENSION ENGINE BUILTIN (JOB J1 '* * * * *';);\n"
            ");\n"
            "ALTER WORKSPACE sys.AppWorkspaceWS (\n"
            "  EXTENSION ENGINE BUILTIN (\n"
            "    JOB J2;\n"
            "    JOB J3 'every day';\n"
            "    JOB J4 '@every 1h30m' STATE(sys.Http) INTENTS(sys.View(JV));\n"
            "    JOB J5 '0 0 12 * * MON-FRI';\n"
            "  );\n"
            "  VIEW JV (A int, B int, PRIMARY KEY ((A), B)) AS RESULT OF J4;\n"
            ");\n"
        ),
        [
            "file.vsql:3:29: JOB is only allowed in AppWorkspaceWS",
            "file.vsql:7:5: job without cron schedule is not allowed",
            "file.vsql:8:5: invalid cron schedule: every day",
        ],
    ),
    "storages": (
        ("APPLICATION app();\nEXTENSION ENGINE BUILTIN (STORAGE S(GET SCOPE(COMMANDS)););\n"),
        [
            "file.vsql:2:27: storages are only declared in sys package",
        ],
    ),
    "state_scopes": (
        ws(
            "TABLE T INHERITS sys.CDoc ();\n"
            "ABSTRACT TABLE A INHERITS sys.CDoc ();\n"
            "VIEW V (A int, B int, PRIMARY KEY ((A), B)) AS RESULT OF P;\n"
            "EXTENSION ENGINE BUILTIN (\n"
            "  COMMAND C1 STATE(sys.Record, sys.Http) INTENTS(sys.View(V), sys.SendMail);\n"
            "  QUERY Q1 STATE(sys.Record(T), sys.View(V)) RETURNS void;\n"
            "  PROJECTOR P AFTER INSERT ON T STATE(sys.Record(A), sys.Record(Nope), sys.Unknown)"
            " INTENTS(sys.View(V), sys.SendMail, sys.Record(T));\n"
            "  COMMAND C2 STATE(sys.View(Nope)) INTENTS(sys.Record(T), sys.Result);\n"
            ");"
        ),
        [
            "file.vsql:7:20: storage sys.Record requires entity",
            "file.vsql:7:32: this kind of extension cannot use storage sys.Http in the state",
            "file.vsql:7:50: this kind of extension cannot use storage sys.View in the intents",
            "file.vsql:7:63: this kind of extension cannot use storage sys.SendMail in the intents",
            "file.vsql:9:39: projector refers to abstract table A",
            "file.vsql:9:54: undefined table: Nope",
            "file.vsql:9:72: sys.Unknown undefined",
            "file.vsql:9:120: this kind of extension cannot use storage sys.Record in the intents",
            "file.vsql:10:20: undefined view: Nope",
        ],
    ),
    "rates_limits": (
        (
            "APPLICATION app();\n"
            "DECLARE Zero int32 DEFAULT 0;\n"
            "DECLARE Ten int32 DEFAULT 10;\n"
            "WORKSPACE W (\n"
            "  RATE R1 Zero PER HOUR;\n"
            "  RATE R2 Nope PER HOUR;\n"
            "  RATE R3 Ten PER HOUR;\n"
            "  TAG Tg;\n"
            "  EXTENSION ENGINE BUILTIN (COMMAND C;);\n"
            "  LIMIT L1 ON COMMAND C WITH RATE Nope;\n"
            "  LIMIT L2 SELECT ON COMMAND C WITH RATE R3;\n"
            "  LIMIT L3 EXECUTE ON ALL TABLES WITH TAG Nope WITH RATE R3;\n"
            "  LIMIT L4 INSERT ON EACH VIEW WITH RATE R3;\n"
            "  LIMIT L5 ON QUERY Nope WITH RATE R3;\n"
            "  LIMIT L6 INSERT, UPDATE, SELECT ON ALL TABLES WITH TAG Tg WITH RATE R3;\n"
            ");\n"
        ),
        [
            "file.vsql:5:11: positive value only allowed",
            "file.vsql:6:11: Nope undefined",
            "file.vsql:10:35: undefined rate: Nope",
            "file.vsql:11:12: operation SELECT not allowed",
            "file.vsql:12:12: operation EXECUTE not allowed",
            "file.vsql:12:43: undefined tag: Nope",
            "file.vsql:13:12: operation INSERT not allowed",
            "file.vsql:14:21: undefined query: Nope",
        ],
    ),
    "grants": (
        ws(
            "ROLE R;\n"
            "TAG Tg;\n"
            "TABLE T INHERITS sys.CDoc (A int, B ref, Items TABLE N ());\n"
            "VIEW V (K int, L int, PRIMARY KEY ((K), L)) AS RESULT OF P;\n"
            "EXTENSION ENGINE BUILTIN (PROJECTOR P AFTER INSERT ON T INTENTS(sys.View(V));"
            " COMMAND C; QUERY Q RETURNS void;);\n"
            "GRANT Nope TO R;\n"
            "GRANT R TO Nope;\n"
            "GRANT SELECT(A, B, Items, sys.ID, Z) ON TABLE T TO R;\n"
            "GRANT ALL(Y) ON TABLE WDescriptor TO R;\n"
            "GRANT SELECT(K, M) ON VIEW V TO R;\n"
            "GRANT EXECUTE ON COMMAND Nope TO R;\n"
            "GRANT EXECUTE ON QUERY Nope TO R;\n"
            "GRANT SELECT ON VIEW Nope TO R;\n"
            "GRANT SELECT ON TABLE Nope TO R;\n"
            "GRANT EXECUTE ON ALL COMMANDS WITH TAG Nope TO R;\n"
            "GRANT EXECUTE ON ALL QUERIES WITH TAG sys.AllowedToEveryoneTag TO R;\n"
            "GRANT INSERT ON ALL TABLES WITH TAG Tg TO sys.WorkspaceOwner;"
        ),
        [
            "file.vsql:8:7: undefined role: Nope",
            "file.vsql:9:12: undefined role: Nope",
            "file.vsql:10:35: undefined field Z",
            "file.vsql:11:11: undefined field Y",
            "file.vsql:12:17: undefined field M",
            "file.vsql:13:26: undefined command: Nope",
            "file.vsql:14:24: undefined query: Nope",
            "file.vsql:15:22: undefined view: Nope",
            "file.vsql:16:23: undefined table: Nope",
            "file.vsql:17:40: undefined tag: Nope",
            "file.vsql:18:39: undefined tag: sys.AllowedToEveryoneTag",
        ],
    ),
    "visibility": (
        (
            "APPLICATION app();\n"
            "WORKSPACE A (\n"
            "  TABLE Ta INHERITS sys.CDoc ();\n"
            "  WORKSPACE Inner (TABLE Ti INHERITS sys.CDoc ());\n"
            ");\n"
            "WORKSPACE B (\n"
            "  TABLE Tb INHERITS sys.CDoc (X ref(Ta), Y ref(Ti), Z ref(sys.BLOB));\n"
            ");\n"
        ),
        [
            "file.vsql:7:37: undefined table: Ta",
            "file.vsql:7:48: undefined table: Ti",
            "file.vsql:7:59: sys.BLOB: reference to WDoc/WRecord",
        ],
    ),
    "with_tags": (
        ws("TAG Tg;\nTABLE T INHERITS sys.CDoc () WITH Tags=(Tg, Nope, sys.WorkspaceOwnerTableTag);"),
        [
            "file.vsql:4:45: undefined tag: Nope",
            "file.vsql:4:51: undefined tag: sys.WorkspaceOwnerTableTag",
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rule(case: str) -> None:
    schema, expected = CASES[case]
    assert errors(schema) == expected
