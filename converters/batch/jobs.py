"""What a batch is made of: jobs, their results, and the executor contract every engine follows.

A job is one conversion (``unframe convert`` with its options); its result has the fields of
``convert --json`` plus what a batch adds (skipped on resume, the exit code, the error line).
Executors (a local process pool, Ray) take the same jobs and give the same results, so resume,
reports and the CLI do not know which engine ran them.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from unframe.shared_ir.compare import DEFAULT_ATOL, DEFAULT_RTOL
from unframe.shared_ir.errors import ExitCode, unexpected_error


@dataclass(frozen=True)
class Job:
    """One conversion of a batch, as a manifest lists it (after defaults and globs)."""

    src: str
    to: str
    out: str
    source: str | None = None  # "from" in manifests and JSON: a Python keyword here
    opset: int | None = None
    inputs: tuple[str, ...] = ()
    validate: bool = False
    rtol: float | None = None
    atol: float | None = None
    #: replace an output that exists (only one unframe would have written there, as ``--force``);
    #: ``batch(resume=True)`` sets it for an output an earlier run of the batch wrote
    force: bool = False
    #: ``unframe matrix``'s checks (not manifest keys): locate the first diverging node where
    #: validation fails, and import the written model back into the IR
    locate: bool = False
    reimport: bool = False

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["from"] = data.pop("source")
        data["inputs"] = list(self.inputs)
        # Left out unless set, so a manifest job's JSON (and its resume key) stays as it was.
        for name in ("locate", "reimport"):
            if not data[name]:
                del data[name]
        return data


@dataclass
class JobResult:
    """How one job ended; ``as_json`` is the per-job shape of ``unframe batch --json``."""

    job: Job
    ok: bool
    skipped: bool = False
    seconds: float = 0.0
    error: str | None = None
    exit_code: int = 0
    validation: dict[str, Any] | None = None
    #: what the job's conversion reported (``convert --json``'s ``from``/``to``/``steps``...)
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "src": self.job.src,
            "from": self.details.get("from", self.job.source),
            "to": self.job.to,
            "out": self.job.out,
            "ok": self.ok,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 4),
            "error": self.error,
            "exit_code": self.exit_code,
            "validation": self.validation,
        }


#: Called by an executor as jobs start and end: (event, job, result or None).
ProgressCallback = Callable[[str, Job, "JobResult | None"], None]


class Executor(Protocol):
    """Runs jobs in isolated workers: a crash, hang or out-of-memory fails only its own job."""

    def run(
        self,
        jobs: Sequence[Job],
        *,
        workers: int,
        timeout: float | None,
        on_progress: ProgressCallback | None = None,
    ) -> list[JobResult]:
        """Every job's result, in the order of ``jobs``."""
        ...


#: Test-only hooks (never set them in real use): a job whose ``src`` contains the value of
#: ``UNFRAME_BATCH_TEST_CRASH`` kills its own worker with SIGSEGV, as a crashing framework would;
#: one whose ``src`` contains ``UNFRAME_BATCH_TEST_HANG`` sleeps for an hour, as a hung one would.
TEST_HOOKS = ("UNFRAME_BATCH_TEST_CRASH", "UNFRAME_BATCH_TEST_HANG")


def hooks_from_environment() -> dict[str, str]:
    """The test hooks set in this process's environment, to hand to workers that start elsewhere."""
    return {name: os.environ[name] for name in TEST_HOOKS if os.environ.get(name)}


def run_job(job: Job, *, test_hooks: Mapping[str, str] | None = None) -> JobResult:
    """Runs one job in this process (a worker's): ``convert`` with the job's options.

    An ``UnframeError`` becomes its exit code and one-line message, as the CLI prints it; any other
    exception is classified as the CLI does (exit 5 for a bug, 6 for an exhausted machine).
    ``details`` holds ``convert --json``'s fields plus ``worker``: this process's pid, how many
    jobs it ran before, and how many modules this job imported (0 once a worker is warm).
    ``test_hooks`` defaults to ``hooks_from_environment()``.
    """
    hooks = hooks_from_environment() if test_hooks is None else dict(test_hooks)
    _fire_test_hooks(job, hooks)
    global _jobs_run_here
    modules_before = len(sys.modules)
    started = time.perf_counter()
    result = JobResult(job=job, ok=False)
    try:
        from unframe.converters import api

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            converted = api.convert(
                job.src,
                job.out,
                job.source,
                job.to,
                opset=job.opset,
                inputs=list(job.inputs),
                validate=job.validate,
                force=job.force,
                rtol=DEFAULT_RTOL if job.rtol is None else job.rtol,
                atol=DEFAULT_ATOL if job.atol is None else job.atol,
                locate=job.locate,
            )
            if job.reimport:
                reimported = api.load(job.out, job.to, inputs=list(job.inputs))
                result.details["reimported_nodes"] = len(reimported.graph)
        result.details.update(converted.as_json())
        result.details["warnings"] = sorted({str(w.message).splitlines()[0] for w in caught})
        result.ok = converted.ok
        if converted.validation is not None:
            result.validation = converted.validation.as_json()
        if not converted.ok:
            result.exit_code = int(ExitCode.MISMATCH)
            problems = converted.validation.problems if converted.validation else []
            result.error = "; ".join(["outputs differ from the source's", *problems])
    except Exception as error:  # noqa: BLE001 - every failure is this job's result, not the pool's
        classified = unexpected_error(error, "unframe batch")
        result.exit_code = int(classified.exit_code)
        result.error = " ".join(str(classified).split())
    result.seconds = time.perf_counter() - started
    result.details["worker"] = {
        "pid": os.getpid(),
        "jobs_before": _jobs_run_here,
        "modules_imported": len(sys.modules) - modules_before,
    }
    _jobs_run_here += 1
    return result


_jobs_run_here = 0


def _fire_test_hooks(job: Job, hooks: Mapping[str, str]) -> None:
    crash = hooks.get("UNFRAME_BATCH_TEST_CRASH")
    if crash and crash in job.src:
        os.kill(os.getpid(), signal.SIGSEGV)
    hang = hooks.get("UNFRAME_BATCH_TEST_HANG")
    if hang and hang in job.src:
        time.sleep(3600)
