"""Batch conversion: many jobs from a manifest, run in isolated workers, resumable."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

from unframe.converters.batch.jobs import Executor, Job, JobResult, ProgressCallback
from unframe.shared_ir.errors import BadInputError, FrameworkNotInstalledError

__all__ = ["Executor", "Job", "JobResult", "ProgressCallback", "batch", "make_executor"]

EXECUTORS = ("local", "ray")


def make_executor(name: str, *, address: str | None = None) -> Executor:
    """The executor called ``name``: ``local`` (a process pool here) or ``ray``.

    ``address`` is the Ray cluster to join (``ray`` only); without it Ray starts a local instance.
    Raises ``FrameworkNotInstalledError`` (exit 4) where the Ray executor or Ray is missing.
    """
    if name == "local":
        if address is not None:
            raise BadInputError("--address is for --executor ray only")
        from unframe.converters.batch.local import LocalExecutor

        return LocalExecutor()
    if name == "ray":
        try:
            from unframe.converters.batch.ray_executor import RayExecutor
        except ImportError as error:
            raise FrameworkNotInstalledError(
                f"the Ray executor cannot be loaded ({error})",
                framework="ray",
                hint="pip install 'unframe[ray]'",
            ) from None
        executor: Executor = RayExecutor(address=address) if address else RayExecutor()
        return executor
    raise BadInputError(f"unknown executor {name!r}", hint=f"one of {', '.join(EXECUTORS)}")


def batch(
    todo: Sequence[Job] | str | Path,
    /,
    *,
    jobs: int | None = None,
    executor: str | Executor = "local",
    timeout: float | None = None,
    resume: bool = False,
    on_progress: ProgressCallback | None = None,
    address: str | None = None,
) -> list[JobResult]:
    """Runs every job (or every job of a manifest file) in isolated workers; one result per job.

    ``jobs`` workers run at once (default: one per CPU). A job that fails, crashes its worker or
    runs past ``timeout`` seconds fails alone. With ``resume``, a job whose output an earlier run
    wrote from the same source and options is skipped (``JobResult.skipped``) and one whose
    output an earlier run wrote but is stale is redone, replacing that output. Every finished
    job is recorded in a state file beside its output (see ``state.py``), with or without
    ``resume``, so a later ``resume`` knows it. ``on_progress`` is called with
    ``("start" | "done" | "skip", job, result or None)``; ``address`` is Ray's cluster address.
    Results are in the order of the jobs; Ctrl-C stops the workers and raises KeyboardInterrupt.
    """
    from unframe.converters.batch.local import default_workers
    from unframe.converters.batch.manifest import load_manifest
    from unframe.converters.batch.state import BatchState

    job_list = load_manifest(todo) if isinstance(todo, str | Path) else list(todo)
    workers = default_workers() if jobs is None else jobs
    if workers < 1:
        raise BadInputError(f"jobs must be at least 1, not {workers}")
    if timeout is not None and timeout <= 0:
        raise BadInputError(f"timeout must be a positive number of seconds, not {timeout}")
    engine = make_executor(executor, address=address) if isinstance(executor, str) else executor

    state = BatchState()
    results: dict[int, JobResult] = {}
    to_run: list[Job] = []
    run_positions: list[int] = []
    for position, job in enumerate(job_list):
        if resume and state.is_current(job):
            results[position] = state.skipped_result(job)
            if on_progress is not None:
                on_progress("skip", job, results[position])
            continue
        if resume and state.entry(job) is not None and not job.force:
            # An output this batch wrote before, now stale: replaced like --force would.
            job = Job(**{**job.__dict__, "force": True})
        to_run.append(job)
        run_positions.append(position)

    lock = threading.Lock()  # an executor may report from its own threads (Ray)

    def record(event: str, job: Job, result: JobResult | None) -> None:
        if event == "done" and result is not None:
            with lock:
                try:
                    state.record(result)
                except OSError as error:  # the job is done; only a later resume will redo it
                    warnings.warn(f"cannot record {job.out} for --resume: {error}", stacklevel=2)
        if on_progress is not None:
            on_progress(event, job, result)

    ran = engine.run(to_run, workers=workers, timeout=timeout, on_progress=record) if to_run else []
    for position, result in zip(run_positions, ran, strict=True):
        result.job = job_list[position]  # the caller's job, not the copy resume made with force
        results[position] = result
    return [results[position] for position in range(len(job_list))]
