"""Elementwise ops: unary math, activations, binary arithmetic, comparison and logic."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import Converter, ExportContext, caffe2_dtype
from unframe.backends.caffe2.ops import _runtime as runtime
from unframe.backends.caffe2.ops._common import (
    NARROW_INTEGERS,
    NUMERIC,
    attr_float,
    attr_int,
    attr_str,
    carried,
    carried_back,
    cast,
    expanded_blobs,
    expanded_inputs,
    required,
    since,
)
from unframe.backends.caffe2.registry import ops

# ONNX op -> Caffe2 op of the same meaning, one input and one output, no arguments.
_UNARY = {
    "Abs": "Abs", "Acos": "Acos", "Asin": "Asin", "Atan": "Atan", "Cos": "Cos", "Sin": "Sin",
    "Tan": "Tan", "Cosh": "Cosh", "Sinh": "Sinh", "Tanh": "Tanh", "Exp": "Exp", "Log": "Log",
    "Sqrt": "Sqrt", "Neg": "Negative", "Sign": "Sign", "Ceil": "Ceil", "Floor": "Floor",
    "Not": "Not", "Relu": "Relu", "Sigmoid": "Sigmoid", "Softsign": "Softsign",
    "Softplus": "Softplus", "Erf": "Erf", "Reciprocal": "Reciprocal", "Mish": "Mish",
    "Identity": "Copy",
}  # fmt: skip

# ONNX binary op -> Caffe2 op; both broadcast numpy-style (Caffe2's broadcast=0 default).
_BINARY = {
    "Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Equal": "EQ", "Less": "LT",
    "LessOrEqual": "LE", "Greater": "GT", "GreaterOrEqual": "GE", "And": "And", "Or": "Or",
    "Xor": "Xor", "BitwiseAnd": "BitwiseAnd", "BitwiseOr": "BitwiseOr",
    "BitwiseXor": "BitwiseXor",
}  # fmt: skip

# Variadic ONNX op -> Caffe2 op that takes any number of same-shaped inputs.
_VARIADIC = {"Sum": "Sum", "Mean": "Mean", "Max": "Max", "Min": "Min"}


# Caffe2 ops registered for float only (each in its own <name>_op.cc): in double, the ones
# ``_runtime`` builds from other ops; the others are refused when exporting.
_DOUBLE_FORMS = {
    "Abs": runtime.absolute, "Floor": runtime.floor, "Ceil": runtime.ceil, "Exp": runtime.exp,
    "Log": runtime.log, "Reciprocal": runtime.reciprocal,
}  # fmt: skip
# Softplus (softplus_op.cc), Erf (erf_op.cc), Relu (relu_op.cc): float only too.
_FLOAT_ONLY = {"Acos", "Cos", "Sin", "Tanh", "Sigmoid", "Softsign", "Softplus", "Erf", "Relu",
               *_DOUBLE_FORMS}  # fmt: skip
#: The types relu() computes exactly besides float; 8- and 16-bit integers go through int64.
_RELU_TYPES = frozenset({ir.DataType.DOUBLE, ir.DataType.INT32, ir.DataType.INT64})


def _relu(node: ir.Node, ctx: ExportContext, dtype: ir.DataType) -> None:
    blob, back = carried(ctx, ctx.input(0), dtype, _RELU_TYPES, "Relu (relu_op.cc)")
    carried_back(ctx, runtime.relu(ctx, blob, ir.DataType.INT64 if back else dtype),
                 back, ctx.output(node))  # fmt: skip


def _one_to_one(onnx_type: str, caffe2_type: str, version: int) -> Converter:
    def convert(node: ir.Node, ctx: ExportContext) -> None:
        dtype = ctx.dtype(node.inputs[0])
        if caffe2_type == "Relu" and dtype not in (None, ir.DataType.FLOAT):
            _relu(node, ctx, dtype)
            return
        if caffe2_type in _FLOAT_ONLY and dtype not in (None, ir.DataType.FLOAT):
            form = _DOUBLE_FORMS.get(caffe2_type)
            if form is None or dtype != ir.DataType.DOUBLE:
                raise ctx.error(f"Caffe2 runs {caffe2_type} on float only, not {dtype.name}")
            ctx.emit("Copy", [form(ctx, ctx.input(0), dtype)], [ctx.output(node)])
            return
        ctx.emit(caffe2_type, [ctx.input(0)], [ctx.output(node)])

    convert.__name__ = convert.__qualname__ = f"{onnx_type.lower()}_v{version}"
    return convert


_ARITHMETIC = {"Add", "Sub", "Mul", "Div"}
_COMPARISONS = {"EQ", "LT", "LE", "GT", "GE"}


def _binary(onnx_type: str, caffe2_type: str, version: int) -> Converter:
    def convert(node: ir.Node, ctx: ExportContext) -> None:
        inputs = [ctx.input(0), ctx.input(1)]
        dtype = ctx.dtype(node.inputs[0])
        if dtype in NARROW_INTEGERS and caffe2_type in _ARITHMETIC | _COMPARISONS:
            wide = [cast(ctx, blob, ir.DataType.INT64) for blob in inputs]
            if caffe2_type in _COMPARISONS:
                ctx.emit(caffe2_type, wide, [ctx.output(node)])
                return
            result = ctx.temp(caffe2_type, wide, caffe2_type.lower())
            ctx.emit("Cast", [result], [ctx.output(node)], to=caffe2_dtype(dtype))
            return
        ctx.emit(caffe2_type, inputs, [ctx.output(node)])

    convert.__name__ = convert.__qualname__ = f"{onnx_type.lower()}_v{version}"
    return convert


#: The element types of Caffe2's Sum (utility_ops.h: float, int32), Max and Min
#: (minmax_ops.cc: float) and Mean (mean_op.h: float, double; but it multiplies by the float
#: 1.0f / n, which for double is not ONNX's sum / n, so double is built from Add and Div).
_VARIADIC_TYPES = {
    "Sum": frozenset({ir.DataType.FLOAT, ir.DataType.INT32}),
    "Mean": frozenset({ir.DataType.FLOAT}),
    "Max": frozenset({ir.DataType.FLOAT}),
    "Min": frozenset({ir.DataType.FLOAT}),
}


def _variadic(onnx_type: str, caffe2_type: str, version: int) -> Converter:
    def convert(node: ir.Node, ctx: ExportContext) -> None:
        dtype = ctx.dtype(node.inputs[0])
        if dtype is not None and dtype not in _VARIADIC_TYPES[caffe2_type]:
            _variadic_in(node, ctx, caffe2_type, dtype)
            return
        inputs = expanded_inputs(ctx, node, range(len(node.inputs)))
        if len(inputs) == 1:
            ctx.emit("Copy", inputs, [ctx.output(node)])
        else:
            ctx.emit(caffe2_type, inputs, [ctx.output(node)])

    convert.__name__ = convert.__qualname__ = f"{onnx_type.lower()}_v{version}"
    return convert


def _variadic_in(node: ir.Node, ctx: ExportContext, caffe2_type: str, dtype: ir.DataType) -> None:
    """Sum, Mean, Max or Min of a type Caffe2's op lacks: pairwise, in input order, by Add (then
    a Div for Mean, as ONNX's sum / n) or by comparisons and Where, each exact; 8- and 16-bit
    integers in int64, cast back."""
    if dtype not in NUMERIC and dtype not in NARROW_INTEGERS:
        names = ", ".join(sorted(t.name for t in _VARIADIC_TYPES[caffe2_type]))
        raise ctx.error(f"Caffe2 registers {caffe2_type} for {names} only, not {dtype.name}")
    blobs = expanded_inputs(ctx, node, range(len(node.inputs)), widen=True)
    work = ir.DataType.INT64 if dtype in NARROW_INTEGERS else dtype
    result = blobs[0]
    for blob in blobs[1:]:
        if caffe2_type in ("Sum", "Mean"):
            result = ctx.temp("Add", [result, blob], "sum")
        else:
            result = runtime.extreme(ctx, result, blob, work, caffe2_type)
    if caffe2_type == "Mean":
        count = runtime.like(ctx, ctx.scalar(float(len(blobs)), work), result)
        result = ctx.temp("Div", [result, count], "mean")
    carried_back(ctx, result, dtype if work != dtype else None, ctx.output(node))


for _onnx, _caffe2 in _UNARY.items():
    _since = since(_onnx, 6)
    ops.register(_onnx, since=_since)(_one_to_one(_onnx, _caffe2, _since))
for _onnx, _caffe2 in _BINARY.items():
    _since = since(_onnx, 7)
    ops.register(_onnx, since=_since)(_binary(_onnx, _caffe2, _since))
for _onnx, _caffe2 in _VARIADIC.items():
    _since = since(_onnx, 8)
    ops.register(_onnx, since=_since)(_variadic(_onnx, _caffe2, _since))


@ops.register("Pow", since=7)
def pow_v7(node: ir.Node, ctx: ExportContext) -> None:
    base, exponent = expanded_inputs(ctx, node, [0, 1])
    base_type, exp_type = ctx.dtype(node.inputs[0]), ctx.dtype(node.inputs[1])
    if base_type in (ir.DataType.INT32, ir.DataType.INT64):
        if exp_type is None or exp_type.is_floating_point():
            raise ctx.error(
                "an integer base with a floating-point exponent has no exact Caffe2 form "
                "(Caffe2's Pow is float only: pow_op.cc)"
            )
        if exp_type != base_type:
            exponent = cast(ctx, exponent, base_type)
        ctx.emit("Copy", [_integer_power(ctx, base, exponent, base_type)], [ctx.output(node)])
        return
    if base_type not in (None, ir.DataType.FLOAT):
        raise ctx.error(f"Caffe2's Pow is float only (pow_op.cc), not {base_type.name}")
    if base_type is not None and exp_type is not None and base_type != exp_type:
        exponent = cast(ctx, exponent, base_type)
    ctx.emit("Pow", [base, exponent], [ctx.output(node)])


def _integer_power(ctx: ExportContext, base: str, exponent: str, dtype: ir.DataType) -> str:
    """base ** exponent for int32 or int64 blobs of one shape, by squaring: one step per bit of
    |exponent|, multiplying in base ** 2**i where the bit is set (wrapping on overflow, as
    numpy's integer power). A negative exponent gives 1 / base ** |exponent| truncated toward
    zero (0 unless |base| is 1), as C's integer division."""
    zero, one, two = (ctx.scalar(v, dtype) for v in (0, 1, 2))
    negative = ctx.temp("LT", [exponent, zero], "negative")
    left = ctx.temp("Where", [negative, ctx.temp("Negative", [exponent]), exponent], "bits")
    result = ctx.temp("Add", [ctx.temp("Mul", [base, zero]), one], "power")
    square = base
    bits = 31 if dtype == ir.DataType.INT32 else 63
    for bit in range(bits):
        half = ctx.temp("Div", [left, two], "half")
        odd = ctx.temp("NE", [left, ctx.temp("Mul", [half, two])], "odd")
        result = ctx.temp("Where", [odd, ctx.temp("Mul", [result, square]), result], "power")
        left = half
        if bit < bits - 1:
            square = ctx.temp("Mul", [square, square], "square")
    nonzero = ctx.temp("Where", [ctx.temp("EQ", [result, zero]), ctx.temp("Add", [result, one]),
                                 result], "nonzero")  # fmt: skip
    inverse = ctx.temp("Div", [ctx.temp("Add", [ctx.temp("Mul", [result, zero]), one]), nonzero])
    return ctx.temp("Where", [negative, inverse, result], "power")


@ops.register("Where", since=9)
def where_v9(node: ir.Node, ctx: ExportContext) -> None:
    dtype = ctx.dtype(node.inputs[1])
    if dtype not in NARROW_INTEGERS:
        ctx.emit("Where", expanded_inputs(ctx, node, [0, 1, 2]), [ctx.output(node)])
        return
    chosen = ctx.temp("Where", expanded_inputs(ctx, node, [0, 1, 2], widen=True), "chosen")
    ctx.emit("Cast", [chosen], [ctx.output(node)], to=caffe2_dtype(dtype))


@ops.register("LeakyRelu", since=6)
def leaky_relu_v6(node: ir.Node, ctx: ExportContext) -> None:
    alpha = attr_float(node, "alpha", 0.01)
    dtype = ctx.dtype(node.inputs[0])
    if dtype == ir.DataType.DOUBLE:
        # Caffe2's LeakyRelu is float only (leaky_relu_op.cc): x where x >= 0, else alpha x.
        x = ctx.input(0)
        scaled = ctx.temp("Mul", [x, ctx.scalar(alpha, dtype)], "scaled")
        negative = ctx.temp("LT", [x, ctx.scalar(0.0, dtype)], "negative")
        ctx.emit("Where", [negative, scaled, x], [ctx.output(node)])
        return
    _float_only(ctx, dtype, "LeakyRelu (leaky_relu_op.cc)")
    ctx.emit("LeakyRelu", [ctx.input(0)], [ctx.output(node)], alpha=alpha)


def _float_only(ctx: ExportContext, dtype: ir.DataType | None, what: str) -> None:
    """Refuses, when exporting, an op Caffe2 registers for float only on another type."""
    if dtype not in (None, ir.DataType.FLOAT):
        raise ctx.error(f"Caffe2 registers {what} for float only, not {dtype.name}")


@ops.register("Elu", since=6)
def elu_v6(node: ir.Node, ctx: ExportContext) -> None:
    _float_only(ctx, ctx.dtype(node.inputs[0]), "Elu (elu_op.cc)")
    ctx.emit("Elu", [ctx.input(0)], [ctx.output(node)], alpha=attr_float(node, "alpha", 1.0))


@ops.register("Selu", since=6)
def selu_v6(node: ir.Node, ctx: ExportContext) -> None:
    alpha = attr_float(node, "alpha", 1.67326319217681884765625)
    gamma = attr_float(node, "gamma", 1.05070102214813232421875)
    ctx.emit("Selu", [ctx.input(0)], [ctx.output(node)], alpha=alpha, scale=gamma)


@ops.register("HardSigmoid", since=6)
def hard_sigmoid_v6(node: ir.Node, ctx: ExportContext) -> None:
    alpha, beta = attr_float(node, "alpha", 0.2), attr_float(node, "beta", 0.5)
    ctx.emit("HardSigmoid", [ctx.input(0)], [ctx.output(node)], alpha=alpha, beta=beta)


@ops.register("HardSwish", since=14)
def hard_swish_v14(node: ir.Node, ctx: ExportContext) -> None:
    x = ctx.input(0)
    gate = ctx.temp("HardSigmoid", [x], "gate", alpha=1.0 / 6.0, beta=0.5)
    ctx.emit("Mul", [x, gate], [ctx.output(node)])


@ops.register("Gelu", since=20)
def gelu_v20(node: ir.Node, ctx: ExportContext) -> None:
    approximate = attr_str(node, "approximate", "none")
    if approximate not in ("none", "tanh"):
        raise ctx.error(f"approximate={approximate!r} has no Caffe2 equivalent")
    fast = int(approximate == "tanh")
    ctx.emit("Gelu", [ctx.input(0)], [ctx.output(node)], fast_gelu=fast)


@ops.register("Swish", since=24)
def swish_v24(node: ir.Node, ctx: ExportContext) -> None:
    alpha = attr_float(node, "alpha", 1.0)
    x = ctx.input(0)
    if alpha == 1.0:
        ctx.emit("Swish", [x], [ctx.output(node)])
        return
    scaled = ctx.temp("Scale", [x], "scaled", scale=alpha)
    gate = ctx.temp("Sigmoid", [scaled], "gate")
    ctx.emit("Mul", [x, gate], [ctx.output(node)])


@ops.register("Celu", since=12)
def celu_v12(node: ir.Node, ctx: ExportContext) -> None:
    # celu(x, a) = a * elu(x / a, 1): the same two branches, exactly.
    alpha = attr_float(node, "alpha", 1.0)
    scaled = ctx.temp("Scale", [ctx.input(0)], "scaled", scale=1.0 / alpha)
    elu = ctx.temp("Elu", [scaled], "elu", alpha=1.0)
    ctx.emit("Scale", [elu], [ctx.output(node)], scale=alpha)


@ops.register("ThresholdedRelu", since=10)
def thresholded_relu_v10(node: ir.Node, ctx: ExportContext) -> None:
    x = node.inputs[0]
    alpha = ctx.scalar(attr_float(node, "alpha", 1.0), x)
    keep = ctx.temp("GT", [ctx.blob(x), alpha], "keep")
    zero = ctx.temp("ConstantFill", [ctx.blob(x)], "zero", value=0.0)
    ctx.emit("Where", [keep, ctx.blob(x), zero], [ctx.output(node)])


@ops.register("Shrink", since=9)
def shrink_v9(node: ir.Node, ctx: ExportContext) -> None:
    x = node.inputs[0]
    blob = ctx.blob(x)
    lambd, bias = attr_float(node, "lambd", 0.5), attr_float(node, "bias", 0.0)
    upper = ctx.temp("GT", [blob, ctx.scalar(lambd, x)], "upper")
    lower = ctx.temp("LT", [blob, ctx.scalar(-lambd, x)], "lower")
    minus = ctx.temp("Sub", [blob, ctx.scalar(bias, x)], "minus")
    plus = ctx.temp("Add", [blob, ctx.scalar(bias, x)], "plus")
    zero = ctx.temp("ConstantFill", [blob], "zero", value=0.0)
    inner = ctx.temp("Where", [lower, plus, zero], "inner")
    ctx.emit("Where", [upper, minus, inner], [ctx.output(node)])


@ops.register("Asinh", since=9)
def asinh_v9(node: ir.Node, ctx: ExportContext) -> None:
    # asinh(x) = log(x + sqrt(x^2 + 1))
    x = ctx.input(0)
    inner = ctx.temp("Add", [ctx.temp("Sqr", [x]), ctx.scalar(1.0, node.inputs[0])])
    ctx.emit("Log", [ctx.temp("Add", [x, ctx.temp("Sqrt", [inner])])], [ctx.output(node)])


@ops.register("Acosh", since=9)
def acosh_v9(node: ir.Node, ctx: ExportContext) -> None:
    # acosh(x) = log(x + sqrt(x^2 - 1))
    x = ctx.input(0)
    inner = ctx.temp("Sub", [ctx.temp("Sqr", [x]), ctx.scalar(1.0, node.inputs[0])])
    ctx.emit("Log", [ctx.temp("Add", [x, ctx.temp("Sqrt", [inner])])], [ctx.output(node)])


@ops.register("Atanh", since=9)
def atanh_v9(node: ir.Node, ctx: ExportContext) -> None:
    # atanh(x) = 0.5 * log((1 + x) / (1 - x))
    x = ctx.input(0)
    one = ctx.scalar(1.0, node.inputs[0])
    ratio = ctx.temp("Div", [ctx.temp("Add", [one, x]), ctx.temp("Sub", [one, x])])
    ctx.emit("Scale", [ctx.temp("Log", [ratio])], [ctx.output(node)], scale=0.5)


@ops.register("IsNaN", since=9)
def is_nan_v9(node: ir.Node, ctx: ExportContext) -> None:
    x = ctx.input(0)
    ctx.emit("NE", [x, x], [ctx.output(node)])


@ops.register("IsInf", since=10)
def is_inf_v10(node: ir.Node, ctx: ExportContext) -> None:
    x = node.inputs[0]
    positive = attr_int(node, "detect_positive", 1)
    negative = attr_int(node, "detect_negative", 1)
    out = ctx.output(node)
    if not positive and not negative:
        ctx.emit("ConstantFill", [ctx.blob(x)], [out], value=0, dtype=5)
        return
    if positive and negative:
        ctx.emit("EQ", [ctx.temp("Abs", [ctx.blob(x)]), ctx.scalar(np.inf, x)], [out])
        return
    ctx.emit("EQ", [ctx.blob(x), ctx.scalar(np.inf if positive else -np.inf, x)], [out])


@ops.register("BitwiseNot", since=18)
def bitwise_not_v18(node: ir.Node, ctx: ExportContext) -> None:
    dtype = ctx.dtype(node.inputs[0])
    if dtype is None:
        raise ctx.error("needs the input's element type")
    ones = np.array(-1).astype(dtype.numpy()) if dtype.is_signed() else np.iinfo(dtype.numpy()).max
    mask = ctx.make_constant(np.array(ones, dtype=dtype.numpy()), "ones")
    ctx.emit("BitwiseXor", [ctx.input(0), mask], [ctx.output(node)])


@ops.register("PRelu", since=9)
def prelu_v9(node: ir.Node, ctx: ExportContext) -> None:
    x, slope = node.inputs[0], node.inputs[1]
    x_shape, slope_shape = ctx.shape(x), ctx.shape(slope)
    rank = ctx.rank(x)
    # Caffe2's PRelu takes one slope per channel (dim 1) or one shared slope.
    if rank is not None and rank >= 2 and slope_shape is not None and x_shape is not None:
        padded = (1,) * (rank - len(slope_shape)) + tuple(slope_shape)
        others = padded[:1] + padded[2:]
        if len(padded) == rank and all(d == 1 for d in others) and padded[1] in (1, x_shape[1]):
            flat = ctx.blob(slope)
            if len(slope_shape) != 1:
                flat = ctx.temp("Reshape", [flat], "slope", shape=[-1])
            ctx.emit("PRelu", [ctx.blob(x), flat], [ctx.output(node)], order="NCHW")
            return
    # prelu(x) = relu(x) + slope * min(x, 0), and min(x, 0) = -relu(-x): exact.
    blob = ctx.blob(x)
    positive = ctx.temp("Relu", [blob])
    negative = ctx.temp("Negative", [ctx.temp("Relu", [ctx.temp("Negative", [blob])])])
    scaled = ctx.temp("Mul", [ctx.blob(slope), negative])
    ctx.emit("Add", [positive, scaled], [ctx.output(node)])


@ops.register("SwiGLU", since=28)
def swiglu_v28(node: ir.Node, ctx: ExportContext) -> None:
    gate_in, value = ctx.input(0), ctx.input(1)
    alpha = attr_float(node, "alpha", 1.0)
    if alpha == 1.0:
        gate = ctx.temp("Swish", [gate_in], "gate")
    else:
        scaled = ctx.temp("Scale", [gate_in], "scaled", scale=alpha)
        gate = ctx.temp("Mul", [gate_in, ctx.temp("Sigmoid", [scaled])], "gate")
    ctx.emit("Mul", [gate, value], [ctx.output(node)])


@ops.register("Mod", since=10)
def mod_v10(node: ir.Node, ctx: ExportContext) -> None:
    # Caffe2's Mod takes a constant divisor only; with integer division truncating toward zero,
    # a - b * (a / b) is C's fmod exactly, and ONNX's default (the divisor's sign) adds b where
    # the signs differ. Floating-point remainders have no exact form this way.
    dtype = ctx.dtype(node.inputs[0])
    if dtype is None or dtype.is_floating_point():
        raise ctx.error("a floating-point remainder has no exact Caffe2 form")
    a, b = ctx.input(0), ctx.input(1)
    out_type = dtype
    if dtype in NARROW_INTEGERS:
        # Caffe2's Div, Mul, Sub... take 32- and 64-bit integers only: computed in int64.
        a, b = (cast(ctx, blob, ir.DataType.INT64) for blob in (a, b))
        dtype = ir.DataType.INT64
    quotient = ctx.temp("Div", [a, b], "quotient")
    remainder = ctx.temp("Sub", [a, ctx.temp("Mul", [b, quotient])], "remainder")
    if attr_int(node, "fmod", 0):
        _write_as(ctx, node, remainder, out_type, dtype)
        return
    zero = ctx.scalar(0, dtype)
    signs_differ = ctx.temp(
        "Xor", [ctx.temp("LT", [remainder, zero]), ctx.temp("LT", [b, zero])], "signs_differ"
    )
    fix = ctx.temp("And", [ctx.temp("NE", [remainder, zero]), signs_differ], "fix")
    shifted = ctx.temp("Add", [remainder, b], "shifted")
    blobs = expanded_blobs(ctx, node, [fix, shifted, remainder], flags=[True])
    _write_as(ctx, node, ctx.temp("Where", blobs, "mod"), out_type, dtype)


def _write_as(
    ctx: ExportContext, node: ir.Node, blob: str, dtype: ir.DataType, computed: ir.DataType
) -> None:
    """``blob`` (of type ``computed``) as the node's output of type ``dtype``."""
    if dtype == computed:
        ctx.emit("Copy", [blob], [ctx.output(node)])
    else:
        ctx.emit("Cast", [blob], [ctx.output(node)], to=caffe2_dtype(dtype))


def round_half_even(ctx: ExportContext, blob: str, dtype: ir.DataType) -> str:
    """Rounds half to even: floor(x + 0.5), minus one at exact ties that land on an odd number."""
    half_blob = ctx.scalar(0.5, dtype)
    rounded = runtime.floor(ctx, ctx.temp("Add", [blob, half_blob]), dtype)
    tie = ctx.temp("EQ", [ctx.temp("Sub", [rounded, blob]), half_blob], "tie")
    half = ctx.temp("Mul", [rounded, half_blob], "half")
    odd = ctx.temp("NE", [runtime.floor(ctx, half, dtype), half], "odd")
    down = ctx.temp("Sub", [rounded, ctx.scalar(1.0, dtype)], "down")
    even = ctx.temp("Where", [ctx.temp("And", [tie, odd]), down, rounded], "even")
    # Past 2**mantissa every value is whole already (and x + 0.5 may round up).
    whole = {ir.DataType.FLOAT16: 2.0**10, ir.DataType.DOUBLE: 2.0**52}.get(dtype, 2.0**23)
    large = ctx.temp("GE", [runtime.absolute(ctx, blob, dtype), ctx.scalar(whole, dtype)], "large")
    return ctx.temp("Where", [large, blob, even], "round")


@ops.register("Round", since=11)
def round_v11(node: ir.Node, ctx: ExportContext) -> None:
    x = required(ctx, node, 0)
    result = round_half_even(ctx, ctx.blob(x), ctx.dtype(x) or ir.DataType.FLOAT)
    ctx.emit("Copy", [result], [ctx.output(node)])
