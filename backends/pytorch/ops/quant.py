"""Quantization: QuantizeLinear, DequantizeLinear (per-tensor, per-axis, blocked),
DynamicQuantizeLinear, QLinearMatMul, QLinearConv, MatMulInteger, ConvInteger.

Integer results round half to even and saturate to the type's range; 4- and 2-bit types are held
in int8/uint8 (see ``dtypes.EMULATED``).
"""

from __future__ import annotations

from typing import Any

from unframe.backends.pytorch.dtypes import storage_dtype
from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch
from unframe.backends.pytorch.ops.nn import _conv
from unframe.backends.pytorch.ops.tensor import _cast, _cast_emulated

_RANGES = {
    "UINT8": (0, 255),
    "INT8": (-128, 127),
    "UINT16": (0, 65535),
    "INT16": (-32768, 32767),
    "UINT4": (0, 15),
    "INT4": (-8, 7),
    "UINT2": (0, 3),
    "INT2": (-2, 1),
}
_FLOAT8 = {"FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ"}


def _param(value: torch.Tensor, x: torch.Tensor, axis: int, block_size: int) -> torch.Tensor:
    """Scale/zero point broadcastable to ``x``: scalar, per-axis or blocked."""
    if value.dim() == 0 or value.numel() == 1:
        return value.reshape(())
    axis = axis + x.dim() if axis < 0 else axis
    if not block_size:
        shape = [1] * x.dim()
        shape[axis] = value.numel()
        return value.reshape(shape)
    value = value.repeat_interleave(block_size, dim=axis)
    return value.narrow(axis, 0, x.shape[axis])


def _quantize(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    axis: int,
    block_size: int,
    kind: str,
    saturate: bool,
    precision: torch.dtype | None,
) -> torch.Tensor:
    scale = _param(scale, x, axis, block_size)
    if precision is not None:
        scaled = x.to(precision) / scale.to(precision)
    else:
        scaled = x / scale
    if kind in _RANGES:
        low, high = _RANGES[kind]
        q = torch.round(scaled).to(torch.int64)  # half to even, like np.rint
        if zero_point is not None:
            q = q + _param(zero_point, x, axis, block_size).to(torch.int64)
        return q.clamp(low, high).to(storage_dtype(ir.DataType[kind]))
    if kind in _FLOAT8:
        return _cast(scaled, storage_dtype(ir.DataType[kind]), saturate)
    if zero_point is not None:
        scaled = scaled + _param(zero_point, x, axis, block_size).to(scaled.dtype)
    return _cast_emulated(scaled, kind, True, "up")


def _quantize_node(ctx: BuildContext, with_dtype_attrs: bool) -> Outputs:
    zero = ctx.node.inputs[2] if ctx.has_input(2) else None
    kind = None
    if zero is not None and zero.dtype is not None:
        kind = zero.dtype.name
    elif with_dtype_attrs and ctx.attr("output_dtype", 0):
        kind = ir.DataType(ctx.attr_int("output_dtype")).name
    precision = ctx.attr("precision", 0) if with_dtype_attrs else 0
    return [
        ctx.call(
            _quantize,
            ctx.input(0),
            ctx.input(1),
            ctx.optional_input(2),
            ctx.attr_int("axis", 1),
            ctx.attr_int("block_size", 0) if with_dtype_attrs else 0,
            kind or "UINT8",
            bool(ctx.attr_int("saturate", 1)),
            storage_dtype(precision) if precision else None,
        )
    ]


@ops.register("QuantizeLinear", since=10)
def quantize_linear_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _quantize_node(ctx, with_dtype_attrs=False)


@ops.register("QuantizeLinear", since=21)
def quantize_linear_v21(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _quantize_node(ctx, with_dtype_attrs=True)


def _dequantize(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | None,
    axis: int,
    block_size: int,
    subtract_zero: bool,
    out_dtype: torch.dtype | None,
) -> torch.Tensor:
    dx = x.to(torch.float32)
    if zero_point is not None and subtract_zero:
        dx = dx - _param(zero_point, x, axis, block_size).to(torch.float32)
    y = dx * _param(scale, x, axis, block_size)
    return y.to(out_dtype or scale.dtype)


def _dequantize_node(ctx: BuildContext, with_dtype_attrs: bool) -> Outputs:
    source = ctx.node.inputs[0]
    kind = source.dtype.name if source is not None and source.dtype is not None else ""
    subtract = kind not in _FLOAT8 and kind != "FLOAT4E2M1"
    out_dtype = None
    if with_dtype_attrs and ctx.attr("output_dtype", 0):
        out_dtype = storage_dtype(ctx.attr_int("output_dtype"))
    return [
        ctx.call(
            _dequantize,
            ctx.input(0),
            ctx.input(1),
            ctx.optional_input(2),
            ctx.attr_int("axis", 1),
            ctx.attr_int("block_size", 0) if with_dtype_attrs else 0,
            subtract,
            out_dtype,
        )
    ]


@ops.register("DequantizeLinear", since=10)
def dequantize_linear_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _dequantize_node(ctx, with_dtype_attrs=False)


@ops.register("DequantizeLinear", since=21)
def dequantize_linear_v21(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _dequantize_node(ctx, with_dtype_attrs=True)


def _dynamic_quantize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    low = torch.clamp(x.min(), max=0.0)
    high = torch.clamp(x.max(), min=0.0)
    scale = (high - low) / 255.0
    zero = torch.round((0 - low) / scale).clamp(0, 255)
    y = (torch.round(x / scale) + zero).clamp(0, 255).to(torch.uint8)
    return y, scale.to(torch.float32), zero.to(torch.uint8)


@ops.register("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return ctx.unpack(ctx.call(_dynamic_quantize, ctx.input(0)), 3)


def _centered(x: torch.Tensor, zero_point: torch.Tensor | None, axis: int) -> torch.Tensor:
    wide = x.to(torch.float64)
    if zero_point is None:
        return wide
    if zero_point.numel() > 1:
        shape = [1] * x.dim()
        shape[axis] = zero_point.numel()
        return wide - zero_point.to(torch.float64).reshape(shape)
    return wide - zero_point.to(torch.float64).reshape(())


def _requantize(
    value: torch.Tensor, y_zero: torch.Tensor | None, like: torch.Tensor
) -> torch.Tensor:
    dtype = y_zero.dtype if y_zero is not None else like.dtype
    if y_zero is not None:
        value = value + y_zero.to(torch.float64)
    info = torch.iinfo(dtype)
    return torch.round(value).clamp(info.min, info.max).to(dtype)


def _qlinear_matmul(
    a: torch.Tensor,
    a_scale: torch.Tensor,
    a_zero: torch.Tensor | None,
    b: torch.Tensor,
    b_scale: torch.Tensor,
    b_zero: torch.Tensor | None,
    y_scale: torch.Tensor,
    y_zero: torch.Tensor | None,
) -> torch.Tensor:
    product = torch.matmul(_centered(a, a_zero, -1), _centered(b, b_zero, -1))
    factor = (a_scale.to(torch.float64) * b_scale.to(torch.float64)) / y_scale.to(torch.float64)
    return _requantize(product * factor, y_zero, a)


@ops.register("QLinearMatMul", since=10)
def qlinear_matmul_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_qlinear_matmul, *(ctx.optional_input(i) for i in range(8)))]


def _matmul_integer(
    a: torch.Tensor, b: torch.Tensor, a_zero: torch.Tensor | None, b_zero: torch.Tensor | None
) -> torch.Tensor:
    a_wide = _centered(a, a_zero, a.dim() - 2 if a.dim() > 1 else 0)
    b_wide = _centered(b, b_zero, b.dim() - 1)
    return torch.matmul(a_wide, b_wide).round().to(torch.int32)


@ops.register("MatMulInteger", since=10)
def matmul_integer_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_matmul_integer, *(ctx.optional_input(i) for i in range(4)))]


def _conv_args(ctx: BuildContext) -> list[Any]:
    rank = ctx.input_rank(0)
    n = (rank - 2) if rank else len(ctx.attr_ints("kernel_shape", None) or [0, 0])
    return [
        ctx.attr_ints("strides", None) or [1] * n,
        ctx.attr_ints("pads", None),
        ctx.attr_ints("dilations", None) or [1] * n,
        ctx.attr_int("group", 1),
        ctx.attr_str("auto_pad", "NOTSET"),
    ]


def _conv_integer(
    x: torch.Tensor,
    w: torch.Tensor,
    x_zero: torch.Tensor | None,
    w_zero: torch.Tensor | None,
    *conv_args: Any,
) -> torch.Tensor:
    out = _conv(_centered(x, x_zero, 1), _centered(w, w_zero, 0), None, *conv_args)
    return out.round().to(torch.int32)


@ops.register("ConvInteger", since=10)
def conv_integer_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    inputs = [ctx.optional_input(i) for i in range(4)]
    return [ctx.call(_conv_integer, *inputs, *_conv_args(ctx))]


def _qlinear_conv(
    x: torch.Tensor,
    x_scale: torch.Tensor,
    x_zero: torch.Tensor | None,
    w: torch.Tensor,
    w_scale: torch.Tensor,
    w_zero: torch.Tensor | None,
    y_scale: torch.Tensor,
    y_zero: torch.Tensor | None,
    bias: torch.Tensor | None,
    *conv_args: Any,
) -> torch.Tensor:
    acc = _conv(_centered(x, x_zero, 1), _centered(w, w_zero, 0), None, *conv_args)
    if bias is not None:
        acc = acc + bias.to(torch.float64).reshape(1, -1, *([1] * (acc.dim() - 2)))
    scale = x_scale.to(torch.float64) * w_scale.to(torch.float64).reshape(-1)
    scale = scale.reshape(1, -1, *([1] * (acc.dim() - 2))) / y_scale.to(torch.float64)
    return _requantize(acc * scale, y_zero, x)


@ops.register("QLinearConv", since=10)
def qlinear_conv_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    inputs = [ctx.optional_input(i) for i in range(9)]
    return [ctx.call(_qlinear_conv, *inputs, *_conv_args(ctx))]
