"""LinearAttention and CausalConvWithState (opset 27) and SwiGLU (opset 28), after onnx's
reference implementations.
"""

from __future__ import annotations

import math

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch

F = torch.nn.functional


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, t, hd = x.shape
    return x.reshape(b, t, heads, hd // heads).transpose(1, 2)


def _linear_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    past_state: torch.Tensor | None,
    decay: torch.Tensor | None,
    beta: torch.Tensor | None,
    q_heads: int,
    kv_heads: int,
    scale: float | None,
    rule: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    gating = rule in ("gated", "gated_delta")
    delta = rule in ("delta", "gated_delta")
    b, t, _ = query.shape
    d_k = query.shape[-1] // q_heads
    d_v = value.shape[-1] // kv_heads
    group = q_heads // kv_heads
    q = _heads(query, q_heads).float()
    k = _heads(key, kv_heads).float()
    v = _heads(value, kv_heads).float()
    if decay is not None:
        if decay.shape[-1] == kv_heads:
            decay = decay.reshape(b, t, kv_heads, 1).transpose(1, 2)
        else:
            decay = _heads(decay, kv_heads)
        decay = decay.float()
    if beta is not None:
        beta = beta.reshape(b, t, beta.shape[-1], 1).transpose(1, 2).float()
    if past_state is not None:
        state_dtype = past_state.dtype
        state = past_state.float()
    else:
        state_dtype = query.dtype
        state = torch.zeros((b, kv_heads, d_k, d_v), dtype=torch.float32)
    factor = 1.0 / math.sqrt(d_k) if not scale else float(scale)
    outputs = []
    for i in range(t):
        q_t, k_t, v_t = q[:, :, i], k[:, :, i], v[:, :, i]
        if gating and decay is not None:
            state = state * torch.exp(decay[:, :, i])[..., None]
        if delta and beta is not None:
            retrieved = torch.einsum("bhdm,bhd->bhm", state, k_t)
            v_t = beta[:, :, i] * (v_t - retrieved)
        state = state + k_t[..., :, None] * v_t[..., None, :]
        read = state if group == 1 else state.repeat_interleave(group, dim=1)
        outputs.append(factor * torch.einsum("bhd,bhdm->bhm", q_t, read))
    out = torch.stack(outputs, dim=2) if outputs else q.new_zeros((b, q_heads, 0, d_v))
    out = out.transpose(1, 2).reshape(b, t, q_heads * d_v)
    return out.to(query.dtype), state.to(state_dtype)


@ops.register("LinearAttention", since=27)
def linear_attention_v27(node: ir.Node, ctx: BuildContext) -> Outputs:
    out = ctx.call(
        _linear_attention,
        *(ctx.optional_input(i) for i in range(6)),
        ctx.attr_int("q_num_heads"),
        ctx.attr_int("kv_num_heads"),
        ctx.attr("scale", None),
        ctx.attr_str("update_rule", "gated_delta"),
    )
    return ctx.unpack(out, 2)[: len(node.outputs)]


def _causal_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    past_state: torch.Tensor | None,
    activation: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    batch, channels, _ = x.shape
    k = weight.shape[2]
    pad = past_state if past_state is not None else x.new_zeros((batch, channels, k - 1))
    padded = torch.cat([pad, x], dim=2)
    out = F.conv1d(
        padded.float(), weight.float(), None if bias is None else bias.float(), groups=channels
    )
    out = out.to(x.dtype)
    if activation in ("silu", "swish"):
        wide = out.float()
        out = (wide * torch.sigmoid(wide)).to(x.dtype)
    return out, padded[:, :, padded.shape[2] - (k - 1) :]


@ops.register("CausalConvWithState", since=27)
def causal_conv_with_state_v27(node: ir.Node, ctx: BuildContext) -> Outputs:
    out = ctx.call(
        _causal_conv,
        *(ctx.optional_input(i) for i in range(4)),
        ctx.attr_str("activation", "none"),
    )
    return ctx.unpack(out, 2)[: len(node.outputs)]


def _swiglu(a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    return a * torch.sigmoid(alpha * a) * b


@ops.register("SwiGLU", since=28)
def swiglu_v28(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_swiglu, ctx.input(0), ctx.input(1), ctx.attr_float("alpha", 1.0))]
