"""The long fuzz run (``make fuzz``): seeded mutations of valid models through unframe's CLI.

Uses the suite's harness (``tests/fuzzing.py``), but runs the cases in worker subprocesses under an
address-space limit, so a crash, a hang or a memory blow-up of one case is caught, reported with
its importer, seed and case number, and its files kept under ``--out`` for reproduction::

    python scripts/fuzz.py --cases 10000 --importer all --jobs 2
    python scripts/fuzz.py --importer onnx --seed 1 --case 4711   # rerun one case here

Prints, per importer, the cases run, the exit-code histogram, the slowest case, the peak RSS and
every finding; writes the same to ``<out>/summary.json``. Exits 1 if anything was found.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import select
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fuzzing  # noqa: E402

#: A case with no answer after this long is a hang: its worker is killed and the case reported.
HANG_SECONDS = 120.0


def _importer(name: str, seeds: Path | None) -> fuzzing.Importer:
    importer = fuzzing.IMPORTERS[name]()
    if seeds is None:
        return importer
    # The seed files the parent wrote, so every worker mutates the very same bytes.
    return replace(importer, files={n: (seeds / n).read_bytes() for n in importer.files})


# -- the worker: cases from stdin, one JSON line per case on the protocol fd --------------------


def _worker(args: argparse.Namespace) -> None:
    if args.memory_mib:
        limit = args.memory_mib * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    # Whatever reaches the real stdout/stderr (a framework's own prints) is caught in this file.
    leak_path = Path(args.out) / "work" / args.importer / f"leak-{os.getpid()}.txt"
    leak_path.parent.mkdir(parents=True, exist_ok=True)
    leak = os.open(leak_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(leak, 1)
    os.dup2(leak, 2)
    importer = _importer(args.importer, Path(args.out) / "seeds" / args.importer)
    workdir = Path(args.out) / "work" / args.importer
    fuzzing.warm_up(importer, workdir / f"warm-{os.getpid()}")
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        case = int(line)
        leaked_before = os.fstat(leak).st_size
        result = fuzzing.run_case(importer, args.seed, case, workdir / f"case{case}")
        sys.stdout.flush()
        sys.stderr.flush()
        sys.__stdout__.flush()
        sys.__stderr__.flush()
        leaked = os.fstat(leak).st_size - leaked_before
        if leaked:
            with open(leak_path, "rb") as handle:
                handle.seek(leaked_before)
                text = handle.read(300).decode(errors="replace")
            result.problems.append(f"{leaked} bytes printed outside the CLI's streams: {text!r}")
            (workdir / f"case{case}").mkdir(parents=True, exist_ok=True)
            fuzzing.write_case(importer, args.seed, case, workdir / f"case{case}")
        record = asdict(result)
        record["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        protocol.write(json.dumps(record) + "\n")


# -- the parent ----------------------------------------------------------------------------------


@dataclass
class Tally:
    importer: str
    first: int = 0
    cases: int = 0
    histogram: dict[str, int] = field(default_factory=dict)
    slowest: dict[str, Any] = field(default_factory=dict)
    peak_rss_mib: float = 0.0
    seconds: float = 0.0
    findings: list[dict[str, Any]] = field(default_factory=list)

    def add(self, record: dict[str, Any]) -> None:
        self.cases += 1
        code = str(record["exit_code"])
        self.histogram[code] = self.histogram.get(code, 0) + 1
        if record["seconds"] > self.slowest.get("seconds", -1.0):
            self.slowest = {
                k: record[k] for k in ("case", "mutation", "args", "seconds", "exit_code")
            }
        self.peak_rss_mib = max(self.peak_rss_mib, record.get("peak_rss_mib", 0.0))
        if record["problems"]:
            self.findings.append(record)


class Worker:
    """One worker subprocess; restarted after a crash or a hang."""

    def __init__(self, args: argparse.Namespace, importer: str) -> None:
        self.args = args
        self.importer = importer
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            __file__,
            "--worker",
            "--importer",
            self.importer,
            "--seed",
            str(self.args.seed),
            "--out",
            str(self.args.out),
            "--memory-mib",
            str(self.args.memory_mib),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        ready = self._read(600.0)
        if ready is None or not ready.get("ready"):
            raise SystemExit(f"fuzz: the {self.importer} worker did not start: {ready}")

    def _read(self, timeout: float) -> dict[str, Any] | None:
        assert self.process is not None and self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not readable:
            return None
        line = self.process.stdout.readline()
        return json.loads(line) if line else {"died": self.process.wait()}

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def run(self, case: int) -> dict[str, Any]:
        if self.process is None:
            self.start()
        assert self.process is not None and self.process.stdin is not None
        started = time.monotonic()
        try:
            self.process.stdin.write(f"{case}\n")
            self.process.stdin.flush()
            answer = self._read(HANG_SECONDS)
        except (BrokenPipeError, ValueError):
            answer = {"died": self.process.wait()}
        if answer is not None and "died" not in answer:
            return answer
        problem = (
            f"no answer in {HANG_SECONDS:.0f} s (a hang): the worker was killed"
            if answer is None
            else f"the worker died (exit status {answer['died']}: a crash, a signal or the memory limit)"
        )
        self.stop()
        return {
            "importer": self.importer,
            "seed": self.args.seed,
            "case": case,
            "mutation": "?",
            "args": [],
            "exit_code": -1,
            "stderr": "",
            "seconds": time.monotonic() - started,
            "rss_growth_mib": 0.0,
            "problems": [problem],
            "lost_worker": True,
        }


def _keep(args: argparse.Namespace, importer: fuzzing.Importer, record: dict[str, Any]) -> str:
    """Moves (or rebuilds) a finding's files to ``<out>/findings`` and says how to rerun it."""
    target = Path(args.out) / "findings" / f"{importer.name}-seed{args.seed}-case{record['case']}"
    source = Path(args.out) / "work" / importer.name / f"case{record['case']}"
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.exists():
        shutil.move(str(source), target)
    else:
        _, mutation, _ = fuzzing.write_case(importer, args.seed, record["case"], target)
        record["mutation"] = mutation
    return (
        f"{target} (rerun: python scripts/fuzz.py --importer {importer.name} "
        f"--seed {args.seed} --case {record['case']})"
    )


def _fuzz_importer(args: argparse.Namespace, name: str) -> Tally:
    importer = fuzzing.IMPORTERS[name]()
    seeds = Path(args.out) / "seeds" / name
    for file_name, data in importer.files.items():
        (seeds / file_name).parent.mkdir(parents=True, exist_ok=True)
        (seeds / file_name).write_bytes(data)
    tally = Tally(name, first=args.start)
    todo: queue.Queue[int] = queue.Queue()
    for case in range(args.start, args.start + args.cases):
        todo.put(case)
    done: queue.Queue[dict[str, Any]] = queue.Queue()

    started = time.monotonic()
    deadline = started + args.minutes * 60 if args.minutes else None

    def drive() -> None:
        worker = Worker(args, name)
        try:
            while deadline is None or time.monotonic() < deadline:
                try:
                    case = todo.get_nowait()
                except queue.Empty:
                    return
                done.put(worker.run(case))
        finally:
            worker.stop()

    threads = [threading.Thread(target=drive, daemon=True) for _ in range(args.jobs)]
    for thread in threads:
        thread.start()
    # Cases leave the queue in order and each one taken is finished, so the cases run are
    # start .. start + count - 1 even when the time budget stops the run early.
    count = 0
    while count < args.cases:
        try:
            record = done.get(timeout=1.0)
        except queue.Empty:
            if any(thread.is_alive() for thread in threads) or not done.empty():
                continue
            break
        count += 1
        tally.add(record)
        if record["problems"]:
            record["kept"] = _keep(args, importer, record)
            print(
                f"fuzz: {name} case {record['case']}: {'; '.join(record['problems'])[:500]}",
                flush=True,
            )
        if count % 500 == 0:
            rate = count / (time.monotonic() - started)
            print(f"fuzz: {name}: {count}/{args.cases} cases, {rate:.1f}/s", flush=True)
    for thread in threads:
        thread.join()
    tally.seconds = time.monotonic() - started
    shutil.rmtree(Path(args.out) / "work" / name, ignore_errors=True)
    return tally


def _report(tally: Tally) -> str:
    slow = tally.slowest
    lines = [
        f"{tally.importer}: {tally.cases} cases (from {tally.first}) in {tally.seconds:.0f} s "
        f"({tally.cases / max(tally.seconds, 1e-9):.1f}/s); exit codes {tally.histogram}; "
        f"slowest case {slow.get('case')} ({slow.get('mutation')}, unframe {' '.join(slow.get('args', []))}) "
        f"{slow.get('seconds', 0):.2f} s; peak RSS {tally.peak_rss_mib:.0f} MiB; "
        f"{len(tally.findings)} finding(s)"
    ]
    for record in tally.findings:
        lines.append(
            f"  case {record['case']} ({record['mutation']}): {'; '.join(record['problems'])[:400]}"
        )
        lines.append(f"    stderr: {record['stderr'].strip()[:400]}")
        lines.append(f"    files: {record.get('kept')}")
    return "\n".join(lines)


def _one_case(args: argparse.Namespace) -> int:
    importer = fuzzing.IMPORTERS[args.importer]()
    folder = Path(args.out) / "repro" / f"{args.importer}-seed{args.seed}-case{args.case}"
    shutil.rmtree(folder, ignore_errors=True)
    result = fuzzing.run_case(importer, args.seed, args.case, folder)
    print(result.describe())
    fuzzing.write_case(importer, args.seed, args.case, folder)
    print(f"files: {folder}")
    return 1 if result.problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10000, help="cases per importer")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="first case number")
    parser.add_argument("--importer", default="all", choices=[*fuzzing.IMPORTERS, "all"])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--out", default="fuzz-out", help="seeds, findings and summary.json")
    parser.add_argument(
        "--memory-mib", type=int, default=8192, help="address-space limit of a worker (0: none)"
    )
    parser.add_argument(
        "--minutes", type=float, default=0, help="per importer: take no new case after this long"
    )
    parser.add_argument("--case", type=int, help="rerun this one case in this process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return 0
    if args.case is not None:
        if args.importer == "all":
            parser.error("--case needs one --importer")
        return _one_case(args)
    names = list(fuzzing.IMPORTERS) if args.importer == "all" else [args.importer]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    tallies = []
    for name in names:
        tally = _fuzz_importer(args, name)
        tallies.append(tally)
        print(_report(tally), flush=True)
        summary = {
            "seed": args.seed,
            "start": args.start,
            "importers": [asdict(t) for t in tallies],
        }
        (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\n".join(_report(t).splitlines()[0] for t in tallies))
    return 1 if any(t.findings for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
