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
