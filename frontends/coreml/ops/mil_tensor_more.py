"""MIL indexing ops: gather_nd, scatter, scatter_along_axis, scatter_nd, non_zero, pixel_unshuffle,
reverse_sequence."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.frontends.coreml.context import MilContext
from unframe.frontends.coreml.registry import IOS15, IOS16, MIL_DOMAIN, ops

#: MIL scatter modes and ONNX's reductions (ONNX has no sub or div).
_REDUCTIONS = {"update": "none", "add": "add", "mul": "mul", "max": "max", "min": "min"}


def _reduction(ctx: MilContext) -> str:
    mode = str(ctx.attr("mode", "add"))
    found = _REDUCTIONS.get(mode)
    if found is None:
        raise ctx.error(f"mode={mode!r}: ONNX scatters with update, add, mul, max or min")
    return found


@ops.register("gather_nd", since=IOS15, domain=MIL_DOMAIN)
def gather_nd(op: Any, ctx: MilContext) -> ir.Value:
    attrs = {"batch_dims": int(ctx.attr("batch_dims", 0))}
    # GatherND reads int64 indices only; MIL's are int32.
    wide = ctx.op1("Cast", [ctx.value("indices")], {"to": ir.DataType.INT64})
    return ctx.op1("GatherND", [ctx.value("x"), wide], attrs)


@ops.register("scatter_along_axis", since=IOS15, domain=MIL_DOMAIN)
def scatter_along_axis(op: Any, ctx: MilContext) -> ir.Value:
    inputs = [ctx.value("data"), ctx.value("indices"), ctx.value("updates")]
    attrs = {"axis": int(ctx.attr("axis", 0)), "reduction": _reduction(ctx)}
    return ctx.op1("ScatterElements", inputs, attrs)


@ops.register("scatter", since=IOS15, domain=MIL_DOMAIN)
def scatter(op: Any, ctx: MilContext) -> ir.Value:
    """Whole slices along ``axis`` at 1-D indices: ScatterND on the axis moved to the front."""
    axis = int(ctx.attr("axis", 0))
    rank = ctx.rank("data")
    axis = axis % rank
    perm = [axis, *[i for i in range(rank) if i != axis]]
    data, updates = ctx.value("data"), ctx.value("updates")
    if axis:
        data = ctx.op1("Transpose", [data], {"perm": perm})
        updates = ctx.op1("Transpose", [updates], {"perm": perm})
    # ScatterND reads int64 indices only; MIL's are int32.
    wide = ctx.op1("Cast", [ctx.value("indices")], {"to": ir.DataType.INT64})
    indices = ctx.op1("Unsqueeze", [wide, ctx.ints([-1])])
    scattered = ctx.op1("ScatterND", [data, indices, updates], {"reduction": _reduction(ctx)})
    if not axis:
        return scattered
    back = [perm.index(i) for i in range(rank)]
    return ctx.op1("Transpose", [scattered], {"perm": back})


@ops.register("scatter_nd", since=IOS15, domain=MIL_DOMAIN)
def scatter_nd(op: Any, ctx: MilContext) -> ir.Value:
    wide = ctx.op1("Cast", [ctx.value("indices")], {"to": ir.DataType.INT64})  # as in scatter
    inputs = [ctx.value("data"), wide, ctx.value("updates")]
    return ctx.op1("ScatterND", inputs, {"reduction": _reduction(ctx)})


@ops.register("non_zero", since=IOS15, domain=MIL_DOMAIN)
def non_zero(op: Any, ctx: MilContext) -> ir.Value:
    """MIL lists each nonzero element's coordinates as a row (int32); ONNX as a column (int64)."""
    found = ctx.op1("NonZero", [ctx.value("x")])
    rows = ctx.op1("Transpose", [found], {"perm": [1, 0]})
    return ctx.op1("Cast", [rows], {"to": ir.DataType.INT32})


@ops.register("pixel_unshuffle", since=IOS16, domain=MIL_DOMAIN)
def pixel_unshuffle(op: Any, ctx: MilContext) -> ir.Value:
    """Each block's pixels become channels, channel-major (ONNX SpaceToDepth in CRD mode, which
    opset 18 lacks): a rank-6 reshape and transpose."""
    block = int(ctx.attr("downscale_factor"))
    dims = ctx.shape("x")
    if len(dims) != 4 or not all(isinstance(d, int | np.integer) for d in dims[1:]):
        raise ctx.error("an input whose channels, height and width are unknown before run time")
    _, channels, height, width = (int(d) if isinstance(d, int | np.integer) else -1 for d in dims)
    split = ctx.op1(
        "Reshape",
        [ctx.value("x"), ctx.ints([-1, channels, height // block, block, width // block, block])],
    )
    moved = ctx.op1("Transpose", [split], {"perm": [0, 1, 3, 5, 2, 4]})
    shape = [-1, channels * block * block, height // block, width // block]
    return ctx.op1("Reshape", [moved, ctx.ints(shape)])


@ops.register("reverse_sequence", since=IOS15, domain=MIL_DOMAIN)
def reverse_sequence(op: Any, ctx: MilContext) -> ir.Value:
    lengths = ctx.op1("Cast", [ctx.value("lengths")], {"to": ir.DataType.INT64})
    attrs = {
        "time_axis": int(ctx.attr("seq_axis", 0)),
        "batch_axis": int(ctx.attr("batch_axis", 0)),
    }
    return ctx.op1("ReverseSequence", [ctx.value("x"), lengths], attrs)
