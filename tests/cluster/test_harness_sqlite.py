"""The harness, the load and the checker end to end on one server process over SQLite: quick
enough for the unit tier, so that a broken harness shows before the cluster tier runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.cluster.checker import ack_gap
from tests.cluster.history import ACKED
from tests.cluster.load import LoadConfig
from tests.cluster.scenario import running_scenario

pytestmark = pytest.mark.timeout(180)


async def test_load_kill_9_restart_and_check_on_sqlite(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_scenario(tmp_path, f"sqlite://{data}", 1) as s:
        (p0,) = s.harness.processes
        load = s.start_load(10.0, LoadConfig(clients=8))
        await asyncio.sleep(2.0)
        killed = s.history.mark("kill -9 p0")
        s.harness.kill(p0)
        await s.harness.restart(p0)
        back = s.history.mark("p0 back")
        await load
        report = await s.check(catch_up_timeout=20)
    assert report.ok, s.context(report)
    acked = s.history.acked()
    assert any(a.ended is not None and a.ended < killed for a in acked), "nothing was acknowledged before the kill"
    assert any(a.started >= back for a in acked), "nothing was acknowledged after the restart"
    assert p0.exit_codes[0] == -9 and p0.generation == 2
    assert report.stats["workspaces with LoadItems"] == s.image.num_app_workspaces
    assert ack_gap(s.history, since=back).length < 3.0, s.context(report)
    cut = [a for a in s.history.attempts if a.outcome != ACKED]
    assert cut, "the kill cut no request in flight: it did not happen under load"
    assert all(a.started < killed for a in cut), "only requests in flight at the kill may fail"
