"""A federation of three clusters as real processes on loopback, each with its own SQLite storage.

The scenario of issue 14: a user signs up through worker 2 and gets a profile in cluster 2; from
it a workspace is made in cluster 3; that workspace answers the same through the routers of all
three clusters; its rows exist in cluster 3's storage only; with cluster 3 stopped only its
workspaces answer 503, and they come back with it; with the main cluster stopped, the tokens it
issued still work on the workers. Real tokens throughout: the main cluster signs users' tokens
with its Ed25519 key, every cluster signs its own System tokens, and each verifies the others'
with the public keys the directory lists.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.federation.harness import SHOP, Federation, voedger
from voedger.structs import wsid as ws

pytestmark = pytest.mark.timeout(300)

V2 = f"/api/v2/apps/{SHOP}"


@pytest.fixture
async def federation(tmp_path: Path) -> AsyncIterator[Federation]:
    fed = Federation(tmp_path)
    try:
        await fed.start()
        yield fed
    finally:
        fed.stop()
    assert not fed.tracebacks(), f"tracebacks in the logs of {fed.tracebacks()}"


@pytest.fixture
async def cassandra_federation(tmp_path: Path) -> AsyncIterator[Federation]:
    """The same three clusters, each keeping its data in Cassandra keyspaces of its own."""
    hosts = os.environ.get("VOEDGER_TEST_CASSANDRA") or os.environ.get("VOEDGER_TEST_CLUSTER")
    if not hosts:
        pytest.fail("VOEDGER_TEST_CASSANDRA is not set: run the Cassandra tier with `make test-cassandra`")
    fed = Federation(tmp_path, cassandra=hosts)
    try:
        await fed.start()
        yield fed
    finally:
        fed.stop()
        await fed.drop_keyspaces()
    assert not fed.tracebacks(), f"tracebacks in the logs of {fed.tracebacks()}"


async def _poll(c: httpx.AsyncClient, method: str, url: str, ok: int = 200, timeout: float = 30, **kw: Any) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        r = await c.request(method, url, **kw)
        if r.status_code == ok:
            return r
        assert time.monotonic() < deadline, f"{method} {url}: {r.status_code} {r.text}"
        await asyncio.sleep(0.1)


async def _sign_up(c: httpx.AsyncClient, router: str, login: str) -> tuple[str, int]:
    r = await c.post(f"{router}{V2}/users", json={"login": login, "password": "pass-word-1"})
    assert r.status_code == 201, r.text
    r = await _poll(c, "POST", f"{router}{V2}/auth/login", json={"login": login, "password": "pass-word-1"})
    return r.json()["principalToken"], int(r.json()["profileWSID"])


async def _child(c: httpx.AsyncClient, router: str, profile: int, name: str, cluster: int, token: str) -> int:
    auth = {"Authorization": f"Bearer {token}"}
    args = {"WSName": name, "WSKind": "shop.ShopDesc", "WSKindInitializationData": '{"Name":"N"}'}
    args["WSClusterID"] = cluster  # type: ignore[assignment]
    r = await c.post(f"{router}/api/{SHOP}/{profile}/c.sys.InitChildWorkspace", json={"args": args}, headers=auth)
    assert r.status_code == 200, r.text
    body = {"args": {"WSName": name}, "elements": [{"fields": ["WSID", "WSError"]}]}
    deadline = time.monotonic() + 30
    while True:
        r = await c.post(f"{router}/api/{SHOP}/{profile}/q.sys.QueryChildWorkspaceByName", json=body, headers=auth)
        assert r.status_code == 200, r.text
        wsid, error = r.json()["sections"][0]["elements"][0][0][0]
        assert not error, error
        if wsid:
            return int(wsid)
        assert time.monotonic() < deadline, "the child workspace was not made in time"
        await asyncio.sleep(0.1)


def _rows_of(data_dir: Path, wsid: int) -> int:
    """Rows of every SQLite file under ``data_dir`` whose partition key holds ``wsid``."""
    needle = struct.pack(">Q", wsid)
    found = 0
    for path in data_dir.rglob("*"):
        if not path.is_file() or path.suffix in (".lock", ".wal", ".shm") or path.name.endswith(("-wal", "-shm")):
            continue
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                found += db.execute("SELECT count(*) FROM kv WHERE instr(p, ?) > 0", (needle,)).fetchone()[0]
        except sqlite3.DatabaseError:
            continue  # not one of the storage's databases
    return found


async def test_three_clusters_route_place_and_isolate(federation: Federation) -> None:
    child, profile = await _scenario(federation)
    # Residency: the workspace's rows are in cluster 3's storage only; the profile's in 2's only.
    federation.stop()
    homes = {i: federation.clusters[i].home / "data" for i in (1, 2, 3)}
    assert _rows_of(homes[3], child) > 0
    assert _rows_of(homes[1], child) == 0 and _rows_of(homes[2], child) == 0
    assert _rows_of(homes[2], profile) > 0
    assert _rows_of(homes[1], profile) == 0 and _rows_of(homes[3], profile) == 0


@pytest.mark.cassandra
async def test_three_clusters_on_cassandra_keyspaces_of_their_own(cassandra_federation: Federation) -> None:
    fed = cassandra_federation
    child, profile = await _scenario(fed)
    fed.stop()
    rows = {i: await _cassandra_rows_of(fed, i, (child, profile)) for i in (1, 2, 3)}
    assert rows[3][child] > 0 and rows[1][child] == 0 and rows[2][child] == 0
    assert rows[2][profile] > 0 and rows[1][profile] == 0 and rows[3][profile] == 0


async def _cassandra_rows_of(fed: Federation, cluster: int, wsids: tuple[int, ...]) -> dict[int, int]:
    """Rows of each WSID in the keyspaces of ``cluster`` (partition keys that hold it)."""
    from voedger.storage.cassandra import CassandraStorageFactory

    c = fed.clusters[cluster]
    assert c.cassandra is not None
    factory = await CassandraStorageFactory.connect(c.cassandra.split(","), keyspace_suffix=c.keyspace_suffix)
    found = dict.fromkeys(wsids, 0)
    try:
        session = factory.session
        keyspaces = [
            r[0]
            for r in session.execute("SELECT keyspace_name FROM system_schema.keyspaces")
            if r[0].endswith(c.keyspace_suffix)
        ]
        assert keyspaces, f"no keyspaces of cluster {cluster}"
        for ks in keyspaces:
            tables = {
                r[0]
                for r in session.execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (ks,))
            }
            if "values" not in tables:
                continue
            for row in session.execute(f'SELECT DISTINCT p_key FROM "{ks}"."values"'):
                for wsid in wsids:
                    if struct.pack(">Q", wsid) in bytes(row[0]):
                        found[wsid] += 1
    finally:
        await factory.close()
    return found


async def _scenario(federation: Federation) -> tuple[int, int]:
    """The scenario through the routers; the (child, profile) WSIDs."""
    r1, r2, r3 = (federation.clusters[i].url for i in (1, 2, 3))
    async with httpx.AsyncClient(timeout=30) as c:
        # Signed up through worker 2: the login is kept by the main cluster's registry, the
        # profile is made in cluster 2.
        token, profile = await _sign_up(c, r2, "ann")
        assert ws.cluster_id(profile) == 2
        # A workspace in cluster 3, from the profile, through worker 2's router.
        child = await _child(c, r2, profile, "shop3", 3, token)
        assert ws.cluster_id(child) == 3
        auth = {"Authorization": f"Bearer {token}"}

        # The same workspace through all three routers: commands land, reads answer alike.
        for i, router in enumerate((r1, r2, r3)):
            item = {"sys.ID": 1, "sys.QName": "shop.Item", "Name": f"tea-{i}"}
            r = await c.post(f"{router}/api/{SHOP}/{child}/c.sys.CUD", json={"cuds": [{"fields": item}]}, headers=auth)
            assert r.status_code == 200, r.text
        answers = []
        for router in (r1, r2, r3):
            r = await c.get(f"{router}{V2}/workspaces/{child}/cdocs/shop.Item", headers=auth)
            assert r.status_code == 200, r.text
            answers.append((r.status_code, r.headers["content-type"], r.content))
        assert answers[0] == answers[1] == answers[2]
        assert sorted(x["Name"] for x in httpx.Response(200, content=answers[0][2]).json()["results"]) == [
            "tea-0",
            "tea-1",
            "tea-2",
        ]

        # A cluster the federation does not have: 400 naming it, through any router.
        stranger = ws.new_wsid(9, ws.FIRST_BASE_USER_WSID)
        for router in (r1, r2, r3):
            r = await c.post(f"{router}/api/{SHOP}/{stranger}/c.sys.CUD", json={"cuds": []}, headers=auth)
            assert r.status_code == 400 and "cluster 9" in r.text, r.text

        # Cluster 3 down: its workspace answers 503 with Retry-After through the others; the
        # profile (cluster 2) and the main cluster's registry go on.
        federation.clusters[3].stop()
        for router in (r1, r2):
            r = await c.get(f"{router}{V2}/workspaces/{child}/cdocs/shop.Item", headers=auth)
            assert r.status_code == 503 and r.headers.get("retry-after"), r.text
            r = await c.post(f"{router}/api/{SHOP}/{child}/c.sys.CUD", json={"cuds": []}, headers=auth)
            assert r.status_code == 503 and r.headers.get("retry-after"), r.text
        r = await c.get(f"{r1}{V2}/workspaces/{profile}/docs/sys.UserProfile", headers=auth)
        assert r.status_code == 200, r.text
        _, other = await _sign_up(c, r1, "bob")
        assert ws.cluster_id(other) == 1
        # ... and comes back with it.
        await federation.clusters[3].start()
        r = await _poll(c, "GET", f"{r1}{V2}/workspaces/{child}/cdocs/shop.Item", headers=auth)
        assert len(r.json()["results"]) == 3

        # A worker refreshes a token through the main cluster (it may not issue one itself).
        r = await c.post(f"{r3}{V2}/auth/refresh", headers=auth)
        assert r.status_code == 200 and r.json()["profileWSID"] == profile, r.text
        fresh = {"Authorization": f"Bearer {r.json()['principalToken']}"}
        r = await c.get(f"{r2}{V2}/workspaces/{child}/cdocs/shop.Item", headers=fresh)
        assert r.status_code == 200, r.text
        r = await c.post(f"{r2}{V2}/auth/refresh", headers={"Authorization": "Bearer x.y.z"})
        assert r.status_code == 401, r.text

        # The main cluster down: the tokens it issued before still work on the workers (each
        # verifies them with the main cluster's public key, from the directory it keeps); only
        # signing in waits.
        federation.main.stop()
        for router in (r2, r3):
            r = await c.get(f"{router}{V2}/workspaces/{child}/cdocs/shop.Item", headers=auth)
            assert r.status_code == 200, r.text
        r = await c.get(f"{r2}{V2}/workspaces/{profile}/docs/sys.UserProfile", headers=auth)
        assert r.status_code == 200, r.text
        r = await c.post(f"{r2}{V2}/auth/login", json={"login": "ann", "password": "pass-word-1"})
        assert r.status_code == 503 and r.headers.get("retry-after"), r.text
        r = await c.post(f"{r2}{V2}/auth/refresh", headers=auth)
        assert r.status_code == 503 and r.headers.get("retry-after"), r.text

    return child, profile


async def test_the_directory_is_kept_by_the_main_cluster_and_reaches_workers(federation: Federation) -> None:
    listed = voedger("federation", "list", "--storage", federation.main.storage)
    assert listed.returncode == 0 and "3 cluster(s)" in listed.stdout, listed.stderr
    async with httpx.AsyncClient(timeout=10) as c:
        # Without the federation secret, a router's internal endpoints refuse.
        r = await c.post(f"{federation.main.url}/_federation/directory")
        assert r.status_code == 401
        r = await c.post(f"{federation.clusters[2].url}/_federation/bus", headers={"X-Voedger-Federation-Secret": "00"})
        assert r.status_code == 403


async def test_the_main_cluster_rotates_its_key_without_downtime(federation: Federation) -> None:
    import jwt

    main = federation.main.storage
    r1, r3 = federation.main.url, federation.clusters[3].url
    async with httpx.AsyncClient(timeout=30) as c:
        old_token, profile = await _sign_up(c, r1, "rot")
        old_kid = jwt.get_unverified_header(old_token)["kid"]
        staged = voedger("keys", "stage", "--storage", main)
        assert staged.returncode == 0, staged.stderr
        new_kid = staged.stdout.split()[1].rstrip(":")
        assert new_kid != old_kid

        def listed() -> bool:
            done = voedger("federation", "list", "--storage", main, "--json")
            entry = next(e for e in httpx.Response(200, content=done.stdout).json()["clusters"] if e["id"] == 1)
            return {k["kid"] for k in entry["keys"]} == {old_kid, new_kid}

        deadline = time.monotonic() + 40
        while not listed():  # the servers reload their keys, the main cluster publishes them
            assert time.monotonic() < deadline, "the staged key did not reach the directory"
            await asyncio.sleep(0.5)
        done = voedger("keys", "activate", "--storage", main, "--", new_kid)  # a key ID may start with "-"
        assert done.returncode == 0, done.stderr

        async def signed_with_new() -> Any:
            r = await c.post(f"{r1}{V2}/auth/login", json={"login": "rot", "password": "pass-word-1"})
            token = r.json()["principalToken"]
            return token if jwt.get_unverified_header(token)["kid"] == new_kid else None

        deadline = time.monotonic() + 40
        while (new_token := await signed_with_new()) is None:
            assert time.monotonic() < deadline, "the new key does not sign"
            await asyncio.sleep(0.5)
        # Both tokens work on a worker, which verifies them itself.
        for token in (old_token, new_token):
            r = await c.get(
                f"{r3}{V2}/workspaces/{profile}/docs/sys.UserProfile", headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 200, r.text
        listing = voedger("keys", "list", "--storage", main)
        assert f"* {new_kid}" in listing.stdout and old_kid in listing.stdout, listing.stdout
        done = voedger("keys", "remove", "--storage", main, "--", new_kid)
        assert done.returncode == 1 and "signing key cannot be removed" in done.stderr
        done = voedger("keys", "remove", "--storage", main, "--", old_kid)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 40
        while True:  # the old key's tokens stop verifying everywhere
            r = await c.get(
                f"{r3}{V2}/workspaces/{profile}/docs/sys.UserProfile", headers={"Authorization": f"Bearer {old_token}"}
            )
            if r.status_code == 401:
                break
            assert time.monotonic() < deadline, "a removed key still verifies on a worker"
            await asyncio.sleep(0.5)
        r = await c.get(
            f"{r3}{V2}/workspaces/{profile}/docs/sys.UserProfile", headers={"Authorization": f"Bearer {new_token}"}
        )
        assert r.status_code == 200, r.text
