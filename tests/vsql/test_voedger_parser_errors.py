"""``benchmarks/voedger_parser_errors.py`` on a miniature of Voedger's repository: the cases it reads
out of a Go test file (helpers, ParseFile chains, variables), and the count it prints."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from benchmarks import voedger_parser_errors as vpe

from tests.vsql.helpers import FIXTURES

IMPL_TEST = r"""
package parser

func Test_Syntax(t *testing.T) {
	require := assertions(t)

	_, err := ParseFile("file1.vsql", `APPLICATION app1();
	WORKSPACE w (
		ROLE _role;
	);`)
	require.ErrorContains(err, "file1.vsql:3:8: lexer: invalid input text")
}

func Test_Helpers(t *testing.T) {
	require := assertions(t)
	require.AppSchemaError(`APPLICATION test(); WORKSPACE ws (USE WORKSPACE fake);`,
		`file.vsql:1:49: undefined workspace: pkg.fake`)
	require.AppSchemaError(`APPLICATION test(); WORKSPACE ws (USE WORKSPACE fake);`,
		"file.vsql:1:1: " + "not Voedger's text")
}

func Test_Chain(t *testing.T) {
	require := require.New(t)
	fs, err := ParseFile("example.vsql", fmt.Sprintf(`APPLICATION test();
	WORKSPACE test (
		TYPE T (A varchar(%d));
		TABLE U INHERITS Nope ();
	);`, uint32(appdef.MaxFieldLength)+1))
	require.NoError(err)
	pkg, err := BuildPackageSchema("github.com/x/test", []*FileSchemaAST{fs})
	require.NoError(err)
	_, err = BuildAppSchema([]*PackageSchemaAST{pkg, getSysPackageAST()})
	expectErrors := []string{
		"example.vsql:4:3: undefined table kind",
	}
	require.EqualError(err, strings.Join(expectErrors, "\n"))
}

func Test_Unread(t *testing.T) {
	require.EqualError(err, someFunction())
}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "voedger"
    (root / "pkg/parser").mkdir(parents=True)
    (root / "pkg/parser/impl_test.go").write_text(IMPL_TEST)
    shutil.copytree(FIXTURES / "sys", root / "pkg/parser/sql_example_syspkg")
    vpm = root / "cmd/vpm/testdata/myapperr/mypkg1"
    vpm.mkdir(parents=True)
    (vpm / "schema1.vsql").write_text(
        "-- a comment\n--\n\nABSTRACT WORKSPACE MyWS1 (\n"
        "    TABLE MyTable1 INHERITS sys.ODoc (\n        MyField varchar NOT NUL\n    );\n);\n"
    )
    return root


def test_cases_are_read_from_helpers_chains_and_variables() -> None:
    cases, skipped = vpe.extract_cases(IMPL_TEST)
    assert skipped == 1  # Test_Unread's expectation is not a value the reader evaluates
    assert [(c.test, c.stage, c.exact) for c in cases] == [
        ("Test_Syntax", "parse", False),
        ("Test_Helpers", "app", True),
        ("Test_Helpers", "app", True),
        ("Test_Chain", "app", True),
    ]
    chain = cases[3]
    assert chain.packages[0].path == "github.com/x/test" and chain.packages[1] is vpe.SYS
    assert "varchar(65536)" in chain.packages[0].files[0].text
    assert cases[2].expected == "file.vsql:1:1: not Voedger's text"
    assert cases[1].packages[1].path == "github.com/company/pkg"


def test_the_count_of_exact_matches(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert vpe.main([str(repo), "--verbose"]) == 0
    out = capsys.readouterr().out
    # the lexer error, the helper with Voedger's text, the chain (its first error ends the analysis,
    # as the table kinds end Voedger's) and vpm's "NOT NUL" at NOT match; the made-up text does not
    assert out.splitlines()[-1] == (
        "4 of 5 expected errors match exactly (text and file:line:col); syntax: 2 of 2; 1 assertions not read"
    )
    assert "not Voedger's text" in out
