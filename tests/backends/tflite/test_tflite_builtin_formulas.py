"""The TFLite export's builtin-only forms of what TFLite's builtins lack, run on LiteRT.

Each model is converted to ``.tflite`` and run on LiteRT (ai-edge-litert); the oracle is
onnxruntime on the same ONNX model (exact equality for integers, rtol 1e-5 for float32).
TensorFlow and LiteRT are imported once per module; the models are tiny.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

pytest.importorskip("tensorflow", reason="the tensorflow extra is not installed")
pytest.importorskip("ai_edge_litert", reason="the tflite extra is not installed")
ort = pytest.importorskip("onnxruntime")

from unframe.backends.tflite import run_export, to_tflite  # noqa: E402

RTOL, ATOL = 1e-5, 1e-6


def _model(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, tuple[int, list[int] | None]],
    outputs: dict[str, int],
    opset: int = 18,
    initializers: list[onnx.TensorProto] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, (t, s) in inputs.items()],
        [helper.make_tensor_value_info(n, t, None) for n, t in outputs.items()],
        initializer=initializers or [],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _assert_litert_matches_onnxruntime(
    proto: onnx.ModelProto, feed: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in proto.graph.output]
    arrays = {name: np.asarray(value) for name, value in feed.items()}
    expected = dict(zip(names, session.run(None, arrays), strict=True))
    got = run_export(to_tflite(ir.from_proto(proto)), feed)
    for name, want in expected.items():
        assert got[name].dtype == want.dtype, name
        assert got[name].shape == want.shape, name
        if want.dtype.kind in "iub":
            np.testing.assert_array_equal(got[name], want, err_msg=name)
        else:
            np.testing.assert_allclose(got[name], want, rtol=RTOL, atol=ATOL, err_msg=name)
    return got


def test_scan_and_loop_gather_their_slices_without_tensor_lists() -> None:
    """A Scan whose body output's shape ONNX does not declare (TensorFlow's trace gives it) and
    a Loop with a trip count known only at run time: their slices gather in growing tensors."""
    body_in = [
        helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("row", TensorProto.FLOAT, None),
    ]
    body_out = [
        helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, None),
        helper.make_tensor_value_info("doubled", TensorProto.FLOAT, None),
    ]
    scan_body = helper.make_graph(
        [
            helper.make_node("Add", ["acc_in", "row"], ["acc_out"]),
            helper.make_node("Add", ["acc_out", "acc_out"], ["doubled"]),
        ],
        "scan_body",
        body_in,
        body_out,
    )
    loop_body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Mul", ["value_in", "factor"], ["value_out"]),
            helper.make_node("Cast", ["step"], ["step_float"], to=TensorProto.FLOAT),
            helper.make_node("Add", ["value_out", "step_float"], ["per_step"]),
        ],
        "loop_body",
        [
            helper.make_tensor_value_info("step", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("value_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("value_out", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("per_step", TensorProto.FLOAT, None),
        ],
    )
    nodes = [
        helper.make_node(
            "Scan", ["initial", "rows"], ["total", "doubles"], num_scan_inputs=1, body=scan_body
        ),
        helper.make_node("Loop", ["trips", "", "start"], ["final", "steps"], body=loop_body),
    ]
    factor = helper.make_tensor("factor", TensorProto.FLOAT, [], [1.5])
    proto = _model(
        nodes,
        {
            "initial": (TensorProto.FLOAT, [3]),
            "rows": (TensorProto.FLOAT, [4, 3]),
            "trips": (TensorProto.INT64, []),
            "start": (TensorProto.FLOAT, [2]),
        },
        dict.fromkeys(["total", "doubles", "final", "steps"], TensorProto.FLOAT),
        initializers=[factor],
    )
    rng = np.random.default_rng(0)
    feed = {
        "initial": rng.standard_normal(3).astype(np.float32),
        "rows": rng.standard_normal((4, 3)).astype(np.float32),
        "trips": np.array(5, np.int64),
        "start": rng.standard_normal(2).astype(np.float32),
    }
    _assert_litert_matches_onnxruntime(proto, feed)


def test_scalar_inputs_reach_litert_as_scalars() -> None:
    """Range takes 0-d start, limit and delta (LiteRT's RANGE refuses 1-element tensors), fed
    as numpy scalars as onnx's test data holds them; a negative int32 delta counts down."""
    proto = _model(
        [
            helper.make_node("Range", ["start", "limit", "delta"], ["counted"]),
            helper.make_node("Range", ["first", "last", "stride"], ["down"]),
        ],
        {
            "start": (TensorProto.FLOAT, []),
            "limit": (TensorProto.FLOAT, []),
            "delta": (TensorProto.FLOAT, []),
            "first": (TensorProto.INT32, []),
            "last": (TensorProto.INT32, []),
            "stride": (TensorProto.INT32, []),
        },
        {"counted": TensorProto.FLOAT, "down": TensorProto.INT32},
    )
    feed = {
        "start": np.float32(1.0),
        "limit": np.float32(5.5),
        "delta": np.float32(0.75),
        "first": np.int32(10),
        "last": np.int32(-3),
        "stride": np.int32(-4),
    }
    _assert_litert_matches_onnxruntime(proto, feed)


_INTEGER_TYPES = {
    TensorProto.INT8: np.int8,
    TensorProto.INT16: np.int16,
    TensorProto.INT32: np.int32,
    TensorProto.UINT8: np.uint8,
    TensorProto.UINT16: np.uint16,
    TensorProto.UINT32: np.uint32,
}


def _edge_integers(dtype: type, rng: np.random.Generator, count: int) -> np.ndarray:
    """Random values of ``dtype`` with its extremes, -1 and 0 among them."""
    info = np.iinfo(dtype)
    edges = np.array([info.min, info.max, 0, 1, info.max // 2, info.min // 2], dtype=np.int64)
    if info.min < 0:
        edges = np.append(edges, -1)
    drawn = rng.integers(info.min, int(info.max) + 1, count - len(edges), dtype=np.int64)
    return np.concatenate([edges, drawn]).astype(dtype)


@pytest.mark.parametrize("onnx_type", sorted(_INTEGER_TYPES))
def test_bitwise_and_or_not_xor_from_xor_and_wrapping_arithmetic(onnx_type: int) -> None:
    """And and Or from XOR, ADD, SUB and an arithmetic shift in int32 (the top bit fixed by
    the operands' signs), Not as XOR with all ones: every bit as onnxruntime's."""
    dtype = _INTEGER_TYPES[onnx_type]
    nodes = [
        helper.make_node("BitwiseAnd", ["a", "b"], ["both"]),
        helper.make_node("BitwiseOr", ["a", "b"], ["either"]),
        helper.make_node("BitwiseXor", ["a", "b"], ["one"]),
        helper.make_node("BitwiseNot", ["a"], ["flipped"]),
    ]
    proto = _model(
        nodes,
        {"a": (onnx_type, [48]), "b": (onnx_type, [48])},
        dict.fromkeys(["both", "either", "one", "flipped"], onnx_type),
    )
    rng = np.random.default_rng(onnx_type)
    a = _edge_integers(dtype, rng, 48)
    b = np.concatenate([a[:8], a[::-1][:8], _edge_integers(dtype, rng, 32)])
    _assert_litert_matches_onnxruntime(proto, {"a": a, "b": b})


_SHIFTS = [(t, d) for t in sorted(_INTEGER_TYPES) for d in ("LEFT", "RIGHT")]


@pytest.mark.parametrize(
    ("onnx_type", "direction"),
    [*_SHIFTS, (TensorProto.INT64, "LEFT"), (TensorProto.INT64, "RIGHT")],
)
def test_bit_shift_wraps_and_fills_as_onnx(onnx_type: int, direction: str) -> None:
    """Left shifts that overflow wrap (the product with 2**y keeps the low bits), shifts by a
    negative amount or by the width or more give ONNX's fill; onnx's reference is the oracle
    (onnxruntime's BitShift takes unsigned types only)."""
    from onnx.reference import ReferenceEvaluator

    dtype = np.int64 if onnx_type == TensorProto.INT64 else _INTEGER_TYPES[onnx_type]
    bits = np.dtype(dtype).itemsize * 8
    proto = _model(
        [helper.make_node("BitShift", ["x", "y"], ["z"], direction=direction)],
        {"x": (onnx_type, [40]), "y": (onnx_type, [40])},
        {"z": onnx_type},
    )
    rng = np.random.default_rng(bits)
    x = (
        _edge_integers(dtype, rng, 40)
        if dtype != np.int64
        else rng.integers(-(2**62), 2**62, 40).astype(np.int64)
    )
    amounts = np.concatenate([np.arange(bits + 2), rng.integers(0, bits, 40)])[:40]
    if np.iinfo(dtype).min < 0:
        amounts[-4:] = [-1, -bits, bits + 5, np.iinfo(dtype).max]
    y = amounts.astype(dtype)
    (expected,) = ReferenceEvaluator(proto).run(None, {"x": x, "y": y})
    got = run_export(to_tflite(ir.from_proto(proto)), {"x": x, "y": y})["z"]
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_bit_ops_no_builtin_holds_are_refused_by_node() -> None:
    """A uint64 shift and uint64 bitwise ops have no TFLite builtin: each node is listed with
    the TF op TFLiteConverter named, nothing approximated."""
    from unframe.shared_ir.errors import UnsupportedOpsError

    proto = _model(
        [
            helper.make_node("BitShift", ["u", "u"], ["shifted"], direction="RIGHT", name="shr"),
            helper.make_node("BitwiseAnd", ["u", "u"], ["masked"], name="and_u64"),
        ],
        {"u": (TensorProto.UINT64, [3])},
        {"shifted": TensorProto.UINT64, "masked": TensorProto.UINT64},
    )
    with pytest.raises(UnsupportedOpsError) as error:
        to_tflite(ir.from_proto(proto))
    reasons = {op.node: op.reason for op in error.value.ops}
    assert set(reasons) == {"shr", "and_u64"}
    assert "RightShift" in reasons["shr"] and "BitwiseAnd" in reasons["and_u64"]


def test_reductions_over_axes_fed_at_run_time() -> None:
    """ReduceMean and ReduceMax over int64 axes given at run time (TFLite's MEAN takes int32
    axes), negative axes and keepdims both ways included."""
    proto = _model(
        [
            helper.make_node("ReduceMean", ["x", "axes"], ["mean"], keepdims=1),
            helper.make_node("ReduceMax", ["x", "axes"], ["largest"], keepdims=0),
        ],
        {"x": (TensorProto.FLOAT, [3, 4, 5]), "axes": (TensorProto.INT64, [2])},
        {"mean": TensorProto.FLOAT, "largest": TensorProto.FLOAT},
    )
    x = np.random.default_rng(7).standard_normal((3, 4, 5)).astype(np.float32)
    for axes in ([0, 2], [-1, 1]):
        _assert_litert_matches_onnxruntime(proto, {"x": x, "axes": np.array(axes, np.int64)})


def test_float16_values_are_held_in_float32_and_rounded_after_each_op() -> None:
    """TFLite computes nothing in float16: MatMul, Softmax, Concat and Transpose on float16
    inputs and a float16 weight run in float32, each result rounded to float16; the signature
    keeps float16 in and out. Within one float16 ulp of onnxruntime's float16 kernels."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
        helper.make_node("Concat", ["probs", "x"], ["joined"], axis=-1),
        helper.make_node("Transpose", ["joined"], ["flipped"], perm=[1, 0]),
        helper.make_node("Cast", ["wide"], ["narrowed"], to=TensorProto.FLOAT16),
        helper.make_node("Add", ["narrowed", "narrowed"], ["doubled"]),
    ]
    rng = np.random.default_rng(16)
    weight = onnx.numpy_helper.from_array(rng.standard_normal((5, 5)).astype(np.float16), "w")
    proto = _model(
        nodes,
        {"x": (TensorProto.FLOAT16, [3, 5]), "wide": (TensorProto.FLOAT, [7])},
        {"flipped": TensorProto.FLOAT16, "doubled": TensorProto.FLOAT16},
        initializers=[weight],
    )
    feed = {
        "x": rng.standard_normal((3, 5)).astype(np.float16),
        # float16's rounding ties and its overflow to inf.
        "wide": np.array(
            [1.00048828125, 1.00146484375, 3.0, -3.0e-3, 70000.0, -1e5, 0.1], np.float32
        ),
    }
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    flipped, doubled = session.run(None, feed)
    got = run_export(to_tflite(ir.from_proto(proto)), feed)
    assert got["flipped"].dtype == np.float16 and got["doubled"].dtype == np.float16
    np.testing.assert_allclose(got["flipped"], flipped, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(got["doubled"], doubled)


def test_int64_division_and_truncated_remainders_are_exact() -> None:
    """int64 Div (which FLOOR_DIV lacks) from FLOOR_MOD and corrected float32 estimates, exact
    up to 2**62 with either sign; uint32 Div (run in int64) beyond 2**31; Mod with fmod=1 (C's
    remainder) from FLOOR_MOD, every sign pair: all equal to onnxruntime's."""
    proto = _model(
        [
            helper.make_node("Div", ["a", "b"], ["quotient"]),
            helper.make_node("Mod", ["a", "b"], ["remainder"], fmod=1),
            helper.make_node("Div", ["u", "v"], ["unsigned_quotient"]),
            helper.make_node("Mod", ["i", "j"], ["int32_remainder"], fmod=1),
        ],
        {
            "a": (TensorProto.INT64, [40]),
            "b": (TensorProto.INT64, [40]),
            "u": (TensorProto.UINT32, [6]),
            "v": (TensorProto.UINT32, [6]),
            "i": (TensorProto.INT32, [8]),
            "j": (TensorProto.INT32, [8]),
        },
        {
            "quotient": TensorProto.INT64,
            "remainder": TensorProto.INT64,
            "unsigned_quotient": TensorProto.UINT32,
            "int32_remainder": TensorProto.INT32,
        },
    )
    rng = np.random.default_rng(64)
    a = np.concatenate(
        [
            [7, -7, 7, -7, 0, 2**62, -(2**62), 2**62 - 1, 6, -6],
            rng.integers(-(2**62), 2**62, 15),
            rng.integers(-1000, 1000, 15),
        ]
    ).astype(np.int64)
    b = np.concatenate(
        [
            [2, 2, -2, -2, 5, 3, 7, -(2**31) - 1, 3, -3],
            rng.integers(1, 2**40, 8) * rng.choice([-1, 1], 8),
            rng.integers(-9, 10, 7) | 1,
            rng.integers(-50, 50, 15) | 1,
        ]
    ).astype(np.int64)
    feed = {
        "a": a,
        "b": b,
        "u": np.array([4294967295, 3000000000, 7, 2**31, 10, 0], np.uint32),
        "v": np.array([2, 7, 7, 3, 4294967295, 9], np.uint32),
        "i": np.array([7, -7, 7, -7, 0, 5, -2147483647, 2147483647], np.int32),
        "j": np.array([3, 3, -3, -3, 4, 5, 10, -10], np.int32),
    }
    _assert_litert_matches_onnxruntime(proto, feed)


def test_slices_of_more_dims_than_strided_slice_takes() -> None:
    """Slices of a rank-7 tensor (TFLite's STRIDED_SLICE takes 5 dims) on two axes apart, with
    a negative start and a negative step: the whole axes between are merged by reshapes."""
    constants = [
        helper.make_tensor("starts", TensorProto.INT64, [2], [1, -1]),
        helper.make_tensor("ends", TensorProto.INT64, [2], [3, -10]),
        helper.make_tensor("axes", TensorProto.INT64, [2], [1, 5]),
        helper.make_tensor("steps", TensorProto.INT64, [2], [1, -2]),
    ]
    proto = _model(
        [helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])],
        {"x": (TensorProto.FLOAT, [2, 4, 3, 2, 3, 5, 2])},
        {"y": TensorProto.FLOAT},
        initializers=constants,
    )
    x = np.random.default_rng(7).standard_normal((2, 4, 3, 2, 3, 5, 2)).astype(np.float32)
    _assert_litert_matches_onnxruntime(proto, {"x": x})


def test_mish_keeps_its_tiny_values() -> None:
    """Mish as x n / (n + 2) with n = e**x (e**x + 2), which is x tanh(log(1 + e**x)) with no
    tanh of a softplus that lost e**x: far below 0, where the values are e**x-small, and far
    above, where e**x overflows, as onnxruntime's."""
    proto = _model(
        [helper.make_node("Mish", ["x"], ["mished"])],
        {"x": (TensorProto.FLOAT, [12])},
        {"mished": TensorProto.FLOAT},
    )
    x = np.array([-40, -30, -20, -9, -1, -1e-3, 0, 1e-3, 1, 9, 25, 100], np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (mished,) = session.run(None, {"x": x})
    got = run_export(to_tflite(ir.from_proto(proto)), {"x": x})
    np.testing.assert_allclose(got["mished"], mished, rtol=1e-5, atol=0)


@pytest.mark.parametrize("reduction", ["max", "min"])
def test_scatter_nd_max_and_min_combine_duplicates_in_turn(reduction: str) -> None:
    """ScatterND with reduction max or min (no TFLite builtin): one update at a time, rows
    hit twice combined with both updates, as onnxruntime's."""
    proto = _model(
        [helper.make_node("ScatterND", ["data", "indices", "updates"], ["y"], reduction=reduction)],
        {
            "data": (TensorProto.FLOAT, [5, 3]),
            "indices": (TensorProto.INT64, [4, 1]),
            "updates": (TensorProto.FLOAT, [4, 3]),
        },
        {"y": TensorProto.FLOAT},
    )
    rng = np.random.default_rng(3)
    feed = {
        "data": rng.standard_normal((5, 3)).astype(np.float32),
        "indices": np.array([[1], [3], [1], [-1]], np.int64),
        "updates": rng.standard_normal((4, 3)).astype(np.float32),
    }
    _assert_litert_matches_onnxruntime(proto, feed)


def test_det_by_cofactors_and_a_larger_matrix_refused() -> None:
    """Det of batched 2x2 and 3x3 matrices by cofactor expansion (TFLite has no determinant
    op) as onnxruntime's; a 4x4 one is refused by node, naming TF's op."""
    from unframe.shared_ir.errors import UnsupportedOpsError

    proto = _model(
        [helper.make_node("Det", ["small"], ["d2"]), helper.make_node("Det", ["cube"], ["d3"])],
        {"small": (TensorProto.FLOAT, [4, 2, 2]), "cube": (TensorProto.FLOAT, [2, 3, 3, 3])},
        {"d2": TensorProto.FLOAT, "d3": TensorProto.FLOAT},
    )
    rng = np.random.default_rng(9)
    feed = {
        "small": rng.standard_normal((4, 2, 2)).astype(np.float32),
        "cube": rng.standard_normal((2, 3, 3, 3)).astype(np.float32),
    }
    _assert_litert_matches_onnxruntime(proto, feed)
    larger = _model(
        [helper.make_node("Det", ["m"], ["d"], name="det4")],
        {"m": (TensorProto.FLOAT, [4, 4])},
        {"d": TensorProto.FLOAT},
    )
    with pytest.raises(UnsupportedOpsError) as error:
        to_tflite(ir.from_proto(larger))
    assert error.value.ops[0].node == "det4"
    assert "MatrixDeterminant" in error.value.ops[0].reason


@pytest.mark.parametrize(("exclusive", "reverse"), [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumprod_multiplies_slices_in_turn(exclusive: int, reverse: int) -> None:
    """CumProd (no TFLite builtin) as products of the slices in numpy's order: float32 along a
    constant axis and int32 (wrapping) along an axis given at run time, as onnx's reference."""
    from onnx.reference import ReferenceEvaluator

    proto = _model(
        [
            helper.make_node(
                "CumProd", ["x", "one"], ["along_one"], exclusive=exclusive, reverse=reverse
            ),
            helper.make_node(
                "CumProd", ["n", "axis"], ["along_axis"], exclusive=exclusive, reverse=reverse
            ),
        ],
        {
            "x": (TensorProto.FLOAT, [3, 4, 2]),
            "n": (TensorProto.INT32, [3, 5]),
            "axis": (TensorProto.INT32, []),
        },
        {"along_one": TensorProto.FLOAT, "along_axis": TensorProto.INT32},
        opset=26,
        initializers=[helper.make_tensor("one", TensorProto.INT64, [], [-2])],
    )
    rng = np.random.default_rng(26)
    for axis in (0, 1, -1):
        feed = {
            "x": rng.uniform(-2, 2, (3, 4, 2)).astype(np.float32),
            "n": rng.integers(-70000, 70000, (3, 5)).astype(np.int32),
            "axis": np.array(axis, np.int32),
        }
        expected = ReferenceEvaluator(proto).run(None, feed)
        got = run_export(to_tflite(ir.from_proto(proto)), feed)
        np.testing.assert_array_equal(got["along_one"], expected[0])
        np.testing.assert_array_equal(got["along_axis"], expected[1])


def test_non_max_suppression_keeps_onnx_count_and_threshold() -> None:
    """NonMaxSuppression on LiteRT: fewer boxes selected than the limit (LiteRT pads its
    selection to the limit), identical boxes, and an IoU exactly at the threshold (kept by
    ONNX, suppressed by LiteRT's comparison): the rows are onnxruntime's."""
    proto = _model(
        [
            helper.make_node(
                "NonMaxSuppression", ["boxes", "scores", "limit", "iou", "cut"], ["selected"]
            )
        ],
        {
            "boxes": (TensorProto.FLOAT, [1, 5, 4]),
            "scores": (TensorProto.FLOAT, [1, 2, 5]),
            "limit": (TensorProto.INT64, [1]),
            "iou": (TensorProto.FLOAT, [1]),
            "cut": (TensorProto.FLOAT, [1]),
        },
        {"selected": TensorProto.INT64},
    )
    boxes = np.array(
        [[[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 2], [5, 5, 6, 6], [0, 0, 1, 0.5]]], np.float32
    )
    feed = {
        "boxes": boxes,
        "scores": np.array([[[0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.2, 0.3, 0.4, 0.05]]], np.float32),
        "limit": np.array([4], np.int64),
        # box 2 and box 0 overlap with IoU 0.5, box 4 and box 0 too: exactly at the threshold.
        "iou": np.array([0.5], np.float32),
        "cut": np.array([0.15], np.float32),
    }
    _assert_litert_matches_onnxruntime(proto, feed)


def test_shrink_runs_float32_in_float32() -> None:
    """Shrink of float32 in float32 on LiteRT (no float64 kernels; the float32 sum with the
    float32 bias is rounded as the float64 one): values at +-lambd included, as onnxruntime's."""
    proto = _model(
        [helper.make_node("Shrink", ["x"], ["y"], bias=0.3, lambd=0.7)],
        {"x": (TensorProto.FLOAT, [9])},
        {"y": TensorProto.FLOAT},
    )
    x = np.array([-2.5, -0.7, -0.69999, 0, 0.5, 0.7, 0.70001, 1e-8, 3e7], np.float32)
    _assert_litert_matches_onnxruntime(proto, {"x": x})
