"""Elementwise math: unary functions, binary arithmetic and comparisons, N-ary Sum/Mean/Max/Min.

Binary ops broadcast two ways, as Caffe2 does. With ``broadcast=1`` (the legacy form), B's shape,
with its leading and trailing 1s dropped, must equal a run of A's dimensions starting at ``axis``
(default: B aligned to A's end; ``axis_str`` names the axis by its letter in ``order``), and the
output has A's shape. Without it, numpy's multidirectional broadcasting applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from unframe.backends.caffe2.native.dtypes import DataType
from unframe.backends.caffe2.native.executor.registry import (
    NUMERIC_TYPES,
    KernelTypes,
    OpContext,
    caffe2_op,
    numpy_dtype,
)

# The element types Caffe2 registers these ops' CPU kernels for, from the files named (the
# binary ops check input 0, which Caffe2 dispatches on; the inputs must share one type).
_ARITHMETIC = {
    name: KernelTypes.of(f"elementwise_{name.lower()}_op.cc", *NUMERIC_TYPES)
    for name in ("Add", "Sub", "Mul", "Div")
}
# REGISTER_CPU_COMPARE_OPERATOR: TensorTypes<bool, int32_t, int64_t, float, double>.
_COMPARISON = KernelTypes.of("elementwise_ops.cc", np.bool_, *NUMERIC_TYPES)
_FLOAT_ONLY = {
    name: KernelTypes.of(f"{name.lower()}_op.cc", np.float32)
    for name in ("Floor", "Ceil", "Exp", "Log", "Log1p", "Abs", "Sin", "Cos", "Acos")
}
_UNARY_TYPES = {
    **_FLOAT_ONLY,
    # UnaryElementwiseOp<TensorTypes<float>, ...> in each file.
    "Sqr": KernelTypes.of("sqr_op.cc", np.float32),
    "Reciprocal": KernelTypes.of("reciprocal_op.cc", np.float32),
    "Erf": KernelTypes.of("erf_op.cc", np.float32),
    "Sqrt": KernelTypes.of("sqrt_op.cc", np.float32, np.float64),
    "Negative": KernelTypes.of("negative_op.cc", *NUMERIC_TYPES),
    "Sign": KernelTypes.of("elementwise_ops.cc", *NUMERIC_TYPES),
}
_POW = KernelTypes.of("pow_op.cc", np.float32)
_VARIADIC_TYPES = {
    # SumOp::RunOnDevice: IsType<float>, else IsType<int>, else CAFFE_THROW.
    "Sum": KernelTypes.of("utility_ops.h", np.float32, np.int32),
    # MeanOp::RunOnDevice: IsType<float>, else IsType<double>, else CAFFE_THROW.
    "Mean": KernelTypes.of("mean_op.h", np.float32, np.float64),
    # MaxOp<float, CPUContext>, MinOp<float, CPUContext>.
    "Max": KernelTypes.of("minmax_ops.cc", np.float32),
    "Min": KernelTypes.of("minmax_ops.cc", np.float32),
}
# ClipOp<float, CPUContext>.
_CLIP = KernelTypes.of("clip_op.cc", np.float32)
# ScaleOp: DispatchHelper<TensorTypes<float, double>>.
_SCALE = KernelTypes.of("scale_op.h", np.float32, np.float64)
# ModOp: DispatchHelper<TensorTypes<int, int64_t>> on DATA.
_MOD = KernelTypes.of("mod_op.h", np.int32, np.int64)
# CastOp<CPUContext>::DoRunWithDstType dispatches on the input: TensorTypes<float, int32_t, bool,
# uint8_t, int8_t, uint16_t, int16_t, int64_t, double>; SetBody throws for a FLOAT16 'to'.
_CAST_FROM = KernelTypes.of("cast_op.cc", np.float32, np.int32, np.bool_, np.uint8, np.int8,
                            np.uint16, np.int16, np.int64, np.float64)  # fmt: skip
# WhereOp dispatches on X: TensorTypes<float, double, int, long, std::string, bool>.
_WHERE = KernelTypes.of("elementwise_logical_ops.h", np.float32, np.float64, np.int32, np.int64,
                        object, np.bool_)  # fmt: skip


def binary_operands(ctx: OpContext) -> tuple[np.ndarray, np.ndarray]:
    """A and B reshaped so that numpy broadcasting gives Caffe2's result."""
    a, b = ctx.input(0), ctx.input(1)
    if not ctx.arg_int("broadcast", 0):
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError as error:
            raise ctx.error(f"shapes {a.shape} and {b.shape} do not broadcast") from error
        return a, b
    return a, legacy_broadcast(ctx, a, b)


def legacy_broadcast(ctx: OpContext, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """B reshaped to A's rank per Caffe2's ``broadcast=1`` + ``axis`` rule."""
    axis = ctx.arg_int("axis", -1)
    if ctx.has("axis_str"):
        if ctx.has("axis"):
            raise ctx.error("give axis or axis_str, not both")
        letter = ctx.arg_str("axis_str", "")
        order = ctx.arg_str("order", "NCHW")
        if len(letter) != 1 or letter not in order:
            raise ctx.error(f"axis_str {letter!r} is not one letter of order {order!r}")
        axis = order.index(letter)
    if b.ndim > a.ndim:
        raise ctx.error(f"with broadcast=1, B {b.shape} cannot have more dims than A {a.shape}")
    start = 0
    while start < b.ndim and b.shape[start] == 1:
        start += 1
    end = b.ndim - 1
    while end >= start and b.shape[end] == 1:
        end -= 1
    if start > end:  # B holds one value
        return b.reshape(())
    if axis == -1:
        axis = a.ndim - b.ndim
    if axis < 0:
        raise ctx.error(f"axis {axis} is invalid for legacy broadcasting")
    core = b.shape[start : end + 1]
    offset = axis + start
    if offset + len(core) > a.ndim or tuple(a.shape[offset : offset + len(core)]) != core:
        raise ctx.error(
            f"with broadcast=1 and axis {axis}, B {b.shape} does not match A {a.shape} "
            f"at dimension {offset}"
        )
    return b.reshape((1,) * offset + core + (1,) * (a.ndim - offset - len(core)))


def _same_dtype(ctx: OpContext, a: np.ndarray, b: np.ndarray) -> None:
    if a.dtype != b.dtype:
        raise ctx.error(f"inputs have different types: {a.dtype} and {b.dtype}")


def _register_named(name: str, run: Callable[[OpContext], list[np.ndarray]]) -> None:
    """RUN registered as the Caffe2 op NAME, and named after it so a traceback says which op ran."""
    run.__name__ = name.lower()
    caffe2_op(name)(run)


def _arith(name: str, function: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    def run(ctx: OpContext) -> list[np.ndarray]:
        _ARITHMETIC[name].check(ctx, ctx.input(0))
        a, b = binary_operands(ctx)
        _same_dtype(ctx, a, b)
        out_shape = a.shape if ctx.arg_int("broadcast", 0) else None
        y = np.asarray(function(a, b)).astype(a.dtype, copy=False)
        return [y.reshape(out_shape) if out_shape is not None else y]

    _register_named(name, run)


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        if np.any(b == 0):
            raise ZeroDivisionError("integer division by zero")
        # C++ integer division truncates toward zero.
        quotient = np.abs(a) // np.abs(b)
        return np.where((a < 0) != (b < 0), -quotient, quotient)
    return np.divide(a, b)


_arith("Add", np.add)
_arith("Sub", np.subtract)
_arith("Mul", np.multiply)
_arith("Div", _divide)


def _boolean_result(ctx: OpContext, result: np.ndarray, a: np.ndarray) -> np.ndarray:
    """A comparison's or logical op's output: bool, and A's shape under legacy ``broadcast=1``."""
    y = np.asarray(result, dtype=np.bool_)
    return np.broadcast_to(y, a.shape).copy() if ctx.arg_int("broadcast", 0) else y


def _compare(name: str, function: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    def run(ctx: OpContext) -> list[np.ndarray]:
        _COMPARISON.check(ctx, ctx.input(0))
        a, b = binary_operands(ctx)
        _same_dtype(ctx, a, b)
        return [_boolean_result(ctx, function(a, b), a)]

    _register_named(name, run)


_compare("EQ", np.equal)
_compare("NE", np.not_equal)
_compare("LT", np.less)
_compare("LE", np.less_equal)
_compare("GT", np.greater)
_compare("GE", np.greater_equal)


def _logical(name: str, function: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    def run(ctx: OpContext) -> list[np.ndarray]:
        a, b = binary_operands(ctx)
        if a.dtype != np.bool_ or b.dtype != np.bool_:
            raise ctx.error(f"inputs must be bool, got {a.dtype} and {b.dtype}")
        return [_boolean_result(ctx, function(a, b), a)]

    _register_named(name, run)


_logical("And", np.logical_and)
_logical("Or", np.logical_or)
_logical("Xor", np.logical_xor)


@caffe2_op("Not")
def logical_not(ctx: OpContext) -> list[np.ndarray]:
    x = ctx.input(0)
    if x.dtype != np.bool_:
        raise ctx.error(f"input must be bool, got {x.dtype}")
    return [np.logical_not(x)]


# -- unary --------------------------------------------------------------------------------------
_erf = np.vectorize(math.erf, otypes=[np.float64])


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise (numpy has none)."""
    return _erf(x.astype(np.float64))


def _unary(
    name: str, function: Callable[[np.ndarray], np.ndarray], *, floating: bool = True
) -> None:
    types = _UNARY_TYPES.get(name)

    def run(ctx: OpContext) -> list[np.ndarray]:
        x = ctx.input(0)
        if types is not None:
            types.check(ctx, x)
        if floating and not np.issubdtype(x.dtype, np.floating):
            raise ctx.error(f"expects a floating-point input, got {x.dtype}")
        with np.errstate(all="ignore"):  # log(0), sqrt(-1)... give inf/nan as in C++
            return [np.asarray(function(x)).astype(x.dtype, copy=False)]

    _register_named(name, run)


_unary("Sqr", np.square, floating=False)
_unary("Cube", lambda x: x * x * x, floating=False)
_unary("Sqrt", np.sqrt)
_unary("Rsqrt", lambda x: 1.0 / np.sqrt(x))
_unary("Exp", np.exp)
_unary("Log", np.log)
_unary("Log1p", np.log1p)
_unary("Abs", np.abs, floating=False)
_unary("Negative", np.negative, floating=False)
_unary("Sign", np.sign, floating=False)
_unary("Reciprocal", np.reciprocal)
_unary("Floor", np.floor)
_unary("Ceil", np.ceil)
_unary("Cos", np.cos)
_unary("Sin", np.sin)
_unary("Tan", np.tan)
_unary("Acos", np.arccos)
_unary("Asin", np.arcsin)
_unary("Atan", np.arctan)
_unary("Cosh", np.cosh)
_unary("Sinh", np.sinh)
_unary("Erf", erf)


# -- N-ary --------------------------------------------------------------------------------------
def _same_shapes(ctx: OpContext) -> list[np.ndarray]:
    """The inputs of Sum/Mean/Max/Min, which Caffe2 requires to share shape and type."""
    inputs = [ctx.input(i) for i in range(max(ctx.num_inputs, 1))]
    _VARIADIC_TYPES[ctx.op.type].check(ctx, inputs[0])
    for i, x in enumerate(inputs[1:], start=1):
        if x.shape != inputs[0].shape or x.dtype != inputs[0].dtype:
            raise ctx.error(
                f"input {i} is {x.dtype} {x.shape}, input 0 is {inputs[0].dtype} "
                f"{inputs[0].shape}; all inputs must have the same shape and type"
            )
    return inputs


@caffe2_op("Sum")
def sum_op(ctx: OpContext) -> list[np.ndarray]:
    inputs = _same_shapes(ctx)
    total = inputs[0].copy()
    for x in inputs[1:]:
        total += x
    return [total]


@caffe2_op("Mean")
def mean_op(ctx: OpContext) -> list[np.ndarray]:
    """The inputs added in order, then multiplied by the float 1.0f / n (MeanOp, mean_op.h: its
    math::Scale takes a float factor, for double too)."""
    inputs = _same_shapes(ctx)
    total = inputs[0].copy()
    for x in inputs[1:]:
        total += x
    factor = np.float32(1.0) / np.float32(len(inputs))
    return [(total * total.dtype.type(factor)).astype(inputs[0].dtype)]


@caffe2_op("Max")
def max_op(ctx: OpContext) -> list[np.ndarray]:
    inputs = _same_shapes(ctx)
    return [np.maximum.reduce(inputs) if len(inputs) > 1 else inputs[0].copy()]


@caffe2_op("Min")
def min_op(ctx: OpContext) -> list[np.ndarray]:
    inputs = _same_shapes(ctx)
    return [np.minimum.reduce(inputs) if len(inputs) > 1 else inputs[0].copy()]


# -- others -------------------------------------------------------------------------------------
@caffe2_op("Pow")
def pow_op(ctx: OpContext) -> list[np.ndarray]:
    """X ** exponent, the exponent an argument or (broadcast like Mul) a second input."""
    x = ctx.input(0)
    _POW.check(ctx, x)
    if ctx.has("exponent"):
        if ctx.num_inputs > 1:
            raise ctx.error("give the exponent as an argument or as an input, not both")
        with np.errstate(all="ignore"):
            return [np.power(x, ctx.arg_float("exponent", 1.0)).astype(x.dtype)]
    a, b = binary_operands(ctx)
    with np.errstate(all="ignore"):
        y = np.power(a, b).astype(x.dtype)
    return [y.reshape(x.shape) if ctx.arg_int("broadcast", 0) else y]


@caffe2_op("Clip")
def clip(ctx: OpContext) -> list[np.ndarray]:
    x = ctx.input(0)
    _CLIP.check(ctx, x)
    low = ctx.arg_float("min", -np.inf)
    high = ctx.arg_float("max", np.inf)
    if low > high:
        raise ctx.error(f"min ({low}) is larger than max ({high})")
    return [np.clip(x, low, high).astype(x.dtype)]


@caffe2_op("Scale")
def scale(ctx: OpContext) -> list[np.ndarray]:
    x = ctx.input(0)
    _SCALE.check(ctx, x)
    return [(x * ctx.arg_float("scale", 1.0)).astype(x.dtype)]


@caffe2_op("Mod")
def mod(ctx: OpContext) -> list[np.ndarray]:
    """Integer remainder; its sign follows the dividend (C++ %) unless sign_follow_divisor=1."""
    x = ctx.input(0)
    _MOD.check(ctx, x)
    divisor = ctx.arg_int("divisor", 0)
    if divisor == 0:
        raise ctx.error("argument 'divisor' must be given and non-zero")
    if not np.issubdtype(x.dtype, np.integer):
        raise ctx.error(f"expects an integer input, got {x.dtype}")
    if ctx.arg_int("sign_follow_divisor", 0):
        return [np.mod(x, divisor).astype(x.dtype)]
    return [np.fmod(x, divisor).astype(x.dtype)]


@caffe2_op("Where")
def where(ctx: OpContext) -> list[np.ndarray]:
    """X where C else Y; with broadcast_on_rows=1 a 1-D C picks whole rows."""
    c, x, y = ctx.input(0), ctx.input(1), ctx.input(2)
    _WHERE.check(ctx, x, "X (input 1)")
    if c.dtype != np.bool_:
        raise ctx.error(f"the condition must be bool, got {c.dtype}")
    if x.shape != y.shape or x.dtype != y.dtype:
        raise ctx.error(f"X {x.dtype} {x.shape} and Y {y.dtype} {y.shape} must match")
    if ctx.arg_int("broadcast_on_rows", 0):
        if c.ndim != 1 or x.ndim < 1 or c.shape[0] != x.shape[0]:
            raise ctx.error(f"with broadcast_on_rows, C {c.shape} must be X's first dim {x.shape}")
        c = c.reshape((-1,) + (1,) * (x.ndim - 1))
    elif c.shape != x.shape:
        raise ctx.error(f"C {c.shape} must have X's shape {x.shape}")
    return [np.where(c, x, y)]


@caffe2_op("Cast")
def cast(ctx: OpContext) -> list[np.ndarray]:
    """Casts to ``to``: a TensorProto.DataType number or its name (FLOAT, INT32...)."""
    x = ctx.input(0)
    arg = ctx.arg("to")
    if arg is None:
        raise ctx.error("argument 'to' is required")
    if arg.HasField("s"):
        name = arg.s.decode("utf-8", errors="replace").upper()
        if name not in DataType.keys():
            raise ctx.error(f"unknown data type {name!r} in argument 'to'")
        data_type = DataType.Value(name)
    else:
        data_type = ctx.arg_int("to", 0)
    dtype = numpy_dtype(ctx, data_type)
    if dtype == np.dtype(np.float16):
        # cast_op.cc, CastOp<CPUContext>::SetBody.
        raise ctx.error(
            "Caffe2 cannot cast to float16 on CPU (caffe2/operators/cast_op.cc: 'Casting to and "
            "from at::Half on CPU is not supported yet')"
        )
    if x.dtype != np.dtype(object):
        _CAST_FROM.check(ctx, x)
    if dtype == np.dtype(object) or x.dtype == np.dtype(object):
        raise ctx.unsupported("casts from or to STRING are not supported")
    return [x.astype(dtype)]
