"""Running the platform: the VVM behind the ASGI router, served by voedger.router.http."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from voedger.router.app import FastPath, build_app
from voedger.router.local import LocalTransport
from voedger.vvm.server import VVM, ServerConfig

log = logging.getLogger("voedger.server")


GC_THRESHOLDS = (20_000, 50, 100)
"""Young collections every 20,000 allocations instead of 700: a command allocates hundreds of
short-lived objects, and a collection every few commands costs CPU and adds latency."""


def settle_heap() -> None:
    """After start: move what deployment built (application models, caches) out of the
    collector's sight, since it lives as long as the process, and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def make_asgi(config: ServerConfig) -> tuple[FastPath, VVM]:
    """An ASGI app whose lifespan starts the VVM and stops it (draining commands) at shutdown."""
    vvm = VVM(config)
    app = build_app(vvm, {config.cluster_id: LocalTransport(vvm)})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await vvm.start()
        settle_heap()
        log.info("serving %s", ", ".join(sorted(vvm.apps)))
        try:
            yield
        finally:
            await vvm.stop()
            log.info("stopped")

    app.app.router.lifespan_context = lifespan
    return app, vvm
