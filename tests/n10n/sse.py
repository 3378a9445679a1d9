"""A reader of server-sent events for the tests and the benchmark."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx


class EventReader:
    """The events of an open streamed response, one at a time: (event, data)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks: AsyncIterator[bytes] = response.aiter_raw()
        self._buf = b""

    async def next(self, timeout: float = 5.0) -> tuple[str, str]:
        """The next event; TimeoutError if none comes in time, StopAsyncIteration at the end."""
        while b"\n\n" not in self._buf:
            self._buf += await asyncio.wait_for(anext(self._chunks), timeout)
        block, self._buf = self._buf.split(b"\n\n", 1)
        fields = dict(line.split(": ", 1) for line in block.decode().split("\n"))
        return fields["event"], fields["data"]

    async def ended(self, timeout: float = 5.0) -> bool:
        """True when the stream ends before another event comes."""
        try:
            await self.next(timeout)
        except StopAsyncIteration:
            return True
        return False
