"""docs/extensions.md stays true: its schema, its extension module and its test are taken from
the page as they are, and the test passes; the State and Intents members it lists exist."""

from __future__ import annotations

import re
import types
from pathlib import Path

from voedger.state import Intents, State

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "extensions.md"
TEXT = GUIDE.read_text(encoding="utf-8")


def block(tag: str) -> str:
    found = re.findall(rf"```{tag}\n(.*?)```", TEXT, re.DOTALL)
    assert len(found) == 1, tag
    return str(found[0])


def test_the_example_application_runs(tmp_path: Path) -> None:
    app = tmp_path / "library"  # the folder names the package: library.Book
    app.mkdir()
    (app / "app.vsql").write_text(block("vsql"))
    (app / "ext.py").write_text(block("python"))
    test = types.ModuleType("docs_extensions_test")
    exec(compile(block("python test"), str(GUIDE), "exec"), test.__dict__)
    tests = [v for k, v in test.__dict__.items() if k.startswith("test_")]
    assert tests
    for run in tests:
        run(app)


def test_the_listed_members_exist() -> None:
    for cls, prefix in ((State, "state"), (Intents, "intents")):
        names = set(re.findall(rf"`(?:await )?{prefix}\.(\w+)", TEXT))
        assert names, prefix
        for name in names:
            assert hasattr(cls, name), f"{prefix}.{name} is documented but {cls.__name__} has no {name}"
