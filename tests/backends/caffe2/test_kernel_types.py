"""The executor refuses element types that Caffe2 registers no CPU kernel for.

Each case names the Caffe2 source that registers the op (caffe2/operators/...). A net that feeds
another type runs nowhere but here, so the executor raises, naming the op, the types Caffe2 has
and the type it got; the types Caffe2 has still run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from unframe.shared_ir.errors import BadInputError

Run1 = Callable[..., np.ndarray]

F32, F64, I32, I64 = np.float32, np.float64, np.int32, np.int64
FLOAT_ONLY = "float only"
NUMERIC = "double, float, int32, int64 only"

#: op, its inputs' dtype, the registered types as the error spells them, the source file.
REFUSED = [
    ("Floor", F64, FLOAT_ONLY, "floor_op.cc"),
    ("Ceil", F64, FLOAT_ONLY, "ceil_op.cc"),
    ("Exp", F64, FLOAT_ONLY, "exp_op.cc"),
    ("Log", F64, FLOAT_ONLY, "log_op.cc"),
    ("Log1p", F64, FLOAT_ONLY, "log1p_op.cc"),
    ("Abs", F64, FLOAT_ONLY, "abs_op.cc"),
    ("Abs", I32, FLOAT_ONLY, "abs_op.cc"),
    ("Sin", F64, FLOAT_ONLY, "sin_op.cc"),
    ("Cos", F64, FLOAT_ONLY, "cos_op.cc"),
    ("Acos", F64, FLOAT_ONLY, "acos_op.cc"),
    ("Sigmoid", F64, FLOAT_ONLY, "sigmoid_op.cc"),
    ("Tanh", F64, FLOAT_ONLY, "tanh_op.cc"),
    ("Softsign", F64, FLOAT_ONLY, "softsign_op.cc"),
    ("Sqrt", np.float16, "double, float only", "sqrt_op.cc"),
    ("Negative", np.int8, NUMERIC, "negative_op.cc"),
    ("Sign", np.uint8, NUMERIC, "elementwise_ops.cc"),
]

BINARY_REFUSED = [
    ("Add", np.int8, NUMERIC, "elementwise_add_op.cc"),
    ("Sub", np.uint16, NUMERIC, "elementwise_sub_op.cc"),
    ("Mul", np.int16, NUMERIC, "elementwise_mul_op.cc"),
    ("Div", np.float16, NUMERIC, "elementwise_div_op.cc"),
    ("EQ", np.int8, "bool, " + NUMERIC, "elementwise_ops.cc"),
    ("LT", np.uint8, "bool, " + NUMERIC, "elementwise_ops.cc"),
    ("GE", np.float16, "bool, " + NUMERIC, "elementwise_ops.cc"),
]


def _message(op: str, types: str, source: str, got: str, what: str = "input 0") -> str:
    return f"Caffe2 registers {op} for {types} (caffe2/operators/{source}); {what} is {got}"


@pytest.mark.parametrize(("op", "dtype", "types", "source"), REFUSED)
def test_unary_kernel_types(run1: Run1, op: str, dtype: type, types: str, source: str) -> None:
    x = np.array([0.25, 0.5], dtype=dtype)
    with pytest.raises(BadInputError) as error:
        run1(op, x)
    got = {F64: "double", I32: "int32"}.get(dtype, np.dtype(dtype).name)
    assert _message(op, types, source, got) in str(error.value)
    assert error.value.op_type == op


@pytest.mark.parametrize(("op", "dtype", "types", "source"), BINARY_REFUSED)
def test_binary_kernel_types(run1: Run1, op: str, dtype: type, types: str, source: str) -> None:
    a, b = np.array([1, 2], dtype=dtype), np.array([2, 1], dtype=dtype)
    with pytest.raises(BadInputError, match=r"Caffe2 registers") as error:
        run1(op, a, b)
    assert _message(op, types, source, np.dtype(dtype).name) in str(error.value)


def test_registered_types_still_run(run1: Run1) -> None:
    assert run1("Floor", np.array([-1.5, 2.5], dtype=F32)).tolist() == [-2, 2]
    assert run1("Sqrt", np.array([4.0], dtype=F64)).tolist() == [2]
    assert run1("Negative", np.array([3], dtype=I64)).tolist() == [-3]
    assert run1("Add", np.array([1], dtype=I64), np.array([2], dtype=I64)).tolist() == [3]
    assert run1("Div", np.array([7.0], dtype=F64), np.array([2.0], dtype=F64)).tolist() == [3.5]
    both = np.array([True, False])
    assert run1("EQ", both, both).tolist() == [True, True]
    assert run1("LT", np.array([1.0], dtype=F64), np.array([2.0], dtype=F64)).tolist() == [True]
    assert run1("Where", both, np.array([1, 2], dtype=I64), np.array([3, 4], dtype=I64)).tolist() == [1, 4]  # fmt: skip
    assert run1("ReduceSum", np.array([1, 2], dtype=I64), axes=[0], keepdims=0).tolist() == 3
    assert run1("ReduceMax", np.array([1.0, 2.0], dtype=F64), axes=[0], keepdims=0) == 2
    assert run1("Expand", np.array([2], dtype=I32), np.array([3], dtype=I64)).tolist() == [2] * 3
    assert run1("Range", np.array(3.0, dtype=F64)).tolist() == [0, 1, 2]


def test_where_dispatches_on_its_values(run1: Run1) -> None:
    # WhereOp: TensorTypes<float, double, int, long, std::string, bool> of X (input 1).
    condition = np.array([True, False])
    x, y = np.array([1, 2], dtype=np.int8), np.array([3, 4], dtype=np.int8)
    message = _message(
        "Where", "bool, double, float, int32, int64, std::string only",
        "elementwise_logical_ops.h", "int8", "X (input 1)",
    )  # fmt: skip
    with pytest.raises(BadInputError) as error:
        run1("Where", condition, x, y)
    assert message in str(error.value)


def test_pow_is_float_only(run1: Run1) -> None:
    with pytest.raises(BadInputError) as error:
        run1("Pow", np.array([2], dtype=I32), exponent=2.0)
    assert _message("Pow", FLOAT_ONLY, "pow_op.cc", "int32") in str(error.value)
    assert run1("Pow", np.array([2], dtype=F32), exponent=2.0).tolist() == [4]


@pytest.mark.parametrize(
    ("op", "dtype", "types"),
    [
        ("ReduceMean", F64, FLOAT_ONLY),
        ("ReduceSum", np.bool_, NUMERIC),
        ("ReduceMax", np.bool_, NUMERIC),
        ("ReduceMax", np.int8, NUMERIC),
    ],
)
def test_reduction_kernel_types(run1: Run1, op: str, dtype: type, types: str) -> None:
    x = np.array([1, 0], dtype=dtype)
    with pytest.raises(BadInputError) as error:
        run1(op, x, axes=[0], keepdims=0)
    got = {F64: "double", np.bool_: "bool"}.get(dtype, np.dtype(dtype).name)
    assert _message(op, types, "reduce_ops.cc", got) in str(error.value)


def test_expand_and_range_kernel_types(run1: Run1) -> None:
    with pytest.raises(BadInputError) as error:
        run1("Expand", np.array([True]), np.array([3], dtype=I64))
    assert _message("Expand", NUMERIC, "expand_op.cc", "bool") in str(error.value)
    with pytest.raises(BadInputError) as error:
        run1("Range", np.array(3, dtype=np.float16))
    assert _message("Range", NUMERIC, "utility_ops.h", "float16") in str(error.value)


# -- round 2: the other ops the exporter emits -------------------------------------------------
#: op, input 0's dtype, the registered types as the error spells them, the source file.
MORE_REFUSED = [
    ("Sqr", I32, FLOAT_ONLY, "sqr_op.cc"),
    ("Reciprocal", F64, FLOAT_ONLY, "reciprocal_op.cc"),
    ("Erf", F64, FLOAT_ONLY, "erf_op.cc"),
    ("Relu", F64, FLOAT_ONLY, "relu_op.cc"),
    ("Relu", I32, FLOAT_ONLY, "relu_op.cc"),
    ("LeakyRelu", F64, FLOAT_ONLY, "leaky_relu_op.cc"),
    ("Elu", F64, FLOAT_ONLY, "elu_op.cc"),
    ("Softplus", F64, FLOAT_ONLY, "softplus_op.cc"),
    ("Softmax", F64, FLOAT_ONLY, "softmax_op.cc"),
    ("Clip", F64, FLOAT_ONLY, "clip_op.cc"),
    ("Clip", I64, FLOAT_ONLY, "clip_op.cc"),
    ("Max", I64, FLOAT_ONLY, "minmax_ops.cc"),
    ("Min", F64, FLOAT_ONLY, "minmax_ops.cc"),
    ("Sum", I64, "float, int32 only", "utility_ops.h"),
    ("Sum", F64, "float, int32 only", "utility_ops.h"),
    ("Mean", I32, "double, float only", "mean_op.h"),
    ("Scale", np.float16, "double, float only", "scale_op.h"),
    ("Scale", I32, "double, float only", "scale_op.h"),
    ("Mod", F32, "int32, int64 only", "mod_op.h"),
    ("TopK", I64, FLOAT_ONLY, "top_k.cc"),
    ("ArgMax", np.int8, NUMERIC, "arg_ops.h"),
    ("ArgMin", np.float16, NUMERIC, "arg_ops.h"),
    ("Transpose", np.bool_, NUMERIC, "transpose_op.h"),
    ("Transpose", np.uint8, NUMERIC, "transpose_op.h"),
    ("Tile", np.bool_, "double, float, float16, int32, int64, std::string, uint8 only",
     "tile_op.cc"),
    ("Tile", np.int16, "double, float, float16, int32, int64, std::string, uint8 only",
     "tile_op.cc"),
    ("Cast", np.float16, "bool, double, float, int16, int32, int64, int8, uint16, uint8 only",
     "cast_op.cc"),
]  # fmt: skip


@pytest.mark.parametrize(("op", "dtype", "types", "source"), MORE_REFUSED)
def test_more_kernel_types(run1: Run1, op: str, dtype: type, types: str, source: str) -> None:
    x = np.array([1, 0], dtype=dtype)
    with pytest.raises(BadInputError) as error:
        run1(op, x, to=1)  # Cast's 'to' (FLOAT); the other ops ignore it
    got = {F32: "float", F64: "double", I32: "int32"}.get(dtype, np.dtype(dtype).name)
    assert _message(op, types, source, got) in str(error.value)
    assert error.value.op_type == op


@pytest.mark.parametrize(
    ("op", "dtype", "source"),
    [("MatMul", F64, "matmul_op.cc"), ("BatchMatMul", I32, "batch_matmul_op.h")],
)
def test_matrix_products_are_float_only(run1: Run1, op: str, dtype: type, source: str) -> None:
    a = np.ones((2, 2), dtype=dtype)
    with pytest.raises(BadInputError) as error:
        run1(op, a, a)
    got = {F64: "double", I32: "int32"}[dtype]
    assert _message(op, FLOAT_ONLY, source, got) in str(error.value)
    assert run1(op, a.astype(F32), a.astype(F32)).tolist() == [[2, 2], [2, 2]]


@pytest.mark.parametrize(
    ("op", "source", "args"),
    [
        ("Conv", "conv_op.cc", {"kernel": 1}),
        ("MaxPool", "pool_op.cc", {"kernel": 1}),
        ("AveragePool", "pool_op.cc", {"kernel": 1}),
    ],
)
def test_conv_and_pooling_are_float_only(
    run1: Run1, op: str, source: str, args: dict[str, int]
) -> None:
    x = np.arange(4, dtype=np.uint8).reshape(1, 1, 2, 2)
    inputs = [x, np.ones((1, 1, 1, 1), dtype=np.uint8)] if op == "Conv" else [x]
    with pytest.raises(BadInputError) as error:
        run1(op, *inputs, **args)
    assert _message(op, FLOAT_ONLY, source, "uint8") in str(error.value)
    floats = [i.astype(F32) for i in inputs]
    assert run1(op, *floats, **args).reshape(-1).tolist() == [0, 1, 2, 3]


def test_cast_to_float16_is_refused(run1: Run1) -> None:
    # CastOp<CPUContext>::SetBody: "Casting to and from at::Half on CPU is not supported yet".
    with pytest.raises(BadInputError, match=r"cannot cast to float16 on CPU .*cast_op\.cc"):
        run1("Cast", np.array([1.0], dtype=F32), to=12)  # TensorProto.FLOAT16
    assert run1("Cast", np.array([-1, 2], dtype=np.int8), to=1).dtype == F32


def test_round_two_registered_types_still_run(run1: Run1) -> None:
    a, b = np.array([1, 2], dtype=I32), np.array([3, 4], dtype=I32)
    assert run1("Sum", a, b).tolist() == [4, 6]
    pair = np.array([1.0, 2.0], dtype=F64), np.array([2.0, 4.0], dtype=F64)
    assert run1("Mean", *pair).tolist() == [1.5, 3.0]
    assert run1("Scale", pair[0], scale=2.0).tolist() == [2, 4]
    assert run1("Mod", np.array([7, -7], dtype=I64), divisor=3).tolist() == [1, -1]
    assert run1("ArgMax", np.array([[1, 5, 2]], dtype=I32), axis=1).tolist() == [[1]]
    assert run1("Transpose", np.array([[1, 2]], dtype=I64)).tolist() == [[1], [2]]
    assert run1("Tile", np.array([1, 2], dtype=np.uint8), tiles=2).tolist() == [1, 2, 1, 2]
    assert run1("Relu", np.array([-1.0, 2.0], dtype=F32)).tolist() == [0, 2]
    assert run1("Clip", np.array([-1.0, 2.0], dtype=F32), min=0.0, max=1.0).tolist() == [0, 1]
    assert run1("Max", np.array([1.0, 5.0], dtype=F32), np.array([3.0, 2.0], dtype=F32)).tolist() == [3, 5]  # fmt: skip
    assert run1("TopK", np.array([1.0, 3.0, 2.0], dtype=F32), k=2).tolist() == [3, 2]


def test_mean_scales_by_the_float_one_over_n(run1: Run1) -> None:
    # MeanOp (mean_op.h): the sum times math::Scale's float factor 1.0f / n, for double too.
    ones = np.ones(1, dtype=F64)
    got = run1("Mean", ones, ones, ones)
    assert got.tolist() == [3 * float(np.float32(1) / np.float32(3))]
    assert got[0] != 1.0


def test_gather_takes_any_data_and_int32_or_int64_indices(run1: Run1) -> None:
    data = np.array([True, False, True])
    assert run1("Gather", data, np.array([2, 1], dtype=I32)).tolist() == [True, False]
    with pytest.raises(BadInputError) as error:
        run1("Gather", data, np.array([2, 1], dtype=np.int8))
    message = _message("Gather", "int32, int64 only", "gather_op.h", "int8", "INDICES (input 1)")
    assert message in str(error.value)
