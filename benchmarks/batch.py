"""Batch conversion: the local pool at 1 and 2 workers, the same conversions in one process, Ray.

Forty small conversions: the ``light_*.onnx`` models shipped inside onnx and ONNX exports of the
tests' small PyTorch models (tests/models/torch_zoo.py), each to ONNX, Caffe2 and PyTorch, cut
to the first forty (job list printed with ``--list``). Each configuration runs in a fresh process
of this script (imports and worker start-up included, as a user waits for them), into a fresh
output folder; configurations take turns, ``--repeat`` rounds, and the medians are compared:

- ``--jobs 2`` against ``--jobs 1`` (target <= 0.6x on a 2-core machine);
- the pool's overhead: ``--jobs 1`` against the same conversions one after another in one process
  (``run_job`` in a loop, no pool), target < 10 %;
- the same batch on Ray (a local instance started by the run, its start-up included), 2 workers.

CPU seconds (user + system of the configuration's process and the workers it reaped) are printed
beside the wall times: on a loaded machine they move less than wall time does. Ray's are not
comparable (its raylet and workers are not all children of the run).

    .venv/bin/python benchmarks/batch.py [--repeat 3] [--modes inprocess,local1,local2,ray2]
                                         [--work /tmp/unframe-batch-bench] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import onnx

ROOT = Path(__file__).resolve().parents[1]
ZOO_PATH = ROOT / "tests" / "models" / "torch_zoo.py"
LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
#: zoo model -> the input spec its ONNX export is made at (batch 2, as the model tests do)
ZOO_INPUTS = {
    "resnet": "x=2,3,32,32",
    "mobilenet": "x=2,3,32,32",
    "unet": "x=2,3,32,32",
    "lstm": "x=2,7,8",
    "gru": "x=2,7,8",
    "transformer": "x=2,6,32",
    "cond": "x=2,6",
}
TARGETS = {"onnx": ".onnx", "caffe2": "", "pytorch": ".pt2"}
JOB_COUNT = 40
MODES = ("inprocess", "local1", "local2", "ray2")


def sources(work: Path) -> list[Path]:
    """The light models in place, and the zoo's ONNX exports (made once, kept in ``work``)."""
    found = sorted(LIGHT_DIR.glob("light_*.onnx"))
    folder = work / "sources"
    folder.mkdir(parents=True, exist_ok=True)
    for name, spec in ZOO_INPUTS.items():
        path = folder / f"zoo_{name}.onnx"
        if not path.exists():
            import unframe

            print(f"exporting {name} (once)", file=sys.stderr)
            unframe.convert(f"{ZOO_PATH}:{name}", path, inputs=[spec])
        found.append(path)
    return found


def jobs(work: Path, out: Path) -> list[Any]:
    from unframe.converters.batch.jobs import Job

    made = [
        Job(str(src), target, str(out / f"{src.stem}_{target}{suffix}"))
        for target, suffix in TARGETS.items()
        for src in sources(work)
    ]
    # Every source to ONNX and Caffe2, then PyTorch for as many as make forty.
    return made[:JOB_COUNT]


def run_one(mode: str, work: Path) -> dict[str, Any]:
    """One configuration in this process: its own wall time and how many jobs succeeded."""
    out = work / f"out-{mode}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    todo = jobs(work, out)
    started = time.perf_counter()
    if mode == "inprocess":
        from unframe.converters.batch.jobs import run_job

        results = [run_job(job) for job in todo]
    elif mode.startswith("local"):
        from unframe.converters.batch.local import LocalExecutor

        results = LocalExecutor().run(todo, workers=int(mode[5:]), timeout=None)
    elif mode.startswith("ray"):
        from unframe.converters.batch.ray_executor import RayExecutor

        results = RayExecutor().run(todo, workers=int(mode[3:]), timeout=None)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    wall = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    failed = [f"{r.job.src} -> {r.job.to}: {r.error}" for r in results if not r.ok]
    return {"mode": mode, "wall": wall, "jobs": len(results), "failed": failed}


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def compare(modes: list[str], repeat: int, work: Path) -> dict[str, Any]:
    """Each mode in a fresh process, taking turns; whole-process and in-process wall seconds."""
    sources(work)  # the exports are set-up, not measured
    process: dict[str, list[float]] = {mode: [] for mode in modes}
    inside: dict[str, list[float]] = {mode: [] for mode in modes}
    cpu: dict[str, list[float]] = {mode: [] for mode in modes}
    failed: dict[str, list[str]] = {}
    loads = [_load()]
    for round_number in range(repeat):
        for mode in modes:
            started = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(
                [sys.executable, __file__, "--one", mode, "--work", str(work)],
                capture_output=True,
                text=True,
                check=True,
            )
            process[mode].append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[mode].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            inside[mode].append(figures["wall"])
            failed[mode] = figures["failed"]
            print(
                f"round {round_number + 1} {mode}: {process[mode][-1]:.1f} s "
                f"({figures['jobs']} jobs, {len(figures['failed'])} failed)",
                file=sys.stderr,
            )
        loads.append(_load())
    return {
        "process_s": {mode: statistics.median(v) for mode, v in process.items()},
        "inside_s": {mode: statistics.median(v) for mode, v in inside.items()},
        "cpu_s": {mode: statistics.median(v) for mode, v in cpu.items()},
        "runs": {"process_s": process, "inside_s": inside, "cpu_s": cpu},
        "failed": failed,
        "load_average": loads,
        "cpus": os.cpu_count(),
    }


def report(figures: dict[str, Any]) -> None:
    process, inside, cpu = figures["process_s"], figures["inside_s"], figures["cpu_s"]
    print(f"load average during the run: {' -> '.join(figures['load_average'])}")
    print("| configuration | whole process, median | inside the process | CPU (user+sys) |")
    print("| --- | --- | --- | --- |")
    for mode in process:
        rounds = ", ".join(f"{v:.1f}" for v in figures["runs"]["process_s"][mode])
        print(
            f"| {mode} | {process[mode]:.1f} s ({rounds}) | {inside[mode]:.1f} s | {cpu[mode]:.1f} s |"
        )

    def ratio(a: str, b: str) -> str:
        if a not in process or b not in process:
            return "n/a"
        return f"{process[a] / process[b]:.2f}x (inside: {inside[a] / inside[b]:.2f}x)"

    print(f"local2 / local1: {ratio('local2', 'local1')} (target <= 0.6x)")
    if "local1" in process and "inprocess" in process:
        overhead = process["local1"] / process["inprocess"] - 1
        print(f"pool overhead, local1 vs inprocess: {overhead:+.1%} (target < 10 %)")
        cpu_overhead = cpu["local1"] / cpu["inprocess"] - 1
        print(f"pool overhead in CPU seconds (less sensitive to load): {cpu_overhead:+.1%}")
    print(f"ray2 / local2: {ratio('ray2', 'local2')}; ray2 / local1: {ratio('ray2', 'local1')}")
    for mode, lines in figures["failed"].items():
        for line in lines:
            print(f"{mode}: failed: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--work", type=Path, default=Path("/tmp/unframe-batch-bench"))
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    parser.add_argument("--list", action="store_true", help="Print the jobs and stop.")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child: one mode, figures as JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.work)))
        return
    if args.list:
        for job in jobs(args.work, args.work / "out"):
            print(f"{job.src} -> {job.to}")
        return
    figures = compare(args.modes.split(","), args.repeat, args.work)
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
