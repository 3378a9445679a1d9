"""Where the load sends each request: round robin over the routed processes, or to the process
``prefer`` names for the workspace while that one is routed."""

from __future__ import annotations

from tests.cluster.harness import Target
from tests.cluster.history import History
from tests.cluster.load import Load

TARGETS = [
    Target("p0", "http://127.0.0.1:1", 0),
    Target("p1", "http://127.0.0.1:2", 0),
    Target("p2", "http://127.0.0.1:3", 0),
]


def test_round_robin_over_the_routed_processes() -> None:
    load = Load(History(), "test/app", [1, 2], lambda: TARGETS)
    assert [load._pick(1).name for _ in range(4)] == ["p0", "p1", "p2", "p0"]  # type: ignore[union-attr]


def test_preferred_process_while_it_is_routed_else_round_robin() -> None:
    routed = list(TARGETS)
    owners = {10: "p2", 11: "p1"}
    load = Load(History(), "test/app", [10, 11, 12], lambda: routed, prefer=owners.get)
    assert [load._pick(10).name for _ in range(3)] == ["p2", "p2", "p2"]  # type: ignore[union-attr]
    assert load._pick(11).name == "p1"  # type: ignore[union-attr]
    assert load._pick(12) in TARGETS  # no preference: round robin
    routed.remove(TARGETS[2])  # p2 taken out of the routing (killed): its workspaces go elsewhere
    assert {load._pick(10).name for _ in range(4)} == {"p0", "p1"}  # type: ignore[union-attr]
    routed.clear()
    assert load._pick(10) is None
