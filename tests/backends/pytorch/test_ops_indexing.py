"""Indexing converters (``ops/indexing.py``): onnx's node tests, hand-computed corners, export."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx.reference import ReferenceEvaluator

torch = pytest.importorskip("torch")

from unframe.backends.pytorch import export_program  # noqa: E402
from unframe.backends.pytorch.pt2_file import outputs_to_numpy, tensors_from_numpy  # noqa: E402

from node_family import check_node_case, family_cases, ops_without_node_tests  # noqa: E402
from single_node import run_single_node, single_node_model  # noqa: E402

OPS = [
    "GatherElements", "GatherND", "ScatterElements", "ScatterND", "Scatter", "TensorScatter",
    "OneHot", "NonZero", "Compress", "Unique", "ReverseSequence", "Range", "Tile", "Trilu",
    "EyeLike", "Einsum", "DepthToSpace", "SpaceToDepth", "CenterCropPad", "ArrayFeatureExtractor",
]  # fmt: skip


#: Node tests of the ops above known not to pass, each with its reason.
KNOWN_FAILURES: dict[str, str] = {}


@pytest.mark.parametrize("name", sorted(family_cases(tuple(OPS))))
def test_node_case(name: str) -> None:
    check_node_case(name, OPS, KNOWN_FAILURES)


def test_every_op_has_node_tests() -> None:
    assert ops_without_node_tests(OPS) == []


# -- hand-computed cases ---------------------------------------------------------------------------


_model = single_node_model
_run = run_single_node


def test_negative_indices_count_from_the_end() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    (got,) = _run("GatherElements", [x, np.array([[-1, 0], [1, -4], [3, 2]])], opset=13, axis=1)
    np.testing.assert_array_equal(got, np.array([[3, 0], [5, 4], [11, 10]], np.float32))
    (got,) = _run("GatherND", [x, np.array([[-1, -1], [0, 1]])], opset=13)
    np.testing.assert_array_equal(got, np.array([11, 1], np.float32))
    updates = np.array([100, 200], dtype=np.float32)
    (got,) = _run("ScatterND", [x, np.array([[-1, -1], [0, 1]]), updates], opset=18)
    want = x.copy()
    want[-1, -1], want[0, 1] = 100, 200
    np.testing.assert_array_equal(got, want)


def test_gather_nd_batch_dims() -> None:
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    indices = np.array([[[2], [0]], [[1], [1]]], dtype=np.int64)
    (got,) = _run("GatherND", [x, indices], opset=13, batch_dims=1)
    np.testing.assert_array_equal(got, np.stack([x[0][[2, 0]], x[1][[1, 1]]]))


def test_scatter_reductions_with_duplicate_indices() -> None:
    x = np.ones((2, 3), dtype=np.int64)
    indices = np.array([[0, 0, 2]], dtype=np.int64)
    updates = np.array([[5, 7, 3]], dtype=np.int64)
    for reduction, row in (("add", [13, 1, 4]), ("mul", [35, 1, 3]), ("max", [7, 1, 3])):
        (got,) = _run(
            "ScatterElements", [x, indices, updates], opset=18, axis=1, reduction=reduction
        )
        np.testing.assert_array_equal(got, np.array([row, [1, 1, 1]]))
    nd_indices = np.array([[1], [1]], dtype=np.int64)
    nd_updates = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
    (got,) = _run("ScatterND", [x, nd_indices, nd_updates], opset=18, reduction="min")
    np.testing.assert_array_equal(got, np.array([[1, 1, 1], [1, 1, 1]]))
    (got,) = _run("ScatterND", [x, nd_indices, nd_updates], opset=18, reduction="add")
    np.testing.assert_array_equal(got, np.array([[1, 1, 1], [6, 8, 10]]))


def test_one_hot_wraps_negatives_and_drops_out_of_range() -> None:
    indices = np.array([0, -1, 5, 2], dtype=np.int64)
    depth = np.array(3, dtype=np.int64)
    values = np.array([0, 9], dtype=np.int32)
    for constants in ((), (1,)):
        (got,) = _run("OneHot", [indices, depth, values], opset=11, constants=constants, axis=0)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(
            got, np.array([[9, 0, 0, 0], [0, 0, 0, 0], [0, 9, 0, 9]], np.int32)
        )


def test_unique_unsorted_order_of_first_occurrence() -> None:
    x = np.array([2, 1, 1, 3, 4, 3], dtype=np.float32)
    y, indices, inverse, counts = _run("Unique", [x], opset=11, outputs=4, sorted=0)
    np.testing.assert_array_equal(y, np.array([2, 1, 3, 4], np.float32))
    np.testing.assert_array_equal(indices, np.array([0, 1, 3, 4]))
    np.testing.assert_array_equal(inverse, np.array([0, 1, 1, 2, 3, 2]))
    np.testing.assert_array_equal(counts, np.array([1, 2, 2, 1]))
    assert {indices.dtype, inverse.dtype, counts.dtype} == {np.dtype(np.int64)}


def test_range_tile_trilu_eye_like() -> None:
    scalar = np.array
    (got,) = _run("Range", [scalar(10), scalar(4), scalar(-3)], opset=11)
    np.testing.assert_array_equal(got, np.array([10, 7]))
    (got,) = _run(
        "Range",
        [scalar(1.0, np.float16), scalar(2.0, np.float16), scalar(0.25, np.float16)],
        opset=27,
    )
    np.testing.assert_array_equal(got, np.array([1.0, 1.25, 1.5, 1.75], np.float16))
    x = np.arange(6, dtype=np.int8).reshape(2, 3)
    (got,) = _run("Tile", [x, np.array([2, 1])], opset=13, constants=(1,))
    np.testing.assert_array_equal(got, np.tile(x, (2, 1)))
    (got,) = _run("Trilu", [x, scalar(-1)], opset=14, upper=0)
    np.testing.assert_array_equal(got, np.tril(x, -1))
    (got,) = _run("EyeLike", [x], opset=22, k=1, dtype=onnx.TensorProto.DOUBLE)
    np.testing.assert_array_equal(got, np.eye(2, 3, k=1))


def test_reverse_sequence_batch_major() -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    lengths = np.array([3, 1], dtype=np.int64)
    (got,) = _run("ReverseSequence", [x, lengths], opset=10, batch_axis=0, time_axis=1)
    np.testing.assert_array_equal(got, np.array([[2, 1, 0, 3], [4, 5, 6, 7]], np.float32))


# -- export --------------------------------------------------------------------------------------


def _export_and_compare(model: onnx.ModelProto, feeds: list[np.ndarray]) -> None:
    module = export_program(ir.from_proto(model)).module()
    with torch.no_grad():
        got = list(outputs_to_numpy(module(*tensors_from_numpy(feeds))).values())
    names = [value.name for value in model.graph.input]
    want = ReferenceEvaluator(model).run(None, dict(zip(names, feeds, strict=True)))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_gathers_and_scatters_export_with_dynamic_dims() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    index = rng.integers(-4, 4, size=(5, 6)).astype(np.int64)
    dims = {0: ["n", "w"], 1: ["n", "k"]}
    model = _model("GatherElements", [x, index], 13, {}, 1, dims, axis=1)
    _export_and_compare(model, [x, index])
    nd = rng.integers(0, 4, size=(6, 1)).astype(np.int64)
    updates = rng.standard_normal((6, 4)).astype(np.float32)
    dims = {0: [5, "w"], 1: ["k", 1], 2: ["k", "w"]}
    model = _model("ScatterND", [x, nd, updates], 18, {}, 1, dims, reduction="add")
    _export_and_compare(model, [x, nd, updates])


def test_layout_ops_export_with_dynamic_dims() -> None:
    x = np.random.default_rng(1).standard_normal((3, 8, 6, 4)).astype(np.float32)
    dims = {0: ["n", 8, "h", "w"]}
    _export_and_compare(_model("DepthToSpace", [x], 13, {}, 1, dims, blocksize=2, mode="CRD"), [x])
    _export_and_compare(_model("Trilu", [x, None], 14, {}, 1, dims), [x])
    shape = np.array([5, 3], dtype=np.int64)
    model = _model("CenterCropPad", [x, shape], 18, {1: shape}, 1, dims, axes=[2, 3])
    _export_and_compare(model, [x])
