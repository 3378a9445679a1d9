"""A LIMIT whose filter selects nothing in its workspace is an error (Voedger's «filter has no
matches»); one that selects something, its own or inherited, is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from voedger.appdef.load import compile_app
from voedger.vsql import VSQLError

HEAD = "APPLICATION a();\nWORKSPACE W (\n    RATE R 10 PER MINUTE;\n    TAG T;\n"


def compile_text(tmp_path: Path, body: str) -> None:
    (tmp_path / "app.vsql").write_text(HEAD + body + "\n);\n")
    compile_app(tmp_path)


def test_a_limit_that_matches_nothing(tmp_path: Path) -> None:
    with pytest.raises(VSQLError) as exc:
        compile_text(tmp_path, "    LIMIT L ON ALL TABLES WITH TAG T WITH RATE R;")
    (d,) = exc.value.diagnostics
    assert (d.line, d.col) == (5, 5)
    assert "filter «" in d.message and "has no matches in workspace" in d.message


@pytest.mark.parametrize(
    "body",
    [
        "    TABLE X INHERITS sys.CDoc (a int32) WITH Tags=(T);\n    LIMIT L ON ALL TABLES WITH TAG T WITH RATE R;",
        "    LIMIT L ON ALL COMMANDS WITH RATE R;",  # the commands of sys.Workspace, inherited
        "    TABLE X INHERITS sys.CDoc (a int32);\n    LIMIT L ON TABLE X WITH RATE R;",
    ],
)
def test_limits_that_match(tmp_path: Path, body: str) -> None:
    compile_text(tmp_path, body)
