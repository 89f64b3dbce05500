"""ai.onnx.preview.training's optimizers: Adagrad, Adam and Momentum, elementwise in MIL.

Each updates N tensors with one rate R and step count T (inputs R, T, then N of each operand);
the formulas and their order of operations are onnx's reference implementation's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.backends.coreml.context import ExportContext
from unframe.backends.coreml.ops._common import require_float
from unframe.backends.coreml.registry import ops

TRAINING_DOMAIN = "ai.onnx.preview.training"


def _groups(ctx: ExportContext, operands: int) -> list[list[Any]]:
    """The N tensors of each operand (inputs after R and T, operand by operand)."""
    count = len(ctx.node.inputs) - 2
    if count <= 0 or count % operands:
        raise ctx.error(f"{count} tensors after R and T: expected {operands} per updated tensor")
    for index in range(2, 2 + count):
        require_float(ctx, ctx.node.op_type, index)
    n = count // operands
    return [[ctx.input(2 + k * n + i) for k in range(operands)] for i in range(n)]


def _step(ctx: ExportContext) -> Any:
    """T as float32 (the step count; int64 in ONNX)."""
    return ctx.mb.cast(x=ctx.input(1), dtype="fp32")


def _regularized(ctx: ExportContext, x: Any, g: Any) -> Any:
    return ctx.mb.add(x=ctx.mb.mul(x=np.float32(ctx.attr("norm_coefficient", 0.0)), y=x), y=g)


@ops.register("Adagrad", since=1, domain=TRAINING_DOMAIN)
def adagrad_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mb = ctx.mb
    decay, epsilon = np.float32(ctx.attr("decay_factor", 0.0)), np.float32(ctx.attr("epsilon", 0.0))
    groups = _groups(ctx, 3)
    rate = mb.real_div(x=ctx.input(0), y=mb.add(x=np.float32(1), y=mb.mul(x=_step(ctx), y=decay)))
    xs, hs = [], []
    for x, g, h in groups:
        g_reg = _regularized(ctx, x, g)
        h_new = mb.add(x=h, y=mb.mul(x=g_reg, y=g_reg))
        scale = mb.add(x=mb.sqrt(x=h_new), y=epsilon)
        xs.append(mb.sub(x=x, y=mb.real_div(x=mb.mul(x=rate, y=g_reg), y=scale)))
        hs.append(h_new)
    return xs + hs


@ops.register("Adam", since=1, domain=TRAINING_DOMAIN)
def adam_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mb = ctx.mb
    alpha, beta = float(ctx.attr("alpha", 0.9)), float(ctx.attr("beta", 0.999))
    epsilon = np.float32(ctx.attr("epsilon", 0.0))
    post = np.float32(ctx.attr("norm_coefficient_post", 0.0))
    groups = _groups(ctx, 4)
    step = _step(ctx)
    # Bias correction r * sqrt(1 - beta^T) / (1 - alpha^T) only after the first step (T > 0).
    corrected = mb.real_div(
        x=mb.mul(
            x=ctx.input(0),
            y=mb.sqrt(x=mb.sub(x=np.float32(1), y=mb.pow(x=np.float32(beta), y=step))),
        ),
        y=mb.sub(x=np.float32(1), y=mb.pow(x=np.float32(alpha), y=step)),
    )
    rate = mb.select(cond=mb.greater(x=step, y=np.float32(0)), a=corrected, b=ctx.input(0))
    xs, vs, hs = [], [], []
    for x, g, v, h in groups:
        g_reg = _regularized(ctx, x, g)
        v_new = mb.add(
            x=mb.mul(x=np.float32(alpha), y=v), y=mb.mul(x=np.float32(1 - alpha), y=g_reg)
        )
        h_new = mb.add(
            x=mb.mul(x=np.float32(beta), y=h),
            y=mb.mul(x=np.float32(1 - beta), y=mb.mul(x=g_reg, y=g_reg)),
        )
        scale = mb.add(x=mb.sqrt(x=h_new), y=epsilon)
        x_new = mb.sub(x=x, y=mb.mul(x=rate, y=mb.real_div(x=v_new, y=scale)))
        xs.append(mb.mul(x=np.float32(1) - post, y=x_new) if post else x_new)
        vs.append(v_new)
        hs.append(h_new)
    return xs + vs + hs


@ops.register("Momentum", since=1, domain=TRAINING_DOMAIN)
def momentum_v1(node: ir.Node, ctx: ExportContext) -> Sequence[Any]:
    mb = ctx.mb
    alpha, beta = np.float32(ctx.attr("alpha")), np.float32(ctx.attr("beta"))
    mode = ctx.attr("mode")
    if mode not in ("standard", "nesterov"):
        raise ctx.error(f"mode={mode!r}: ONNX's Momentum is standard or nesterov")
    groups = _groups(ctx, 3)
    # The gradient's coefficient is 1 at the first step (T = 0), beta after.
    beta_now = mb.select(cond=mb.greater(x=_step(ctx), y=np.float32(0)), a=beta, b=np.float32(1))
    xs, vs = [], []
    for x, g, v in groups:
        g_reg = _regularized(ctx, x, g)
        v_new = mb.add(x=mb.mul(x=alpha, y=v), y=mb.mul(x=beta_now, y=g_reg))
        direction = v_new if mode == "standard" else mb.add(x=g_reg, y=mb.mul(x=alpha, y=v_new))
        xs.append(mb.sub(x=x, y=mb.mul(x=ctx.input(0), y=direction)))
        vs.append(v_new)
    return xs + vs
