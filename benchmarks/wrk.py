"""Load from ``wrk`` (a C load generator, Debian package ``wrk``) instead of Python.

On a 2-core machine the load generator shares the cores with the server: the Python generator
in ``loadgen.py`` spends about 100 us of CPU per request, wrk about 20 us, so the server's
figures are less dragged down by the tool that measures them. A Lua script spreads requests
over the workspaces; wrk reports throughput, latency percentiles and non-2xx answers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """
local wsids = {}
local counter = 0
local path, body = "", ""
function init(args)
  path = args[1]
  body = args[2]
  for i = 3, #args do wsids[#wsids + 1] = args[i] end
end
function request()
  counter = counter + 1
  local w = wsids[(counter % #wsids) + 1]
  local b = string.gsub(body, "N_", tostring(counter))
  if METHOD == "GET" then b = nil end
  return wrk.format(METHOD, string.gsub(path, "WSID", w), HEADERS, b)
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def available() -> bool:
    return shutil.which("wrk") is not None


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if m is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run(
    port: int,
    path: str,
    body: str,
    wsids: list[int] | list[str],
    clients: int,
    seconds: int,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> WrkResult:
    """POST ``body`` to ``path`` (``WSID`` in the path is replaced by a workspace, ``N_`` in the
    body by a request counter) from ``clients`` keep-alive connections for ``seconds``. With
    ``method="GET"``, GET ``path`` with no body (a "workspace" may then carry more of the path:
    ``WSID`` is replaced by its text as given)."""
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    lua_headers = "{" + ", ".join(f'["{k}"]="{v}"' for k, v in hdrs.items()) + "}"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f'HEADERS = {lua_headers}\nMETHOD = "{method}"\n{_SCRIPT}')
        script = f.name
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{clients}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                script,
                f"http://127.0.0.1:{port}",
                "--",
                path,
                body,
                *map(str, wsids),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(script).unlink()
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", out)
    p50 = re.search(r"^\s*50%\s+(\S+)\s*$", out, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)\s*$", out, re.M)
    if total is None or p50 is None or p99 is None:
        raise RuntimeError(f"could not read wrk's report:\n{out}")
    seconds_run = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return WrkResult(
        int(total.group(1)),
        seconds_run,
        _ms(p50.group(1)),
        _ms(p99.group(1)),
        int(non_2xx.group(1)) if non_2xx else 0,
        errors.group(1) if errors else "",
    )


def run_spread(
    ports: list[int],
    path: str,
    body: str,
    wsids: list[int] | list[str],
    *,
    clients: int,
    seconds: int,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> WrkResult:
    """``run`` against several servers at once (one wrk each, ``clients`` shared out): the
    requests summed, the latency percentiles the highest of the servers' (an upper bound)."""
    from concurrent.futures import ThreadPoolExecutor

    shares = [clients // len(ports) + (1 if i < clients % len(ports) else 0) for i in range(len(ports))]

    def one(port: int, share: int) -> WrkResult:
        return run(port, path, body, wsids, share, seconds, headers, method)

    with ThreadPoolExecutor(len(ports)) as pool:
        results = list(pool.map(one, ports, shares))
    return WrkResult(
        sum(r.requests for r in results),
        max(r.seconds for r in results),
        max(r.p50_ms for r in results),
        max(r.p99_ms for r in results),
        sum(r.non_2xx for r in results),
        "; ".join(r.errors for r in results if r.errors),
    )
