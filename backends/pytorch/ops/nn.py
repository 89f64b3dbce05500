"""Convolutions, pooling, normalization and softmax.

ONNX pads are ``[x1_begin, x2_begin, ..., x1_end, x2_end]``; symmetric ones go to torch's
``padding=``, asymmetric and ``auto_pad`` ones are applied with ``F.pad`` first (computed from the
run-time input size, so dynamic spatial sizes keep working).
"""

from __future__ import annotations

import math
from typing import Any

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch

F = torch.nn.functional

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def resolve_pads(
    spatial: list[Any],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pads: list[int] | None,
    auto_pad: str,
) -> list[Any]:
    """ONNX-layout pads ``[begins..., ends...]`` for the given run-time spatial sizes."""
    n = len(kernel)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
            out = (size + s - 1) // s
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, large = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else large)
            ends.append(large if auto_pad == "SAME_UPPER" else small)
        return begins + ends
    if auto_pad == "VALID" or pads is None:
        return [0] * (2 * n)
    return list(pads)


def _torch_pad(pads: list[Any]) -> list[Any]:
    """ONNX ``[b1, b2, e1, e2]`` -> torch ``F.pad`` order ``[b_last, e_last, ..., b1, e1]``."""
    n = len(pads) // 2
    out: list[Any] = []
    for i in reversed(range(n)):
        out += [pads[i], pads[i + n]]
    return out


def _split_pads(pads: list[Any]) -> tuple[list[Any] | None, list[Any]]:
    """(symmetric padding for torch or None, the ONNX pads)."""
    n = len(pads) // 2
    if all(isinstance(p, int) for p in pads) and pads[:n] == pads[n:]:
        return list(pads[:n]), pads
    return None, pads


def _conv(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    strides: list[int],
    pads: list[int] | None,
    dilations: list[int],
    group: int,
    auto_pad: str,
) -> torch.Tensor:
    n = w.dim() - 2
    kernel = list(w.shape[2:])
    full = resolve_pads(list(x.shape[2:]), kernel, strides, dilations, pads, auto_pad)
    symmetric, _ = _split_pads(full)
    if symmetric is None:
        x = F.pad(x, _torch_pad(full))
        symmetric = [0] * n
    return _CONV[n](x, w, b, strides, symmetric, dilations, group)


@ops.register("Conv", since=1)
def conv_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    rank = ctx.input_rank(1)
    n = (rank - 2) if rank else len(ctx.attr_ints("kernel_shape", None) or [0, 0])
    strides = ctx.attr_ints("strides", None) or [1] * n
    dilations = ctx.attr_ints("dilations", None) or [1] * n
    auto_pad = ctx.attr_str("auto_pad", "NOTSET")
    pads = ctx.attr_ints("pads", None)
    static = resolve_pads([0] * n, [1] * n, strides, dilations, pads, auto_pad)
    if n in _CONV and auto_pad in ("NOTSET", "VALID") and static[:n] == static[n:]:
        # The common case: torch's kernel called directly, no per-call Python in between.
        return [
            ctx.call(
                _CONV[n],
                ctx.input(0),
                ctx.input(1),
                ctx.optional_input(2),
                strides,
                static[:n],
                dilations,
                ctx.attr_int("group", 1),
            )
        ]
    return [
        ctx.call(
            _conv,
            ctx.input(0),
            ctx.input(1),
            ctx.optional_input(2),
            strides,
            ctx.attr_ints("pads", None),
            dilations,
            ctx.attr_int("group", 1),
            ctx.attr_str("auto_pad", "NOTSET"),
        )
    ]


def _conv_transpose(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    strides: list[int],
    pads: list[int] | None,
    dilations: list[int],
    group: int,
    auto_pad: str,
    output_padding: list[int] | None,
    output_shape: list[int] | None,
) -> torch.Tensor:
    n = w.dim() - 2
    kernel = list(w.shape[2:])
    spatial = list(x.shape[2:])
    out_pad = output_padding or [0] * n
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = (
            output_shape[-n:]
            if output_shape is not None
            else [s * st for s, st in zip(spatial, strides, strict=True)]
        )
        begins, ends = [], []
        for i in range(n):
            total = (
                strides[i] * (spatial[i] - 1)
                + out_pad[i]
                + ((kernel[i] - 1) * dilations[i] + 1)
                - target[i]
            )
            # NOTSET/SAME_LOWER put the larger half first; a negative total (output_shape
            # beyond the natural size) leaves zeros at the end, as onnx's reference does.
            half = total // 2
            upper = auto_pad == "SAME_UPPER"
            begins.append(half if upper else total - half)
            ends.append(total - half if upper else half)
        full = begins + ends
    else:
        full = list(pads) if pads is not None and auto_pad != "VALID" else [0] * (2 * n)
    y = _CONV_TRANSPOSE[n](x, w, None, strides, 0, out_pad, group, dilations)
    # Pads of a transposed conv remove output; negative ones (an output_shape larger than the
    # natural size) add zeros at the ends, before the bias.
    if any(p < 0 for p in full):
        y = F.pad(y, _torch_pad([max(-p, 0) for p in full]))
        full = [max(p, 0) for p in full]
    index: list[Any] = [slice(None), slice(None)]
    for i in range(n):
        index.append(slice(full[i], y.shape[2 + i] - full[i + n]))
    y = y[tuple(index)]
    if b is not None:
        y = y + b.reshape(1, -1, *([1] * n))
    return y


@ops.register("ConvTranspose", since=1)
def conv_transpose_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    rank = ctx.input_rank(1)
    n = (rank - 2) if rank else len(ctx.attr_ints("kernel_shape", None) or [0, 0])
    return [
        ctx.call(
            _conv_transpose,
            ctx.input(0),
            ctx.input(1),
            ctx.optional_input(2),
            ctx.attr_ints("strides", None) or [1] * n,
            ctx.attr_ints("pads", None),
            ctx.attr_ints("dilations", None) or [1] * n,
            ctx.attr_int("group", 1),
            ctx.attr_str("auto_pad", "NOTSET"),
            ctx.attr_ints("output_padding", None),
            ctx.attr_ints("output_shape", None),
        )
    ]


# -- pooling -----------------------------------------------------------------------------------


def _pool_pads(
    x: torch.Tensor,
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pads: list[int] | None,
    auto_pad: str,
) -> list[Any]:
    return resolve_pads(list(x.shape[2:]), kernel, strides, dilations, pads, auto_pad)


def _max_pool(
    x: torch.Tensor,
    kernel: list[int],
    strides: list[int],
    pads: list[int] | None,
    dilations: list[int],
    ceil_mode: bool,
    auto_pad: str,
    with_indices: bool,
    storage_order: int,
) -> Any:
    n = len(kernel)
    full = _pool_pads(x, kernel, strides, dilations, pads, auto_pad)
    symmetric, _ = _split_pads(full)
    fits = symmetric is not None and all(p * 2 <= k for p, k in zip(symmetric, kernel, strict=True))
    offset = [0] * n
    if not fits:
        x = F.pad(x, _torch_pad(full), value=-math.inf if x.is_floating_point() else 0)
        offset = list(full[:n])
        symmetric = [0] * n
    assert symmetric is not None  # fits implies symmetric pads
    if not x.is_floating_point():
        y = _MAX_POOL[n](x.double(), kernel, strides, symmetric, dilations, ceil_mode).to(x.dtype)
        return (y, None) if with_indices else y
    if not with_indices:
        return _MAX_POOL[n](x, kernel, strides, symmetric, dilations, ceil_mode)
    y, idx = _MAX_POOL[n](x, kernel, strides, symmetric, dilations, ceil_mode, True)
    return y, _onnx_pool_indices(idx, x, offset, n, storage_order)


def _onnx_pool_indices(
    idx: torch.Tensor, x: torch.Tensor, offset: list[int], n: int, storage_order: int
) -> torch.Tensor:
    # torch: index within the (padded) plane; ONNX: flat index into the unpadded input tensor.
    padded = list(x.shape[2:])
    original = [padded[i] - 2 * offset[i] for i in range(n)] if any(offset) else padded
    coords = []
    rest = idx
    for size in reversed(padded):
        coords.append(rest % size)
        rest = rest // size
    coords = [c - o for c, o in zip(reversed(coords), offset, strict=True)]
    if storage_order == 1:
        flat = torch.zeros_like(idx)
        stride = 1
        for c, size in zip(coords, original, strict=True):
            flat = flat + c * stride
            stride *= size
    else:
        flat = torch.zeros_like(idx)
        for c, size in zip(coords, original, strict=True):
            flat = flat * size + c
    plane = 1
    for size in original:
        plane *= size
    batch, channels = idx.shape[0], idx.shape[1]
    base = torch.arange(batch * channels, device=idx.device).reshape(batch, channels, *([1] * n))
    return flat + base * plane


@ops.register("MaxPool", since=1)
def max_pool_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    kernel = ctx.attr_ints("kernel_shape")
    assert kernel is not None
    n = len(kernel)
    with_indices = ctx.output_used(1)
    strides = ctx.attr_ints("strides", None) or [1] * n
    dilations = ctx.attr_ints("dilations", None) or [1] * n
    auto_pad = ctx.attr_str("auto_pad", "NOTSET")
    pads = resolve_pads([0] * n, kernel, strides, dilations, ctx.attr_ints("pads", None), auto_pad)
    float_input = ctx.input_dtype(0) in (torch.float32, torch.float64, torch.float16)
    if (
        not with_indices
        and float_input
        and n in _MAX_POOL
        and auto_pad in ("NOTSET", "VALID")
        and pads[:n] == pads[n:]
        and all(2 * p <= k for p, k in zip(pads[:n], kernel, strict=True))
    ):
        ceil_mode = bool(ctx.attr_int("ceil_mode", 0))
        pool = _MAX_POOL[n]
        return [ctx.call(pool, ctx.input(0), kernel, strides, pads[:n], dilations, ceil_mode)]
    out = ctx.call(
        _max_pool,
        ctx.input(0),
        kernel,
        ctx.attr_ints("strides", None) or [1] * n,
        ctx.attr_ints("pads", None),
        ctx.attr_ints("dilations", None) or [1] * n,
        bool(ctx.attr_int("ceil_mode", 0)),
        ctx.attr_str("auto_pad", "NOTSET"),
        with_indices,
        ctx.attr_int("storage_order", 0),
    )
    if with_indices:
        y, idx = ctx.unpack(out, 2)
        return [y, idx]
    return [out]


def _avg_pool(
    x: torch.Tensor,
    kernel: list[int],
    strides: list[int],
    pads: list[int] | None,
    dilations: list[int],
    ceil_mode: bool,
    auto_pad: str,
    count_include_pad: bool,
) -> torch.Tensor:
    n = len(kernel)
    full = _pool_pads(x, kernel, strides, dilations, pads, auto_pad)
    symmetric, _ = _split_pads(full)
    if all(d == 1 for d in dilations):
        fits = symmetric is not None and all(
            p * 2 <= k for p, k in zip(symmetric, kernel, strict=True)
        )
        if fits and (count_include_pad or auto_pad == "NOTSET" or not any(full)):
            assert symmetric is not None  # fits implies symmetric pads
            return _AVG_POOL[n](x, kernel, strides, symmetric, ceil_mode, count_include_pad)
    # General case: sum over windows of the zero-padded input / count of the counted cells.
    ones = torch.ones_like(x[:1, :1])
    extra = [0] * n
    if ceil_mode:
        for i in range(n):
            size = x.shape[2 + i] + full[i] + full[i + n]
            span = (kernel[i] - 1) * dilations[i] + 1
            out = -(-(size - span) // strides[i]) + 1
            if (out - 1) * strides[i] >= x.shape[2 + i] + full[i]:
                out -= 1
            extra[i] = max(0, (out - 1) * strides[i] + span - size)
    padded = F.pad(x, _torch_pad(full[:n] + [e + x for e, x in zip(extra, full[n:], strict=True)]))
    weight = torch.ones((x.shape[1], 1, *kernel), dtype=x.dtype, device=x.device)
    sums = _CONV[n](padded, weight, None, strides, 0, dilations, x.shape[1])
    counted = F.pad(ones, _torch_pad(full), value=1.0 if count_include_pad else 0.0)
    counted = F.pad(counted, _torch_pad([0] * n + extra), value=0.0)
    counts = _CONV[n](counted, weight[:1], None, strides, 0, dilations, 1)
    return sums / counts


@ops.register("AveragePool", since=1)
def average_pool_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    kernel = ctx.attr_ints("kernel_shape")
    assert kernel is not None
    n = len(kernel)
    return [
        ctx.call(
            _avg_pool,
            ctx.input(0),
            kernel,
            ctx.attr_ints("strides", None) or [1] * n,
            ctx.attr_ints("pads", None),
            ctx.attr_ints("dilations", None) or [1] * n,
            bool(ctx.attr_int("ceil_mode", 0)),
            ctx.attr_str("auto_pad", "NOTSET"),
            bool(ctx.attr_int("count_include_pad", 0)),
        )
    ]


def _global_pool_dims(x: torch.Tensor) -> list[int]:
    return list(range(2, x.dim()))


def _global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=_global_pool_dims(x), keepdim=True)


def _global_max_pool(x: torch.Tensor) -> torch.Tensor:
    return x.amax(dim=_global_pool_dims(x), keepdim=True)


@ops.register("GlobalAveragePool", since=1)
def global_average_pool_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_global_avg_pool, ctx.input(0))]


@ops.register("GlobalMaxPool", since=1)
def global_max_pool_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_global_max_pool, ctx.input(0))]


# -- normalization -----------------------------------------------------------------------------


@ops.register("BatchNormalization", since=9)
def batch_normalization_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    x, scale, bias, mean, var = (ctx.input(i) for i in range(5))
    eps = ctx.attr_float("epsilon", 1e-5)
    return [ctx.call(F.batch_norm, x, mean, var, scale, bias, False, 0.0, eps)]


def _batch_norm_training(
    x: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    eps: float,
    momentum: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dims = [0, *range(2, x.dim())]
    batch_mean = x.mean(dim=dims)
    batch_var = x.var(dim=dims, unbiased=False)
    y = F.batch_norm(x, batch_mean, batch_var, scale, bias, False, 0.0, eps)
    return (
        y,
        mean * momentum + batch_mean * (1 - momentum),
        var * momentum + batch_var * (1 - momentum),
    )


@ops.register("BatchNormalization", since=14)
def batch_normalization_v14(node: ir.Node, ctx: BuildContext) -> Outputs:
    if not ctx.attr_int("training_mode", 0):
        return batch_normalization_v9(node, ctx)
    out = ctx.call(
        _batch_norm_training,
        *(ctx.input(i) for i in range(5)),
        ctx.attr_float("epsilon", 1e-5),
        ctx.attr_float("momentum", 0.9),
    )
    return ctx.unpack(out, 3)


def _softmax_legacy(x: torch.Tensor, axis: int, kind: str) -> torch.Tensor:
    # Opset < 13: coerce to 2-D [prod(dims[:axis]), prod(dims[axis:])], normalise rows.
    axis = axis + x.dim() if axis < 0 else axis
    flat = x.reshape(math.prod(x.shape[:axis]), -1) if x.numel() else x
    if kind == "softmax":
        y = torch.softmax(flat, dim=-1)
    elif kind == "log_softmax":
        y = torch.log_softmax(flat, dim=-1)
    else:
        y = _hardmax(flat, -1)
    return y.reshape(x.shape)


def _hardmax(x: torch.Tensor, axis: int) -> torch.Tensor:
    index = x.argmax(dim=axis, keepdim=True)
    return torch.zeros_like(x).scatter_(axis, index, 1)


@ops.register("Softmax", since=1)
def softmax_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_softmax_legacy, ctx.input(0), ctx.attr_int("axis", 1), "softmax")]


@ops.register("Softmax", since=13)
def softmax_v13(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.softmax, ctx.input(0), ctx.attr_int("axis", -1))]


@ops.register("LogSoftmax", since=1)
def log_softmax_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_softmax_legacy, ctx.input(0), ctx.attr_int("axis", 1), "log_softmax")]


@ops.register("LogSoftmax", since=13)
def log_softmax_v13(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(torch.log_softmax, ctx.input(0), ctx.attr_int("axis", -1))]


@ops.register("Hardmax", since=1)
def hardmax_v1(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_softmax_legacy, ctx.input(0), ctx.attr_int("axis", 1), "hardmax")]


@ops.register("Hardmax", since=13)
def hardmax_v13(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_hardmax, ctx.input(0), ctx.attr_int("axis", -1))]


def _lp_pool(
    x: torch.Tensor,
    kernel: list[int],
    strides: list[int],
    pads: list[int] | None,
    dilations: list[int],
    ceil_mode: bool,
    auto_pad: str,
    p: int,
) -> torch.Tensor:
    n = len(kernel)
    full = _pool_pads(x, kernel, strides, dilations, pads, auto_pad)
    padded = F.pad(x, _torch_pad(full))
    weight = torch.ones((x.shape[1], 1, *kernel), dtype=x.dtype, device=x.device)
    if ceil_mode:
        extra = []
        for i in range(n):
            size = padded.shape[2 + i]
            span = (kernel[i] - 1) * dilations[i] + 1
            out = -(-(size - span) // strides[i]) + 1
            extra.append(max(0, (out - 1) * strides[i] + span - size))
        padded = F.pad(padded, _torch_pad([0] * n + extra))
    sums = _CONV[n](padded.abs() ** p, weight, None, strides, 0, dilations, x.shape[1])
    return sums ** (1.0 / p)


@ops.register("LpPool", since=11)
def lp_pool_v11(node: ir.Node, ctx: BuildContext) -> Outputs:
    kernel = ctx.attr_ints("kernel_shape")
    assert kernel is not None
    n = len(kernel)
    return [
        ctx.call(
            _lp_pool,
            ctx.input(0),
            kernel,
            ctx.attr_ints("strides", None) or [1] * n,
            ctx.attr_ints("pads", None),
            ctx.attr_ints("dilations", None) or [1] * n,
            bool(ctx.attr_int("ceil_mode", 0)),
            ctx.attr_str("auto_pad", "NOTSET"),
            ctx.attr_int("p", 2),
        )
    ]


def _global_lp_pool(x: torch.Tensor, p: int) -> torch.Tensor:
    return (x.abs() ** p).sum(dim=_global_pool_dims(x), keepdim=True) ** (1.0 / p)


@ops.register("GlobalLpPool", since=2)
def global_lp_pool_v2(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [ctx.call(_global_lp_pool, ctx.input(0), ctx.attr_int("p", 2))]


_GRID_MODES = {
    "linear": "bilinear",
    "bilinear": "bilinear",
    "nearest": "nearest",
    "cubic": "bicubic",
    "bicubic": "bicubic",
}


def _grid_sample(
    x: torch.Tensor, grid: torch.Tensor, mode: str, padding: str, align: bool
) -> torch.Tensor:
    return F.grid_sample(
        x, grid.to(x.dtype), mode=_GRID_MODES[mode], padding_mode=padding, align_corners=align
    )


def _grid_sample_node(ctx: BuildContext, default_mode: str) -> Outputs:
    return [
        ctx.call(
            _grid_sample,
            ctx.input(0),
            ctx.input(1),
            ctx.attr_str("mode", default_mode),
            ctx.attr_str("padding_mode", "zeros"),
            bool(ctx.attr_int("align_corners", 0)),
        )
    ]


@ops.register("GridSample", since=16)
def grid_sample_v16(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _grid_sample_node(ctx, "bilinear")


@ops.register("GridSample", since=20)
def grid_sample_v20(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _grid_sample_node(ctx, "linear")
