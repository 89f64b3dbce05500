"""Loss ops, built from gathers and reductions: NegativeLogLikelihoodLoss and
SoftmaxCrossEntropyLoss."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.ops._common import attr_str, required
from unframe.backends.caffe2.ops.nn import log_softmax_into
from unframe.backends.caffe2.registry import ops


def _nll(
    node: ir.Node,
    ctx: ExportContext,
    scores: str,
    shape: tuple[int, ...],
    dtype: ir.DataType,
    out: str,
) -> None:
    """loss[n, d] = -scores[n, target[n, d], d] * weight[target], then ONNX's reduction."""
    target = required(ctx, node, 1)
    target_shape = ctx.need_shape(target, "to gather the scores")
    classes, inner = shape[1], int(np.prod(shape[2:]))
    labels = ctx.blob(target)
    if ctx.dtype(target) != ir.DataType.INT64:
        labels = ctx.temp("Cast", [labels], "labels", to=caffe2_dtype(ir.DataType.INT64))
    ignore = node.attributes.get("ignore_index")
    valid = None
    if ignore is not None:
        ignored = ctx.make_constant(np.array(ignore.as_int(), dtype=np.int64), "ignore_index")  # type: ignore[union-attr]
        valid = ctx.temp("NE", [labels, ignored], "valid")
        zeros = ctx.temp(
            "ConstantFill", [labels], "zeros", value=0, dtype=caffe2_dtype(ir.DataType.INT64)
        )
        labels = ctx.temp("Where", [valid, labels, zeros], "labels")
    # Flat position of scores[n, label, d...] = n * C * D + label * D + d.
    grid = np.indices(target_shape, dtype=np.int64)
    flat_inner = np.zeros(target_shape, dtype=np.int64)
    stride = 1
    for axis in range(len(target_shape) - 1, 0, -1):
        flat_inner += grid[axis] * stride
        stride *= target_shape[axis]
    base = grid[0] * classes * inner + flat_inner
    along = ctx.temp(
        "Mul", [labels, ctx.make_constant(np.array(inner, np.int64), "inner")], "along"
    )
    positions = ctx.temp("Add", [ctx.make_constant(base, "base"), along], "positions")
    flat = ctx.fresh("flat")
    ctx.emit("Reshape", [scores], [flat, ctx.fresh("old_shape")], shape=[-1])
    picked = ctx.temp("Gather", [flat, positions], "picked")
    loss = ctx.temp("Negative", [picked], "loss")
    weights = None
    if ctx.has_input(2):
        weights = ctx.temp("Gather", [ctx.input(2), labels], "weights")
        loss = ctx.temp("Mul", [loss, weights], "weighted")
    if valid is not None:
        mask = ctx.temp("Cast", [valid], "mask", to=caffe2_dtype(dtype))
        loss = ctx.temp("Mul", [loss, mask], "kept")
        weights = mask if weights is None else ctx.temp("Mul", [weights, mask], "weights")
    reduction = attr_str(node, "reduction", "mean")
    axes = list(range(len(target_shape)))
    if reduction == "none":
        ctx.emit("Copy", [loss], [out])
        return
    if reduction not in ("sum", "mean"):
        raise ctx.error(f"reduction={reduction!r} is not an ONNX reduction")
    total = ctx.temp("ReduceSum", [loss], "total", axes=axes, keepdims=0)
    if reduction == "sum":
        ctx.emit("Copy", [total], [out])
        return
    if weights is None:
        count = ctx.make_constant(
            np.array(int(np.prod(target_shape)), dtype=dtype.numpy()), "count"
        )
    else:
        count = ctx.temp("ReduceSum", [weights], "count", axes=axes, keepdims=0)
    ctx.emit("Div", [total, count], [out])


@ops.register("NegativeLogLikelihoodLoss", since=13)
def negative_log_likelihood_loss_v13(node: ir.Node, ctx: ExportContext) -> None:
    scores = required(ctx, node, 0)
    shape = ctx.need_shape(scores, "to gather the scores")
    dtype = ctx.dtype(scores) or ir.DataType.FLOAT
    _nll(node, ctx, ctx.blob(scores), shape, dtype, ctx.output(node))


@ops.register("SoftmaxCrossEntropyLoss", since=13)
def softmax_cross_entropy_loss_v13(node: ir.Node, ctx: ExportContext) -> None:
    scores = required(ctx, node, 0)
    shape = ctx.need_shape(scores, "to gather the scores")
    dtype = ctx.dtype(scores) or ir.DataType.FLOAT
    wants_log_prob = len(node.outputs) > 1 and node.outputs[1] is not None
    log_prob = ctx.output(node, 1) if wants_log_prob else ctx.fresh("log_prob")
    log_softmax_into(ctx, ctx.blob(scores), 1, log_prob, ctx.dtype(scores))
    _nll(node, ctx, log_prob, shape, dtype, ctx.output(node))
