"""ai.onnx.preview.training optimizers: Adagrad, Adam, Momentum (one update per call).

Inputs are ``R, T, X1..Xn, G1..Gn, <state>1..n``; computed in float64 as onnx's reference does.
"""

from __future__ import annotations

import math
from typing import Any

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch

_DOMAIN = "ai.onnx.preview.training"


def _adagrad(
    r: torch.Tensor, t: torch.Tensor, *rest: torch.Tensor, n: int, cfg: dict[str, Any]
) -> tuple[torch.Tensor, ...]:
    xs, gs, hs = rest[:n], rest[n : 2 * n], rest[2 * n :]
    rate = r.double() / (1 + t.double() * cfg["decay_factor"])
    new_x, new_h = [], []
    for x, g, h in zip(xs, gs, hs, strict=True):
        reg = cfg["norm_coefficient"] * x.double() + g.double()
        h_new = h.double() + reg * reg
        x_new = x.double() - rate * reg / (torch.sqrt(h_new) + cfg["epsilon"])
        new_x.append(x_new.to(x.dtype))
        new_h.append(h_new.to(h.dtype))
    return (*new_x, *new_h)


def _adam(
    r: torch.Tensor, t: torch.Tensor, *rest: torch.Tensor, n: int, cfg: dict[str, Any]
) -> tuple[torch.Tensor, ...]:
    xs, gs, vs, hs = rest[:n], rest[n : 2 * n], rest[2 * n : 3 * n], rest[3 * n :]
    alpha, beta = cfg["alpha"], cfg["beta"]
    step = int(t)
    rate = float(r)
    if step > 0:
        rate = rate * math.sqrt(1 - beta**step) / (1 - alpha**step)
    outs: list[list[torch.Tensor]] = [[], [], []]
    for x, g, v, h in zip(xs, gs, vs, hs, strict=True):
        reg = cfg["norm_coefficient"] * x.double() + g.double()
        v_new = alpha * v.double() + (1 - alpha) * reg
        h_new = beta * h.double() + (1 - beta) * reg * reg
        x_new = x.double() - rate * (v_new / (torch.sqrt(h_new) + cfg["epsilon"]))
        x_new = (1 - cfg["norm_coefficient_post"]) * x_new
        outs[0].append(x_new.to(x.dtype))
        outs[1].append(v_new.to(v.dtype))
        outs[2].append(h_new.to(h.dtype))
    return (*outs[0], *outs[1], *outs[2])


def _momentum(
    r: torch.Tensor, t: torch.Tensor, *rest: torch.Tensor, n: int, cfg: dict[str, Any]
) -> tuple[torch.Tensor, ...]:
    xs, gs, vs = rest[:n], rest[n : 2 * n], rest[2 * n :]
    beta = cfg["beta"] if int(t) > 0 else 1.0
    new_x, new_v = [], []
    for x, g, v in zip(xs, gs, vs, strict=True):
        reg = cfg["norm_coefficient"] * x.double() + g.double()
        v_new = cfg["alpha"] * v.double() + beta * reg
        if cfg["mode"] == "nesterov":
            x_new = x.double() - r.double() * (reg + cfg["alpha"] * v_new)
        else:
            x_new = x.double() - r.double() * v_new
        new_x.append(x_new.to(x.dtype))
        new_v.append(v_new.to(v.dtype))
    return (*new_x, *new_v)


def _optimizer(ctx: BuildContext, function: Any, states: int, names: list[str]) -> Outputs:
    n = (ctx.num_inputs - 2) // (states + 1)
    cfg = {name: ctx.attr(name) for name in names}
    out = ctx.call(function, *(ctx.input(i) for i in range(ctx.num_inputs)), n=n, cfg=cfg)
    return ctx.unpack(out, len(ctx.node.outputs))


@ops.register("Adagrad", since=1, domain=_DOMAIN)
def adagrad_preview_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _optimizer(ctx, _adagrad, 2, ["norm_coefficient", "decay_factor", "epsilon"])


@ops.register("Adam", since=1, domain=_DOMAIN)
def adam_preview_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    names = ["alpha", "beta", "epsilon", "norm_coefficient", "norm_coefficient_post"]
    return _optimizer(ctx, _adam, 3, names)


@ops.register("Momentum", since=1, domain=_DOMAIN)
def momentum_preview_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _optimizer(ctx, _momentum, 2, ["alpha", "beta", "mode", "norm_coefficient"])
