"""Core ML backend, op by op: single-node ONNX models exported to .mlpackage, re-imported through
the frontend and run on onnxruntime, against onnxruntime on the source model (seeded inputs).

Covers the semantics that are easy to get wrong: element types Core ML holds in another type
(int64 and narrow integers as int32, bool and double at the boundary) and indices given at run
time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.runner import run_onnxruntime

pytest.importorskip("coremltools", reason="the coreml extra is not installed")

_NUMPY = {
    TensorProto.FLOAT: np.float32,
    TensorProto.DOUBLE: np.float64,
    TensorProto.INT64: np.int64,
    TensorProto.INT32: np.int32,
    TensorProto.INT8: np.int8,
    TensorProto.UINT8: np.uint8,
    TensorProto.INT16: np.int16,
    TensorProto.UINT16: np.uint16,
    TensorProto.UINT32: np.uint32,
    TensorProto.BOOL: np.bool_,
}


def single_node(
    op: str,
    inputs: Sequence[tuple[str, int, Sequence[int]]],
    outputs: Sequence[tuple[str, int]],
    opset: int = 18,
    **attributes: Any,
) -> ir.Model:
    """A one-node model; output shapes are left to inference."""
    node = helper.make_node(op, [n for n, _, _ in inputs], [n for n, _ in outputs], **attributes)
    graph = helper.make_graph(
        [node],
        op.lower(),
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def check_against_onnxruntime(model: ir.Model, feeds: dict[str, np.ndarray]) -> None:
    """The package's outputs (re-imported) equal onnxruntime's on the source, dtypes included."""
    expected = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds)
    actual = CoreMLFramework().run_ir(model, feeds)
    assert list(actual) == list(expected)
    for name, want in expected.items():
        got = actual[name]
        assert got.dtype == want.dtype, name
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)


def random_input(rng: np.random.Generator, dtype: int, shape: Sequence[int]) -> np.ndarray:
    kind = _NUMPY[dtype]
    if kind == np.bool_:
        return rng.random(shape) > 0.5
    if np.issubdtype(kind, np.integer):
        low = 0 if np.issubdtype(kind, np.unsignedinteger) else -50
        return rng.integers(low, 50, size=shape).astype(kind)
    return rng.standard_normal(shape).astype(kind)


@pytest.mark.parametrize(
    "dtype",
    [
        TensorProto.INT8,
        TensorProto.UINT8,
        TensorProto.INT16,
        TensorProto.UINT16,
        TensorProto.UINT32,
        TensorProto.INT64,
        TensorProto.DOUBLE,
    ],
)
def test_element_types_held_in_another_type_come_back_as_they_were(dtype: int) -> None:
    model = single_node("Add", [("a", dtype, [2, 3]), ("b", dtype, [3])], [("c", dtype)])
    rng = np.random.default_rng(0)
    check_against_onnxruntime(
        model, {"a": random_input(rng, dtype, [2, 3]), "b": random_input(rng, dtype, [3])}
    )


def test_bool_inputs_and_outputs_stay_bool() -> None:
    model = single_node(
        "Xor",
        [("a", TensorProto.BOOL, [4]), ("b", TensorProto.BOOL, [4])],
        [("c", TensorProto.BOOL)],
    )
    rng = np.random.default_rng(1)
    check_against_onnxruntime(model, {"a": rng.random(4) > 0.5, "b": rng.random(4) > 0.5})


def test_gather_with_int64_indices_given_at_run_time() -> None:
    model = single_node(
        "Gather",
        [("data", TensorProto.FLOAT, [5, 3]), ("indices", TensorProto.INT64, [2, 2])],
        [("out", TensorProto.FLOAT)],
    )
    rng = np.random.default_rng(2)
    indices = np.array([[0, -1], [4, -5]], np.int64)
    check_against_onnxruntime(
        model, {"data": rng.standard_normal((5, 3)).astype(np.float32), "indices": indices}
    )


def test_an_int64_output_of_a_constant_shape_is_int64() -> None:
    model = single_node("Shape", [("x", TensorProto.FLOAT, [2, 5])], [("s", TensorProto.INT64)])
    check_against_onnxruntime(model, {"x": np.zeros((2, 5), np.float32)})


def test_mod_with_the_dividends_sign_on_mixed_sign_integers() -> None:
    model = single_node(
        "Mod",
        [("a", TensorProto.INT32, [6]), ("b", TensorProto.INT32, [6])],
        [("c", TensorProto.INT32)],
        fmod=1,
    )
    check_against_onnxruntime(
        model,
        {
            "a": np.array([-7, 7, -7, 7, 6, -6], np.int32),
            "b": np.array([3, -3, -3, 3, 3, 4], np.int32),
        },
    )


def test_cast_to_uint8_and_bitwise_not_wrap_as_uint8_does() -> None:
    cast = single_node(
        "Cast", [("x", TensorProto.INT32, [5])], [("y", TensorProto.UINT8)], to=TensorProto.UINT8
    )
    check_against_onnxruntime(cast, {"x": np.array([-1, 0, 255, 256, 300], np.int32)})
    inverted = single_node(
        "BitwiseNot", [("x", TensorProto.UINT8, [4])], [("y", TensorProto.UINT8)]
    )
    check_against_onnxruntime(inverted, {"x": np.array([0, 1, 128, 255], np.uint8)})


def test_argmax_select_last_index_picks_the_last_of_equal_maxima() -> None:
    model = single_node(
        "ArgMax",
        [("x", TensorProto.FLOAT, [2, 4])],
        [("i", TensorProto.INT64)],
        axis=1,
        keepdims=0,
        select_last_index=1,
    )
    check_against_onnxruntime(model, {"x": np.array([[1, 3, 3, 0], [5, 5, 5, 5]], np.float32)})


@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_over_axes_given_at_run_time(keepdims: int) -> None:
    model = single_node(
        "ReduceSumSquare",
        [("x", TensorProto.FLOAT, [2, 3, 4]), ("axes", TensorProto.INT64, [2])],
        [("y", TensorProto.FLOAT)],
        keepdims=keepdims,
    )
    if not keepdims:  # the output shape is declared: keepdims=0 reshapes to it
        model.graph.outputs[0].shape = ir.Shape([3])
    rng = np.random.default_rng(3)
    check_against_onnxruntime(
        model,
        {
            "x": rng.standard_normal((2, 3, 4)).astype(np.float32),
            "axes": np.array([-1, 0], np.int64),
        },
    )


def test_gather_and_scatter_elements_with_negative_indices() -> None:
    rng = np.random.default_rng(4)
    data = rng.standard_normal((3, 4)).astype(np.float32)
    indices = np.array([[0, -1], [-4, 2], [1, 3]], np.int64)
    gather = single_node(
        "GatherElements",
        [("data", TensorProto.FLOAT, [3, 4]), ("indices", TensorProto.INT64, [3, 2])],
        [("out", TensorProto.FLOAT)],
        axis=1,
    )
    check_against_onnxruntime(gather, {"data": data, "indices": indices})
    scatter = single_node(
        "ScatterElements",
        [
            ("data", TensorProto.FLOAT, [3, 4]),
            ("indices", TensorProto.INT64, [3, 2]),
            ("updates", TensorProto.FLOAT, [3, 2]),
        ],
        [("out", TensorProto.FLOAT)],
        axis=1,
        reduction="add",
    )
    updates = rng.standard_normal((3, 2)).astype(np.float32)
    check_against_onnxruntime(scatter, {"data": data, "indices": indices, "updates": updates})


def test_one_hot_trilu_and_cumsum_with_parameters_given_at_run_time() -> None:
    one_hot = single_node(
        "OneHot",
        [
            ("indices", TensorProto.INT64, [2, 3]),
            ("depth", TensorProto.INT64, []),
            ("values", TensorProto.FLOAT, [2]),
        ],
        [("out", TensorProto.FLOAT)],
        axis=1,
    )
    check_against_onnxruntime(
        one_hot,
        {
            "indices": np.array([[0, -1, 2], [3, 1, -4]], np.int64),
            "depth": np.array(4, np.int64),
            "values": np.array([-2.0, 5.0], np.float32),
        },
    )
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    trilu = single_node(
        "Trilu",
        [("x", TensorProto.FLOAT, [2, 3, 5]), ("k", TensorProto.INT64, [])],
        [("y", TensorProto.FLOAT)],
        upper=0,
    )
    check_against_onnxruntime(trilu, {"x": x, "k": np.array(1, np.int64)})
    cumsum = single_node(
        "CumSum",
        [("x", TensorProto.FLOAT, [2, 3, 5]), ("axis", TensorProto.INT64, [])],
        [("y", TensorProto.FLOAT)],
        reverse=1,
    )
    check_against_onnxruntime(cumsum, {"x": x, "axis": np.array(-2, np.int64)})


def test_space_to_depth_in_crd_mode() -> None:
    model = single_node(
        "SpaceToDepth",
        [("x", TensorProto.FLOAT, [1, 2, 4, 6])],
        [("y", TensorProto.FLOAT)],
        opset=28,
        blocksize=2,
        mode="CRD",
    )
    x = np.arange(48, dtype=np.float32).reshape(1, 2, 4, 6)
    expected = x.reshape(1, 2, 2, 2, 3, 2).transpose(0, 1, 3, 5, 2, 4).reshape(1, 8, 2, 3)
    actual = CoreMLFramework().run_ir(model, {"x": x})
    np.testing.assert_array_equal(actual["y"], expected)  # onnxruntime lacks SpaceToDepth-28


@pytest.mark.parametrize(
    ("op", "dtype"),
    [
        ("BitwiseAnd", TensorProto.INT8),
        ("BitwiseXor", TensorProto.UINT8),
        ("BitwiseOr", TensorProto.INT32),
    ],
)
def test_bitwise_ops_bit_by_bit_on_negative_and_unsigned_values(op: str, dtype: int) -> None:
    model = single_node(op, [("a", dtype, [6]), ("b", dtype, [6])], [("c", dtype)])
    kind = _NUMPY[dtype]
    info = np.iinfo(kind)
    a = np.array([info.min, -1 if info.min else 200, 0, 5, info.max, 77], np.int64).astype(kind)
    b = np.array([info.max, 3, info.min, -6 if info.min else 250, 1, 99], np.int64).astype(kind)
    check_against_onnxruntime(model, {"a": a, "b": b})


@pytest.mark.parametrize("equation", ["bij,bkj->kbi", "ij,jk", "ijk->j"])
def test_einsum_as_broadcast_products_and_sums(equation: str) -> None:
    terms = equation.split("->")[0].split(",")
    sizes = {"b": 2, "i": 3, "j": 4, "k": 5}
    inputs = [(f"x{n}", TensorProto.FLOAT, [sizes[c] for c in t]) for n, t in enumerate(terms)]
    model = single_node("Einsum", inputs, [("y", TensorProto.FLOAT)], opset=12, equation=equation)
    rng = np.random.default_rng(6)
    feeds = {name: rng.standard_normal(shape).astype(np.float32) for name, _, shape in inputs}
    check_against_onnxruntime(model, feeds)


@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
def test_cumprod_products_slice_by_slice(exclusive: int, reverse: int) -> None:
    # onnxruntime has no CumProd yet: numpy's cumprod is the oracle, shifted by hand.
    x = np.random.default_rng(4).integers(-3, 4, size=(3, 4)).astype(np.float32)
    node = helper.make_node("CumProd", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)
    graph = helper.make_graph(
        [node],
        "cumprod",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("axis", TensorProto.INT64, [], [1])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26)])
    model = ir.from_proto(proto)
    ordered = x[:, ::-1] if reverse else x
    if exclusive:
        ordered = np.concatenate([np.ones((3, 1), np.float32), ordered[:, :-1]], axis=1)
    expected = np.cumprod(ordered, axis=1)
    expected = expected[:, ::-1] if reverse else expected
    (actual,) = CoreMLFramework().run_ir(model, {"x": x}).values()
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize(
    ("starts", "ends", "axes", "steps"),
    [
        ([-1, 20], [-100, 0], [-1, 0], [-2, -3]),  # backward, starts clamped into range
        ([1, -3], [1000, 4], [2, 1], [2, 1]),  # forward, a negative start
    ],
)
def test_slice_by_bounds_given_at_run_time(
    starts: list[int], ends: list[int], axes: list[int], steps: list[int]
) -> None:
    x = np.random.default_rng(5).standard_normal((6, 5, 7)).astype(np.float32)
    bounds = {
        name: np.array(values, np.int64)
        for name, values in zip(
            ("starts", "ends", "axes", "steps"), (starts, ends, axes, steps), strict=True
        )
    }
    # The output's shape declared, as exported models and onnx's node tests declare it.
    expected_shape = run_onnxruntime(
        single_node(
            "Slice",
            [("x", TensorProto.FLOAT, x.shape)]
            + [(name, TensorProto.INT64, (2,)) for name in bounds],
            [("y", TensorProto.FLOAT)],
        ),
        {"x": x, **bounds},
    )["y"].shape
    node = helper.make_node("Slice", ["x", *bounds], ["y"])
    graph = helper.make_graph(
        [node],
        "slice",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)]
        + [helper.make_tensor_value_info(name, TensorProto.INT64, [2]) for name in bounds],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, expected_shape)],
    )
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    check_against_onnxruntime(model, {"x": x, **bounds})


@pytest.mark.parametrize(
    ("op", "expected"), [("ReduceSum", 0.0), ("ReduceProd", 1.0), ("ReduceMin", np.inf)]
)
def test_reduction_of_an_empty_axis_given_at_run_time(op: str, expected: float) -> None:
    # Hand-computed: the reduction of nothing is the operation's identity element.
    x = np.zeros((2, 0, 4), np.float32)
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=1)
    graph = helper.make_graph(
        [node],
        "empty",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape),
            helper.make_tensor_value_info("axes", TensorProto.INT64, [1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1, 4])],
    )
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    actual = CoreMLFramework().run_ir(model, {"x": x, "axes": np.array([1], np.int64)})["y"]
    np.testing.assert_array_equal(actual, np.full((2, 1, 4), expected, np.float32))


def test_reshape_allowzero_to_an_empty_shape_given_at_run_time() -> None:
    # allowzero=1: the 0 is a length, not a copy of the input's dim (which MIL's reshape reads).
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], allowzero=1)
    graph = helper.make_graph(
        [node],
        "reshape",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [0, 3, 4]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4, 0])],
    )
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    feeds = {"x": np.zeros((0, 3, 4), np.float32), "shape": np.array([3, 4, 0], np.int64)}
    check_against_onnxruntime(model, feeds)
    assert CoreMLFramework().run_ir(model, feeds)["y"].shape == (3, 4, 0)
