"""Control flow: ONNX If -> Caffe2 ``If``, ONNX Loop and Scan -> Caffe2 ``ONNXWhile``.

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
- Scan (opset 9 on; Caffe2 has none) is an ``ONNXWhile`` with one trip per slice of its scan
  inputs (see ``scan_v9``). Scan-8 (batch axis, sequence_lens) is not exported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext
from unframe.backends.caffe2.native import caffe2_pb2
from unframe.backends.caffe2.ops._common import (
    attr_int,
    attr_ints,
    normalize_axis,
    required,
    transpose,
)
from unframe.backends.caffe2.registry import ops


@ops.register("If", since=1)
def if_v1(node: ir.Node, ctx: ExportContext) -> None:
    outputs = [ctx.output(node, i) for i in range(len(node.outputs))]
    known = ctx.known_value(node.inputs[0])
    if known is not None and known.size == 1:
        # A condition fixed at export time (a rank or shape test): only that branch ever
        # runs, so it is written into this net; the other may not even be exportable.
        taken = "then_branch" if bool(known.reshape(-1)[0]) else "else_branch"
        graph = _graph(ctx, node, taken)
        sub, net = _branch(ctx, graph, outputs, taken)
        ctx.predict.op.extend(net.op)
        for value, source in zip(node.outputs, graph.outputs, strict=True):
            ctx.note(value, shape=sub.shape(source), const=sub.known_value(source))
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
    condition = ctx.input(0)
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
    has_trip_count = ctx.has_input(0)
    # ONNXWhile always reads both slots; has_trip_count says whether to obey the first.
    trip_count = (
        ctx.input(0)
        if has_trip_count
        else ctx.make_constant(np.array(0, dtype=np.int64), "no_trip_count")
    )
    condition = (
        ctx.input(1) if ctx.has_input(1) else ctx.make_constant(np.array(True), "first_condition")
    )
    body_inputs = [ctx.blob(value) for value in body.inputs]
    # The iteration number and condition are scalars whether the body says so or not.
    for value in body.inputs[:2]:
        if ctx.shape(value) is None:
            ctx.note(value, shape=())
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


@ops.register("Scan", since=9)
def scan_v9(node: ir.Node, ctx: ExportContext) -> None:
    """Scan as an ONNXWhile (Caffe2 has no Scan): one trip per slice of the scan inputs.

    The body net starts by gathering each scan input's slice at the iteration number (counted
    from the end for a reverse direction); ONNXWhile stacks the scan outputs on axis 0, which
    a Gather reverses and a Transpose moves where the attributes ask.
    """
    body = _graph(ctx, node, "body")
    num_scanned = attr_int(node, "num_scan_inputs", 0)
    num_states = len(node.inputs) - num_scanned
    num_scan_outputs = len(body.outputs) - num_states
    if num_scanned < 1 or num_states < 0 or num_scan_outputs < 0:
        raise ctx.error("its inputs, outputs and num_scan_inputs do not agree")
    scanned = [required(ctx, node, num_states + i) for i in range(num_scanned)]
    in_axes = attr_ints(node, "scan_input_axes") or [0] * num_scanned
    in_reversed = attr_ints(node, "scan_input_directions") or [0] * num_scanned
    out_axes = attr_ints(node, "scan_output_axes") or [0] * num_scan_outputs
    out_reversed = attr_ints(node, "scan_output_directions") or [0] * num_scan_outputs
    lengths = set()
    for i, value in enumerate(scanned):
        shape = ctx.need_shape(value, "for the number of scan iterations")
        in_axes[i] = normalize_axis(ctx, in_axes[i], len(shape))
        lengths.add(shape[in_axes[i]])
    if len(lengths) != 1:
        raise ctx.error(f"its scan inputs have different lengths {sorted(lengths)}")
    length = lengths.pop()
    states = [ctx.blob(required(ctx, node, i)) for i in range(num_states)]
    state_blobs = [ctx.blob(value) for value in body.inputs[:num_states]]
    # Bodies (onnx's function expansions among them) often leave their inputs' shapes out;
    # a scan keeps its states' shapes, and each slice is its input less the scanned axis.
    for i, value in enumerate(body.inputs[:num_states]):
        if ctx.shape(value) is None:
            ctx.note(value, shape=ctx.shape(node.inputs[i]))
    for value, element, axis in zip(scanned, body.inputs[num_states:], in_axes, strict=True):
        full = ctx.need_shape(value, "for the number of scan iterations")
        if ctx.shape(element) is None:
            ctx.note(element, shape=full[:axis] + full[axis + 1 :])
    iteration, condition = ctx.fresh("iteration"), ctx.fresh("condition")
    sub, failures = ctx.subnet(body, ctx.fresh("body"))
    if failures:
        raise ctx.error(f"its body cannot be exported: {'; '.join(failures)}")
    # The slices are read first: the body's ops follow.
    body_ops = list(sub.predict.op)
    del sub.predict.op[:]
    reverse_index = None
    if any(in_reversed):
        last = sub.make_constant(np.array(length - 1, np.int64), "last")
        reverse_index = sub.temp("Sub", [last, iteration], "reverse_index")
    for value, element, axis, backwards in zip(
        scanned, body.inputs[num_states:], in_axes, in_reversed, strict=True
    ):
        index = reverse_index if backwards and reverse_index else iteration
        sub.emit("Gather", [ctx.blob(value), index], [sub.blob(element)], axis=axis)
    # A body-local condition: Caffe2 resizes the condition blob in the loop's workspace.
    always = sub.temp("Copy", [sub.make_constant(np.array(True), "always")], "condition_out")
    sub.predict.op.extend(body_ops)
    net = sub.predict
    body_outputs = [always, *(sub.blob(value) for value in body.outputs)]
    provided = [iteration, condition, *state_blobs]
    outer = _free_blobs(net, provided=provided, extra_reads=body_outputs)
    net.external_input.extend([*provided, *outer])
    net.external_output.extend(body_outputs)
    final = [ctx.output(node, i) for i in range(num_states)]
    stacked = []
    for k in range(num_scan_outputs):
        plain = out_axes[k] == 0 and not out_reversed[k]
        stacked.append(ctx.output(node, num_states + k) if plain else ctx.fresh("stacked"))
    trip_count = ctx.make_constant(np.array(length, np.int64), "trip_count")
    first_condition = ctx.make_constant(np.array(True), "first_condition")
    op = ctx.emit(
        "ONNXWhile",
        [trip_count, first_condition, *states, *outer],
        [*final, *stacked],
        has_trip_count=1,
        has_cond=1,
        save_scopes=0,
        disable_scopes=0,
        num_loop_carried_deps=num_states,
    )
    op.arg.add(name="body", n=net)
    for k, blob in enumerate(stacked):
        _place_scan_output(node, ctx, k, num_states, blob, length, out_axes[k], out_reversed[k])


def _place_scan_output(
    node: ir.Node,
    ctx: ExportContext,
    k: int,
    num_states: int,
    stacked: str,
    length: int,
    axis: int,
    backwards: int,
) -> None:
    """Scan output ``k`` from its slices stacked on axis 0: reversed, then moved to ``axis``."""
    if axis == 0 and not backwards:
        return
    target = ctx.output(node, num_states + k)
    rank = ctx.need_rank(node.outputs[num_states + k], "to place a scan output's axis")
    axis = normalize_axis(ctx, axis, rank)
    blob = stacked
    if backwards:
        order = ctx.make_constant(np.arange(length - 1, -1, -1, dtype=np.int64), "reversed")
        blob = ctx.temp("Gather", [blob, order], "reversed", axis=0)
    if axis == 0:
        ctx.emit("Copy", [blob], [target])
        return
    perm = list(range(1, rank))
    perm.insert(axis, 0)
    transpose(ctx, blob, perm, ctx.dtype(node.outputs[num_states + k]), target)


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
