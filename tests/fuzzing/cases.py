"""Running one fuzz case through the CLI in-process and checking what unframe promises."""

from __future__ import annotations

import random
import resource
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fuzzing.mutations import Mutator, mutate

#: A failed case may take this long (a hang guard far above the ~1 s the slowest case takes).
CASE_SECONDS = 20.0
#: How much one case may raise the process's peak RSS.
CASE_RSS_GROWTH_MIB = 512.0
STAGING_MARK = ".unframe-tmp-"

#: Why an exit 0 is wrong for these case files, or None where the oracle takes them for a model.
Oracle = Callable[["CaseFiles"], "str | None"]

# -- importers: seed files, what to mutate, commands, the exit-0 oracle ---------------------------


@dataclass(frozen=True)
class CaseFiles:
    """Where one case's files lie: the model given to the CLI and the output it was asked for."""

    folder: Path
    source: Path
    output: Path | None


@dataclass(frozen=True)
class Importer:
    """A valid model (``files``: name -> bytes, under a folder when ``source`` is one) and how to
    fuzz it: which files to mutate with which mutators, the commands cycled over the cases
    (``{src}``/``{out}`` filled in; an output's suffix says the target), and the exit-0 oracle."""

    name: str
    files: dict[str, bytes]
    source: str
    mutable: dict[str, tuple[Mutator, ...]]
    commands: tuple[tuple[str, ...], ...]
    oracle: Oracle


@dataclass
class CaseResult:
    importer: str
    seed: int
    case: int
    mutation: str
    args: list[str]
    exit_code: int
    stderr: str
    seconds: float
    rss_growth_mib: float
    problems: list[str]

    def describe(self) -> str:
        return (
            f"{self.importer} seed {self.seed} case {self.case} ({self.mutation}): "
            f"unframe {' '.join(self.args)} -> exit {self.exit_code} in {self.seconds:.2f} s: "
            f"{'; '.join(self.problems)}\n{self.stderr}"
        )


def case_rng(importer: str, seed: int, case: int) -> random.Random:
    return random.Random(f"{importer}:{seed}:{case}")


def write_case(
    importer: Importer, seed: int, case: int, folder: Path
) -> tuple[CaseFiles, str, list[str]]:
    """Writes case ``case``'s files under ``folder``; returns them, the mutation and the CLI args."""
    rng = case_rng(importer.name, seed, case)
    target = rng.choice(sorted(importer.mutable))
    mutation, mutated = mutate(importer.files[target], rng, importer.mutable[target])
    shutil.rmtree(folder, ignore_errors=True)  # a rerun starts from nothing
    folder.mkdir(parents=True)
    for name, data in importer.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(mutated if name == target else data)
    command = importer.commands[case % len(importer.commands)]
    source = folder / importer.source
    output = None
    args = []
    for part in command:
        if part.startswith("{out}"):
            output = folder / f"out{part[len('{out}') :]}"
            part = str(output)
        elif part == "{src}":
            part = str(source)
        args.append(part)
    return CaseFiles(folder, source, output), f"{target}: {mutation}", args


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stderr_problems(stderr: str, source: Path) -> list[str]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("unframe: error: ")]
    if len(errors) != 1:
        return [f"{len(errors)} 'unframe: error:' lines"]
    problems = []
    if str(source) not in errors[0]:
        problems.append("the error does not name the input")
    after = False
    for line in lines:
        if line is errors[0]:
            after = True
        elif not (line.startswith("unframe: warning: ") or (after and line.startswith("  node "))):
            problems.append(f"a stray stderr line: {line[:200]!r}")
            break
    return problems


def run_case(importer: Importer, seed: int, case: int, folder: Path) -> CaseResult:
    """Runs one case in this process; its files are removed unless it found a problem."""
    from click.testing import CliRunner

    from unframe.cli.main import cli

    files, mutation, args = write_case(importer, seed, case, folder)
    rss_before = _peak_rss_mib()
    started = time.perf_counter()
    result = CliRunner().invoke(cli, args)
    seconds = time.perf_counter() - started
    growth = _peak_rss_mib() - rss_before
    problems: list[str] = []
    code = int(result.exit_code) if result.exit_code is not None else -1
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
        problems.append(f"an exception escaped the CLI: {result.exception!r}\n{trace}")
    stdout = result.stdout
    if "Traceback" in result.stderr or "Traceback" in stdout:
        problems.append("a traceback was printed")
    if seconds > CASE_SECONDS:
        problems.append(f"took {seconds:.1f} s (bound {CASE_SECONDS:.0f} s)")
    if growth > CASE_RSS_GROWTH_MIB:
        problems.append(f"peak RSS grew by {growth:.0f} MiB (bound {CASE_RSS_GROWTH_MIB:.0f})")
    if code == 0:
        if files.output is not None and not files.output.exists():
            problems.append("exit 0 but nothing written")
        reason = importer.oracle(files)
        if reason is not None:
            problems.append(f"exit 0 on a file the oracle refuses: {reason}")
    elif code in (2, 3):
        problems += _stderr_problems(result.stderr, files.source)
        if files.output is not None and (files.output.exists() or files.output.is_symlink()):
            problems.append(f"{files.output.name} left behind after a failure")
    else:
        problems.append(f"exit {code} (only 0, 2 or 3 are right for a mutated file)")
    staged = [p.name for p in folder.rglob(f"*{STAGING_MARK}*")]
    if staged:
        problems.append(f"staging left: {staged}")
    if not problems:
        shutil.rmtree(folder, ignore_errors=True)
    return CaseResult(
        importer.name, seed, case, mutation, args, code, result.stderr, seconds, growth, problems
    )


def warm_up(importer: Importer, folder: Path) -> dict[str, int]:
    """Runs every command once on the unmutated files (so imports are not timed as a case);
    returns each command's exit code."""
    from click.testing import CliRunner

    from unframe.cli.main import cli

    codes = {}
    for index, command in enumerate(importer.commands):
        case = folder / f"pristine{index}"
        for name, data in importer.files.items():
            (case / name).parent.mkdir(parents=True, exist_ok=True)
            (case / name).write_bytes(data)
        args = [
            str(case / importer.source)
            if part == "{src}"
            else str(case / f"out{part[len('{out}') :]}")
            if part.startswith("{out}")
            else part
            for part in command
        ]
        result = CliRunner().invoke(cli, args)
        codes[" ".join(command)] = int(result.exit_code or 0)
    shutil.rmtree(folder, ignore_errors=True)
    return codes


def run_cases(importer: Importer, seed: int, cases: range, workdir: Path) -> list[CaseResult]:
    return [run_case(importer, seed, case, workdir / f"case{case}") for case in cases]


def failures(results: Sequence[CaseResult]) -> str:
    """The findings of ``results`` as one message ("" when none)."""
    found = [r.describe() for r in results if r.problems]
    return (
        f"{len(found)} of {len(results)} cases failed:\n" + "\n".join(found[:10]) if found else ""
    )


def exit_histogram(results: Sequence[CaseResult]) -> dict[int, int]:
    histogram: dict[int, int] = {}
    for result in results:
        histogram[result.exit_code] = histogram.get(result.exit_code, 0) + 1
    return dict(sorted(histogram.items()))
