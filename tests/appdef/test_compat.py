"""Backward compatibility: one case per rule of appdefcompat, plus the tree's JSON form."""

from __future__ import annotations

import json

import pytest

from tests.appdef.conftest import BuildFn
from voedger.appdef import AppDef
from voedger.appdef.compat import (
    CompatError,
    ErrorType,
    Node,
    build_tree,
    check_compat,
    ignore_errors,
    renamed_tree,
    tree_from_json,
    tree_to_json,
)

T = "AppDef/Types/app.T"


def schema(table: str = "A int32, B varchar(10)", ws: str = "", extra: str = "", head: str = "") -> str:
    return f"""
{head}
APPLICATION app();
WORKSPACE W (
    TABLE T INHERITS sys.CDoc ({table});
    {ws}
);
{extra}
"""


def breaks(build: BuildFn, old: str, new: str, **pkgs: str) -> list[str]:
    return [str(e) for e in check_compat(build(old, **pkgs), build(new, **pkgs))]


class TestTypes:
    def test_adding_types_is_fine(self, build: BuildFn) -> None:
        assert breaks(build, schema(), schema(ws="TABLE U INHERITS sys.CDoc (X int32); TYPE O (Y int32);")) == []

    def test_removing_a_type_breaks(self, build: BuildFn) -> None:
        old = schema(ws="TABLE U INHERITS sys.CDoc (X int32);")
        assert breaks(build, old, schema()) == [
            "AppDef/Types/app.U: NodeRemoved",
            "AppDef/Types/app.W/Types/app.U: NodeRemoved",
        ]


class TestFields:
    def test_appending_is_fine(self, build: BuildFn) -> None:
        assert breaks(build, schema(), schema("A int32, B varchar(10), C int64")) == []

    def test_not_null_and_length_may_change(self, build: BuildFn) -> None:
        assert breaks(build, schema(), schema("A int32 NOT NULL, B varchar(200)")) == []

    def test_removing_breaks(self, build: BuildFn) -> None:
        assert breaks(build, schema(), schema("A int32")) == [f"{T}/Fields/B: NodeRemoved"]

    def test_inserting_breaks(self, build: BuildFn) -> None:
        assert breaks(build, schema(), schema("A int32, X int32, B varchar(10)")) == [
            f"{T}/Fields: NodeInserted",
            f"{T}/Fields/B: OrderChanged",
        ]

    def test_reordering_breaks(self, build: BuildFn) -> None:
        assert breaks(build, schema(), schema("B varchar(10), A int32")) == [
            f"{T}/Fields/A: OrderChanged",
            f"{T}/Fields/B: OrderChanged",
        ]

    def test_changing_a_kind_breaks(self, build: BuildFn) -> None:
        assert breaks(build, schema(), schema("A int64, B varchar(10)")) == [f"{T}/Fields/A: ValueChanged"]


class TestUniques:
    def test_reordering_unique_fields_is_fine(self, build: BuildFn) -> None:
        assert breaks(build, schema("A int32, B int32, UNIQUE (A, B)"), schema("A int32, B int32, UNIQUE (B, A)")) == []

    def test_changing_unique_fields_breaks(self, build: BuildFn) -> None:
        old, new = schema("A int32, B int32, UNIQUE (A)"), schema("A int32, B int32, UNIQUE (A, B)")
        assert breaks(build, old, new) == [f"{T}/Uniques/app.T$uniques$01/UniqueFields: NodeModified"]


VIEW = """
    VIEW V ({fields}, PRIMARY KEY ({key})) AS RESULT OF P;
    EXTENSION ENGINE BUILTIN (PROJECTOR P AFTER INSERT ON T INTENTS(sys.View(V)););
"""


class TestViews:
    def view(self, fields: str, key: str) -> str:
        return schema(ws=VIEW.format(fields=fields, key=key))

    def test_value_fields_append_only(self, build: BuildFn) -> None:
        old = self.view("P int32, C int32, X int32", "(P), C")
        assert breaks(build, old, self.view("P int32, C int32, X int32, Y int32", "(P), C")) == []
        assert breaks(build, old, self.view("P int32, C int32, X int64", "(P), C")) == [
            "AppDef/Types/app.V/Fields/X: ValueChanged"
        ]

    def test_partition_key_is_frozen(self, build: BuildFn) -> None:
        old = self.view("P int32, C int32, X int32", "(P), C")
        new = self.view("P int32, Q int32, C int32, X int32", "(P, Q), C")
        assert breaks(build, old, new) == ["AppDef/Types/app.V/PartKeyFields: NodeModified"]

    def test_clustering_columns_are_frozen(self, build: BuildFn) -> None:
        old = self.view("P int32, C int32, X int32", "(P), C")
        new = self.view("P int32, C int32, D int32, X int32", "(P), C, D")
        assert breaks(build, old, new) == ["AppDef/Types/app.V/ClustColsFields: NodeModified"]
        assert breaks(build, old, self.view("P int32, C int64, X int32", "(P), C")) == [
            "AppDef/Types/app.V/ClustColsFields/C: ValueChanged"
        ]


FUNCS = """
    TYPE P1 (X int32);
    TYPE P2 (X int32);
    EXTENSION ENGINE BUILTIN ({cmd});
"""


class TestCommands:
    def cmd(self, text: str) -> str:
        return schema(ws=FUNCS.format(cmd=text))

    def test_argument_and_result_stay(self, build: BuildFn) -> None:
        old = self.cmd("COMMAND C(P1, UNLOGGED P1) RETURNS P1")
        assert breaks(build, old, self.cmd("COMMAND C(P1, UNLOGGED P1) RETURNS P1")) == []
        assert breaks(build, old, self.cmd("COMMAND C(P2, UNLOGGED P2) RETURNS P2")) == [
            "AppDef/Types/app.C/CommandArgs: ValueChanged",
            "AppDef/Types/app.C/UnloggedArgs: ValueChanged",
            "AppDef/Types/app.C/CommandResult: ValueChanged",
        ]

    def test_dropping_the_argument_breaks(self, build: BuildFn) -> None:
        assert breaks(build, self.cmd("COMMAND C(P1)"), self.cmd("COMMAND C()")) == [
            "AppDef/Types/app.C/CommandArgs: ValueChanged"
        ]

    def test_query_arguments_follow_their_type(self, build: BuildFn) -> None:
        old = self.cmd("QUERY Q(P1) RETURNS P2")
        assert breaks(build, old, self.cmd("QUERY Q(P2) RETURNS P1")) == []  # same fields
        # Query arguments and results are not constrained: clients adapt, stored data is unaffected.
        assert breaks(build, old, self.cmd("QUERY Q(P2) RETURNS any")) == []


class TestValues:
    def test_abstract_changes(self, build: BuildFn) -> None:
        old = schema(ws="ABSTRACT TABLE Base INHERITS sys.CDoc (A int32);")
        new = schema(ws="TABLE Base INHERITS sys.CDoc (A int32);")
        assert breaks(build, old, new) == ["AppDef/Types/app.Base/Abstract: ValueChanged"]

    def test_descriptor_changes(self, build: BuildFn) -> None:
        old = "APPLICATION app(); WORKSPACE W (DESCRIPTOR D1 (); );"
        new = "APPLICATION app(); WORKSPACE W (DESCRIPTOR D2 (); );"
        assert breaks(build, old, new) == [
            "AppDef/Types/app.D1: NodeRemoved",
            "AppDef/Types/app.W/Types/app.D1: NodeRemoved",
            "AppDef/Types/app.W/Descriptor: ValueChanged",
        ]

    def test_workspace_becoming_abstract(self, build: BuildFn) -> None:
        old = "APPLICATION app(); WORKSPACE W ();"
        new = "APPLICATION app(); ABSTRACT WORKSPACE W ();"
        assert "AppDef/Types/app.W/Abstract: ValueChanged" in breaks(build, old, new)

    def test_acl_is_not_compared(self, build: BuildFn) -> None:
        old = schema(ws="ROLE R; GRANT SELECT ON TABLE T TO R;")
        assert breaks(build, old, schema(ws="ROLE R; GRANT ALL ON TABLE T TO R;")) == []


class TestPackages:
    lib = "ABSTRACT WORKSPACE L ();"

    def test_adding_is_fine_removing_breaks(self, build: BuildFn) -> None:
        one = build(schema())
        two = build(schema(head="IMPORT SCHEMA 'lib';", extra="").replace("app();", "app(USE lib);"), lib=self.lib)
        assert check_compat(one, two) == []
        errors = [str(e) for e in check_compat(two, one)]
        assert "AppDef/Packages/lib: NodeRemoved" in errors
        assert "AppDef/Types/lib.L: NodeRemoved" in errors


class TestTreeAndHelpers:
    def test_errors_print_path_then_kind(self) -> None:
        assert str(CompatError(("AppDef", "Types", "pkg.T", "Fields", "F"), ErrorType.NodeRemoved)) == (
            "AppDef/Types/pkg.T/Fields/F: NodeRemoved"
        )

    def test_ignore(self, build: BuildFn) -> None:
        errors = check_compat(build(schema()), build(schema("A int64")))
        assert len(errors) == 2
        left = ignore_errors(errors, [f"{T}/Fields/B", ("AppDef", "Types", "app.T", "Fields", "A")])
        assert left == []

    def test_json_round_trip(self, sample_app: AppDef) -> None:
        tree = build_tree(sample_app)
        data = json.loads(json.dumps(tree_to_json(tree)))
        assert tree_from_json(data) == tree
        assert check_compat(tree_from_json(data), sample_app) == []

    def test_tree_shape(self, sample_app: AppDef) -> None:
        tree = build_tree(sample_app)
        assert [p.name for p in tree.props] == ["Types", "Packages"]
        types = tree.child("Types")
        assert types is not None
        order = types.child("service.Order")
        assert order is not None and [p.name for p in order.props] == [
            "Uniques",
            "Fields",
            "Containers",
            "Abstract",
        ]
        fields = order.child("Fields")
        assert fields is not None and fields.child("OrderedAt") == Node("OrderedAt", "int64")
        ws = types.child("restaurant.Restaurant")
        assert ws is not None and ws.child("Descriptor") == Node("Descriptor", "restaurant.RestaurantDescriptor")

    def test_malformed_json(self) -> None:
        for bad in (None, {"value": 1}, {"name": "x", "value": [1]}, {"name": "x", "props": {}}):
            with pytest.raises(ValueError):
                tree_from_json(bad)


class TestRenamedQNames:
    """A QName renamed by ``c.sys.RenameQName`` is no break: the old tree is read under the new
    names before it is compared."""

    def test_a_renamed_table_and_view_are_the_same_types(self, build: BuildFn) -> None:
        view = "VIEW {v} (K int32 NOT NULL, C int32 NOT NULL, N int64, PRIMARY KEY ((K), C)) AS RESULT OF P;"
        prj = "EXTENSION ENGINE BUILTIN (PROJECTOR P AFTER INSERT ON ({t}) INTENTS(sys.View({v})););"
        ws = "TABLE {t} INHERITS sys.CDoc (X int32, Kids TABLE {t}Kid (Y int32)); " + view + prj
        old = build(schema(ws=ws.format(t="U", v="V")))
        new = build(schema(ws=ws.format(t="Aa", v="Zz")))  # sorted elsewhere among the types
        assert check_compat(old, new)  # unrenamed: removed types
        renames = {"app.U": "app.Aa", "app.UKid": "app.AaKid", "app.V": "app.Zz"}
        old_tree = renamed_tree(build_tree(old), lambda text: renames.get(text, text))
        assert [str(e) for e in check_compat(old_tree, new)] == []
        # a field removed at the same time still breaks, under the new name
        new = build(schema(ws=ws.format(t="Aa", v="Zz").replace("X int32, ", "")))
        assert [str(e) for e in check_compat(old_tree, new)] == ["AppDef/Types/app.Aa/Fields/X: NodeRemoved"]
