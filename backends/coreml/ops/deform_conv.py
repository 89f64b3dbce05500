"""DeformConv (2-D): each kernel tap samples the input bilinearly at its place shifted by the
learned offset (corners outside the image read 0, as onnx's reference's GridSample with zeros
padding), weighted by the mask, and the sampled columns meet the weights in one matmul per
group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import require_float
from unframe.backends.coreml.registry import ops


def _static(ctx: ExportContext, index: int, what: str, rank: int) -> list[int]:
    shape = ctx.input_shape(index)
    if shape is None or len(shape) != rank or any(d is None for d in shape):
        raise ctx.error(f"{what} of a shape unknown before run time (or not rank {rank})")
    return [int(d or 0) for d in shape]


@ops.register("DeformConv", since=19)
def deform_conv_v19(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "DeformConv")
    if ctx.mil_dtype(ctx.input_dtype(0)) != "fp32":
        raise ctx.error("float16 DeformConv: its sample positions are computed in float32")
    mb = ctx.mb
    n, channels, height, width = _static(ctx, 0, "an input", 4)
    out_channels, group_channels, kh, kw = _static(ctx, 1, "a weight", 4)
    _, offset_channels, oh, ow = _static(ctx, 2, "an offset", 4)
    groups = int(ctx.attr("group", 1))
    offset_groups = int(ctx.attr("offset_group", 1))
    stride_h, stride_w = [int(s) for s in ctx.attr("strides", None) or [1, 1]]
    dil_h, dil_w = [int(d) for d in ctx.attr("dilations", None) or [1, 1]]
    pad_top, pad_left = ([int(p) for p in ctx.attr("pads", None) or [0, 0, 0, 0]])[:2]
    taps, places = kh * kw, oh * ow
    if offset_channels != offset_groups * taps * 2 or channels % offset_groups:
        raise ctx.error(f"offset channels {offset_channels} for offset_group {offset_groups}")
    if channels != groups * group_channels or out_channels % groups:
        raise ctx.error(f"weight of {group_channels} channels per group for group {groups}")
    # Where each tap samples before its offset: [1, 1, K, P].
    a, b = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    i, j = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    base_h = (
        (a.reshape(-1, 1) * dil_h + (i.reshape(1, -1) * stride_h - pad_top))
        .astype(np.float32)
        .reshape(1, 1, taps, places)
    )
    base_w = (
        (b.reshape(-1, 1) * dil_w + (j.reshape(1, -1) * stride_w - pad_left))
        .astype(np.float32)
        .reshape(1, 1, taps, places)
    )
    offsets = mb.reshape(x=ctx.input(2), shape=[n, offset_groups, taps, 2, places])

    def part(index: int) -> Any:
        piece = mb.slice_by_index(
            x=offsets,
            begin=[0, 0, 0, index, 0],
            end=[n, offset_groups, taps, index + 1, places],
        )
        return mb.squeeze(x=piece, axes=[3])

    rows = mb.add(x=part(0), y=base_h)  # [N, og, K, P]
    cols = mb.add(x=part(1), y=base_w)
    row0, col0 = mb.floor(x=rows), mb.floor(x=cols)
    row_frac, col_frac = mb.sub(x=rows, y=row0), mb.sub(x=cols, y=col0)
    mask: Any = None
    if ctx.has_input(4):
        mask = mb.reshape(x=ctx.input(4), shape=[n, offset_groups, taps, places])
    per_group = channels // offset_groups
    image = mb.reshape(x=ctx.input(0), shape=[n, offset_groups, per_group, height * width])
    sampled: Any = None
    for dy in (0, 1):
        row = mb.add(x=row0, y=np.float32(dy))
        row_weight = row_frac if dy else mb.sub(x=np.float32(1), y=row_frac)
        for dx in (0, 1):
            col = mb.add(x=col0, y=np.float32(dx))
            col_weight = col_frac if dx else mb.sub(x=np.float32(1), y=col_frac)
            inside = mb.logical_and(
                x=mb.logical_and(
                    x=mb.greater_equal(x=row, y=np.float32(0)),
                    y=mb.less_equal(x=row, y=np.float32(height - 1)),
                ),
                y=mb.logical_and(
                    x=mb.greater_equal(x=col, y=np.float32(0)),
                    y=mb.less_equal(x=col, y=np.float32(width - 1)),
                ),
            )
            weight = mb.mul(x=mb.mul(x=row_weight, y=col_weight), y=mb.cast(x=inside, dtype="fp32"))
            if mask is not None:
                weight = mb.mul(x=weight, y=mask)
            flat = mb.add(
                x=mb.mul(
                    x=mb.minimum(x=mb.maximum(x=row, y=np.float32(0)), y=np.float32(height - 1)),
                    y=np.float32(width),
                ),
                y=mb.minimum(x=mb.maximum(x=col, y=np.float32(0)), y=np.float32(width - 1)),
            )
            index = mb.reshape(
                x=mb.cast(x=flat, dtype="int32"), shape=[n, offset_groups, 1, taps * places]
            )
            index = mb.tile(x=index, reps=[1, 1, per_group, 1])
            values = mb.gather_along_axis(x=image, indices=index, axis=3)
            term = mb.mul(
                x=values, y=mb.reshape(x=weight, shape=[n, offset_groups, 1, taps * places])
            )
            sampled = term if sampled is None else mb.add(x=sampled, y=term)
    # [N, C, K, P] -> per group [N, g, C/g * K, P] against weights [g, OC/g, C/g * K].
    columns = mb.reshape(x=sampled, shape=[n, groups, group_channels * taps, places])
    weights = mb.reshape(
        x=ctx.input(1), shape=[groups, out_channels // groups, group_channels * taps]
    )
    result = mb.reshape(x=mb.matmul(x=weights, y=columns), shape=[n, out_channels, oh, ow])
    if ctx.has_input(3):
        result = mb.add(x=result, y=mb.reshape(x=ctx.input(3), shape=[1, out_channels, 1, 1]))
    return [result]
