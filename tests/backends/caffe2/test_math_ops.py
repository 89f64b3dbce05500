"""Elementwise ops: broadcasting rules, arithmetic, comparisons, unary functions, fills."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from unframe.shared_ir.errors import BadInputError, UnsupportedError

Run1 = Callable[..., np.ndarray]
RunOp = Callable[..., list[np.ndarray]]
F32 = np.float32


def test_legacy_broadcast_with_axis(run1: Run1) -> None:
    a = np.arange(2 * 3 * 4 * 5, dtype=F32).reshape(2, 3, 4, 5)
    b = np.arange(12, dtype=F32).reshape(3, 4)
    y = run1("Add", a, b, broadcast=1, axis=1)
    for n, c, h, w in [(0, 0, 0, 0), (1, 2, 3, 4), (0, 1, 2, 3)]:
        assert y[n, c, h, w] == a[n, c, h, w] + b[c, h]
    # Default axis: B lines up with A's last dims.
    tail = np.arange(5, dtype=F32)
    np.testing.assert_array_equal(run1("Mul", a, tail, broadcast=1), a * tail)
    # Leading and trailing 1s of B are ignored; axis counts B's dims as given.
    ones = np.arange(3, dtype=F32).reshape(1, 3, 1)
    y = run1("Sub", a, ones, broadcast=1, axis=0)
    assert y[1, 2, 3, 4] == a[1, 2, 3, 4] - 2
    # axis_str names the axis by its letter in order.
    per_channel = np.array([10, 20, 30], dtype=F32)
    y = run1("Add", a, per_channel, broadcast=1, axis_str="C", order="NCHW")
    assert y[1, 2, 0, 0] == a[1, 2, 0, 0] + 30
    scalar = np.array([2.0], dtype=F32)
    np.testing.assert_array_equal(run1("Div", a, scalar, broadcast=1), a / 2)


def test_legacy_broadcast_mismatch_is_reported(run1: Run1) -> None:
    a = np.zeros((2, 3, 4), dtype=F32)
    with pytest.raises(BadInputError, match="does not match"):
        run1("Add", a, np.zeros(3, dtype=F32), broadcast=1)  # would need axis=1
    with pytest.raises(BadInputError, match="different types"):
        run1("Add", a, np.zeros(4, dtype=np.int32), broadcast=1)


def test_numpy_broadcast_without_the_flag(run1: Run1) -> None:
    a = np.arange(6, dtype=F32).reshape(2, 3, 1)
    b = np.arange(4, dtype=F32).reshape(1, 4)
    y = run1("Mul", a, b)
    assert y.shape == (2, 3, 4)
    assert y[1, 2, 3] == 5 * 3
    with pytest.raises(BadInputError, match="do not broadcast"):
        run1("Add", np.zeros((2, 3), F32), np.zeros((4,), F32))


def test_integer_division_truncates_toward_zero(run1: Run1) -> None:
    a = np.array([-7, 7, -7, 6], dtype=np.int32)
    b = np.array([2, -2, -2, 3], dtype=np.int32)
    np.testing.assert_array_equal(run1("Div", a, b), [-3, -3, 3, 2])
    with pytest.raises(BadInputError, match="division by zero"):
        run1("Div", a, np.zeros(4, dtype=np.int32))


def test_comparisons_and_logic(run1: Run1) -> None:
    a = np.array([[1, 2, 3], [4, 5, 6]], dtype=F32)
    b = np.array([2, 2, 7], dtype=F32)
    assert run1("LT", a, b, broadcast=1).tolist() == [[True, False, True], [False, False, True]]
    assert run1("GE", a, b).tolist() == [[False, True, False], [True, True, False]]
    assert run1("EQ", a, b).dtype == np.bool_
    t = np.array([True, True, False, False])
    f = np.array([True, False, True, False])
    assert run1("And", t, f).tolist() == [True, False, False, False]
    assert run1("Or", t, f).tolist() == [True, True, True, False]
    assert run1("Xor", t, f).tolist() == [False, True, True, False]
    assert run1("Not", t).tolist() == [False, False, True, True]
    with pytest.raises(BadInputError, match="bool"):
        run1("And", a, a)


def test_nary_sum_mean_max_min(run1: Run1) -> None:
    a = np.array([1, 5, -2], dtype=F32)
    b = np.array([4, 0, -1], dtype=F32)
    c = np.array([0, 2, -3], dtype=F32)
    assert run1("Sum", a, b, c).tolist() == [5, 7, -6]
    assert run1("Mean", a, b, c).tolist() == pytest.approx([5 / 3, 7 / 3, -2])
    assert run1("Max", a, b, c).tolist() == [4, 5, -1]
    assert run1("Min", a, b, c).tolist() == [0, 0, -3]
    assert run1("Sum", a).tolist() == [1, 5, -2]
    with pytest.raises(BadInputError, match="same shape"):
        run1("Sum", a, np.ones((1, 3), F32))


def test_unary_functions(run1: Run1) -> None:
    x = np.array([0.25, 1.0, 4.0], dtype=F32)
    assert run1("Sqr", x).tolist() == [0.0625, 1, 16]
    assert run1("Sqrt", x).tolist() == [0.5, 1, 2]
    assert run1("Rsqrt", x).tolist() == [2, 1, 0.5]
    assert run1("Reciprocal", x).tolist() == [4, 1, 0.25]
    assert run1("Log", x).tolist() == pytest.approx([math.log(0.25), 0, math.log(4)], rel=1e-6)
    assert run1("Exp", x).tolist() == pytest.approx([math.exp(0.25), math.e, math.exp(4)], 1e-6)
    z = np.array([-1.5, 0.0, 2.5], dtype=F32)
    assert run1("Abs", z).tolist() == [1.5, 0, 2.5]
    assert run1("Negative", z).tolist() == [1.5, 0, -2.5]
    assert run1("Sign", z).tolist() == [-1, 0, 1]
    assert run1("Floor", z).tolist() == [-2, 0, 2]
    assert run1("Ceil", z).tolist() == [-1, 0, 3]
    assert run1("Cube", z).tolist() == [-3.375, 0, 15.625]
    assert run1("Erf", z).tolist() == pytest.approx([math.erf(v) for v in (-1.5, 0, 2.5)], 1e-6)
    for name, fn in [("Sin", math.sin), ("Cos", math.cos), ("Tan", math.tan), ("Atan", math.atan),
                     ("Sinh", math.sinh), ("Cosh", math.cosh)]:  # fmt: skip
        assert run1(name, z).tolist() == pytest.approx([fn(v) for v in (-1.5, 0, 2.5)], rel=1e-5)
    half = np.array([-0.5, 0.5], dtype=F32)
    assert run1("Asin", half).tolist() == pytest.approx([-math.pi / 6, math.pi / 6], rel=1e-6)
    assert run1("Acos", half).tolist() == pytest.approx([2 * math.pi / 3, math.pi / 3], rel=1e-6)
    assert run1("Log1p", half).tolist() == pytest.approx([math.log(0.5), math.log(1.5)], 1e-6)
    with pytest.raises(BadInputError, match="floating-point"):
        run1("Tan", np.array([4], dtype=np.int32))


def test_pow_clip_scale_mod(run1: Run1) -> None:
    x = np.array([1, 2, 3], dtype=F32)
    assert run1("Pow", x, exponent=2.0).tolist() == [1, 4, 9]
    assert run1("Pow", x, np.array([3], dtype=F32), broadcast=1).tolist() == [1, 8, 27]
    assert run1("Clip", x, min=1.5, max=2.5).tolist() == [1.5, 2, 2.5]
    assert run1("Clip", x, min=2.0).tolist() == [2, 2, 3]
    assert run1("Scale", x, scale=0.5).tolist() == [0.5, 1, 1.5]
    ints = np.array([-7, 7, -3], dtype=np.int64)
    assert run1("Mod", ints, divisor=3).tolist() == [-1, 1, 0]  # C++ %: sign of the dividend
    assert run1("Mod", ints, divisor=3, sign_follow_divisor=1).tolist() == [2, 1, 0]
    with pytest.raises(BadInputError, match="divisor"):
        run1("Mod", ints)


def test_where_and_cast(run1: Run1) -> None:
    c = np.array([[True, False], [False, True]])
    x = np.array([[1, 2], [3, 4]], dtype=F32)
    y = np.array([[10, 20], [30, 40]], dtype=F32)
    assert run1("Where", c, x, y).tolist() == [[1, 20], [30, 4]]
    rows = np.array([False, True])
    assert run1("Where", rows, x, y, broadcast_on_rows=1).tolist() == [[10, 20], [3, 4]]
    f = np.array([1.7, -1.7, 0.0], dtype=F32)
    as_int = run1("Cast", f, to=2)  # INT32: truncates toward zero, as C++ does
    assert as_int.dtype == np.int32 and as_int.tolist() == [1, -1, 0]
    assert run1("Cast", f, to="bool").tolist() == [True, True, False]
    assert run1("Cast", f, to=13).dtype == np.float64
    with pytest.raises(BadInputError, match="unknown data type"):
        run1("Cast", f, to="quaternion")
    with pytest.raises(UnsupportedError, match="STRING"):
        run1("Cast", f, to=4)


# -- fills --------------------------------------------------------------------------------------
def test_given_tensor_fills(run1: Run1) -> None:
    y = run1("GivenTensorFill", shape=[2, 2], values=[1.0, 2.0, 3.0, 4.5])
    assert y.dtype == np.float32 and y.tolist() == [[1, 2], [3, 4.5]]
    assert run1("GivenTensorIntFill", shape=[3], values=[1, -2, 3]).dtype == np.int32
    big = run1("GivenTensorInt64Fill", shape=[1], values=[2**40])
    assert big.dtype == np.int64 and big.tolist() == [2**40]
    assert run1("GivenTensorBoolFill", shape=[2], values=[1, 0]).tolist() == [True, False]
    assert run1("GivenTensorDoubleFill", shape=[1], values=[0.1]).dtype == np.float64
    assert run1("GivenTensorFill", shape=[2], values=[1, 2], dtype=10).dtype == np.int64
    with pytest.raises(BadInputError, match="3 values for shape"):
        run1("GivenTensorFill", shape=[2, 2], values=[1.0, 2.0, 3.0])


def test_constant_fill(run1: Run1) -> None:
    y = run1("ConstantFill", shape=[2, 3], value=1.5)
    assert y.dtype == np.float32 and y.shape == (2, 3) and (y == 1.5).all()
    # Without dtype an integer value gives INT64 (Caffe2 infers the type from the value).
    assert run1("ConstantFill", shape=[2], value=7).dtype == np.int64
    assert run1("ConstantFill", shape=[2], value=7.0, dtype=2).dtype == np.int32
    assert run1("ConstantFill", shape=[1], value=1, dtype=5).tolist() == [True]
    assert run1("ConstantFill", shape=[3]).tolist() == [0, 0, 0]
    like = run1("ConstantFill", np.zeros((2, 4), np.float32), value=2.0, extra_shape=[3])
    assert like.shape == (2, 4, 3)
    shaped = run1("ConstantFill", np.array([3, 1], np.int64), value=1.0, input_as_shape=1)
    assert shaped.shape == (3, 1)
    with pytest.raises(BadInputError, match="not both"):
        run1("ConstantFill", np.zeros(2, F32), shape=[2])
    with pytest.raises(BadInputError, match="extra_shape needs an input"):
        run1("ConstantFill", shape=[2], extra_shape=[2])


def test_random_fills_have_the_right_shape_and_are_repeatable(run1: Run1) -> None:
    for op in ("UniformFill", "XavierFill", "MSRAFill", "GaussianFill"):
        a = run1(op, shape=[4, 3, 2, 2])
        assert a.shape == (4, 3, 2, 2) and a.dtype == np.float32
        np.testing.assert_array_equal(a, run1(op, shape=[4, 3, 2, 2]))
    u = run1("UniformFill", shape=[1000], min=-2.0, max=-1.0)
    assert u.min() >= -2 and u.max() <= -1
    bound = math.sqrt(3 / 12)  # Xavier: fan_in = 3 * 2 * 2
    assert np.abs(run1("XavierFill", shape=[50, 3, 2, 2])).max() <= bound
    assert run1("RangeFill", shape=[2, 2]).tolist() == [[0, 1], [2, 3]]
