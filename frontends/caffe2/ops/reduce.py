"""Caffe2's ReduceFront*/ReduceBack* reductions (with their optional lengths input) and LpNorm.

Semantics from reduce_front_back_{sum_mean,max}_ops.{h,cc} and lpnorm_op.cc: ReduceFront* reduces
the first ``num_reduce_dim`` dims, ReduceBack* the last ones; an empty input (no rows or no
columns) gives zeros; with ``lengths`` (one dim reduced) each column or row takes its first
``max(length, 1)`` elements, and the mean divides their sum by ``length`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.frontends.caffe2.context import Args, ImportContext
from unframe.frontends.caffe2.registry import DOMAIN, ops

Op: TypeAlias = caffe2_pb2.OperatorDef
Converter = Callable[[Op, Args, ImportContext], None]


def _scalar(ctx: ImportContext, like: ir.Value, value: float) -> ir.Value:
    dtype = (like.dtype or ir.DataType.FLOAT).numpy()
    return ctx.make_constant(np.array(value, dtype=dtype), "scalar")


def _masked(ctx: ImportContext, x: ir.Value, axis: int, rank: int, kind: str) -> ir.Value:
    """``x`` with the elements past each lengths entry (along ``axis``) set to the kind's
    identity, so that a plain reduction over ``axis`` reduces the first max(length, 1)."""
    lengths = ctx.op1("Cast", [ctx.input(1)], {"to": ir.DataType.INT64})
    # lengths has one entry per slice along ``axis``: shape it like x with ``axis`` set to 1.
    if axis == 0:
        others = ctx.op1("Shape", [x], {"start": 1})
        target = ctx.op1("Concat", [ctx.ints([1]), others], {"axis": 0})
    else:
        others = ctx.op1("Shape", [x], {"end": -1})
        target = ctx.op1("Concat", [others, ctx.ints([1])], {"axis": 0})
    lengths = ctx.op1("Reshape", [lengths, target])
    # Caffe2 starts each reduction at the first element, so a length below 1 still takes it.
    taken = ctx.op1("Max", [lengths, ctx.ints([1])])
    size = ctx.op1("Shape", [x], {"start": axis, "end": axis + 1})
    zero = ctx.make_constant(np.array(0, np.int64), "zero")
    one = ctx.make_constant(np.array(1, np.int64), "one")
    scalar_size = ctx.op1("Squeeze", [size, ctx.ints([0])])
    positions = ctx.op1("Range", [zero, scalar_size, one])
    if axis == 0:
        positions = ctx.op1("Reshape", [positions, ctx.ints([-1] + [1] * (rank - 1))])
    keep = ctx.op1("Less", [positions, taken])
    dtype = x.dtype or ir.DataType.FLOAT
    if kind == "max":
        fill = -np.inf if dtype.is_floating_point() else np.iinfo(dtype.numpy()).min
    else:
        fill = 0
    return ctx.op1("Where", [keep, x, _scalar(ctx, x, fill)])


def _empty_is_zero(ctx: ImportContext, x: ir.Value, y: ir.Value, axes: list[int]) -> ir.Value:
    """Caffe2 writes zeros where there is nothing to reduce; ONNX's ReduceMax gives -inf there,
    and its ReduceMean may give NaN. (Where the shape is known here, the converter checks.)"""
    dims = ctx.op1("Gather", [ctx.op1("Shape", [x]), ctx.ints(axes)], {"axis": 0})
    count = ctx.op1("ReduceProd", [dims], {"keepdims": 0})
    empty = ctx.op1("Equal", [count, ctx.make_constant(np.array(0, np.int64), "zero")])
    return ctx.op1("Where", [empty, _scalar(ctx, x, 0), y])


def _front_back(kind: str, front: bool) -> Converter:
    def convert(op: Op, args: Args, ctx: ImportContext) -> None:
        x = ctx.input(0)
        rank = ctx.rank(x)
        count = args.integer("num_reduce_dim", 1)
        if not 0 <= count <= rank:
            raise ctx.bad(f"num_reduce_dim {count} is out of range for a {rank}-D input")
        axes = list(range(count)) if front else list(range(rank - count, rank))
        if not axes:
            ctx.output(0, ctx.op1("Identity", [x]))
            return
        lengths = len(op.input) > 1
        if lengths and count != 1:
            raise ctx.bad("with a lengths input, num_reduce_dim must be 1 (Caffe2 enforces it)")
        shape = ctx.shape(x)
        if shape is not None and not all(shape[a] for a in axes):
            kept = [shape[d] for d in range(rank) if d not in axes]
            ctx.output(0, ctx.make_constant(np.zeros(kept, (x.dtype or ir.DataType.FLOAT).numpy())))
            return
        data = _masked(ctx, x, axes[0], rank, kind) if lengths else x
        reduce_axes = ctx.ints(axes)
        if kind == "max":
            y = ctx.op1("ReduceMax", [data, reduce_axes], {"keepdims": 0})
        elif kind == "sum" or lengths:
            y = ctx.op1("ReduceSum", [data, reduce_axes], {"keepdims": 0})
        else:
            y = ctx.op1("ReduceMean", [data, reduce_axes], {"keepdims": 0})
        if kind == "mean" and lengths:
            # sum / length, length as given (Caffe2 divides by it even where it took max(1, .)).
            divisor = ctx.op1("Cast", [ctx.input(1)], {"to": x.dtype or ir.DataType.FLOAT})
            y = ctx.op1("Div", [y, ctx.op1("Reshape", [divisor, ctx.op1("Shape", [y])])])
        if kind != "sum" and shape is None:
            y = _empty_is_zero(ctx, x, y, axes)
        ctx.output(0, y)

    side = "front" if front else "back"
    convert.__name__ = convert.__qualname__ = f"reduce_{side}_{kind}"
    return convert


for _front, _side in ((True, "Front"), (False, "Back")):
    for _kind in ("sum", "mean", "max"):
        ops.register(f"Reduce{_side}{_kind.capitalize()}", since=1, domain=DOMAIN)(
            _front_back(_kind, _front)
        )


@ops.register("LpNorm", since=1, domain=DOMAIN)
def lp_norm(op: Op, args: Args, ctx: ImportContext) -> None:
    """sum |x| (p=1) or sum x^2 (p=2, no root), over the whole tensor, as a 1-element tensor."""
    x = ctx.input(0)
    p = args.integer("p", 2)
    if p not in (1, 2):
        raise ctx.bad(f"p must be 1 or 2, got {p}")
    reducer = "ReduceL1" if p == 1 else "ReduceSumSquare"
    y = ctx.op1(reducer, [x], {"keepdims": 0})
    if args.integer("average", 0):
        shape = ctx.shape(x)
        if shape is not None:
            size = _scalar(ctx, x, float(np.prod(shape)))
        else:
            size = ctx.op1("Cast", [ctx.op1("Size", [x])], {"to": x.dtype or ir.DataType.FLOAT})
        y = ctx.op1("Div", [y, size])
    ctx.output(0, ctx.op1("Reshape", [y, ctx.ints([1])]))
