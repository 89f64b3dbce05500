"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

``mean`` divides by the summed weights of the targets that are not ignored, which is also how
``torch.nn.functional.nll_loss`` defines it.
"""

from __future__ import annotations

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch

F = torch.nn.functional

#: torch needs an int ignore_index; no class index is this negative.
_NEVER = -(2**62)


def _nll(
    x: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
) -> torch.Tensor:
    compute = x if x.dtype in (torch.float32, torch.float64) else x.float()
    if weight is not None:
        weight = weight.to(compute.dtype)
    loss = F.nll_loss(
        compute, target.long(), weight, ignore_index=ignore_index, reduction=reduction
    )
    return loss.to(x.dtype)


def _softmax_cross_entropy(
    scores: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    reduction: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    compute = scores if scores.dtype in (torch.float32, torch.float64) else scores.float()
    log_prob = torch.log_softmax(compute, dim=1)
    loss = _nll(log_prob, labels, weight, ignore_index, reduction)
    return loss.to(scores.dtype), log_prob.to(scores.dtype)


def _ignore(ctx: BuildContext) -> int:
    value = ctx.attr("ignore_index", None)
    return _NEVER if value is None else int(value)


@ops.register("NegativeLogLikelihoodLoss", since=12)
def negative_log_likelihood_loss_v12(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [
        ctx.call(
            _nll,
            ctx.input(0),
            ctx.input(1),
            ctx.optional_input(2),
            _ignore(ctx),
            ctx.attr_str("reduction", "mean"),
        )
    ]


@ops.register("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss_v12(node: ir.Node, ctx: BuildContext) -> Outputs:
    out = ctx.call(
        _softmax_cross_entropy,
        ctx.input(0),
        ctx.input(1),
        ctx.optional_input(2),
        _ignore(ctx),
        ctx.attr_str("reduction", "mean"),
    )
    return ctx.unpack(out, 2)[: len(node.outputs)]
