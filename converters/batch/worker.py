"""What runs inside a batch worker: one job's conversion, and the results of jobs that never ended.

Every executor (the local process pool, Ray) calls ``run_job`` in its worker and builds a crashed or
timed-out job's result with ``crashed_result``/``timed_out_result``, so the same job ends with the
same ``ok``, exit code and error line whichever engine ran it. A worker is reused across jobs, so a
framework (torch, onnxruntime) is imported by its first job and stays imported for the rest.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from unframe.converters.batch.jobs import Job, JobResult
from unframe.shared_ir.errors import ExitCode, unexpected_error

#: Test hooks: a job whose ``src`` contains the variable's value kills its own worker with SIGSEGV
#: (as a crashing native library would) or sleeps past any timeout. Read in the worker, per job.
CRASH_HOOK = "UNFRAME_BATCH_TEST_CRASH"
HANG_HOOK = "UNFRAME_BATCH_TEST_HANG"

#: A worker that died (a segfault in a native library) is unframe's failure to contain, as a bug.
CRASH_EXIT_CODE = int(ExitCode.INTERNAL)
#: A job past its timeout or killed for memory ran out of a resource of the machine.
TIMEOUT_EXIT_CODE = int(ExitCode.RESOURCES)
OUT_OF_MEMORY_EXIT_CODE = int(ExitCode.RESOURCES)


def _run_test_hooks(job: Job) -> None:
    crash = os.environ.get(CRASH_HOOK)
    if crash and crash in job.src:
        os.kill(os.getpid(), signal.SIGSEGV)
    hang = os.environ.get(HANG_HOOK)
    if hang and hang in job.src:
        while True:
            time.sleep(60)


def _validation_error(validation: dict[str, Any]) -> str:
    problems = validation.get("problems") or []
    if problems:
        return f"validation failed: {problems[0]}"
    failed = [o for o in validation.get("outputs", []) if not o.get("ok")]
    if failed:
        worst = failed[0]
        return (
            f"validation failed: output {worst['name']!r} differs by up to {worst['max_abs']:.3g}"
            f" ({worst['mismatched']} of {worst['total']} values out of tolerance)"
        )
    return "validation failed"


def run_job(job: Job, *, force: bool = False) -> JobResult:
    """Converts one job in this process; never raises for a failed conversion.

    An ``UnframeError`` keeps its exit code and one-line message; anything else is classified as
    the CLI does (out of memory or disk: 6, a missing file: 2, a bug: 5). A validation that does
    not pass ends with exit 1. ``force`` replaces an existing output (a resumed job whose source
    changed); without it an existing output is refused, as ``unframe convert`` does.
    """
    from unframe.converters import api  # imported in the worker, once: it pulls numpy and onnx

    started = time.perf_counter()
    _run_test_hooks(job)
    tolerances: dict[str, float] = {}
    if job.rtol is not None:
        tolerances["rtol"] = job.rtol
    if job.atol is not None:
        tolerances["atol"] = job.atol
    try:
        converted = api.convert(
            job.src,
            job.out,
            job.source,
            job.to,
            opset=job.opset,
            inputs=list(job.inputs),
            validate=job.validate,
            force=force,
            **tolerances,
        )
    except Exception as error:  # noqa: BLE001 - every failure becomes this job's result
        classified = unexpected_error(error, "the conversion", path=job.src)
        return JobResult(
            job=job,
            ok=False,
            seconds=time.perf_counter() - started,
            error=str(classified),
            exit_code=int(classified.exit_code),
        )
    details = converted.as_json()
    validation = details.get("validation")
    return JobResult(
        job=job,
        ok=converted.ok,
        seconds=time.perf_counter() - started,
        error=None if converted.ok else _validation_error(validation or {}),
        exit_code=int(ExitCode.OK) if converted.ok else int(ExitCode.MISMATCH),
        validation=validation,
        details=details,
    )


def crashed_result(job: Job, reason: str, seconds: float) -> JobResult:
    """A job whose worker died under it: ``reason`` says how (a signal, an exit status)."""
    return JobResult(
        job=job,
        ok=False,
        seconds=seconds,
        error=f"{job.src}: the worker process died ({reason}); no output was written",
        exit_code=CRASH_EXIT_CODE,
    )


def out_of_memory_result(job: Job, seconds: float) -> JobResult:
    """A job whose worker was killed for using too much memory."""
    return JobResult(
        job=job,
        ok=False,
        seconds=seconds,
        error=f"{job.src}: the worker ran out of memory and was killed; no output was written",
        exit_code=OUT_OF_MEMORY_EXIT_CODE,
    )


def timed_out_result(job: Job, timeout: float, seconds: float) -> JobResult:
    """A job still running after ``timeout`` seconds, whose worker was killed."""
    return JobResult(
        job=job,
        ok=False,
        seconds=seconds,
        error=(
            f"{job.src}: timed out after {timeout:g} s; the worker was killed and no output was"
            " written (raise --timeout if the model is just big)"
        ),
        exit_code=TIMEOUT_EXIT_CODE,
    )
