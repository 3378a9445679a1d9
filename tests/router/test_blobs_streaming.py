"""A 20 MiB BLOB through the real HTTP server and router into SQLite and back: it is streamed
both ways, so the process never holds it whole (measured with tracemalloc)."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from voedger.blobs import DEFAULT_MAX_SIZE
from voedger.router.app import MAX_FRAME, build_app
from voedger.router.blobs import is_upload
from voedger.router.http import HttpServer
from voedger.router.local import LocalTransport
from voedger.structs.wsid import app_wsid
from voedger.vvm.server import VVM, ServerConfig

SHOP_DIR = Path(__file__).parent / "shop"
PIECE = 64 * 1024


def piece(i: int) -> bytes:
    return hashlib.sha256(b"%d" % i).digest() * (PIECE // 32)


async def test_twenty_mib_blob_is_streamed_in_and_out(tmp_path: Path) -> None:
    vvm = VVM(ServerConfig(storage_url=f"sqlite://{tmp_path}", apps=[("test/shop", SHOP_DIR)], insecure_dev=True))
    await vvm.start()
    server = HttpServer(build_app(vvm, {1: LocalTransport(vvm)}), max_body=MAX_FRAME, stream=is_upload)
    [(host, port)] = await server.start("127.0.0.1", 0)
    pieces = DEFAULT_MAX_SIZE // PIECE
    sent = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for i in range(pieces):
            data = piece(i)
            sent.update(data)
            yield data

    try:
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=60) as client:
            tracemalloc.start()
            try:
                url = f"/blob/test/shop/{app_wsid(1, 0)}?name=big.bin&mimeType=application/x-binary"
                r = await client.post(url, content=body())
                assert r.status_code == 200, r.text
                got = hashlib.sha256()
                size = 0
                async with client.stream("GET", f"/blob/test/shop/{app_wsid(1, 0)}/{r.text}") as download:
                    assert download.status_code == 200
                    assert download.headers["content-length"] == str(DEFAULT_MAX_SIZE)
                    async for chunk in download.aiter_raw():
                        got.update(chunk)
                        size += len(chunk)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert size == DEFAULT_MAX_SIZE and got.digest() == sent.digest()
            assert peak < DEFAULT_MAX_SIZE // 4, f"peak {peak} bytes traced"
            # One byte more than BLOBMaxSize, without a content-length: 413 once it is seen.
            r = await client.post(url, content=body_plus_one(pieces))
            assert r.status_code == 413, r.text
    finally:
        await server.stop(1.0)
        await vvm.stop()


async def body_plus_one(pieces: int) -> AsyncIterator[bytes]:
    for i in range(pieces):
        yield piece(i)
    yield b"!"
