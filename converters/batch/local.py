"""The local executor: a pool of worker processes on this machine that survives its jobs.

Each worker is a fresh interpreter (``python -m unframe.converters.batch.local_worker``) that runs
jobs one at a time, received over its own socket, until told to stop. Workers are reused across
jobs, so a framework (torch, onnxscript) is imported once per worker, not once per job. A fresh
interpreter rather than ``multiprocessing``'s spawn or forkserver: those re-run the caller's
script in every worker unless it is guarded by ``if __name__ == "__main__"``.

The pool does not trust its workers: the parent waits on every busy worker's socket, which reads
end-of-file the moment the worker dies, so a worker that dies (a segfault in a framework's native
code, the kernel's out-of-memory killer) fails only its own job, with the signal as the reason,
and a job that runs past the timeout has its worker killed. A dead worker is replaced by a fresh
one when a job needs it, and the staging folder it left beside its output is swept at once
(nothing partial is ever at an output path: ``convert`` publishes outputs atomically).

Exit codes of such failures: 6 for a job past its timeout or a worker killed with SIGKILL by
someone else (the usual sign of the out-of-memory killer), 5 for any other death (a crash is a
bug in a framework or in unframe, not the model's fault).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from unframe.converters.batch.jobs import (
    TEST_HOOKS,
    Job,
    JobResult,
    ProgressCallback,
    hooks_from_environment,
)
from unframe.converters.worker_threads import share_cores
from unframe.shared_ir.errors import ExitCode
from unframe.shared_ir.output import output_path, sweep_stale_staging

_STOP_GRACE_S = 2.0
_WORKER_MODULE = "unframe.converters.batch.local_worker"


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    connection: Connection
    job_index: int | None = None
    started: float = 0.0

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()
        with contextlib.suppress(OSError):
            self.connection.close()


class LocalExecutor:
    """Runs jobs in a pool of worker processes on this machine (the ``Executor`` protocol)."""

    def run(
        self,
        jobs: Sequence[Job],
        *,
        workers: int,
        timeout: float | None,
        on_progress: ProgressCallback | None = None,
    ) -> list[JobResult]:
        """Every job's result, in the order of ``jobs``; Ctrl-C kills the workers and re-raises."""
        pool = _Pool(workers, timeout, on_progress)
        return pool.run(list(jobs))


class _Pool:
    def __init__(self, size: int, timeout: float | None, on_progress: ProgressCallback | None):
        self.size = max(1, int(size))
        self.timeout = timeout
        self.on_progress = on_progress
        self.hooks = hooks_from_environment()
        self.workers: list[_Worker] = []
        self.results: dict[int, JobResult] = {}
        self.jobs: list[Job] = []

    def run(self, jobs: list[Job]) -> list[JobResult]:
        self.jobs = jobs
        pending = deque(range(len(jobs)))
        try:
            while pending or self._busy():
                self._start_jobs(jobs, pending)
                self._collect(jobs, self._wait_time())
                self._enforce_timeout(jobs)
        finally:
            self._shutdown()
        return [self.results[index] for index in range(len(jobs))]

    # -- scheduling ----------------------------------------------------------------------------

    def _busy(self) -> list[_Worker]:
        return [worker for worker in self.workers if worker.job_index is not None]

    def _start_jobs(self, jobs: list[Job], pending: deque[int]) -> None:
        while pending:
            idle = [worker for worker in self.workers if worker.job_index is None]
            if idle:
                worker = idle[0]
            elif len(self.workers) < self.size:
                worker = self._spawn()
            else:
                return
            index = pending.popleft()
            worker.job_index = index
            worker.started = time.monotonic()
            self._progress("start", jobs[index], None)
            try:
                worker.connection.send(jobs[index])
            except OSError:  # died while idle: its job fails in _collect, as any death does
                pass

    def _spawn(self) -> _Worker:
        parent_end, child_end = socket.socketpair()
        # The test hooks are read when the pool starts, then handed to each worker it starts.
        environment = {k: v for k, v in os.environ.items() if k not in TEST_HOOKS}
        environment.update(self.hooks)
        share_cores(environment, self.size)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", _WORKER_MODULE, str(child_end.fileno()), str(os.getpid())],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                env=environment,
            )
        finally:
            child_end.close()
        worker = _Worker(process, Connection(parent_end.detach()))
        self.workers.append(worker)
        return worker

    def _wait_time(self) -> float | None:
        if self.timeout is None:
            return None
        now = time.monotonic()
        deadlines = [w.started + self.timeout - now for w in self._busy()]
        return max(0.0, min(deadlines)) if deadlines else None

    # -- results and deaths --------------------------------------------------------------------

    def _collect(self, jobs: list[Job], wait_s: float | None) -> None:
        busy = self._busy()
        if not busy:
            return
        # A worker's socket is readable when it sends a result and at end-of-file when it dies.
        ready = wait([worker.connection for worker in busy], timeout=wait_s)
        for worker in busy:
            if worker.connection not in ready:
                continue
            result = self._receive(worker)
            if result is None:
                self._died(jobs, worker)
            else:
                self._finish(jobs, worker, result)

    def _receive(self, worker: _Worker) -> JobResult | None:
        try:
            message = worker.connection.recv()
        except (EOFError, OSError):
            return None
        return message if isinstance(message, JobResult) else None

    def _finish(self, jobs: list[Job], worker: _Worker, result: JobResult) -> None:
        index = worker.job_index
        assert index is not None
        worker.job_index = None
        # The worker made a result from a copy of the job: hand back the caller's own object.
        result.job = jobs[index]
        self.results[index] = result
        self._progress("done", jobs[index], result)

    def _died(self, jobs: list[Job], worker: _Worker) -> None:
        try:
            code: int | None = worker.process.wait(_STOP_GRACE_S)
        except subprocess.TimeoutExpired:  # closed its socket but lives on: not a worker anymore
            code = None
        worker.kill()
        self.workers.remove(worker)
        index = worker.job_index
        assert index is not None
        reason, exit_code = _death_reason(code)
        self._fail(jobs[index], index, worker, reason, exit_code)

    def _enforce_timeout(self, jobs: list[Job]) -> None:
        if self.timeout is None:
            return
        now = time.monotonic()
        for worker in self._busy():
            if now - worker.started < self.timeout:
                continue
            index = worker.job_index
            assert index is not None
            worker.kill()
            self.workers.remove(worker)
            reason = (
                f"timed out after {self.timeout:g} s; its worker was killed "
                "(raise --timeout if the model is just big)"
            )
            self._fail(jobs[index], index, worker, reason, ExitCode.RESOURCES)

    def _fail(self, job: Job, index: int, worker: _Worker, reason: str, code: int) -> None:
        seconds = time.monotonic() - worker.started
        _sweep_staging(job)
        result = JobResult(
            job=job,
            ok=False,
            seconds=seconds,
            error=f"{job.src}: {reason}",
            exit_code=int(code),
            details={"worker": {"pid": worker.process.pid}},
        )
        self.results[index] = result
        self._progress("done", job, result)

    def _progress(self, event: str, job: Job, result: JobResult | None) -> None:
        if self.on_progress is not None:
            self.on_progress(event, job, result)

    def _shutdown(self) -> None:
        busy = self._busy()
        for worker in self.workers:
            if worker.job_index is None:
                with contextlib.suppress(OSError):
                    worker.connection.send(None)
        deadline = time.monotonic() + _STOP_GRACE_S
        for worker in self.workers:
            if worker.job_index is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.process.wait(max(0.0, deadline - time.monotonic()))
            worker.kill()  # an interrupted batch: running jobs are killed, never waited for
        for worker in busy:
            if worker.job_index is not None:
                _sweep_staging(self.jobs[worker.job_index])
        self.workers.clear()


def _death_reason(exit_code: int | None) -> tuple[str, ExitCode]:
    if exit_code is not None and exit_code < 0:
        number = -exit_code
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        description = signal.strsignal(number) or name
        if number == signal.SIGKILL:
            return (
                f"its worker was killed by {name} (the out-of-memory killer sends it: "
                "the model may need more memory than this machine has)",
                ExitCode.RESOURCES,
            )
        return (
            f"its worker crashed with {name} ({description.lower()}), a bug in a framework's "
            "native code or in unframe, not in your model; the other jobs went on",
            ExitCode.INTERNAL,
        )
    return (f"its worker exited unexpectedly (exit status {exit_code})", ExitCode.INTERNAL)


def _sweep_staging(job: Job) -> None:
    """Removes the staging folder a killed worker left beside ``job.out`` (its pid is dead)."""
    with contextlib.suppress(Exception):
        sweep_stale_staging(output_path(job.out).parent)


__all__ = ["LocalExecutor", "default_workers"]
