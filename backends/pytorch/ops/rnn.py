"""LSTM, GRU and RNN with ONNX's gate layouts (LSTM iofc, GRU zrh), directions, sequence_lens,
peepholes, clip, custom activations and both layouts.

Nodes torch's recurrent kernels compute exactly go to them (``_rnn_fused``), which keeps the
sequence axis symbolic in ``torch.export``; the rest take one step per time index in a Python loop,
which ``torch.export`` unrolls to the example's length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch
from unframe.backends.pytorch.ops._rnn_fused import fused_rnn

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
    lengths = (
        seq_lens.long() if seq_lens is not None else torch.full((batch,), steps, dtype=torch.long)
    )
    reverse = [spec["direction"] == "reverse"] if directions == 1 else [False, True]
    ys, hs, cs = [], [], []
    for d in range(directions):
        wd, rd = w[d], r[d]
        bias = b[d] if b is not None else torch.zeros(2 * gates * hidden, dtype=x.dtype)
        wb, rb = bias[: gates * hidden], bias[gates * hidden :]
        h = h0[d] if h0 is not None else torch.zeros((batch, hidden), dtype=x.dtype)
        c = c0[d] if c0 is not None else torch.zeros((batch, hidden), dtype=x.dtype)
        outputs: list[torch.Tensor] = [torch.zeros((batch, hidden), dtype=x.dtype)] * steps
        order = range(steps - 1, -1, -1) if reverse[d] else range(steps)
        projected = torch.matmul(x, wd.t()) + wb  # all time steps at once
        f, g, hfun = (acts[d] + [acts[d][-1]] * 3)[:3]
        for t in order:
            active = (t < lengths).reshape(batch, 1)
            xw = projected[t]
            if kind == "lstm":
                pre = _clip(xw + torch.matmul(h, rd.t()) + rb, spec["clip"])
                i_g, o_g, f_g, c_g = pre.chunk(4, dim=1)
                if peep is not None:
                    p_i, p_o, p_f = peep[d].chunk(3)
                    i_g, f_g = i_g + p_i * c, f_g + p_f * c
                i_t = f(i_g)
                f_t = 1 - i_t if spec["input_forget"] else f(f_g)
                c_new = f_t * c + i_t * g(c_g)
                if peep is not None:
                    o_g = o_g + p_o * c_new
                h_new = f(o_g) * hfun(c_new)
                c = torch.where(active, c_new, c)
            elif kind == "gru":
                xz, xr, xh = xw.chunk(3, dim=1)
                rz, rr, rh = rd.chunk(3, dim=0)
                bz, br, bh = rb.chunk(3)
                z = f(_clip(xz + torch.matmul(h, rz.t()) + bz, spec["clip"]))
                r_t = f(_clip(xr + torch.matmul(h, rr.t()) + br, spec["clip"]))
                if spec["linear_before_reset"]:
                    cand = xh + r_t * (torch.matmul(h, rh.t()) + bh)
                else:
                    cand = xh + torch.matmul(r_t * h, rh.t()) + bh
                h_new = (1 - z) * g(_clip(cand, spec["clip"])) + z * h
            else:
                h_new = f(_clip(xw + torch.matmul(h, rd.t()) + rb, spec["clip"]))
            h = torch.where(active, h_new, h)
            outputs[t] = torch.where(active, h_new, torch.zeros_like(h_new))
        ys.append(torch.stack(outputs) if steps else x.new_zeros((0, batch, hidden)))
        hs.append(h)
        cs.append(c)
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
