"""The n x n matrix: every source converted into every installed framework, validated, located.

Each cell is one conversion ``SRC -> target`` run as a batch job (``converters.batch``: worker
processes, a crash or hang fails only its cell), validated against the source (on the target's own
runtime where it runs here, else imported back into the IR and run there), the written model
imported back into the IR, and, where outputs differ, the first diverging source node located
(``converters.locate``). A target that cannot write the model (an op it lacks) is a failing cell
with the backend's message.

``MatrixResult.as_json`` is the contract of ``unframe matrix --json``:
``{"ok", "cells": [{"src", "from", "to", "ok", "max_abs", "seconds", "error", "locate"}]}``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unframe.converters.batch import Executor, Job, JobResult, ProgressCallback
from unframe.converters.batch import batch as run_batch
from unframe.converters.registry import (
    all_frameworks,
    detect_framework,
    framework_names,
    get_framework,
)
from unframe.shared_ir.errors import BadInputError

__all__ = ["MatrixCell", "MatrixResult", "matrix", "ordered", "target_frameworks"]

#: What a cell says where its target's runtime is missing here (Core ML off macOS).
NOT_RUN_NOTE = "re-imported, not run in {name}"


@dataclass
class MatrixCell:
    """One conversion of the matrix: source file and framework, target, verdict and figures."""

    src: str
    source: str
    target: str
    ok: bool
    max_abs: float | None
    seconds: float
    error: str | None
    locate: dict[str, Any] | None
    exit_code: int = 0
    #: How validation ran both sides (``ValidationResult.how``): says where a side was not run.
    how: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "from": self.source,
            "to": self.target,
            "ok": self.ok,
            "max_abs": self.max_abs,
            "seconds": round(self.seconds, 4),
            "error": self.error,
            "locate": self.locate,
        }

    @property
    def ran_natively(self) -> bool:
        """False where the converted model was re-imported and run in the IR, not its runtime."""
        return "the converted model cannot run here" not in self.how


@dataclass
class MatrixResult:
    """Every cell, in the order sources x targets."""

    cells: list[MatrixCell] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(cell.ok for cell in self.cells)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "cells": [cell.as_json() for cell in self.cells]}

    def sources(self) -> list[str]:
        """The source frameworks, in the registry's order (as the targets)."""
        return ordered(cell.source for cell in self.cells)


def ordered(names: Iterable[str]) -> list[str]:
    """``names`` once each, in the registry's order of frameworks, unknown ones last."""
    known = framework_names()
    unique = list(dict.fromkeys(names))
    return sorted(unique, key=lambda n: (known.index(n) if n in known else len(known), n))


def target_frameworks(names: Sequence[str] | None = None) -> list[str]:
    """The frameworks to convert into: ``names`` (checked) or every installed adapter."""
    if not names:
        return [fw.name for fw in all_frameworks() if fw.is_installed()]
    chosen = []
    for name in names:
        adapter = get_framework(name)
        adapter.ensure_installed()
        chosen.append(adapter.name)
    return list(dict.fromkeys(chosen))


def _suffix(target: str) -> str:
    writes = get_framework(target).writes
    return writes[0] if writes else ""


def _max_abs(validation: dict[str, Any] | None) -> float | None:
    outputs = (validation or {}).get("outputs") or []
    errors = [float(o["max_abs"]) for o in outputs if o.get("max_abs") is not None]
    return max(errors) if errors else None


def _cell(job: Job, result: JobResult) -> MatrixCell:
    validation = result.validation or {}
    error = result.error
    if error is not None:
        # The written model lies in a temporary folder gone once the matrix ends.
        error = error.replace(job.out, f"the {job.to} model")
        # The list of unsupported nodes that message points to is the CLI's; a cell has one line.
        error = re.sub(r" \(see the list below[^)]*\)", "", error)
        if result.exit_code:
            error = f"exit {result.exit_code}: {error}"
    return MatrixCell(
        src=job.src,
        source=job.source or "",
        target=job.to,
        ok=result.ok,
        max_abs=_max_abs(validation),
        seconds=result.seconds,
        error=error,
        locate=validation.get("locate"),
        exit_code=result.exit_code,
        how=str(validation.get("how", "")),
    )


def matrix(
    sources: Sequence[str | Path],
    *,
    frameworks: Sequence[str] | None = None,
    source_framework: str | None = None,
    inputs: Sequence[str] = (),
    jobs: int | None = None,
    timeout: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    on_progress: ProgressCallback | None = None,
    executor: str | Executor = "local",
) -> MatrixResult:
    """Converts every source into every target of ``frameworks`` (default: all installed).

    ``source_framework`` names the sources' framework where their paths do not tell it; ``inputs``
    are ``--input`` specs for every source. Converted models go to a temporary folder, removed
    afterwards. Cells run as batch jobs on ``executor`` (``converters.batch.make_executor``).
    Bad sources or framework names raise before any cell runs.
    """
    if not sources:
        raise BadInputError("no source model given", hint="pass one or more model paths")
    targets = target_frameworks(frameworks)
    if not targets:
        raise BadInputError("no framework is installed to convert into")
    planned: list[Job] = []
    folder = Path(tempfile.mkdtemp(prefix="unframe-matrix-"))
    try:
        for number, src in enumerate(sources):
            path = Path(str(src))
            if not path.exists():
                raise BadInputError("no such file or directory", path=str(src))
            if source_framework:
                source_fw = get_framework(source_framework)
            else:
                source_fw = detect_framework(path, for_writing=False)
            for target in targets:
                out = folder / f"{number}-{path.name}" / f"model{_suffix(target)}"
                out.parent.mkdir(exist_ok=True)
                planned.append(
                    Job(
                        src=str(src),
                        to=target,
                        out=str(out),
                        source=source_fw.name,
                        inputs=tuple(inputs),
                        validate=True,
                        rtol=rtol,
                        atol=atol,
                        locate=True,
                        reimport=True,
                    )
                )
        results = run_batch(
            planned, jobs=jobs, executor=executor, timeout=timeout, on_progress=on_progress
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    cells = [_cell(job, result) for job, result in zip(planned, results, strict=True)]
    return MatrixResult(cells=cells, targets=targets)
