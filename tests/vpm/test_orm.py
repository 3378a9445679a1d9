"""``vpm orm``: typed access to the schema that extension modules import; the application runs
with it (its tests and its image), and mypy catches a misspelt field or argument."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from voedger.cli.vpm import main
from voedger.vvm.image import load_image

SRC = Path(__file__).resolve().parents[2] / "src"

EXT = """from __future__ import annotations

from voedger.extensions import command, projector, query
from voedger.state import Intents, State
from voedger.syserror import SysError

from .orm import get_stock, get_stock_result, move_arg, put_stock


@command("loans.Move")
def move(state: State, intents: Intents) -> None:
    if move_arg(state)["Qty"] == 0:
        raise SysError(400, "Qty must not be 0")


@projector("loans.CountStock")
async def count_stock(state: State, intents: Intents) -> None:
    args = state.event.args or {}
    row = await get_stock(state, Part=0, Item=args["Item"])
    put_stock(intents, Part=0, Item=args["Item"], Qty=(row["Qty"] if row else 0) + args["Qty"])


@query("loans.GetStock")
async def get_stock_q(state: State, intents: Intents) -> None:
    row = await get_stock(state, Part=0, Item=state.arg["Item"])
    get_stock_result(intents, {"Qty": row["Qty"] if row else 0})
"""


def vpm(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_orm_typed_extensions_run_and_mypy_checks_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert vpm("init", "github.com/acme/loans").exit_code == 0
    app = tmp_path / "loans"
    r = vpm("orm", "-C", app)
    assert r.exit_code == 0, r.output
    orm = (app / "orm.py").read_text()
    assert "class Stock(TypedDict):" in orm
    assert "def put_stock(intents: Intents, *, Part: int, Item: int, Qty: int) -> None:" in orm
    assert "def insert_item(intents: Intents, *, Name: str) -> int:" in orm
    assert "def move_arg(state: State) -> MoveParams:" in orm
    (app / "ext.py").write_text(EXT)

    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"], app)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert vpm("build", "-C", app, "-o", tmp_path / "loans.var").exit_code == 0
    assert "loans.Move" in load_image("acme/loans", tmp_path / "loans.var").impls

    mypy = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".mypy"), "loans"]
    checked = run(mypy, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    wrong = EXT.replace('move_arg(state)["Qty"]', 'move_arg(state)["Quantity"]').replace("Qty=(row", "Qyt=(row")
    (app / "ext.py").write_text(wrong)
    checked = run(mypy, tmp_path)
    assert checked.returncode == 1
    assert 'TypedDict "MoveParams" has no key "Quantity"' in checked.stdout
    assert 'Unexpected keyword argument "Qyt" for "put_stock"' in checked.stdout
