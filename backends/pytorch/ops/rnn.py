"""LSTM, GRU and RNN with ONNX's gate layouts (LSTM iofc, GRU zrh), directions, sequence_lens,
peepholes, clip, custom activations and both layouts.

Nodes torch's recurrent kernels compute exactly go to them (``_recurrence.fused_rnn``); the rest
step through time with the cells below. Under ``torch.export`` both are a ``scan`` over time, so
the sequence axis stays symbolic in ``.pt2``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch
from unframe.backends.pytorch.ops._recurrence import State, fused_rnn, recur

F = torch.nn.functional
Activation = Callable[[torch.Tensor], torch.Tensor]


def _activation(name: str, alpha: float | None, beta: float | None) -> Activation:
    kind = name.lower()
    if kind == "sigmoid":
        return torch.sigmoid
    if kind == "tanh":
        return torch.tanh
    if kind == "relu":
        return torch.relu
    if kind == "affine":
        return lambda x: (1.0 if alpha is None else alpha) * x + (0.0 if beta is None else beta)
    if kind == "leakyrelu":
        return lambda x: F.leaky_relu(x, 0.01 if alpha is None else alpha)
    if kind == "thresholdedrelu":
        return lambda x: torch.where(x > (1.0 if alpha is None else alpha), x, torch.zeros_like(x))
    if kind == "scaledtanh":
        return lambda x: (
            (1.0 if alpha is None else alpha) * torch.tanh((1.0 if beta is None else beta) * x)
        )
    if kind == "hardsigmoid":
        a, b = (0.2 if alpha is None else alpha), (0.5 if beta is None else beta)
        return lambda x: torch.clamp(a * x + b, 0, 1)
    if kind == "elu":
        return lambda x: F.elu(x, 1.0 if alpha is None else alpha)
    if kind == "softsign":
        return F.softsign
    if kind == "softplus":
        return F.softplus
    raise ValueError(f"unknown RNN activation {name!r}")


def _activations(
    spec: dict[str, Any], per_direction: int, directions: int
) -> list[list[Activation]]:
    names = spec["activations"] or spec["default"] * directions
    alphas, betas = spec["alpha"] or [], spec["beta"] or []
    functions = [
        _activation(n, alphas[i] if i < len(alphas) else None, betas[i] if i < len(betas) else None)
        for i, n in enumerate(names)
    ]
    if len(functions) == per_direction and directions == 2:
        functions = functions * 2
    return [functions[d * per_direction : (d + 1) * per_direction] for d in range(directions)]


def _clip(x: torch.Tensor, clip: float | None) -> torch.Tensor:
    return x if clip is None else x.clamp(-clip, clip)


def _lstm_cell(
    spec: dict[str, Any],
    functions: list[Activation],
    weights: State,
    state: State,
    xw: torch.Tensor,
) -> State:
    """One LSTM step (gates iofc); ``weights`` is (R, R's bias[, peepholes]) of one direction."""
    f, g, h_fun = functions
    rd, rb = weights[:2]
    h, c = state
    clip = spec["clip"]
    i_g, o_g, f_g, c_g = (xw + torch.matmul(h, rd.t()) + rb).chunk(4, dim=1)
    if len(weights) == 3:
        p_i, p_o, p_f = weights[2].chunk(3)
        i_g, f_g = i_g + p_i * c, f_g + p_f * c
    # clip bounds each activation's input, so it comes after the peephole terms
    i_t = f(_clip(i_g, clip))
    f_t = 1 - i_t if spec["input_forget"] else f(_clip(f_g, clip))
    c_new = f_t * c + i_t * g(_clip(c_g, clip))
    if len(weights) == 3:
        o_g = o_g + p_o * c_new
    return f(_clip(o_g, clip)) * h_fun(c_new), c_new


def _gru_cell(
    spec: dict[str, Any],
    functions: list[Activation],
    weights: State,
    state: State,
    xw: torch.Tensor,
) -> State:
    """One GRU step (gates zrh); ``weights`` is (R, R's bias) of one direction."""
    f, g = functions[:2]
    (h,) = state
    xz, xr, xh = xw.chunk(3, dim=1)
    rz, rr, rh = weights[0].chunk(3, dim=0)
    bz, br, bh = weights[1].chunk(3)
    z = f(_clip(xz + torch.matmul(h, rz.t()) + bz, spec["clip"]))
    r_t = f(_clip(xr + torch.matmul(h, rr.t()) + br, spec["clip"]))
    if spec["linear_before_reset"]:
        cand = xh + r_t * (torch.matmul(h, rh.t()) + bh)
    else:
        cand = xh + torch.matmul(r_t * h, rh.t()) + bh
    return ((1 - z) * g(_clip(cand, spec["clip"])) + z * h,)


def _rnn_cell(
    spec: dict[str, Any],
    functions: list[Activation],
    weights: State,
    state: State,
    xw: torch.Tensor,
) -> State:
    """One plain RNN step; ``weights`` is (R, R's bias) of one direction."""
    (h,) = state
    return (functions[0](_clip(xw + torch.matmul(h, weights[0].t()) + weights[1], spec["clip"])),)


_CELLS = {"lstm": _lstm_cell, "gru": _gru_cell, "rnn": _rnn_cell}


def _run(
    kind: str,
    x: torch.Tensor,
    w: torch.Tensor,
    r: torch.Tensor,
    b: torch.Tensor | None,
    seq_lens: torch.Tensor | None,
    h0: torch.Tensor | None,
    c0: torch.Tensor | None,
    peep: torch.Tensor | None,
    spec: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ONNX's (Y, Y_h, Y_c) of any LSTM/GRU/RNN node, one cell step per time index."""
    layout = spec["layout"]
    if layout == 1:
        x = x.transpose(0, 1)
        h0 = h0.transpose(0, 1) if h0 is not None else None
        c0 = c0.transpose(0, 1) if c0 is not None else None
    steps, batch = x.shape[0], x.shape[1]
    hidden = spec["hidden"]
    directions = w.shape[0]
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    per_direction = {"lstm": 3, "gru": 2, "rnn": 1}[kind]
    acts = _activations(spec, per_direction, directions)
    active = None
    if seq_lens is not None:
        time_index = torch.arange(steps, device=x.device).unsqueeze(1)
        # (reshaped to X's batch: under torch.export its size is another symbol, equal to it)
        lengths = seq_lens.long().reshape(1, batch, 1)
        active = time_index.unsqueeze(2) < lengths  # [seq, batch, 1]
    reverse = [spec["direction"] == "reverse"] if directions == 1 else [False, True]
    ys, hs, cs = [], [], []
    for d in range(directions):
        bias = b[d] if b is not None else x.new_zeros(2 * gates * hidden)
        weights: State = (r[d], bias[gates * hidden :])
        if kind == "lstm" and peep is not None:
            weights += (peep[d],)
        zeros = x.new_zeros((batch, hidden))
        state: State = (h0[d] if h0 is not None else zeros,)
        if kind == "lstm":
            state += (c0[d] if c0 is not None else zeros,)
        functions = (acts[d] + [acts[d][-1]] * 3)[:per_direction]
        cell = functools.partial(_CELLS[kind], spec, functions)
        projected = torch.matmul(x, w[d].t()) + bias[: gates * hidden]  # all steps at once
        y, final = recur(cell, weights, state, projected, active, reverse[d])
        ys.append(y)
        hs.append(final[0])
        cs.append(final[-1])
    y = torch.stack(ys, dim=1)  # [seq, dirs, batch, hidden]
    y_h, y_c = torch.stack(hs), torch.stack(cs)
    if layout == 1:
        y = y.permute(2, 0, 1, 3)
        y_h, y_c = y_h.transpose(0, 1), y_c.transpose(0, 1)
    return y, y_h, y_c


def _spec(ctx: BuildContext, default: list[str]) -> dict[str, Any]:
    return {
        "hidden": ctx.attr_int("hidden_size"),
        "direction": ctx.attr_str("direction", "forward"),
        "activations": ctx.attr("activations", None),
        "alpha": ctx.attr_floats("activation_alpha", None),
        "beta": ctx.attr_floats("activation_beta", None),
        "clip": ctx.attr("clip", None),
        "layout": ctx.attr_int("layout", 0),
        "input_forget": ctx.attr_int("input_forget", 0),
        "linear_before_reset": ctx.attr_int("linear_before_reset", 0),
        "default": default,
    }


def _fused_kind(ctx: BuildContext, kind: str, spec: dict[str, Any]) -> str | None:
    """The ``fused_rnn`` kind that computes this node exactly, or None (the loop runs it)."""
    if ctx.has_input(4) or spec["clip"] is not None:  # sequence_lens, clip
        return None
    if kind == "lstm" and (ctx.has_input(7) or spec["input_forget"]):  # peepholes, coupled gates
        return None
    # torch's GRU applies the reset gate after the recurrent matmul: linear_before_reset=1.
    if kind == "gru" and not spec["linear_before_reset"]:
        return None
    names = [n.lower() for n in spec["activations"] or spec["default"]]
    per_direction = len(spec["default"])
    if len(names) not in (per_direction, 2 * per_direction):
        return None
    functions = names[:per_direction]
    if names[per_direction:] not in ([], functions):
        return None  # torch runs both directions with the same functions
    if kind == "rnn" and functions in (["tanh"], ["relu"]):
        return f"rnn_{functions[0]}"
    return kind if functions == [n.lower() for n in spec["default"]] else None


def _rnn_node(ctx: BuildContext, kind: str, default: list[str]) -> Outputs:
    lstm = kind == "lstm"
    spec = _spec(ctx, default)
    fused = _fused_kind(ctx, kind, spec)
    if fused is not None:
        out = ctx.call(
            fused_rnn,
            fused,
            ctx.input(0),
            ctx.input(1),
            ctx.input(2),
            ctx.optional_input(3),
            ctx.optional_input(5),
            ctx.optional_input(6) if lstm else None,
            spec["hidden"],
            spec["direction"] == "reverse",
            spec["layout"],
        )
        return ctx.unpack(out, 3 if lstm else 2)[: len(ctx.node.outputs)]
    out = ctx.call(
        _run,
        kind,
        ctx.input(0),
        ctx.input(1),
        ctx.input(2),
        ctx.optional_input(3),
        ctx.optional_input(4),
        ctx.optional_input(5),
        ctx.optional_input(6) if lstm else None,
        ctx.optional_input(7) if lstm else None,
        spec,
    )
    return ctx.unpack(out, 3)[: len(ctx.node.outputs)]


@ops.register("LSTM", since=7)
def lstm_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _rnn_node(ctx, "lstm", ["Sigmoid", "Tanh", "Tanh"])


@ops.register("GRU", since=7)
def gru_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _rnn_node(ctx, "gru", ["Sigmoid", "Tanh"])


@ops.register("RNN", since=7)
def rnn_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _rnn_node(ctx, "rnn", ["Tanh"])
