"""The model on its own: QNames, invariants of types, workspaces, filters and the query API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from voedger.appdef import (
    ANY,
    SYS_WORKSPACE,
    ACLRule,
    AppDef,
    Command,
    Container,
    DataKind,
    Field,
    Filter,
    OperationKind,
    Package,
    PolicyKind,
    Projector,
    ProjectorEvent,
    QName,
    QNameError,
    Rate,
    Role,
    Storage,
    StorageOp,
    StorageScope,
    Structure,
    Tag,
    TypeKind,
    Unique,
    UnknownTypeError,
    View,
    Workspace,
    nested_kind,
    qname,
    system_fields,
)

Q = QName.parse


class TestQName:
    def test_parse_and_str_round_trip(self) -> None:
        q = QName.parse("pkg.Name")
        assert (q.pkg, q.entity) == ("pkg", "Name")
        assert str(q) == "pkg.Name"
        assert qname("pkg.Name") == q
        assert qname(q) is q

    @pytest.mark.parametrize("text", ["", "Name", "pkg.", ".Name", "a.b.c", "1pkg.Name", "pkg.Na me"])
    def test_rejects_malformed(self, text: str) -> None:
        with pytest.raises(QNameError):
            QName.parse(text)

    def test_orders_by_package_then_entity(self) -> None:
        assert sorted([Q("b.A"), Q("a.Z"), Q("a.B")]) == [Q("a.B"), Q("a.Z"), Q("b.A")]

    def test_unique_names_may_hold_dollars(self) -> None:
        assert QName.parse("pkg.T$uniques$01").entity == "T$uniques$01"

    def test_is_sys(self) -> None:
        assert Q("sys.CDoc").is_sys and not Q("app.CDoc").is_sys


def _doc(name: str, *fields: Field, ws: str | None = "app.WS", **kw: object) -> Structure:
    return Structure(
        qname=Q(name),
        kind=TypeKind.CDoc,
        workspace=Q(ws) if ws else None,
        fields=system_fields(TypeKind.CDoc) + fields,
        **kw,  # type: ignore[arg-type]
    )


class TestKinds:
    def test_sets(self) -> None:
        assert TypeKind.CDoc.is_doc and TypeKind.CDoc.is_record and TypeKind.CDoc.is_structure
        assert TypeKind.ORecord.is_record and not TypeKind.ORecord.is_doc
        assert TypeKind.Object.is_structure and not TypeKind.Object.is_record
        assert TypeKind.Query.is_function and TypeKind.Job.is_extension and not TypeKind.Job.is_function

    def test_nested_kinds_follow_the_root(self) -> None:
        assert nested_kind(TypeKind.CDoc) is TypeKind.CRecord
        assert nested_kind(TypeKind.ODoc) is TypeKind.ORecord
        assert nested_kind(TypeKind.Object) is TypeKind.Object
        with pytest.raises(ValueError):
            nested_kind(TypeKind.View)

    def test_system_fields_as_in_voedger(self) -> None:
        names = lambda k: [f.name for f in system_fields(k)]  # noqa: E731
        assert names(TypeKind.CDoc) == ["sys.QName", "sys.ID", "sys.IsActive"]
        assert names(TypeKind.ODoc) == ["sys.QName", "sys.ID"]  # operational documents stay active
        assert names(TypeKind.WRecord) == [
            "sys.QName",
            "sys.ID",
            "sys.ParentID",
            "sys.Container",
            "sys.IsActive",
        ]
        assert names(TypeKind.ORecord) == ["sys.QName", "sys.ID", "sys.ParentID", "sys.Container"]
        assert names(TypeKind.Object) == ["sys.QName", "sys.Container"]
        assert all(f.is_sys for f in system_fields(TypeKind.CRecord))

    def test_fixed_width(self) -> None:
        assert DataKind.int64.is_fixed_width and not DataKind.string.is_fixed_width


class TestStructure:
    def test_fields_and_lookups(self) -> None:
        t = _doc(
            "app.T",
            Field(name="Name", kind=DataKind.string, required=True, max_len=50),
            Field(name="Ref", kind=DataKind.RecordID, refs=(Q("app.U"),)),
            containers=(Container(name="Items", type=Q("app.Item"), max_occurs=100),),
            uniques=(Unique(name=Q("app.T$uniques$01"), fields=("Name",)),),
            unique_field="Name",
        )
        assert t.field("Name") is not None and t.field("Name").max_len == 50  # type: ignore[union-attr]
        assert t.field("nope") is None
        assert [f.name for f in t.user_fields] == ["Name", "Ref"]
        assert [f.name for f in t.ref_fields] == ["Ref"]
        assert t.container("Items") is not None and t.container("x") is None
        assert t.unique(Q("app.T$uniques$01")) is not None
        assert t.field("Ref").data == Q("sys.RecordID")  # type: ignore[union-attr]

    def test_rejects_duplicate_fields_and_unknown_unique_fields(self) -> None:
        with pytest.raises(ValueError, match="twice"):
            _doc("app.T", Field(name="A", kind=DataKind.int32), Field(name="A", kind=DataKind.int64))
        with pytest.raises(ValueError, match="unknown fields"):
            _doc("app.T", uniques=(Unique(name=Q("app.T$uniques$01"), fields=("B",)),))
        with pytest.raises(ValueError, match="unique field"):
            _doc("app.T", unique_field="B")

    def test_only_structure_kinds(self) -> None:
        with pytest.raises(ValueError):
            Structure(qname=Q("app.T"), kind=TypeKind.View)

    def test_is_frozen(self) -> None:
        t = _doc("app.T")
        with pytest.raises(AttributeError):
            t.abstract = True  # type: ignore[misc]


class TestView:
    pk = Field(name="P", kind=DataKind.int64, required=True)
    cc = Field(name="C", kind=DataKind.string, required=True, max_len=10)

    def test_key_and_fields(self) -> None:
        v = View(
            qname=Q("app.V"),
            partition_key=(self.pk,),
            clustering_columns=(self.cc,),
            value=(Field(name="X", kind=DataKind.int32),),
        )
        assert [f.name for f in v.key] == ["P", "C"]
        assert [f.name for f in v.fields] == ["sys.QName", "P", "C", "X"]
        assert v.is_key("C") and not v.is_key("X") and v.field("X") is not None

    def test_needs_both_key_parts(self) -> None:
        with pytest.raises(ValueError, match="clustering"):
            View(qname=Q("app.V"), partition_key=(self.pk,))

    def test_variable_width_rules(self) -> None:
        with pytest.raises(ValueError, match="fixed width"):
            View(qname=Q("app.V"), partition_key=(self.cc,), clustering_columns=(self.pk,))
        with pytest.raises(ValueError, match="last"):
            View(qname=Q("app.V"), partition_key=(self.pk,), clustering_columns=(self.cc, self.pk))


class TestFilter:
    t = _doc("app.T", tags=(Q("app.Tag"),))
    u = _doc("app.U", ws="other.WS")

    def test_by_names(self) -> None:
        assert Filter.names(Q("app.T")).match(self.t)
        assert not Filter.names(Q("app.T")).match(self.u)

    def test_by_kinds_tags_and_workspace(self) -> None:
        assert Filter(kinds=frozenset({TypeKind.CDoc})).match(self.u)
        assert Filter(kinds=frozenset({TypeKind.CDoc}), tags=(Q("app.Tag"),)).match(self.t)
        assert not Filter(kinds=frozenset({TypeKind.CDoc}), tags=(Q("app.Tag"),)).match(self.u)
        assert Filter(kinds=frozenset({TypeKind.CDoc}), workspace=Q("app.WS")).match(self.t)
        assert not Filter(kinds=frozenset({TypeKind.CDoc}), workspace=Q("app.WS")).match(self.u)
        assert not Filter(kinds=frozenset({TypeKind.View})).match(self.t)

    def test_needs_something_to_match(self) -> None:
        with pytest.raises(ValueError):
            Filter()
        with pytest.raises(ValueError):
            Filter(qnames=(Q("app.T"),), tags=(Q("app.Tag"),))

    def test_str(self) -> None:
        assert str(Filter.names(Q("app.T"))) == "QNAMES(app.T)"
        assert "WITH TAGS(app.Tag)" in str(Filter(kinds=frozenset({TypeKind.CDoc}), tags=(Q("app.Tag"),)))


class TestACLRule:
    def rule(self, ops: set[OperationKind], policy: PolicyKind = PolicyKind.Allow, **kw: object) -> ACLRule:
        return ACLRule(
            ops=frozenset(ops),
            policy=policy,
            filter=Filter.names(Q("app.T")),
            principal=Q("app.R"),
            workspace=Q("app.WS"),
            **kw,
        )  # type: ignore[arg-type]

    def test_covers(self) -> None:
        r = self.rule({OperationKind.Select, OperationKind.Update}, fields=("A",))
        assert r.covers(OperationKind.Select, _doc("app.T"))
        assert not r.covers(OperationKind.Insert, _doc("app.T"))
        assert str(r) == "GRANT [Select, Update](A) ON QNAMES(app.T) TO app.R"

    def test_invariants(self) -> None:
        with pytest.raises(ValueError):
            self.rule(set())
        with pytest.raises(ValueError, match="inheritance"):
            self.rule({OperationKind.Inherits}, PolicyKind.Deny)
        with pytest.raises(ValueError, match="inheritance"):
            self.rule({OperationKind.Inherits, OperationKind.Select})
        with pytest.raises(ValueError, match="fields"):
            self.rule({OperationKind.Execute}, fields=("A",))
        with pytest.raises(ValueError, match="ACL"):
            self.rule({OperationKind.ExecuteWithParam})
        assert self.rule({OperationKind.Inherits}).is_inheritance


class TestExtensionsAndRates:
    def test_projector_triggers(self) -> None:
        ev = ProjectorEvent(ops=frozenset({OperationKind.Insert}), filter=Filter(kinds=frozenset({TypeKind.CDoc})))
        p = Projector(qname=Q("app.P"), events=(ev,))
        assert p.triggers(OperationKind.Insert, _doc("app.T"))
        assert not p.triggers(OperationKind.Update, _doc("app.T"))
        assert p.name == "P" and not p.sync
        with pytest.raises(ValueError):
            ProjectorEvent(ops=frozenset({OperationKind.Inherits}), filter=ev.filter)

    def test_rate_needs_positive_values(self) -> None:
        assert Rate(qname=Q("app.R"), count=5, period=timedelta(minutes=10)).count == 5
        with pytest.raises(ValueError):
            Rate(qname=Q("app.R"), count=0, period=timedelta(minutes=1))

    def test_storage_scopes(self) -> None:
        s = Storage(
            qname=Q("sys.View"),
            ops={
                StorageOp.Get: frozenset({StorageScope.Commands}),
                StorageOp.Insert: frozenset({StorageScope.Projectors}),
            },
        )
        assert s.allows(StorageOp.Get, StorageScope.Commands)
        assert s.can_read(StorageScope.Commands) and not s.can_write(StorageScope.Commands)
        assert s.can_write(StorageScope.Projectors) and not s.can_read(StorageScope.Projectors)
        assert StorageScope.of(TypeKind.Job) is StorageScope.Jobs


def _app() -> AppDef:
    ws_sys = Workspace(qname=SYS_WORKSPACE, abstract=True, local_types=(Q("sys.Everyone"),))
    base = Workspace(
        qname=Q("app.Base"),
        abstract=True,
        ancestors=(SYS_WORKSPACE,),
        local_types=(Q("app.T"), Q("app.Owner")),
        acl=(
            ACLRule(
                ops=frozenset({OperationKind.Select}),
                policy=PolicyKind.Allow,
                filter=Filter.names(Q("app.T")),
                principal=Q("app.Owner"),
                workspace=Q("app.Base"),
            ),
        ),
    )
    ws = Workspace(
        qname=Q("app.WS"),
        ancestors=(SYS_WORKSPACE, Q("app.Base")),
        descriptor=Q("app.WSDesc"),
        local_types=(Q("app.WSDesc"), Q("app.Do")),
        used_workspaces=(Q("app.Other"),),
    )
    other = Workspace(qname=Q("app.Other"), ancestors=(SYS_WORKSPACE,))
    return AppDef(
        "test",
        packages=[Package("app", "app"), Package("sys", "sys")],
        types=[
            ws_sys,
            base,
            ws,
            other,
            Role(qname=Q("sys.Everyone"), workspace=SYS_WORKSPACE),
            Role(qname=Q("app.Owner"), workspace=Q("app.Base"), published=True),
            _doc("app.T", ws="app.Base"),
            _doc("app.WSDesc", ws="app.WS", singleton=True),
            Command(qname=Q("app.Do"), workspace=Q("app.WS"), param=ANY.qname),
            Tag(qname=Q("app.Tag")),
        ],
    )


class TestAppDef:
    def test_lookups(self) -> None:
        app = _app()
        assert app.type("app.T").kind is TypeKind.CDoc
        assert app.find("app.Nope") is None and "app.T" in app and "app.Nope" not in app
        assert app.structure("app.T").qname == Q("app.T")
        assert app.command("app.Do").param == Q("sys.ANY")
        assert app.role("app.Owner").published
        assert app.tag("app.Tag").feature == ""
        with pytest.raises(UnknownTypeError, match=r"unknown type app\.Nope"):
            app.type("app.Nope")
        with pytest.raises(UnknownTypeError, match="not a View"):
            app.view("app.T")

    def test_builtin_types_are_always_there(self) -> None:
        app = _app()
        assert app.type("sys.ANY").kind is TypeKind.Any
        assert {t.qname.entity for t in app.types(TypeKind.Data)} >= {"int32", "string", "RecordID", "QName"}

    def test_types_sorted_and_filtered_by_kind(self) -> None:
        app = _app()
        names = [t.qname for t in app.types()]
        assert names == sorted(names)
        assert [t.qname for t in app.types(TypeKind.Workspace)] == [
            Q("app.Base"),
            Q("app.Other"),
            Q("app.WS"),
            SYS_WORKSPACE,
        ]
        assert len(app.types([TypeKind.Role, TypeKind.Tag])) == 3
        assert len(app) == len(list(app))

    def test_rejects_duplicates(self) -> None:
        with pytest.raises(ValueError, match="twice"):
            AppDef("x", types=[Tag(qname=Q("app.T")), Tag(qname=Q("app.T"))])

    def test_rejects_dangling_workspace_types(self) -> None:
        ws = Workspace(qname=SYS_WORKSPACE, local_types=(Q("sys.Missing"),))
        with pytest.raises(UnknownTypeError):
            AppDef("x", types=[ws])

    def test_workspaces(self) -> None:
        app = _app()
        ws = app.workspace("app.WS")
        assert [w.qname for w in ws.lineage()] == [SYS_WORKSPACE, Q("app.Base"), Q("app.WS")]
        assert ws.inherits("app.Base") and ws.inherits(SYS_WORKSPACE) and not ws.inherits("app.Other")
        assert {t.qname for t in ws.types()} == {
            Q("sys.Everyone"),
            Q("app.T"),
            Q("app.Owner"),
            Q("app.WSDesc"),
            Q("app.Do"),
            Q("app.Other"),
        }
        assert [t.qname for t in ws.types(TypeKind.Role)] == [Q("app.Owner"), Q("sys.Everyone")]
        assert ws.has_type("app.T") and ws.type("app.Nope") is None
        assert app.workspace("app.Other").type("app.T") is None
        assert app.workspace_by_descriptor("app.WSDesc") is ws
        assert app.workspace_of("app.T") == app.workspace("app.Base")
        assert app.workspace_of("app.WS") is None
        assert app.sys_workspace.qname == SYS_WORKSPACE

    def test_acl(self) -> None:
        app = _app()
        assert [str(r) for r in app.workspace("app.WS").rules()] == ["GRANT [Select] ON QNAMES(app.T) TO app.Owner"]
        assert len(app.acl()) == 1

    def test_unbound_workspace(self) -> None:
        with pytest.raises(RuntimeError):
            _ = Workspace(qname=Q("app.X")).app

    def test_packages(self) -> None:
        app = _app()
        assert app.package("app") == Package("app", "app") and app.package("x") is None
        assert [p.name for p in app.packages] == ["app", "sys"]
