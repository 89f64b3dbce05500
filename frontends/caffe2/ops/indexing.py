"""Caffe2 index-driven ops: OneHot, BatchGather, ScatterAssign, ScatterWeightedSum.

Semantics from one_hot_ops.{h,cc}, batch_gather_ops.h and utility_ops.h. Caffe2's scatter ops
update their first input in place and read INDICES and the slices by size only: K = INDICES.size
rows, each of DATA.shape[1:].
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.frontends.caffe2.context import Args, ImportContext
from unframe.frontends.caffe2.registry import DOMAIN, ops

Op: TypeAlias = caffe2_pb2.OperatorDef


@ops.register("OneHot", since=1, domain=DOMAIN)
def one_hot(op: Op, args: Args, ctx: ImportContext) -> None:
    """A float (N, index_size) matrix with 1.0 at each row's index (1-D int64 indices)."""
    indices, size = ctx.input(0), ctx.input(1)
    if indices.shape is not None and len(indices.shape) != 1:
        raise ctx.bad(f"indices must be 1-D (Caffe2 enforces it), got rank {len(indices.shape)}")
    values = ctx.make_constant(np.array([0.0, 1.0], dtype=np.float32), "off_on")
    ctx.output(0, ctx.op1("OneHot", [indices, size, values], {"axis": -1}))


@ops.register("BatchGather", since=1, domain=DOMAIN)
def batch_gather(op: Op, args: Args, ctx: ImportContext) -> None:
    """Gather along axis 1 of a data tensor of rank >= 2."""
    data = ctx.input(0)
    if data.shape is not None and len(data.shape) < 2:
        raise ctx.bad(f"DATA must be at least 2-D (Caffe2 enforces it), got rank {len(data.shape)}")
    ctx.output(0, ctx.op1("Gather", [data, ctx.input(1)], {"axis": 1}))


def _in_place(op: Op, ctx: ImportContext) -> None:
    if not op.output or op.output[0] != op.input[0]:
        raise ctx.bad(
            f"{op.type} must write its first input in place (Caffe2 enforces it): "
            f"output {op.output[0] if op.output else None!r}, input {op.input[0]!r}"
        )


def _rows(ctx: ImportContext, data: ir.Value, indices: ir.Value) -> tuple[ir.Value, ir.Value]:
    """INDICES as ScatterND's (K, 1) int64 positions, and the slices' shape (K, *DATA[1:])."""
    flat = ctx.op1("Cast", [indices], {"to": ir.DataType.INT64})
    positions = ctx.op1("Reshape", [flat, ctx.ints([-1, 1])])
    count = ctx.op1("Shape", [positions], {"start": 0, "end": 1})
    rest = ctx.op1("Shape", [data], {"start": 1})
    return positions, ctx.op1("Concat", [count, rest], {"axis": 0})


@ops.register("ScatterAssign", since=1, domain=DOMAIN)
def scatter_assign(op: Op, args: Args, ctx: ImportContext) -> None:
    """DATA[INDICES[i]] = SLICES[i]: ScatterND over DATA's first axis.

    Where an index repeats, Caffe2 documents that an arbitrary one of its slices wins, as ONNX
    leaves it undefined.
    """
    data = ctx.input(0)
    _in_place(op, ctx)
    positions, shape = _rows(ctx, data, ctx.input(1))
    slices = ctx.op1("Reshape", [ctx.input(2), shape])
    ctx.output(0, ctx.op1("ScatterND", [data, positions, slices]))


@ops.register("ScatterWeightedSum", since=1, domain=DOMAIN)
def scatter_weighted_sum(op: Op, args: Args, ctx: ImportContext) -> None:
    """X0[idx] *= w0 once per occurrence of idx, then X0[INDICES[i]] += wk * Xk[i], input by input.

    That is the order of Caffe2's kernel (all scaling first, then each input's updates), which
    ScatterND's mul and add reductions follow, repeated indices included.
    """
    y = ctx.input(0)
    _in_place(op, ctx)
    if len(op.input) < 3 or len(op.input) % 2 == 0:
        raise ctx.bad("takes X0, weight0, INDICES, then pairs of slices and weights")
    positions, shape = _rows(ctx, y, ctx.input(2))
    w0 = ctx.known_value(ctx.input(1))
    # Caffe2 skips the scaling where weight0 is exactly 1.
    if w0 is None or w0.size != 1 or float(w0.reshape(-1)[0]) != 1.0:
        scale = ctx.op1("Reshape", [ctx.input(1), ctx.ints([])])
        factors = ctx.op1("Expand", [scale, shape])
        y = ctx.op1("ScatterND", [y, positions, factors], {"reduction": "mul"})
    for i in range(3, len(op.input), 2):
        slices = ctx.op1("Reshape", [ctx.input(i), shape])
        weight = ctx.op1("Reshape", [ctx.input(i + 1), ctx.ints([])])
        update = ctx.op1("Mul", [slices, weight])
        y = ctx.op1("ScatterND", [y, positions, update], {"reduction": "add"})
    ctx.output(0, y)
