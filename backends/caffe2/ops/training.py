"""ai.onnx.preview.training optimizers (Adagrad, Momentum, Adam) as Caffe2 elementwise math.

Inputs are R (learning rate), T (step), then the tensors grouped by kind (X..., G..., state...);
outputs are the new X... then the new state tensors, as the ONNX schemas lay them out.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.ops._common import attr_float, attr_str
from unframe.backends.caffe2.registry import ops

DOMAIN = "ai.onnx.preview.training"


def _groups(node: ir.Node, ctx: ExportContext, kinds: int) -> list[list[str]]:
    tensors = [ctx.input(i) for i in range(2, len(node.inputs))]
    count = len(tensors) // kinds
    if count * kinds != len(tensors):
        raise ctx.error(f"expects R, T and {kinds} groups of equally many tensors")
    return [tensors[k * count : (k + 1) * count] for k in range(kinds)]


def _step(ctx: ExportContext, node: ir.Node) -> str:
    return ctx.temp("Cast", [ctx.input(1)], "t", to=caffe2_dtype(ir.DataType.FLOAT))


def _scaled(ctx: ExportContext, blob: str, factor: float) -> str:
    return ctx.temp("Scale", [blob], "scaled", scale=factor)


def _regularized(ctx: ExportContext, x: str, g: str, norm: float) -> str:
    return ctx.temp("Add", [_scaled(ctx, x, norm), g], "g_reg")


@ops.register("Adagrad", since=1, domain=DOMAIN)
def adagrad_v1(node: ir.Node, ctx: ExportContext) -> None:
    xs, gs, hs = _groups(node, ctx, 3)
    decay, epsilon = attr_float(node, "decay_factor", 0.0), attr_float(node, "epsilon", 0.0)
    norm = attr_float(node, "norm_coefficient", 0.0)
    t = _step(ctx, node)
    denominator = ctx.temp("Add", [ctx.scalar(1.0, ir.DataType.FLOAT), _scaled(ctx, t, decay)])
    rate = ctx.temp("Div", [ctx.input(0), denominator], "rate")
    for i, (x, g, h) in enumerate(zip(xs, gs, hs, strict=True)):
        g_reg = _regularized(ctx, x, g, norm)
        h_new = ctx.output(node, len(xs) + i)
        ctx.emit("Add", [h, ctx.temp("Sqr", [g_reg])], [h_new])
        root = ctx.temp("Add", [ctx.temp("Sqrt", [h_new]), ctx.scalar(epsilon, ir.DataType.FLOAT)])
        step = ctx.temp("Div", [ctx.temp("Mul", [rate, g_reg]), root], "step")
        ctx.emit("Sub", [x, step], [ctx.output(node, i)])


def _after_first(ctx: ExportContext, node: ir.Node, then: str, first: str) -> str:
    """``then`` where T > 0, else ``first`` (both scalars)."""
    positive = ctx.temp("GT", [ctx.input(1), ctx.make_constant(np.array(0, np.int64), "zero")])
    return ctx.temp("Where", [positive, then, first], "chosen")


@ops.register("Momentum", since=1, domain=DOMAIN)
def momentum_v1(node: ir.Node, ctx: ExportContext) -> None:
    xs, gs, vs = _groups(node, ctx, 3)
    alpha, beta = attr_float(node, "alpha", 0.0), attr_float(node, "beta", 0.0)
    norm = attr_float(node, "norm_coefficient", 0.0)
    mode = attr_str(node, "mode", "standard")
    if mode not in ("standard", "nesterov"):
        raise ctx.error(f"mode={mode!r} is not an ONNX momentum mode")
    f32 = ir.DataType.FLOAT
    beta_now = _after_first(ctx, node, ctx.scalar(beta, f32), ctx.scalar(1.0, f32))
    for i, (x, g, v) in enumerate(zip(xs, gs, vs, strict=True)):
        g_reg = _regularized(ctx, x, g, norm)
        v_new = ctx.output(node, len(xs) + i)
        ctx.emit("Add", [_scaled(ctx, v, alpha), ctx.temp("Mul", [beta_now, g_reg])], [v_new])
        direction = v_new
        if mode == "nesterov":
            direction = ctx.temp("Add", [g_reg, _scaled(ctx, v_new, alpha)], "direction")
        step = ctx.temp("Mul", [ctx.input(0), direction], "step")
        ctx.emit("Sub", [x, step], [ctx.output(node, i)])


@ops.register("Adam", since=1, domain=DOMAIN)
def adam_v1(node: ir.Node, ctx: ExportContext) -> None:
    xs, gs, vs, hs = _groups(node, ctx, 4)
    alpha, beta = attr_float(node, "alpha", 0.9), attr_float(node, "beta", 0.999)
    epsilon = attr_float(node, "epsilon", 1e-6)
    norm = attr_float(node, "norm_coefficient", 0.0)
    post = attr_float(node, "norm_coefficient_post", 0.0)
    f32 = ir.DataType.FLOAT
    t, one, rate = _step(ctx, node), ctx.scalar(1.0, f32), ctx.input(0)
    # With bias correction after the first step: r * sqrt(1 - beta^t) / (1 - alpha^t).
    beta_t = ctx.temp("Pow", [ctx.scalar(beta, f32), t], "beta_t")
    alpha_t = ctx.temp("Pow", [ctx.scalar(alpha, f32), t], "alpha_t")
    corrected = ctx.temp("Mul", [rate, ctx.temp("Sqrt", [ctx.temp("Sub", [one, beta_t])])])
    corrected = ctx.temp("Div", [corrected, ctx.temp("Sub", [one, alpha_t])], "corrected")
    rate = _after_first(ctx, node, corrected, rate)
    count = len(xs)
    for i, (x, g, v, h) in enumerate(zip(xs, gs, vs, hs, strict=True)):
        g_reg = _regularized(ctx, x, g, norm)
        v_new, h_new = ctx.output(node, count + i), ctx.output(node, 2 * count + i)
        ctx.emit("Add", [_scaled(ctx, v, alpha), _scaled(ctx, g_reg, 1.0 - alpha)], [v_new])
        squared = _scaled(ctx, ctx.temp("Sqr", [g_reg]), 1.0 - beta)
        ctx.emit("Add", [_scaled(ctx, h, beta), squared], [h_new])
        root = ctx.temp("Add", [ctx.temp("Sqrt", [h_new]), ctx.scalar(epsilon, f32)], "root")
        moved = ctx.temp("Sub", [x, ctx.temp("Mul", [rate, ctx.temp("Div", [v_new, root])])])
        ctx.emit("Scale", [moved], [ctx.output(node, i)], scale=1.0 - post)
