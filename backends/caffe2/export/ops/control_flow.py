"""Control flow: ONNX If -> Caffe2 ``If``, ONNX Loop -> Caffe2 ``ONNXWhile``.

The forms are those of Caffe2's own ONNX backend (``caffe2/python/onnx/backend.py``) and operator
schemas (``caffe2/operators/if_op.cc``, ``onnx_while_op.cc``/``.h``):

- ``If``: input 0 is the condition; arguments ``then_net`` and ``else_net`` hold NetDefs run in
  the If's own workspace, which write the If's outputs under the If's output names. The outer
  blobs the branches read follow the condition as inputs (Caffe2 allows any number), so that
  the data dependency is visible in the net. An If whose condition is known at export time
  (shape and rank tests) is written as the ops of the branch it takes.
- ``ONNXWhile``: inputs max_trip_count (int64), first_iter_condition, the initial loop-carried
  values, then the outer blobs the body reads; outputs the final loop-carried values, then the
  scan outputs (stacked along a new axis 0). The ``body`` NetDef lists as external_input the
  iteration number, the condition and the loop-carried values (then the outer blobs), and as
  external_output the condition, the loop-carried values and the scan outputs, as ONNX's body
  graph does. ``has_trip_count`` says whether M was given (Caffe2 still wants a blob in its
  slot); ``num_loop_carried_deps`` fixes N since outer blobs follow. ``has_cond`` is always
  set: without a cond input, onnxruntime still stops when the body's condition turns false
  (ONNX's table calls it ignored), so the first condition is a constant true instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.export.context import ExportContext
from unframe.backends.caffe2.export.registry import ops
from unframe.backends.caffe2.proto import caffe2_pb2


@ops.register("If", since=1)
def if_v1(node: ir.Node, ctx: ExportContext) -> None:
    outputs = [ctx.output(node, i) for i in range(len(node.outputs))]
    known = ctx.const(node.inputs[0])
    if known is not None and known.size == 1:
        # A condition fixed at export time (a rank or shape test): only that branch ever
        # runs, so it is written into this net; the other may not even be exportable.
        taken = "then_branch" if bool(known.reshape(-1)[0]) else "else_branch"
        graph = _graph(ctx, node, taken)
        sub, net = _branch(ctx, graph, outputs, taken)
        ctx.predict.op.extend(net.op)
        for value, source in zip(node.outputs, graph.outputs, strict=True):
            ctx.note(value, shape=sub.shape(source), const=sub.const(source))
        return
    then_graph, else_graph = _graph(ctx, node, "then_branch"), _graph(ctx, node, "else_branch")
    then_sub, then_net = _branch(ctx, then_graph, outputs, "then_net")
    else_sub, else_net = _branch(ctx, else_graph, outputs, "else_net")
    for value, then_out, else_out in zip(
        node.outputs, then_graph.outputs, else_graph.outputs, strict=True
    ):
        shape = then_sub.shape(then_out)
        if shape is not None and shape == else_sub.shape(else_out):
            ctx.note(value, shape=shape)
    condition = ctx.input(node, 0)
    outer = _ordered_union(then_net.external_input, else_net.external_input, skip={condition})
    op = ctx.emit("If", [condition, *outer], outputs)
    op.arg.add(name="then_net", n=then_net)
    op.arg.add(name="else_net", n=else_net)


@ops.register("Loop", since=1)
def loop_v1(node: ir.Node, ctx: ExportContext) -> None:
    body = _graph(ctx, node, "body")
    carried = list(node.inputs[2:])
    if any(value is None for value in carried):
        raise ctx.error("a loop-carried input is missing")
    num_carried = len(carried)
    if len(body.inputs) != 2 + num_carried or len(body.outputs) < 1 + num_carried:
        raise ctx.error(
            f"its body has {len(body.inputs)} inputs and {len(body.outputs)} outputs for "
            f"{num_carried} loop-carried values"
        )
    has_trip_count = ctx.has_input(node, 0)
    # ONNXWhile always reads both slots; has_trip_count says whether to obey the first.
    trip_count = (
        ctx.input(node, 0)
        if has_trip_count
        else ctx.constant(np.array(0, dtype=np.int64), "no_trip_count")
    )
    condition = (
        ctx.input(node, 1)
        if ctx.has_input(node, 1)
        else ctx.constant(np.array(True), "first_condition")
    )
    body_inputs = [ctx.blob(value) for value in body.inputs]
    # Caffe2 looks a loop's body net up by name in its workspace: one name per body.
    sub, failures = ctx.subnet(body, ctx.fresh("body"))
    if failures:
        raise ctx.error(f"its body cannot be exported: {'; '.join(failures)}")
    net = sub.predict
    body_outputs = [sub.blob(value) for value in body.outputs]
    outer = _free_blobs(net, provided=body_inputs, extra_reads=body_outputs)
    net.external_input.extend([*body_inputs, *outer])
    net.external_output.extend(body_outputs)
    inputs = [trip_count, condition, *(ctx.blob(value) for value in carried), *outer]
    outputs = [ctx.output(node, i) for i in range(len(node.outputs))]
    op = ctx.emit(
        "ONNXWhile",
        inputs,
        outputs,
        has_trip_count=int(has_trip_count),
        has_cond=1,
        save_scopes=0,
        disable_scopes=0,
        num_loop_carried_deps=num_carried,
    )
    op.arg.add(name="body", n=net)


def _graph(ctx: ExportContext, node: ir.Node, name: str) -> ir.Graph:
    attr = node.attributes.get(name)
    if not isinstance(attr, ir.Attr) or attr.type != ir.AttributeType.GRAPH:
        raise ctx.error(f"has no {name} graph")
    return attr.as_graph()


def _branch(
    ctx: ExportContext, graph: ir.Graph, outputs: Sequence[str], kind: str
) -> tuple[ExportContext, caffe2_pb2.NetDef]:
    """One If branch (``kind``: its argument's name) as a NetDef that writes the If's output
    blobs, and the branch's context."""
    if len(graph.outputs) != len(outputs):
        raise ctx.error(f"its {kind} has {len(graph.outputs)} outputs, the If {len(outputs)}")
    # Net names are unique in the model, as Caffe2 may look subnets up by name.
    sub, failures = ctx.subnet(graph, ctx.fresh(kind))
    if failures:
        raise ctx.error(f"its {kind} cannot be exported: {'; '.join(failures)}")
    # A copy rather than renaming the producer's output: a branch output may be an outer
    # value, a weight or a branch input, none of which the branch writes.
    for value, blob in zip(graph.outputs, outputs, strict=True):
        sub.emit("Copy", [sub.blob(value)], [blob])
    net = sub.predict
    net.external_input.extend(_free_blobs(net, provided=()))
    net.external_output.extend(outputs)
    return sub, net


def _free_blobs(
    net: caffe2_pb2.NetDef, provided: Iterable[str], extra_reads: Iterable[str] = ()
) -> list[str]:
    """Blobs ``net`` reads before writing them (outer values and weights), in first-read order.

    A nested If or ONNXWhile lists the outer blobs of its own subnets as inputs, so its inputs
    are all that need reading here.
    """
    written = set(provided)
    free: list[str] = []
    for op in net.op:
        for blob in op.input:
            if blob not in written and blob not in free:
                free.append(blob)
        written.update(op.output)
    free.extend(b for b in extra_reads if b not in written and b not in free)
    return free


def _ordered_union(*groups: Iterable[str], skip: set[str]) -> list[str]:
    result: list[str] = []
    for group in groups:
        result.extend(b for b in group if b not in skip and b not in result)
    return result
