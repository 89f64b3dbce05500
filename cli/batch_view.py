"""What ``unframe batch`` shows: live progress on stderr, then a table of the jobs on stdout.

On a terminal the progress is a rich bar with jobs done, failed, running and skipped, the elapsed
time and an estimate of what is left; elsewhere (a log, CI) one plain line per finished job; with
``--json`` nothing at all, so stdout holds only the JSON.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from unframe.cli import render
from unframe.converters.batch.jobs import Job, JobResult


class BatchProgress:
    """Counts jobs as an executor reports them and shows the counts; a context manager."""

    def __init__(self, total: int, *, quiet: bool) -> None:
        self.total = total
        self.quiet = quiet
        self.live = not quiet and sys.stderr.isatty()
        self.done = self.failed = self.skipped = self.running = 0
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> BatchProgress:
        if self.live:
            self._progress = Progress(
                TextColumn("batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=render.stderr,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("batch", total=self.total, counts=self.counts())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(kind, error, trace)

    def counts(self) -> str:
        return (
            f"[green]{self.done - self.failed} ok[/green] [red]{self.failed} failed[/red] "
            f"{self.running} running {self.skipped} skipped"
        )

    def __call__(self, event: str, job: Job, result: JobResult | None) -> None:
        """The executor's ``on_progress``: ``start``, ``done`` or ``skip`` of one job."""
        if event == "start":
            self.running += 1
        elif event in ("done", "skip") and result is not None:
            self.running -= event == "done"
            self.done += 1
            self.failed += not result.ok
            self.skipped += result.skipped
            self._line(result)
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done, counts=self.counts())

    def _line(self, result: JobResult) -> None:
        if self.quiet or self.live:
            return
        job = result.job
        if result.skipped:
            what = "skipped (up to date)"
        elif result.ok:
            what = f"ok in {result.seconds:.1f} s"
        else:
            what = f"FAILED (exit {result.exit_code}): {result.error}"
        sys.stderr.write(f"[{self.done}/{self.total}] {job.src} -> {job.to}: {what}\n")
        sys.stderr.flush()


def results_table(results: Sequence[JobResult]) -> Table:
    """One row per job: source, target, output, result (with the reason of a failure), time."""
    table = Table(title="unframe batch", title_justify="left")
    for column in ("#", "src", "to", "out", "result", "s"):
        table.add_column(column, justify="right" if column in ("#", "s") else "left")
    for number, result in enumerate(results, 1):
        if result.skipped:
            outcome = "[cyan]skipped[/cyan] (up to date)"
        elif result.ok:
            outcome = "[green]ok[/green]" + (" (validated)" if result.validation else "")
        else:
            outcome = f"[red]FAILED[/red] exit {result.exit_code}: {escape(result.error or '')}"
        table.add_row(
            str(number),
            escape(result.job.src),
            result.job.to,
            escape(result.job.out),
            outcome,
            "-" if result.skipped else f"{result.seconds:.1f}",
        )
    return table


def summary_line(results: Sequence[JobResult]) -> str:
    failed = sum(not r.ok for r in results)
    skipped = sum(r.skipped for r in results)
    return (
        f"{len(results)} job(s): {len(results) - failed} ok ({skipped} skipped as up to date), "
        f"{failed} failed"
    )
