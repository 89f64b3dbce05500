"""Resize as ONNX defines it, one axis at a time: gathers of neighbours and a weighted sum.

MIL's own resize ops sample on a few fixed grids and take their scales as constants. Where those
grids differ from ONNX's, or the scales, sizes or region of interest arrive at run time, each
resized axis is built from the ONNX reference's own steps (``onnx.reference.ops.op_resize``):
the source coordinate of every output index (from the scale, a MIL scalar that may be computed at
run time), the taps around it, the kernel weight of each tap, neighbours clamped to the edge (or
left out and the weights renormalized, ``exclude_outside``), one ``gather`` and a ``reduce_sum``.
Antialiasing stretches the kernel by 1/scale; the taps then span what the smallest scale the
declared output size allows needs, and taps beyond the kernel's support weigh exactly zero, as
in the reference. The resized axes' sizes must be known when the program is built (constant
scales or sizes, or the node's declared output shape); the other axes may vary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.native.reading import mil_type_name


@dataclass(frozen=True)
class Sampling:
    """The node's sampling attributes."""

    mode: str
    coordinates: str
    nearest_mode: str
    cubic_a: float = -0.75
    exclude_outside: bool = False
    antialias: bool = False
    extrapolation: float = 0.0


@dataclass
class AxisResize:
    """One axis to resample: its sizes, its scale (float or MIL var of shape (1,)), the smallest
    scale the output size allows (for antialiasing's tap count) and, for tf_crop_and_resize, the
    region of interest's start and end (floats or vars)."""

    axis: int
    size_in: int
    size_out: int
    scale: Any
    smallest_scale: float
    roi: tuple[Any, Any] = (0.0, 1.0)


def _f32(value: float) -> np.float32:
    return np.float32(value)


def _source_coordinates(
    ctx: ExportContext, plan: AxisResize, sampling: Sampling
) -> tuple[Any, Any]:
    """Each output index's source coordinate (float32 of shape (out,)) and, for
    tf_crop_and_resize, which ones fall outside the input (bool var) else None."""
    mb = ctx.mb
    n_in = float(plan.size_in)
    i = np.arange(plan.size_out, dtype=np.float32)
    centre = i + np.float32(0.5)
    scale = plan.scale
    width = mb.mul(x=scale, y=_f32(n_in))  # ONNX's output_width: scale * input width, a float
    single = mb.equal(x=width, y=_f32(1.0))
    mode = sampling.coordinates
    if mode == "half_pixel":
        return mb.sub(x=mb.real_div(x=centre, y=scale), y=_f32(0.5)), None
    if mode == "tf_half_pixel_for_nn":
        return mb.real_div(x=centre, y=scale), None
    if mode == "asymmetric":
        return mb.real_div(x=i, y=scale), None
    if mode == "pytorch_half_pixel":
        x = mb.sub(x=mb.real_div(x=centre, y=scale), y=_f32(0.5))
        return mb.select(cond=single, a=np.full(i.shape, -0.5, np.float32), b=x), None
    if mode == "half_pixel_symmetric":
        adjustment = mb.real_div(x=_f32(plan.size_out), y=width)
        offset = mb.mul(x=_f32(n_in / 2), y=mb.sub(x=_f32(1.0), y=adjustment))
        x = mb.sub(x=mb.real_div(x=centre, y=scale), y=_f32(0.5))
        return mb.add(x=offset, y=x), None
    if mode == "align_corners":
        span = mb.sub(x=width, y=_f32(1.0))
        x = mb.real_div(x=mb.mul(x=i, y=_f32(n_in - 1)), y=span)
        return mb.select(cond=single, a=np.zeros(i.shape, np.float32), b=x), None
    if mode == "tf_crop_and_resize":
        start, end = plan.roi
        extent = mb.mul(x=mb.sub(x=end, y=start), y=_f32(n_in - 1))
        stepped = mb.real_div(x=mb.mul(x=i, y=extent), y=mb.sub(x=width, y=_f32(1.0)))
        halfway = mb.real_div(x=extent, y=_f32(2.0))
        x = mb.add(
            x=mb.select(cond=single, a=halfway, b=stepped), y=mb.mul(x=start, y=_f32(n_in - 1))
        )
        outside = mb.logical_or(x=mb.less(x=x, y=_f32(0.0)), y=mb.greater(x=x, y=_f32(n_in - 1)))
        return x, outside
    raise ctx.error(f"coordinate_transformation_mode={mode}")


def _nearest_index(ctx: ExportContext, x: Any, nearest_mode: str) -> Any:
    """ONNX's nearest pixel: an integer coordinate is itself, others round by ``nearest_mode``."""
    mb = ctx.mb
    if nearest_mode == "round_prefer_floor":
        return mb.ceil(x=mb.sub(x=x, y=_f32(0.5)))
    if nearest_mode == "round_prefer_ceil":
        return mb.floor(x=mb.add(x=x, y=_f32(0.5)))
    if nearest_mode == "floor":
        return mb.floor(x=x)
    if nearest_mode == "ceil":
        return mb.ceil(x=x)
    raise ctx.error(f"nearest_mode={nearest_mode}")


def _kernel(ctx: ExportContext, distance: Any, sampling: Sampling) -> Any:
    """The interpolation kernel at ``distance`` (linear: the tent; cubic: Keys' with a)."""
    mb = ctx.mb
    d = mb.abs(x=distance)
    if sampling.mode == "linear":
        return mb.clip(x=mb.sub(x=_f32(1.0), y=d), alpha=_f32(0.0), beta=_f32(1.0))
    a = sampling.cubic_a
    d2 = mb.mul(x=d, y=d)
    d3 = mb.mul(x=d2, y=d)
    near = mb.add(
        x=mb.sub(x=mb.mul(x=d3, y=_f32(a + 2)), y=mb.mul(x=d2, y=_f32(a + 3))), y=_f32(1.0)
    )
    far = mb.add(
        x=mb.sub(x=mb.mul(x=d3, y=_f32(a)), y=mb.mul(x=d2, y=_f32(5 * a))),
        y=mb.sub(x=mb.mul(x=d, y=_f32(8 * a)), y=_f32(4 * a)),
    )
    zeros = np.zeros((1,), np.float32)
    return mb.select(
        cond=mb.less_equal(x=d, y=_f32(1.0)),
        a=near,
        b=mb.select(cond=mb.less(x=d, y=_f32(2.0)), a=far, b=zeros),
    )


def _tap_offsets(plan: AxisResize, sampling: Sampling) -> np.ndarray:
    """Taps relative to floor(x): those the reference reads for the smallest allowed scale."""
    support = 1 if sampling.mode == "linear" else 2
    if not sampling.antialias or plan.smallest_scale >= 1:
        return np.arange(1 - support, support + 1, dtype=np.int32)
    reach = math.ceil(support / plan.smallest_scale)
    return np.arange(-reach, reach + 2, dtype=np.int32)


def _resample_axis(ctx: ExportContext, data: Any, plan: AxisResize, sampling: Sampling) -> Any:
    mb = ctx.mb
    axis, rank = plan.axis, len(data.shape)
    last = _f32(plan.size_in - 1)
    x, outside = _source_coordinates(ctx, plan, sampling)
    if sampling.mode == "nearest":
        chosen = mb.clip(x=_nearest_index(ctx, x, sampling.nearest_mode), alpha=_f32(0), beta=last)
        result = mb.gather(x=data, indices=mb.cast(x=chosen, dtype="int32"), axis=axis)
    else:
        offsets = _tap_offsets(plan, sampling).astype(np.float32)
        taps = mb.add(x=mb.expand_dims(x=mb.floor(x=x), axes=[1]), y=offsets[None, :])
        distance = mb.sub(x=taps, y=mb.expand_dims(x=x, axes=[1]))  # (out, taps)
        if sampling.antialias:
            distance = mb.mul(x=distance, y=mb.minimum(x=plan.scale, y=_f32(1.0)))
        weights = _kernel(ctx, distance, sampling)
        if sampling.antialias:
            weights = mb.real_div(x=weights, y=mb.reduce_sum(x=weights, axes=[1], keep_dims=True))
        if sampling.exclude_outside:
            inside = mb.logical_and(
                x=mb.greater_equal(x=taps, y=_f32(0)), y=mb.less_equal(x=taps, y=last)
            )
            weights = mb.select(cond=inside, a=weights, b=np.zeros((1,), np.float32))
            total = mb.reduce_sum(x=weights, axes=[1], keep_dims=True)
            total = mb.select(
                cond=mb.equal(x=total, y=_f32(0)), a=np.ones((1,), np.float32), b=total
            )
            weights = mb.real_div(x=weights, y=total)
        count = len(_tap_offsets(plan, sampling))
        index = mb.cast(x=mb.clip(x=taps, alpha=_f32(0), beta=last), dtype="int32")
        gathered = mb.gather(x=data, indices=index, axis=axis)  # (..., out, taps, ...)
        weight_shape = [1] * axis + [plan.size_out, count] + [1] * (rank - axis - 1)
        if data.dtype != weights.dtype:
            weights = mb.cast(x=weights, dtype="fp16")
        weighted = mb.mul(x=gathered, y=mb.reshape(x=weights, shape=weight_shape))
        result = mb.reduce_sum(x=weighted, axes=[axis + 1], keep_dims=False)
    if outside is not None:
        mask_shape = [1] * axis + [plan.size_out] + [1] * (rank - axis - 1)
        fill = np.asarray(sampling.extrapolation, np.float16 if _is_fp16(result) else np.float32)
        result = mb.select(cond=mb.reshape(x=outside, shape=mask_shape), a=fill, b=result)
    return result


def _is_fp16(var: Any) -> bool:
    return mil_type_name(var.dtype) == "fp16"


def resample(ctx: ExportContext, data: Any, plans: list[AxisResize], sampling: Sampling) -> Any:
    """``data`` (static shape) resampled along each planned axis in turn, as the reference does."""
    if sampling.mode not in ("nearest", "linear", "cubic"):
        raise ctx.error(f"mode={sampling.mode}")
    if sampling.mode == "nearest" and sampling.antialias:
        raise ctx.error("antialias=1 with mode=nearest: ONNX defines no such resize")
    for plan in plans:
        if plan.size_out == 0:
            raise ctx.error(f"an empty output on axis {plan.axis}")
        data = _resample_axis(ctx, data, plan, sampling)
    return data
