"""What a ctool command shows and keeps: a progress display (rich) and a log file per command."""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from voedger.ctool.engine import TaskEvent


class CommandLog:
    """``log/<YYYYMMDD-HHMMSS>-<command>/<command>.log`` beside cluster.json, as Voedger's ctool."""

    def __init__(self, folder: Path, command: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.dir = folder / "log" / f"{stamp}-{command}"
        suffix = 1
        while self.dir.exists():
            suffix += 1
            self.dir = folder / "log" / f"{stamp}-{command}-{suffix}"
        self.dir.mkdir(parents=True)
        self.path = self.dir / f"{command}.log"
        self._out = self.path.open("a", encoding="utf-8")

    def write(self, line: str) -> None:
        self._out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
        self._out.flush()

    def close(self) -> None:
        self._out.close()


class Display:
    """The progress of a command's steps per node, and the lines every command prints."""

    def __init__(self, log: CommandLog, verbose: bool = False, console: Console | None = None) -> None:
        self.log = log
        self.verbose = verbose
        self.console = console or Console(stderr=True, highlight=False)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._labels: dict[str, str] = {}
        self._started: dict[tuple[str, str], float] = {}

    def __enter__(self) -> Display:
        self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()

    def add_node(self, node: str, label: str, steps: int, done: int) -> None:
        self._labels[node] = label
        self._tasks[node] = self._progress.add_task(label, total=steps, completed=done)

    def say(self, message: str) -> None:
        self.log.write(message)
        self._progress.console.print(message)

    def step_started(self, node: str, step: str) -> None:
        self._started[(node, step)] = time.monotonic()
        self.log.write(f"{node}: step {step} started")
        if node in self._tasks:
            self._progress.update(self._tasks[node], description=f"{self._labels[node]}  {step}")

    def step_skipped(self, node: str, step: str) -> None:
        self.log.write(f"{node}: step {step} already done, skipped")
        if self.verbose:
            self._progress.console.print(f"{node}: {step} already done")

    def step_done(self, node: str, step: str) -> None:
        took = time.monotonic() - self._started.get((node, step), time.monotonic())
        self.log.write(f"{node}: step {step} done in {took:.1f} s")
        self._progress.console.print(f"[green]✓[/green] {node}: {step} ({took:.1f} s)")
        if node in self._tasks:
            self._progress.advance(self._tasks[node])

    def step_failed(self, node: str, step: str, why: str) -> None:
        self.log.write(f"{node}: step {step} FAILED: {why}")
        self._progress.console.print(f"[red]✗[/red] {node}: {step} failed")

    def event(self, event: TaskEvent) -> None:
        line = f"{event.node}: [{event.step}] {event.task}: {event.kind}"
        if event.message:
            line += f": {event.message}"
        self.log.write(line)
        if event.kind == "start" and event.node in self._tasks:
            self._progress.update(
                self._tasks[event.node], description=f"{self._labels[event.node]}  {event.step}: {event.task}"
            )
        if self.verbose and event.kind != "start":
            self._progress.console.print(line, markup=False)
