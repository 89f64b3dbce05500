"""Caffe2 control flow: ``If`` -> ONNX If, ``ONNXWhile`` -> ONNX Loop, subnets -> subgraphs.

Semantics from Caffe2's ``if_op.cc`` and ``onnx_while_op.{h,cc}`` (see the executor's
``runtime/ops/control_flow.py``). A subnet becomes a subgraph that reads outer values by
reference; its weights stay in the main graph's initializers.

Limits: only the If's declared outputs leave its branches (Caffe2 runs branches in the If's
workspace, so any other blob they write is visible afterwards; ONNX has no such thing); an If
without ``else_net`` needs its outputs written before it (the else branch passes them through).
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.frontends.caffe2.context import Args, ImportContext
from unframe.frontends.caffe2.registry import DOMAIN, ops

Op: TypeAlias = caffe2_pb2.OperatorDef


@ops.register("If", since=1, domain=DOMAIN)
def if_op(op: Op, args: Args, ctx: ImportContext) -> None:
    then_net = _net_arg(args, ctx, "then_net", required=True)
    else_net = _net_arg(args, ctx, "else_net", required=False)
    assert then_net is not None
    outputs = list(op.output)
    base = op.name or f"If_{ctx.index}"
    then_graph = _branch(ctx, then_net, outputs, f"{base}/then_net")
    if else_net is not None:
        else_graph = _branch(ctx, else_net, outputs, f"{base}/else_net")
    else:
        # Caffe2 leaves the outputs as they were: an else branch that passes them through.
        missing = [blob for blob in outputs if blob not in ctx.blobs]
        if missing:
            raise ctx.unsupported(
                f"without else_net, output(s) {', '.join(missing)} have no value when the "
                "condition is false"
            )
        else_graph = _branch(ctx, caffe2_pb2.NetDef(), outputs, f"{base}/else_net")
    condition = _as_bool(ctx, ctx.input(0))
    results = ctx.node(
        "If",
        [condition],
        {"then_branch": then_graph, "else_branch": else_graph},
        num_outputs=len(outputs),
    )
    for index, (value, then_out, else_out) in enumerate(
        zip(results, then_graph.outputs, else_graph.outputs, strict=True)
    ):
        value.type = then_out.type
        if then_out.shape == else_out.shape:
            value.shape = then_out.shape
        elif then_out.shape is not None and else_out.shape is not None:
            if len(then_out.shape) == len(else_out.shape):
                value.shape = ir.Shape([None] * len(then_out.shape))
        ctx.output(index, value)


@ops.register("ONNXWhile", since=1, domain=DOMAIN)
def onnx_while(op: Op, args: Args, ctx: ImportContext) -> None:
    body = _net_arg(args, ctx, "body", required=True)
    assert body is not None
    has_trip_count = bool(args.integer("has_trip_count", 0))
    has_cond = bool(args.integer("has_cond", 0))
    # Scopes only keep the body's blobs apart from the outer ones; subgraph values are apart.
    args.integer("save_scopes", 0)
    args.integer("disable_scopes", 0)
    num_carried = args.integer("num_loop_carried_deps", len(op.input) - 2)
    if num_carried < 0 or len(op.input) < 2 + num_carried:
        raise ctx.bad(f"needs 2 + {num_carried} inputs, has {len(op.input)}")
    if len(body.external_input) < 2 + num_carried:
        raise ctx.bad(
            "the body's external_input must list the iteration number, the condition and "
            f"{num_carried} loop-carried value(s)"
        )
    num_scans = len(body.external_output) - 1 - num_carried
    if num_scans < 0:
        raise ctx.bad(f"the body needs 1 + {num_carried} + K external outputs")
    carried = [ctx.input(2 + i) for i in range(num_carried)]
    trip_count = _as_int64(ctx, ctx.input(0)) if has_trip_count else None
    # Without has_cond Caffe2 ignores every condition; ONNX obeys the body's, so it is true.
    condition = _as_bool(ctx, ctx.input(1)) if has_cond else None

    sub = ctx.subnet(f"{op.name or f'ONNXWhile_{ctx.index}'}/body")
    sub.add_subgraph_input(body.external_input[0], ir.DataType.INT64, [])
    # Declared as the Loop's condition input is: ONNX checks the two agree.
    condition_dims: list[int | str | None] = []
    if condition is not None and condition.shape is not None:
        condition_dims = [d if isinstance(d, int) else None for d in condition.shape]
    sub.add_subgraph_input(body.external_input[1], ir.DataType.BOOL, condition_dims)
    for blob, value in zip(body.external_input[2 : 2 + num_carried], carried, strict=True):
        # The dims may change from one iteration to the next; the rank and type do not.
        shape = None if value.shape is None else [None] * len(value.shape)
        sub.add_subgraph_input(blob, value.dtype or ir.DataType.FLOAT, shape)
    sub.run(body)
    sub.op, sub.index = op, ctx.index
    body_outputs = [sub.read(blob) for blob in body.external_output]
    cond_out = _as_bool(sub, body_outputs[0]) if has_cond else sub.make_constant(np.array(True))
    graph = sub.graph([cond_out, *body_outputs[1:]], sub.scope or "body")
    results = ctx.node(
        "Loop", [trip_count, condition, *carried], {"body": graph}, num_outputs=len(op.output)
    )
    # ONNX's inference of a Loop reads only what the body declares; the body knows more.
    for index, value in enumerate(results):
        source = graph.outputs[1 + index]
        value.type = source.type
        if index < num_carried:
            value.shape = carried[index].shape if carried[index].shape else source.shape
        else:
            value.shape = None if source.shape is None else ir.Shape([None, *source.shape])
        ctx.output(index, value)


def _net_arg(
    args: Args, ctx: ImportContext, name: str, *, required: bool
) -> caffe2_pb2.NetDef | None:
    args.used.add(name)
    arg = args.args.get(name)
    if arg is None or not arg.HasField("n"):
        if required:
            raise ctx.bad(f"needs a NetDef argument {name!r}")
        return None
    return arg.n


def _branch(ctx: ImportContext, net: caffe2_pb2.NetDef, outputs: list[str], scope: str) -> ir.Graph:
    """One If branch as a subgraph whose outputs are the blobs ``outputs`` after the net."""
    sub = ctx.subnet(scope)
    sub.run(net)
    sub.op, sub.index = ctx.op, ctx.index
    values = []
    for blob in outputs:
        if blob not in sub.blobs:
            raise ctx.bad(f"{scope} never writes the If's output {blob!r}")
        values.append(sub.blobs[blob])
    return sub.graph(values, sub.scope or scope)


def _as_bool(ctx: ImportContext, value: ir.Value) -> ir.Value:
    if value.dtype == ir.DataType.BOOL:
        return value
    return ctx.op1("Cast", [value], {"to": ir.DataType.BOOL})


def _as_int64(ctx: ImportContext, value: ir.Value) -> ir.Value:
    if value.dtype == ir.DataType.INT64:
        return value
    return ctx.op1("Cast", [value], {"to": ir.DataType.INT64})
