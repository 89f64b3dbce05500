"""Linear algebra MIL has no op for: Det of small matrices by cofactor expansion."""

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
