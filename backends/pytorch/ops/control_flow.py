"""Control flow: If, Loop, Scan. Bodies are submodules; the control flow happens at run time.

Eagerly, the helpers branch and loop in Python on the run-time values. Under ``torch.export``
(``torch.compiler.is_compiling()``), ``If`` becomes ``torch.cond`` and ``Loop`` becomes
``while_loop``; a Loop with scan outputs (which ``while_loop`` cannot carry) is unrolled only
when its trip count is a graph constant and its condition is never updated. ``Scan`` becomes
torch's ``scan``, so its sequence length stays dynamic.
"""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ops, torch

# -- If ----------------------------------------------------------------------------------------


def _if(
    pred: torch.Tensor, then_branch: Any, else_branch: Any, *operands: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    if torch.compiler.is_compiling():
        return tuple(torch.cond(pred.reshape(()).bool(), then_branch, else_branch, operands))
    return tuple((then_branch if bool(pred) else else_branch)(*operands))


@ops.register("If", since=1)
def if_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    captures = ctx.free_values("then_branch", "else_branch")
    then_branch = ctx.subgraph("then_branch", captures)
    else_branch = ctx.subgraph("else_branch", captures)
    out = ctx.call(_if, ctx.input(0), then_branch.module, else_branch.module, *then_branch.captured)
    return ctx.unpack(out, len(node.outputs))


# -- Loop --------------------------------------------------------------------------------------


def _loop(
    body: Any,
    max_trip: torch.Tensor | None,
    cond: torch.Tensor | None,
    static_trip: int | None,
    cond_fixed: bool,
    num_scan: int,
    captured: tuple[torch.Tensor, ...],
    *carried: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    if torch.compiler.is_compiling():
        if num_scan == 0:
            return _while_loop(body, max_trip, cond, captured, carried)
        if static_trip is None or not cond_fixed:
            raise NotImplementedError(
                "torch.export: a Loop with scan outputs needs a constant trip count"
            )
        # A constant trip count and a condition that never changes: a fixed sequence of steps.
        return _python_loop(body, static_trip, True, num_scan, captured, carried, read_cond=False)
    trip = None if max_trip is None else int(max_trip)
    keep = True if cond is None else bool(cond)
    return _python_loop(body, trip, keep, num_scan, captured, carried, read_cond=True)


def _python_loop(
    body: Any,
    trip: int | None,
    keep: bool,
    num_scan: int,
    captured: tuple[torch.Tensor, ...],
    carried: tuple[torch.Tensor, ...],
    *,
    read_cond: bool,
) -> tuple[torch.Tensor, ...]:
    """The loop run step by step in Python; ``read_cond`` follows the body's condition output
    (eagerly), otherwise the steps are a fixed sequence that ``torch.export`` can unroll."""
    values = list(carried)
    scans: list[tuple[torch.Tensor, ...]] = []
    step = 0
    while keep and (trip is None or step < trip):
        outputs = body(
            torch.tensor(step, dtype=torch.int64), torch.tensor(keep), *values, *captured
        )
        if read_cond:
            keep = bool(outputs[0])
        values = list(outputs[1 : 1 + len(values)])
        scans.append(tuple(outputs[1 + len(values) :]))
        step += 1
    stacked = [
        torch.stack([s[k] for s in scans]) if scans else torch.zeros((0,)) for k in range(num_scan)
    ]
    return (*values, *stacked)


def _while_loop(
    body: Any,
    max_trip: torch.Tensor | None,
    cond: torch.Tensor | None,
    captured: tuple[torch.Tensor, ...],
    carried: tuple[torch.Tensor, ...],
) -> tuple[torch.Tensor, ...]:
    from torch._higher_order_ops import while_loop

    limit = max_trip.reshape(()) if max_trip is not None else None
    start = torch.zeros((), dtype=torch.int64)
    keep = cond.reshape(()).bool() if cond is not None else torch.ones((), dtype=torch.bool)

    def condition(step: torch.Tensor, keep: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        return keep if limit is None else keep & (step < limit)

    def iterate(step: torch.Tensor, keep: torch.Tensor, *values: torch.Tensor) -> Any:
        outputs = body(step, keep, *values, *captured)
        # while_loop rejects outputs that alias inputs (an Identity body): clone them.
        carried_out = [v.clone() for v in outputs[1 : 1 + len(values)]]
        return (step + 1, outputs[0].reshape(()).bool().clone(), *carried_out)

    result = while_loop(condition, iterate, (start, keep, *carried))
    return tuple(result[2:])


def _passes_through(value: ir.Value, source: ir.Value) -> bool:
    """Whether ``value`` is ``source`` itself or ``source`` through Identity nodes."""
    while value is not source:
        producer = value.producer()
        if producer is None or producer.op_type != "Identity" or producer.inputs[0] is None:
            return False
        value = producer.inputs[0]
    return True


@ops.register("Loop", since=1)
def loop_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    body_graph = ctx.attr("body")
    assert isinstance(body_graph, ir.Graph)
    body = ctx.subgraph("body")
    num_carried = ctx.num_inputs - 2
    num_scan = len(body_graph.outputs) - 1 - num_carried
    trip = ctx.constant_input(0)
    start = ctx.constant_input(1)
    # The condition never changes: absent or constant True, and passed through by the body.
    cond_fixed = (start is None and not ctx.has_input(1)) or (
        start is not None and bool(start.reshape(-1)[0])
    )
    cond_fixed = cond_fixed and _passes_through(body_graph.outputs[0], body_graph.inputs[1])
    out = ctx.call(
        _loop,
        body.module,
        ctx.optional_input(0),
        ctx.optional_input(1),
        None if trip is None else int(trip.reshape(-1)[0]),
        cond_fixed,
        num_scan,
        tuple(body.captured),
        *(ctx.input(i) for i in range(2, ctx.num_inputs)),
    )
    return ctx.unpack(out, len(node.outputs))


# -- Scan --------------------------------------------------------------------------------------


def _scan(
    body: Any,
    num_state: int,
    num_scan_inputs: int,
    input_axes: list[int],
    input_directions: list[int],
    output_axes: list[int],
    output_directions: list[int],
    captured: tuple[torch.Tensor, ...],
    *inputs: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    state = list(inputs[:num_state])
    sequences = []
    for k, x in enumerate(inputs[num_state:]):
        axis = input_axes[k] if k < len(input_axes) else 0
        axis = axis + x.dim() if axis < 0 else axis
        x = x.movedim(axis, 0)
        if k < len(input_directions) and input_directions[k]:
            x = x.flip(0)
        sequences.append(x)
    if torch.compiler.is_compiling():
        state, stacked = _scan_exported(body, state, sequences, captured)
    else:
        state, stacked = _scan_eager(body, state, sequences, captured)
    results = []
    for k, y in enumerate(stacked):
        if k < len(output_directions) and output_directions[k]:
            y = y.flip(0)
        axis = output_axes[k] if k < len(output_axes) else 0
        axis = axis + y.dim() if axis < 0 else axis
        results.append(y.movedim(0, axis))
    return (*state, *results)


def _scan_eager(
    body: Any,
    state: list[torch.Tensor],
    sequences: list[torch.Tensor],
    captured: tuple[torch.Tensor, ...],
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    num_state = len(state)
    collected: list[list[torch.Tensor]] = []
    for t in range(sequences[0].shape[0]):
        outputs = body(*state, *(s[t] for s in sequences), *captured)
        state = list(outputs[:num_state])
        for k, value in enumerate(outputs[num_state:]):
            if len(collected) <= k:
                collected.append([])
            collected[k].append(value)
    return state, [torch.stack(values) for values in collected]


def _scan_exported(
    body: Any,
    state: list[torch.Tensor],
    sequences: list[torch.Tensor],
    captured: tuple[torch.Tensor, ...],
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    # A Python loop would be unrolled by torch.export at the example's length.
    from torch._higher_order_ops import scan

    num_state = len(state)

    def step(carry: list[torch.Tensor], items: list[torch.Tensor]) -> Any:
        outputs = body(*carry, *items, *captured)
        # scan rejects outputs that alias its inputs (an Identity body): clone them.
        return [v.clone() for v in outputs[:num_state]], [v.clone() for v in outputs[num_state:]]

    final, stacked = scan(step, list(state), list(sequences))
    return list(final), list(stacked)


@ops.register("Scan", since=9)
def scan_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    num_scan_inputs = ctx.attr_int("num_scan_inputs")
    body = ctx.subgraph("body")
    out = ctx.call(
        _scan,
        body.module,
        ctx.num_inputs - num_scan_inputs,
        num_scan_inputs,
        ctx.attr_ints("scan_input_axes", None) or [],
        ctx.attr_ints("scan_input_directions", None) or [],
        ctx.attr_ints("scan_output_axes", None) or [],
        ctx.attr_ints("scan_output_directions", None) or [],
        tuple(body.captured),
        *(ctx.input(i) for i in range(ctx.num_inputs)),
    )
    return ctx.unpack(out, len(node.outputs))


def _scan_batched(
    body: Any,
    num_state: int,
    directions: list[int],
    captured: tuple[torch.Tensor, ...],
    sequence_lens: torch.Tensor | None,
    *inputs: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    # Scan-8: axis 0 of every input is the batch; run the Scan-9 loop per batch entry.
    states, scans = inputs[:num_state], inputs[num_state:]
    per_batch = []
    for b in range(inputs[0].shape[0]):
        length = scans[0].shape[1] if sequence_lens is None else int(sequence_lens[b])
        items = [s[b] for s in states] + [x[b, :length] for x in scans]
        per_batch.append(
            _scan(body, num_state, len(scans), [], directions, [], [], captured, *items)
        )
    return tuple(torch.stack([r[k] for r in per_batch]) for k in range(len(per_batch[0])))


@ops.register("Scan", since=8)
def scan_v8(node: ir.Node, ctx: BuildContext) -> Outputs:
    num_scan_inputs = ctx.attr_int("num_scan_inputs")
    body = ctx.subgraph("body")
    out = ctx.call(
        _scan_batched,
        body.module,
        ctx.num_inputs - 1 - num_scan_inputs,
        ctx.attr_ints("directions", None) or [],
        tuple(body.captured),
        ctx.optional_input(0),
        *(ctx.input(i) for i in range(1, ctx.num_inputs)),
    )
    return ctx.unpack(out, len(node.outputs))
