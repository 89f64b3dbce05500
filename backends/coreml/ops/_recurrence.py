"""RNN, GRU and LSTM unrolled over their time steps, with ONNX's equations as MIL ops.

MIL's ``lstm`` takes its weights as constants and holds neither peepholes, sequence lengths nor
ONNX's other activations; MIL's ``gru`` has one bias per gate (ONNX's ``Rbh`` sits inside the
reset product where ``linear_before_reset`` is set). Where the sequence length is known when the
program is built, each step here is ONNX's own formula (``onnx.defs`` LSTM/GRU/RNN): the input
projection ``X W^T + Wb`` once for all steps, per step ``H R^T + Rb``, the gates' activations,
and, with ``sequence_lens``, each batch entry's state held (and its output zero) from its length
on. A reverse direction walks the steps backwards, so an entry's padded steps come first and
leave its initial state untouched, as ONNX reverses each sequence within its own length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.native.reading import mil_type_name

#: Activations with their (alpha, beta) defaults (onnxruntime's, which the ONNX spec defers to).
_DEFAULTS: dict[str, tuple[float | None, float | None]] = {
    "sigmoid": (None, None),
    "tanh": (None, None),
    "relu": (None, None),
    "softsign": (None, None),
    "softplus": (None, None),
    "affine": (1.0, 0.0),
    "leakyrelu": (0.01, None),
    "thresholdedrelu": (1.0, None),
    "scaledtanh": (1.0, 1.0),
    "hardsigmoid": (0.2, 0.5),
    "elu": (1.0, None),
}

Activation = Callable[[Any], Any]


def float_type(var: Any) -> np.dtype:
    """The numpy float type of a MIL var's elements (float16 or float32)."""
    return np.dtype(np.float16 if mil_type_name(var.dtype) == "fp16" else np.float32)


@dataclass
class Cell:
    """One recurrence: its kind, gate count, hidden size and per-direction activations."""

    kind: str  # "RNN", "GRU" or "LSTM"
    gates: int
    hidden: int
    activations: list[list[Activation]]  # per direction


def activations(
    ctx: ExportContext, count: int, defaults: list[str], dtype: Any
) -> list[list[Activation]]:
    """The node's activations, ``count`` per direction, as builders of MIL ops."""
    direction = str(ctx.attr("direction", "forward"))
    directions = 2 if direction == "bidirectional" else 1
    names = ctx.attr("activations", None) or defaults * directions
    if len(names) == count and directions == 2:
        names = list(names) * 2
    if len(names) != count * directions:
        raise ctx.error(f"activations {names}: {count * directions} expected")
    alphas = list(ctx.attr("activation_alpha", None) or [])
    betas = list(ctx.attr("activation_beta", None) or [])
    built: list[Activation] = []
    for name in names:
        key = str(name).lower()
        if key not in _DEFAULTS:
            raise ctx.error(f"activation {name}")
        alpha_default, beta_default = _DEFAULTS[key]
        alpha = (alphas.pop(0) if alphas else alpha_default) if alpha_default is not None else None
        beta = (betas.pop(0) if betas else beta_default) if beta_default is not None else None
        built.append(_activation(ctx, key, alpha, beta, dtype))
    return [built[d * count : (d + 1) * count] for d in range(directions)]


def _activation(
    ctx: ExportContext, key: str, alpha: float | None, beta: float | None, dtype: Any
) -> Activation:
    mb = ctx.mb
    a = dtype.type(alpha if alpha is not None else 0)
    b = dtype.type(beta if beta is not None else 0)
    zero, one = dtype.type(0), dtype.type(1)
    table: dict[str, Activation] = {
        "sigmoid": lambda x: mb.sigmoid(x=x),
        "tanh": lambda x: mb.tanh(x=x),
        "relu": lambda x: mb.relu(x=x),
        "softsign": lambda x: mb.real_div(x=x, y=mb.add(x=mb.abs(x=x), y=one)),
        "softplus": lambda x: mb.softplus(x=x),
        "affine": lambda x: mb.add(x=mb.mul(x=x, y=a), y=b),
        "leakyrelu": lambda x: mb.select(
            cond=mb.greater_equal(x=x, y=zero), a=x, b=mb.mul(x=x, y=a)
        ),
        "thresholdedrelu": lambda x: mb.select(
            cond=mb.greater(x=x, y=a), a=x, b=mb.mul(x=x, y=zero)
        ),
        "scaledtanh": lambda x: mb.mul(x=mb.tanh(x=mb.mul(x=x, y=b)), y=a),
        "hardsigmoid": lambda x: mb.clip(x=mb.add(x=mb.mul(x=x, y=a), y=b), alpha=zero, beta=one),
        "elu": lambda x: mb.select(
            cond=mb.greater_equal(x=x, y=zero),
            a=x,
            b=mb.mul(x=mb.sub(x=mb.exp(x=x), y=one), y=a),
        ),
    }
    return table[key]


def run(ctx: ExportContext, cell: Cell) -> list[Any]:
    """The node's outputs (Y, Y_h and, for LSTM, Y_c) in ONNX's layout."""
    mb = ctx.mb
    layout = int(ctx.attr("layout", 0))
    direction = str(ctx.attr("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ctx.error(f"direction={direction}")
    shape = ctx.input_shape(0)
    if shape is None or len(shape) != 3:
        raise ctx.error("an input of unknown rank")
    known_steps = shape[1 if layout else 0]
    if known_steps == 0:
        raise ctx.error("an empty sequence")
    dtype = float_type(ctx.input(0))
    x = ctx.input(0)
    if layout:
        x = mb.transpose(x=x, perm=[1, 0, 2])  # (T, B, I)
    h, g = cell.hidden, cell.gates
    clip = ctx.attr("clip", None)
    input_forget = cell.kind == "LSTM" and bool(int(ctx.attr("input_forget", 0)))
    lens = ctx.input(4) if ctx.has_input(4) else None
    if lens is not None and mil_type_name(lens.dtype) != "int32":
        lens = mb.cast(x=lens, dtype="int32")
    directions = 2 if direction == "bidirectional" else 1
    outputs: list[list[Any]] = [[], [], []]  # per output, per direction
    for d in range(directions):
        backwards = direction == "reverse" or d == 1
        weight = _direction(ctx, 1, d)  # (gH, I)
        recurrence = _direction(ctx, 2, d)  # (gH, H)
        projected = mb.matmul(x=x, y=weight, transpose_y=True)  # (T, B, gH)
        recurrent_bias = None
        if ctx.has_input(3):
            bias = _direction(ctx, 3, d)  # (2gH,)
            input_bias, recurrent_bias = mb.split(x=bias, num_splits=2, axis=0)
            projected = mb.add(x=projected, y=input_bias)
        initial_h = _initial(ctx, 5, d, x, layout, h, dtype)
        initial_c = _initial(ctx, 6, d, x, layout, h, dtype) if cell.kind == "LSTM" else None
        peepholes = None
        if cell.kind == "LSTM" and ctx.has_input(7):
            peepholes = mb.split(x=_direction(ctx, 7, d), num_splits=3, axis=0)  # i, o, f
        acts = cell.activations[d]

        def advance(
            projected_t: Any,
            state_h: Any,
            state_c: Any,
            index: Any,
            recurrence: Any = recurrence,  # this direction's (bound now: ruff B023)
            recurrent_bias: Any = recurrent_bias,
            acts: list[Activation] = acts,
            peepholes: Any = peepholes,
        ) -> tuple[Any, Any, Any]:
            """One step at time ``index``: its output, the new hidden and cell states."""
            hidden_part = mb.matmul(x=state_h, y=recurrence, transpose_y=True)  # (B, gH)
            if recurrent_bias is not None:
                hidden_part = mb.add(x=hidden_part, y=recurrent_bias)
            xs = _gates(ctx, projected_t, g)
            hs = _gates(ctx, hidden_part, g)
            if cell.kind == "RNN":
                new_h = acts[0](_clipped(ctx, mb.add(x=xs[0], y=hs[0]), clip))
                new_c = None
            elif cell.kind == "GRU":
                new_h = _gru_step(ctx, xs, hs, state_h, recurrence, recurrent_bias, acts, clip, h)
                new_c = None
            else:
                new_h, new_c = _lstm_step(ctx, xs, hs, state_c, peepholes, acts, clip, input_forget)
            if lens is None:
                return new_h, new_h, new_c
            valid = mb.expand_dims(x=mb.greater(x=lens, y=index), axes=[1])  # (B, 1)
            y_t = mb.select(cond=valid, a=new_h, b=np.zeros((1, 1), dtype))
            new_h = mb.select(cond=valid, a=new_h, b=state_h)
            if new_c is not None:
                new_c = mb.select(cond=valid, a=new_c, b=state_c)
            return y_t, new_h, new_c

        if known_steps is None:
            sequence, state_h, state_c = _while_steps(
                ctx, projected, initial_h, initial_c, backwards, advance
            )
        else:
            steps = int(known_steps)
            per_step = (
                [mb.squeeze(x=v, axes=[0]) for v in mb.split(x=projected, num_splits=steps, axis=0)]
                if steps > 1
                else [mb.squeeze(x=projected, axes=[0])]
            )
            state_h, state_c = initial_h, initial_c
            ys: list[Any] = [None] * steps
            for t in range(steps - 1, -1, -1) if backwards else range(steps):
                ys[t], state_h, state_c = advance(per_step[t], state_h, state_c, np.int32(t))
            sequence = (
                mb.stack(values=ys, axis=0) if steps > 1 else mb.expand_dims(x=ys[0], axes=[0])
            )
        outputs[0].append(sequence)
        outputs[1].append(state_h)
        outputs[2].append(state_c)
    y = _stacked(ctx, outputs[0], axis=1)  # (T, D, B, H)
    y_h = _stacked(ctx, outputs[1], axis=0)  # (D, B, H)
    results = [y, y_h]
    if cell.kind == "LSTM":
        results.append(_stacked(ctx, outputs[2], axis=0))
    if layout:
        results = [mb.transpose(x=results[0], perm=[2, 0, 1, 3])] + [
            mb.transpose(x=state, perm=[1, 0, 2]) for state in results[1:]
        ]
    return results


def _while_steps(
    ctx: ExportContext,
    projected: Any,
    initial_h: Any,
    initial_c: Any,
    backwards: bool,
    advance: Callable[[Any, Any, Any, Any], tuple[Any, Any, Any]],
) -> tuple[Any, Any, Any]:
    """The steps of a sequence whose length is known only at run time, in a while_loop: each
    output appended to a loop variable that grows by one step (started with a dummy row, sliced
    off after; walking backwards, the rows come in reverse and are reversed after)."""
    mb = ctx.mb
    length = mb.gather(x=mb.shape(x=projected), indices=np.int32(0), axis=0)
    last = mb.sub(x=length, y=np.int32(1))
    has_cell = initial_c is not None
    first = mb.expand_dims(x=initial_h, axes=[0])  # the dummy row: any values do

    def keep_going(t: Any, *rest: Any) -> Any:
        return mb.less(x=t, y=length)

    def step(t: Any, *rest: Any) -> tuple[Any, ...]:
        state_h, state_c = rest[0], rest[1] if has_cell else None
        index = mb.sub(x=last, y=t) if backwards else t
        projected_t = mb.gather(x=projected, indices=index, axis=0)  # (B, gH)
        y_t, new_h, new_c = advance(projected_t, state_h, state_c, index)
        grown = mb.concat(values=[rest[-1], mb.expand_dims(x=y_t, axes=[0])], axis=0)
        cells = [new_c] if has_cell else []
        return (mb.add(x=t, y=np.int32(1)), new_h, *cells, grown)

    cells = [initial_c] if has_cell else []
    with ctx.in_subgraph():
        results = mb.while_loop(
            _cond=keep_going,
            _body=step,
            loop_vars=(mb.const(val=np.int32(0)), initial_h, *cells, first),
        )
    rows = mb.slice_by_index(x=results[-1], begin=[1, 0, 0], end=[0, 0, 0], end_mask=[True] * 3)
    if backwards:
        rows = mb.reverse(x=rows, axes=[0])
    return rows, results[1], results[2] if has_cell else None


def _stacked(ctx: ExportContext, values: list[Any], axis: int) -> Any:
    if len(values) == 1:
        return ctx.mb.expand_dims(x=values[0], axes=[axis])
    return ctx.mb.stack(values=values, axis=axis)


def _direction(ctx: ExportContext, index: int, d: int) -> Any:
    """Direction ``d`` of a (D, ...) input: a constant where known, else a slice at run time."""
    array = ctx.constant_input(index)
    if array is not None:
        return ctx.make_constant(np.asarray(array[d]))
    return _part(ctx, ctx.input(index), d, d + 1, squeeze=True)


def _part(ctx: ExportContext, var: Any, begin: int, end: int, squeeze: bool = False) -> Any:
    """Rows ``begin:end`` of ``var`` along its first axis (that axis dropped with ``squeeze``)."""
    rest = len(var.shape) - 1
    return ctx.mb.slice_by_index(
        x=var,
        begin=[begin] + [0] * rest,
        end=[end] + [0] * rest,
        end_mask=[False] + [True] * rest,
        squeeze_mask=[squeeze] + [False] * rest,
    )


def _initial(
    ctx: ExportContext, index: int, d: int, x: Any, layout: int, hidden: int, dtype: Any
) -> Any:
    """Direction ``d``'s initial state (B, H): the input's, else zeros."""
    mb = ctx.mb
    if ctx.has_input(index):
        state = ctx.input(index)
        if layout:
            state = mb.transpose(x=state, perm=[1, 0, 2])
        return _part(ctx, state, d, d + 1, squeeze=True)
    batch = x.shape[1]
    if isinstance(batch, int):
        return ctx.make_constant(np.zeros((batch, hidden), dtype))
    size = mb.concat(
        values=[
            mb.slice_by_size(x=mb.shape(x=x), begin=[1], size=[1]),
            np.array([hidden], np.int32),
        ],
        axis=0,
    )
    return mb.fill(shape=size, value=dtype.type(0))


def _gates(ctx: ExportContext, var: Any, count: int) -> list[Any]:
    return list(ctx.mb.split(x=var, num_splits=count, axis=-1)) if count > 1 else [var]


def _clipped(ctx: ExportContext, var: Any, clip: float | None) -> Any:
    """ONNX's clip bounds each activation's input."""
    if clip is None:
        return var
    bound = float_type(var).type(clip)
    return ctx.mb.clip(x=var, alpha=-bound, beta=bound)


def _gru_step(
    ctx: ExportContext,
    xs: list[Any],
    hs: list[Any],
    state: Any,
    recurrence: Any,
    recurrent_bias: Any,
    acts: list[Activation],
    clip: float | None,
    hidden: int,
) -> Any:
    """ONNX's GRU gates z, r, h; with linear_before_reset=0 the reset gate scales the state
    before its projection (one more matmul per step, by the h rows of R)."""
    mb = ctx.mb
    f, g = acts
    z = f(_clipped(ctx, mb.add(x=xs[0], y=hs[0]), clip))
    r = f(_clipped(ctx, mb.add(x=xs[1], y=hs[1]), clip))
    if int(ctx.attr("linear_before_reset", 0)):
        candidate = mb.add(x=xs[2], y=mb.mul(x=r, y=hs[2]))
    else:
        rows = _part(ctx, recurrence, 2 * hidden, 3 * hidden)
        reset = mb.matmul(x=mb.mul(x=r, y=state), y=rows, transpose_y=True)
        if recurrent_bias is not None:
            reset = mb.add(x=reset, y=_part(ctx, recurrent_bias, 2 * hidden, 3 * hidden))
        candidate = mb.add(x=xs[2], y=reset)
    candidate = g(_clipped(ctx, candidate, clip))
    # (1 - z) * h~ + z * H, as h~ + z * (H - h~)
    return mb.add(x=mb.mul(x=mb.sub(x=float_type(z).type(1), y=z), y=candidate),
                  y=mb.mul(x=z, y=state))  # fmt: skip


def _lstm_step(
    ctx: ExportContext,
    xs: list[Any],
    hs: list[Any],
    cell_state: Any,
    peepholes: Any,
    acts: list[Activation],
    clip: float | None,
    input_forget: bool,
) -> tuple[Any, Any]:
    """ONNX's LSTM gates i, o, f, c with optional peepholes (i, o, f)."""
    mb = ctx.mb
    f, g, h = acts
    pre = [mb.add(x=a, y=b) for a, b in zip(xs, hs, strict=True)]  # i, o, f, c
    if peepholes is not None:
        pre[0] = mb.add(x=pre[0], y=mb.mul(x=peepholes[0], y=cell_state))
        pre[2] = mb.add(x=pre[2], y=mb.mul(x=peepholes[2], y=cell_state))
    i = f(_clipped(ctx, pre[0], clip))
    one = float_type(i).type(1)
    forget = mb.sub(x=one, y=i) if input_forget else f(_clipped(ctx, pre[2], clip))
    c = g(_clipped(ctx, pre[3], clip))
    new_c = mb.add(x=mb.mul(x=forget, y=cell_state), y=mb.mul(x=i, y=c))
    if peepholes is not None:
        pre[1] = mb.add(x=pre[1], y=mb.mul(x=peepholes[1], y=new_c))
    o = f(_clipped(ctx, pre[1], clip))
    return mb.mul(x=o, y=h(new_c)), new_c
