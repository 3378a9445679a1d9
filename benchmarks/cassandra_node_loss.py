"""Losing one Cassandra node of three under command load, again and again.

    python benchmarks/cassandra_node_loss.py [--kills 6] [--clients 8] [--before 8] [--after 15]
                                             [--hosts 127.0.0.1,127.0.0.2,127.0.0.3] [--options k=v&...]

Needs the three-node development cluster (``python -m voedger.devtools.cassandra start
--nodes 3``; this script kills its nodes and starts them again, and leaves it whole). One
``voedger server`` runs against all three nodes (RF=3, QUORUM) while ``--clients`` tasks send
``c.sys.CUD`` commands without pause. Each round: ``--before`` seconds of load, ``kill -9`` of
one node (node 1, 2, 3, 1, ... in turn), ``--after`` seconds of load, then the node is started
again and the ring waited for, the load still running. Every acknowledged command is then looked
up in its workspace's WLog. ``--options`` adds storage URL options (e.g. ``batchlog_bypass=0``,
to see the old behaviour).

The table: per kill, the longest time without any acknowledgement after it, commands per second
before and during the loss, the longest gap while the node rejoined, and acknowledged commands
lost; then p50 and max over the kills.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from voedger.devtools import cassandra as devcassandra
from voedger.devtools import nodeloss

DEFAULT_HOSTS = "127.0.0.1,127.0.0.2,127.0.0.3"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


async def main(args: argparse.Namespace) -> int:
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    await nodeloss.wait_for_whole_ring(timeout=60)
    suffix = nodeloss.fresh_suffix()
    workdir = Path(tempfile.mkdtemp(prefix="voedger-nodeloss-"))
    url = nodeloss.cluster_url(hosts, suffix, args.options)
    server = nodeloss.Server(workdir, url)
    victims = [1 + i % devcassandra.CLUSTER_SIZE for i in range(args.kills)]
    rows: list[tuple[nodeloss.KillReport, float, int, int]] = []
    lost_total = 0
    print(f"server log: {server.log}", flush=True)
    try:
        await server.start()
        async with nodeloss.loaded(server.base_url, args.clients) as load:
            for victim in victims:
                await asyncio.sleep(args.before)
                if not load.acks or load.acks[-1].at < time.monotonic() - 1:
                    raise SystemExit(f"no command is acknowledged before the kill: {load.first_failure}")
                failed_before = sum(load.failures.values())
                killed_at = await nodeloss.kill(victim)
                await asyncio.sleep(max(0.0, killed_at + args.after - time.monotonic()))
                ended_at = time.monotonic()
                kill = nodeloss.report(victim, load, killed_at, ended_at, args.before)
                rejoin_began = time.monotonic()
                await nodeloss.restart(victim)
                rejoined_at = time.monotonic()
                await asyncio.sleep(args.settle)
                rejoin_gap, _ = nodeloss.longest_gap(load.acks, rejoin_began, time.monotonic())
                round_acks = [a for a in load.acks if a.at >= killed_at - args.before]
                lost = await nodeloss.lost_acks(url, round_acks)
                lost_total += len(lost)
                failed = sum(load.failures.values()) - failed_before
                rows.append((kill, rejoin_gap, len(lost), failed))
                print(
                    f"kill of node{victim}: longest gap {kill.longest_gap:.2f} s (from +{kill.gap_began:.2f} s), "
                    f"{kill.rate_before:.0f} cmd/s before, {kill.rate_during:.0f} during, "
                    f"rejoined in {rejoined_at - rejoin_began:.0f} s (longest gap then {rejoin_gap:.2f} s), "
                    f"lost {len(lost)}, failed requests {failed} (so far {dict(load.failures)})",
                    flush=True,
                )
        total_lost = await nodeloss.lost_acks(url, load.acks)
        print(f"\nacknowledged commands: {len(load.acks)}, lost: {len(total_lost)}, failures: {dict(load.failures)}")
    finally:
        for victim in sorted(set(victims)):
            await nodeloss.restart(victim)
        code = server.stop()
        print(f"server exit code {code}")
        dropped = await nodeloss.drop_keyspaces(hosts, suffix)
        print(f"dropped {len(dropped)} keyspaces")

    print()
    print(
        _row(
            [
                "kill",
                "node",
                "longest gap after the kill, s",
                "cmd/s before",
                "cmd/s during",
                "gap while rejoining, s",
                "failed requests",
                "lost",
            ]
        )
    )
    print(_row(["---:"] * 8))
    for i, (kill, rejoin_gap, lost, failed) in enumerate(rows, 1):
        print(
            _row(
                [
                    str(i),
                    str(kill.victim),
                    f"{kill.longest_gap:.2f}",
                    f"{kill.rate_before:.0f}",
                    f"{kill.rate_during:.0f}",
                    f"{rejoin_gap:.2f}",
                    str(failed),
                    str(lost),
                ]
            )
        )
    gaps = [k.longest_gap for k, _, _, _ in rows]
    if gaps:
        print(f"\nlongest gap after a kill: p50 {statistics.median(gaps):.2f} s, max {max(gaps):.2f} s")
        print(f"acknowledged commands lost: {lost_total} in the rounds, {len(total_lost)} over the whole run")
    return 0 if not total_lost and lost_total == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--before", type=float, default=8.0, help="seconds of load before each kill")
    parser.add_argument("--after", type=float, default=15.0, help="seconds of load after each kill")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after the ring is whole again")
    parser.add_argument("--hosts", default=DEFAULT_HOSTS)
    parser.add_argument("--options", default="", help="extra storage URL options, e.g. batchlog_bypass=0")
    os.environ.setdefault("VOEDGER_DEVDATA", str(Path(__file__).resolve().parent.parent / ".devdata"))
    sys.exit(asyncio.run(main(parser.parse_args())))
