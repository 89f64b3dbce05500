"""Runs a batch's jobs as Ray tasks: on a local Ray instance, or on a cluster joined by address.

Each job is one task with ``max_retries=0`` in a Ray worker process; Ray reuses a worker across
tasks, so a framework is imported once per worker. The isolation is the local pool's: a worker that
dies (a segfault, the OOM killer) fails its own job, a job past its timeout has its worker killed
(``ray.cancel(force=True)``) and Ray starts another. At most ``workers`` tasks are in flight, so a
task starts when it is submitted and its timeout counts from then. The conversion is
``jobs.run_job``, the function the local pool's workers call, and a job that never returns ends
with the local pool's exit codes (5 for a dead worker, 6 past the timeout or out of memory), so
both engines end a job the same way.

Ray is an optional extra (``pip install 'unframe[ray]'``), imported only when this executor runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from unframe.converters.batch.jobs import (
    Job,
    JobResult,
    ProgressCallback,
    hooks_from_environment,
    run_job,
)
from unframe.shared_ir.errors import (
    BadInputError,
    ExitCode,
    FrameworkNotInstalledError,
    unexpected_error,
)
from unframe.shared_ir.output import output_path, sweep_stale_staging

_logger = logging.getLogger("unframe.batch.ray")

#: The remote function, made once per process on first use (``ray`` is imported only then).
_REMOTE: Any = None
#: How long joining a cluster may take to open a connection to its head before we give up.
_CONNECT_TIMEOUT_S = 10.0
_ADDRESS_HINT = (
    "give --address as HOST:PORT of the head node (port 6379 unless `ray start --head --port` said"
    " otherwise), ray://HOST:PORT for Ray Client, or leave it out to start a local Ray"
)


def _import_ray() -> Any:
    # Ray reports usage statistics unless told not to; a converter has no business doing that.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as error:
        raise FrameworkNotInstalledError(
            "--executor ray needs Ray, which is not installed",
            hint="pip install 'unframe[ray]'",
        ) from error
    return ray


def _run_in_ray_worker(job: Job, test_hooks: dict[str, str]) -> JobResult:
    # A worker on another machine does not see the driver's environment: hooks travel with jobs.
    return run_job(job, test_hooks=test_hooks)


def _ended_early(job: Job, reason: str, exit_code: int, seconds: float) -> JobResult:
    """A job whose task never returned; the staging folder its worker left is swept."""
    # On a cluster the folder may be on another machine's disk: then the next run there sweeps it.
    with contextlib.suppress(Exception):
        sweep_stale_staging(output_path(job.out).parent)
    return JobResult(
        job=job, ok=False, seconds=seconds, error=f"{job.src}: {reason}", exit_code=int(exit_code)
    )


def _remote(ray: Any) -> Any:
    global _REMOTE
    if _REMOTE is None:
        # No retries: a job that killed its worker would kill the next one the same way.
        _REMOTE = ray.remote(max_retries=0, num_cpus=1)(_run_in_ray_worker)
    return _REMOTE


@contextlib.contextmanager
def _raylet_messages_logged(ray: Any) -> Iterator[None]:
    """Sends the raylet's "a worker died" paragraphs to the log instead of stdout.

    Ray's driver prints them on stdout from a background thread whatever ``log_to_driver`` says,
    which would break ``--json``; the job's result already says that its worker died. The thread
    looks the printer up by name on each message, so swapping it (and back) is enough; a Ray that
    moved it keeps printing, and nothing else changes.
    """
    module = getattr(getattr(ray, "_private", None), "worker", None)
    printer: Callable[..., None] | None = getattr(module, "print_to_stdstream", None)
    if module is None or printer is None:
        yield
        return

    def print_or_log(data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        if data.get("pid") == "raylet":
            for line in data.get("lines", []):
                _logger.debug("raylet: %s", line)
            return
        assert printer is not None
        printer(data, *args, **kwargs)

    module.print_to_stdstream = print_or_log
    try:
        yield
    finally:
        module.print_to_stdstream = printer


def _failed_result(ray: Any, job: Job, error: BaseException, seconds: float) -> JobResult:
    """The result of a task that ended in a Ray error rather than a ``JobResult``."""
    exceptions = ray.exceptions
    if isinstance(error, exceptions.OutOfMemoryError):
        reason = (
            "its worker was killed by Ray's memory monitor (the model may need more memory than"
            " the machine has)"
        )
        return _ended_early(job, reason, ExitCode.RESOURCES, seconds)
    if isinstance(error, exceptions.WorkerCrashedError):
        reason = (
            "its worker crashed (a segfault in a framework's native code or in unframe, or killed"
            " by the system), not a fault of your model; the other jobs went on"
        )
        return _ended_early(job, reason, ExitCode.INTERNAL, seconds)
    if isinstance(error, exceptions.NodeDiedError):
        return _ended_early(job, "its Ray node left the cluster", ExitCode.INTERNAL, seconds)
    if isinstance(error, exceptions.RayTaskError):
        # run_job returns every failure as a result, so this is a bug of ours: one line, exit 5.
        cause = error.cause if isinstance(error.cause, BaseException) else error
        classified = unexpected_error(cause, "the Ray worker", path=job.src)
        return JobResult(
            job=job,
            ok=False,
            seconds=seconds,
            error=str(classified),
            exit_code=int(classified.exit_code),
        )
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    reason = f"its Ray task failed: {type(error).__name__} {detail}".strip()
    return _ended_early(job, reason, ExitCode.INTERNAL, seconds)


def _check_reachable(address: str) -> None:
    """Fails at once, with one line, where nothing listens at ``address``.

    ``ray.init`` would retry for minutes, printing its own log lines, then exit the process.
    """
    if address in ("auto", "local"):
        return  # Ray finds the address itself (a cluster started on this machine)
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise BadInputError(f"not a Ray cluster address: {address!r}", hint=_ADDRESS_HINT)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), _CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        raise BadInputError(
            f"cannot reach the Ray cluster at {address} ({error.strerror or error})",
            hint=_ADDRESS_HINT,
        ) from None


class RayExecutor:
    """The ``Executor`` on Ray: ``address=None`` starts a local instance, else joins a cluster.

    A Ray already initialised in this process (``ray.init`` by the caller) is used as it is and
    left running; one this executor started is shut down when the batch ends.
    """

    def __init__(self, address: str | None = None) -> None:
        self.address = address

    def _init(self, ray: Any, workers: int) -> bool:
        """Starts or joins Ray unless it is up; whether this call started it (and must stop it)."""
        if ray.is_initialized():
            return False
        quiet: dict[str, Any] = {
            "log_to_driver": False,
            "logging_level": logging.ERROR,
            "configure_logging": True,
        }
        if self.address is None:
            ray.init(num_cpus=workers, include_dashboard=False, **quiet)
            return True
        _check_reachable(self.address)
        try:
            ray.init(address=self.address, **quiet)
        except (Exception, SystemExit) as error:  # Ray exits the process when it gives up
            raise BadInputError(
                f"cannot join the Ray cluster at {self.address} ({error})", hint=_ADDRESS_HINT
            ) from None
        return True

    def run(
        self,
        jobs: Sequence[Job],
        *,
        workers: int,
        timeout: float | None,
        on_progress: ProgressCallback | None = None,
    ) -> list[JobResult]:
        """Every job's result, in the order of ``jobs``."""
        if not jobs:
            return []
        ray = _import_ray()
        workers = max(1, workers)
        # Until Ray is shut down: a worker's death may be announced after its job's result.
        with _raylet_messages_logged(ray):
            started_ray = self._init(ray, workers)
            try:
                return self._run(ray, jobs, workers, timeout, on_progress)
            finally:
                if started_ray:
                    ray.shutdown()

    def _run(
        self,
        ray: Any,
        jobs: Sequence[Job],
        workers: int,
        timeout: float | None,
        on_progress: ProgressCallback | None,
    ) -> list[JobResult]:
        remote = _remote(ray)
        hooks = hooks_from_environment()
        results: list[JobResult | None] = [None] * len(jobs)
        # ref -> (index of its job, when it was submitted)
        running: dict[Any, tuple[int, float]] = {}
        next_index = 0

        def finish(index: int, result: JobResult) -> None:
            results[index] = result
            if on_progress is not None:
                on_progress("done", jobs[index], result)

        try:
            while next_index < len(jobs) or running:
                while next_index < len(jobs) and len(running) < workers:
                    job = jobs[next_index]
                    if on_progress is not None:
                        on_progress("start", job, None)
                    running[remote.remote(job, hooks)] = (next_index, time.perf_counter())
                    next_index += 1
                wait_for: float | None = None
                if timeout is not None:
                    oldest = min(submitted for _, submitted in running.values())
                    wait_for = max(0.0, oldest + timeout - time.perf_counter())
                done, _ = ray.wait(list(running), num_returns=1, timeout=wait_for)
                now = time.perf_counter()
                for ref in done:
                    index, submitted = running.pop(ref)
                    try:
                        result = ray.get(ref)
                        result.job = jobs[index]  # the caller's own object, not Ray's copy
                    except ray.exceptions.RayError as error:
                        result = _failed_result(ray, jobs[index], error, now - submitted)
                    finish(index, result)
                if timeout is None:
                    continue
                for ref, (index, submitted) in list(running.items()):
                    if now - submitted >= timeout:
                        ray.cancel(ref, force=True)
                        del running[ref]
                        reason = (
                            f"timed out after {timeout:g} s; its worker was killed"
                            " (raise --timeout if the model is just big)"
                        )
                        finish(
                            index,
                            _ended_early(jobs[index], reason, ExitCode.RESOURCES, now - submitted),
                        )
        except BaseException:
            # Ctrl-C (or a failing progress callback): no worker goes on writing after we stop.
            for ref in running:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        return [result for result in results if result is not None]
