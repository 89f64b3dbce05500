"""MIL recurrent ops: lstm as ONNX's LSTM, rnn as ONNX's RNN.

MIL orders the gates input, forget, output, cell (ONNX: input, output, forget, cell), adds one
bias per gate (ONNX two), and holds two directions side by side on the last axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.frontends.coreml.context import MilContext
from unframe.frontends.coreml.registry import IOS15, MIL_DOMAIN, ops

#: ONNX's gate blocks [i, o, f, c] taken from MIL's [i, f, o, z] (the swap is its own inverse).
_MIL_TO_ONNX_GATES = [0, 2, 1, 3]


def _gates(array: np.ndarray, hidden: int) -> np.ndarray:
    blocks = [array[k * hidden : (k + 1) * hidden] for k in range(4)]
    return np.concatenate([blocks[k] for k in _MIL_TO_ONNX_GATES], axis=0)


def _constant(ctx: MilContext, name: str) -> np.ndarray:
    value = ctx.const(name)
    if value is None:
        raise ctx.error(f"{name} computed at run time: ONNX's LSTM reads it as a tensor input")
    return np.asarray(value)


@ops.register("lstm", since=IOS15, domain=MIL_DOMAIN)
def lstm(op: Any, ctx: MilContext) -> list[ir.Value]:
    for key, default in (("recurrent_activation", "sigmoid"), ("cell_activation", "tanh"),
                         ("activation", "tanh")):  # fmt: skip
        if str(ctx.attr(key, default)) != default:
            raise ctx.error(f"{key}={ctx.attr(key)}: read for the default activations only")
    if ctx.has("peephole") or ctx.has("peephole_back"):
        raise ctx.error("peepholes")
    direction = str(ctx.attr("direction", "forward"))
    weight_ih = _constant(ctx, "weight_ih")
    hidden = weight_ih.shape[0] // 4
    suffixes = ["", "_back"] if direction == "bidirectional" else [""]
    dtype = weight_ih.dtype
    w, r, b = [], [], []
    for suffix in suffixes:
        w.append(_gates(_constant(ctx, f"weight_ih{suffix}"), hidden))
        r.append(_gates(_constant(ctx, f"weight_hh{suffix}"), hidden))
        bias = _constant(ctx, f"bias{suffix}") if ctx.has(f"bias{suffix}") else np.zeros(4 * hidden)
        b.append(np.concatenate([_gates(bias.astype(dtype), hidden), np.zeros(4 * hidden, dtype)]))
    directions = len(suffixes)

    def states(name: str) -> ir.Value:
        # (B, D*H) -> (B, D, H) -> (D, B, H)
        split = ctx.op1("Reshape", [ctx.value(name), ctx.ints([0, directions, hidden])])
        return ctx.op1("Transpose", [split], {"perm": [1, 0, 2]})

    inputs = [
        ctx.value("x"),
        ctx.make_constant(np.stack(w), "W"),
        ctx.make_constant(np.stack(r), "R"),
        ctx.make_constant(np.stack(b), "B"),
        None,
        states("initial_h"),
        states("initial_c"),
    ]
    attrs: dict[str, Any] = {"hidden_size": hidden, "direction": direction}
    if ctx.has("clip"):
        attrs["clip"] = float(ctx.attr("clip"))
    y, y_h, y_c = ctx.node("LSTM", inputs, attrs, num_outputs=3)

    def side_by_side(value: ir.Value, perm: list[int], shape: list[int]) -> ir.Value:
        moved = ctx.op1("Transpose", [value], {"perm": perm})
        return ctx.op1("Reshape", [moved, ctx.ints(shape)])

    last_h = side_by_side(y_h, [1, 0, 2], [0, directions * hidden])
    last_c = side_by_side(y_c, [1, 0, 2], [0, directions * hidden])
    if bool(ctx.attr("output_sequence", False)):
        sequence = side_by_side(y, [0, 2, 1, 3], [0, 0, directions * hidden])
    else:
        sequence = ctx.op1("Unsqueeze", [last_h, ctx.ints([0])])
    return [sequence, last_h, last_c]


#: MIL's rnn activations and ONNX's names for them.
_RNN_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}


@ops.register("rnn", since=IOS15, domain=MIL_DOMAIN)
def rnn(op: Any, ctx: MilContext) -> list[ir.Value]:
    """MIL's rnn as ONNX's RNN: one direction (B, H) states given their direction axis, the one
    bias as ONNX's input bias beside a zero recurrent bias; weights may be computed at run time."""
    activation = str(ctx.attr("activation", "tanh"))
    if activation not in _RNN_ACTIVATIONS:
        raise ctx.error(f"activation={activation}: read for tanh, relu and sigmoid")
    direction = str(ctx.attr("direction", "forward"))
    if direction not in ("forward", "reverse"):
        raise ctx.error(f"direction={direction}")
    hidden = int(ctx.shape("weight_hh")[0])
    axis0 = ctx.ints([0])
    w = ctx.op1("Unsqueeze", [ctx.value("weight_ih"), axis0])
    r = ctx.op1("Unsqueeze", [ctx.value("weight_hh"), axis0])
    bias = None
    if ctx.has("bias"):
        zeros = ctx.make_constant(np.zeros(hidden, ctx.dtype("bias")), "zeros")
        bias = ctx.op1(
            "Unsqueeze", [ctx.op1("Concat", [ctx.value("bias"), zeros], {"axis": 0}), axis0]
        )
    initial = ctx.op1("Unsqueeze", [ctx.value("initial_h"), axis0])
    attrs = {
        "hidden_size": hidden,
        "direction": direction,
        "activations": [_RNN_ACTIVATIONS[activation]],
    }
    y, y_h = ctx.node("RNN", [ctx.value("x"), w, r, bias, None, initial], attrs, num_outputs=2)
    last_h = ctx.op1("Squeeze", [y_h, axis0])
    if bool(ctx.attr("output_sequence", False)):
        sequence = ctx.op1("Squeeze", [y, ctx.ints([1])])
    else:
        sequence = y_h  # (1, B, H): the last state
    return [sequence, last_h]
