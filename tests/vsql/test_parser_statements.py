"""Every statement of the grammar parses into the expected syntax tree."""

from __future__ import annotations

import pytest

from voedger.vsql import ast, parse_string


def parse(text: str) -> ast.File:
    return parse_string(text, "file.vsql")


def ws_stmts(body: str) -> tuple[ast.WorkspaceStatement, ...]:
    stmt = parse(f"WORKSPACE W (\n{body}\n);").statements[0]
    assert isinstance(stmt, ast.WorkspaceStmt)
    return stmt.statements


def one(body: str) -> ast.WorkspaceStatement:
    stmts = ws_stmts(body)
    assert len(stmts) == 1
    return stmts[0]


def ext(body: str, engine: str = "BUILTIN") -> ast.ExtensionStmt:
    stmt = one(f"EXTENSION ENGINE {engine} ({body});")
    assert isinstance(stmt, ast.ExtEngineStmt)
    assert len(stmt.statements) == 1
    return stmt.statements[0]


def q(name: str, package: str = "") -> tuple[str, str]:
    return (package, name)


def names(refs: tuple[ast.DefQName, ...]) -> list[str]:
    return [str(r) for r in refs]


# ---------------------------------------------------------------- package level


def test_empty_file_and_trailing_semicolons() -> None:
    assert parse("").statements == ()
    assert parse("-- only a comment\n").statements == ()
    f = parse("ROLE A; ROLE B;")
    assert [s.name for s in f.statements if isinstance(s, ast.RoleStmt)] == ["A", "B"]


def test_import_schema_with_and_without_alias() -> None:
    f = parse("IMPORT SCHEMA 'example.org/shop/air';\nIMPORT SCHEMA 'example.org/shop/untill' AS u;\nROLE R;")
    a, b = f.imports
    assert (a.path, a.alias, a.local_name) == ("example.org/shop/air", None, "air")
    assert (b.path, b.alias, b.local_name) == ("example.org/shop/untill", "u", "u")
    assert a.pos == ast.Pos("file.vsql", 1, 1)
    assert b.pos.line == 2


def test_application_with_uses() -> None:
    (app,) = parse("APPLICATION shop (USE air; USE untill;);").statements
    assert isinstance(app, ast.ApplicationStmt)
    assert app.name == "shop"
    assert [u.name for u in app.uses] == ["air", "untill"]
    (empty,) = parse("APPLICATION shop();").statements
    assert isinstance(empty, ast.ApplicationStmt) and empty.uses == ()


def test_declare() -> None:
    (d,) = parse("DECLARE MaxRate int32 DEFAULT 100;").statements
    assert isinstance(d, ast.DeclareStmt)
    assert (d.name, d.data_type, d.default) == ("MaxRate", ast.DataKind.INT32, 100)
    (d2,) = parse("DECLARE x int DEFAULT -5;").statements
    assert isinstance(d2, ast.DeclareStmt) and d2.default == -5


def test_template() -> None:
    (t,) = parse("TEMPLATE demo OF WORKSPACE air.Restaurant SOURCE wsTemplateDemo;").statements
    assert isinstance(t, ast.TemplateStmt)
    assert (t.name, str(t.workspace), t.source) == ("demo", "air.Restaurant", "wsTemplateDemo")


def test_role_and_published_role_at_package_level() -> None:
    r1, r2 = parse("ROLE Admin; PUBLISHED ROLE Api;").statements
    assert isinstance(r1, ast.RoleStmt) and not r1.published
    assert isinstance(r2, ast.RoleStmt) and r2.published and r2.name == "Api"


# ---------------------------------------------------------------- workspaces


def test_workspace_modifiers_inherits_and_descriptor() -> None:
    f = parse(
        """
        ABSTRACT WORKSPACE Base ();
        ALTERABLE WORKSPACE Shop INHERITS Base, pkg.Other (
            DESCRIPTOR ShopInfo (Name varchar NOT NULL);
            TABLE T INHERITS sys.CDoc ();
            POOL OF WORKSPACE Pool ();
        );
        WORKSPACE Plain (DESCRIPTOR (A int););
        """
    )
    base, shop, plain = f.statements
    assert isinstance(base, ast.WorkspaceStmt) and base.abstract and not base.alterable
    assert base.descriptor is None
    assert isinstance(shop, ast.WorkspaceStmt) and shop.alterable and not shop.abstract
    assert names(shop.inherits) == ["Base", "pkg.Other"]
    assert shop.descriptor is not None and shop.descriptor.name == "ShopInfo"
    assert [i.name for i in shop.descriptor.items if isinstance(i, ast.FieldItem)] == ["Name"]
    table, pool = shop.statements
    assert isinstance(table, ast.TableStmt)
    assert isinstance(pool, ast.WorkspaceStmt) and pool.pool and pool.name == "Pool"
    assert isinstance(plain, ast.WorkspaceStmt) and plain.descriptor is not None
    assert plain.descriptor.name == ""


def test_alter_workspace_and_use_workspace() -> None:
    (alter,) = parse("ALTER WORKSPACE sys.AppWorkspaceWS (USE WORKSPACE Shop; ROLE R;);").statements
    assert isinstance(alter, ast.AlterWorkspaceStmt)
    assert (alter.name.package, alter.name.name) == ("sys", "AppWorkspaceWS")
    use, role = alter.statements
    assert isinstance(use, ast.UseWorkspaceStmt) and use.workspace.value == "Shop"
    assert isinstance(role, ast.RoleStmt)


def test_tag_with_feature() -> None:
    t1, t2 = ws_stmts("TAG Backoffice FEATURE 'Backoffice Management'; TAG Pos;")
    assert isinstance(t1, ast.TagStmt) and t1.feature == "Backoffice Management"
    assert isinstance(t2, ast.TagStmt) and t2.feature is None


# ---------------------------------------------------------------- tables


def test_table_fields_of_every_data_type_and_alias() -> None:
    aliases = {
        "varchar": (ast.DataKind.VARCHAR, None),
        "varchar(20)": (ast.DataKind.VARCHAR, 20),
        "text": (ast.DataKind.VARCHAR, None),
        "character varying(7)": (ast.DataKind.VARCHAR, 7),
        "bytes": (ast.DataKind.BYTES, None),
        "varbinary(10)": (ast.DataKind.BYTES, 10),
        "binary varying": (ast.DataKind.BYTES, None),
        "int8": (ast.DataKind.INT8, None),
        "tinyint": (ast.DataKind.INT8, None),
        "int16": (ast.DataKind.INT16, None),
        "smallint": (ast.DataKind.INT16, None),
        "int": (ast.DataKind.INT32, None),
        "int32": (ast.DataKind.INT32, None),
        "integer": (ast.DataKind.INT32, None),
        "int64": (ast.DataKind.INT64, None),
        "bigint": (ast.DataKind.INT64, None),
        "float32": (ast.DataKind.FLOAT32, None),
        "float": (ast.DataKind.FLOAT32, None),
        "real": (ast.DataKind.FLOAT32, None),
        "float64": (ast.DataKind.FLOAT64, None),
        "double precision": (ast.DataKind.FLOAT64, None),
        "timestamp": (ast.DataKind.TIMESTAMP, None),
        "money": (ast.DataKind.CURRENCY, None),
        "currency": (ast.DataKind.CURRENCY, None),
        "bool": (ast.DataKind.BOOL, None),
        "boolean": (ast.DataKind.BOOL, None),
        "blob": (ast.DataKind.BLOB, None),
        "binary large object": (ast.DataKind.BLOB, None),
        "qname": (ast.DataKind.QNAME, None),
        "qualified name": (ast.DataKind.QNAME, None),
    }
    fields = ",\n".join(f"F{i} {t}" for i, t in enumerate(aliases))
    table = one(f"TABLE T INHERITS sys.CDoc ({fields});")
    assert isinstance(table, ast.TableStmt)
    got = []
    for item in table.items:
        assert isinstance(item, ast.FieldItem) and isinstance(item.type, ast.DataType)
        got.append((item.type.kind, item.type.length))
    assert got == list(aliases.values())


def test_table_field_options() -> None:
    table = one(
        """TABLE T INHERITS sys.CDoc (
            A varchar NOT NULL VERIFIABLE,
            B int DEFAULT 1 CHECK (B >= 1 AND B < 10),
            C varchar DEFAULT 'x' CHECK '^[a-z]+$',
            D varchar(8) CHECK '^[0-9]{8}$'
        ) WITH Comment='a table', Tags=(Tag1, pkg.Tag2);"""
    )
    assert isinstance(table, ast.TableStmt)
    a, b, c, d = table.items
    assert isinstance(a, ast.FieldItem) and a.not_null and a.verifiable
    assert isinstance(b, ast.FieldItem) and b.default_int == 1
    assert isinstance(b.check_expr, ast.BinaryOp) and b.check_expr.op == "AND"
    assert isinstance(c, ast.FieldItem) and c.default_str == "x" and c.check_regexp == "^[a-z]+$"
    assert isinstance(d, ast.FieldItem) and d.check_regexp_pos == ast.Pos("file.vsql", 6, 32)
    assert table.comment == "a table"
    assert names(table.tags) == ["Tag1", "pkg.Tag2"]


def test_table_refs_nested_tables_containers_and_field_sets() -> None:
    table = one(
        """ABSTRACT TABLE T INHERITS pkg.Base (
            pkg.Named,
            AnyRef ref,
            OneRef ref(Other) NOT NULL,
            TwoRefs ref(A, pkg.B),
            Items TABLE Item (Qty int, Sub TABLE SubItem ()) WITH Tags=(X),
            Extra OtherRecord
        );"""
    )
    assert isinstance(table, ast.TableStmt) and table.abstract
    assert table.inherits is not None and str(table.inherits) == "pkg.Base"
    fset, any_ref, one_ref, two, nested, container = table.items
    assert isinstance(fset, ast.FieldSetItem) and str(fset.type) == "pkg.Named"
    assert isinstance(any_ref, ast.RefFieldItem) and any_ref.refs == ()
    assert isinstance(one_ref, ast.RefFieldItem) and one_ref.not_null and names(one_ref.refs) == ["Other"]
    assert isinstance(two, ast.RefFieldItem) and names(two.refs) == ["A", "pkg.B"]
    assert isinstance(nested, ast.NestedTableItem) and nested.container == "Items"
    assert nested.table.name == "Item" and names(nested.table.tags) == ["X"]
    sub = nested.table.items[1]
    assert isinstance(sub, ast.NestedTableItem) and sub.table.name == "SubItem"
    assert isinstance(container, ast.FieldItem) and isinstance(container.type, ast.DefQName)


def test_table_constraints() -> None:
    table = one(
        """TABLE T INHERITS sys.CDoc (
            A int, B int, C varchar,
            UNIQUE (A, B),
            CONSTRAINT UniqC UNIQUE (C),
            UNIQUEFIELD C,
            CONSTRAINT ByFunc CHECK (Validate(this)),
            CHECK (A > 0)
        );"""
    )
    assert isinstance(table, ast.TableStmt)
    u1, u2, uf, c1, c2 = table.items[3:]
    assert isinstance(u1, ast.UniqueConstraint) and u1.name is None
    assert [f.value for f in u1.fields] == ["A", "B"]
    assert isinstance(u2, ast.UniqueConstraint) and u2.name == "UniqC"
    assert isinstance(uf, ast.UniqueFieldConstraint) and uf.field.value == "C"
    assert isinstance(c1, ast.CheckConstraint) and c1.name == "ByFunc"
    assert isinstance(c1.expr, ast.FuncCall) and str(c1.expr.name) == "Validate"
    assert isinstance(c2, ast.CheckConstraint) and isinstance(c2.expr, ast.BinaryOp)


def test_quoted_identifiers() -> None:
    table = one('TABLE "Quoted" INHERITS sys.CDoc ("bytes" bytes);')
    assert isinstance(table, ast.TableStmt) and table.name == "Quoted"
    item = table.items[0]
    assert isinstance(item, ast.FieldItem) and item.name == "bytes"


def test_type_statement() -> None:
    t = one("TYPE Order (Name text NOT NULL, Lines Line, Base);")
    assert isinstance(t, ast.TypeStmt) and t.name == "Order"
    assert [type(i).__name__ for i in t.items] == ["FieldItem", "FieldItem", "FieldSetItem"]


# ---------------------------------------------------------------- views


def test_view_with_composite_primary_key() -> None:
    v = one(
        """VIEW Sales (
            Year int32, Month int32, Day int32 NOT NULL,
            Bill ref(Order) NOT NULL, Amount currency,
            Rec record,
            PRIMARY KEY ((Year, Month), Day, Bill)
        ) AS RESULT OF SalesProjector WITH Comment='sales';"""
    )
    assert isinstance(v, ast.ViewStmt)
    assert str(v.result_of) == "SalesProjector" and v.comment == "sales"
    pk = v.primary_key
    assert pk is not None
    assert [f.value for f in pk.partition] == ["Year", "Month"]
    assert [f.value for f in pk.clustering] == ["Day", "Bill"]
    assert pk.pos == ast.Pos("file.vsql", 6, 26)
    kinds = [type(f).__name__ for f in v.fields]
    assert kinds == ["ViewField", "ViewField", "ViewField", "ViewRefField", "ViewField", "ViewRecordField"]


@pytest.mark.parametrize(
    ("key", "partition", "clustering"),
    [
        ("((a), b)", ["a"], ["b"]),
        ("((a) b)", ["a"], ["b"]),
        ("(a, b)", [], ["a", "b"]),
        ("((a, b))", ["a", "b"], []),
        ("()", [], []),
    ],
)
def test_primary_key_forms(key: str, partition: list[str], clustering: list[str]) -> None:
    v = one(f"VIEW V (a int, b int, PRIMARY KEY {key}) AS RESULT OF P;")
    assert isinstance(v, ast.ViewStmt) and v.primary_key is not None
    assert [f.value for f in v.primary_key.partition] == partition
    assert [f.value for f in v.primary_key.clustering] == clustering


# ---------------------------------------------------------------- extensions


def test_commands() -> None:
    stmts = one(
        """EXTENSION ENGINE WASM (
            COMMAND A;
            COMMAND B();
            COMMAND C(Order, UNLOGGED Secret) RETURNS Result;
            COMMAND D(UNLOGGED Secret);
            COMMAND E(any) STATE(sys.AppSecret) INTENTS(sys.Record(T1, T2)) RETURNS void WITH Tags=(X);
        );"""
    )
    assert isinstance(stmts, ast.ExtEngineStmt) and stmts.engine is ast.Engine.WASM
    a, b, c, d, e = stmts.statements
    assert isinstance(a, ast.CommandStmt) and a.param is None and a.engine is ast.Engine.WASM
    assert isinstance(b, ast.CommandStmt) and b.param is None
    assert isinstance(c, ast.CommandStmt)
    assert c.param is not None and c.param.kind is ast.ParamKind.DEF and str(c.param.type) == "Order"
    assert c.unlogged_param is not None and str(c.unlogged_param.type) == "Secret"
    assert c.returns is not None and str(c.returns.type) == "Result"
    assert isinstance(d, ast.CommandStmt) and d.param is None and d.unlogged_param is not None
    assert isinstance(e, ast.CommandStmt)
    assert e.param is not None and e.param.kind is ast.ParamKind.ANY
    assert e.returns is not None and e.returns.kind is ast.ParamKind.VOID
    assert [str(s.storage) for s in e.state] == ["sys.AppSecret"]
    assert names(e.intents[0].entities) == ["T1", "T2"]
    assert names(e.tags) == ["X"]


def test_queries() -> None:
    q1 = ext("QUERY Q1 RETURNS void")
    assert isinstance(q1, ast.QueryStmt) and q1.param is None
    q2 = ext("QUERY Q2() RETURNS any WITH Comment='c'")
    assert isinstance(q2, ast.QueryStmt) and q2.comment == "c"
    assert q2.returns is not None and q2.returns.kind is ast.ParamKind.ANY
    q3 = ext("QUERY Q3(sys.Raw) STATE(sys.Http, sys.AppSecret) RETURNS Res")
    assert isinstance(q3, ast.QueryStmt) and q3.param is not None and str(q3.param.type) == "sys.Raw"
    assert len(q3.state) == 2
    q4 = ext("QUERY Q4")
    assert isinstance(q4, ast.QueryStmt) and q4.returns is None


def test_projectors() -> None:
    stmt = one(
        """EXTENSION ENGINE BUILTIN (
            SYNC PROJECTOR P1 AFTER INSERT ON T INTENTS(sys.View(V));
            PROJECTOR P2 AFTER EXECUTE ON (C1, pkg.C2) STATE(sys.Http);
            PROJECTOR P3 AFTER EXECUTE WITH PARAM ON Param;
            PROJECTOR P4 AFTER INSERT OR UPDATE OR ACTIVATE OR DEACTIVATE ON (T1, T2) INCLUDING ERRORS;
            PROJECTOR P5 AFTER INSERT ON T OR AFTER EXECUTE ON C;
            PROJECTOR P6 CRON '1 0 * * *';
        );"""
    )
    assert isinstance(stmt, ast.ExtEngineStmt)
    p1, p2, p3, p4, p5, p6 = stmt.statements
    assert isinstance(p1, ast.ProjectorStmt) and p1.sync
    assert p1.triggers[0].actions == (ast.TableAction.INSERT,)
    assert isinstance(p2, ast.ProjectorStmt) and not p2.sync
    assert p2.triggers[0].execute and names(p2.triggers[0].on) == ["C1", "pkg.C2"]
    assert isinstance(p3, ast.ProjectorStmt) and p3.triggers[0].with_param
    assert isinstance(p4, ast.ProjectorStmt) and p4.including_errors
    assert p4.triggers[0].actions == tuple(ast.TableAction)
    assert isinstance(p5, ast.ProjectorStmt) and len(p5.triggers) == 2
    assert isinstance(p6, ast.ProjectorStmt) and p6.triggers[0].cron == "1 0 * * *"


def test_job_and_function() -> None:
    job = ext("JOB J '@every 2m30s' STATE(sys.Http) INTENTS(sys.View(V))")
    assert isinstance(job, ast.JobStmt) and job.cron == "@every 2m30s"
    assert job.cron_pos is not None
    bare = ext("JOB K")
    assert isinstance(bare, ast.JobStmt) and bare.cron is None
    f = parse("EXTENSION ENGINE WASM (FUNCTION Check(Row, Amount int, pkg.T) RETURNS boolean;);")
    engine = f.statements[0]
    assert isinstance(engine, ast.ExtEngineStmt)
    fn = engine.statements[0]
    assert isinstance(fn, ast.FunctionStmt) and fn.engine is ast.Engine.WASM
    assert [(p.name, str(p.type) if isinstance(p.type, ast.DefQName) else p.type.kind) for p in fn.params] == [
        (None, "Row"),
        ("Amount", ast.DataKind.INT32),
        (None, "pkg.T"),
    ]
    assert isinstance(fn.returns, ast.DataType) and fn.returns.kind is ast.DataKind.BOOL


def test_storage() -> None:
    f = parse(
        """EXTENSION ENGINE BUILTIN (
            STORAGE Record(GET SCOPE(COMMANDS, QUERIES), INSERT SCOPE(COMMANDS)) ENTITY RECORD;
            STORAGE View(READ SCOPE(PROJECTORS, JOBS), GETBATCH SCOPE(JOBS)) ENTITY VIEW;
            STORAGE Logger(UPDATE SCOPE(COMMANDS));
        );"""
    )
    engine = f.statements[0]
    assert isinstance(engine, ast.ExtEngineStmt)
    rec, view, log = engine.statements
    assert isinstance(rec, ast.StorageStmt) and rec.entity_record and not rec.entity_view
    assert [(o.op, o.scopes) for o in rec.ops] == [
        ("GET", (ast.StorageScope.COMMANDS, ast.StorageScope.QUERIES)),
        ("INSERT", (ast.StorageScope.COMMANDS,)),
    ]
    assert isinstance(view, ast.StorageStmt) and view.entity_view
    assert [o.op for o in view.ops] == ["READ", "GETBATCH"]
    assert isinstance(log, ast.StorageStmt) and not (log.entity_record or log.entity_view)


# ---------------------------------------------------------------- ACL


def privilege(text: str) -> ast.Privilege:
    stmt = one(text)
    assert isinstance(stmt, ast.GrantStmt | ast.RevokeStmt)
    return stmt.privilege


def test_grant_role_inheritance() -> None:
    g = one("GRANT Admin TO pkg.Manager;")
    assert isinstance(g, ast.GrantStmt) and str(g.to) == "pkg.Manager"
    assert g.privilege.kind is ast.ResourceKind.ROLE and str(g.privilege.name) == "Admin"


@pytest.mark.parametrize(
    ("text", "kind", "scope", "ops", "tag"),
    [
        ("EXECUTE ON COMMAND C", ast.ResourceKind.COMMAND, ast.TargetScope.ONE, ["EXECUTE"], None),
        ("EXECUTE ON ALL COMMANDS", ast.ResourceKind.COMMAND, ast.TargetScope.ALL, ["EXECUTE"], None),
        ("EXECUTE ON ALL COMMANDS WITH TAG T", ast.ResourceKind.COMMAND, ast.TargetScope.ALL, ["EXECUTE"], "T"),
        ("EXECUTE ON QUERY Q", ast.ResourceKind.QUERY, ast.TargetScope.ONE, ["EXECUTE"], None),
        ("EXECUTE ON ALL QUERIES WITH TAG p.T", ast.ResourceKind.QUERY, ast.TargetScope.ALL, ["EXECUTE"], "p.T"),
        ("SELECT ON VIEW V", ast.ResourceKind.VIEW, ast.TargetScope.ONE, ["SELECT"], None),
        ("SELECT ON ALL VIEWS", ast.ResourceKind.VIEW, ast.TargetScope.ALL, ["SELECT"], None),
        ("SELECT ON ALL VIEWS WITH TAG T", ast.ResourceKind.VIEW, ast.TargetScope.ALL, ["SELECT"], "T"),
        ("SELECT, INSERT ON TABLE T", ast.ResourceKind.TABLE, ast.TargetScope.ONE, ["SELECT", "INSERT"], None),
        (
            "SELECT, INSERT, UPDATE, ACTIVATE, DEACTIVATE ON ALL TABLES WITH TAG T",
            ast.ResourceKind.TABLE,
            ast.TargetScope.ALL,
            ["SELECT", "INSERT", "UPDATE", "ACTIVATE", "DEACTIVATE"],
            "T",
        ),
        ("INSERT ON ALL TABLES", ast.ResourceKind.TABLE, ast.TargetScope.ALL, ["INSERT"], None),
    ],
)
def test_grant_forms(
    text: str, kind: ast.ResourceKind, scope: ast.TargetScope, ops: list[str], tag: str | None
) -> None:
    for stmt in (f"GRANT {text} TO R;", f"REVOKE {text} FROM R;"):
        p = privilege(stmt)
        assert (p.kind, p.scope) == (kind, scope)
        assert [o.op for o in p.ops] == ops
        assert (str(p.tag) if p.tag else None) == tag
        assert not p.all_ops


def test_grant_all_and_columns() -> None:
    p = privilege("GRANT ALL ON ALL TABLES WITH TAG T TO R;")
    assert p.all_ops and p.scope is ast.TargetScope.ALL
    p = privilege("GRANT ALL(A, B) ON TABLE T TO R;")
    assert p.all_ops and [c.value for c in p.all_columns] == ["A", "B"]
    p = privilege("GRANT SELECT(Price, sys.ID), UPDATE(Name) ON TABLE T TO R;")
    assert [(o.op, [c.value for c in o.columns]) for o in p.ops] == [
        (ast.Operation.SELECT, ["Price", "sys.ID"]),
        (ast.Operation.UPDATE, ["Name"]),
    ]
    p = privilege("REVOKE SELECT(Year) ON VIEW V FROM R;")
    assert p.kind is ast.ResourceKind.VIEW and [c.value for c in p.ops[0].columns] == ["Year"]


# ---------------------------------------------------------------- rates and limits


def test_rates() -> None:
    r1, r2, r3, r4, r5 = ws_stmts(
        """RATE R1 1000 PER HOUR;
        RATE R2 3 PER 5 MINUTES PER APP PARTITION PER IP;
        RATE R3 10 PER DAY PER WORKSPACE;
        RATE R4 Var PER SECOND PER SUBJECT;
        RATE R5 1 PER YEARS;"""
    )
    assert isinstance(r1, ast.RateStmt) and (r1.count, r1.per_amount, r1.unit) == (1000, 1, ast.TimeUnit.HOUR)
    assert r1.object_scope is None and r1.subject_scope is None
    assert isinstance(r2, ast.RateStmt) and (r2.per_amount, r2.unit) == (5, ast.TimeUnit.MINUTE)
    assert r2.object_scope is ast.RateObjectScope.APP_PARTITION and r2.subject_scope is ast.RateSubjectScope.IP
    assert isinstance(r3, ast.RateStmt) and r3.object_scope is ast.RateObjectScope.WORKSPACE
    assert isinstance(r4, ast.RateStmt) and r4.count is None and str(r4.variable) == "Var"
    assert r4.subject_scope is ast.RateSubjectScope.SUBJECT
    assert isinstance(r5, ast.RateStmt) and r5.unit is ast.TimeUnit.YEAR


@pytest.mark.parametrize(
    ("text", "kind", "scope", "name", "tag", "ops"),
    [
        ("ON COMMAND C", ast.ResourceKind.COMMAND, ast.TargetScope.ONE, "C", None, []),
        ("ON QUERY p.Q", ast.ResourceKind.QUERY, ast.TargetScope.ONE, "p.Q", None, []),
        ("ON TABLE T", ast.ResourceKind.TABLE, ast.TargetScope.ONE, "T", None, []),
        ("ON VIEW V", ast.ResourceKind.VIEW, ast.TargetScope.ONE, "V", None, []),
        ("ON ALL COMMANDS", ast.ResourceKind.COMMAND, ast.TargetScope.ALL, None, None, []),
        ("ON ALL QUERIES WITH TAG T", ast.ResourceKind.QUERY, ast.TargetScope.ALL, None, "T", []),
        ("ON ALL TABLES WITH TAG T", ast.ResourceKind.TABLE, ast.TargetScope.ALL, None, "T", []),
        ("ON ALL VIEWS", ast.ResourceKind.VIEW, ast.TargetScope.ALL, None, None, []),
        ("ON EACH COMMAND WITH TAG T", ast.ResourceKind.COMMAND, ast.TargetScope.EACH, None, "T", []),
        ("ON EACH QUERY", ast.ResourceKind.QUERY, ast.TargetScope.EACH, None, None, []),
        ("ON EACH TABLE", ast.ResourceKind.TABLE, ast.TargetScope.EACH, None, None, []),
        ("ON EACH VIEW", ast.ResourceKind.VIEW, ast.TargetScope.EACH, None, None, []),
        ("INSERT, UPDATE ON TABLE T", ast.ResourceKind.TABLE, ast.TargetScope.ONE, "T", None, ["INSERT", "UPDATE"]),
        ("EXECUTE ON ALL COMMANDS", ast.ResourceKind.COMMAND, ast.TargetScope.ALL, None, None, ["EXECUTE"]),
    ],
)
def test_limit_forms(
    text: str, kind: ast.ResourceKind, scope: ast.TargetScope, name: str | None, tag: str | None, ops: list[str]
) -> None:
    lim = one(f"LIMIT L {text} WITH RATE R;")
    assert isinstance(lim, ast.LimitStmt) and str(lim.rate) == "R"
    f = lim.filter
    assert (f.kind, f.scope) == (kind, scope)
    assert (str(f.name) if f.name else None) == name
    assert (str(f.tag) if f.tag else None) == tag
    assert [o.op for o in lim.ops] == ops


# ---------------------------------------------------------------- expressions


def check_expr(text: str) -> ast.Expr:
    t = one(f"TABLE T INHERITS sys.CDoc (A int, CHECK ({text}));")
    assert isinstance(t, ast.TableStmt)
    c = t.items[1]
    assert isinstance(c, ast.CheckConstraint)
    return c.expr


def test_expressions() -> None:
    e = check_expr("A = 1 OR NOT B <> 2 AND C IS NOT NULL")
    assert isinstance(e, ast.BinaryOp) and e.op == "OR"
    assert isinstance(e.right, ast.BinaryOp) and e.right.op == "AND"
    assert isinstance(e.right.left, ast.UnaryOp) and e.right.left.op == "NOT"
    assert isinstance(e.right.right, ast.IsNull) and e.right.right.negated
    e = check_expr("A BETWEEN 1 AND 10 AND B IN (1, 2, 3)")
    assert isinstance(e, ast.BinaryOp) and isinstance(e.left, ast.Between) and isinstance(e.right, ast.InList)
    assert len(e.right.items) == 3
    e = check_expr("A + 2 * 3 >= f(B, 'x', 1.5, TRUE, FALSE, NULL) - 1")
    assert isinstance(e, ast.BinaryOp) and e.op == ">="
    assert isinstance(e.left, ast.BinaryOp) and e.left.op == "+"
    assert isinstance(e.left.right, ast.BinaryOp) and e.left.right.op == "*"
    call = e.right
    assert isinstance(call, ast.BinaryOp) and isinstance(call.left, ast.FuncCall)
    assert [a.value for a in call.left.args if isinstance(a, ast.Literal)] == ["x", 1.5, True, False, None]
    e = check_expr("(A) IS NULL")
    assert isinstance(e, ast.IsNull) and not e.negated and isinstance(e.operand, ast.SymbolRef)
    for op in ("=", "<>", "!=", "<", ">", "<=", ">="):
        e = check_expr(f"A {op} pkg.B")
        assert isinstance(e, ast.BinaryOp) and e.op == op


def test_keywords_are_case_sensitive() -> None:
    from voedger.vsql import VSQLError

    with pytest.raises(VSQLError):
        parse("workspace W ();")
    # lowercase keywords are ordinary names where a name is expected
    t = one("TABLE T INHERITS sys.CDoc (name varchar, role int, view text);")
    assert isinstance(t, ast.TableStmt)
    assert [i.name for i in t.items if isinstance(i, ast.FieldItem)] == ["name", "role", "view"]


def test_positions_of_statements_and_references() -> None:
    f = parse("WORKSPACE W (\n    TABLE T INHERITS sys.CDoc (\n        R ref(Other)\n    );\n);")
    (w,) = f.statements
    assert isinstance(w, ast.WorkspaceStmt) and w.pos == ast.Pos("file.vsql", 1, 1)
    t = w.statements[0]
    assert isinstance(t, ast.TableStmt) and t.pos == ast.Pos("file.vsql", 2, 5)
    assert t.inherits is not None and t.inherits.pos == ast.Pos("file.vsql", 2, 22)
    r = t.items[0]
    assert isinstance(r, ast.RefFieldItem) and r.pos == ast.Pos("file.vsql", 3, 9)
    assert r.refs[0].pos == ast.Pos("file.vsql", 3, 15)


def test_a_package_may_be_named_like_a_data_type() -> None:
    t = one("TABLE T INHERITS sys.CDoc (A money.Amount, B money, C text(5));")
    assert isinstance(t, ast.TableStmt)
    a, b, c = t.items
    assert isinstance(a, ast.FieldItem) and isinstance(a.type, ast.DefQName) and str(a.type) == "money.Amount"
    assert a.type.pos == ast.Pos("file.vsql", 2, 30)
    assert isinstance(b, ast.FieldItem) and isinstance(b.type, ast.DataType)
    assert isinstance(c, ast.FieldItem) and isinstance(c.type, ast.DataType) and c.type.length == 5
