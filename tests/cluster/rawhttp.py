"""A lean HTTP/1.1 keep-alive client for the load generator: one connection, one request at a time.

httpx spends more CPU per request than the server's own command path on this 2-core machine
(where the load shares the cores with three servers and three Cassandra nodes), which caps what
a benchmark can send. This client writes a prepared request on a raw asyncio stream and reads
the status line, the headers it needs and the body. Its failures say what the load must know:
:class:`NotConnected` when no connection could be made (nothing was sent), anything else
(a timeout, a reset, a closed connection) when the request may have reached the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit


class NotConnected(Exception):
    """No connection to the server: the request was not sent."""


class Broken(Exception):
    """The connection broke after the request may have been sent (a reset, an early close)."""


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    retry_after: str | None
    body: bytes


class RawConnection:
    """A keep-alive connection to the server at ``url`` (``http://host:port``), opened on first use
    and again after any failure."""

    def __init__(self, url: str, connect_timeout: float, request_timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"RawConnection takes http://host:port, not {url!r}")
        self.host, self.port = parts.hostname, parts.port
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> RawResponse:
        """POST ``body`` (JSON) to ``path``; raises NotConnected, TimeoutError or Broken."""
        if self._reader is not None and self._reader.at_eof():
            await self.aclose()  # the server closed it while idle: nothing was sent on it
        if self._reader is None:
            try:
                self._reader, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.connect_timeout
                )
            except (OSError, TimeoutError) as exc:
                raise NotConnected(str(exc)) from None
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        try:
            writer.write(head.encode() + body)
            async with asyncio.timeout(self.request_timeout):
                return await _read_response(reader)
        except TimeoutError:
            await self.aclose()
            raise
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            await self.aclose()
            raise Broken(f"{type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> RawResponse:
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split()[1])
    length = 0
    retry_after: str | None = None
    while True:
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"retry-after":
            retry_after = value.strip().decode("latin-1")
        elif name == b"transfer-encoding":
            raise ValueError("a chunked answer (this client reads Content-Length bodies only)")
    return RawResponse(status, retry_after, await reader.readexactly(length))
