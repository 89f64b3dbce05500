"""Control flow: If as ``tf.cond``, Loop and Scan as ``tf.while_loop``.

Branches and bodies are converted by the same registry, inside the functions TensorFlow traces
for them (``ExportContext.convert_subgraph``), so the control flow happens at run time and
dims unknown before it (the batch, a sequence length, a trip count) stay dynamic. Values a body
carries from one iteration to the next may change shape, as ONNX allows: their shapes are
left free in the loop. Scan outputs are gathered in ``tf.TensorArray``s and stacked; for a TFLite
export, whose builtins hold no TensorList, in a tensor grown by one slice per step instead
(``_stacks``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unframe.backends.tensorflow.native import tf_dtype
from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    for_tflite,
    ir,
    normalize_axis,
    ops,
)
from unframe.backends.tensorflow.ops._stacks import (
    stack_finish,
    stack_invariant,
    stack_start,
    stack_write,
)

# -- If ----------------------------------------------------------------------------------------


@ops.register("If", since=1)
def if_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    then_branch, else_branch = _graph(ctx, "then_branch"), _graph(ctx, "else_branch")
    known = ctx.constant_input(0)
    if known is not None:
        # A condition known before run time: only the branch taken is built.
        return ctx.convert_subgraph(then_branch if bool(known.reshape(-1)[0]) else else_branch, [])
    tf = ctx.tf
    taken = tf.reshape(tf.cast(ctx.input(0), tf.bool), [])
    results = tf.cond(
        taken,
        lambda: ctx.convert_subgraph(then_branch, []),
        lambda: ctx.convert_subgraph(else_branch, []),
    )
    # tf.cond hands a one-element list back as its element.
    return list(results) if isinstance(results, list | tuple) else [results]


# -- Loop --------------------------------------------------------------------------------------


@ops.register("Loop", since=1)
def loop_v1(node: ir.Node, ctx: ExportContext) -> Outputs:
    """``for i in range(M) while cond``: M and cond are each optional; the body returns the
    next condition, the carried values, then one value per step for each scan output."""
    tf = ctx.tf
    body = _graph(ctx, "body")
    carried_count = len(node.inputs) - 2
    scan_values = list(body.outputs[1 + carried_count :])
    trip = tf.reshape(tf.cast(ctx.input(0), tf.int64), []) if ctx.has_input(0) else None
    keep = tf.reshape(tf.cast(ctx.input(1), tf.bool), []) if ctx.has_input(1) else tf.constant(True)
    carried = [ctx.input(2 + k) for k in range(carried_count)]
    if not all(hasattr(value, "dtype") for value in carried):
        raise ctx.error("a sequence or optional carried through a Loop is not converted")

    def condition(step: Any, go: Any, *_rest: Any) -> Any:
        return go if trip is None else tf.logical_and(go, step < trip)

    def step_outputs(step: Any, go: Any, *values: Any) -> list[Any]:
        return ctx.convert_subgraph(body, _body_inputs(ctx, body, [step, go, *values]))[1:]

    def iterate(step: Any, go: Any, *rest: Any) -> tuple[Any, ...]:
        values, gathered = rest[:carried_count], rest[carried_count:]
        outputs = ctx.convert_subgraph(body, _body_inputs(ctx, body, [step, go, *values]))
        next_go = tf.reshape(tf.cast(outputs[0], tf.bool), [])
        written = [
            stack_write(ctx, array, step, output)
            for array, output in zip(gathered, outputs[1 + carried_count :], strict=True)
        ]
        return (step + 1, next_go, *outputs[1 : 1 + carried_count], *written)

    counters = [tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.bool)]
    carried_shapes = _carried_shapes(
        ctx, carried, list(body.outputs[1 : 1 + carried_count]), counters, step_outputs
    )
    specs = [
        *counters,
        *(tf.TensorSpec(shape, t.dtype) for shape, t in zip(carried_shapes, carried, strict=True)),
    ]
    arrays = _stack_starts(ctx, scan_values, specs, step_outputs, first=carried_count)
    initial = (tf.constant(0, tf.int64), keep, *carried, *arrays)
    invariants = (
        tf.TensorShape([]),
        tf.TensorShape([]),
        *carried_shapes,
        *(stack_invariant(ctx, array) for array in arrays),
    )
    final = tf.while_loop(condition, iterate, initial, shape_invariants=invariants)
    finals = list(final[2 : 2 + carried_count])
    stacked = [stack_finish(ctx, array) for array in final[2 + carried_count :]]
    return [*finals, *stacked]


# -- Scan --------------------------------------------------------------------------------------


@ops.register("Scan", since=9)
def scan_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    """The body runs once per slice of the scan inputs (along each one's axis and direction),
    carrying the state values; each scan output stacks one slice per step."""
    tf = ctx.tf
    body = _graph(ctx, "body")
    scan_count = int(ctx.attr("num_scan_inputs"))
    state_count = len(node.inputs) - scan_count
    output_count = len(body.outputs) - state_count
    input_axes = ctx.ints("scan_input_axes", [0] * scan_count)
    input_directions = ctx.ints("scan_input_directions", [0] * scan_count)
    output_axes = ctx.ints("scan_output_axes", [0] * output_count)
    output_directions = ctx.ints("scan_output_directions", [0] * output_count)

    sequences = []
    for j in range(scan_count):
        sequence = ctx.input(state_count + j)
        rank = _rank(ctx, state_count + j, sequence)
        axis = normalize_axis(input_axes[j], rank)
        if axis:
            sequence = tf.transpose(sequence, [axis, *(a for a in range(rank) if a != axis)])
        if input_directions[j]:
            sequence = tf.reverse(sequence, [0])
        sequences.append(sequence)
    states = [ctx.input(j) for j in range(state_count)]
    results, stacks = _scan_steps(ctx, body, states, sequences)
    for j, stacked in enumerate(stacks):
        if output_directions[j]:
            stacked = tf.reverse(stacked, [0])
        index = state_count + j
        target = node.outputs[index] if index < len(node.outputs) else None
        rank = (
            len(target.shape)
            if target is not None and target.shape is not None
            else stacked.shape.rank
        )
        axis = output_axes[j]
        if axis:
            if rank is None:
                raise ctx.error(f"scan output {j}: its rank is not known, so axis {axis} is not")
            axis = normalize_axis(axis, rank)
            stacked = tf.transpose(stacked, [*range(1, axis + 1), 0, *range(axis + 1, rank)])
        results.append(stacked)
    return results


@ops.register("Scan", since=8)
def scan_v8(node: ir.Node, ctx: ExportContext) -> Outputs:
    """Opset 8's batched Scan: input 0 is the optional sequence lengths, every other input has
    a leading batch axis and its scan axis is 1; the scan runs once per batch entry (scan outputs
    in the order of iteration, as onnx's reference keeps them)."""
    tf = ctx.tf
    body = _graph(ctx, "body")
    if ctx.has_input(0):
        raise ctx.error("Scan-8's sequence_lens is not converted (leave it out: full lengths)")
    scan_count = int(ctx.attr("num_scan_inputs"))
    state_count = len(node.inputs) - 1 - scan_count
    directions = ctx.ints("directions", [0] * scan_count)
    batched_states = [ctx.input(1 + j) for j in range(state_count)]
    batched_sequences = [ctx.input(1 + state_count + j) for j in range(scan_count)]
    batch = tf.shape((batched_states or batched_sequences)[0])[0]
    count = len(body.outputs)

    def condition(entry: Any, *_rest: Any) -> Any:
        return entry < batch

    def entry_outputs(entry: Any) -> list[Any]:
        states = [tf.gather(state, entry) for state in batched_states]
        sequences = [
            tf.reverse(tf.gather(seq, entry), [0]) if directions[j] else tf.gather(seq, entry)
            for j, seq in enumerate(batched_sequences)
        ]
        finals, stacks = _scan_steps(ctx, body, states, sequences)
        return [*finals, *stacks]

    def per_entry(entry: Any, *gathered: Any) -> tuple[Any, ...]:
        written = [
            stack_write(ctx, array, entry, value)
            for array, value in zip(gathered, entry_outputs(entry), strict=True)
        ]
        return (entry + 1, *written)

    # One entry per batch entry: its final states, then its scan outputs (any shape).
    arrays = _stack_starts(
        ctx,
        list(body.outputs),
        [tf.TensorSpec([], tf.int32)],
        entry_outputs,
        onnx_shaped=[index < state_count for index in range(count)],
    )
    invariants = (tf.TensorShape([]), *(stack_invariant(ctx, array) for array in arrays))
    final = tf.while_loop(
        condition, per_entry, (tf.constant(0), *arrays), shape_invariants=invariants
    )
    return [stack_finish(ctx, array) for array in final[1 : 1 + count]]


def _scan_steps(
    ctx: ExportContext, body: ir.Graph, states: list[Any], sequences: list[Any]
) -> tuple[list[Any], list[Any]]:
    """The body over the (time-major) ``sequences``, carrying ``states``: the final states and
    each scan output's slices stacked along a new axis 0."""
    tf = ctx.tf
    state_count = len(states)
    length = tf.shape(sequences[0], out_type=tf.int64)[0]

    def condition(step: Any, *_rest: Any) -> Any:
        return step < length

    def step_outputs(step: Any, *values: Any) -> list[Any]:
        slices = [tf.gather(sequence, step) for sequence in sequences]
        return ctx.convert_subgraph(body, _body_inputs(ctx, body, [*values, *slices]))

    def iterate(step: Any, *rest: Any) -> tuple[Any, ...]:
        values, gathered = rest[:state_count], rest[state_count:]
        slices = [tf.gather(sequence, step) for sequence in sequences]
        outputs = ctx.convert_subgraph(body, _body_inputs(ctx, body, [*values, *slices]))
        written = [
            stack_write(ctx, array, step, output)
            for array, output in zip(gathered, outputs[state_count:], strict=True)
        ]
        return (step + 1, *outputs[:state_count], *written)

    counters = [tf.TensorSpec([], tf.int64)]
    state_shapes = _carried_shapes(
        ctx, states, list(body.outputs[:state_count]), counters, step_outputs
    )
    specs = [
        *counters,
        *(tf.TensorSpec(shape, t.dtype) for shape, t in zip(state_shapes, states, strict=True)),
    ]
    arrays = _stack_starts(
        ctx, list(body.outputs[state_count:]), specs, step_outputs, first=state_count
    )
    initial = (tf.constant(0, tf.int64), *states, *arrays)
    invariants = (
        tf.TensorShape([]),
        *state_shapes,
        *(stack_invariant(ctx, array) for array in arrays),
    )
    final = tf.while_loop(condition, iterate, initial, shape_invariants=invariants)
    stacks = [stack_finish(ctx, array) for array in final[1 + state_count :]]
    steps = sequences[0].shape[0]
    for stacked in stacks:
        if steps is not None and stacked.shape.rank is not None:
            stacked.set_shape([steps, *stacked.shape.as_list()[1:]])  # a static step count
    return list(final[1 : 1 + state_count]), stacks


# -- shared ------------------------------------------------------------------------------------


def _graph(ctx: ExportContext, name: str) -> ir.Graph:
    graph = ctx.attr(name)
    if not isinstance(graph, ir.Graph):
        raise ctx.error(f"attribute {name!r} is not a graph")
    return graph


def _rank(ctx: ExportContext, index: int, tensor: Any) -> int:
    rank = ctx.input_rank(index)
    if rank is None:
        rank = tensor.shape.rank
    if rank is None:
        raise ctx.error(f"input {index}: its rank is not known")
    return int(rank)


def _invariant(ctx: ExportContext, initial: Any, value: ir.Value) -> Any:
    """The shape a carried value keeps in every iteration: its rank, with every dim free (the
    body may change them, and what TensorFlow traces of them is not known before); no shape
    where the body's output has another rank as ONNX infers it. Converters in the body read
    ONNX's shapes where TensorFlow's are free."""
    tf = ctx.tf
    rank = initial.shape.rank
    if rank is None or (value.shape is not None and len(value.shape) != rank):
        return tf.TensorShape(None)
    return tf.TensorShape([None] * rank)


def _stack_starts(
    ctx: ExportContext,
    values: list[ir.Value],
    specs: list[Any],
    outputs_of: Callable[..., list[Any]],
    *,
    first: int = 0,
    onnx_shaped: list[bool] | None = None,
) -> list[Any]:
    """Where each scan output's slices gather (``_stacks.stack_start``). A TFLite export's
    stack needs its slice's static shape: ONNX's where that is static (and ``onnx_shaped``,
    default all, says that value is the slice itself), else the static shape TensorFlow gives
    ``outputs_of`` (the step, traced once aside with inputs ``specs``; ``values`` are its results
    from ``first`` on).
    """
    shaped = onnx_shaped if onnx_shaped is not None else [True] * len(values)
    shapes: list[list[int | None] | None] = [
        [dim if isinstance(dim, int) else None for dim in value.shape]
        if value.shape is not None and known
        else None
        for value, known in zip(values, shaped, strict=True)
    ]
    if not for_tflite(ctx):
        return [
            stack_start(ctx, tf_dtype(value.dtype, f"scan output {value.name!r}"), shape)
            for value, shape in zip(values, shapes, strict=True)
        ]
    if any(shape is None or None in shape for shape in shapes):
        traced = _trace_aside(ctx, outputs_of, specs)[first:]
        shapes = [
            shape if shape is not None and None not in shape else traced_shape
            for shape, traced_shape in zip(shapes, traced, strict=True)
        ]
    stacks = []
    for value, shape in zip(values, shapes, strict=True):
        if shape is None or None in shape:
            raise ctx.error(
                f"scan output {value.name!r} has a shape known only at run time ({shape}): "
                "TFLite's builtins hold no TensorList to gather its slices"
            )
        dtype = ctx.state.held_dtype(value.dtype, f"scan output {value.name!r}")
        stacks.append(stack_start(ctx, dtype, shape))
    return stacks


def _carried_shapes(
    ctx: ExportContext,
    initial: list[Any],
    returned: list[ir.Value],
    counters: list[Any],
    outputs_of: Callable[..., list[Any]],
) -> list[Any]:
    """The shape each carried value keeps through the loop (``_invariant``); for a TFLite export
    its initial static shape where the body, traced aside on those shapes, returns it with the
    same shape (then every iteration does): the slices a step gathers then have static shapes."""
    free = [_invariant(ctx, tensor, value) for tensor, value in zip(initial, returned, strict=True)]
    if not for_tflite(ctx) or not initial:
        return free
    tf = ctx.tf
    shapes = [tensor.shape for tensor in initial]
    specs = [*counters, *(tf.TensorSpec(s, t.dtype) for s, t in zip(shapes, initial, strict=True))]
    traced = _trace_aside(ctx, outputs_of, specs)[: len(initial)]
    return [
        shape if shape.is_fully_defined() and shape.as_list() == after else loose
        for shape, after, loose in zip(shapes, traced, free, strict=True)
    ]


def _trace_aside(
    ctx: ExportContext, outputs_of: Callable[..., list[Any]], specs: list[Any]
) -> list[list[int | None] | None]:
    """The static shapes of ``outputs_of``'s results, traced in a function of its own that is
    never called; the weights it makes are the ones the real trace takes next, in order."""
    tf = ctx.tf
    made = ctx.state.weights_made
    try:
        traced = tf.function(lambda *args: outputs_of(*args), autograph=False)
        results = traced.get_concrete_function(*specs).structured_outputs
    finally:
        ctx.state.weights_made = made
    return [
        None if result.shape.rank is None else result.shape.as_list()
        for result in (results if isinstance(results, list | tuple) else [results])
    ]


def _body_inputs(ctx: ExportContext, body: ir.Graph, tensors: list[Any]) -> list[Any]:
    """``tensors`` cast to the body's declared input types (a Loop's step count is int64 and
    its condition bool whatever the body declares them as; a body may declare fewer dims)."""
    tf = ctx.tf
    fitted = []
    for value, tensor in zip(body.inputs, tensors, strict=True):
        if value.dtype is not None:
            wanted = tf_dtype(value.dtype, f"body input {value.name!r}")
            if tensor.dtype != wanted:
                tensor = tf.cast(tensor, wanted)
        if value.shape is not None and len(value.shape) == 1 and tensor.shape.rank == 0:
            tensor = tf.reshape(tensor, [1])  # a body declaring its step count as shape [1]
        fitted.append(tensor)
    return fitted
