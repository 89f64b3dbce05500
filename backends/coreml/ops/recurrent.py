"""LSTM on MIL's lstm (constant weights, the default activations, no sequence lengths, no
peepholes); otherwise, and for GRU and RNN, the steps unrolled with ONNX's equations
(``_recurrence``).

ONNX orders an LSTM's gates input, output, forget, cell; MIL input, forget, output, cell. MIL
holds the two directions side by side on the last axis ((T, B, 2H), (B, 2H)) where ONNX gives
them an axis of their own ((T, 2, B, H), (2, B, H)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops import _recurrence
from unframe.backends.coreml.ops._common import require_float
from unframe.backends.coreml.registry import ops
from unframe.shared_ir.errors import ConversionError

#: MIL's gate blocks [i, f, o, z] taken from ONNX's [i, o, f, c].
_ONNX_TO_MIL_GATES = [0, 2, 1, 3]


def _gates(array: np.ndarray, hidden: int) -> np.ndarray:
    blocks = [array[k * hidden : (k + 1) * hidden] for k in range(4)]
    return np.concatenate([blocks[k] for k in _ONNX_TO_MIL_GATES], axis=0)


def _unrolled(ctx: ExportContext, kind: str) -> list[Any]:
    gates, names = {"RNN": (1, ["Tanh"]), "GRU": (3, ["Sigmoid", "Tanh"]),
                    "LSTM": (4, ["Sigmoid", "Tanh", "Tanh"])}[kind]  # fmt: skip
    require_float(ctx, kind)
    dtype = _recurrence.float_type(ctx.input(0))
    acts = _recurrence.activations(ctx, len(names), names, dtype)
    cell = _recurrence.Cell(kind, gates, int(ctx.attr("hidden_size")), acts)
    return _recurrence.run(ctx, cell)


@ops.register("RNN", since=7)
def rnn_v7(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _unrolled(ctx, "RNN")


@ops.register("GRU", since=7)
def gru_v7(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    return _unrolled(ctx, "GRU")


@ops.register("LSTM", since=7)
def lstm_v7(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    try:
        return _on_mil_lstm(ctx)
    except ConversionError:
        return _unrolled(ctx, "LSTM")  # nothing was built: MIL's lstm refused before building


def _on_mil_lstm(ctx: ExportContext) -> list[Any]:
    require_float(ctx, "LSTM")
    direction = str(ctx.attr("direction", "forward"))
    hidden = int(ctx.attr("hidden_size"))
    layout = int(ctx.attr("layout", 0))
    weights = [ctx.constant_input(i) for i in (1, 2)]
    if any(w is None for w in weights):
        raise ctx.error("weights computed at run time: Core ML's lstm takes constants")
    if ctx.has_input(4):
        raise ctx.error("sequence_lens: Core ML's lstm runs every sequence to the end")
    if ctx.has_input(7) or int(ctx.attr("input_forget", 0)):
        raise ctx.error("peepholes or input_forget=1")
    activations = ctx.attr("activations", None)
    if activations and [a.lower() for a in activations] != ["sigmoid", "tanh", "tanh"] * (
        len(activations) // 3
    ):
        raise ctx.error(f"activations {activations}: Core ML's lstm runs sigmoid, tanh, tanh here")
    if ctx.attr("activation_alpha", None) or ctx.attr("activation_beta", None):
        raise ctx.error("activation_alpha/beta")
    w, r = (np.asarray(a, np.float32) for a in weights)  # type: ignore[arg-type]
    directions = w.shape[0]
    bias = ctx.constant_input(3) if ctx.has_input(3) else np.zeros((directions, 8 * hidden))
    if bias is None:
        raise ctx.error("a bias computed at run time: Core ML's lstm takes a constant")
    mb = ctx.mb
    x = ctx.input(0)
    if layout:
        x = mb.transpose(x=x, perm=[1, 0, 2])

    def params(d: int) -> dict[str, Any]:
        b = np.asarray(bias[d], np.float32)
        return {
            "weight_ih": ctx.make_constant(_gates(w[d], hidden)),
            "weight_hh": ctx.make_constant(_gates(r[d], hidden)),
            "bias": ctx.make_constant(_gates(b[: 4 * hidden] + b[4 * hidden :], hidden)),
        }

    kwargs: dict[str, Any] = params(0)
    if direction == "bidirectional":
        back = params(1)
        kwargs.update(weight_ih_back=back["weight_ih"], weight_hh_back=back["weight_hh"])
        kwargs["bias_back"] = back["bias"]
    elif direction not in ("forward", "reverse"):
        raise ctx.error(f"direction={direction}")
    clip = ctx.attr("clip", None)
    if clip is not None:
        kwargs["clip"] = np.float32(clip)
    initial = [_initial_state(ctx, i, x, directions, hidden, layout) for i in (5, 6)]
    sequence, last_h, last_c = mb.lstm(
        x=x,
        initial_h=initial[0],
        initial_c=initial[1],
        direction=direction,
        output_sequence=True,
        **kwargs,
    )
    # (T, B, D*H) -> (T, D, B, H); (B, D*H) -> (D, B, H)
    y = _directions_apart(ctx, sequence, directions, axis=1)
    if layout:
        y = mb.transpose(x=y, perm=[2, 0, 1, 3])  # (B, T, D, H)
    states = []
    for state in (last_h, last_c):
        split = _directions_apart(ctx, state, directions, axis=0)
        states.append(mb.transpose(x=split, perm=[1, 0, 2]) if layout else split)
    return [y, *states]


def _initial_state(
    ctx: ExportContext, index: int, x: Any, directions: int, hidden: int, layout: int
) -> Any:
    """ONNX's (D, B, H) initial state (B first for layout 1) as MIL's (B, D*H); zeros if absent."""
    mb = ctx.mb
    if not ctx.has_input(index):
        shape = ctx.input_shape(0)
        batch_dim = None if shape is None else shape[0 if layout else 1]
        if batch_dim is not None:
            return ctx.make_constant(np.zeros((batch_dim, directions * hidden), np.float32))
        batch = mb.slice_by_size(x=mb.shape(x=x), begin=[1], size=[1])
        size = mb.concat(values=[batch, np.array([directions * hidden], np.int32)], axis=0)
        return mb.fill(shape=size, value=0.0)
    state = ctx.input(index)
    if not layout:
        state = mb.transpose(x=state, perm=[1, 0, 2])
    return mb.reshape(x=state, shape=[-1, directions * hidden])


def _directions_apart(ctx: ExportContext, var: Any, directions: int, axis: int) -> Any:
    """MIL's directions side by side on the last axis, each on its own new ``axis``."""
    mb = ctx.mb
    if directions == 1:
        return mb.expand_dims(x=var, axes=[axis])
    halves = mb.split(x=var, num_splits=directions, axis=-1)
    return mb.stack(values=list(halves), axis=axis)
