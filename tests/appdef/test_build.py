"""Building AppDefs from VSQL: the sys package, the sample application, and the translation rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.appdef.conftest import BuildFn
from voedger.appdef import (
    NESTED_MAX_OCCURS,
    SYS_WORKSPACE,
    AppDef,
    DataKind,
    ExtensionEngine,
    LimitOption,
    OperationKind,
    PolicyKind,
    QName,
    RateScope,
    StorageEntity,
    StorageOp,
    StorageScope,
    TypeKind,
)
from voedger.vsql.errors import VSQLError

Q = QName.parse


class TestSysPackage:
    def test_abstract_tables(self, sys_app: AppDef) -> None:
        for name, kind in [
            ("CDoc", TypeKind.CDoc),
            ("WDoc", TypeKind.WDoc),
            ("ODoc", TypeKind.ODoc),
            ("CRecord", TypeKind.CRecord),
            ("WRecord", TypeKind.WRecord),
            ("ORecord", TypeKind.ORecord),
            ("CSingleton", TypeKind.CDoc),
            ("WSingleton", TypeKind.WDoc),
        ]:
            t = sys_app.structure(f"sys.{name}")
            assert t.kind is kind and t.abstract, name
        assert sys_app.structure("sys.CSingleton").singleton
        assert sys_app.structure("sys.CDoc").inherits == Q("sys.CRecord")

    def test_system_tables(self, sys_app: AppDef) -> None:
        desc = sys_app.structure("sys.WorkspaceDescriptor")
        assert desc.kind is TypeKind.CDoc and desc.singleton and not desc.abstract
        assert desc.field("WSKind").kind is DataKind.QName  # type: ignore[union-attr]
        assert desc.field("CreatedAtMs").required  # type: ignore[union-attr]
        assert desc.has_tag(Q("sys.WorkspaceOwnerTableTag"))
        assert sys_app.structure("sys.Subject").unique_field == "Login"
        assert sys_app.structure("sys.BLOB").kind is TypeKind.WDoc
        assert sys_app.structure("sys.Raw").field("Body").max_len == 65535  # type: ignore[union-attr]
        for name in ("WorkspaceID", "ChildWorkspace", "Invite", "JoinedWorkspace", "Heartbeat30"):
            assert sys_app.find(f"sys.{name}") is not None, name

    def test_views_and_their_projectors(self, sys_app: AppDef) -> None:
        names = {
            "RecordsRegistry",
            "CollectionView",
            "Uniques",
            "WLogDates",
            "WorkspaceIDIdx",
            "ChildWorkspaceIdx",
            "InviteIndexView",
            "JoinedWorkspaceIndexView",
            "ViewSubjectsIdx",
            "WRecordChildrenIdx",  # ours: the records of WDocs by parent, for API v2 include
        }
        assert {v.qname.entity for v in sys_app.views()} == names
        for v in sys_app.views():
            p = sys_app.projector(v.result_of)  # type: ignore[arg-type]
            assert p.intent(Q("sys.View")) is not None and v.qname in p.intent(Q("sys.View")).entities  # type: ignore[union-attr]
            assert p.sync is (v.qname.entity != "WLogDates"), v.qname
        uniques = sys_app.view("sys.Uniques")
        assert [f.name for f in uniques.partition_key] == ["QName", "ValuesHash"]
        assert [f.name for f in uniques.clustering_columns] == ["Values"]
        assert sys_app.view("sys.CollectionView").field("Record").kind is DataKind.Record  # type: ignore[union-attr]
        assert sys_app.projector("sys.ProjectorWLogDates").want_errors

    def test_builtin_functions(self, sys_app: AppDef) -> None:
        cud = sys_app.command("sys.CUD")
        assert cud.engine is ExtensionEngine.BuiltIn and cud.param is None
        assert sys_app.query("sys.Collection").result == Q("sys.ANY")
        assert sys_app.query("sys.Echo").param == Q("sys.EchoParams")
        assert sys_app.query("sys.Echo").has_tag(Q("sys.AllowedToEveryoneTag"))
        assert sys_app.query("sys.DownloadBLOBAuthnz").result is None
        for name in ("Init", "InitChildWorkspace", "CreateWorkspaceID", "CreateWorkspace", "RenameQName"):
            assert sys_app.command(f"sys.{name}").qname.entity == name
        for name in ("GetCDoc", "State", "Journal", "SqlQuery", "QueryChildWorkspaceByName", "Modules"):
            assert sys_app.query(f"sys.{name}").qname.entity == name
        assert all(e.engine is ExtensionEngine.BuiltIn for e in sys_app.extensions())

    def test_projector_triggers_on_abstract_kinds(self, sys_app: AppDef) -> None:
        p = sys_app.projector("sys.ApplyUniques")
        assert p.triggers(OperationKind.Insert, sys_app.type("sys.Subject"))
        assert p.triggers(OperationKind.Update, sys_app.type("sys.BLOB"))
        assert not p.triggers(OperationKind.Activate, sys_app.type("sys.Subject"))
        coll = sys_app.projector("sys.ProjectorCollection")
        assert not coll.triggers(OperationKind.Insert, sys_app.type("sys.BLOB"))  # CRecords only
        invite = sys_app.projector("sys.ApplyInviteEvents")
        assert invite.triggers(OperationKind.Execute, sys_app.type("sys.CancelSentInvite"))
        assert invite.state(Q("sys.AppSecret")) is not None and invite.intent(Q("sys.SendMail")) is not None

    def test_workspaces(self, sys_app: AppDef) -> None:
        sys_ws = sys_app.sys_workspace
        assert sys_ws.abstract and sys_ws.ancestors == () and sys_ws.descriptor is None
        app_ws = sys_app.workspace("sys.AppWorkspaceWS")
        assert app_ws.alterable and app_ws.descriptor == Q("sys.AppWorkspace")
        assert sys_app.structure("sys.AppWorkspace").singleton
        user = sys_app.workspace("sys.UserProfileWS")
        assert user.ancestors == (SYS_WORKSPACE, Q("sys.ProfileWS"))
        assert user.descriptor == Q("sys.UserProfile")
        assert user.has_type("sys.RefreshPrincipalToken") and user.has_type("sys.CUD")
        assert sys_app.workspace_by_descriptor("sys.DeviceProfile") == sys_app.workspace("sys.DeviceProfileWS")
        assert sys_app.workspace("sys.ProfileWS").abstract

    def test_roles_and_acl(self, sys_app: AppDef) -> None:
        assert {r.qname.entity for r in sys_app.roles()} >= {
            "Everyone",
            "Anonymous",
            "AuthenticatedUser",
            "System",
            "ProfileOwner",
            "WorkspaceOwner",
            "WorkspaceDevice",
            "RoleWorkspaceOwner",
            "WorkspaceAdmin",
            "ClusterAdmin",
            "BLOBUploader",
        }
        rules = sys_app.sys_workspace.acl
        inherits = {(str(r.filter.qnames[0]), str(r.principal)) for r in rules if r.is_inheritance}
        assert ("sys.WorkspaceOwner", "sys.ProfileOwner") in inherits
        assert ("sys.Everyone", "sys.Anonymous") in inherits
        assert ("sys.BLOBUploader", "sys.WorkspaceOwner") in inherits
        tables = next(
            r for r in rules if r.filter.tags == (Q("sys.WorkspaceOwnerTableTag"),) and TypeKind.CDoc in r.filter.kinds
        )
        assert tables.ops == {
            OperationKind.Select,
            OperationKind.Insert,
            OperationKind.Update,
            OperationKind.Activate,
            OperationKind.Deactivate,
        }
        assert tables.filter.match(sys_app.type("sys.Subject"))
        assert all(r.policy is PolicyKind.Allow for r in rules)
        user_rules = list(sys_app.workspace("sys.UserProfileWS").rules())
        assert user_rules[: len(rules)] == list(rules)  # ancestors first
        assert any(r.filter.qnames == (Q("sys.UserProfile"),) for r in user_rules)

    def test_role_inheritance(self, sys_app: AppDef) -> None:
        ws = sys_app.workspace("sys.UserProfileWS")
        assert ws.expand_roles([Q("sys.ProfileOwner")]) == {
            Q("sys.ProfileOwner"),
            Q("sys.WorkspaceOwner"),
            Q("sys.BLOBUploader"),
        }
        assert ws.expand_roles([Q("sys.Anonymous")]) == {Q("sys.Anonymous"), Q("sys.Everyone")}
        assert ws.expand_roles([]) == frozenset()

    def test_rates_and_limits(self, sys_app: AppDef) -> None:
        rate = sys_app.rate("sys.VerifierRate")
        assert rate.count == 5 and rate.period == timedelta(minutes=10)
        assert rate.scopes == (RateScope.Workspace,)
        limit = sys_app.limit("sys.InitiateEmailVerificationLimit")
        assert limit.rate == rate.qname and limit.ops == {OperationKind.Execute}
        assert limit.filter.match(sys_app.type("sys.InitiateEmailVerification"))
        assert limit.option is LimitOption.EACH

    def test_storages(self, sys_app: AppDef) -> None:
        names = {s.qname.entity for s in sys_app.storages()}
        assert names == {
            "Record",
            "View",
            "Uniq",
            "WLog",
            "AppSecret",
            "RequestSubject",
            "Http",
            "FederationCommand",
            "FederationBlob",
            "SendMail",
            "Result",
            "Response",
            "Event",
            "CommandContext",
            "QueryContext",
            "JobContext",
            "Logger",
        }
        view = sys_app.storage("sys.View")
        assert view.entity is StorageEntity.View
        assert not view.can_write(StorageScope.Commands) and view.can_write(StorageScope.Projectors)
        assert sys_app.storage("sys.Record").allows(StorageOp.Insert, StorageScope.Commands)
        assert sys_app.storage("sys.Result").can_write(StorageScope.Queries)
        assert not sys_app.storage("sys.SendMail").can_read(StorageScope.Commands)


class TestSampleApp:
    def test_packages_and_workspaces(self, sample_app: AppDef) -> None:
        assert sample_app.name == "restaurant"
        # the main package, then the packages in the order they are imported, then sys
        assert [p.name for p in sample_app.packages] == [
            "restaurant",
            "staff",
            "menu",
            "service",
            "sales",
            "sys",
        ]
        assert all(not p.path.startswith("/") for p in sample_app.packages)
        ws = sample_app.workspace("restaurant.Restaurant")
        assert not ws.abstract and ws.descriptor == Q("restaurant.RestaurantDescriptor")
        assert ws.inherits("staff.Staff") and ws.inherits("menu.Menu") and ws.inherits("sys.Workspace")
        for name in (
            "menu.Article",
            "service.Order",
            "service.Bill",
            "sales.SalesByDay",
            "staff.Waiter",
            "sys.CUD",
        ):
            assert ws.has_type(name), name
        assert sample_app.workspace_by_descriptor("restaurant.RestaurantDescriptor") is ws

    def test_tables(self, sample_app: AppDef) -> None:
        article = sample_app.structure("menu.Article")
        assert article.kind is TypeKind.CDoc
        assert [f.name for f in article.fields[:3]] == ["sys.QName", "sys.ID", "sys.IsActive"]
        assert article.field("Price").kind is DataKind.int64  # type: ignore[union-attr]  # currency
        assert article.field("Category").refs == (Q("menu.Category"),)  # type: ignore[union-attr]
        assert article.field("Picture").refs == (Q("sys.BLOB"),)  # type: ignore[union-attr]
        assert article.field("Name").max_len == 100  # type: ignore[union-attr]
        opts = article.container("Options")
        assert opts is not None and opts.type == Q("menu.ArticleOption") and opts.max_occurs == NESTED_MAX_OCCURS
        assert sample_app.structure("menu.ArticleOption").kind is TypeKind.CRecord
        assert [u.fields for u in article.uniques] == [("Number",)]
        assert article.uniques[0].name == Q("menu.Article$uniques$01")
        assert sample_app.structure("menu.Category").uniques[0].name == Q("menu.Category$uniques$UniqueName")
        assert article.has_tag(Q("menu.MenuTag")) and sample_app.tag("menu.MenuTag").feature == "Menu"

    def test_orders_and_bills(self, sample_app: AppDef) -> None:
        order = sample_app.structure("service.Order")
        assert order.kind is TypeKind.ODoc and order.field("sys.IsActive") is None
        item = sample_app.structure("service.OrderItem")
        assert item.kind is TypeKind.ORecord and item.field("sys.ParentID") is not None
        assert sample_app.structure("service.Payment").kind is TypeKind.WRecord
        assert sample_app.structure("service.Bill").kind is TypeKind.WDoc
        params = sample_app.structure("service.CloseBillParams")
        assert params.kind is TypeKind.Object
        pay = params.container("Payment")
        assert pay is not None and (pay.min_occurs, pay.max_occurs) == (1, 1)
        emp = sample_app.structure("staff.Employee")
        assert emp.field("Email").verifiable and emp.unique_field == "Login"  # type: ignore[union-attr]
        assert emp.comment == "A person working in the restaurant"
        desc = sample_app.structure("restaurant.RestaurantDescriptor")
        assert desc.singleton and desc.field("Currency").pattern == "^[A-Z]{3}$"  # type: ignore[union-attr]

    def test_functions_projectors_views(self, sample_app: AppDef) -> None:
        make = sample_app.command("service.MakeOrder")
        assert make.param == Q("service.Order")
        close = sample_app.command("service.CloseBill")
        assert close.result == Q("service.CloseBillResult")
        sales = sample_app.projector("sales.ApplySales")
        assert not sales.sync
        assert sales.triggers(OperationKind.ExecuteWithParam, sample_app.type("service.Order"))
        assert sales.intent(Q("sys.View")).entities == (Q("sales.SalesByDay"), Q("sales.ArticleSales"))  # type: ignore[union-attr]
        assert sample_app.projector("service.IndexOpenBills").sync
        view = sample_app.view("sales.SalesByDay")
        assert [f.name for f in view.partition_key] == ["Location", "Year"]
        assert [f.name for f in view.clustering_columns] == ["Month", "Day"]
        assert [f.name for f in view.value] == ["Orders", "Amount", "offs"]
        assert view.result_of == Q("sales.ApplySales")
        q = sample_app.query("sales.DailySales")
        assert q.state(Q("sys.View")) is not None and q.result == Q("sales.DailySalesResult")
        job = sample_app.job("sales.NightlyDigest")
        assert job.cron == "0 3 * * *" and job.workspace == Q("sys.AppWorkspaceWS")
        assert sample_app.workspace("sys.AppWorkspaceWS").has_type("sales.NightlyRuns")

    def test_roles_and_acl(self, sample_app: AppDef) -> None:
        assert sample_app.role("staff.Waiter").published
        rules = list(sample_app.workspace("restaurant.Restaurant").rules())
        owner = [r for r in rules if r.is_inheritance and r.principal == Q("sys.WorkspaceOwner")]
        assert {r.filter.qnames[0] for r in owner} == {Q("staff.Owner"), Q("sys.BLOBUploader")}
        col = next(r for r in rules if r.fields == ("Available",))
        assert col.ops == {OperationKind.Update} and col.principal == Q("staff.Waiter")
        revoke = next(r for r in rules if r.policy is PolicyKind.Deny)
        assert revoke.fields == ("Number",) and revoke.principal == Q("staff.Manager")
        mgr = next(r for r in rules if r.principal == Q("staff.Manager") and r.filter.workspace is not None)
        assert mgr.ops == {OperationKind.Select, OperationKind.Insert, OperationKind.Update}
        assert mgr.filter.match(sample_app.type("service.Bill"))
        assert not mgr.filter.match(sample_app.type("menu.Article"))  # ALL TABLES: the workspace's own
        assert rules.index(revoke) > max(
            i for i, r in enumerate(rules) if r.workspace == revoke.workspace and r.policy is PolicyKind.Allow
        )
        assert len(sample_app.acl()) > len(sample_app.sys_workspace.acl)

    def test_staff_roles_inherit(self, sample_app: AppDef) -> None:
        ws = sample_app.workspace("restaurant.Restaurant")
        assert {Q("staff.Owner"), Q("staff.Manager"), Q("staff.Waiter")} <= ws.expand_roles([Q("sys.WorkspaceOwner")])
        assert ws.expand_roles([Q("staff.Manager")]) == {Q("staff.Manager"), Q("staff.Waiter")}

    def test_rates(self, sample_app: AppDef) -> None:
        rate = sample_app.rate("sales.SalesReportRate")
        assert rate.scopes == (RateScope.Workspace, RateScope.User) and rate.period == timedelta(minutes=1)
        assert sample_app.limit("sales.DailySalesLimit").filter.qnames == (Q("sales.DailySales"),)


class TestTranslation:
    def test_inherited_fields_come_first(self, build: BuildFn) -> None:
        app = build("""
            APPLICATION app();
            WORKSPACE W (
                ABSTRACT TABLE Base INHERITS sys.CDoc (A int32, Kids TABLE Kid (K int32));
                TABLE T INHERITS Base (B varchar);
                TABLE S INHERITS sys.WSingleton (X int8);
            );""")
        t = app.structure("app.T")
        assert [f.name for f in t.user_fields] == ["A", "B"]
        assert t.inherits == Q("app.Base") and not t.abstract and app.structure("app.Base").abstract
        assert t.container("Kids") is not None
        assert app.structure("app.S").kind is TypeKind.WDoc and app.structure("app.S").singleton
        assert app.structure("app.T").field("B").max_len == 255  # type: ignore[union-attr]

    def test_data_types(self, build: BuildFn) -> None:
        app = build("""
            APPLICATION app();
            WORKSPACE W (
                TYPE T (a int8, b int16, c int, d bigint, e float, f double precision, g bytes(10), h text,
                         i timestamp, j money, k boolean, l qualified name, m varchar(20) NOT NULL,
                         n int32 DEFAULT 7, o varchar DEFAULT 'x');
            );""")
        kinds = {f.name: f.kind for f in app.structure("app.T").user_fields}
        assert kinds == {
            "a": DataKind.int8,
            "b": DataKind.int16,
            "c": DataKind.int32,
            "d": DataKind.int64,
            "e": DataKind.float32,
            "f": DataKind.float64,
            "g": DataKind.bytes,
            "h": DataKind.string,
            "i": DataKind.int64,
            "j": DataKind.int64,
            "k": DataKind.bool,
            "l": DataKind.QName,
            "m": DataKind.string,
            "n": DataKind.int32,
            "o": DataKind.string,
        }
        t = app.structure("app.T")
        assert t.field("g").max_len == 10 and t.field("m").required  # type: ignore[union-attr]
        assert t.field("n").default == 7 and t.field("o").default == "x"  # type: ignore[union-attr]

    def test_field_sets_and_objects(self, build: BuildFn) -> None:
        app = build("""
            APPLICATION app();
            WORKSPACE W (
                TYPE Address (Street varchar, City varchar);
                TYPE Person (Name varchar, Address, Home Address, Work Address NOT NULL);
            );""")
        p = app.structure("app.Person")
        assert [f.name for f in p.user_fields] == ["Name", "Street", "City"]
        assert [(c.name, c.min_occurs, c.max_occurs) for c in p.containers] == [
            ("Home", 0, 1),
            ("Work", 1, 1),
        ]

    def test_default_descriptor_and_used_workspaces(self, build: BuildFn) -> None:
        app = build("""
            APPLICATION app();
            WORKSPACE Child ();
            POOL OF WORKSPACE W (DESCRIPTOR Desc (Name varchar); USE WORKSPACE Child; WORKSPACE Inner (););
            ABSTRACT WORKSPACE A ();""")
        assert app.workspace("app.Child").descriptor == Q("app.ChildDescriptor")
        assert app.structure("app.ChildDescriptor").singleton
        w = app.workspace("app.W")
        assert w.pool and w.descriptor == Q("app.Desc")
        assert w.used_workspaces == (Q("app.Inner"), Q("app.Child"))
        assert app.workspace("app.Inner").descriptor == Q("app.InnerDescriptor")
        assert w.has_type("app.Child") and not w.has_type("app.ChildDescriptor")
        assert app.workspace("app.A").descriptor is None

    def test_cross_package_references_and_alter(self, build: BuildFn) -> None:
        app = build(
            """
            IMPORT SCHEMA 'lib' AS l;
            APPLICATION app(USE lib);
            WORKSPACE W INHERITS l.Base (
                TABLE Doc INHERITS sys.CDoc (Item ref(l.Item));
                EXTENSION ENGINE WASM (COMMAND Do(l.Params) RETURNS any;);
                GRANT EXECUTE ON COMMAND Do TO l.Clerk;
            );
            ALTER WORKSPACE l.Shared (TABLE Extra INHERITS sys.CDoc (X int32););
            """,
            lib="""
            ALTERABLE WORKSPACE Shared ();
            ABSTRACT WORKSPACE Base (
                ROLE Clerk;
                TABLE Item INHERITS sys.CDoc (Name varchar);
                TYPE Params (X int32);
            );
            """,
        )
        assert app.structure("app.Doc").field("Item").refs == (Q("lib.Item"),)  # type: ignore[union-attr]
        do = app.command("app.Do")
        assert do.engine is ExtensionEngine.WASM and do.param == Q("lib.Params") and do.result == Q("sys.ANY")
        assert app.workspace("app.W").ancestors == (SYS_WORKSPACE, Q("lib.Base"))
        assert app.structure("app.Extra").workspace == Q("lib.Shared")
        assert app.workspace("lib.Shared").has_type("app.Extra")
        assert app.workspace("app.W").acl[0].principal == Q("lib.Clerk")

    def test_grants_group_ops_by_columns(self, build: BuildFn) -> None:
        app = build("""
            APPLICATION app();
            WORKSPACE W (
                ROLE R;
                TABLE T INHERITS sys.CDoc (A int32, B int32);
                VIEW V (K int32, C int32, X int32, PRIMARY KEY ((K), C)) AS RESULT OF P;
                EXTENSION ENGINE BUILTIN (PROJECTOR P AFTER INSERT ON T INTENTS(sys.View(V)););
                GRANT SELECT(A, B), UPDATE(A), INSERT ON TABLE T TO R;
                GRANT ALL(A) ON TABLE T TO R;
                GRANT SELECT(X) ON VIEW V TO R;
                GRANT INSERT, UPDATE ON ALL TABLES TO R;
                REVOKE ALL ON TABLE T FROM R;
            );""")
        rules = [(sorted(r.ops), r.fields, r.policy) for r in app.workspace("app.W").acl]
        assert rules == [
            (["Select"], ("A", "B"), PolicyKind.Allow),
            (["Update"], ("A",), PolicyKind.Allow),
            (["Insert"], (), PolicyKind.Allow),
            (["Insert", "Select", "Update"], ("A",), PolicyKind.Allow),
            (["Select"], ("X",), PolicyKind.Allow),
            (["Insert", "Update"], (), PolicyKind.Allow),
            (["Insert", "Select", "Update"], (), PolicyKind.Deny),
        ]

    def test_limits_over_all_and_each(self, build: BuildFn) -> None:
        app = build("""
            APPLICATION app();
            DECLARE Quota int32 DEFAULT 100;
            WORKSPACE W (
                TAG Heavy;
                EXTENSION ENGINE BUILTIN (COMMAND Import() WITH Tags=(Heavy););
                RATE R Quota PER HOUR PER IP;
                LIMIT L1 ON ALL COMMANDS WITH TAG Heavy WITH RATE R;
                LIMIT L2 SELECT ON EACH TABLE WITH RATE R;
            );""")
        r = app.rate("app.R")
        assert r.count == 100 and r.scopes == (RateScope.AppPartition, RateScope.IP)
        l1, l2 = app.limit("app.L1"), app.limit("app.L2")
        assert (
            l1.option is LimitOption.ALL and l1.filter.tags == (Q("app.Heavy"),) and l1.ops == {OperationKind.Execute}
        )
        assert l2.option is LimitOption.EACH and l2.ops == {OperationKind.Select} and TypeKind.CDoc in l2.filter.kinds

    def test_analysed_errors_are_reported_with_positions(self, build: BuildFn) -> None:
        with pytest.raises(VSQLError) as e:
            build("APPLICATION app();\nWORKSPACE W (\n    TABLE T INHERITS Missing ();\n);")
        assert str(e.value).startswith("app.vsql:3:")

    def test_builder_reports_what_it_cannot_translate(self, build_unanalysed: BuildFn) -> None:
        """Without the analyser's checks the builder still reports, with positions, never crashes."""
        with pytest.raises(VSQLError) as e:
            build_unanalysed("""APPLICATION app();
WORKSPACE W (
    TABLE T INHERITS Missing ();
    TYPE P (F);
    TYPE R (X Nowhere);
    TYPE D (); TYPE D ();
    TABLE U INHERITS sys.CDoc (K ref(Gone));
    VIEW V (A int32, B varchar, PRIMARY KEY ((B), A)) AS RESULT OF P;
);""")
        assert [str(d) for d in e.value.diagnostics] == [
            "app.vsql:3:22: undefined table: Missing",
            "app.vsql:4:13: undefined type: F",
            "app.vsql:5:15: undefined type or table: Nowhere",
            "app.vsql:6:16: app.D is already declared",
            "app.vsql:7:38: undefined table: Gone",
            "app.vsql:8:5: app.V: partition key field B must be of fixed width",
        ]

    def test_unanalysed_packages_resolve_names_too(self, build_unanalysed: BuildFn) -> None:
        app = build_unanalysed("APPLICATION app(); WORKSPACE W (TABLE T INHERITS CDoc (R ref(T)););")
        assert app.structure("app.T").kind is TypeKind.CDoc  # CDoc found in sys
        assert app.structure("app.T").field("R").refs == (Q("app.T"),)  # type: ignore[union-attr]
