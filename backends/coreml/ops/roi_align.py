"""RoiAlign: bilinear samples on a fixed grid in each bin of each region, averaged or maxed.

Every sample's rows and columns come from the region's corners at run time, so the four taps
are gathered (rows, then columns) from the region's image; the rules for samples near or past
the edges (none past -1 or the size, clamped to the last row or column) are onnx's reference's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import require_float
from unframe.backends.coreml.registry import ops


def _axis_taps(
    ctx: ExportContext, start: Any, extent: Any, bins: int, grid: int, size: int
) -> tuple[Any, Any, Any, Any, Any]:
    """Along one axis: (low index, high index, low weight, high weight, inside) per region and
    sample, ``[R, bins * grid]``."""
    mb = ctx.mb
    count = bins * grid
    fractions = np.asarray(
        [k // grid + ((k % grid) + 0.5) / grid for k in range(count)], np.float32
    ).reshape(1, count)
    bin_size = mb.real_div(x=extent, y=np.float32(bins))
    position = mb.add(x=start, y=mb.mul(x=bin_size, y=fractions))
    inside = mb.logical_and(
        x=mb.greater_equal(x=position, y=np.float32(-1)),
        y=mb.less_equal(x=position, y=np.float32(size)),
    )
    position = mb.maximum(x=position, y=np.float32(0))
    low = mb.floor(x=position)
    at_end = mb.greater_equal(x=low, y=np.float32(size - 1))
    low = mb.select(cond=at_end, a=np.float32(size - 1), b=low)
    position = mb.select(cond=at_end, a=low, b=position)
    high = mb.select(cond=at_end, a=low, b=mb.add(x=low, y=np.float32(1)))
    upper_weight = mb.sub(x=position, y=low)
    lower_weight = mb.sub(x=np.float32(1), y=upper_weight)
    return (
        mb.cast(x=low, dtype="int32"),
        mb.cast(x=high, dtype="int32"),
        lower_weight,
        upper_weight,
        inside,
    )


def _roi_align(ctx: ExportContext, half_pixel: bool) -> Any:
    require_float(ctx, "RoiAlign")
    mb = ctx.mb
    shape, rois_shape = ctx.input_shape(0), ctx.input_shape(1)
    if shape is None or len(shape) != 4 or any(d is None for d in shape):
        raise ctx.error("an input of a shape unknown before run time")
    if rois_shape is None or rois_shape[0] is None:
        raise ctx.error("a count of regions unknown before run time")
    _, channels, height, width = (int(d or 0) for d in shape)
    regions = int(rois_shape[0])
    out_h, out_w = int(ctx.attr("output_height", 1)), int(ctx.attr("output_width", 1))
    ratio = int(ctx.attr("sampling_ratio", 0))
    if ratio <= 0:
        raise ctx.error(
            "sampling_ratio=0: the samples per bin would follow each region's size at run time"
        )
    mode = str(ctx.attr("mode", "avg"))
    if mode not in ("avg", "max"):
        raise ctx.error(f"mode={mode!r}: ONNX's RoiAlign averages or maxes")
    scale = np.float32(ctx.attr("spatial_scale", 1.0))
    # float16 is computed in float32 (the positions' constants) and cast back at the end.
    half = ctx.mil_dtype(ctx.input_dtype(0)) == "fp16"
    image, boxes = ctx.input(0), ctx.input(1)
    if half:
        image = mb.cast(x=image, dtype="fp32")
    if ctx.mil_dtype(ctx.input_dtype(1)) == "fp16":
        boxes = mb.cast(x=boxes, dtype="fp32")
    corners = mb.sub(x=mb.mul(x=boxes, y=scale), y=np.float32(0.5 if half_pixel else 0))

    def column(i: int) -> Any:
        return mb.slice_by_index(x=corners, begin=[0, i], end=[regions, i + 1])

    extent_w = mb.sub(x=column(2), y=column(0))
    extent_h = mb.sub(x=column(3), y=column(1))
    if not half_pixel:  # malformed regions become 1 x 1
        extent_w = mb.maximum(x=extent_w, y=np.float32(1))
        extent_h = mb.maximum(x=extent_h, y=np.float32(1))
    ys = _axis_taps(ctx, column(1), extent_h, out_h, ratio, height)
    xs = _axis_taps(ctx, column(0), extent_w, out_w, ratio, width)
    rows_n, cols_n = out_h * ratio, out_w * ratio
    batch = ctx.input(2)
    if ctx.mil_dtype(ctx.input_dtype(2)) != "int32":
        batch = mb.cast(x=batch, dtype="int32")
    images = mb.gather(x=image, indices=batch, axis=0)  # [R, C, H, W]
    inside = mb.cast(
        x=mb.logical_and(
            x=mb.reshape(x=ys[4], shape=[regions, 1, rows_n, 1]),
            y=mb.reshape(x=xs[4], shape=[regions, 1, 1, cols_n]),
        ),
        dtype="fp32",
    )
    taps = []
    for y_index, y_weight in ((ys[0], ys[2]), (ys[1], ys[3])):
        row_index = mb.tile(
            x=mb.reshape(x=y_index, shape=[regions, 1, rows_n, 1]), reps=[1, channels, 1, width]
        )
        rows = mb.gather_along_axis(x=images, indices=row_index, axis=2)
        for x_index, x_weight in ((xs[0], xs[2]), (xs[1], xs[3])):
            col_index = mb.tile(
                x=mb.reshape(x=x_index, shape=[regions, 1, 1, cols_n]),
                reps=[1, channels, rows_n, 1],
            )
            values = mb.gather_along_axis(x=rows, indices=col_index, axis=3)
            weight = mb.mul(
                x=mb.reshape(x=y_weight, shape=[regions, 1, rows_n, 1]),
                y=mb.reshape(x=x_weight, shape=[regions, 1, 1, cols_n]),
            )
            taps.append(mb.mul(x=values, y=mb.mul(x=weight, y=inside)))
    if mode == "avg":
        samples = mb.add(x=mb.add(x=taps[0], y=taps[1]), y=mb.add(x=taps[2], y=taps[3]))
        reduce = mb.reduce_sum
    else:
        samples = mb.maximum(x=mb.maximum(x=taps[0], y=taps[1]), y=mb.maximum(x=taps[2], y=taps[3]))
        reduce = mb.reduce_max
    samples = mb.reshape(x=samples, shape=[regions, channels, rows_n, out_w, ratio])
    samples = reduce(x=samples, axes=[4], keep_dims=False)
    samples = mb.reshape(x=samples, shape=[regions, channels, out_h, ratio, out_w])
    pooled = reduce(x=samples, axes=[3], keep_dims=False)
    if mode == "avg":
        pooled = mb.real_div(x=pooled, y=np.float32(ratio * ratio))
    return mb.cast(x=pooled, dtype="fp16") if half else pooled


@ops.register("RoiAlign", since=10)
def roi_align_v10(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return [_roi_align(ctx, half_pixel=False)]  # opset 10 samples as output_half_pixel


@ops.register("RoiAlign", since=16)
def roi_align_v16(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mode = str(ctx.attr("coordinate_transformation_mode", "half_pixel"))
    if mode not in ("half_pixel", "output_half_pixel"):
        raise ctx.error(f"coordinate_transformation_mode={mode!r}")
    return [_roi_align(ctx, half_pixel=mode == "half_pixel")]
