"""Node tests run in worker processes: ``unframe conformance --jobs N``.

Each worker is a fresh ``python -m unframe.converters.conformance_isolated BACKEND`` that reads
test names on stdin and prints their outcomes as JSON, so a full run uses every core, and a
framework's native code that kills its process (LiteRT aborts on some models) costs one test,
not the run: a chunk whose worker died is split in halves and rerun until the test that kills it
is alone, and that test fails saying how its worker died.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict

from unframe.converters.conformance import NodeTestOutcome
from unframe.converters.worker_threads import share_cores

#: Tests per worker process: a worker pays onnx's test collection (~6 s of CPU) once.
CHUNK = 150


def run_isolated(
    backend: str,
    tests: Sequence[tuple[str, str]],
    jobs: int,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK,
) -> list[NodeTestOutcome]:
    """The outcomes of ``tests`` ((name, op) pairs), in their order, run by ``jobs`` workers,
    ``chunk_size`` tests per worker process."""
    op_of = dict(tests)
    names = [name for name, _ in tests]
    pending = deque(names[i : i + chunk_size] for i in range(0, len(names), chunk_size))
    outcomes: dict[str, NodeTestOutcome] = {}
    environment = _worker_environment(jobs)
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        running: dict[Future[list[NodeTestOutcome] | str], list[str]] = {}
        while pending or running:
            while pending and len(running) < max(1, jobs):
                chunk = pending.popleft()
                running[pool.submit(_run_chunk, backend, chunk, environment)] = chunk
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                chunk = running.pop(future)
                result = future.result()
                if isinstance(result, str):  # the worker died
                    if len(chunk) > 1:
                        middle = len(chunk) // 2
                        pending.extendleft([chunk[middle:], chunk[:middle]])
                        continue
                    result = [NodeTestOutcome(chunk[0], op_of[chunk[0]], "fail", result)]
                for outcome in result:
                    outcomes[outcome.test] = outcome
                if progress is not None:
                    progress(len(chunk))
    return [outcomes[name] for name in names]


def _worker_environment(jobs: int) -> dict[str, str]:
    environment = dict(os.environ)
    share_cores(environment, jobs)
    return environment


def _run_chunk(
    backend: str, names: list[str], environment: dict[str, str]
) -> list[NodeTestOutcome] | str:
    """The chunk's outcomes, or why its worker died."""
    finished = subprocess.run(
        [sys.executable, "-m", "unframe.converters.conformance_isolated", backend],
        input=json.dumps(names),
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    lines = finished.stdout.strip().splitlines()
    if finished.returncode == 0 and lines:
        return [NodeTestOutcome(**fields) for fields in json.loads(lines[-1])]
    code = finished.returncode
    if code < 0:
        return f"the runtime killed its process ({signal.Signals(-code).name})"
    return f"the runtime's process exited with status {code}"


def main() -> None:
    """Worker: runs the node tests named on stdin with the backend named in argv."""
    from unframe.converters.conformance import collect_node_tests, run_test
    from unframe.converters.registry import get_framework

    wanted = set(json.load(sys.stdin))
    framework = get_framework(sys.argv[1])
    outcomes = [
        asdict(run_test(framework, case)) for case in collect_node_tests() if case.name in wanted
    ]
    # Frameworks may print on stdout: the outcomes are the last line.
    sys.stdout.write("\n" + json.dumps(outcomes) + "\n")


if __name__ == "__main__":
    main()
