"""QuantizeLinear and DequantizeLinear for the integer types Caffe2 holds (per tensor or axis)."""

from __future__ import annotations

import onnx_ir as ir

from unframe.backends.caffe2.export.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.export.ops._common import attr_int, normalize_axis, required, reshape
from unframe.backends.caffe2.export.ops.composite import round_half_even
from unframe.backends.caffe2.export.registry import ops

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
    if ctx.has_input(node, 2):
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
    if ctx.has_input(node, 2):
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
