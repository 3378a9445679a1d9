"""A client of the load application (tests/cluster/app) on the servers ctool installed: its
image, a System token read from the cluster's storage, records written and read back, and a
load of inserts sent like a load balancer would (a node that does not take the connection is
skipped; anything else that goes wrong after a request was sent is a failure)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from voedger.structs.wsid import app_wsid

APP = "harness/loadtest"
APP_DIR = Path(__file__).resolve().parents[1] / "cluster" / "app"
ITEM = "loadtest.LoadItem"
WORKSPACES = 6
"""The application workspaces written to (of its 30), spread over its partitions."""
BIN = Path(sys.executable).parent


def build_image(dest: Path) -> Path:
    image = dest / "loadtest.var"
    done = subprocess.run(
        [str(BIN / "vpm"), "build", "-C", str(APP_DIR), "-o", str(image)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return image


def system_token(storage_url: str) -> str:
    done = subprocess.run(
        [str(BIN / "voedger"), "token", "system", "--storage", storage_url, "--app", APP],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def workspace(i: int) -> int:
    return app_wsid(1, i % WORKSPACES)


@dataclass(frozen=True, slots=True)
class Record:
    wsid: int
    id: int
    token: str


class Client:
    """Requests to the servers at ``urls``, with a System token, over a keep-alive connection per
    server (thousands of records are read back: a new connection each, and a new TLS context
    each as ``httpx.get`` makes, cost the tier tens of seconds)."""

    def __init__(self, urls: list[str], token: str, timeout: float = 30.0) -> None:
        self.urls = urls
        self.headers = {"Authorization": f"Bearer {token}"}
        self.timeout = timeout
        self._sessions: dict[str, httpx.Client] = {}

    def use_token(self, token: str) -> None:
        """Send ``token`` from now on (a System token lives 10 minutes)."""
        self.headers = {"Authorization": f"Bearer {token}"}

    def session(self, url: str) -> httpx.Client:
        found = self._sessions.get(url)
        if found is None:
            found = self._sessions[url] = httpx.Client(timeout=self.timeout)
        return found

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def insert(self, url: str, wsid: int, token: str, client: httpx.Client) -> httpx.Response:
        body = {"cuds": [{"fields": {"sys.ID": 1, "sys.QName": ITEM, "Token": token, "Client": 0, "Seq": 0}}]}
        response: httpx.Response = client.post(
            f"{url}/api/{APP}/{wsid}/c.sys.CUD", json=body, headers=self.headers, timeout=self.timeout
        )
        return response

    def write(self, count: int) -> list[Record]:
        """``count`` records, over the workspaces and the nodes; each must be acknowledged."""
        out = []
        for i in range(count):
            wsid, token = workspace(i), uuid.uuid4().hex
            url = self.urls[i % len(self.urls)]
            r = self.insert(url, wsid, token, self.session(url))
            assert r.status_code == 200, r.text
            out.append(Record(wsid, int(r.json()["NewIDs"]["1"]), token))
        return out

    def deactivate(self, record: Record) -> None:
        r = self.session(self.urls[0]).post(
            f"{self.urls[0]}/api/{APP}/{record.wsid}/c.sys.CUD",
            json={"cuds": [{"sys.ID": record.id, "fields": {"sys.IsActive": False}}]},
            headers=self.headers,
            timeout=self.timeout,
        )
        assert r.status_code == 200, r.text

    def read(self, record: Record, url: str | None = None) -> dict[str, object] | None:
        """The record as a server reads it; None if it does not exist."""
        url = url or self.urls[0]
        r = self.session(url).get(
            f"{url}/api/v2/apps/{APP}/workspaces/{record.wsid}/docs/{ITEM}/{record.id}",
            headers=self.headers,
            timeout=self.timeout,
        )
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        data: dict[str, object] = r.json()
        return data


@dataclass(slots=True)
class LoadResult:
    acked: list[Record] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    """Sent, and then a timeout, a dropped connection or a 5xx other than the next."""
    moving: list[str] = field(default_factory=list)
    """503 with Retry-After: the partition had no owner for longer than the router holds a
    request (it was moving); the command was not processed. A failure too, counted apart."""
    skipped: int = 0
    """Attempts whose connection was refused: sent to the next node, not failures."""
    by_node: dict[str, int] = field(default_factory=dict)


class Load:
    """``clients`` threads inserting records until stopped, round the nodes like a load
    balancer: a connection refused (or not made in time) goes to the next node; a request that
    was sent and got a 5xx, a timeout or a dropped connection is a failure."""

    def __init__(self, client: Client, clients: int = 2, pace: float = 0.05) -> None:
        self.client = client
        self.clients = clients
        self.pace = pace
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(clients)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=120)
        return self.result

    def _run(self, k: int) -> None:
        urls = self.client.urls
        timeout = httpx.Timeout(self.client.timeout, connect=2.0)
        sessions = {url: httpx.Client(timeout=timeout) for url in urls}
        seq = 0
        try:
            while not self._stop.is_set():
                wsid, token = workspace(seq * self.clients + k), uuid.uuid4().hex
                for attempt in range(len(urls) * 3):
                    url = urls[(seq + k + attempt) % len(urls)]
                    try:
                        r = self.client.insert(url, wsid, token, sessions[url])
                    except (httpx.ConnectError, httpx.ConnectTimeout):
                        with self._lock:
                            self.result.skipped += 1
                        if attempt >= len(urls) - 1:
                            time.sleep(0.2)
                        continue
                    except httpx.HTTPError as exc:
                        with self._lock:
                            self.result.failures.append(
                                f"{time.strftime('%H:%M:%S')} {url} ws {wsid}: {type(exc).__name__}: {exc}"
                            )
                        break
                    with self._lock:
                        if r.status_code == 200:
                            self.result.acked.append(Record(wsid, int(r.json()["NewIDs"]["1"]), token))
                            self.result.by_node[url] = self.result.by_node.get(url, 0) + 1
                        elif r.status_code == 503 and "Retry-After" in r.headers:
                            self.result.moving.append(f"{time.strftime('%H:%M:%S')} {url} ws {wsid}: {r.text[:160]}")
                        else:
                            self.result.failures.append(f"{url} ws {wsid}: {r.status_code} {r.text[:200]}")
                    break
                else:
                    with self._lock:
                        self.result.failures.append(f"ws {wsid}: no node took the connection")
                seq += 1
                time.sleep(self.pace)
        finally:
            for s in sessions.values():
                s.close()
