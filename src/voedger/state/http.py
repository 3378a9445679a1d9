"""Outgoing HTTP: what the ``sys.Http`` storage reaches (queries, projectors and jobs).

An extension asks for one request (method, URL, body, headers, a timeout) and gets the status,
body and headers of the answer, whatever its status, as Voedger's HTTP storage gives them. A
request that gets no answer (refused, timed out, a bad address) fails the extension, or, with
``handle_errors``, comes back as an answer whose ``error`` says why. Messages name the URL
without its query string, which may carry credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from voedger.state.errors import StateError

__all__ = ["DEFAULT_TIMEOUT_MS", "MAX_ANSWER_BYTES", "HttpAnswer", "http_request"]

DEFAULT_TIMEOUT_MS = 20_000
"""Voedger's default for the HTTP storage's client."""
MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""An answer's body beyond this fails the request (an extension holds it whole in memory)."""

_METHOD = re.compile(r"[A-Z]{1,16}")


@dataclass(frozen=True)
class HttpAnswer:
    """The answer to one request: ``StatusCode``, ``Body``, ``Header`` and ``Error`` of Voedger's
    storage. ``status_code`` is 0 and ``error`` set when no answer came (``handle_errors``)."""

    status_code: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def header(self) -> str:
        """The headers as Voedger's storage gives them: ``Name: value`` lines."""
        return "\n".join(f"{name}: {value}" for name, value in self.headers.items())

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return orjson.loads(self.body)


def _where(method: str, url: str) -> str:
    parts = urlsplit(url)
    return f"{method} {parts.scheme}://{parts.netloc}{parts.path}"


def _headers(headers: Mapping[str, str] | Iterable[str] | None) -> dict[str, str]:
    """Headers as a mapping, or as Voedger's ``Name: value`` strings."""
    if headers is None:
        return {}
    if isinstance(headers, Mapping):
        pairs = list(headers.items())
    else:
        pairs = []
        for line in headers:
            name, sep, value = str(line).partition(":")
            if not sep:
                raise StateError(f"sys.Http: a header must be 'Name: value', got {line!r:.80}")
            pairs.append((name, value))
    out: dict[str, str] = {}
    for name, value in pairs:
        name, value = str(name).strip(), str(value).strip()
        if not name or any(c in name + value for c in "\r\n\0"):
            raise StateError(f"sys.Http: header {name!r:.80} is not valid")
        out[name] = value
    return out


async def http_request(
    url: str,
    *,
    method: str = "GET",
    body: bytes | str = b"",
    headers: Mapping[str, str] | Iterable[str] | None = None,
    timeout_ms: int = 0,
    handle_errors: bool = False,
) -> HttpAnswer:
    """Send one request and read its whole answer (redirects followed, as Go's client does)."""
    method = method.upper() or "GET"
    if not _METHOD.fullmatch(method):
        raise StateError(f"sys.Http: {method!r:.20} is not an HTTP method")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise StateError("sys.Http: the URL must be an absolute http:// or https:// URL")
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0:
        raise StateError("sys.Http: the timeout is a number of milliseconds, 0 for the default")
    sent = body.encode() if isinstance(body, str) else bytes(body)
    timeout = (timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
    where = _where(method, url)
    try:
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client,
            client.stream(method, url, content=sent or None, headers=_headers(headers)) as resp,
        ):
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise StateError(f"sys.Http: {where}: the answer is larger than {MAX_ANSWER_BYTES} bytes")
                chunks.append(chunk)
            return HttpAnswer(resp.status_code, b"".join(chunks), dict(resp.headers.items()))
    except httpx.HTTPError as exc:
        reason = f"sys.Http: {where}: {type(exc).__name__}" + (f": {exc}" if str(exc) else "")
        if handle_errors:
            return HttpAnswer(0, reason.encode(), {}, reason)
        raise StateError(reason) from None
