"""The error type every stage raises, and the small helpers of the syntax tree."""

from __future__ import annotations

import pytest

from voedger.vsql import Diagnostic, VSQLError, ast


def test_diagnostic_and_error_format() -> None:
    d1 = Diagnostic("a.vsql", 3, 7, "undefined table: T")
    d2 = Diagnostic("b.vsql", 1, 1, "application not defined")
    assert str(d1) == "a.vsql:3:7: undefined table: T"
    err = VSQLError([d1, d2])
    assert str(err) == "a.vsql:3:7: undefined table: T\nb.vsql:1:1: application not defined"
    assert err.messages == ["undefined table: T", "application not defined"]
    assert err.diagnostics == [d1, d2]
    assert isinstance(err, Exception)
    assert sorted([d2, d1]) == [d1, d2]


def test_qname() -> None:
    q = ast.QName.parse("sys.CDoc")
    assert q == ast.QName("sys", "CDoc") and str(q) == "sys.CDoc" and q.pkg == "sys"
    with pytest.raises(ValueError, match="not a qualified name"):
        ast.QName.parse("CDoc")


def test_def_qname_and_pos() -> None:
    pos = ast.Pos("f.vsql", 2, 5)
    assert str(pos) == "f.vsql:2:5"
    assert str(ast.DefQName(pos=pos, package="", name="T")) == "T"
    assert str(ast.DefQName(pos=pos, package="p", name="T")) == "p.T"
    assert str(ast.Ident(pos=pos, value="x")) == "x"


def test_import_local_name() -> None:
    pos = ast.Pos("f.vsql", 1, 1)
    assert ast.ImportStmt(pos=pos, path="example.org/shop/air").local_name == "air"
    assert ast.ImportStmt(pos=pos, path="example.org/shop/air/").local_name == "air"
    assert ast.ImportStmt(pos=pos, path="air", alias="a").local_name == "a"


def test_nodes_are_frozen() -> None:
    pos = ast.Pos("f.vsql", 1, 1)
    role = ast.RoleStmt(pos=pos, name="R")
    with pytest.raises(AttributeError):
        role.name = "S"  # type: ignore[misc]
    pkg = ast.Package(name="p", path="p", files=(ast.File(pos=pos, path="f.vsql", statements=(role,)),))
    assert pkg.statements == (role,) and pkg.imports == ()
