"""Quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger,
ConvInteger, QLinearMatMul, QLinearConv.

MIL holds 8- and 16-bit integers as int32 (cast back at the graph's boundary), so quantized
values are computed in float32 and int32: rounding half to even (MIL's round, as ONNX's), then
saturated into the quantized type's range. Types MIL cannot hold (float8, int4, int2, float4)
are refused by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import normalized_axes
from unframe.backends.coreml.ops.nn import _padding, _spatial_rank
from unframe.backends.coreml.registry import ops

#: The quantized types Core ML can hold (as int32): their value range.
_RANGES = {
    ir.DataType.INT8: (-128, 127),
    ir.DataType.UINT8: (0, 255),
    ir.DataType.INT16: (-32768, 32767),
    ir.DataType.UINT16: (0, 65535),
}


def _quantized_range(ctx: ExportContext, dtype: ir.DataType | None) -> tuple[int, int]:
    found = _RANGES.get(dtype) if dtype is not None else None
    if found is None:
        name = dtype.name if dtype is not None else "an unknown type"
        raise ctx.error(
            f"quantized type {name}: Core ML ML Programs hold 8- and 16-bit integers only (as "
            "int32), no float8, int4, int2 or float4 tensors"
        )
    return found


def _as_float(ctx: ExportContext, index: int) -> Any:
    """Input ``index`` as float32 (integers and float16 cast)."""
    dtype = ctx.input_dtype(index)
    var = ctx.input(index)
    return var if dtype == ir.DataType.FLOAT else ctx.mb.cast(x=var, dtype="fp32")


def _as_int32(ctx: ExportContext, index: int) -> Any:
    dtype = ctx.input_dtype(index)
    if dtype is not None and dtype not in _RANGES and dtype != ir.DataType.INT32:
        _quantized_range(ctx, dtype)
    var = ctx.input(index)
    return var if ctx.mil_dtype(dtype) == "int32" else ctx.mb.cast(x=var, dtype="int32")


def _per_axis(ctx: ExportContext, param: Any, index: int, rank: int) -> Any:
    """A scale or zero point (input ``index``) shaped to broadcast against input 0: a scalar as
    it is, a 1-D one along ``axis``, a blocked one (``block_size``) repeated block by block."""
    param_shape = ctx.input_shape(index)
    if param_shape is None:
        raise ctx.error(f"input {index}'s shape is unknown before run time")
    if len(param_shape) == 0 or (len(param_shape) == 1 and param_shape[0] == 1 and rank != 1):
        return param
    axis = normalized_axes([int(ctx.attr("axis", 1))], rank)[0]
    block_size = int(ctx.attr("block_size", 0) or 0)
    if block_size > 0:
        length = (ctx.input_shape(0) or [None] * rank)[axis]
        if length is None:
            raise ctx.error("a blocked scale along an axis of unknown length")
        indices = np.arange(length, dtype=np.int32) // block_size
        return ctx.mb.gather(x=param, indices=indices, axis=axis)
    if len(param_shape) != 1:
        raise ctx.error(f"a rank-{len(param_shape)} scale or zero point without block_size")
    shape = [1] * rank
    shape[axis] = -1
    return ctx.mb.reshape(x=param, shape=shape)


def _quantize(ctx: ExportContext, value: Any, zero_point: Any | None, low: int, high: int) -> Any:
    """``saturate(round(value) + zero_point)`` as int32; ``value`` is float32."""
    mb = ctx.mb
    rounded = mb.round(x=value)
    if zero_point is not None:
        rounded = mb.add(x=rounded, y=zero_point)
    clipped = mb.clip(x=rounded, alpha=np.float32(low), beta=np.float32(high))
    return mb.cast(x=clipped, dtype="int32")


def _float_zero_point(ctx: ExportContext, index: int, rank: int) -> Any | None:
    if not ctx.has_input(index):
        return None
    return _per_axis(ctx, _as_float(ctx, index), index, rank)


@ops.register("QuantizeLinear", since=10)
def quantize_linear_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    low, high = _quantized_range(ctx, ctx.output_dtype(0))
    rank = ctx.input_rank(0)
    scale = _per_axis(ctx, _as_float(ctx, 1), 1, rank)
    scaled = ctx.mb.real_div(x=_as_float(ctx, 0), y=scale)
    return [_quantize(ctx, scaled, _float_zero_point(ctx, 2, rank), low, high)]


@ops.register("DequantizeLinear", since=10)
def dequantize_linear_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    if ctx.input_dtype(0) != ir.DataType.INT32:
        _quantized_range(ctx, ctx.input_dtype(0))
    mb = ctx.mb
    rank = ctx.input_rank(0)
    x = _as_float(ctx, 0)
    zero_point = _float_zero_point(ctx, 2, rank)
    if zero_point is not None:
        x = mb.sub(x=x, y=zero_point)
    result = mb.mul(x=x, y=_per_axis(ctx, _as_float(ctx, 1), 1, rank))
    word = ctx.mil_dtype(ctx.output_dtype(0))
    return [result if word == "fp32" else mb.cast(x=result, dtype=word)]


@ops.register("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mb = ctx.mb
    x = _as_float(ctx, 0)
    # The range always holds 0, so that 0 is exactly representable.
    x_min = mb.minimum(x=mb.reduce_min(x=x, keep_dims=False), y=np.float32(0))
    x_max = mb.maximum(x=mb.reduce_max(x=x, keep_dims=False), y=np.float32(0))
    scale = mb.real_div(x=mb.sub(x=x_max, y=x_min), y=np.float32(255))
    zero_point = mb.clip(
        x=mb.round(x=mb.sub(x=np.float32(0), y=mb.real_div(x=x_min, y=scale))),
        alpha=np.float32(0),
        beta=np.float32(255),
    )
    y = _quantize(ctx, mb.real_div(x=x, y=scale), zero_point, 0, 255)
    return [y, scale, mb.cast(x=zero_point, dtype="int32")]


def _shifted(ctx: ExportContext, index: int, zero_point_index: int, axis: int | None) -> Any:
    """Input ``index`` minus its zero point (int32); a 1-D zero point lies along ``axis``."""
    x = _as_int32(ctx, index)
    if not ctx.has_input(zero_point_index):
        return x
    zero_point = _as_int32(ctx, zero_point_index)
    zp_shape = ctx.input_shape(zero_point_index)
    if zp_shape and len(zp_shape) == 1 and zp_shape[0] != 1 and axis is not None:
        rank = ctx.input_rank(index)
        shape = [1] * rank
        shape[normalized_axes([axis], rank)[0]] = -1
        zero_point = ctx.mb.reshape(x=zero_point, shape=shape)
    return ctx.mb.sub(x=x, y=zero_point)


@ops.register("MatMulInteger", since=10)
def matmul_integer_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    # A's zero point may be per row (axis -2), B's per column (axis -1).
    a = _shifted(ctx, 0, 2, -2)
    b = _shifted(ctx, 1, 3, -1)
    return [ctx.mb.matmul(x=a, y=b)]


def _conv_of_shifted(ctx: ExportContext, x: Any, weight: Any) -> Any:
    """conv on the zero-point-free int32 values, in float32 (MIL convolves floats only; exact
    while the sums stay under 2^24)."""
    mb = ctx.mb
    spatial = _spatial_rank(ctx)
    return mb.conv(
        x=mb.cast(x=x, dtype="fp32"),
        weight=mb.cast(x=weight, dtype="fp32"),
        strides=ctx.attr("strides", None) or [1] * spatial,
        dilations=ctx.attr("dilations", None) or [1] * spatial,
        groups=int(ctx.attr("group", 1)),
        **_padding(ctx, spatial),
    )


@ops.register("ConvInteger", since=10)
def conv_integer_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    x = _shifted(ctx, 0, 2, None)
    weight = _shifted(ctx, 1, 3, 0)
    return [ctx.mb.cast(x=_conv_of_shifted(ctx, x, weight), dtype="int32")]


def _requantize(ctx: ExportContext, accumulated: Any, scale: Any, zero_point_index: int) -> Any:
    low, high = _quantized_range(ctx, ctx.input_dtype(zero_point_index))
    zero_point = _as_float(ctx, zero_point_index)
    return _quantize(ctx, ctx.mb.mul(x=accumulated, y=scale), zero_point, low, high)


@ops.register("QLinearMatMul", since=10)
def qlinear_matmul_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mb = ctx.mb
    a = _shifted(ctx, 0, 2, -2)
    b = _shifted(ctx, 3, 5, -1)
    for index in (1, 4, 6):
        shape = ctx.input_shape(index)
        if shape is None or int(np.prod([d or 2 for d in shape])) != 1:
            raise ctx.error("per-row or per-column scales (only scalar scales are read)")
    # float32 throughout, as onnx's reference computes (float16 scales widened first).
    accumulated = mb.cast(x=mb.matmul(x=a, y=b), dtype="fp32")
    scale = mb.real_div(x=mb.mul(x=_as_float(ctx, 1), y=_as_float(ctx, 4)), y=_as_float(ctx, 6))
    return [_requantize(ctx, accumulated, scale, 7)]


@ops.register("QLinearConv", since=10)
def qlinear_conv_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mb = ctx.mb
    x = _shifted(ctx, 0, 2, None)
    weight = _shifted(ctx, 3, 5, 0)
    accumulated = _conv_of_shifted(ctx, x, weight)
    rank = ctx.input_rank(0)
    channel_shape = [1, -1] + [1] * (rank - 2)
    if ctx.has_input(8):
        bias = mb.reshape(x=mb.cast(x=ctx.input(8), dtype="fp32"), shape=channel_shape)
        accumulated = mb.add(x=accumulated, y=bias)
    w_scale = _as_float(ctx, 4)
    w_scale_shape = ctx.input_shape(4)
    if w_scale_shape and len(w_scale_shape) == 1 and w_scale_shape[0] != 1:
        w_scale = mb.reshape(x=w_scale, shape=channel_shape)
    scale = mb.real_div(x=mb.mul(x=_as_float(ctx, 1), y=w_scale), y=_as_float(ctx, 6))
    return [_requantize(ctx, accumulated, scale, 7)]
