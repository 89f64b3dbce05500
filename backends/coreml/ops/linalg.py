"""Linear algebra MIL has no op for: Det of small matrices by cofactor expansion, and
AffineGrid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import require_float
from unframe.backends.coreml.registry import ops

#: The largest matrices Det expands (3 x 3 takes 9 products of three; larger ones would need a
#: pivoted elimination, which MIL's ops could spell only with a data-dependent row swap).
_LARGEST_DET = 3


@ops.register("Det", since=11)
def det_v11(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    require_float(ctx, "Det")
    shape = ctx.input_shape(0)
    if shape is None or len(shape) < 2 or shape[-1] is None or shape[-1] != shape[-2]:
        raise ctx.error("an input whose last two dims are not one known square size")
    if any(d is None for d in shape[:-2]):
        raise ctx.error("batch dims unknown before run time")
    n, batch = int(shape[-1] or 0), [int(d or 0) for d in shape[:-2]]
    if n > _LARGEST_DET or n < 1:
        raise ctx.error(f"{n} x {n} matrices: Det expands matrices up to 3 x 3 exactly")
    mb, x = ctx.mb, ctx.input(0)
    rank = len(shape)

    def entry(i: int, j: int) -> Any:
        begin = [0] * (rank - 2) + [i, j]
        end = batch + [i + 1, j + 1]
        return mb.slice_by_index(x=x, begin=begin, end=end)

    if n == 1:
        det = entry(0, 0)
    elif n == 2:
        det = mb.sub(x=mb.mul(x=entry(0, 0), y=entry(1, 1)), y=mb.mul(x=entry(0, 1), y=entry(1, 0)))
    else:

        def minor(row: int, col: int) -> Any:
            r0, r1 = [r for r in range(3) if r != row]
            c0, c1 = [c for c in range(3) if c != col]
            return mb.sub(
                x=mb.mul(x=entry(r0, c0), y=entry(r1, c1)),
                y=mb.mul(x=entry(r0, c1), y=entry(r1, c0)),
            )

        det = mb.add(
            x=mb.sub(
                x=mb.mul(x=entry(0, 0), y=minor(0, 0)), y=mb.mul(x=entry(0, 1), y=minor(0, 1))
            ),
            y=mb.mul(x=entry(0, 2), y=minor(0, 2)),
        )
    return [mb.reshape(x=det, shape=np.asarray(batch, np.int32))]


def _base_axis(size: int, align_corners: bool) -> np.ndarray:
    """Normalized coordinates along one axis of ``size`` samples, as onnx's reference spaces
    them (a single sample sits at 0 without aligned corners)."""
    if align_corners:
        return -1.0 + np.arange(size) * (2.0 / (size - 1))
    step = 2.0 / size
    return -1.0 + step / 2 + np.arange(size) * step


@ops.register("AffineGrid", since=20)
def affine_grid_v20(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """theta times the homogeneous base grid (x, y[, z], 1) of the output's size: one matmul.
    A size given only at run time is read from the output's declared shape."""
    require_float(ctx, "AffineGrid")
    theta = ctx.input_shape(0)
    if theta is None or len(theta) != 3 or theta[1] not in (2, 3):
        raise ctx.error("theta that is not [N, 2, 3] or [N, 3, 4]")
    spatial = int(theta[1] or 0)
    sizes = ctx.ints(1)
    if sizes is None:
        declared = node.outputs[0].shape
        if declared is None or not all(isinstance(d, int) for d in declared):
            raise ctx.error("size computed at run time, and the output's shape unknown")
        dims = [int(d) for d in list(declared)[1:-1]]  # type: ignore[arg-type]
    else:
        dims = sizes[2:]
    if len(dims) != spatial:
        raise ctx.error(f"{len(dims)} spatial sizes for a {spatial}-D theta")
    align = bool(ctx.attr("align_corners", 0))
    if align and 1 in dims:
        raise ctx.error(
            "align_corners=1 with a single sample along an axis: onnx's reference puts it at -1, "
            "onnxruntime elsewhere (the spec says neither)"
        )
    axes = np.meshgrid(*(_base_axis(d, align) for d in dims), indexing="ij")
    # Homogeneous coordinates, the last axis first: (x, y[, z], 1).
    base = np.stack([*reversed(axes), np.ones(dims)], axis=-1).reshape(-1, spatial + 1)
    dtype = np.float16 if ctx.mil_dtype(ctx.input_dtype(0)) == "fp16" else np.float32
    mb = ctx.mb
    grid = mb.matmul(x=base.astype(dtype), y=ctx.input(0), transpose_y=True)  # [N, P, spatial]
    batch = -1 if theta[0] is None else int(theta[0])
    return [mb.reshape(x=grid, shape=[batch, *dims, spatial])]
