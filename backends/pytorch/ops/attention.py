"""Attention (opset 23+): scaled dot-product attention with masks, KV cache, GQA and softcap.

A transcription of ``onnx.reference``'s Attention into torch, so that the masking conventions
(bottom-right causal alignment, fully-masked rows giving 0, boolean masks) are the spec's.
"""

from __future__ import annotations

import math
from typing import Any

from unframe.backends.pytorch.dtypes import to_torch_dtype
from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch

_NEG_INF = -math.inf


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, hidden = x.shape
    return x.reshape(batch, length, heads, hidden // heads).transpose(1, 2)


def _causal(base: torch.Tensor, offset: Any, q_len: int, kv_len: int) -> torch.Tensor:
    i = torch.arange(q_len, device=base.device).reshape(q_len, 1)
    j = torch.arange(kv_len, device=base.device).reshape(1, kv_len)
    if isinstance(offset, torch.Tensor):
        allowed = j <= (i + offset.reshape(-1, 1, 1))
        bias = torch.where(allowed, 0.0, _NEG_INF).to(base.dtype)
        return base + bias.reshape(bias.shape[0], 1, q_len, kv_len)
    bias = torch.where(j <= i + int(offset), 0.0, _NEG_INF).to(base.dtype)
    return base + bias


def _window(
    base: torch.Tensor, left: int, right: int, offset: Any, q_len: int, kv_len: int
) -> torch.Tensor:
    i = torch.arange(q_len, device=base.device).reshape(q_len, 1)
    j = torch.arange(kv_len, device=base.device).reshape(1, kv_len)
    per_batch = isinstance(offset, torch.Tensor)
    diff = (i + offset.reshape(-1, 1, 1)) - j if per_batch else (i + int(offset)) - j
    allowed = torch.ones_like(diff, dtype=torch.bool)
    if left >= 0:
        allowed &= diff <= left
    if right >= 0:
        allowed &= -diff <= right
    bias = torch.where(allowed, 0.0, _NEG_INF).to(base.dtype)
    if per_batch:
        return base + bias.reshape(bias.shape[0], 1, q_len, kv_len)
    return base + bias


def _attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None,
    past_key: torch.Tensor | None,
    past_value: torch.Tensor | None,
    nonpad_kv_seqlen: torch.Tensor | None,
    scale: float | None,
    is_causal: bool,
    q_num_heads: int | None,
    kv_num_heads: int | None,
    softmax_dtype: torch.dtype | None,
    softcap: float,
    qk_mode: int,
    left_window: int,
    right_window: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    rank3 = q.dim() == 3
    batch = q.shape[0]
    if rank3:
        assert q_num_heads is not None and kv_num_heads is not None
        q = _split_heads(q, q_num_heads)
        k = _split_heads(k, kv_num_heads)
        v = _split_heads(v, kv_num_heads)
    dtype = q.dtype
    if scale is None:
        scale = 1 / math.sqrt(q.shape[3])
    root = torch.tensor(math.sqrt(scale), dtype=dtype)
    present_key = torch.cat((past_key, k), dim=2) if past_key is not None else k
    present_value = torch.cat((past_value, v), dim=2) if past_value is not None else v
    k, v = present_key, present_value
    q_len, kv_len = q.shape[2], k.shape[2]
    bias = torch.zeros((q_len, kv_len), dtype=dtype)
    if attn_mask is not None:
        pad = kv_len - attn_mask.shape[-1]
        if pad > 0:
            fill = False if attn_mask.dtype == torch.bool else _NEG_INF
            attn_mask = torch.nn.functional.pad(attn_mask, (0, pad), value=fill)
    windowed = left_window >= 0 or right_window >= 0
    if is_causal:
        if attn_mask is not None and attn_mask.dtype == torch.bool:
            attn_mask = torch.where(attn_mask, 0.0, _NEG_INF).to(dtype)
        base = torch.zeros((q_len, kv_len), dtype=dtype) if attn_mask is None else attn_mask
        if windowed:
            base = torch.zeros((q_len, kv_len), dtype=dtype) + base
        if past_key is None and nonpad_kv_seqlen is not None:
            bias = _causal(base, nonpad_kv_seqlen.reshape(-1) - q_len, q_len, kv_len)
        else:
            bias = _causal(base, past_key.shape[2] if past_key is not None else 0, q_len, kv_len)
    elif attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            attn_mask = torch.where(attn_mask, 0.0, _NEG_INF).to(dtype)
        bias = bias + attn_mask
    if windowed:
        if past_key is None and nonpad_kv_seqlen is not None:
            offset: Any = nonpad_kv_seqlen.reshape(-1) - q_len
        else:
            offset = past_key.shape[2] if past_key is not None else 0
        bias = torch.zeros((q_len, kv_len), dtype=dtype) + bias
        bias = _window(bias, left_window, right_window, offset, q_len, kv_len)
    if nonpad_kv_seqlen is not None:
        keep = torch.arange(kv_len) < nonpad_kv_seqlen.reshape(-1, 1)
        padding = torch.where(keep.reshape(batch, 1, 1, kv_len), 0.0, _NEG_INF).to(bias.dtype)
        bias = bias + padding
    heads_q = q_num_heads if q_num_heads is not None else q.shape[1]
    heads_k = kv_num_heads if kv_num_heads is not None else k.shape[1]
    if heads_q != heads_k and heads_q % heads_k == 0:
        k = k.repeat_interleave(heads_q // heads_k, dim=1)
        v = v.repeat_interleave(heads_q // heads_k, dim=1)
    scores = torch.matmul(q * root, k.transpose(2, 3) * root)
    if softcap > 0:
        scores = torch.tanh(scores / softcap) * softcap
    qk_out = scores
    with_bias = scores + bias
    if qk_mode == 2:
        qk_out = with_bias
    if softmax_dtype is not None:
        with_bias = with_bias.to(softmax_dtype)
    probs = _safe_softmax(with_bias)
    masked_rows = torch.isneginf(bias.amax(dim=-1, keepdim=True))
    probs = torch.where(masked_rows, torch.zeros((), dtype=probs.dtype), probs)
    if qk_mode == 3:
        qk_out = probs
    y = torch.matmul(probs.to(dtype), v)
    if rank3:
        y = y.transpose(1, 2).reshape(y.shape[0], y.shape[2], -1)
    return y, present_key, present_value, qk_out.to(dtype)


def _safe_softmax(x: torch.Tensor) -> torch.Tensor:
    top = x.amax(dim=-1, keepdim=True)
    top = torch.where(torch.isneginf(top), torch.zeros((), dtype=x.dtype), top)
    e = torch.exp(x - top)
    total = e.sum(dim=-1, keepdim=True)
    total = torch.where(total == 0, torch.ones((), dtype=x.dtype), total)
    return e / total


def _attention_node(ctx: BuildContext) -> Outputs:
    precision = ctx.attr("softmax_precision", None)
    out = ctx.call(
        _attention,
        ctx.input(0),
        ctx.input(1),
        ctx.input(2),
        ctx.optional_input(3),
        ctx.optional_input(4),
        ctx.optional_input(5),
        ctx.optional_input(6),
        ctx.attr("scale", None),
        bool(ctx.attr_int("is_causal", 0)),
        ctx.attr("q_num_heads", None),
        ctx.attr("kv_num_heads", None),
        None if precision is None else to_torch_dtype(precision),
        ctx.attr_float("softcap", 0.0),
        ctx.attr_int("qk_matmul_output_mode", 0),
        ctx.attr_int("left_window_size", -1) if ctx.has_attr("left_window_size") else -1,
        ctx.attr_int("right_window_size", -1) if ctx.has_attr("right_window_size") else -1,
    )
    return [ctx.getitem(out, i) for i in range(len(ctx.node.outputs))]


@ops.register("Attention", since=23)
def attention_v23(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _attention_node(ctx)


def _rotary(
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    position_ids: torch.Tensor | None,
    interleaved: bool,
    rotary_dim: int,
    num_heads: int,
) -> torch.Tensor:
    shape = x.shape
    if x.dim() == 4:
        x = x.transpose(1, 2)
    else:
        x = x.reshape(shape[0], shape[1], num_heads, shape[2] // num_heads)
    rotary_dim = rotary_dim or x.shape[3]
    rotate, keep = x[..., :rotary_dim], x[..., rotary_dim:]
    if position_ids is not None:
        cos, sin = cos[position_ids.long()], sin[position_ids.long()]
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    if interleaved:
        x1, x2 = rotate[..., 0::2], rotate[..., 1::2]
    else:
        x1, x2 = rotate.chunk(2, dim=-1)
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if interleaved:
        rotated = torch.stack((real, imag), dim=-1).reshape(rotate.shape)
    else:
        rotated = torch.cat((real, imag), dim=-1)
    out = torch.cat((rotated, keep), dim=-1)
    return out.reshape(shape) if len(shape) == 3 else out.transpose(1, 2)


@ops.register("RotaryEmbedding", since=23)
def rotary_embedding_v23(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [
        ctx.call(
            _rotary,
            ctx.input(0),
            ctx.input(1),
            ctx.input(2),
            ctx.optional_input(3),
            bool(ctx.attr_int("interleaved", 0)),
            ctx.attr_int("rotary_embedding_dim", 0),
            ctx.attr_int("num_heads", 0),
        )
    ]


def _flex_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float | None,
    score_mod: Any,
    score_captured: tuple[torch.Tensor, ...],
    prob_mod: Any,
    prob_captured: tuple[torch.Tensor, ...],
    softmax_dtype: torch.dtype | None,
) -> torch.Tensor:
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    if q.shape[1] != k.shape[1]:
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
        v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    root = torch.tensor(math.sqrt(torch.tensor(scale, dtype=torch.float32).item()), dtype=q.dtype)
    scores = torch.matmul(q * root, (k * root).transpose(-1, -2))
    compute = softmax_dtype or (torch.float32 if q.dtype.itemsize < 4 else q.dtype)
    scores = scores.to(compute)
    if score_mod is not None:
        scores = score_mod(scores, *score_captured)[0].to(compute)
    probs = torch.softmax(scores, dim=-1)
    if prob_mod is not None:
        probs = prob_mod(probs, *prob_captured)[0].to(compute)
    return torch.matmul(probs, v.to(compute)).to(v.dtype)


@ops.register("FlexAttention", since=1, domain="ai.onnx.preview")
def flex_attention_preview_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    mods: list[Any] = []
    for name in ("score_mod", "prob_mod"):
        if isinstance(ctx.attr(name, None), ir.Graph):
            sub = ctx.subgraph(name)
            mods += [sub.module, tuple(sub.captured)]
        else:
            mods += [None, ()]
    precision = ctx.attr("softmax_precision", None)
    out = ctx.call(
        _flex_attention,
        ctx.input(0),
        ctx.input(1),
        ctx.input(2),
        ctx.attr("scale", None),
        *mods,
        None if precision is None else to_torch_dtype(precision),
    )
    return [out]
