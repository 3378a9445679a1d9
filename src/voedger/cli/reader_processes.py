"""The reader processes of ``voedger server --processes N``: started by the writer (the process
that holds the data directory), one per extra core, ended with it.

Each reader runs the same command line as the writer with ``--reader-of`` (the writer's internal
URL, where it forwards what it does not serve) and an internal port of its own. The writer starts
them once it serves (their storage files and secrets exist by then), starts one again if it dies,
and at shutdown sends each SIGTERM and waits for it (SIGKILL after ``STOP_SECONDS``). A reader
whose parent is gone stops by itself (``watch_parent``), so a writer killed outright leaves no
reader behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Final

log = logging.getLogger("voedger.server")

STOP_SECONDS: Final = 20.0
"""How long a reader may take to finish its requests after SIGTERM."""
RESTART_SECONDS: Final = 1.0
"""Pause before a reader that died is started again."""
PARENT_POLL: Final = 0.5


def reader_command(argv: Sequence[str], writer_url: str, internal_port: int) -> list[str]:
    """The command line of a reader: the writer's own (``argv``, from the ``server`` subcommand
    on) with the options that make it a reader; given last, they win over the same options in
    ``argv``."""
    return [
        sys.executable,
        "-m",
        "voedger.cli.voedger",
        *argv,
        "--processes",
        "1",
        "--reader-of",
        writer_url,
        "--internal-port",
        str(internal_port),
    ]


class ReaderProcesses:
    """The readers of one writer: ``start`` once the writer serves, ``stop`` before it stops."""

    def __init__(self, commands: Sequence[list[str]]) -> None:
        self.commands = list(commands)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * len(self.commands)
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p is not None]

    def _spawn(self, i: int) -> None:
        # stdout and stderr are the writer's: the readers' log lines go where its lines go.
        self.procs[i] = subprocess.Popen(self.commands[i], stdin=subprocess.DEVNULL)
        log.info("started reader process %d (pid %d)", i + 1, self.procs[i].pid)  # type: ignore[union-attr]

    async def start(self) -> None:
        for i in range(len(self.commands)):
            self._spawn(i)
        self._watch = asyncio.create_task(self._keep_running(), name="reader-processes")

    async def _keep_running(self) -> None:
        while not self._stopping:
            await asyncio.sleep(RESTART_SECONDS)
            for i, proc in enumerate(self.procs):
                if self._stopping or proc is None or proc.poll() is None:
                    continue
                log.warning(
                    "reader process %d (pid %d) exited with %s; starting it again", i + 1, proc.pid, proc.returncode
                )
                self._spawn(i)

    async def stop(self) -> None:
        """SIGTERM to every reader, then wait for each (SIGKILL after ``STOP_SECONDS``)."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        running = [p for p in self.procs if p is not None and p.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), STOP_SECONDS)
            except TimeoutError:
                log.warning("reader process pid %d did not stop in %.0f s: killed", proc.pid, STOP_SECONDS)
                proc.kill()
                await asyncio.to_thread(proc.wait)
        log.info("reader processes stopped")


async def watch_parent() -> None:
    """In a reader: stop (as on SIGTERM) once the writer that started it is gone."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_POLL)
    log.warning("the writer process (pid %d) is gone: stopping", parent)
    os.kill(os.getpid(), signal.SIGTERM)
