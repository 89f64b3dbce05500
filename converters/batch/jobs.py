"""What a batch is made of: jobs, their results, and the executor contract every engine follows.

A job is one conversion (``unframe convert`` with its options); its result has the fields of
``convert --json`` plus what a batch adds (skipped on resume, the exit code, the error line).
Executors (a local process pool, Ray) take the same jobs and give the same results, so resume,
reports and the CLI do not know which engine ran them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


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

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["from"] = data.pop("source")
        data["inputs"] = list(self.inputs)
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
