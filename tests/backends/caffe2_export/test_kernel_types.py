"""Exported nets feed each Caffe2 op only element types Caffe2 registers a CPU kernel for.

Caffe2's Floor, Ceil, Abs, Exp, Log, Cos and Sin are float-only, its arithmetic, comparisons and
Where take 32- and 64-bit integers, float and double, and its Expand no bool. Where the exporter
computes in double (run-time Resize, MelWeightMatrix, STFT, double models) or in narrow integers,
it builds those functions from ops that have kernels. Each net here is run op by op, every op's
input types checked against that table (besides the executor's own checks), and its outputs
compared with onnx's reference, onnxruntime or numpy.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from unframe.backends.caffe2.driver import export_model
from unframe.backends.caffe2.native.executor import Workspace
from unframe.shared_ir.errors import UnsupportedOpsError

#: Caffe2 op -> the element types of input 0 it has a CPU kernel for (caffe2/operators/...).
FLOAT = {np.dtype(np.float32)}
NUMERIC = {np.dtype(t) for t in (np.int32, np.int64, np.float32, np.float64)}
FLOAT_ONLY_OPS = (
    "Max", "Min", "Clip", "Relu", "LeakyRelu", "Elu", "Softplus", "Erf", "Sqr", "Reciprocal",
    "Softmax", "TopK", "MatMul", "BatchMatMul", "Conv", "MaxPool", "AveragePool",
)  # fmt: skip
KERNELS = {
    **{op: FLOAT for op in ("Floor", "Ceil", "Abs", "Exp", "Log", "Log1p", "Cos", "Sin", "Pow")},
    **{op: NUMERIC for op in ("Add", "Sub", "Mul", "Div", "Expand", "Negative", "Range")},
    **{op: NUMERIC | {np.dtype(np.bool_)} for op in ("EQ", "NE", "LT", "LE", "GT", "GE")},
    **{op: NUMERIC for op in ("ReduceSum", "ReduceMax")},
    # Round 2: minmax_ops.cc, clip_op.cc, utility_ops.h (Sum), mean_op.h, scale_op.h, the
    # activations' own files, top_k.cc, arg_ops.h, transpose_op.h, matmul and pooling.
    **{op: FLOAT for op in FLOAT_ONLY_OPS},
    "Sum": {np.dtype(np.float32), np.dtype(np.int32)},
    **{op: {np.dtype(np.float32), np.dtype(np.float64)} for op in ("Mean", "Scale")},
    **{op: NUMERIC for op in ("ArgMax", "ArgMin", "Transpose")},
    "ScatterWeightedSum": FLOAT,
    "ScatterAssign": {np.dtype(t) for t in (np.float32, np.float16, np.uint8, np.int32, np.int64)},
}


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    opset: int = 19,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run_checked(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Exports ``model``, runs its nets op by op, checking each op's input 0 against KERNELS."""
    nets = export_model(ir.from_proto(model))
    workspace = Workspace()
    workspace.run(nets.init_net)
    for name, value in feeds.items():
        workspace.feed(name, value)
    for index, op in enumerate(nets.predict_net.op):
        allowed = KERNELS.get(op.type)
        if allowed is not None:
            dtype = workspace.fetch(op.input[0]).dtype
            assert dtype in allowed, f"op {index} {op.type} reads {dtype}"
        workspace.run_op(op, index)
    return [workspace.fetch(name) for name in nets.predict_net.external_output]


def _op_types(model: onnx.ModelProto) -> set[str]:
    return {op.type for op in export_model(ir.from_proto(model)).predict_net.op}


def _oracles(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    (reference,) = ReferenceEvaluator(model).run(None, feeds)
    session = onnxruntime.InferenceSession(model.SerializeToString())
    (runtime,) = session.run(None, feeds)
    return np.asarray(reference), np.asarray(runtime)


# -- Resize with run-time scales and sizes: positions and sizes in double ----------------------
def _resize(attrs: dict[str, object], width: int = 10, sizes: bool = False) -> onnx.ModelProto:
    second = ["x", "", "", "sizes"] if sizes else ["x", "", "scales"]
    parameter = (
        helper.make_tensor_value_info("sizes", TensorProto.INT64, [4])
        if sizes
        else helper.make_tensor_value_info("scales", TensorProto.FLOAT, [4])
    )
    node = helper.make_node("Resize", second, ["y"], **attrs)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3, width])
    return _model([node], [x, parameter], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])  # fmt: skip


NEAREST = [
    {"mode": "nearest", "nearest_mode": rounding, "coordinate_transformation_mode": transform}
    for rounding in ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")
    for transform in ("asymmetric", "half_pixel", "align_corners")
]
INTERPOLATED = [
    {"mode": "linear"},
    {"mode": "linear", "antialias": 1},
    {"mode": "cubic"},
    {"mode": "cubic", "antialias": 1},
    {"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5},
    {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
]
SCALES = [[1, 1, 1, 0.7], [1, 1, 0.6, 1.7], [1, 1, 2.5, 0.35]]


@pytest.mark.parametrize("scales", SCALES, ids=str)
@pytest.mark.parametrize("attrs", NEAREST + INTERPOLATED, ids=str)
def test_resize_run_time_scales_emit_no_double_floor(
    attrs: dict[str, object], scales: list[float]
) -> None:
    model = _resize(attrs)
    assert not _op_types(model) & {"Floor", "Ceil", "Abs"}  # all in double: built from Cast
    feeds = {
        "x": np.random.default_rng(0).standard_normal((1, 1, 3, 10)).astype(np.float32),
        "scales": np.array(scales, dtype=np.float32),
    }
    (got,) = _run_checked(model, feeds)
    # onnx's reference is the oracle: onnxruntime sizes the output in float32 (7 positions for
    # 0.7 * 10) and maps align_corners positions in float32 too.
    (reference,) = ReferenceEvaluator(model).run(None, feeds)
    assert got.shape == reference.shape
    if attrs["mode"] == "cubic":  # as before the double forms: cubic weights differ by ~1e-6
        np.testing.assert_allclose(got, reference, rtol=0, atol=2e-6)
    else:
        np.testing.assert_array_equal(got, reference)


def test_resize_sizes_its_output_from_float32_0_7_times_10_as_6() -> None:
    # float32(0.7) is 0.699999988: times 10 it is 6.99999988 in double (6 positions, as onnx's
    # reference says) but 7.0 in float32. Output i reads floor(i / 0.699999988).
    model = _resize({"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                     "nearest_mode": "floor"})  # fmt: skip
    feeds = {
        "x": np.arange(30, dtype=np.float32).reshape(1, 1, 3, 10),
        "scales": np.array([1, 1, 1, 0.7], dtype=np.float32),
    }
    (got,) = _run_checked(model, feeds)
    (reference,) = ReferenceEvaluator(model).run(None, feeds)
    assert got.shape == reference.shape == (1, 1, 3, 6)
    np.testing.assert_array_equal(got, reference)
    np.testing.assert_array_equal(got[..., :6], feeds["x"][..., [0, 1, 2, 4, 5, 7]])


@pytest.mark.parametrize("policy", ["not_larger", "not_smaller"])
@pytest.mark.parametrize("sizes", [[1, 1, 7, 7], [1, 1, 2, 9], [1, 1, 5, 3]], ids=str)
def test_resize_sizes_under_an_aspect_policy_round_half_up_in_double(
    policy: str, sizes: list[int]
) -> None:
    model = _resize({"mode": "nearest", "keep_aspect_ratio_policy": policy}, sizes=True)
    feeds = {
        "x": np.random.default_rng(1).standard_normal((1, 1, 3, 10)).astype(np.float32),
        "sizes": np.array(sizes, dtype=np.int64),
    }
    (got,) = _run_checked(model, feeds)
    reference, runtime = _oracles(model, feeds)
    np.testing.assert_array_equal(got, reference)
    np.testing.assert_array_equal(got, runtime)


# -- MelWeightMatrix and STFT at run time -------------------------------------------------------
@pytest.mark.parametrize(
    "parameters",
    [(8, 16, 8192, 0.0, 4096.0), (10, 64, 16000, 20.0, 7600.0), (4, 33, 22050, 300.0, 3000.0)],
    ids=str,
)
def test_mel_weight_matrix_computes_logs_and_exps_without_double_kernels(
    parameters: tuple[int, int, int, float, float],
) -> None:
    names = ["bins", "dft", "rate", "low", "high"]
    types = [TensorProto.INT64] * 3 + [TensorProto.FLOAT] * 2
    model = _model(
        [helper.make_node("MelWeightMatrix", names, ["y"])],
        [helper.make_tensor_value_info(n, t, []) for n, t in zip(names, types, strict=True)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        17,
    )
    assert not _op_types(model) & {"Floor", "Log", "Log1p", "Exp"}
    dtypes = [np.int64] * 3 + [np.float32] * 2
    feeds = {n: np.array(v, dtype=d) for n, v, d in zip(names, parameters, dtypes, strict=True)}
    (got,) = _run_checked(model, feeds)
    (want,) = ReferenceEvaluator(model).run(None, feeds)
    np.testing.assert_array_equal(got, want)


def test_stft_builds_its_cosines_in_integer_turns() -> None:
    inputs = [
        helper.make_tensor_value_info("signal", TensorProto.FLOAT, [1, 64, 1]),
        helper.make_tensor_value_info("step", TensorProto.INT64, []),
        helper.make_tensor_value_info("length", TensorProto.INT64, []),
    ]
    node = helper.make_node("STFT", ["signal", "step", "", "length"], ["y"])
    model = _model([node], inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    assert not _op_types(model) & {"Cos", "Sin", "Abs"}
    signal = np.random.default_rng(2).standard_normal((1, 64, 1)).astype(np.float32)
    for length in (16, 12, 7):
        feeds = {"signal": signal, "step": np.array(5), "length": np.array(length)}
        (got,) = _run_checked(model, feeds)
        reference, runtime = _oracles(model, feeds)
        np.testing.assert_allclose(got, reference, rtol=0, atol=2e-5)
        np.testing.assert_allclose(got, runtime, rtol=0, atol=2e-5)


# -- double models -----------------------------------------------------------------------------
SPECIAL = [0.0, -0.0, 0.5, -0.5, 1.5, -2.5, 1e-300, 5e-324, 2.0**52 + 1, -(2.0**60), 1e308]
SPECIAL += [np.inf, -np.inf, np.nan, 709.7, -745.1, 88.7, -0.7, 1 + 1e-12]


def _unary_double(op: str) -> onnx.ModelProto:
    return _model(
        [helper.make_node(op, ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None])],
    )


def _doubles() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.concatenate([SPECIAL, rng.uniform(-50, 50, 200), rng.uniform(-800, 800, 200)])


@pytest.mark.parametrize(
    ("op", "function"), [("Floor", np.floor), ("Ceil", np.ceil), ("Abs", np.abs)]
)
def test_double_floor_ceil_abs_are_exact(op: str, function: np.ufunc) -> None:
    model = _unary_double(op)
    assert op not in _op_types(model)
    x = _doubles()
    (got,) = _run_checked(model, {"x": x})
    np.testing.assert_array_equal(got, function(x))


@pytest.mark.parametrize(("op", "function"), [("Exp", np.exp), ("Log", np.log)])
def test_double_exp_and_log_are_within_two_units_in_the_last_place(
    op: str, function: np.ufunc
) -> None:
    model = _unary_double(op)
    assert op not in _op_types(model)
    x = _doubles()
    x = np.concatenate([x, np.abs(x), [1.7e308, 2.2e-308]]) if op == "Log" else x
    (got,) = _run_checked(model, {"x": x})
    with np.errstate(all="ignore"):
        want = function(x)
    finite = np.isfinite(want) & (want != 0)
    np.testing.assert_array_max_ulp(got[finite], want[finite], maxulp=2)
    np.testing.assert_array_equal(got[~finite], want[~finite])  # inf, 0, NaN as numpy


def _refusal(model: onnx.ModelProto) -> str:
    with pytest.raises(UnsupportedOpsError) as error:
        export_model(ir.from_proto(model))
    return "\n".join(error.value.details())


def test_double_sine_is_refused_when_exporting() -> None:
    assert "Caffe2 runs Sin on float only, not DOUBLE" in _refusal(_unary_double("Sin"))


# -- 8- and 16-bit integers --------------------------------------------------------------------
def _binary(op: str, dtype: int, out_dtype: int | None = None) -> onnx.ModelProto:
    return _model(
        [helper.make_node(op, ["a", "b"], ["y"])],
        [helper.make_tensor_value_info(n, dtype, [4]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", out_dtype or dtype, [4])],
    )


@pytest.mark.parametrize(
    ("op", "dtype", "a", "b"),
    [
        ("Add", np.int8, [127, -128, 5, 0], [1, -1, -7, 0]),
        ("Sub", np.uint8, [0, 255, 3, 9], [1, 255, 4, 3]),
        ("Mul", np.int16, [300, -300, 181, 7], [300, 300, 181, -7]),
        ("Mul", np.uint16, [65535, 300, 2, 0], [65535, 300, 3, 9]),
        ("Div", np.int8, [-7, 7, -128, 100], [2, -2, 3, 7]),
        ("Less", np.uint16, [1, 65535, 3, 0], [2, 0, 3, 65535]),
        ("GreaterOrEqual", np.int8, [-1, 3, 3, -128], [1, 3, 4, 127]),
        ("Equal", np.uint8, [1, 255, 3, 0], [1, 0, 3, 255]),
    ],
)
def test_narrow_integer_arithmetic_runs_in_int64(
    op: str, dtype: type, a: list[int], b: list[int]
) -> None:
    onnx_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    comparison = op in ("Less", "GreaterOrEqual", "Equal")
    model = _binary(op, onnx_type, TensorProto.BOOL if comparison else None)
    feeds = {"a": np.array(a, dtype=dtype), "b": np.array(b, dtype=dtype)}
    (got,) = _run_checked(model, feeds)
    (want,) = ReferenceEvaluator(model).run(None, feeds)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_narrow_integer_where_clip_and_mod() -> None:
    i16, i8 = TensorProto.INT16, TensorProto.INT8
    where = _model(
        [helper.make_node("Where", ["c", "a", "b"], ["y"])],
        [helper.make_tensor_value_info("c", TensorProto.BOOL, [2, 1]),
         helper.make_tensor_value_info("a", i16, [2, 3]),
         helper.make_tensor_value_info("b", i16, [3])],
        [helper.make_tensor_value_info("y", i16, [2, 3])],
    )  # fmt: skip
    feeds = {
        "c": np.array([[True], [False]]),
        "a": np.arange(6, dtype=np.int16).reshape(2, 3) - 3,
        "b": np.array([-32768, 32767, 0], dtype=np.int16),
    }
    (got,) = _run_checked(where, feeds)
    np.testing.assert_array_equal(got, np.where(feeds["c"], feeds["a"], feeds["b"]))
    clip = _model(
        [helper.make_node("Clip", ["x", "low", "high"], ["y"])],
        [helper.make_tensor_value_info("x", i8, [5]), helper.make_tensor_value_info("low", i8, []),
         helper.make_tensor_value_info("high", i8, [])],
        [helper.make_tensor_value_info("y", i8, [5])],
    )  # fmt: skip
    x = np.array([-128, -5, 0, 5, 127], dtype=np.int8)
    feeds = {"x": x, "low": np.array(-4, dtype=np.int8), "high": np.array(6, dtype=np.int8)}
    (got,) = _run_checked(clip, feeds)
    np.testing.assert_array_equal(got, np.clip(x, -4, 6))
    mod = _binary("Mod", TensorProto.INT8)
    feeds = {"a": np.array([-7, 7, -128, 5], np.int8), "b": np.array([3, -3, 7, -128], np.int8)}
    (got,) = _run_checked(mod, feeds)
    np.testing.assert_array_equal(got, ReferenceEvaluator(mod).run(None, feeds)[0])


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_bool_max_and_min_reduce_in_int64(op: str, keepdims: int) -> None:
    model = _model(
        [helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims)],
        [helper.make_tensor_value_info("x", TensorProto.BOOL, [2, 3]),
         helper.make_tensor_value_info("axes", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("y", TensorProto.BOOL, None)],
        18,
    )  # fmt: skip
    x = np.array([[True, False, False], [False, False, True]])
    for axis in (0, 1, -1):
        feeds = {"x": x, "axes": np.array([axis], dtype=np.int64)}
        (got,) = _run_checked(model, feeds)
        (want,) = ReferenceEvaluator(model).run(None, feeds)
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, want)


def test_integer_pow_squares_exactly() -> None:
    model = _binary("Pow", TensorProto.INT64)
    base = np.array([3, -2, 7, 1], dtype=np.int64)
    exponent = np.array([39, 63, 22, 62], dtype=np.int64)
    (got,) = _run_checked(model, {"a": base, "b": exponent})
    # All four fit in int64, (-2) ** 63 just: -2 ** 63.
    assert got.tolist() == [int(b) ** int(e) for b, e in zip(base, exponent, strict=True)]
    (got,) = _run_checked(model, {"a": np.array([2, 1, -1, 5]), "b": np.array([-1, -3, -3, 0])})
    assert got.tolist() == [0, 1, -1, 1]  # 1 / base ** |e|, truncated toward zero, as C


def test_integer_pow_with_a_float_exponent_is_refused() -> None:
    model = _model(
        [helper.make_node("Pow", ["a", "b"], ["y"])],
        [helper.make_tensor_value_info("a", TensorProto.INT32, [2]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [2])],
    )  # fmt: skip
    assert "integer base with a floating-point exponent" in _refusal(model)


# -- round 2: Max, Min, Sum, Mean, Clip, activations, data movement, pooling, softmax -----------
def _variadic(op: str, dtype: int, opset: int = 13) -> onnx.ModelProto:
    return _model(
        [helper.make_node(op, ["a", "b", "c"], ["y"])],
        [helper.make_tensor_value_info("a", dtype, [2, 3]),
         helper.make_tensor_value_info("b", dtype, [3]),
         helper.make_tensor_value_info("c", dtype, [2, 3])],
        [helper.make_tensor_value_info("y", dtype, [2, 3])],
        opset,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("op", "dtype"),
    [
        ("Max", np.int64), ("Max", np.int8), ("Max", np.float64), ("Max", np.int32),
        ("Min", np.int64), ("Min", np.uint16), ("Min", np.float64),
        ("Sum", np.int64), ("Sum", np.int8), ("Sum", np.float64), ("Mean", np.float64),
    ],
)  # fmt: skip
def test_variadic_ops_of_types_caffe2_lacks_are_exact(op: str, dtype: type) -> None:
    model = _variadic(op, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
    assert op not in _op_types(model)
    rng = np.random.default_rng(3)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        a, b, c = (rng.integers(info.min, info.max, size=s, dtype=dtype, endpoint=True)
                   for s in ((2, 3), (3,), (2, 3)))  # fmt: skip
    else:
        a, b, c = rng.normal(size=(2, 3)) * 1e3, rng.normal(size=3), rng.normal(size=(2, 3))
        a[0, 0], b[1], c[1, 2] = np.nan, -0.0, np.inf
    feeds = {"a": a, "b": b, "c": c}
    (got,) = _run_checked(model, feeds)
    (want,) = ReferenceEvaluator(model).run(None, feeds)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_float_variadic_ops_stay_native() -> None:
    for op in ("Max", "Min", "Sum", "Mean"):
        assert op in _op_types(_variadic(op, TensorProto.FLOAT))
    assert "Sum" in _op_types(_variadic("Sum", TensorProto.INT32))


def _unary(op: str, dtype: int, opset: int = 14, **attrs: object) -> onnx.ModelProto:
    return _model(
        [helper.make_node(op, ["x"], ["y"], **attrs)],
        [helper.make_tensor_value_info("x", dtype, [6])],
        [helper.make_tensor_value_info("y", dtype, [6])],
        opset,
    )


@pytest.mark.parametrize(
    ("op", "dtype", "attrs"),
    [
        ("Relu", np.int32, {}), ("Relu", np.int8, {}), ("Relu", np.int64, {}),
        ("Relu", np.float64, {}), ("LeakyRelu", np.float64, {"alpha": 0.3}),
        ("Reciprocal", np.float64, {}),
    ],
)  # fmt: skip
def test_float_only_activations_of_other_types_are_exact(
    op: str, dtype: type, attrs: dict[str, object]
) -> None:
    model = _unary(op, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), **attrs)
    assert op not in _op_types(model)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        x = np.array([info.min, -1, 0, 1, 7, info.max], dtype=dtype)
    else:
        x = np.array([-3.3e-300, -0.0, 0.1, np.nan, -np.inf, 7.25], dtype=dtype)
    (got,) = _run_checked(model, {"x": x})
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("form", ["attributes", "constants", "inputs"])
def test_double_clip_is_exact(form: str) -> None:
    f64 = TensorProto.DOUBLE
    x = np.array([-np.inf, -2.5, -0.5, 0.25, 3.0, np.nan], dtype=np.float64)
    feeds: dict[str, np.ndarray] = {"x": x}
    if form == "attributes":
        model = _unary("Clip", f64, 10, min=-1.0, max=1.5)
    else:
        bounds = [np.array(-1.0), np.array(1.5)]
        inputs = [helper.make_tensor_value_info("x", f64, [6])]
        initializers = []
        if form == "inputs":
            inputs += [helper.make_tensor_value_info(n, f64, []) for n in ("low", "high")]
            feeds.update(low=bounds[0], high=bounds[1])
        else:
            initializers = [onnx.numpy_helper.from_array(b, n)
                            for b, n in zip(bounds, ("low", "high"), strict=True)]  # fmt: skip
        graph = helper.make_graph(
            [helper.make_node("Clip", ["x", "low", "high"], ["y"])], "g", inputs,
            [helper.make_tensor_value_info("y", f64, [6])], initializers,
        )  # fmt: skip
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert not {"Clip", "Max", "Min"} & _op_types(model)
    (got,) = _run_checked(model, feeds)
    np.testing.assert_array_equal(got, ReferenceEvaluator(model).run(None, feeds)[0])


def _shaped(node: onnx.NodeProto, dtype: int, shape: list[int], out: list[int] | None):  # type: ignore[no-untyped-def]
    return _model(
        [node],
        [helper.make_tensor_value_info("x", dtype, shape)],
        [helper.make_tensor_value_info("y", dtype if out is not None else TensorProto.INT64, out)],
    )


@pytest.mark.parametrize(
    ("node", "dtype", "out"),
    [
        (helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0]), np.bool_, [3, 2]),
        (helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0]), np.int8, [3, 2]),
        (helper.make_node("Tile", ["x", "reps"], ["y"]), np.bool_, [4, 6]),
        (helper.make_node("Tile", ["x", "reps"], ["y"]), np.int16, [4, 6]),
        (helper.make_node("ArgMax", ["x"], ["y"], axis=1), np.int8, None),
        (helper.make_node("ArgMin", ["x"], ["y"], axis=1, select_last_index=1), np.uint16, None),
    ],
    ids=lambda v: v.op_type if isinstance(v, onnx.NodeProto) else None,
)
def test_data_movement_of_narrow_types_goes_through_wider_ones(
    node: onnx.NodeProto, dtype: type, out: list[int] | None
) -> None:
    onnx_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    model = _shaped(node, onnx_type, [2, 3], out)
    feeds = {"x": np.array([[1, 0, 1], [0, 0, 1]], dtype=dtype)}
    if node.op_type == "Tile":
        reps = onnx.numpy_helper.from_array(np.array([2, 2], dtype=np.int64), "reps")
        model.graph.initializer.append(reps)
    (got,) = _run_checked(model, feeds)
    (want,) = ReferenceEvaluator(model).run(None, feeds)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_uint8_max_pool_pools_in_float() -> None:
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2])
    model = _shaped(node, TensorProto.UINT8, [1, 1, 3, 3], [1, 1, 2, 2])
    x = np.array([[[[0, 255, 3], [7, 1, 200], [9, 9, 254]]]], dtype=np.uint8)
    (got,) = _run_checked(model, {"x": x})
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("op", "opset", "axis"),
    [("Softmax", 13, 0), ("Softmax", 11, 1), ("LogSoftmax", 13, -1), ("LogSoftmax", 11, 1)],
)
def test_double_softmax_and_log_softmax_take_the_double_exp_and_log(
    op: str, opset: int, axis: int
) -> None:
    model = _model(
        [helper.make_node(op, ["x"], ["y"], axis=axis)],
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2, 3, 2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2, 3, 2])],
        opset,
    )
    assert not {"Softmax", "Exp", "Log"} & _op_types(model)
    x = np.random.default_rng(5).normal(size=(2, 3, 2)) * 30
    (got,) = _run_checked(model, {"x": x})
    # onnxruntime: onnx's reference takes opset 11's Softmax along one axis, not flattened.
    (want,) = onnxruntime.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    ("op", "dtype"),
    [("ReduceSumSquare", np.int32), ("ReduceSumSquare", np.float64), ("ReduceLogSum", np.float64)],
)
def test_composed_reductions_of_other_types(op: str, dtype: type) -> None:
    onnx_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    model = _model(
        [helper.make_node(op, ["x"], ["y"], axes=[1], keepdims=0)],
        [helper.make_tensor_value_info("x", onnx_type, [2, 3])],
        [helper.make_tensor_value_info("y", onnx_type, [2])],
        13,
    )
    assert not {"Sqr", "Log"} & _op_types(model)
    x = np.array([[1, 2, 3], [40, 5, 6]], dtype=dtype)
    (got,) = _run_checked(model, {"x": x})
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-15)


def _top_k(dtype: int) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("TopK", ["x", "k"], ["values", "indices"])], "g",
        [helper.make_tensor_value_info("x", dtype, [6])],
        [helper.make_tensor_value_info("values", dtype, [2]),
         helper.make_tensor_value_info("indices", TensorProto.INT64, [2])],
        [onnx.numpy_helper.from_array(np.array([2], dtype=np.int64), "k")],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_float_top_k_still_exports() -> None:
    x = np.array([1.0, 5.0, 3.0, 5.0, -2.0, 0.0], dtype=np.float32)
    values, indices = _run_checked(_top_k(TensorProto.FLOAT), {"x": x})
    assert values.tolist() == [5, 5] and indices.tolist() == [1, 3]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_top_k(TensorProto.INT64), "Caffe2 registers TopK for float only (top_k.cc)"),
        (_unary("Elu", TensorProto.DOUBLE), "Caffe2 registers Elu (elu_op.cc) for float only"),
        (_unary("Softplus", TensorProto.DOUBLE), "Caffe2 runs Softplus on float only, not DOUBLE"),
        (_unary("Erf", TensorProto.DOUBLE), "Caffe2 runs Erf on float only, not DOUBLE"),
        (_binary("MatMul", TensorProto.DOUBLE),
         "Caffe2 registers BatchMatMul (batch_matmul_op.h) for float only, not DOUBLE"),
        (_variadic("Max", TensorProto.FLOAT16), "Caffe2 registers Max for FLOAT only, not FLOAT16"),
        (_shaped(helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[1, 1]),
                 TensorProto.DOUBLE, [1, 1, 2, 2], [1, 1, 2, 2]),
         "Caffe2 registers MaxPool (pool_op.cc) for float only, not DOUBLE"),
    ],
    ids=["TopK", "Elu", "Softplus", "Erf", "MatMul", "Max", "MaxPool"],
)  # fmt: skip
def test_float_only_ops_without_exact_forms_are_refused_when_exporting(
    model: onnx.ModelProto, message: str
) -> None:
    assert message in _refusal(model)


# -- scatters: ScatterAssign's data types, ScatterWeightedSum float only (utility_ops.h/.cc) ----
def _scatter(dtype: int, reduction: str = "none") -> onnx.ModelProto:
    return _model(
        [helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], axis=1, reduction=reduction)],
        [helper.make_tensor_value_info("x", dtype, [2, 3]),
         helper.make_tensor_value_info("i", TensorProto.INT64, [2, 2]),
         helper.make_tensor_value_info("u", dtype, [2, 2])],
        [helper.make_tensor_value_info("y", dtype, [2, 3])],
        18,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("dtype", "reduction"),
    [(np.bool_, "none"), (np.int8, "none"), (np.int16, "add"), (np.uint16, "max"),
     (np.int32, "min"), (np.float32, "add"), (np.float32, "max")],
)  # fmt: skip
def test_scatter_elements_feeds_scatter_ops_their_types(dtype: type, reduction: str) -> None:
    model = _scatter(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), reduction)
    feeds = {
        "x": np.array([[1, 0, 3], [4, 5, 0]], dtype=dtype),
        "i": np.array([[2, 2], [0, 1]], dtype=np.int64),
        "u": np.array([[1, 1], [0, 7]], dtype=dtype),
    }
    (got,) = _run_checked(model, feeds)
    (want,) = ReferenceEvaluator(model).run(None, feeds)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_double_scatter_is_refused_when_exporting() -> None:
    message = "Caffe2 registers ScatterAssign (utility_ops.h) for FLOAT, FLOAT16, INT32, INT64"
    assert message in _refusal(_scatter(TensorProto.DOUBLE))
    assert message in _refusal(_scatter(TensorProto.DOUBLE, "add"))


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.float32])
def test_compress_along_a_later_axis_transposes_in_a_wider_type(dtype: type) -> None:
    onnx_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    model = _model(
        [helper.make_node("Compress", ["x", "c"], ["y"], axis=1)],
        [helper.make_tensor_value_info("x", onnx_type, [2, 3]),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [3])],
        [helper.make_tensor_value_info("y", onnx_type, None)],
    )  # fmt: skip
    feeds = {"x": np.array([[1, 0, 1], [0, 1, 1]], dtype=dtype), "c": np.array([1, 0, 1], bool)}
    (got,) = _run_checked(model, feeds)
    (want,) = ReferenceEvaluator(model).run(None, feeds)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
