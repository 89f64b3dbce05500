"""Reduction converters (``ops/reduce.py``): onnx's node tests, hand-computed corners, export."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir
import pytest
from onnx.reference import ReferenceEvaluator

torch = pytest.importorskip("torch")

from unframe.backends.pytorch import export_program  # noqa: E402
from unframe.backends.pytorch.pt2_file import outputs_to_numpy, tensors_from_numpy  # noqa: E402

from node_family import check_node_case, family_cases, ops_without_node_tests  # noqa: E402
from single_node import run_single_node, single_node_model  # noqa: E402

OPS = [
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "CumSum",
    "CumProd", "TopK",
]  # fmt: skip


@pytest.mark.parametrize("name", sorted(family_cases(tuple(OPS))))
def test_node_case(name: str) -> None:
    check_node_case(name, OPS, None)


def test_every_op_has_node_tests() -> None:
    assert ops_without_node_tests(OPS) == []


# -- hand-computed cases ---------------------------------------------------------------------------


_model = single_node_model
_run = run_single_node


def test_noop_with_empty_axes_keeps_the_elementwise_part() -> None:
    x = np.array([[-1.0, 2.0], [3.0, -4.0]], dtype=np.float32)
    empty = np.zeros((0,), dtype=np.int64)
    for constants in ((), (1,)):
        (got,) = _run("ReduceL1", [x, empty], constants=constants, noop_with_empty_axes=1)
        np.testing.assert_array_equal(got, np.abs(x))
        (got,) = _run("ReduceSumSquare", [x, empty], constants=constants, noop_with_empty_axes=1)
        np.testing.assert_array_equal(got, x * x)
    # Without noop, an empty axes list reduces every axis.
    (got,) = _run("ReduceSum", [x, empty], opset=13, keepdims=0)
    np.testing.assert_array_equal(got, np.array(0.0, dtype=np.float32))
    (got,) = _run("ReduceSum", [x, None], opset=13, noop_with_empty_axes=1)
    np.testing.assert_array_equal(got, x)


def test_empty_set_gives_the_identity() -> None:
    x = np.zeros((2, 0, 3), dtype=np.int32)
    axes = np.array([1], dtype=np.int64)
    (high,) = _run("ReduceMax", [x, axes], constants=(1,), keepdims=0)
    np.testing.assert_array_equal(high, np.full((2, 3), np.iinfo(np.int32).min, np.int32))
    (low,) = _run("ReduceMin", [x.astype(np.float32), axes], constants=(1,))
    np.testing.assert_array_equal(low, np.full((2, 1, 3), np.inf, np.float32))
    (prod,) = _run("ReduceProd", [x, axes], constants=(1,))
    np.testing.assert_array_equal(prod, np.ones((2, 1, 3), np.int32))


def test_integer_mean_truncates_and_keeps_dtype() -> None:
    x = np.array([[1, 2], [-3, -4]], dtype=np.int32)
    (got,) = _run("ReduceMean", [x], opset=13, axes=[1], keepdims=0)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.array([1, -3], np.int32))


def test_unsigned_reductions() -> None:
    x = np.array([[4_000_000_000, 1], [7, 9]], dtype=np.uint32)
    (got,) = _run("ReduceMax", [x], opset=13, axes=[0])
    np.testing.assert_array_equal(got, np.array([[4_000_000_000, 9]], np.uint32))
    (idx,) = _run("ArgMin", [x], opset=13, axis=1, keepdims=0)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx, np.array([1, 0]))


def test_arg_max_select_last_index() -> None:
    x = np.array([[2, 5, 5], [7, 7, 1]], dtype=np.float32)
    (first,) = _run("ArgMax", [x], opset=13, axis=1)
    (last,) = _run("ArgMax", [x], opset=13, axis=1, select_last_index=1)
    np.testing.assert_array_equal(first, np.array([[1], [0]]))
    np.testing.assert_array_equal(last, np.array([[2], [1]]))


def test_cumulative_exclusive_reverse() -> None:
    x = np.array([1, 2, 3, 4], dtype=np.int64)
    axis = np.array(0, dtype=np.int32)
    (got,) = _run("CumSum", [x, axis], opset=14, exclusive=1, reverse=1)
    np.testing.assert_array_equal(got, np.array([9, 7, 4, 0]))
    (got,) = _run("CumProd", [x, axis], opset=26, exclusive=1)
    np.testing.assert_array_equal(got, np.array([1, 1, 2, 6]))


def test_top_k_ties_keep_index_order() -> None:
    x = np.array([[1.0, 3.0, 3.0, 2.0, 3.0]], dtype=np.float32)
    k = np.array([2], dtype=np.int64)
    values, indices = _run("TopK", [x, k], opset=11, outputs=2)
    np.testing.assert_array_equal(values, np.array([[3.0, 3.0]], np.float32))
    np.testing.assert_array_equal(indices, np.array([[1, 2]]))
    values, indices = _run("TopK", [x, k], opset=11, outputs=2, largest=0, constants=(1,))
    np.testing.assert_array_equal(indices, np.array([[0, 3]]))


# -- export --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "opset", "attributes"),
    [
        ("ReduceMax", 18, {}),
        ("ReduceLogSumExp", 18, {"keepdims": 0}),
        ("ReduceProd", 18, {"keepdims": 0}),
        ("ReduceSum", 13, {}),
    ],
)
def test_reductions_export_with_dynamic_dims(op: str, opset: int, attributes: Any) -> None:
    x = np.zeros((2, 3, 4), dtype=np.float32)
    axes = np.array([-1, 0], dtype=np.int64)
    model = _model(op, [x, axes], opset, {1: axes}, 1, {0: ["n", 3, "w"]}, **attributes)
    program = export_program(ir.from_proto(model))
    module = program.module()
    for n, w in ((3, 5), (6, 2)):
        data = np.random.default_rng(n).standard_normal((n, 3, w)).astype(np.float32)
        with torch.no_grad():
            (got,) = outputs_to_numpy(module(torch.from_numpy(data))).values()
        reference = ReferenceEvaluator(model)
        (want,) = reference.run(None, {"x0": data})
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_cumsum_and_arg_max_export_with_dynamic_dims() -> None:
    x = np.zeros((2, 3), dtype=np.float32)
    axis = np.array(1, dtype=np.int64)
    for op, opset, constants, attributes in (
        ("CumSum", 14, {1: axis}, {"exclusive": 1}),
        ("ArgMax", 13, {}, {"axis": 1, "select_last_index": 1}),
    ):
        inputs: list[np.ndarray | None] = [x, axis] if op == "CumSum" else [x]
        model = _model(op, inputs, opset, constants, 1, {0: ["n", "m"]}, **attributes)
        module = export_program(ir.from_proto(model)).module()
        data = np.round(np.random.default_rng(0).standard_normal((5, 7))).astype(np.float32)
        with torch.no_grad():
            (got,) = outputs_to_numpy(module(torch.from_numpy(data))).values()
        (want,) = ReferenceEvaluator(model).run(None, {"x0": data})
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_top_k_with_a_run_time_k_exports() -> None:
    x = np.zeros((2, 3), dtype=np.float32)
    k = np.array([2], dtype=np.int64)
    model = _model("TopK", [x, k], 11, {}, 2, {0: ["n", "m"]}, largest=0)
    module = export_program(ir.from_proto(model)).module()
    data = np.random.default_rng(3).standard_normal((4, 9)).astype(np.float32)
    for size in (1, 5):
        feeds = [data, np.array([size], dtype=np.int64)]
        with torch.no_grad():
            got = list(outputs_to_numpy(module(*tensors_from_numpy(feeds))).values())
        want = ReferenceEvaluator(model).run(None, {"x0": feeds[0], "x1": feeds[1]})
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
