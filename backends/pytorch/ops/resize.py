"""Resize (opset 10-19) and Upsample: separable per-axis interpolation, onnx's reference ported.

Each resized axis is one gather of ``n`` neighbours per output position and a weighted sum, with
the coefficients computed by torch from the run-time sizes (nearest, linear, cubic, antialias).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch
from unframe.shared_ir.resize_rules import (
    ResizeOptions,
    legacy_resize_options,
    resize_axes_and_policy,
    resize_options,
)


def _source_coords(
    mode: str,
    y: torch.Tensor,
    scale: float,
    width: int,
    out_int: int,
    roi: tuple[float, float] | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    out = scale * width
    extrapolated = None
    if mode == "align_corners":
        x = torch.zeros_like(y) if out == 1 else y * (width - 1) / (out - 1)
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "tf_crop_and_resize":
        assert roi is not None, "tf_crop_and_resize needs roi"
        start, end = roi
        if out == 1:
            x = torch.full_like(y, (end - start) * (width - 1) / 2)
        else:
            x = y * (end - start) * (width - 1) / (out - 1)
        x = x + start * (width - 1)
        extrapolated = (x < 0) | (x > width - 1)
    elif mode == "pytorch_half_pixel":
        x = torch.full_like(y, -0.5) if out == 1 else (y + 0.5) / scale - 0.5
    elif mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif mode == "half_pixel_symmetric":
        adjustment = out_int / out
        offset = width / 2 * (1 - adjustment)
        x = offset + (y + 0.5) / scale - 0.5
    else:
        raise ValueError(f"unknown coordinate_transformation_mode {mode!r}")
    return x, extrapolated


def _cubic_kernel(x: torch.Tensor, a: float) -> torch.Tensor:
    x = x.abs()
    near = (a + 2) * x**3 - (a + 3) * x**2 + 1
    far = a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return torch.where(x <= 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


def _coefficients(
    ratio: torch.Tensor, scale: float, mode: str, nearest_mode: str, a: float, antialias: bool
) -> torch.Tensor:
    """Per output position, the weights of its ``n`` neighbours: shape ``[out, n]``."""
    r = ratio[:, None]
    if mode == "nearest":
        integer = r == 1.0
        if nearest_mode == "round_prefer_floor":
            right = r > 0.5
        elif nearest_mode == "round_prefer_ceil":
            right = r >= 0.5
        elif nearest_mode == "floor":
            right = torch.zeros_like(r, dtype=torch.bool)
        else:  # ceil
            right = torch.ones_like(r, dtype=torch.bool)
        right = right | integer
        return torch.cat([(~right).double(), right.double()], dim=1)
    if mode == "linear" and not antialias:
        return torch.cat([1 - r, r], dim=1)
    if mode == "cubic" and not antialias:
        return torch.cat(
            [
                _cubic_kernel(r + 1, a),
                _cubic_kernel(r, a),
                _cubic_kernel(1 - r, a),
                _cubic_kernel(2 - r, a),
            ],
            dim=1,
        )
    s = min(scale, 1.0)
    if mode == "linear":
        start = int(math.floor(-1 / s) + 1)
        taps = torch.arange(start, start + 2 - 2 * start, dtype=torch.float64)
        weights = (1 - ((taps[None, :] - r) * s).abs()).clamp(0, 1)
    else:
        start = int(math.floor(-2 / s) + 1)
        taps = torch.arange(start, 2 - start, dtype=torch.float64)
        weights = _cubic_kernel((taps[None, :] - r) * s, a)
    return weights / weights.sum(dim=1, keepdim=True)


def _resize_axis(
    data: torch.Tensor,
    axis: int,
    scale: float,
    out_int: int,
    options: dict[str, Any],
    roi: tuple[float, float] | None,
) -> torch.Tensor:
    width = data.shape[axis]
    if out_int == 0:
        shape = list(data.shape)
        shape[axis] = 0
        return data.new_empty(shape)
    y = torch.arange(out_int, dtype=torch.float64)
    x, extrapolated = _source_coords(options["coordinate"], y, scale, width, out_int, roi)
    x_floor = torch.floor(x)
    ratio = torch.where(x == x_floor, torch.ones_like(x), x - x_floor)
    coeffs = _coefficients(
        ratio,
        scale,
        options["mode"],
        options["nearest_mode"],
        options["cubic_a"],
        options["antialias"],
    )
    n = coeffs.shape[1]
    pad = (n + 1) // 2
    padded = x + pad
    p = torch.floor(padded).long()
    frac = padded - p
    if n % 2 == 0:
        offset = torch.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        base = -((n - 1) // 2)
        offset = torch.where(frac <= 0.5, base, base + 1)
    neighbours = (p + offset)[:, None] + torch.arange(n)[None, :] - pad
    if options["exclude_outside"]:
        outside = (neighbours < 0) | (neighbours >= width)
        coeffs = torch.where(outside, torch.zeros_like(coeffs), coeffs)
        total = coeffs.sum(dim=-1, keepdim=True)
        coeffs = coeffs / torch.where(total == 0, torch.ones_like(total), total)
    index = neighbours.clamp(0, width - 1).reshape(-1)
    gathered = data.index_select(axis, index)
    shape = list(data.shape)
    shape[axis : axis + 1] = [out_int, n]
    gathered = gathered.reshape(shape)
    weight_shape = [1] * axis + [out_int, n] + [1] * (data.dim() - axis - 1)
    result = (gathered * coeffs.reshape(weight_shape).to(data.dtype)).sum(dim=axis + 1)
    if extrapolated is not None:
        mask_shape = [1] * axis + [out_int] + [1] * (data.dim() - axis - 1)
        value = torch.tensor(options["extrapolation"], dtype=data.dtype)
        result = torch.where(extrapolated.reshape(mask_shape), value, result)
    return result


def onnx_resize(
    x: torch.Tensor,
    roi: list[float] | None,
    scales: list[float] | None,
    sizes: list[int] | None,
    axes: list[int] | None,
    policy: str,
    options: dict[str, Any],
) -> torch.Tensor:
    rank = x.dim()
    roi = roi if roi else None
    scales = scales if scales else None
    sizes = sizes if sizes else None
    if axes is not None:
        axes = [a + rank if a < 0 else a for a in axes]
        if scales is not None:
            full = [1.0] * rank
            for i, d in enumerate(axes):
                full[d] = scales[i]
            scales = full
        if sizes is not None:
            full_sizes = list(x.shape)
            for i, d in enumerate(axes):
                full_sizes[d] = sizes[i]
            sizes = full_sizes
        if roi is not None:
            full_roi = [0.0] * rank + [1.0] * rank
            for i, d in enumerate(axes):
                full_roi[d] = roi[i]
                full_roi[rank + d] = roi[len(axes) + i]
            roi = full_roi
    else:
        axes = list(range(rank))
    if sizes is not None:
        scales = [sizes[i] / x.shape[i] for i in range(rank)]
        if policy != "stretch":
            picked = [scales[i] for i in axes]
            scale = min(picked) if policy == "not_larger" else max(picked)
            scales = [scale if i in axes else 1.0 for i in range(rank)]
            sizes = [
                int(scale * x.shape[i] + 0.5) if i in axes else x.shape[i] for i in range(rank)
            ]
    else:
        assert scales is not None, "Resize needs scales or sizes"
        # A scale of exactly 1 keeps the axis, symbolic or not: int(1.0 * d) would specialize a
        # dynamic batch to its example size under torch.export.
        sizes = [d if s == 1.0 else int(s * d) for s, d in zip(scales, x.shape, strict=True)]
    result = x if x.dtype == torch.float64 else x.double()
    for axis in axes:
        identity_roi = roi is None or (
            math.isclose(roi[axis], 0.0) and math.isclose(roi[axis + rank], 1.0)
        )
        if math.isclose(scales[axis], 1.0) and sizes[axis] == result.shape[axis] and identity_roi:
            continue
        axis_roi = None if roi is None else (roi[axis], roi[axis + rank])
        result = _resize_axis(
            result, axis, float(scales[axis]), int(sizes[axis]), options, axis_roi
        )
    if x.is_floating_point():
        return result.to(x.dtype)
    info = torch.iinfo(x.dtype)
    return result.round().clamp(info.min, info.max).to(x.dtype)


def _as_call_argument(options: ResizeOptions) -> dict[str, Any]:
    """The options as a plain dict: what an fx graph (and its .pt2 file) can hold as an argument."""
    return dataclasses.asdict(options)


def _float_list(ctx: BuildContext, index: int) -> Any:
    if not ctx.has_input(index):
        return None
    array = ctx.constant_input(index)
    if array is not None:
        return [float(v) for v in array.reshape(-1)]
    return ctx.method("tolist", ctx.input(index))


def _resize_legacy(ctx: BuildContext, scales: Any) -> Outputs:
    """Resize 10 and Upsample: every axis by ``scales``, by the rules of before opset 11."""
    options = _as_call_argument(legacy_resize_options(ctx))
    return [ctx.call(onnx_resize, ctx.input(0), None, scales, None, None, "stretch", options)]


@ops.register("Resize", since=10)
def resize_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _resize_legacy(ctx, _float_list(ctx, 1))


def _resize_v11(ctx: BuildContext, with_axes: bool) -> Outputs:
    options = _as_call_argument(resize_options(ctx))
    sizes = ctx.int_list(3) if ctx.has_input(3) else None
    axes, policy = resize_axes_and_policy(ctx, with_axes)
    return [
        ctx.call(
            onnx_resize,
            ctx.input(0),
            _float_list(ctx, 1),
            _float_list(ctx, 2),
            sizes,
            axes,
            policy,
            options,
        )
    ]


@ops.register("Resize", since=11)
def resize_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _resize_v11(ctx, with_axes=False)


@ops.register("Resize", since=18)
def resize_v18(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _resize_v11(ctx, with_axes=True)


@ops.register("Upsample", since=7)
def upsample_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _resize_legacy(ctx, ctx.attr_floats("scales", None))


@ops.register("Upsample", since=9)
def upsample_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _resize_legacy(ctx, _float_list(ctx, 1))
