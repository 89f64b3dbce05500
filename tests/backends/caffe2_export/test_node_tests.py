"""onnx's backend node tests through the Caffe2 backend and the executor (expected outputs)."""

from __future__ import annotations

import re

import pytest

from unframe.converters import conformance
from unframe.converters.adapters.caffe2 import Caffe2Framework

#: Ops whose every node test passes; a regression in any of them fails here.
OPS = [
    "Conv", "ConvTranspose", "Softmax", "LogSoftmax", "Hardmax", "Gemm", "Slice",
    "GatherElements", "CumSum", "Trilu", "DepthToSpace", "Unsqueeze", "Split", "Clip",
    "ReduceLogSumExp", "BatchNormalization", "HardSwish", "Round", "Compress", "Celu",
]  # fmt: skip

#: Element types Caffe2's TensorProto has no number for: such tests cannot pass on any backend.
_FOREIGN_TYPES = re.compile(r"bfloat16|uint32|uint64|string|float8|int4|float4")

#: A few tests per op keep this file fast; ``unframe conformance --backend caffe2`` runs them all.
PER_OP = 4


def _sample() -> list[object]:
    taken: dict[str, int] = {}
    cases = []
    for case in conformance.collect_node_tests(OPS):
        op = conformance.test_op(case)
        if taken.get(op, 0) < PER_OP and not _FOREIGN_TYPES.search(case.name):
            taken[op] = taken.get(op, 0) + 1
            cases.append(case)
    return cases


_CASES = _sample()


@pytest.mark.parametrize("case", _CASES, ids=[c.name for c in _CASES])
def test_node(case: object) -> None:
    outcome = conformance.run_test(Caffe2Framework(), case)
    assert outcome.status == "pass", outcome.reason
