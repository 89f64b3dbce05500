"""Run-time parameters: ONNX inputs (starts, pads, axes, target sizes) that are not constants.

Caffe2 holds most of these as operator arguments, fixed in the net. Where ONNX feeds them as
tensors, the converters here compute with them in the net instead: per data axis, the parameter
that applies to it is picked out of the tensor (``axis_param``), clamped with integer
comparisons, and turned into the positions to read with ``Range``; a ``Gather`` along the axis
then does the slicing or padding. Caffe2's Max, Min and Clip are float-only and its Where wants
operands of one shape, so integer clamps are built from LT/GT and Where on expanded bounds.

Caffe2 registers many kernels for float only (Floor, Ceil, Abs, Exp, Log, Cos, Sin...) and
Expand for numbers only, not bool. Where the net computes in double or with flags, the helpers
below (``floor``, ``ceil``, ``absolute``, ``exp``, ``log``, ``cos_sin_turns``, ``like_flag``)
build the same values from ops Caffe2 runs on those types: Cast, the arithmetic and comparison
ops, Where and Gather.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.ops._common import expand, normalize_axis, reshape


def int64(ctx: ExportContext, value: ir.Value) -> str:
    """``value``'s blob as int64 (ONNX lets starts, ends and shapes be int32 too)."""
    blob = ctx.blob(value)
    if ctx.dtype(value) in (None, ir.DataType.INT64):
        return blob
    return ctx.temp("Cast", [blob], "int64", to=caffe2_dtype(ir.DataType.INT64))


def scalar_of(ctx: ExportContext, value: ir.Value, blob: str | None = None) -> str:
    """``value`` (or its converted ``blob``), a scalar or a one-element vector, as a 0-d blob."""
    blob = blob or ctx.blob(value)
    if ctx.need_rank(value, "to read it as a scalar") == 0:
        return blob
    return ctx.temp("Squeeze", [blob], "scalar", dims=[0])


def const64(ctx: ExportContext, value: int) -> str:
    """A 0-d int64 constant."""
    return ctx.make_constant(np.array(value, dtype=np.int64), "int")


def double(ctx: ExportContext, value: float) -> str:
    """A 0-d double ``value``, to double precision: Caffe2's arguments hold float32 values only,
    so it is the sum of three float32 values (``value``'s float32 rounding, that of what it
    leaves, and that of what those two leave)."""
    high, middle, low = (ctx.scalar(part, ir.DataType.DOUBLE) for part in _split(value))
    return ctx.temp("Add", [ctx.temp("Add", [high, middle], "double"), low], "double")


def like(ctx: ExportContext, blob: str, shape_of: str) -> str:
    """``blob`` expanded to the run-time shape of ``shape_of`` (Caffe2's Where needs one shape)."""
    return ctx.temp("Expand", [blob, ctx.temp("Shape", [shape_of], "shape")], "expanded")


def like_flag(ctx: ExportContext, flag: str, shape_of: str) -> str:
    """A bool ``flag`` expanded to the run-time shape of ``shape_of``, through int32 (Caffe2's
    Expand takes int32, int64, float and double only: expand_op.cc)."""
    return expand(ctx, flag, ctx.temp("Shape", [shape_of], "shape"), flag=True)


def clamp(ctx: ExportContext, blob: str, low: int | str, high: int | str) -> str:
    """An integer ``blob`` limited to ``[low, high]`` (ints or 0-d int64 blobs), elementwise."""
    low_blob = like(ctx, const64(ctx, low) if isinstance(low, int) else low, blob)
    high_blob = like(ctx, const64(ctx, high) if isinstance(high, int) else high, blob)
    below = ctx.temp("LT", [blob, low_blob], "below")
    above = ctx.temp("GT", [blob, high_blob], "above")
    capped = ctx.temp("Where", [above, high_blob, blob], "capped")
    return ctx.temp("Where", [below, low_blob, capped], "clamped")


def axis_flag(ctx: ExportContext, axes: str, rank: int, axis: int) -> str:
    """A 0-d bool: whether the run-time ``axes`` (int64, negatives allowed) name ``axis``."""
    hits = _hits(ctx, axes, rank, axis)
    count = ctx.temp("ReduceSum", [hits], "count", axes=[0], keepdims=0)
    return ctx.temp("GT", [count, const64(ctx, 0)], "named")


def _hits(ctx: ExportContext, axes: str, rank: int, axis: int) -> str:
    """1 where an entry of ``axes`` names ``axis``, else 0 (int64, ``axes``' shape)."""
    same = ctx.temp("EQ", [axes, const64(ctx, axis)], "same")
    wrapped = ctx.temp("EQ", [axes, const64(ctx, axis - rank)], "same")
    either = ctx.temp("Or", [same, wrapped], "hit")
    return ctx.temp("Cast", [either], "hits", to=caffe2_dtype(ir.DataType.INT64))


def axis_param(
    ctx: ExportContext,
    values: str,
    axes: list[int] | str,
    rank: int,
    axis: int,
    default: int | str,
) -> str:
    """The 0-d int64 entry of ``values`` whose axis is ``axis``, else ``default`` (int or blob).

    ``axes`` is a normalized constant list (one per entry of ``values``) or a run-time blob.
    """
    fallback = const64(ctx, default) if isinstance(default, int) else default
    if isinstance(axes, list):
        if axis not in axes:
            return fallback
        index = ctx.make_constant(np.array(axes.index(axis), dtype=np.int64), "index")
        return ctx.temp("Gather", [values, index], "param")
    hits = _hits(ctx, axes, rank, axis)
    picked = ctx.temp("ReduceSum", [ctx.temp("Mul", [values, hits])], "param", axes=[0], keepdims=0)
    named = ctx.temp("GT", [ctx.temp("ReduceSum", [hits], "count", axes=[0], keepdims=0),
                            const64(ctx, 0)], "named")  # fmt: skip
    return ctx.temp("Where", [named, picked, fallback], "param")


def window(
    ctx: ExportContext,
    blob: str,
    rank: int,
    axis: int,
    dim: int,
    bounds: tuple[str, str],
    mode: str,
    fill: str | None = None,
) -> str:
    """``blob`` read at positions ``start .. stop - 1`` along ``axis`` (0-d int64 blobs).

    Positions outside ``[0, dim)`` follow ``mode``: ``constant`` writes ``fill`` (a 0-d blob of
    the data's type), ``edge`` repeats the border, ``reflect`` mirrors without repeating it and
    ``wrap`` continues periodically.
    """
    if dim == 0:
        raise ctx.error(f"cannot read positions of the empty axis {axis} at run time")
    start, stop = bounds
    positions = ctx.temp("Range", [start, stop, const64(ctx, 1)], "positions")
    if mode in ("constant", "edge") or (mode == "reflect" and dim == 1):
        sources = clamp(ctx, positions, 0, dim - 1)
    elif mode == "wrap":
        sources = ctx.temp("Mod", [positions], "sources", divisor=dim, sign_follow_divisor=1)
    elif mode == "reflect":
        period = 2 * (dim - 1)
        folded = ctx.temp("Mod", [positions], "folded", divisor=period, sign_follow_divisor=1)
        inside = ctx.temp("LT", [folded, const64(ctx, dim)], "inside")
        mirrored = ctx.temp("Sub", [const64(ctx, period), folded], "mirrored")
        sources = ctx.temp("Where", [inside, folded, mirrored], "sources")
    else:
        raise ctx.error(f"mode={mode!r} has no Caffe2 equivalent")
    read = ctx.temp("Gather", [blob, sources], "read", axis=axis)
    if mode != "constant":
        return read
    assert fill is not None  # constant mode always has a fill value
    after_start = ctx.temp("GE", [positions, const64(ctx, 0)], "after_start")
    before_end = ctx.temp("LT", [positions, const64(ctx, dim)], "before_end")
    valid = ctx.temp("And", [after_start, before_end], "valid")
    column = [1] * rank
    column[axis] = -1
    mask = like_flag(ctx, reshape(ctx, valid, column), read)
    return ctx.temp("Where", [mask, read, like(ctx, fill, read)], "padded")


# -- float-only functions of double values ---------------------------------------------------
#: From 2**52 on, every double is an integer: its own floor and ceiling.
_WHOLE = 2.0**52


def _native(ctx: ExportContext, op_type: str, x: str, dtype: ir.DataType) -> str | None:
    """``op_type`` on ``x`` where Caffe2 has a float kernel for it; None for double; else an
    error (Caffe2 registers it for float only)."""
    if dtype == ir.DataType.FLOAT:
        return ctx.temp(op_type, [x], op_type.lower())
    if dtype == ir.DataType.DOUBLE:
        return None
    raise ctx.error(f"Caffe2 runs {op_type} on float only, and {dtype.name} has no exact form")


def absolute(ctx: ExportContext, x: str, dtype: ir.DataType) -> str:
    """|x|, elementwise (Caffe2's Abs: float only, abs_op.cc): for double, -x where x < 0."""
    native = _native(ctx, "Abs", x, dtype)
    if native is not None:
        return native
    negative = ctx.temp("LT", [x, ctx.scalar(0.0, dtype)], "negative")
    return ctx.temp("Where", [negative, ctx.temp("Negative", [x], "minus"), x], "abs")


def _truncated(ctx: ExportContext, x: str) -> tuple[str, str, str]:
    """For a double ``x``: whether each value is finite and below 2**52 in magnitude, those
    values (0 elsewhere), and those values truncated toward zero (Cast to int64 and back, as
    C++'s static_cast does: exact there)."""
    f64 = ir.DataType.DOUBLE
    inside = ctx.temp("LT", [absolute(ctx, x, f64), ctx.scalar(_WHOLE, f64)], "inside")
    safe = ctx.temp("Where", [inside, x, like(ctx, ctx.scalar(0.0, f64), x)], "safe")
    whole = ctx.temp("Cast", [safe], "whole", to=caffe2_dtype(ir.DataType.INT64))
    return inside, safe, ctx.temp("Cast", [whole], "truncated", to=caffe2_dtype(f64))


def floor(ctx: ExportContext, x: str, dtype: ir.DataType) -> str:
    """floor(x), elementwise (Caffe2's Floor: float only, floor_op.cc). For double: x truncated
    toward zero, less 1 where that is above x; NaN, infinities and |x| >= 2**52 stay as they
    are. Exact."""
    return _to_whole(ctx, x, dtype, "Floor", ("LT", "above"), "Sub")


def ceil(ctx: ExportContext, x: str, dtype: ir.DataType) -> str:
    """ceil(x), elementwise (Caffe2's Ceil: float only, ceil_op.cc); for double, as ``floor``
    does it: x truncated toward zero, plus 1 where that is below x. Exact."""
    return _to_whole(ctx, x, dtype, "Ceil", ("GT", "below"), "Add")


def _to_whole(
    ctx: ExportContext,
    x: str,
    dtype: ir.DataType,
    op_type: str,
    past: tuple[str, str],
    step: str,
) -> str:
    """Caffe2's ``op_type`` where it runs on ``dtype``; else x truncated, moved by 1 (``step``)
    where the comparison ``past`` (op, hint) of the values with their truncation holds."""
    native = _native(ctx, op_type, x, dtype)
    if native is not None:
        return native
    inside, safe, truncated = _truncated(ctx, x)
    f64 = caffe2_dtype(ir.DataType.DOUBLE)
    compare, hint = past
    moved = ctx.temp("Cast", [ctx.temp(compare, [safe, truncated], hint)], hint, to=f64)
    name = op_type.lower()
    stepped = ctx.temp(step, [truncated, moved], f"{name}ed")
    return ctx.temp("Where", [inside, stepped, x], name)


def _split(value: float | Decimal) -> list[float]:
    """Three float32 values whose sum is ``value`` to double precision or better (Caffe2's
    arguments and GivenTensorDoubleFill values are float32): its float32 rounding, that of what
    it leaves, and that of what those two leave."""
    rest = Decimal(value)
    parts = []
    for _ in range(3):
        parts.append(float(np.float32(float(rest))))
        rest -= Decimal(parts[-1])
    return parts


#: ln 2 from 50 digits: its double rounding is 2e-17 off, and k ln 2 multiplies that by up to
#: 1074.
_LN2 = _split(Decimal("0.69314718055994530941723212145817656807550013436026"))


def _polynomial(ctx: ExportContext, t: str, coefficients: list[float]) -> str:
    """sum(c_i t^i), by Horner's rule, in double (``coefficients`` from c_0)."""
    total = double(ctx, coefficients[-1])
    for coefficient in reversed(coefficients[:-1]):
        total = ctx.temp("Add", [ctx.temp("Mul", [total, t], "horner"), double(ctx, coefficient)])
    return total


def _power_of_two(ctx: ExportContext, exponent: int) -> str:
    """The double 2**exponent (|exponent| <= 512): float32 holds 2**-126 .. 2**127, so beyond
    that it is a product of two halves, exact."""
    if -126 <= exponent <= 127:
        return ctx.scalar(2.0**exponent, ir.DataType.DOUBLE)
    half = _power_of_two(ctx, exponent // 2)
    return ctx.temp("Mul", [half, half], "power_of_two")


def _scaled_by_power_of_two(ctx: ExportContext, x: str, k: str) -> str:
    """x * 2**k for int64 ``k`` in [-2047, 2047], ``k``'s shape: one factor per bit of |k|,
    smallest first, so that only the last product can round (into the subnormals)."""
    negative = ctx.temp("LT", [k, const64(ctx, 0)], "negative")
    magnitude = ctx.temp("Where", [negative, ctx.temp("Negative", [k], "minus"), k], "magnitude")
    one = like(ctx, ctx.scalar(1.0, ir.DataType.DOUBLE), x)
    shifted = magnitude
    for bit in range(11):
        half = ctx.temp("Div", [shifted, const64(ctx, 2)], "half")
        odd = ctx.temp("NE", [shifted, ctx.temp("Mul", [half, const64(ctx, 2)])], "odd")
        shifted = half
        # 2**1024 overflows a double: bit 10 scales by 2**512 twice.
        power = min(1 << bit, 512)
        up, down = (like(ctx, _power_of_two(ctx, e), x) for e in (power, -power))
        factor = ctx.temp("Where", [odd, ctx.temp("Where", [negative, down, up]), one], "factor")
        for _ in range(2 if bit == 10 else 1):
            x = ctx.temp("Mul", [x, factor], "scaled")
    return x


def _exp_double(ctx: ExportContext, x: str) -> str:
    """exp(x) of a double ``x`` to about 1e-16 relative: x = k ln 2 + r with k whole and
    |r| <= ln(2) / 2 (ln 2 in three float32 parts, so that each k ln 2 part is exact), exp(r) by
    its Taylor series to r^14, times 2**k. Beyond [-746, 710] the result is 0 or infinity;
    NaN stays NaN."""
    f64, i64 = ir.DataType.DOUBLE, ir.DataType.INT64
    inside = ctx.temp("And", [ctx.temp("GE", [x, ctx.scalar(-746.0, f64)], "low"),
                              ctx.temp("LE", [x, ctx.scalar(710.0, f64)], "high")])  # fmt: skip
    safe = ctx.temp("Where", [inside, x, like(ctx, ctx.scalar(0.0, f64), x)], "safe")
    halfway = ctx.temp("Add", [ctx.temp("Mul", [safe, double(ctx, 1 / math.log(2))]),
                               ctx.scalar(0.5, f64)], "halfway")  # fmt: skip
    k = floor(ctx, halfway, f64)
    r = safe
    for part in _LN2:
        r = ctx.temp("Sub", [r, ctx.temp("Mul", [k, ctx.scalar(part, f64)])], "reduced")
    series = _polynomial(ctx, r, [1 / math.factorial(n) for n in range(15)])
    whole = ctx.temp("Cast", [k], "k", to=caffe2_dtype(i64))
    result = _scaled_by_power_of_two(ctx, series, whole)
    # Outside [-746, 710]: 0 below, infinity above, NaN as it is.
    zero, inf = like(ctx, ctx.scalar(0.0, f64), x), like(ctx, ctx.scalar(math.inf, f64), x)
    negative = ctx.temp("LT", [x, ctx.scalar(0.0, f64)], "negative")
    positive = ctx.temp("GT", [x, ctx.scalar(0.0, f64)], "positive")
    limit = ctx.temp("Where", [positive, inf, ctx.temp("Where", [negative, zero, x])], "limit")
    return ctx.temp("Where", [inside, result, limit], "exp")


def _log_double(ctx: ExportContext, y: str) -> str:
    """ln(y) of a double ``y`` to a few units in the last place: y = m 2**e with m in
    [1/sqrt 2, sqrt 2] (found by exact scalings by powers of two), ln m = 2 atanh(s) with
    s = (m - 1) / (m + 1), |s| < 0.18, by its series to s^23, plus e ln 2 (ln 2 in three
    float32 parts). 0 gives -inf, infinity itself, negatives and NaN give NaN."""
    f64 = ir.DataType.DOUBLE
    inf = ctx.scalar(math.inf, f64)
    ok = ctx.temp("And", [ctx.temp("GT", [y, ctx.scalar(0.0, f64)], "positive"),
                          ctx.temp("LT", [y, inf], "finite")], "ok")  # fmt: skip
    one = like(ctx, ctx.scalar(1.0, f64), y)
    m = ctx.temp("Where", [ok, y, one], "mantissa")
    e = like(ctx, ctx.scalar(0.0, f64), y)

    def scale_if(test: str, bound: str, factor: str, shift: float) -> None:
        nonlocal m, e
        beyond = ctx.temp(test, [m, bound], "beyond")
        m = ctx.temp("Where", [beyond, ctx.temp("Mul", [m, factor]), m], "mantissa")
        moved = ctx.temp("Add", [e, ctx.scalar(shift, f64)], "exponent")
        e = ctx.temp("Where", [beyond, moved, e], "exponent")

    # Down to [1/2, 2): subnormals need two halvings of 2**512.
    for step in (512, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1):
        up, down = _power_of_two(ctx, step), _power_of_two(ctx, -step)
        scale_if("GE", up, down, float(step))
        scale_if("LT", down, up, float(-step))
    root = ctx.scalar(float(np.float32(math.sqrt(2))), f64)  # any bound near sqrt 2 does
    scale_if("GT", root, ctx.scalar(0.5, f64), 1.0)
    scale_if("LT", ctx.scalar(float(np.float32(math.sqrt(0.5))), f64), ctx.scalar(2.0, f64), -1.0)
    s = ctx.temp("Div", [ctx.temp("Sub", [m, ctx.scalar(1.0, f64)], "above"),
                         ctx.temp("Add", [m, ctx.scalar(1.0, f64)], "around")], "s")  # fmt: skip
    series = _polynomial(
        ctx, ctx.temp("Mul", [s, s], "square"), [1 / (2 * n + 1) for n in range(12)]
    )
    total = ctx.temp("Mul", [ctx.temp("Mul", [s, series], "atanh"), ctx.scalar(2.0, f64)], "ln")
    low, middle, high = (ctx.temp("Mul", [e, ctx.scalar(part, f64)]) for part in reversed(_LN2))
    for part in (low, middle, high):
        total = ctx.temp("Add", [part, total], "ln")
    zero = ctx.temp("EQ", [y, ctx.scalar(0.0, f64)], "zero")
    infinite = ctx.temp("EQ", [y, inf], "infinite")
    nan = like(ctx, ctx.scalar(math.nan, f64), y)
    special = ctx.temp("Where", [zero, like(ctx, ctx.scalar(-math.inf, f64), y),
                                ctx.temp("Where", [infinite, like(ctx, inf, y), nan])])  # fmt: skip
    return ctx.temp("Where", [ok, total, special], "ln")


def exp(ctx: ExportContext, x: str, dtype: ir.DataType) -> str:
    """exp(x), elementwise (Caffe2's Exp: float only, exp_op.cc); double as ``_exp_double``."""
    return _native(ctx, "Exp", x, dtype) or _exp_double(ctx, x)


def log(ctx: ExportContext, x: str, dtype: ir.DataType) -> str:
    """ln(x), elementwise (Caffe2's Log: float only, log_op.cc); double as ``_log_double``."""
    return _native(ctx, "Log", x, dtype) or _log_double(ctx, x)


def cos_sin_turns(ctx: ExportContext, m: str, n: str) -> tuple[str, str]:
    """cos and sin of 2 pi m / n, doubles, for int64 ``m`` in [0, n) and ``n`` > 0 (Caffe2's
    Cos and Sin: float only, cos_op.cc and sin_op.cc). The quadrant q and what is left of 4 m
    after q n are integers; the angle left, in [0, pi / 2), takes Taylor series to its 22nd
    power; the quadrant then picks (c, s), (-s, c), (-c, -s) or (s, -c). Multiples of pi / 2
    give exact 0s and 1s."""
    f64 = ir.DataType.DOUBLE
    four_m = ctx.temp("Mul", [m, const64(ctx, 4)], "four_m")
    quadrant = ctx.temp("Div", [four_m, n], "quadrant")  # m >= 0: truncation is floor
    rest = ctx.temp("Sub", [four_m, ctx.temp("Mul", [quadrant, n])], "rest")
    as_double = [ctx.temp("Cast", [b], "double", to=caffe2_dtype(f64)) for b in (rest, n)]
    angle = ctx.temp("Div", [ctx.temp("Mul", [as_double[0], double(ctx, math.pi / 2)]),
                             as_double[1]], "angle")  # fmt: skip
    square = ctx.temp("Mul", [angle, angle], "square")
    terms = 11
    c = _polynomial(ctx, square, [(-1) ** i / math.factorial(2 * i) for i in range(terms)])
    odd = _polynomial(ctx, square, [(-1) ** i / math.factorial(2 * i + 1) for i in range(terms)])
    s = ctx.temp("Mul", [angle, odd], "sin")
    minus_c, minus_s = ctx.temp("Negative", [c], "minus"), ctx.temp("Negative", [s], "minus")
    picks = [ctx.temp("EQ", [quadrant, const64(ctx, q)], "quadrant") for q in range(3)]

    def pick(values: tuple[str, str, str, str]) -> str:
        chosen = values[3]
        for q in (2, 1, 0):
            chosen = ctx.temp("Where", [picks[q], values[q], chosen], "picked")
        return chosen

    return pick((c, minus_s, minus_c, s)), pick((s, c, minus_s, minus_c))


# -- float-only ops on other types -----------------------------------------------------------
def bounded(
    ctx: ExportContext, x: str, low: float | None, high: float | None, dtype: ir.DataType
) -> str:
    """``x`` limited to the constants [low, high] (either None for no bound). Caffe2's Clip is
    float only (clip_op.cc): any other type is limited by LT/GT and Where, exactly; NaN stays
    NaN."""
    if dtype == ir.DataType.FLOAT:
        args = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
        return ctx.temp("Clip", [x], "clipped", **args)
    for compare, bound in (("LT", low), ("GT", high)):
        if bound is None:
            continue
        limit = like(ctx, ctx.scalar(bound, dtype), x)
        x = ctx.temp("Where", [ctx.temp(compare, [x, limit], "beyond"), limit, x], "clipped")
    return x


def extreme(ctx: ExportContext, a: str, b: str, dtype: ir.DataType, op_type: str) -> str:
    """max (``op_type`` "Max") or min of same-shaped ``a`` and ``b``. Caffe2's Max and Min are
    float only (minmax_ops.cc): for double, int32 and int64 the comparison picks, with NaN in
    either taken as numpy's maximum/minimum takes it. Exact."""
    if dtype == ir.DataType.FLOAT:
        return ctx.temp(op_type, [a, b], op_type.lower())
    first = ctx.temp("GT" if op_type == "Max" else "LT", [a, b], "first")
    if dtype in (ir.DataType.DOUBLE, ir.DataType.FLOAT):
        first = ctx.temp("Or", [first, ctx.temp("NE", [a, a], "nan")], "first")
    return ctx.temp("Where", [first, a, b], op_type.lower())


def relu(ctx: ExportContext, x: str, dtype: ir.DataType) -> str:
    """max(x, 0), elementwise (Caffe2's Relu: float only, relu_op.cc): other types take 0 where
    x < 0. Exact; NaN stays NaN."""
    if dtype == ir.DataType.FLOAT:
        return ctx.temp("Relu", [x], "relu")
    negative = ctx.temp("LT", [x, ctx.scalar(0, dtype)], "negative")
    return ctx.temp("Where", [negative, like(ctx, ctx.scalar(0, dtype), x), x], "relu")


def reciprocal(ctx: ExportContext, x: str, dtype: ir.DataType) -> str:
    """1 / x, elementwise (Caffe2's Reciprocal: float only, reciprocal_op.cc): for double, a
    Div, correctly rounded as 1 / x is."""
    native = _native(ctx, "Reciprocal", x, dtype)
    if native is not None:
        return native
    return ctx.temp("Div", [like(ctx, ctx.scalar(1.0, dtype), x), x], "reciprocal")


def axes_input(ctx: ExportContext, node: ir.Node, index: int, rank: int) -> list[int] | str:
    """Input ``index`` as normalized constant axes or a run-time int64 blob; all axes if absent."""
    if not ctx.has_input(index):
        return list(range(rank))
    axes = ctx.known_ints(node.inputs[index])
    if axes is None:
        return int64(ctx, node.inputs[index])  # type: ignore[arg-type]
    return [normalize_axis(ctx, a, rank) for a in axes]
