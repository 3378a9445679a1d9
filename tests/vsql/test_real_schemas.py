"""Whole applications written in Voedger's style parse and analyse (how fast: ``benchmarks/vsql_parse.py``)."""

from __future__ import annotations

import pytest

from tests.vsql.helpers import FIXTURES
from voedger.vsql import analyse, ast, default_sys_dir, load_app_packages, parse_package, parse_string

APPS = FIXTURES / "apps"
Q = ast.QName


@pytest.mark.parametrize("sys_dir", [FIXTURES / "sys", None], ids=["sys-stub", "platform-sys"])
def test_bakery(sys_dir: object) -> None:
    if sys_dir is None and not any(default_sys_dir().glob("*.vsql")):
        pytest.skip("the platform's sys package is not there")
    schema = analyse(load_app_packages(APPS / "bakery", sys_dir=sys_dir))  # type: ignore[arg-type]
    assert schema.name == "bakery"
    # as in Voedger, the application's alias (IMPORT ... AS st; USE st) names the package in QNames
    assert set(schema.packages) == {"bakery", "common", "st", "sys"}
    assert schema.packages["st"].path == "example.com/bakery/stock"
    bakery = schema.workspaces[Q("bakery", "Bakery")]
    assert bakery.descriptor == Q("bakery", "BakeryDescriptor")
    assert bakery.ancestors[:2] == (Q("st", "StockWS"), Q("common", "LocationBase"))
    assert schema.tables[Q("bakery", "Product")].base == Q("common", "Catalogued")
    assert schema.tables[Q("bakery", "OrderLine")].kind.value == "ORecord"
    assert schema.tables[Q("bakery", "Settings")].singleton
    assert schema.rate_counts[Q("bakery", "OrderRate")] == 60
    app_ws = schema.workspaces[Q("sys", "AppWorkspaceWS")]
    assert {Q("bakery", "Nightly"), Q("bakery", "NightlyRuns")} <= set(app_ws.declarations)
    # every reference of the application's own packages is resolved
    for name in ("bakery", "common", "st"):
        for ref in _refs(schema.packages[name]):
            assert schema.resolve(ref) is not None, f"{ref.pos}: {ref} not resolved"


def test_clinic() -> None:
    schema = analyse(load_app_packages(APPS / "clinic", sys_dir=FIXTURES / "sys"))
    clinic = schema.workspaces[Q("clinic", "Clinic")]
    assert clinic.descriptor == Q("clinic", "ClinicProfile")
    assert clinic.inherits == (Q("clinic", "Audited"),)
    assert schema.workspaces[Q("sys", "UserProfileWS")].used == (Q("clinic", "Clinic"),)
    assert schema.tables[Q("clinic", "InvoiceItem")].kind.value == "ORecord"
    for ref in _refs(schema.packages["clinic"]):
        assert schema.resolve(ref) is not None, f"{ref.pos}: {ref} not resolved"


def _refs(pkg: ast.Package) -> list[ast.DefQName]:
    """Every reference in a package, except those in expressions (which are not resolved)."""
    out: list[ast.DefQName] = []

    def walk(node: object, in_expr: bool = False) -> None:
        if isinstance(node, ast.DefQName):
            if not in_expr:
                out.append(node)
        elif isinstance(node, tuple | list):
            for n in node:
                walk(n, in_expr)
        elif hasattr(node, "__dataclass_fields__"):
            expr = in_expr or isinstance(node, ast.CheckConstraint | ast.Literal | ast.SymbolRef | ast.FuncCall)
            for f in node.__dataclass_fields__:
                walk(getattr(node, f), expr or f == "check_expr")

    # function signatures are declared only, as in Voedger
    for f in pkg.files:
        walk([s for s in f.statements if not isinstance(s, ast.ExtEngineStmt)])
        for s in f.statements:
            if isinstance(s, ast.ExtEngineStmt):
                walk([e for e in s.statements if not isinstance(e, ast.FunctionStmt)])
    return out


def large_schema(workspaces: int) -> str:
    parts = ["APPLICATION big();"]
    for i in range(workspaces):
        parts.append(
            f"""
-- workspace number {i}
WORKSPACE Ws{i} (
    DESCRIPTOR (Name varchar NOT NULL, Kind int32);
    TAG Tag{i};
    TABLE Doc{i} INHERITS sys.CDoc (
        Name varchar(100) NOT NULL,
        Amount currency,
        Parent ref(Doc{i}),
        Lines TABLE Line{i} (Qty int32 NOT NULL, Price money, CHECK (Qty > 0 AND Price >= 0)),
        UNIQUE (Name)
    ) WITH Tags=(Tag{i});
    TYPE Params{i} (From int64, Till int64);
    VIEW Totals{i} (
        Day int32 NOT NULL, DocID ref(Doc{i}) NOT NULL, Total currency,
        PRIMARY KEY ((Day), DocID)
    ) AS RESULT OF Count{i};
    EXTENSION ENGINE BUILTIN (
        COMMAND Make{i}(Params{i}) RETURNS Params{i} WITH Tags=(Tag{i});
        QUERY Report{i}(Params{i}) STATE(sys.View(Totals{i})) RETURNS any;
        PROJECTOR Count{i} AFTER INSERT OR UPDATE ON Doc{i} INTENTS(sys.View(Totals{i}));
    );
    ROLE Role{i};
    RATE Rate{i} 10 PER MINUTE PER IP;
    LIMIT Limit{i} ON COMMAND Make{i} WITH RATE Rate{i};
    GRANT SELECT, INSERT ON ALL TABLES WITH TAG Tag{i} TO Role{i};
    GRANT EXECUTE ON COMMAND Make{i} TO Role{i};
);"""
        )
    return "\n".join(parts)


def test_large_schema_parses_and_analyses() -> None:
    text = large_schema(100)
    assert text.count("\n") > 2500
    file = parse_string(text, "big.vsql")
    pkg = ast.Package(name="big", path="", files=(file,))
    sys_pkg = parse_package(FIXTURES / "sys", name="sys")
    schema = analyse([pkg, sys_pkg])
    assert len(schema.workspaces) > 100
    assert Q("big", "Doc99") in schema.tables


@pytest.mark.skipif(not any(default_sys_dir().glob("*.vsql")), reason="the platform's sys package is not there")
def test_platform_sys_package_parses() -> None:
    assert parse_package(default_sys_dir(), name="sys").files
