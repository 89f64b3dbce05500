"""QuantizeLinear and DequantizeLinear for the integer types Caffe2 holds (per tensor or axis);
MatMulInteger and ConvInteger as float products that hold every integer exactly."""

from __future__ import annotations

import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.ops import _runtime as runtime
from unframe.backends.caffe2.ops._common import (
    attr_int,
    attr_ints,
    normalize_axis,
    required,
    reshape,
)
from unframe.backends.caffe2.ops.elementwise import round_half_even
from unframe.backends.caffe2.ops.nn import explicit_pads
from unframe.backends.caffe2.registry import ops

_RANGES = {
    ir.DataType.UINT8: (0, 255), ir.DataType.INT8: (-128, 127),
    ir.DataType.UINT16: (0, 65535), ir.DataType.INT16: (-32768, 32767),
}  # fmt: skip


def _per_axis(ctx: ExportContext, node: ir.Node, index: int, rank: int) -> str:
    """Input ``index`` (a scale or zero point) shaped to broadcast along ``axis``."""
    value = required(ctx, node, index)
    shape = ctx.need_shape(value, "for the quantization axis")
    if len(shape) == 0 or shape == (1,):
        return ctx.blob(value)
    if len(shape) != 1:
        raise ctx.error("blocked quantization has no Caffe2 form here")
    axis = normalize_axis(ctx, attr_int(node, "axis", 1), rank)
    target = [1] * rank
    target[axis] = shape[0]
    return reshape(ctx, ctx.blob(value), target)


@ops.register("QuantizeLinear", since=10)
def quantize_linear_v10(node: ir.Node, ctx: ExportContext) -> None:
    if attr_int(node, "block_size", 0):
        raise ctx.error("blocked quantization has no Caffe2 form here")
    x = required(ctx, node, 0)
    rank = ctx.need_rank(x)
    target = ctx.dtype(node.outputs[0]) or ir.DataType.UINT8
    if target not in _RANGES:
        raise ctx.error(f"quantizing to {target.name} has no Caffe2 form")
    low, high = _RANGES[target]
    f32 = ir.DataType.FLOAT
    blob = ctx.blob(x)
    if ctx.dtype(x) != f32:
        blob = ctx.temp("Cast", [blob], "x", to=caffe2_dtype(f32))
    scale = _per_axis(ctx, node, 1, rank)
    if ctx.dtype(node.inputs[1]) != f32:
        scale = ctx.temp("Cast", [scale], "scale", to=caffe2_dtype(f32))
    steps = round_half_even(ctx, ctx.temp("Div", [blob, scale], "steps"), f32)
    if ctx.has_input(2):
        point = ctx.temp("Cast", [_per_axis(ctx, node, 2, rank)], "zero", to=caffe2_dtype(f32))
        steps = ctx.temp("Add", [steps, point], "shifted")
    clipped = ctx.temp("Clip", [steps], "clipped", min=float(low), max=float(high))
    ctx.emit("Cast", [clipped], [ctx.output(node)], to=caffe2_dtype(target))


@ops.register("DequantizeLinear", since=10)
def dequantize_linear_v10(node: ir.Node, ctx: ExportContext) -> None:
    if attr_int(node, "block_size", 0):
        raise ctx.error("blocked quantization has no Caffe2 form here")
    x = required(ctx, node, 0)
    rank = ctx.need_rank(x)
    if ctx.dtype(x) not in (*_RANGES, ir.DataType.INT32):
        raise ctx.error(f"dequantizing {ctx.dtype(x)} has no Caffe2 form")
    f32 = ir.DataType.FLOAT
    out_type = ctx.dtype(node.outputs[0]) or f32
    blob = ctx.temp("Cast", [ctx.blob(x)], "x", to=caffe2_dtype(f32))
    if ctx.has_input(2):
        point = ctx.temp("Cast", [_per_axis(ctx, node, 2, rank)], "zero", to=caffe2_dtype(f32))
        blob = ctx.temp("Sub", [blob, point], "centered")
    scale = _per_axis(ctx, node, 1, rank)
    if ctx.dtype(node.inputs[1]) != f32:
        scale = ctx.temp("Cast", [scale], "scale", to=caffe2_dtype(f32))
    if out_type == f32:
        ctx.emit("Mul", [blob, scale], [ctx.output(node)])
        return
    product = ctx.temp("Mul", [blob, scale], "product")
    ctx.emit("Cast", [product], [ctx.output(node)], to=caffe2_dtype(out_type))


#: Float32 holds every integer up to 2**24: a sum of at most this many products of 8-bit values
#: less their zero points (each at most 255 * 255 in magnitude) stays exact.
_EXACT_TERMS = 2**24 // (255 * 255)


def _centered(ctx: ExportContext, node: ir.Node, index: int, point: str | None) -> str:
    """Input ``index`` as float32, less its zero point (an already shaped float blob) if any."""
    value = required(ctx, node, index)
    if ctx.dtype(value) not in (ir.DataType.UINT8, ir.DataType.INT8):
        raise ctx.error(f"integer products of {ctx.dtype(value)} have no exact Caffe2 form here")
    blob = ctx.temp("Cast", [ctx.blob(value)], "float", to=caffe2_dtype(ir.DataType.FLOAT))
    return blob if point is None else ctx.temp("Sub", [blob, point], "centered")


def _zero_point(
    ctx: ExportContext, node: ir.Node, index: int, target: list[int] | None
) -> str | None:
    """Zero point ``index`` as float32: a scalar, or a vector reshaped to ``target``."""
    if not ctx.has_input(index):
        return None
    value = required(ctx, node, index)
    blob = ctx.temp("Cast", [ctx.blob(value)], "zero", to=caffe2_dtype(ir.DataType.FLOAT))
    shape = ctx.need_shape(value, "for the zero point")
    if len(shape) == 0 or shape == (1,) or target is None:
        return blob
    return reshape(ctx, blob, target)


def _to_int32(ctx: ExportContext, node: ir.Node, product: str) -> None:
    ctx.emit("Cast", [product], [ctx.output(node)], to=caffe2_dtype(ir.DataType.INT32))


@ops.register("MatMulInteger", since=10)
def matmul_integer_v10(node: ir.Node, ctx: ExportContext) -> None:
    a_shape = ctx.need_shape(node.inputs[0], "for the inner dimension")
    if len(a_shape) < 2 or a_shape[-1] > _EXACT_TERMS:
        raise ctx.error(f"an inner dimension over {_EXACT_TERMS} is not exact in float32")
    # A's zero point may be per row (1-D, one per row of A): a column to broadcast.
    a = _centered(ctx, node, 0, _zero_point(ctx, node, 2, [a_shape[-2], 1]))
    b = _centered(ctx, node, 1, _zero_point(ctx, node, 3, None))
    product = ctx.temp("BatchMatMul", [a, b], "product", broadcast=1)
    _to_int32(ctx, node, product)


@ops.register("ConvInteger", since=10)
def conv_integer_v10(node: ir.Node, ctx: ExportContext) -> None:
    _to_int32(ctx, node, _integer_conv(node, ctx, (0, 2), (1, 3)))


def _integer_conv(
    node: ir.Node, ctx: ExportContext, x_at: tuple[int, int], w_at: tuple[int, int]
) -> str:
    """The Conv of (x - x zero point) and (w - w zero point), inputs at ``x_at``/``w_at``
    (value, zero point), as exact integers in float32."""
    weight_shape = ctx.need_shape(node.inputs[w_at[0]], "for the kernel")
    terms = 1
    for dim in weight_shape[1:]:
        terms *= dim
    if terms > _EXACT_TERMS:
        raise ctx.error(f"a kernel of over {_EXACT_TERMS} terms is not exact in float32")
    x = _centered(ctx, node, x_at[0], _zero_point(ctx, node, x_at[1], None))
    # The weight's zero point may be per output channel.
    per_channel = [weight_shape[0]] + [1] * (len(weight_shape) - 1)
    w = _centered(ctx, node, w_at[0], _zero_point(ctx, node, w_at[1], per_channel))
    kernel = attr_ints(node, "kernel_shape") or list(weight_shape[2:])
    strides = attr_ints(node, "strides") or [1] * len(kernel)
    dilations = attr_ints(node, "dilations") or [1] * len(kernel)
    pads = explicit_pads(ctx, node, kernel, strides, dilations)
    return ctx.temp(
        "Conv", [x, w], "product", kernels=kernel, strides=strides, pads=pads,
        dilations=dilations, group=attr_int(node, "group", 1), order="NCHW",
    )  # fmt: skip


@ops.register("QLinearConv", since=10)
def qlinear_conv_v10(node: ir.Node, ctx: ExportContext) -> None:
    """The integer Conv (plus the int32 bias), times x_scale * w_scale / y_scale (float32, per
    output channel where w_scale is a vector) in double, as ONNX's reference; then the output
    zero point, saturation and rounding half to even."""
    f32, f64 = ir.DataType.FLOAT, ir.DataType.DOUBLE
    product = ctx.temp("Cast", [_integer_conv(node, ctx, (0, 2), (3, 5))], "product",
                       to=caffe2_dtype(f64))  # fmt: skip
    rank = ctx.need_rank(node.inputs[0])
    channel = [1, -1] + [1] * (rank - 2)
    if ctx.has_input(8):
        bias = ctx.temp("Cast", [ctx.input(8)], "bias", to=caffe2_dtype(f64))
        product = ctx.temp("Add", [product, reshape(ctx, bias, channel)], "biased")
    scales = [ctx.temp("Cast", [ctx.input(i)], "scale", to=caffe2_dtype(f32)) for i in (1, 4, 6)]
    if ctx.need_shape(node.inputs[4], "for the weight scale") not in ((), (1,)):
        scales[1] = reshape(ctx, scales[1], channel)
    factor = ctx.temp("Div", [ctx.temp("Mul", scales[:2], "factor"), scales[2]], "factor")
    scaled = ctx.temp("Mul", [product, ctx.temp("Cast", [factor], "factor", to=caffe2_dtype(f64))])
    target = ctx.dtype(node.outputs[0]) or ir.DataType.UINT8
    if target not in (ir.DataType.UINT8, ir.DataType.INT8):
        raise ctx.error(f"quantizing to {target.name} has no Caffe2 form here")
    if ctx.has_input(7):
        point = ctx.temp("Cast", [ctx.input(7)], "zero", to=caffe2_dtype(f64))
        scaled = ctx.temp("Add", [scaled, point], "shifted")
    low, high = _RANGES[target]
    # Caffe2's Clip is float only (clip_op.cc): the double is limited by comparisons.
    clipped = runtime.bounded(ctx, scaled, float(low), float(high), f64)
    rounded = round_half_even(ctx, clipped, f64)
    ctx.emit("Cast", [rounded], [ctx.output(node)], to=caffe2_dtype(target))


@ops.register("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear_v11(node: ir.Node, ctx: ExportContext) -> None:
    x = ctx.input(0)
    f32 = ir.DataType.FLOAT
    zero, top = ctx.scalar(0.0, f32), ctx.scalar(255.0, f32)
    axes = list(range(ctx.need_rank(node.inputs[0])))
    low = ctx.temp("Min", [ctx.temp("ReduceMin", [x], "min", axes=axes, keepdims=0), zero], "low")
    high = ctx.temp("Max", [ctx.temp("ReduceMax", [x], "max", axes=axes, keepdims=0), zero], "high")
    spread = ctx.temp("Sub", [high, low], "spread")
    flat = ctx.temp("EQ", [spread, zero], "flat")
    spread = ctx.temp("Where", [flat, ctx.scalar(1.0, f32), spread], "spread")
    scale = ctx.temp("Div", [spread, top], "scale")
    ctx.emit("Copy", [scale], [ctx.output(node, 1)])
    start = ctx.temp("Div", [ctx.temp("Negative", [low]), scale], "start")
    point = round_half_even(ctx, ctx.temp("Clip", [start], "start", min=0.0, max=255.0), f32)
    ctx.emit("Cast", [point], [ctx.output(node, 2)], to=caffe2_dtype(ir.DataType.UINT8))
    steps = round_half_even(ctx, ctx.temp("Div", [x, scale], "steps"), f32)
    shifted = ctx.temp("Clip", [ctx.temp("Add", [steps, point])], "shifted", min=0.0, max=255.0)
    ctx.emit("Cast", [shifted], [ctx.output(node, 0)], to=caffe2_dtype(ir.DataType.UINT8))
