"""The harness: its command lines, the cluster-mode gate, and the harness, the load and the
checker end to end on one server process over SQLite, quick enough for the unit tier, so that a
broken harness shows before the cluster tier runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.cluster import harness
from tests.cluster.checker import APP_DIR, APP_NAME, ack_gap
from tests.cluster.harness import Harness
from tests.cluster.history import PENDING, UNKNOWN
from tests.cluster.load import LoadConfig
from tests.cluster.scenario import running_scenario

pytestmark = pytest.mark.timeout(180)


def test_cluster_mode_advertises_each_process_and_passes_the_lease_ttl(tmp_path: Path) -> None:
    h = Harness(tmp_path, "cassandra://127.0.0.1/", [(APP_NAME, APP_DIR)], cluster=True, lease_ttl=4.0)
    p = h.new_process()
    cmd = h.command(p)
    assert cmd[cmd.index("--advertise") + 1] == f"http://127.0.0.1:{p.port}"
    assert cmd[cmd.index("--port") + 1] == str(p.port)
    assert cmd[cmd.index("--lease-ttl") + 1] == "4"
    assert "--insecure-dev" in cmd
    assert cmd[cmd.index("--app") + 1] == f"{APP_NAME}={APP_DIR}"
    single = Harness(tmp_path, "cassandra://127.0.0.1/", [(APP_NAME, APP_DIR)], lease_ttl=4.0)
    assert not {"--advertise", "--lease-ttl"} & set(single.command(single.new_process()))


def test_cluster_scenarios_skip_until_the_server_has_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "server_help", lambda: "Options:\n  --port INTEGER\n  --advertise TEXT\n")
    assert harness.missing_cluster_options() == ["--lease-ttl"]
    with pytest.raises(pytest.skip.Exception, match="--lease-ttl"):
        harness.require_cluster_options()
    monkeypatch.setattr(harness, "server_help", lambda: "  --advertise TEXT\n  --lease-ttl FLOAT\n")
    harness.require_cluster_options()  # no skip


def test_the_real_help_is_read() -> None:
    assert "--insecure-dev" in harness.server_help()


async def test_load_kill_9_restart_and_check_on_sqlite(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_scenario(tmp_path, f"sqlite://{data}", 1) as s:
        (p0,) = s.harness.processes
        load = s.new_load(LoadConfig(clients=8))
        running = asyncio.create_task(load.run(120.0))
        await asyncio.sleep(2.0)
        # The kill is to cut requests in flight. Requests seen pending a moment before a kill
        # may still be answered (their answers already written), so the process is stopped
        # first: answers already sent arrive, new requests wait on it; once two wait, kill -9.
        s.harness.pause(p0, keep_routed=True)
        await asyncio.sleep(0.3)
        deadline = asyncio.get_running_loop().time() + 10
        while sum(a.outcome == PENDING for a in s.history.attempts) < 2:
            assert asyncio.get_running_loop().time() < deadline, "the load sent nothing for 10 s"
            await asyncio.sleep(0.001)
        killed = s.history.mark("kill -9 p0")
        s.harness.kill(p0)
        await s.harness.restart(p0)  # a busy machine takes seconds: the load goes on until after it
        back = s.history.mark("p0 back")
        await asyncio.sleep(5.0)
        load.finish()
        await running
        report = await s.check(catch_up_timeout=20)
    assert report.ok, s.context(report)
    acked = s.history.acked()
    assert any(a.ended is not None and a.ended < killed for a in acked), "nothing was acknowledged before the kill"
    assert any(a.started >= back for a in acked), "nothing was acknowledged after the restart"
    assert p0.exit_codes[0] == -9 and p0.generation == 2
    assert report.stats["workspaces with LoadItems"] == s.image.num_app_workspaces
    assert ack_gap(s.history, since=back).length < 4.0, s.context(report)  # of 5 s of load after the restart
    cut = [a for a in s.history.attempts if a.outcome == UNKNOWN]
    assert cut, "the kill cut no request in flight: it did not happen under load"
    late = [tries[0].token for tries in s.history.failed_requests() if tries[0].started >= killed]
    assert late == [], f"requests begun after the kill failed: {late[:5]}"
