"""Control flow: If as MIL's cond (both branches built as blocks, their outputs the cond's); Scan
unrolled over its static length (its body converted once per step)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.registry import ops


@ops.register("If", since=1)
def if_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    branches = []
    for key in ("then_branch", "else_branch"):
        attr = node.attributes.get(key)
        graph = attr.value if attr is not None else None
        if not isinstance(graph, ir.Graph):
            raise ctx.error(f"{key} is not a graph")
        for value in graph.outputs:
            if value.type is not None and not isinstance(value.type, ir.TensorType):
                raise ctx.error(f"a {value.type} branch output: Core ML's cond yields tensors")
        branches.append(graph)
    mb = ctx.mb
    pred = ctx.input(0)
    if ctx.input_rank(0):
        pred = mb.squeeze(x=pred)  # ONNX's condition holds one element; MIL's is a scalar
    count = len(node.outputs)

    def build(graph: ir.Graph) -> Any:
        def branch() -> tuple[Any, ...]:
            # Each output an identity inside the block: a branch may yield an outer value.
            return tuple(mb.identity(x=var) for var in ctx.convert_subgraph(graph))

        return branch

    with ctx.in_subgraph():
        result = mb.cond(pred=pred, _true_fn=build(branches[0]), _false_fn=build(branches[1]))
    return list(result) if count > 1 else [result]


def _body(ctx: ExportContext) -> ir.Graph:
    attr = ctx.node.attributes.get("body")
    body = attr.value if attr is not None else None
    if not isinstance(body, ir.Graph):
        raise ctx.error("body is not a graph")
    return body


def _scan_steps(
    ctx: ExportContext, states: list[Any], scans: list[Any], body: ir.Graph, scan_count: int
) -> list[Any]:
    """One Scan over ``scans`` (static lengths), its body converted once per step, unrolled.

    The final states, then each scan output stacked along its axis (reversed where its direction
    says). MIL's while_loop could not hold the scan outputs (loop variables keep their shape),
    and with the length known when built, the unrolled steps are the same computation.
    """
    mb = ctx.mb
    rank_of = [len(v.shape) for v in scans]
    in_axes = [int(a) for a in (ctx.attr("scan_input_axes", None) or [0] * len(scans))]
    in_axes = [a + rank_of[k] if a < 0 else a for k, a in enumerate(in_axes)]
    in_dirs = [int(a) for a in (ctx.attr("scan_input_directions", None) or [0] * len(scans))]
    lengths = {
        int(v.shape[a]) if isinstance(v.shape[a], int) else -1
        for v, a in zip(scans, in_axes, strict=True)
    }
    if len(lengths) != 1 or -1 in lengths:
        raise ctx.error(
            "scan inputs of lengths unknown when built (or unequal): the steps are unrolled"
        )
    steps = lengths.pop()
    state_count = len(states)
    output_count = len(body.outputs) - state_count
    out_axes = [int(a) for a in (ctx.attr("scan_output_axes", None) or [0] * output_count)]
    out_dirs = [int(a) for a in (ctx.attr("scan_output_directions", None) or [0] * output_count)]
    collected: list[list[Any]] = [[] for _ in range(output_count)]
    for t in range(steps):
        for k, scan in enumerate(scans):
            index = steps - 1 - t if in_dirs[k] else t
            ctx.bind(
                body.inputs[state_count + k],
                mb.gather(x=scan, indices=np.int32(index), axis=in_axes[k]),
            )
        for k, state in enumerate(states):
            ctx.bind(body.inputs[k], state)
        results = ctx.convert_subgraph(body)
        states = results[:state_count]
        for k, var in enumerate(results[state_count:]):
            collected[k].append(var)
    outputs = list(states)
    for k, per_step in enumerate(collected):
        if out_dirs[k]:
            per_step = per_step[::-1]
        rank = len(per_step[0].shape) + 1
        axis = out_axes[k] + rank if out_axes[k] < 0 else out_axes[k]
        outputs.append(
            mb.stack(values=per_step, axis=axis)
            if steps > 1
            else mb.expand_dims(x=per_step[0], axes=[axis])
        )
    return outputs


@ops.register("Scan", since=9)
def scan_v9(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    body = _body(ctx)
    scan_count = int(ctx.attr("num_scan_inputs"))
    inputs = [ctx.input(i) for i in range(len(node.inputs))]
    states, scans = inputs[: len(inputs) - scan_count], inputs[len(inputs) - scan_count :]
    return _scan_steps(ctx, states, scans, body, scan_count)


@ops.register("Scan", since=8)
def scan_v8(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """Opset 8's Scan runs its body over a batch (axis 0; the scan axis 1): one Scan per batch
    entry, stacked back."""
    if ctx.has_input(0):
        raise ctx.error("sequence_lens: every batch entry is scanned to its end here")
    if ctx.attr("directions", None) and any(int(d) for d in ctx.attr("directions")):
        raise ctx.error("reverse directions in opset 8's Scan")
    body = _body(ctx)
    mb = ctx.mb
    scan_count = int(ctx.attr("num_scan_inputs"))
    inputs = [ctx.input(i) for i in range(1, len(node.inputs))]
    batch = inputs[0].shape[0]
    if not isinstance(batch, int):
        raise ctx.error("a batch size unknown when built: each entry is scanned on its own")
    per_entry = []
    for b in range(batch):
        entry = [mb.gather(x=v, indices=np.int32(b), axis=0) for v in inputs]
        states, scans = entry[: len(entry) - scan_count], entry[len(entry) - scan_count :]
        per_entry.append(_scan_steps(ctx, states, scans, body, scan_count))
    return [
        mb.stack(values=list(parts), axis=0) if batch > 1 else mb.expand_dims(x=parts[0], axes=[0])
        for parts in zip(*per_entry, strict=True)
    ]


def _declared_shape(ctx: ExportContext, var: Any, value: ir.Value) -> Any:
    """``var`` reshaped to ``value``'s shape where ONNX knows it and MIL has symbolic dims: a
    loop variable's shape must settle, and each MIL build makes new symbols."""
    shape = value.shape
    if shape is None or any(not isinstance(d, int) for d in shape) or not len(shape):
        return var
    if all(isinstance(d, int) for d in var.shape):
        return var
    return ctx.mb.reshape(x=var, shape=[int(d) for d in shape])  # type: ignore[arg-type]


#: numpy types of the MIL dtype words (a scan output's first, dummy row).
_NUMPY_OF_WORD = {"fp32": np.float32, "fp16": np.float16, "int32": np.int32, "bool": np.bool_}


@ops.register("Loop", since=1)
def loop_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    """MIL's while_loop over (iteration, trip count, condition, loop-carried values, scan
    accumulators): its condition block is ONNX's ``iteration < M and cond``, its body the Loop's
    body, the iteration added by one. Each scan output is a loop variable that grows by one slice
    an iteration (MIL gives it a symbolic first dim), started with one dummy row of zeros so no
    tensor is empty, the row sliced off after the loop."""
    body = _body(ctx)
    carried = len(node.inputs) - 2
    scan_outputs = body.outputs[1 + carried :]
    mb = ctx.mb
    dummies = []
    for value in scan_outputs:
        shape = value.shape
        if shape is None or any(not isinstance(d, int) for d in shape):
            raise ctx.error(
                f"scan output {value.name!r} of a shape unknown when built: its accumulator "
                "needs a fixed slice shape"
            )
        word = ctx.mil_dtype(value.dtype)
        dims = [int(d) for d in shape]  # type: ignore[arg-type]
        dummies.append(ctx.make_constant(np.zeros([1, *dims], _NUMPY_OF_WORD[word])))

    def scalar(var: Any) -> Any:
        # A one-element tensor (rank 0 included) as MIL's scalar type, the loop variables' type.
        return mb.squeeze(x=mb.reshape(x=var, shape=[1]))

    trip = scalar(ctx.input(0)) if ctx.has_input(0) else None
    cond = scalar(ctx.input(1)) if ctx.has_input(1) else mb.const(val=True)
    values = [ctx.input(2 + k) for k in range(carried)]
    start = mb.const(val=np.int32(0))
    limit = [trip] if trip is not None else []

    def keep_going(iteration: Any, *rest: Any) -> Any:
        go = rest[len(limit)]
        if limit:
            go = mb.logical_and(x=mb.less(x=iteration, y=rest[0]), y=go)
        return go

    def step(iteration: Any, *rest: Any) -> tuple[Any, ...]:
        state = rest[len(limit) + 1 :]
        ctx.bind(body.inputs[0], iteration)
        ctx.bind(body.inputs[1], rest[len(limit)])
        for k in range(carried):
            ctx.bind(body.inputs[2 + k], state[k])
        outputs = [
            _declared_shape(ctx, var, value)
            for var, value in zip(ctx.convert_subgraph(body), body.outputs, strict=True)
        ]
        go = scalar(outputs[0])
        # Each value an identity inside the block: the body may yield an outer or input value.
        carried_out = [mb.identity(x=var) for var in outputs[1 : 1 + carried]]
        grown = [
            mb.concat(values=[acc, mb.expand_dims(x=var, axes=[0])], axis=0)
            for acc, var in zip(state[carried:], outputs[1 + carried :], strict=True)
        ]
        limits = [mb.identity(x=rest[0])] if limit else []
        return (mb.add(x=iteration, y=np.int32(1)), *limits, go, *carried_out, *grown)

    with ctx.in_subgraph():
        results = mb.while_loop(
            _cond=keep_going, _body=step, loop_vars=(start, *limit, cond, *values, *dummies)
        )
    finals = list(results[2 + len(limit) :])
    stacked = []
    for acc in finals[carried:]:
        rank = len(acc.shape)
        stacked.append(
            mb.slice_by_index(x=acc, begin=[1] + [0] * (rank - 1), end=[0] * rank,
                              end_mask=[True] * rank)
        )  # fmt: skip
    return finals[:carried] + stacked
