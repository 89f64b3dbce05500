"""The committed conformance reports are what a fresh run gives.

Two checks per backend:
- the committed report is one the report writer makes from its own rows (the header's pass rate
  and supported-op count are the rows' counts, the notes are the framework's), and its rows are
  exactly onnx's installed node tests;
- rerunning onnx's node tests through the backend gives each test the committed outcome (pass,
  fail or skip; the reason is documentation and may hold run-to-run noise).
  For most backends every test is rerun, split into shards that run on different workers. Core ML
  and TFLite cost ~0.5 s per test (a package or flatbuffer written and read back per test), so CI
  reruns a fixed sample: every few tests of each op (each op's first test always); `make
  conformance` reruns all of them.

A difference means either a backend's behaviour changed (rerun `make conformance` and commit the
reports with the change) or the installed versions drifted from constraints.txt (reinstall with
`make install`): onnx computes many expected outputs at collection time with the installed numpy
and ml_dtypes, so the figures hold only for the pinned versions.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from unframe.converters.conformance import (
    ConformanceReport,
    NodeTestOutcome,
    collect_node_tests,
    node_test_op,
    parse_markdown_rows,
    run_conformance,
    write_report,
)
from unframe.converters.conformance_isolated import run_isolated
from unframe.converters.registry import get_framework

REPORTS = Path(__file__).resolve().parents[2] / "docs" / "conformance"

#: backend -> (shards its rerun is split into, rerun every k-th test of each op). The
#: strides keep the suite under 15 minutes on 2 cores (worker time, quiet machine, 2026-12-06:
#: TensorFlow every 4th 35 s, Core ML every 16th 107 s, TFLite every 24th 52 s; the whole suite
#: then took 15 min 26 s); `make conformance` reruns every test.
RERUNS: dict[str, tuple[int, int]] = {
    "onnx": (1, 1),
    "pytorch": (1, 1),
    "caffe2": (1, 1),
    "tensorflow": (2, 8),
    "coreml": (2, 40),
    "tflite": (2, 48),
}

#: Backends whose rerun goes to worker processes (converters/conformance_isolated.py).
IN_WORKERS = {"tensorflow", "coreml", "tflite"}


def _outcome(outcome: NodeTestOutcome) -> str:
    return f"{outcome.test} | {outcome.op} | {outcome.status}"


def _committed(backend: str) -> str:
    path = REPORTS / f"{backend}.md"
    if not path.exists():
        pytest.fail(f"docs/conformance/{backend}.md is missing: run `make conformance`")
    return path.read_text()


def _framework(backend: str) -> Any:
    framework = get_framework(backend)
    if not framework.is_installed():
        pytest.fail(f"{backend} is not installed ({', '.join(framework.missing_modules())})")
    return framework


def _sample(stride: int) -> list[Any]:
    """Every ``stride``-th of each op's tests, in name order, each op's first always."""
    by_op: dict[str, list[Any]] = defaultdict(list)
    for case in collect_node_tests():
        by_op[node_test_op(case)].append(case)
    chosen = [case for cases in by_op.values() for case in cases[::stride]]
    return sorted(chosen, key=lambda case: case.name)


def _diff(committed: list[str], fresh: list[str], backend: str, what: str) -> None:
    if fresh == committed:
        return
    diff = list(difflib.unified_diff(committed, fresh, "committed", "fresh run", n=0, lineterm=""))
    shown = "\n".join(diff[:60]) + ("\n..." if len(diff) > 60 else "")
    pytest.fail(
        f"docs/conformance/{backend}.md: {what} ({len(diff)} diff lines); rerun `make "
        "conformance` if the backend changed, or `make install` if the versions drifted from "
        f"constraints.txt:\n{shown}"
    )


@pytest.mark.parametrize("backend", list(RERUNS))
def test_the_committed_report_is_what_the_writer_makes_of_its_rows(
    backend: str, tmp_path: Path
) -> None:
    committed = _committed(backend)
    rows = parse_markdown_rows(committed)
    assert [row.test for row in rows] == [case.name for case in collect_node_tests()], (
        f"docs/conformance/{backend}.md does not list exactly onnx's installed node tests"
    )
    framework = _framework(backend)
    rebuilt = tmp_path / f"{backend}.md"
    write_report(ConformanceReport(backend, rows), rebuilt, framework)
    _diff(committed.splitlines(), rebuilt.read_text().splitlines(), backend, "header or notes")


@pytest.mark.parametrize(
    ("backend", "shard"),
    [(backend, shard) for backend, (shards, _) in RERUNS.items() for shard in range(shards)],
)
def test_a_fresh_run_reproduces_the_committed_rows(backend: str, shard: int) -> None:
    shards, stride = RERUNS[backend]
    committed = {row.test: _outcome(row) for row in parse_markdown_rows(_committed(backend))}
    cases = _sample(stride)[shard::shards]
    framework = _framework(backend)
    if backend in IN_WORKERS:
        # In a fresh process per chunk, as `make conformance` runs them: a framework's memory
        # grows over hundreds of tests in one process (TensorFlow keeps every traced graph).
        tests = [(case.name, node_test_op(case)) for case in cases]
        outcomes = run_isolated(backend, tests, 1, chunk_size=350)
    else:
        outcomes = run_conformance(framework, cases).outcomes
    # Outcomes, not reasons: a reason may hold run-to-run noise (a training-mode Dropout's
    # random error, the first op TFLiteConverter happens to name).
    _diff(
        [committed.get(case.name, f"(no row for {case.name})") for case in cases],
        [_outcome(outcome) for outcome in outcomes],
        backend,
        f"rows differ from a fresh run (shard {shard + 1} of {shards}, every {stride})",
    )


def test_the_sample_takes_every_op_and_a_fixed_share_of_its_tests() -> None:
    everything = collect_node_tests()
    sample = _sample(5)
    ops = {node_test_op(case) for case in everything}
    assert {node_test_op(case) for case in sample} == ops
    per_op: dict[str, int] = defaultdict(int)
    for case in everything:
        per_op[node_test_op(case)] += 1
    assert len(sample) == sum(-(-count // 5) for count in per_op.values())
    assert _sample(1) == everything


def test_ml_dtypes_wraps_out_of_range_int4_and_int2_casts_as_the_backends_do() -> None:
    # onnx 1.23's Cast/CastLike node tests to INT4/UINT4/INT2/UINT2 take their expected values
    # from ml_dtypes' astype. Up to 0.6 it wraps an out-of-range value (two's complement, the
    # rule ONNX gives for integer narrowing and what the PyTorch backend does); 0.7 yields 0.
    values = np.arange(-9, 16, dtype=np.float32)
    for dtype, bits, low in (
        (ml_dtypes.int4, 4, -8),
        (ml_dtypes.uint4, 4, 0),
        (ml_dtypes.int2, 2, -2),
        (ml_dtypes.uint2, 2, 0),
    ):
        wrapped = (values.astype(np.int64) - low) % (1 << bits) + low
        with np.errstate(invalid="ignore"):
            got = values.astype(dtype).astype(np.int64)
        assert got.tolist() == wrapped.tolist(), (
            f"ml_dtypes {ml_dtypes.__version__} does not wrap casts to {np.dtype(dtype).name}; "
            "constraints.txt pins the version the conformance reports were made with"
        )
