"""Core ML backend: Reshape -> Transpose -> Reshape through rank 6 or 7, narrowed to rank 5 or
less (Core ML's limit) where the transpose moves axes together: the elements' order checked
against numpy, and whole models against onnxruntime after the export and re-import."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.backends.coreml.rank_reduction import merged_transpose
from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.errors import UnsupportedOpsError
from unframe.shared_ir.runner import run_onnxruntime


def test_merged_transposes_move_elements_as_the_wide_ones() -> None:
    rng = np.random.default_rng(0)
    narrowed = 0
    for _ in range(200):
        rank = int(rng.integers(6, 8))
        dims = [int(d) for d in rng.integers(1, 4, size=rank)]
        perm = [int(p) for p in rng.permutation(rank)]
        found = merged_transpose(dims, perm)
        if found is None:
            continue
        narrowed += len(found[0]) <= 5
        x = np.arange(int(np.prod(dims)))
        wide = x.reshape(dims).transpose(perm).reshape(-1)
        np.testing.assert_array_equal(x.reshape(found[0]).transpose(found[1]).reshape(-1), wide)
    assert narrowed > 20


def _chain(x_shape: list[int], wide: list[int], perm: list[int], out: list[int]) -> ir.Model:
    shapes = [
        helper.make_tensor("wide", TensorProto.INT64, [len(wide)], wide),
        helper.make_tensor("out", TensorProto.INT64, [len(out)], out),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["x", "wide"], ["w"]),
            helper.make_node("Transpose", ["w"], ["t"], perm=perm),
            helper.make_node("Reshape", ["t", "out"], ["y"]),
        ],
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
        initializer=shapes,
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


@pytest.mark.parametrize(
    ("x_shape", "wide", "perm", "out"),
    [
        ([2, 12, 3, 4], [2, 2, 2, 3, 3, 4], [0, 3, 4, 1, 5, 2], [2, 3, 6, 8]),  # DepthToSpace DCR
        ([2, 3, 6, 8], [2, 3, 3, 2, 4, 2], [0, 3, 5, 1, 2, 4], [2, 12, 3, 4]),  # SpaceToDepth
        ([2, 3, 4, 5, 6], [2, 1, 3, 4, 5, 1, 6], [6, 1, 0, 2, 3, 5, 4], [6, 2, 3, 20]),
    ],
)
def test_wide_transposes_export_and_match_onnxruntime(
    x_shape: list[int], wide: list[int], perm: list[int], out: list[int]
) -> None:
    pytest.importorskip("coremltools", reason="the coreml extra is not installed")
    model = _chain(x_shape, wide, perm, out)
    feeds = {"x": np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)}
    (want,) = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds).values()
    (got,) = CoreMLFramework().run_ir(model, feeds).values()
    np.testing.assert_array_equal(got, want)


def test_a_transpose_that_stays_wide_is_still_refused() -> None:
    pytest.importorskip("coremltools", reason="the coreml extra is not installed")
    model = _chain([6, 36], [2, 3, 2, 3, 2, 3], [5, 3, 1, 4, 2, 0], [6, 36])
    with pytest.raises(UnsupportedOpsError) as caught:
        CoreMLFramework().run_ir(model, {"x": np.zeros((6, 36), np.float32)})
    assert "rank-6 result" in caught.value.ops[0].reason
