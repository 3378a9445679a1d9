"""What a WASM extension costs next to a Python one: the guide's shelf example (docs/extensions.md,
"WASM extensions") run in process through the test kit, which is the server's command pipeline
over mem storage, once with its Go ``pkg.wasm`` and once with the same extensions in Python.

    python benchmarks/wasm_extensions.py [--calls 300]

Needs Go 1.24 or later (it builds the guide's Go); prints microseconds per command, wall and CPU,
for ``Lend`` (a record read, an update, a result) and ``AddBook`` (an insert, then the SYNC
projector ``CountStock`` reading and writing a view row), on uvloop as the server runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.wasm.conftest import build_go, doc_block, make_app

from voedger.testkit import ExtensionTestKit

PYTHON_SHELF = """
from voedger.extensions import command, projector


@command("shelf.AddBook")
def add_book(state, intents):
    a = state.arg
    intents.insert("shelf.Book", Title=a["Title"], Genre=a["Genre"], Copies=a["Copies"])


@command("shelf.Lend")
async def lend(state, intents):
    book = await state.record(state.arg["Book"])
    if book is None:
        intents.respond(404, "no such book")
        return
    if book["Copies"] == 0:
        intents.respond(409, f"every copy of {book['Title']} is lent")
        return
    intents.update(book, Copies=book["Copies"] - 1)
    intents.result(Left=book["Copies"] - 1)


@projector("shelf.CountStock")
async def count_stock(state, intents):
    for cud in state.event.cuds:
        if cud.is_new and cud.qname == "shelf.Book":
            key = {"Part": 0, "Genre": cud.fields["Genre"]}
            row = await state.view("shelf.Stock", **key) or {"Books": 0, "Copies": 0}
            intents.put_view("shelf.Stock", **key, Books=row["Books"] + 1, Copies=row["Copies"] + cud.fields["Copies"])
"""


async def measure(app: Path, calls: int) -> dict[str, tuple[float, float]]:
    kit = ExtensionTestKit(app, sync_projectors=True)
    added = await kit.run_command("shelf.AddBook", args={"Title": "Dune", "Genre": "sf", "Copies": 10**6})
    book = added.new_ids[1]

    async def timed(call: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
        for i in range(20):  # warm: instances made, caches filled
            await call(i)
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(calls):
            await call(i)
        return (time.perf_counter() - wall) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6

    return {
        "Lend": await timed(lambda i: kit.run_command("shelf.Lend", args={"Book": book})),
        "AddBook": await timed(
            lambda i: kit.run_command("shelf.AddBook", args={"Title": f"B{i}", "Genre": "sf", "Copies": 1})
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="voedger-wasm-bench-") as tmp:
        root = Path(tmp)
        vsql = doc_block("vsql wasm")
        wasm_app = make_app(root / "wasm", "shelf", vsql, build_go(doc_block("go"), root / "go"))
        python_app = make_app(root / "python", "shelf", vsql.replace("ENGINE WASM", "ENGINE BUILTIN"), None)
        (python_app / "ext.py").write_text(PYTHON_SHELF)
        print(f"{'engine':8} {'command':8} {'wall us':>8} {'cpu us':>8}")
        for name, app in (("python", python_app), ("wasm", wasm_app)):
            for command, (wall, cpu) in uvloop.run(measure(app, args.calls)).items():
                print(f"{name:8} {command:8} {wall:8.0f} {cpu:8.0f}")


if __name__ == "__main__":
    main()
