"""The committed conformance reports are what a fresh run gives.

Rerunning onnx's node tests through each backend must regenerate docs/conformance/<backend>.md
line for line. A difference means either a backend's behaviour changed (rerun `make conformance`
and commit the reports with the change) or the installed versions drifted from constraints.txt
(reinstall with `make install`): onnx computes many expected outputs at collection time with the
installed numpy and ml_dtypes, so the figures hold only for the pinned versions.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from unframe.converters.conformance import collect_node_tests, run_conformance, write_report
from unframe.converters.registry import get_framework

REPORTS = Path(__file__).resolve().parents[2] / "docs" / "conformance"


@pytest.mark.parametrize("backend", ["onnx", "pytorch", "caffe2", "tensorflow", "coreml"])
def test_a_fresh_run_regenerates_the_committed_report(backend: str, tmp_path: Path) -> None:
    committed = (REPORTS / f"{backend}.md").read_text().splitlines()
    framework = get_framework(backend)
    fresh_path = tmp_path / f"{backend}.md"
    write_report(run_conformance(framework, collect_node_tests()), fresh_path, framework)
    fresh = fresh_path.read_text().splitlines()
    if fresh != committed:
        diff = list(
            difflib.unified_diff(committed, fresh, "committed", "fresh run", n=0, lineterm="")
        )
        shown = "\n".join(diff[:60]) + ("\n..." if len(diff) > 60 else "")
        pytest.fail(
            f"docs/conformance/{backend}.md differs from a fresh run ({len(diff)} diff lines); "
            "rerun `make conformance` if the backend changed, or `make install` if the versions "
            f"drifted from constraints.txt:\n{shown}"
        )


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
