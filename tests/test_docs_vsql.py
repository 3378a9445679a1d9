"""docs/vsql.md stays true: every `vsql` block compiles (or fails with the error it announces in a
first line ``-- error: TEXT``), and its table of storages is the platform's sys package's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voedger.appdef.load import compile_app
from voedger.appdef.storages import StorageOp, StorageScope
from voedger.vsql import VSQLError

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "vsql.md"
TEXT = GUIDE.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```vsql\n(.*?)```", TEXT, re.DOTALL)


def test_the_guide_has_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_each_example(tmp_path: Path, block: str) -> None:
    (tmp_path / "app.vsql").write_text(block)
    first = block.splitlines()[0]
    if first.startswith("-- error: "):
        with pytest.raises(VSQLError) as exc:
            compile_app(tmp_path)
        assert first.removeprefix("-- error: ").strip() in str(exc.value)
    else:
        compile_app(tmp_path)


def storage_table(app_dir: Path) -> str:
    app = compile_app(app_dir)
    scopes = [StorageScope.Commands, StorageScope.Queries, StorageScope.Projectors, StorageScope.Jobs]
    rows = ["| storage | " + " | ".join(s.value for s in scopes) + " |", "|---|---|---|---|---|"]
    for storage in sorted(app.storages(), key=lambda s: str(s.qname)):
        cells = [", ".join(op.value for op in StorageOp if storage.allows(op, scope)) for scope in scopes]
        rows.append(f"| {storage.qname} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def test_the_storage_table_is_the_platforms(tmp_path: Path) -> None:
    (tmp_path / "app.vsql").write_text("APPLICATION a();")
    documented = TEXT.split("<!-- storages:begin -->\n", 1)[1].split("\n<!-- storages:end -->", 1)[0]
    assert documented == storage_table(tmp_path)
