"""Route handlers as plain Python functions, whatever built them.

Starlette treats a route's endpoint as a request handler only when it is a Python function or
method; any other callable, a handler compiled by the native build (``make native``) included,
it takes for an ASGI application and calls with the wrong arguments. The native build never
compiles this module, so what ``endpoint`` returns is always a Python function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Awaitable[Response]]


def endpoint(handler: Handler) -> Handler:
    async def handle(request: Request) -> Response:
        return await handler(request)

    return handle
