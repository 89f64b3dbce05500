"""Normalizations (LayerNorm, RMSNorm, GroupNorm, InstanceNorm, LRN, ...) and Dropout."""

from __future__ import annotations

from unframe.backends.pytorch.dtypes import to_torch_dtype
from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch

F = torch.nn.functional


def _layer_norm(
    x: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor | None,
    axis: int,
    eps: float,
    stash: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    axis = axis + x.dim() if axis < 0 else axis
    dims = list(range(axis, x.dim()))
    xs = x.to(stash)
    mean = xs.mean(dim=dims, keepdim=True)
    var = ((xs - mean) ** 2).mean(dim=dims, keepdim=True)
    inv_std = torch.rsqrt(var + eps)
    y = ((xs - mean) * inv_std).to(x.dtype) * scale
    if bias is not None:
        y = y + bias
    return y, mean, inv_std


@ops.register("LayerNormalization", since=17)
def layer_normalization_v17(node: ir.Node, ctx: BuildContext) -> Outputs:
    axis = ctx.attr_int("axis", -1)
    eps = ctx.attr_float("epsilon", 1e-5)
    stash = to_torch_dtype(ctx.attr_int("stash_type", 1))
    rank, scale_rank = ctx.input_rank(0), ctx.input_rank(1)
    simple = (
        not ctx.output_used(1)
        and not ctx.output_used(2)
        and rank is not None
        and scale_rank is not None
        and (axis == -1 or axis == rank - 1)
        and scale_rank == 1
        and (not ctx.has_input(2) or ctx.input_rank(2) == 1)
        and ctx.input_dtype(0) == stash
    )
    if simple:
        # torch's fused kernel for the common last-axis case.
        weight = ctx.input(1)
        shape = ctx.call(tuple, ctx.call(getattr, weight, "shape"))
        return [ctx.call(F.layer_norm, ctx.input(0), shape, weight, ctx.optional_input(2), eps)]
    out = ctx.call(_layer_norm, ctx.input(0), ctx.input(1), ctx.optional_input(2), axis, eps, stash)
    return ctx.unpack(out, 3)[: len(node.outputs)]


def _rms_norm(
    x: torch.Tensor, scale: torch.Tensor, axis: int, eps: float, stash: torch.dtype
) -> torch.Tensor:
    axis = axis + x.dim() if axis < 0 else axis
    xs = x.to(stash)
    ms = (xs * xs).mean(dim=list(range(axis, x.dim())), keepdim=True)
    return (xs * torch.rsqrt(ms + eps)).to(x.dtype) * scale


@ops.register("RMSNormalization", since=23)
def rms_normalization_v23(node: ir.Node, ctx: BuildContext) -> Outputs:
    stash = to_torch_dtype(ctx.attr_int("stash_type", 1))
    return [
        ctx.call(
            _rms_norm,
            ctx.input(0),
            ctx.input(1),
            ctx.attr_int("axis", -1),
            ctx.attr_float("epsilon", 1e-5),
            stash,
        )
    ]


def _group_norm(
    x: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    groups: int,
    eps: float,
    per_group_affine: bool,
    stash: torch.dtype,
) -> torch.Tensor:
    batch, channels = x.shape[0], x.shape[1]
    xs = x.to(stash).reshape(batch, groups, -1)
    mean = xs.mean(dim=-1, keepdim=True)
    var = ((xs - mean) ** 2).mean(dim=-1, keepdim=True)
    y = ((xs - mean) / torch.sqrt(var + eps)).reshape(x.shape).to(x.dtype)
    if per_group_affine:
        scale = scale.repeat_interleave(channels // groups)
        bias = bias.repeat_interleave(channels // groups)
    shape = [1, channels] + [1] * (x.dim() - 2)
    return y * scale.reshape(shape) + bias.reshape(shape)


def _group_normalization(ctx: BuildContext, per_group_affine: bool, stash: torch.dtype) -> Outputs:
    """Every version's inputs and attributes; ``per_group_affine`` and ``stash`` are what changed."""
    return [
        ctx.call(
            _group_norm,
            ctx.input(0),
            ctx.input(1),
            ctx.input(2),
            ctx.attr_int("num_groups"),
            ctx.attr_float("epsilon", 1e-5),
            per_group_affine,
            stash,
        )
    ]


@ops.register("GroupNormalization", since=18)
def group_normalization_v18(node: ir.Node, ctx: BuildContext) -> Outputs:
    # Opset 18: scale and bias hold one value per group, statistics in float32.
    return _group_normalization(ctx, True, torch.float32)


@ops.register("GroupNormalization", since=21)
def group_normalization_v21(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _group_normalization(ctx, False, to_torch_dtype(ctx.attr_int("stash_type", 1)))


def _instance_norm(
    x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float
) -> torch.Tensor:
    return F.instance_norm(x, weight=scale, bias=bias, eps=eps)


@ops.register("InstanceNormalization", since=6)
def instance_normalization_v6(node: ir.Node, ctx: BuildContext) -> Outputs:
    eps = ctx.attr_float("epsilon", 1e-5)
    return [ctx.call(_instance_norm, ctx.input(0), ctx.input(1), ctx.input(2), eps)]


def _lrn(x: torch.Tensor, size: int, alpha: float, beta: float, bias: float) -> torch.Tensor:
    square = (x * x).unsqueeze(1)
    pad = [0, 0] * (x.dim() - 2) + [(size - 1) // 2, size - 1 - (size - 1) // 2]
    square = F.pad(square, pad)
    window = [size] + [1] * (x.dim() - 2)
    pool = {3: F.avg_pool1d, 4: F.avg_pool2d, 5: F.avg_pool3d}
    if x.dim() == 3:
        summed = F.avg_pool2d(square, (size, 1), stride=1).squeeze(1) * size
    else:
        summed = pool[x.dim() + 1](square, window, stride=1).squeeze(1) * size
    return x / (bias + alpha / size * summed) ** beta


@ops.register("LRN", since=1)
def lrn_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [
        ctx.call(
            _lrn,
            ctx.input(0),
            ctx.attr_int("size"),
            ctx.attr_float("alpha", 0.0001),
            ctx.attr_float("beta", 0.75),
            ctx.attr_float("bias", 1.0),
        )
    ]


def _mvn(x: torch.Tensor, axes: list[int]) -> torch.Tensor:
    mean = x.mean(dim=axes, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=axes, keepdim=True)
    return (x - mean) / (torch.sqrt(var) + 1e-9)


@ops.register("MeanVarianceNormalization", since=9)
def mean_variance_normalization_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_mvn, ctx.input(0), ctx.attr_ints("axes", [0, 2, 3]))]


def _lp_norm(x: torch.Tensor, axis: int, p: int) -> torch.Tensor:
    norm = torch.linalg.vector_norm(x, ord=p, dim=axis, keepdim=True)
    return torch.where(norm == 0, torch.zeros((), dtype=x.dtype), x / norm)


@ops.register("LpNormalization", since=1)
def lp_normalization_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_lp_norm, ctx.input(0), ctx.attr_int("axis", -1), ctx.attr_int("p", 2))]


# -- Dropout -----------------------------------------------------------------------------------


def _dropout(
    x: torch.Tensor,
    ratio: float | torch.Tensor | None,
    training: bool | torch.Tensor | None,
    seed: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    is_training = bool(training) if training is not None else False
    rate = float(ratio) if ratio is not None else 0.5
    if not is_training or rate == 0.0:
        return x, torch.ones(x.shape, dtype=torch.bool)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    keep = torch.rand(x.shape, generator=generator) >= rate
    return x * keep.to(x.dtype) / (1.0 - rate), keep


@ops.register("Dropout", since=7)
def dropout_v7(node: ir.Node, ctx: BuildContext) -> Outputs:
    # Opset < 12: inference only (the is_test behaviour); the mask is all ones.
    out = ctx.call(_dropout, ctx.input(0), None, None, None)
    return ctx.unpack(out, 2)[: len(node.outputs)]


@ops.register("Dropout", since=12)
def dropout_v12(node: ir.Node, ctx: BuildContext) -> Outputs:
    out = ctx.call(
        _dropout,
        ctx.input(0),
        ctx.optional_input(1),
        ctx.optional_input(2),
        ctx.attr("seed", None),
    )
    return ctx.unpack(out, 2)[: len(node.outputs)]
