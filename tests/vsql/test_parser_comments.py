"""Comments: the block written just before a statement becomes its doc."""

from __future__ import annotations

from voedger.vsql import ast, parse_string


def workspace(text: str) -> ast.WorkspaceStmt:
    stmt = parse_string(text, "f.vsql").statements[0]
    assert isinstance(stmt, ast.WorkspaceStmt)
    return stmt


def test_line_comment_block_becomes_doc() -> None:
    w = workspace(
        """-- Orders of a shop.
-- Second line.
WORKSPACE W (
    -- a role

    -- for managers
    ROLE Manager;
    ROLE Plain; -- trailing, not a doc
    ROLE Next;
);"""
    )
    assert w.doc == ("Orders of a shop.", "Second line.")
    manager, plain, nxt = w.statements
    assert isinstance(manager, ast.RoleStmt) and manager.doc == ("a role", "for managers")
    assert isinstance(plain, ast.RoleStmt) and plain.doc == ()
    assert isinstance(nxt, ast.RoleStmt) and nxt.doc == ()


def test_last_block_wins_and_block_comments_keep_their_lines() -> None:
    w = workspace(
        """/* licence */
/*
  The workspace.
  * with a list
*/
WORKSPACE W ();"""
    )
    assert w.doc == ("The workspace.", "* with a list")
    w = workspace("/* first */\n-- second\nWORKSPACE W ();")
    assert w.doc == ("second",)


def test_a_trailing_comment_of_the_previous_line_is_not_part_of_the_doc() -> None:
    w = workspace(
        """WORKSPACE W (
    TYPE T (
        A int, -- about A
        -- about B
        B int,
        C int /* inline */
    );
);"""
    )
    t = w.statements[0]
    assert isinstance(t, ast.TypeStmt)
    a, b, c = t.items
    assert isinstance(a, ast.FieldItem) and a.doc == ()
    assert isinstance(b, ast.FieldItem) and b.doc == ("about B",)
    assert isinstance(c, ast.FieldItem) and c.doc == ()


def test_docs_on_extensions_views_and_grants() -> None:
    w = workspace(
        """WORKSPACE W (
    EXTENSION ENGINE BUILTIN (
        -- makes an order
        COMMAND MakeOrder;
    );
    -- sales per day
    VIEW V (
        -- the day
        D int, X int, PRIMARY KEY ((D), X)
    ) AS RESULT OF P;
    -- everybody may order
    GRANT EXECUTE ON COMMAND MakeOrder TO R;
);"""
    )
    engine, view, grant = w.statements
    assert isinstance(engine, ast.ExtEngineStmt)
    assert engine.statements[0].doc == ("makes an order",)
    assert isinstance(view, ast.ViewStmt) and view.doc == ("sales per day",)
    assert view.fields[0].doc == ("the day",)
    assert isinstance(grant, ast.GrantStmt) and grant.doc == ("everybody may order",)


def test_comments_may_appear_anywhere_between_tokens() -> None:
    w = workspace("WORKSPACE /* a */ W -- b\n ( /* c */ ROLE -- d\n R /* e */ ; ) ;")
    assert w.name == "W"
    role = w.statements[0]
    assert isinstance(role, ast.RoleStmt) and role.name == "R"


def test_strings_are_unescaped_and_may_hold_comment_markers() -> None:
    w = workspace("WORKSPACE W (TAG T FEATURE 'it\\'s -- not /* a */ comment\\n\\d');")
    tag = w.statements[0]
    assert isinstance(tag, ast.TagStmt)
    assert tag.feature == "it's -- not /* a */ comment\n\\d"


def test_with_comment_is_kept_apart_from_doc() -> None:
    w = workspace("WORKSPACE W (\n-- doc\nTABLE T INHERITS sys.CDoc () WITH Comment='note', Tags=(X));")
    t = w.statements[0]
    assert isinstance(t, ast.TableStmt)
    assert t.doc == ("doc",) and t.comment == "note"
