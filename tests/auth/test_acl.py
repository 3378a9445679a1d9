"""ACL evaluation: every form of GRANT and REVOKE, on the restaurant sample and on small schemas."""

from __future__ import annotations

import time

import pytest

from voedger.appdef import (
    ACLRule,
    AppDef,
    Filter,
    OperationKind,
    PolicyKind,
    QName,
    Role,
    Structure,
    TypeKind,
    Workspace,
    system_fields,
)
from voedger.auth import ACL, ROLE_AUTHENTICATED_USER, AccessDeniedError, build_principal
from voedger.processors.principal import ANONYMOUS, SYSTEM, AllowAll, Authorizer, Principal

from .conftest import BuildFn

Select, Insert, Update = OperationKind.Select, OperationKind.Insert, OperationKind.Update
Activate, Deactivate, Execute = OperationKind.Activate, OperationKind.Deactivate, OperationKind.Execute


def q(text: str) -> QName:
    return QName.parse(text)


def who(*roles: str) -> Principal:
    return Principal(roles=frozenset(q(r) for r in roles))


WAITER = who("staff.Waiter")
MANAGER = who("staff.Manager")
OWNER = who("sys.WorkspaceOwner")  # what the owner of a restaurant workspace has, before expansion
USER = who("sys.AuthenticatedUser")


@pytest.fixture
def acl() -> ACL:
    return ACL()


def test_is_an_authorizer() -> None:
    a: Authorizer = ACL()
    b: Authorizer = AllowAll()
    assert a is not b


class TestRestaurantByName:
    @pytest.mark.parametrize("cmd", ["service.MakeOrder", "service.CloseBill"])
    def test_waiter_commands(self, acl: ACL, rws: Workspace, cmd: str) -> None:
        assert acl.allowed(rws, WAITER, Execute, q(cmd))

    def test_waiter_cannot_read_sales(self, acl: ACL, rws: Workspace) -> None:
        assert not acl.allowed(rws, WAITER, Execute, q("sales.DailySales"))
        assert acl.allowed(rws, MANAGER, Execute, q("sales.DailySales"))

    def test_waiter_tables(self, acl: ACL, rws: Workspace) -> None:
        assert acl.allowed(rws, WAITER, Select, q("service.Location"))
        assert acl.allowed(rws, WAITER, Insert, q("service.Bill"))
        assert not acl.allowed(rws, WAITER, Update, q("service.Bill"))
        assert not acl.allowed(rws, WAITER, Insert, q("service.Location"))
        assert acl.allowed(rws, WAITER, Select, q("service.OpenBills"))

    def test_anonymous(self, acl: ACL, rws: Workspace) -> None:
        assert not acl.allowed(rws, ANONYMOUS, Execute, q("service.MakeOrder"))
        assert not acl.allowed(rws, ANONYMOUS, Execute, q("sys.CUD"))
        assert not acl.allowed(rws, Principal(), Execute, q("sys.Echo"))  # no roles at all

    def test_employee(self, acl: ACL, rws: Workspace) -> None:
        assert acl.allowed(rws, MANAGER, Select, q("staff.Employee"))
        assert not acl.allowed(rws, MANAGER, Insert, q("staff.Employee"))
        assert acl.allowed(rws, who("staff.Owner"), Insert, q("staff.Employee"))
        assert acl.allowed(rws, who("staff.Owner"), Deactivate, q("staff.Employee"))


class TestRestaurantByTag:
    def test_menu_tag(self, acl: ACL, rws: Workspace) -> None:
        for table in ("menu.Article", "menu.Category"):
            assert acl.allowed(rws, WAITER, Select, q(table))
            assert not acl.allowed(rws, WAITER, Insert, q(table))
            assert acl.allowed(rws, MANAGER, Insert, q(table))
            assert acl.allowed(rws, MANAGER, Deactivate, q(table))

    def test_sys_tags(self, acl: ACL, rws: Workspace) -> None:
        """AllowedToEveryoneTag to Everyone (Anonymous inherits it), AllowedToAuthenticatedTag to
        AuthenticatedUser, WorkspaceOwner*Tag to WorkspaceOwner."""
        assert acl.allowed(rws, ANONYMOUS, Execute, q("sys.Echo"))
        assert acl.allowed(rws, who("sys.Anonymous"), Execute, q("sys.Echo"))  # via GRANT Everyone TO Anonymous
        assert acl.allowed(rws, USER, Execute, q("sys.InitiateJoinWorkspace"))
        assert not acl.allowed(rws, ANONYMOUS, Execute, q("sys.InitiateJoinWorkspace"))
        assert acl.allowed(rws, OWNER, Execute, q("sys.CUD"))
        assert not acl.allowed(rws, USER, Execute, q("sys.CUD"))
        assert acl.allowed(rws, OWNER, Select, q("sys.CollectionView"))
        assert not acl.allowed(rws, MANAGER, Select, q("sys.CollectionView"))
        assert acl.allowed(rws, OWNER, Deactivate, q("sys.Subject"))


class TestRestaurantByColumn:
    def test_waiter_updates_availability_only(self, acl: ACL, rws: Workspace) -> None:
        article = q("menu.Article")
        assert acl.allowed(rws, WAITER, Update, article, ["Available"])
        assert not acl.allowed(rws, WAITER, Update, article, ["Price"])
        assert not acl.allowed(rws, WAITER, Update, article, ["Available", "Price"])
        assert acl.allowed(rws, WAITER, Update, article)  # no fields asked: as in Voedger
        assert acl.allowed_fields(rws, WAITER.roles, Update, article) == frozenset({"Available"})
        assert acl.allowed_fields(rws, MANAGER.roles, Update, article) is None  # all fields

    def test_select_with_fields(self, acl: ACL, rws: Workspace) -> None:
        assert acl.allowed(rws, WAITER, Select, q("menu.Article"), ["Name", "Price", "sys.ID"])

    def test_denied_field_is_explained(self, acl: ACL, rws: Workspace) -> None:
        d = acl.decide(rws, WAITER, Update, q("menu.Article"), ["Available", "Price"])
        assert not d and d.denied_field == "Price"
        assert d.message == "Update on field Price of menu.Article is forbidden in workspace restaurant.Restaurant"

    def test_unknown_field(self, acl: ACL, rws: Workspace) -> None:
        assert not acl.allowed(rws, MANAGER, Update, q("menu.Article"), ["Colour"])
        d = acl.decide(rws, MANAGER, Update, q("menu.Article"), ["Colour"])
        assert d.denied_field == "Colour" and "no field" in d.reason


class TestRestaurantInheritance:
    def test_owner_has_everything_below(self, acl: ACL, rws: Workspace) -> None:
        assert acl.allowed(rws, OWNER, Execute, q("service.MakeOrder"))  # Waiter's
        assert acl.allowed(rws, OWNER, Execute, q("sales.DailySales"))  # Manager's
        assert acl.allowed(rws, OWNER, Insert, q("staff.Employee"))  # Owner's
        assert acl.allowed(rws, OWNER, Execute, q("sys.UploadBLOBHelper"))  # BLOBUploader's

    def test_profile_owner_is_a_workspace_owner(self, acl: ACL, rws: Workspace) -> None:
        assert acl.allowed(rws, who("sys.ProfileOwner"), Insert, q("staff.Employee"))

    def test_expand_roles(self, acl: ACL, rws: Workspace) -> None:
        assert acl.expand_roles(rws, [q("staff.Manager")]) == {q("staff.Manager"), q("staff.Waiter")}

    def test_with_a_built_principal(self, acl: ACL, rws: Workspace) -> None:
        from voedger.auth import PrincipalPayload

        p = build_principal(PrincipalPayload(login="ann", profile_wsid=7), 9, descriptor={"OwnerWSID": 7})
        assert acl.allowed(rws, p, Update, q("menu.Article"), ["Price"])


class TestRestaurantRevoke:
    def test_bill_number_is_revoked_from_managers(self, acl: ACL, rws: Workspace) -> None:
        bill = q("service.Bill")
        assert acl.allowed(rws, MANAGER, Update, bill, ["Total", "Tip"])
        assert not acl.allowed(rws, MANAGER, Update, bill, ["Number"])
        assert acl.allowed(rws, MANAGER, Update, bill)
        fields = acl.allowed_fields(rws, MANAGER.roles, Update, bill)
        assert fields is not None and "Number" not in fields and "Total" in fields

    def test_revoke_reaches_roles_that_inherit(self, acl: ACL, rws: Workspace) -> None:
        assert not acl.allowed(rws, OWNER, Update, q("service.Bill"), ["Number"])
        assert not acl.allowed(rws, OWNER, Insert, q("service.BillCounter"))

    def test_bill_counter(self, acl: ACL, rws: Workspace) -> None:
        counter = q("service.BillCounter")
        assert not acl.allowed(rws, MANAGER, Insert, counter)
        assert not acl.allowed(rws, MANAGER, Update, counter)
        assert acl.allowed(rws, MANAGER, Select, counter)
        d = acl.decide(rws, MANAGER, Insert, counter)
        assert d.reason.startswith("denied by: REVOKE")
        assert acl.allowed_fields(rws, MANAGER.roles, Insert, counter) == frozenset()


class TestRestaurantAllTables:
    @pytest.mark.parametrize(
        "table", ["service.Location", "service.DiningTable", "service.Bill", "service.Payment", "service.OrderItem"]
    )
    def test_all_tables_of_service(self, acl: ACL, rws: Workspace, table: str) -> None:
        assert acl.allowed(rws, MANAGER, Insert, q(table))

    @pytest.mark.parametrize("table", ["staff.Employee", "restaurant.RestaurantDescriptor", "sys.Subject"])
    def test_not_tables_of_other_workspaces(self, acl: ACL, rws: Workspace, table: str) -> None:
        assert not acl.allowed(rws, MANAGER, Insert, q(table))

    def test_all_is_not_activate(self, acl: ACL, rws: Workspace) -> None:
        assert not acl.allowed(rws, MANAGER, Deactivate, q("service.Location"))
        assert not acl.allowed(rws, MANAGER, Activate, q("service.Location"))

    def test_all_views_of_sales(self, acl: ACL, rws: Workspace) -> None:
        assert acl.allowed(rws, MANAGER, Select, q("sales.SalesByDay"))
        assert acl.allowed(rws, MANAGER, Select, q("sales.ArticleSales"))
        assert acl.allowed(rws, MANAGER, Select, q("service.OpenBills"))  # as a Waiter
        assert not acl.allowed(rws, MANAGER, Select, q("sys.WLogDates"))


class TestSystemAndMisuse:
    def test_system_may_do_anything(self, acl: ACL, rws: Workspace) -> None:
        assert acl.allowed(rws, SYSTEM, Insert, q("service.BillCounter"))
        assert acl.allowed(rws, SYSTEM, Execute, q("sys.CreateWorkspace"))
        assert acl.allowed(rws, who("sys.System"), Update, q("service.Bill"), ["Number"])
        assert acl.decide(rws, SYSTEM, Execute, q("x.Y"))

    def test_unknown_resource(self, acl: ACL, rws: Workspace) -> None:
        d = acl.decide(rws, OWNER, Execute, q("app.Nope"))
        assert not d and "does not exist" in d.reason

    def test_resource_of_another_workspace_kind(self, acl: ACL, rws: Workspace) -> None:
        assert not acl.allowed(rws, who("sys.ProfileOwner"), Execute, q("sys.RefreshPrincipalToken"))

    @pytest.mark.parametrize(
        ("op", "res"),
        [
            (Execute, "service.Bill"),
            (Select, "service.MakeOrder"),
            (Deactivate, "service.Order"),  # ODocs cannot be deactivated
            (Deactivate, "sales.SalesByDay"),
            (OperationKind.Inherits, "staff.Waiter"),
        ],
    )
    def test_operation_must_apply(self, acl: ACL, rws: Workspace, op: OperationKind, res: str) -> None:
        assert not acl.allowed(rws, OWNER, op, q(res))

    def test_check_raises_403(self, acl: ACL, rws: Workspace) -> None:
        acl.check(rws, WAITER, Execute, q("service.MakeOrder"))
        with pytest.raises(AccessDeniedError) as info:
            acl.check(rws, WAITER, Execute, q("sales.DailySales"))
        assert info.value.status == 403
        assert info.value.message == "Execute on sales.DailySales is forbidden in workspace restaurant.Restaurant"
        assert info.value.qname == "sales.DailySales"

    def test_decide_with_bare_roles(self, acl: ACL, rws: Workspace) -> None:
        d = acl.decide(rws, [q("staff.Manager")], Execute, q("service.MakeOrder"))
        assert d and q("staff.Waiter") in d.roles and "staff.Waiter" in d.reason


class TestMemo:
    def test_answers_are_memoised(self, acl: ACL, rws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
        calls = 0
        evaluate = acl._evaluate

        def counting(*args: object) -> object:
            nonlocal calls
            calls += 1
            return evaluate(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(acl, "_evaluate", counting)
        for _ in range(100):
            acl.allowed(rws, WAITER, Update, q("menu.Article"), ["Available"])
            acl.allowed(rws, WAITER, Update, q("menu.Article"), ["Price"])
        assert calls == 1
        acl.allowed(rws, MANAGER, Update, q("menu.Article"))
        assert calls == 2
        acl.clear()
        acl.allowed(rws, MANAGER, Update, q("menu.Article"))
        assert calls == 3

    def test_bounded(self, rws: Workspace) -> None:
        acl = ACL(cache_size=2)
        for role in ("staff.Waiter", "staff.Manager", "staff.Owner", "sys.WorkspaceOwner"):
            acl.allowed(rws, who(role), Execute, q("service.MakeOrder"))
        assert len(acl._verdicts) <= 2

    def test_fast(self, acl: ACL, rws: Workspace) -> None:
        start = time.perf_counter()
        for _ in range(20_000):
            acl.allowed(rws, OWNER, Execute, q("service.MakeOrder"))
            acl.allowed(rws, MANAGER, Update, q("service.Bill"), ("Total", "Tip"))
        assert time.perf_counter() - start < 2.0

    def test_per_application(self, acl: ACL, build: BuildFn) -> None:
        """Two applications with a workspace of the same name do not share answers."""
        schema = """APPLICATION app();
        WORKSPACE W (
            ROLE R;
            TABLE T INHERITS sys.CDoc (Name varchar);
            GRANT {ops} ON TABLE T TO R;
        );"""
        a = build(schema.format(ops="SELECT")).workspace("app.W")
        b = build(schema.format(ops="INSERT")).workspace("app.W")
        r = who("app.R")
        assert acl.allowed(a, r, Select, q("app.T")) and not acl.allowed(a, r, Insert, q("app.T"))
        assert acl.allowed(b, r, Insert, q("app.T")) and not acl.allowed(b, r, Select, q("app.T"))


class TestSchemas:
    def test_last_matching_rule_wins(self, acl: ACL) -> None:
        """A hand-built model (no VSQL, which puts GRANTs first anyway): rules apply in order."""
        t = Structure(qname=q("app.T"), kind=TypeKind.CDoc, workspace=q("app.W"), fields=system_fields(TypeKind.CDoc))
        r, r2 = q("app.R"), q("app.R2")

        def rule(policy: PolicyKind, role: QName) -> ACLRule:
            return ACLRule(
                ops=frozenset({Select}),
                policy=policy,
                filter=Filter.names(t.qname),
                principal=role,
                workspace=q("app.W"),
            )

        ws = Workspace(
            qname=q("app.W"),
            local_types=(t.qname, r, r2),
            acl=(rule(PolicyKind.Allow, r), rule(PolicyKind.Deny, r), rule(PolicyKind.Allow, r2)),
        )
        AppDef("app", types=[ws, t, Role(qname=r, workspace=ws.qname), Role(qname=r2, workspace=ws.qname)])
        assert not acl.allowed(ws, who("app.R"), Select, t.qname)
        assert acl.allowed(ws, who("app.R2"), Select, t.qname)
        assert acl.allowed(ws, who("app.R", "app.R2"), Select, t.qname)  # the grant to R2 comes last

    def test_a_descendant_may_grant_what_an_ancestor_revoked(self, acl: ACL, build: BuildFn) -> None:
        app = build("""APPLICATION app();
        ABSTRACT WORKSPACE Base (
            ROLE R;
            TABLE T INHERITS sys.CDoc (Name varchar);
            GRANT SELECT, INSERT ON TABLE T TO R;
            REVOKE INSERT ON TABLE T FROM R;
        );
        WORKSPACE Child INHERITS Base (
            GRANT INSERT ON TABLE T TO R;
        );""")
        r = who("app.R")
        assert not acl.allowed(app.workspace("app.Base"), r, Insert, q("app.T"))
        assert acl.allowed(app.workspace("app.Child"), r, Insert, q("app.T"))
        assert acl.allowed(app.workspace("app.Child"), r, Select, q("app.T"))

    def test_column_grants(self, acl: ACL, build: BuildFn) -> None:
        ws = build("""APPLICATION app();
        WORKSPACE W (
            ROLE R;
            TABLE T INHERITS sys.CDoc (A varchar, B varchar, C varchar);
            VIEW V (K int32 NOT NULL, C int32 NOT NULL, X int32, Y int32,
                    PRIMARY KEY ((K), C)) AS RESULT OF P;
            EXTENSION ENGINE BUILTIN (PROJECTOR P AFTER INSERT ON T INTENTS(sys.View(V)););
            GRANT SELECT(A) ON TABLE T TO R;
            GRANT UPDATE(A, B) ON TABLE T TO R;
            GRANT SELECT(K, C, X) ON VIEW V TO R;
        );""").workspace("app.W")
        r, t, v = who("app.R"), q("app.T"), q("app.V")
        assert acl.allowed(ws, r, Select, t, ["A", "sys.ID", "sys.IsActive"])  # SELECT brings sys.* fields
        assert not acl.allowed(ws, r, Select, t, ["B"])
        assert acl.allowed(ws, r, Update, t, ["A", "B"])
        assert not acl.allowed(ws, r, Update, t, ["sys.IsActive"])  # only SELECT brings them
        assert not acl.allowed(ws, r, Insert, t, ["A"])
        assert acl.allowed(ws, r, Select, v, ["K", "C", "X", "sys.QName"])
        assert not acl.allowed(ws, r, Select, v, ["Y"])

    def test_revoking_every_granted_column_denies(self, acl: ACL, build: BuildFn) -> None:
        ws = build("""APPLICATION app();
        WORKSPACE W (
            ROLE R;
            TABLE T INHERITS sys.CDoc (A varchar, B varchar);
            ROLE R2;
            GRANT UPDATE(A) ON TABLE T TO R;
            GRANT UPDATE ON TABLE T TO R2;
            REVOKE UPDATE(A) ON TABLE T FROM R;
            REVOKE UPDATE(B) ON TABLE T FROM R2;
        );""").workspace("app.W")
        assert not acl.allowed(ws, who("app.R"), Update, q("app.T"))
        assert acl.allowed(ws, who("app.R2"), Update, q("app.T"), ["A"])
        assert not acl.allowed(ws, who("app.R2"), Update, q("app.T"), ["B"])
        # As in Voedger, the roles share one set of allowed fields: R's column revoke also takes
        # back the A that R2 was granted.
        assert not acl.allowed(ws, who("app.R", "app.R2"), Update, q("app.T"), ["A"])

    def test_all_commands_of_the_workspace_and_by_tag(self, acl: ACL, build: BuildFn) -> None:
        app = build("""APPLICATION app();
        ABSTRACT WORKSPACE Base (
            ROLE R;
            TAG Open;
            EXTENSION ENGINE BUILTIN (COMMAND BaseCmd; COMMAND TaggedBaseCmd WITH Tags=(Open););
            GRANT EXECUTE ON ALL COMMANDS WITH TAG Open TO R;
        );
        WORKSPACE Child INHERITS Base (
            ROLE S;
            EXTENSION ENGINE BUILTIN (COMMAND ChildCmd;);
            GRANT EXECUTE ON ALL COMMANDS TO S;
        );""")
        ws = app.workspace("app.Child")
        r, s = who("app.R"), who("app.S")
        assert acl.allowed(ws, r, Execute, q("app.TaggedBaseCmd"))
        assert not acl.allowed(ws, r, Execute, q("app.BaseCmd"))
        assert not acl.allowed(ws, r, Execute, q("app.ChildCmd"))
        assert acl.allowed(ws, s, Execute, q("app.ChildCmd"))
        assert not acl.allowed(ws, s, Execute, q("app.BaseCmd"))  # ALL COMMANDS: the workspace's own
        assert not acl.allowed(ws, s, Execute, q("sys.CUD"))

    def test_inheritance_declared_in_a_descendant(self, acl: ACL, build: BuildFn) -> None:
        app = build("""APPLICATION app();
        ABSTRACT WORKSPACE Base (
            ROLE Reader;
            ROLE Editor;
            ROLE Chief;
            TABLE T INHERITS sys.CDoc (Name varchar);
            GRANT SELECT ON TABLE T TO Reader;
        );
        WORKSPACE Child INHERITS Base (
            GRANT Reader TO Editor;
            GRANT Editor TO Chief;
        );""")
        chief = who("app.Chief")
        assert acl.allowed(app.workspace("app.Child"), chief, Select, q("app.T"))
        assert not acl.allowed(app.workspace("app.Base"), chief, Select, q("app.T"))

    def test_circular_inheritance_terminates(self, acl: ACL, build: BuildFn) -> None:
        ws = build("""APPLICATION app();
        WORKSPACE W (
            ROLE A;
            ROLE B;
            EXTENSION ENGINE BUILTIN (QUERY Q RETURNS void;);
            GRANT A TO B;
            GRANT B TO A;
            GRANT EXECUTE ON QUERY Q TO B;
        );""").workspace("app.W")
        assert acl.allowed(ws, who("app.A"), Execute, q("app.Q"))

    def test_authenticated_user_only(self, acl: ACL, build: BuildFn) -> None:
        ws = build("""APPLICATION app();
        WORKSPACE W (
            EXTENSION ENGINE BUILTIN (COMMAND C;);
            GRANT EXECUTE ON COMMAND C TO sys.AuthenticatedUser;
        );""").workspace("app.W")
        assert acl.allowed(ws, Principal(roles=frozenset({ROLE_AUTHENTICATED_USER})), Execute, q("app.C"))
        assert not acl.allowed(ws, ANONYMOUS, Execute, q("app.C"))
