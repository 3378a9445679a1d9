"""How long the VSQL compiler takes on a large schema and on the platform's sys package.

    python -m benchmarks.vsql_parse [--repeat 5]

The large schema is the one ``tests/vsql/test_real_schemas.py`` builds (100 workspaces, each with
tables, a view, a projector, a role, a rate and a limit: about 2,900 lines). Prints the best and
the median of ``--repeat`` runs of each step, after one warm-up parse.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from tests.vsql.helpers import FIXTURES
from tests.vsql.test_real_schemas import large_schema

from voedger.vsql import analyse, ast, default_sys_dir, parse_package, parse_string


def timed(step: Callable[[], object], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        began = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - began)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    text = large_schema(100)
    parse_string("", "warm-up.vsql")
    file = parse_string(text, "big.vsql")
    sys_pkg = parse_package(FIXTURES / "sys", name="sys")
    package = ast.Package(name="big", path="", files=(file,))
    steps: dict[str, Callable[[], object]] = {
        f"parse the large schema ({text.count(chr(10))} lines)": lambda: parse_string(text, "big.vsql"),
        "analyse the large schema": lambda: analyse([package, sys_pkg]),
        "parse the platform's sys package": lambda: parse_package(default_sys_dir(), name="sys"),
    }
    print(f"{'step':<50} {'best s':>8} {'median s':>9}")
    for name, step in steps.items():
        seconds = timed(step, args.repeat)
        print(f"{name:<50} {min(seconds):>8.3f} {statistics.median(seconds):>9.3f}")


if __name__ == "__main__":
    main()
