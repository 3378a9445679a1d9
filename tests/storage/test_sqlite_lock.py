"""An embedded data directory belongs to one server process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import free_port
from voedger.storage import StorageLockedError
from voedger.storage.sqlite import SQLiteStorageFactory


async def test_a_second_server_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    first = SQLiteStorageFactory(tmp_path)
    await first.take()
    second = SQLiteStorageFactory(tmp_path)
    with pytest.raises(StorageLockedError) as err:
        await second.take()
    assert str(tmp_path) in str(err.value) and f"pid {os.getpid()}" in str(err.value)
    await first.close()
    third = SQLiteStorageFactory(tmp_path)
    await third.take()
    await third.close()


def test_a_second_server_on_one_data_dir_exits_at_once(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "voedger.cli.voedger", "server", "--data-dir", str(tmp_path)]
    first = subprocess.Popen([*cmd, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/check", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert first.poll() is None, "the first server died"
            assert time.monotonic() < deadline, "the first server did not start"
            time.sleep(0.2)
        second = subprocess.run([*cmd, "--port", str(free_port())], capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert str(tmp_path) in second.stderr and f"pid {first.pid}" in second.stderr, second.stderr
        # The first one is untouched and still serves.
        assert httpx.get(f"http://127.0.0.1:{port}/api/check", timeout=5).status_code == 200
    finally:
        first.terminate()
        first.wait(timeout=30)


async def test_a_reader_that_is_not_a_server_does_not_take_the_directory(tmp_path: Path) -> None:
    server = SQLiteStorageFactory(tmp_path)
    await server.take()
    reader = SQLiteStorageFactory(tmp_path)
    await reader.open()
    await reader.close()
    await server.close()
