"""Rejected syntax: each error names its file, line and column; every broken file is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vsql.helpers import syntax_error
from voedger.vsql import VSQLError, parse_file, parse_package, parse_string


def test_unexpected_token_names_position_and_expectation() -> None:
    # Voedger lexes NOT NULL as one token: "NOT NUL" fails at NOT (as vpm's compile-error test expects)
    assert syntax_error("WORKSPACE W (\n    TABLE T INHERITS sys.CDoc (\n        F varchar NOT NUL\n    );\n);") == (
        'file.vsql:3:19: unexpected token "NOT" '
        '(expected "(", ")", ",", ".", ";", "CHECK", "DEFAULT", "NOT NULL", "VERIFIABLE")'
    )


def test_not_null_spans_whitespace_and_lines() -> None:
    parse_string("WORKSPACE W (TYPE T (A int NOT\n\t NULL, B int CHECK (B IS NOT  NULL)););", "file.vsql")


def test_unexpected_end_of_file() -> None:
    assert syntax_error("WORKSPACE W (\n  ROLE R;\n") == 'file.vsql:3:1: unexpected token "<EOF>" (expected ")")'


def test_lexer_error_quotes_the_text_as_participle_does() -> None:
    # Voedger's Test_Identifiers: a name may not start with "_" nor hold letters beyond ASCII
    assert syntax_error("APPLICATION app1();\n\tWORKSPACE w (\n\t\tROLE _role;\n\t);") == (
        'file.vsql:3:8: lexer: invalid input text "_role;\\n\\t);"'
    )
    assert syntax_error("APPLICATION app1();\n\tWORKSPACE w (\n\t\tROLE r世界;\n\t);") == (
        'file.vsql:3:9: lexer: invalid input text "世界;\\n\\t);"'
    )
    assert syntax_error("APPLICATION a();\nROLE #;" + "x" * 20) == (
        'file.vsql:2:6: lexer: invalid input text "#;xxxxxxxxxxxxxx..."'
    )


def test_name_longer_than_255_fails_where_voedger_fails() -> None:
    name = "r" + "2" * 254 + "3456"  # 259 characters: the lexer takes 255, then "3456" is unexpected
    assert syntax_error(f"APPLICATION app1();\n\tWORKSPACE w (\n\t\tROLE {name};\n\t);").startswith(
        'file.vsql:3:263: unexpected token "3456" (expected '
    )


def test_tokens_are_quoted_as_go_quotes_them() -> None:
    assert syntax_error('APPLICATION a();\nIMPORT SCHEMA "x";') == (
        'file.vsql:2:15: unexpected token "\\"x\\"" (expected string)'
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        # keywords are uppercase
        ("workspace W ();", "file.vsql:1:1:"),
        # statements that only exist inside a workspace, or only at package level
        ("TABLE T INHERITS sys.CDoc ();", "file.vsql:1:1: TABLE must be declared inside a WORKSPACE"),
        ("TAG T;", "file.vsql:1:1: TAG must be declared inside a WORKSPACE"),
        ("GRANT A TO B;", "file.vsql:1:1: GRANT must be declared inside a WORKSPACE"),
        ("RATE R 1 PER HOUR;", "file.vsql:1:1: RATE must be declared inside a WORKSPACE"),
        (
            "EXTENSION ENGINE BUILTIN (COMMAND C;);",
            "file.vsql:1:27: COMMAND must be declared inside a WORKSPACE",
        ),
        (
            "WORKSPACE W (EXTENSION ENGINE BUILTIN (STORAGE S(GET SCOPE(COMMANDS));););",
            "file.vsql:1:40: STORAGE is only allowed at package level",
        ),
        ("WORKSPACE W (APPLICATION a(););", "file.vsql:1:14: APPLICATION is only allowed at package level"),
        ("WORKSPACE W (DECLARE x int DEFAULT 1;);", "file.vsql:1:14: DECLARE is only allowed at package level"),
        ("ROLE R; IMPORT SCHEMA 'x';", "file.vsql:1:9: IMPORT SCHEMA must come before all other statements"),
        ("WORKSPACE W (ROLE R; DESCRIPTOR ();  );", "file.vsql:1:33: DESCRIPTOR must be the first statement"),
        ("ALTER WORKSPACE W (DESCRIPTOR (););", "file.vsql:1:31: DESCRIPTOR is only allowed in WORKSPACE"),
        # privileges that make no sense
        ("WORKSPACE W (GRANT SELECT ON COMMAND C TO R;);", "file.vsql:1:20: operation SELECT not allowed on COMMAND C"),
        ("WORKSPACE W (GRANT EXECUTE ON TABLE T TO R;);", "file.vsql:1:20: operation EXECUTE not allowed on TABLE T"),
        ("WORKSPACE W (GRANT INSERT ON VIEW V TO R;);", "file.vsql:1:20: operation INSERT not allowed on VIEW V"),
        ("WORKSPACE W (GRANT ALL ON ALL QUERIES TO R;);", "file.vsql:1:20: operation ALL not allowed on ALL QUERIES"),
        ("WORKSPACE W (GRANT SELECT(a) ON ALL TABLES TO R;);", "file.vsql:1:20: columns not allowed on ALL TABLES"),
        (
            "WORKSPACE W (GRANT SELECT(x.ID) ON TABLE T TO R;);",
            "file.vsql:1:27: invalid column x.ID: expected a field name or one of sys.ID",
        ),
        ("WORKSPACE W (LIMIT L ON COMMAND C WITH TAG T WITH RATE R;);", "file.vsql:1:35: WITH TAG not allowed"),
        # numbers out of range
        ("WORKSPACE W (RATE R 0 PER HOUR;);", "file.vsql:1:21: positive value only allowed"),
        ("WORKSPACE W (RATE R 1 PER 0 HOUR;);", "file.vsql:1:27: positive value only allowed"),
        ("WORKSPACE W (TYPE T (A varchar(-1)););", "file.vsql:1:32: invalid length -1"),
        ("DECLARE x int DEFAULT 3000000000;", "file.vsql:1:23: int32 value 3000000000 out of range"),
        # repeated options
        ("WORKSPACE W (TYPE T (A int NOT NULL NOT NULL););", "file.vsql:1:37: duplicate NOT NULL in field A"),
        (
            "WORKSPACE W (RATE R 1 PER HOUR PER IP PER WORKSPACE;);",
            "file.vsql:1:39: PER APP PARTITION or PER WORKSPACE must come once",
        ),
        ("WORKSPACE W (TYPE T (" + "A" * 256 + " int););", 'file.vsql:1:279: unexpected token "int"'),
        # separators
        ("WORKSPACE W (ROLE R ROLE S);", "file.vsql:1:21:"),
        ("WORKSPACE W (TYPE T (A int,););", "file.vsql:1:28:"),
    ],
)
def test_rejected(text: str, error: str) -> None:
    assert syntax_error(text).startswith(error)


def test_all_transform_errors_of_a_file_are_reported() -> None:
    with pytest.raises(VSQLError) as exc:
        parse_string("TAG A;\nTAG B;\nWORKSPACE W (RATE R 0 PER HOUR;);", "f.vsql")
    assert [str(d) for d in exc.value.diagnostics] == [
        "f.vsql:1:1: TAG must be declared inside a WORKSPACE",
        "f.vsql:2:1: TAG must be declared inside a WORKSPACE",
        "f.vsql:3:21: positive value only allowed",
    ]


def test_every_broken_file_of_a_package_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.vsql").write_text("WORKSPACE W (ROLE R);\n")
    (tmp_path / "b.vsql").write_text("\n\nWORKSPACE X (ROLE ;);\n")
    (tmp_path / "c.vsql").write_text("workspace Y ();\n")
    (tmp_path / "ignored.txt").write_text("not a schema")
    with pytest.raises(VSQLError) as exc:
        parse_package(tmp_path)
    files = [Path(d.file).name for d in exc.value.diagnostics]
    assert files == ["b.vsql", "c.vsql"]
    assert exc.value.diagnostics[0].line == 3
    text = str(exc.value)
    assert len(text.splitlines()) == 2
    assert text.splitlines()[0].endswith('b.vsql:3:19: unexpected token ";" (expected identifier)')


def test_package_from_folder_and_from_files(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "b.vsql").write_text("ROLE B;")
    (folder / "a.SQL").write_text("ROLE A;")
    pkg = parse_package(folder)
    assert pkg.name == "shop"
    assert [s.name for s in pkg.statements] == ["A", "B"]  # type: ignore[union-attr]
    pkg2 = parse_package([folder / "b.vsql"], name="other")
    assert pkg2.name == "other" and len(pkg2.files) == 1


def test_missing_files_and_folders(tmp_path: Path) -> None:
    with pytest.raises(VSQLError, match="no schema files in directory"):
        parse_package(tmp_path)
    with pytest.raises(VSQLError, match="cannot read package folder"):
        parse_package(tmp_path / "nope")
    with pytest.raises(VSQLError, match="cannot read schema file"):
        parse_file(tmp_path / "nope.vsql")
    bad = tmp_path / "bad.vsql"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(VSQLError, match="cannot read schema file"):
        parse_file(bad)
