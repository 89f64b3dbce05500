"""RNN, GRU and LSTM, unrolled over their static sequence length.

Caffe2's RecurrentNetwork runs a step net it builds itself and has no ONNX layout; here every
time step is written out with MatMul (trans_b), the gate activations and Where, one direction
after the other, as ONNX's equations define the step. Run-time sequence lengths mask the
forward steps past each sequence's end (its output is 0 there and its state is kept); a reverse
direction would have to start each sequence at its own end, which is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.ops import _runtime as runtime
from unframe.backends.caffe2.ops._common import attr_int, attr_str, required
from unframe.backends.caffe2.registry import ops

#: Gates per cell, and the activations ONNX applies when the node names none.
_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_DEFAULT_ACTIVATIONS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"],
                        "LSTM": ["Sigmoid", "Tanh", "Tanh"]}  # fmt: skip


@dataclass
class _Direction:
    """One direction's weights, split per gate: input weights, recurrence weights, biases."""

    w: list[str]
    r: list[str]
    wb: list[str]
    rb: list[str]
    peepholes: list[str]


def _present(node: ir.Node, index: int) -> bool:
    return index < len(node.outputs) and node.outputs[index] is not None


def _check_attributes(node: ir.Node, ctx: ExportContext, directions: int) -> None:
    activations = node.attributes.get("activations")
    if activations is not None:
        names = [str(a) for a in activations.as_strings()]  # type: ignore[union-attr]
        if names != _DEFAULT_ACTIVATIONS[node.op_type] * directions:
            raise ctx.error(f"activations {names} other than ONNX's defaults are not exported")
    if "clip" in node.attributes:
        raise ctx.error("cell clipping is not exported")
    if attr_int(node, "input_forget", 0):
        raise ctx.error("input_forget=1 is not exported")


def _pick(ctx: ExportContext, blob: str, index: int, axis: int = 0) -> str:
    """``blob``'s slice ``index`` along ``axis``, that axis dropped."""
    return ctx.temp("Gather", [blob, runtime.const64(ctx, index)], "pick", axis=axis)


def _split(ctx: ExportContext, blob: str, parts: int, hint: str) -> list[str]:
    pieces = [ctx.fresh(hint) for _ in range(parts)]
    ctx.emit("Split", [blob], pieces, axis=0)
    return pieces


def _direction(
    node: ir.Node, ctx: ExportContext, index: int, gates: int, hidden: int, dtype: np.dtype
) -> _Direction:
    w = _split(ctx, _pick(ctx, ctx.input(1), index), gates, "w")
    r = _split(ctx, _pick(ctx, ctx.input(2), index), gates, "r")
    if ctx.has_input(3):
        biases = _split(ctx, _pick(ctx, ctx.input(3), index), 2 * gates, "b")
    else:
        biases = [ctx.make_constant(np.zeros(hidden, dtype=dtype), "b")] * (2 * gates)
    peepholes: list[str] = []
    if node.op_type == "LSTM" and ctx.has_input(7):
        peepholes = _split(ctx, _pick(ctx, ctx.input(7), index), 3, "p")
    return _Direction(w, r, biases[:gates], biases[gates:], peepholes)


def _gate(ctx: ExportContext, weights: _Direction, g: int, x: str, h: str) -> str:
    """x W_g^T + h R_g^T + Wb_g + Rb_g."""
    xw = ctx.temp("MatMul", [x, weights.w[g]], "xw", trans_b=1)
    hr = ctx.temp("MatMul", [h, weights.r[g]], "hr", trans_b=1)
    bias = ctx.temp("Add", [weights.wb[g], weights.rb[g]], "bias")
    return ctx.temp("Add", [ctx.temp("Add", [xw, hr], "sum"), bias], "gate")


def _rnn_step(ctx: ExportContext, weights: _Direction, x: str, h: str) -> str:
    return ctx.temp("Tanh", [_gate(ctx, weights, 0, x, h)], "h")


def _gru_step(
    ctx: ExportContext, weights: _Direction, x: str, h: str, lbr: int, dtype: np.dtype
) -> str:
    z = ctx.temp("Sigmoid", [_gate(ctx, weights, 0, x, h)], "z")
    r = ctx.temp("Sigmoid", [_gate(ctx, weights, 1, x, h)], "r")
    xw = ctx.temp("Add", [ctx.temp("MatMul", [x, weights.w[2]], "xw", trans_b=1), weights.wb[2]])
    if lbr:
        hr = ctx.temp("Add", [ctx.temp("MatMul", [h, weights.r[2]], "hr", trans_b=1),
                              weights.rb[2]], "hr")  # fmt: skip
        candidate = ctx.temp("Add", [xw, ctx.temp("Mul", [r, hr], "reset")], "candidate")
    else:
        reset = ctx.temp("Mul", [r, h], "reset")
        hr = ctx.temp("MatMul", [reset, weights.r[2]], "hr", trans_b=1)
        candidate = ctx.temp("Add", [xw, ctx.temp("Add", [hr, weights.rb[2]])], "candidate")
    candidate = ctx.temp("Tanh", [candidate], "candidate")
    keep = ctx.temp("Sub", [ctx.make_constant(np.ones((), dtype=dtype), "one"), z], "keep")
    new = ctx.temp("Mul", [keep, candidate], "new")
    return ctx.temp("Add", [new, ctx.temp("Mul", [z, h], "old")], "h")


def _lstm_step(ctx: ExportContext, weights: _Direction, x: str, h: str, c: str) -> tuple[str, str]:
    # ONNX's gate order is input, output, forget, cell; peepholes are input, output, forget.
    pre = [_gate(ctx, weights, g, x, h) for g in range(4)]
    if weights.peepholes:
        p_i, p_o, p_f = weights.peepholes
        pre[0] = ctx.temp("Add", [pre[0], ctx.temp("Mul", [p_i, c], "peep")], "gate")
        pre[2] = ctx.temp("Add", [pre[2], ctx.temp("Mul", [p_f, c], "peep")], "gate")
    i = ctx.temp("Sigmoid", [pre[0]], "i")
    f = ctx.temp("Sigmoid", [pre[2]], "f")
    candidate = ctx.temp("Tanh", [pre[3]], "candidate")
    c_new = ctx.temp("Add", [ctx.temp("Mul", [f, c], "kept"),
                             ctx.temp("Mul", [i, candidate], "added")], "c")  # fmt: skip
    if weights.peepholes:
        pre[1] = ctx.temp("Add", [pre[1], ctx.temp("Mul", [weights.peepholes[1], c_new])])
    o = ctx.temp("Sigmoid", [pre[1]], "o")
    return ctx.temp("Mul", [o, ctx.temp("Tanh", [c_new])], "h"), c_new


def _initial(node: ir.Node, ctx: ExportContext, index: int, d: int, zeros: str) -> str:
    if not ctx.has_input(index):
        return zeros
    # initial_h and initial_c are [directions, batch, hidden], or [batch, directions, hidden].
    return _pick(ctx, ctx.input(index), d, axis=attr_int(node, "layout", 0))


def _stack(ctx: ExportContext, blobs: list[str], axis: int) -> str:
    columns = [ctx.temp("ExpandDims", [b], "column", dims=[axis]) for b in blobs]
    out = ctx.fresh("stacked")
    ctx.emit("Concat", columns, [out, ctx.fresh("split_info")], axis=axis)
    return out


def _unrolled(node: ir.Node, ctx: ExportContext) -> None:
    kind = node.op_type
    direction = attr_str(node, "direction", "forward")
    names = {"forward": ["forward"], "reverse": ["reverse"],
             "bidirectional": ["forward", "reverse"]}.get(direction)  # fmt: skip
    if names is None:
        raise ctx.error(f"direction={direction!r} is not an ONNX direction")
    _check_attributes(node, ctx, len(names))
    layout = attr_int(node, "layout", 0)
    x_value = required(ctx, node, 0)
    shape = ctx.need_shape(x_value, "to unroll the sequence")
    steps, batch = (shape[1], shape[0]) if layout else (shape[0], shape[1])
    hidden = attr_int(node, "hidden_size", 0) or ctx.need_shape(node.inputs[2], "")[-1]
    dtype = (ctx.dtype(x_value) or ir.DataType.FLOAT).numpy()
    x = ctx.blob(x_value)
    if layout:
        x = ctx.temp("Transpose", [x], "time_major", axes=[1, 0, 2])
    lengths = ""
    if ctx.has_input(4):
        if "reverse" in names:
            raise ctx.error("a reverse direction with sequence_lens is not exported")
        lengths = ctx.temp("Cast", [ctx.input(4)], "lengths", to=caffe2_dtype(ir.DataType.INT64))
    zeros = ctx.make_constant(np.zeros((batch, hidden), dtype=dtype), "zeros")
    outputs, finals, cells = [], [], []
    for d, name in enumerate(names):
        weights = _direction(node, ctx, d, _GATES[kind], hidden, dtype)
        h, c = _initial(node, ctx, 5, d, zeros), _initial(node, ctx, 6, d, zeros)
        ys: dict[int, str] = {}
        order = range(steps) if name == "forward" else range(steps - 1, -1, -1)
        for t in order:
            x_t = _pick(ctx, x, t)
            c_new = c
            if kind == "RNN":
                h_new = _rnn_step(ctx, weights, x_t, h)
            elif kind == "GRU":
                lbr = attr_int(node, "linear_before_reset", 0)
                h_new = _gru_step(ctx, weights, x_t, h, lbr, dtype)
            else:
                h_new, c_new = _lstm_step(ctx, weights, x_t, h, c)
            if lengths:
                running = ctx.temp("LT", [runtime.const64(ctx, t), lengths], "running")
                column = ctx.temp("ExpandDims", [running], "running", dims=[1])
                mask = runtime.like_flag(ctx, column, h_new)
                ys[t] = ctx.temp("Where", [mask, h_new, zeros], "y")
                h = ctx.temp("Where", [mask, h_new, h], "h")
                c = ctx.temp("Where", [mask, c_new, c], "c") if kind == "LSTM" else c
            else:
                ys[t], h, c = h_new, h_new, c_new
        outputs.append(_stack(ctx, [ys[t] for t in range(steps)], 0))
        finals.append(h)
        cells.append(c)
    results = [_stack(ctx, outputs, 1), _stack(ctx, finals, 0), _stack(ctx, cells, 0)]
    perms = ([2, 0, 1, 3], [1, 0, 2], [1, 0, 2])
    for index, (blob, perm) in enumerate(zip(results, perms, strict=True)):
        if not _present(node, index) or (index == 2 and kind != "LSTM"):
            continue
        if layout:
            ctx.emit("Transpose", [blob], [ctx.output(node, index)], axes=perm)
        else:
            ctx.emit("Copy", [blob], [ctx.output(node, index)])


@ops.register("RNN", since=7)
def rnn_v7(node: ir.Node, ctx: ExportContext) -> None:
    _unrolled(node, ctx)


@ops.register("GRU", since=7)
def gru_v7(node: ir.Node, ctx: ExportContext) -> None:
    _unrolled(node, ctx)


@ops.register("LSTM", since=7)
def lstm_v7(node: ir.Node, ctx: ExportContext) -> None:
    _unrolled(node, ctx)
