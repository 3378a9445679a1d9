"""Packages, imports and the application: how names are found across packages, and what fails."""

from __future__ import annotations

import pytest

from tests.vsql.helpers import build, errors, package, sys_package
from voedger.vsql import VSQLError, analyse, ast

Q = ast.QName

AIR = """ABSTRACT WORKSPACE AirWS (
    TYPE Named (Name varchar);
    TABLE Price INHERITS sys.CDoc (Amount currency);
    ROLE Cashier;
    TAG AirTag;
);
ALTERABLE WORKSPACE Shared ();
WORKSPACE Closed ();
"""


def test_import_alias_and_last_path_element() -> None:
    schema = build(
        """IMPORT SCHEMA 'example.org/shop/air' AS a;
IMPORT SCHEMA 'example.org/shop/lib';
APPLICATION shop (USE a; USE lib;);
WORKSPACE Shop INHERITS a.AirWS (
    TABLE Order INHERITS sys.CDoc (a.Named, PriceRef ref(a.Price));
    GRANT SELECT ON TABLE a.Price TO a.Cashier;
);""",
        air=AIR,
        lib="ABSTRACT WORKSPACE LibWS (TYPE Kind (K int););",
    )
    assert schema.name == "shop" and schema.app_package == "main"
    order = schema.declarations[Q("main", "Order")].node
    assert isinstance(order, ast.TableStmt)
    fset, ref = order.items
    assert isinstance(fset, ast.FieldSetItem) and schema.resolve(fset.type) == Q("air", "Named")
    assert isinstance(ref, ast.RefFieldItem) and schema.resolve(ref.refs[0]) == Q("air", "Price")
    assert schema.tables[Q("main", "Order")].kind.value == "CDoc"


def test_an_aliased_import_is_still_named_by_its_last_element() -> None:
    # as in Voedger (its Test_Tags): 'x/air' AS a is reachable as a.* and as air.*
    schema = build(
        """IMPORT SCHEMA 'x/air' AS a;
APPLICATION shop (USE a;);
WORKSPACE Shop INHERITS air.AirWS (
    TABLE Order INHERITS sys.CDoc (a.Named, PriceRef ref(air.Price));
);""",
        air=AIR,
    )
    order = schema.declarations[Q("main", "Order")].node
    assert isinstance(order, ast.TableStmt)
    fset, ref = order.items
    assert isinstance(fset, ast.FieldSetItem) and schema.resolve(fset.type) == Q("air", "Named")
    assert isinstance(ref, ast.RefFieldItem) and schema.resolve(ref.refs[0]) == Q("air", "Price")
    assert errors(
        "IMPORT SCHEMA 'x/air' AS a;\nAPPLICATION shop (USE a;);\nWORKSPACE W INHERITS ai.AirWS ();", air=AIR
    ) == ["file.vsql:3:22: ai undefined"]


def test_type_from_a_package_workspace_that_is_not_inherited_is_not_visible() -> None:
    assert errors(
        """IMPORT SCHEMA 'lib';
APPLICATION shop (USE lib;);
WORKSPACE Shop (TYPE T (lib.Kind););""",
        lib="ABSTRACT WORKSPACE LibWS (TYPE Kind (K int););",
    ) == ["file.vsql:3:25: undefined type: lib.Kind"]


def test_import_resolution_by_package_path_and_import_map() -> None:
    main = package("main", "IMPORT SCHEMA 'libs/money';\nAPPLICATION shop (USE money;);", path="")
    money = package("money", "ABSTRACT WORKSPACE M ();", path="libs/money")
    schema = analyse([main, money, sys_package()])
    assert set(schema.packages) == {"main", "money", "sys"}
    main2 = package("main", "IMPORT SCHEMA 'example.com/x/y';\nAPPLICATION shop (USE y;);", path="")
    other = package("other", "ABSTRACT WORKSPACE M ();")
    analyse([main2, other, sys_package()], import_map={"example.com/x/y": "other"})
    with pytest.raises(VSQLError, match=r"could not import example\.com/x/y"):
        analyse([main2, other, sys_package()])


def test_application_rules() -> None:
    assert errors("WORKSPACE W ();") == ["application not defined"]  # no position, as in Voedger
    assert errors("APPLICATION a();", other="ROLE R;") == [
        "application does not define use of package other. "
        "Check if the package is defined in IMPORT SCHEMA and parsed under the same name"
    ]
    # positioned errors first, then those of the application as a whole (Voedger's order)
    assert errors("APPLICATION a (USE nope;);", other="ROLE R;") == [
        "file.vsql:1:16: nope undefined",
        "application does not define use of package other. "
        "Check if the package is defined in IMPORT SCHEMA and parsed under the same name",
    ]
    assert errors("APPLICATION a();\nAPPLICATION b();") == ["file.vsql:2:1: redefinition of application"]
    # Voedger stops at the second application: no error on the packages it would have used
    assert errors("APPLICATION a();", other="APPLICATION b();") == ["other.vsql:1:1: redefinition of application"]
    assert errors(
        "IMPORT SCHEMA 'x/air';\nIMPORT SCHEMA 'x/gone';\n"
        "APPLICATION a (USE air; USE air; USE main; USE nope; USE gone;);",
        air=AIR,
    ) == [
        "file.vsql:3:25: package with the same name already included in application",
        "file.vsql:3:34: package with the same name already included in application",
        "file.vsql:3:44: nope undefined",
        "file.vsql:3:54: could not import x/gone. Check if the package is parsed under exactly this name",
    ]


def test_imports_rules() -> None:
    assert errors(
        "IMPORT SCHEMA 'x/air';\nIMPORT SCHEMA 'y/air';\nIMPORT SCHEMA 'x/my-pkg';\nIMPORT SCHEMA 'z/main';\n"
        "APPLICATION a (USE air;);",
        air=AIR,
    ) == [
        "file.vsql:2:1: local package name air already used for x/air",
        "file.vsql:3:1: invalid local package name my-pkg",
        "file.vsql:4:1: conflict: local package name main equal to current package name",
    ]


def test_unknown_package_prefix_and_missing_sys() -> None:
    # reported at the table, as Voedger reports its table kind errors
    assert errors("APPLICATION a();\nWORKSPACE W (TABLE T INHERITS xyz.CDoc (););") == ["file.vsql:2:14: xyz undefined"]
    # as in Voedger, sys is missed where a name of it is needed, not before
    build("APPLICATION a();", with_sys=False)
    with pytest.raises(VSQLError) as exc:
        build("APPLICATION a();\nWORKSPACE W (TABLE T INHERITS sys.CDoc (););", with_sys=False)
    assert [str(d) for d in exc.value.diagnostics] == [
        "file.vsql:2:14: could not import sys. Check if the package is parsed under exactly this name"
    ]
    with pytest.raises(VSQLError, match="package sys redeclared"):
        analyse([package("main", "APPLICATION a();", path=""), sys_package(), sys_package()])


def test_workspace_inheritance_across_packages_makes_names_visible() -> None:
    schema = build(
        """IMPORT SCHEMA 'x/air';
IMPORT SCHEMA 'x/base';
APPLICATION a (USE air; USE base;);
WORKSPACE Shop INHERITS air.AirWS2 (
    TABLE Order INHERITS sys.CDoc (P ref(base.BaseTable), Q ref(air.Price));
);""",
        air="IMPORT SCHEMA 'x/base';\n"
        "ABSTRACT WORKSPACE AirWS2 INHERITS base.BaseWS (TABLE Price INHERITS sys.CDoc (););",
        base="ABSTRACT WORKSPACE BaseWS (TABLE BaseTable INHERITS sys.CDoc (););",
    )
    shop = schema.workspaces[Q("main", "Shop")]
    assert shop.inherits == (Q("air", "AirWS2"),)
    assert shop.ancestors == (Q("air", "AirWS2"), Q("base", "BaseWS"), Q("sys", "Workspace"))
    assert shop.descriptor == Q("main", "ShopDescriptor")


def test_tags_are_only_found_in_their_own_package() -> None:
    assert errors(
        """IMPORT SCHEMA 'x/air';
APPLICATION a (USE air;);
WORKSPACE Shop INHERITS air.AirWS (
    TAG Local;
    TABLE T INHERITS sys.CDoc () WITH Tags=(Local, air.AirTag, AirTag);
);""",
        air=AIR,
    ) == [
        "file.vsql:5:52: undefined tag: air.AirTag",
        "file.vsql:5:64: undefined tag: AirTag",
    ]


def test_alter_workspace_of_other_package() -> None:
    schema = build(
        """IMPORT SCHEMA 'x/air';
APPLICATION a (USE air;);
ALTER WORKSPACE air.Shared (
    TABLE Extra INHERITS sys.CDoc ();
);
ALTER WORKSPACE sys.AppWorkspaceWS (
    TABLE Login INHERITS sys.CDoc (E ref(Extra));
    USE WORKSPACE Mine;
);
WORKSPACE Mine ();""",
        air=AIR,
    )
    assert Q("main", "Extra") in schema.workspaces[Q("air", "Shared")].declarations
    app_ws = schema.workspaces[Q("sys", "AppWorkspaceWS")]
    assert Q("main", "Login") in app_ws.declarations
    assert app_ws.used == (Q("main", "Mine"),)
    assert schema.workspace_of(Q("main", "Login")) == Q("sys", "AppWorkspaceWS")
    assert errors("IMPORT SCHEMA 'x/air';\nAPPLICATION a (USE air;);\nALTER WORKSPACE air.Closed ();", air=AIR) == [
        "file.vsql:3:17: workspace air.Closed is not alterable"
    ]


def test_declared_variables_and_overrides() -> None:
    text = "APPLICATION a();\nDECLARE Rate int32 DEFAULT 10;\nWORKSPACE W (RATE R Rate PER MINUTE; RATE S 5 PER DAY;);"
    schema = build(text)
    assert schema.variables == {Q("main", "Rate"): 10}
    assert schema.rate_counts == {Q("main", "R"): 10, Q("main", "S"): 5}
    pkgs = [package("main", text, path=""), sys_package()]
    assert analyse(pkgs, variables={"main.Rate": 42}).rate_counts[Q("main", "R")] == 42
    with pytest.raises(VSQLError, match="positive value only allowed"):
        analyse(pkgs, variables={"main.Rate": -1})


def test_result_describes_tables_workspaces_and_references() -> None:
    schema = build(
        """APPLICATION a();
WORKSPACE W (
    DESCRIPTOR Info (Name varchar);
    TABLE Doc INHERITS sys.CDoc (Items TABLE Item (Sub TABLE SubItem ()));
    TABLE Op INHERITS sys.ODoc (Lines TABLE Line ());
    TABLE Single INHERITS sys.WSingleton ();
    ABSTRACT TABLE Base INHERITS sys.WDoc ();
    TABLE Child INHERITS Base ();
    WORKSPACE Nested ();
    USE WORKSPACE W;
    EXTENSION ENGINE BUILTIN (COMMAND Make(sys.Raw) RETURNS void;);
    GRANT EXECUTE ON COMMAND Make TO sys.Everyone;
);"""
    )
    t = schema.tables
    assert (t[Q("main", "Info")].kind.value, t[Q("main", "Info")].singleton) == ("CDoc", True)
    assert t[Q("main", "Item")].kind.value == "CRecord"
    assert t[Q("main", "SubItem")].kind.value == "CRecord"
    assert t[Q("main", "Line")].kind.value == "ORecord"
    assert t[Q("main", "Single")].singleton and t[Q("main", "Single")].kind.value == "WDoc"
    assert t[Q("main", "Base")].abstract
    assert t[Q("main", "Child")].base == Q("main", "Base")
    assert t[Q("sys", "CDoc")].abstract
    w = schema.workspaces[Q("main", "W")]
    assert w.descriptor == Q("main", "Info") and not w.abstract
    assert set(w.used) == {Q("main", "Nested"), Q("main", "W")}
    assert Q("main", "Make") in w.declarations and Q("main", "Item") in w.declarations
    assert schema.kind_of(Q("main", "Make")) is not None
    grant = w.stmt.statements[-1]
    assert isinstance(grant, ast.GrantStmt)
    assert grant.privilege.name is not None and schema.resolve(grant.privilege.name) == Q("main", "Make")
    assert schema.resolve(grant.to) == Q("sys", "Everyone")
    assert schema.workspaces[Q("sys", "Workspace")].ancestors == ()
    assert schema.workspaces[Q("sys", "UserProfileWS")].ancestors == (Q("sys", "ProfileWS"), Q("sys", "Workspace"))
    assert schema.workspaces[Q("sys", "ProfileWS")].descriptor is None


def test_errors_of_all_packages_are_reported_together_in_position_order() -> None:
    with pytest.raises(VSQLError) as exc:
        build(
            "IMPORT SCHEMA 'x/lib';\nAPPLICATION a (USE lib;);\n"
            "WORKSPACE W (TABLE T INHERITS sys.CDoc (R ref(Nope)););",
            lib="ABSTRACT WORKSPACE L (TYPE X (Y Missing););",
        )
    assert [str(d) for d in exc.value.diagnostics] == [
        "file.vsql:3:47: undefined table: Nope",
        "lib.vsql:1:33: undefined type: Missing",
    ]
