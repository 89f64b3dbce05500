"""Convolution, pooling, normalization and matrix products.

Conv, ConvTranspose and pooling run channels-last (TF's CPU kernels take NHWC only): they read
``ctx.channels_last(0)`` (free where the producer already holds it so) and return a channels-last
``Physical``. Weights known before run time are laid out for TF in numpy (OIHW -> HWIO), so no
Transpose of a weight reaches the graph.
"""

from __future__ import annotations

from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    Physical,
    channels_last,
    ir,
    normalize_axis,
    np,
    ops,
    wrap,
)


def _spatial_attrs(ctx: ExportContext, spatial: int, kernel: list[int]) -> dict[str, Any]:
    strides = ctx.ints("strides", [1] * spatial) or [1] * spatial
    dilations = ctx.ints("dilations", [1] * spatial) or [1] * spatial
    pads = ctx.ints("pads", [0] * 2 * spatial) or [0] * 2 * spatial
    return {"strides": strides, "dilations": dilations, "pads": pads, "kernel": kernel}


def _resolve_pads(
    ctx: ExportContext, x_nhwc: Any, attrs: dict[str, Any], ceil_mode: bool = False
) -> list[tuple[int, int]]:
    """(begin, end) padding per spatial axis, from auto_pad or pads (and ceil_mode's extra end)."""
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    spatial = len(attrs["kernel"])
    sizes = x_nhwc.shape.as_list()[1:-1]
    effective = [(k - 1) * d + 1 for k, d in zip(attrs["kernel"], attrs["dilations"], strict=True)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s in zip(sizes, effective, attrs["strides"], strict=True):
            if size is None:
                raise ctx.error(f"auto_pad {auto_pad} needs static spatial sizes")
            out = -(-size // s)
            total = max((out - 1) * s + k - size, 0)
            small, large = total // 2, total - total // 2
            pads.append((small, large) if auto_pad == "SAME_UPPER" else (large, small))
        return pads
    if auto_pad == "VALID":
        pads = [(0, 0)] * spatial
    else:
        flat = attrs["pads"]
        pads = [(flat[i], flat[i + spatial]) for i in range(spatial)]
    if ceil_mode:
        extended = []
        for (begin, end), size, k, s in zip(pads, sizes, effective, attrs["strides"], strict=True):
            if size is None:
                raise ctx.error("ceil_mode needs static spatial sizes")
            span = size + begin + end - k
            out = -(-span // s) + 1
            # ONNX drops a last window that starts inside the end padding only.
            if (out - 1) * s >= size + begin:
                out -= 1
            extended.append((begin, end + max((out - 1) * s + k - (size + begin + end), 0)))
        pads = extended
    return pads


def _pad_spatial(ctx: ExportContext, x: Any, pads: list[tuple[int, int]], value: float) -> Any:
    if not any(b or e for b, e in pads):
        return x
    return ctx.tf.pad(x, [[0, 0], *[[b, e] for b, e in pads], [0, 0]], constant_values=value)


def _rank_and_spatial(ctx: ExportContext) -> tuple[int, int]:
    rank = ctx.input_rank(0)
    if rank is None or rank < 3 or rank > 5:
        raise ctx.error(f"needs an input of rank 3, 4 or 5 (got {rank})")
    return rank, rank - 2


@ops.register("Conv", since=1)  # opset 11 only said how pads default; the semantics are one
@ops.register("Conv", since=11)
def conv_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    rank, spatial = _rank_and_spatial(ctx)
    weight = ctx.constant_input(1)
    weight_shape = _weight_shape(ctx)
    group = int(ctx.attr("group", 1))
    kernel = list(weight_shape[2:])
    attrs = _spatial_attrs(ctx, spatial, kernel)
    x = ctx.channels_last(0)
    pads = _resolve_pads(ctx, x, attrs)
    # OI<spatial> -> <spatial>IO, TF's filter layout (in numpy where the weight is known).
    to_tf = (*range(2, rank), 1, 0)
    filters: Any = (
        np.ascontiguousarray(weight.transpose(to_tf))
        if weight is not None
        else tf.transpose(ctx.input(1), to_tf)
    )
    channels_in = int(weight_shape[1]) * group
    out_channels = int(weight_shape[0])
    strides, dilations = attrs["strides"], attrs["dilations"]
    if group == 1:
        result = _convolve(ctx, x, _filter(ctx, filters), pads, strides, dilations)
    elif spatial == 2 and group == channels_in and weight_shape[1] == 1:
        multiplier = out_channels // group
        # <spatial>, 1, O -> <spatial>, C_in, multiplier: depthwise's layout.
        depthwise = (
            filters.reshape(*kernel, group, multiplier)
            if weight is not None
            else tf.reshape(filters, [*kernel, group, multiplier])
        )
        padded = _pad_spatial(ctx, x, pads, 0.0)
        result = tf.nn.depthwise_conv2d(
            padded,
            _filter(ctx, depthwise),
            strides=[1, *strides, 1],
            padding="VALID",
            dilations=dilations,
        )
    else:
        pieces = tf.split(x, group, axis=-1)
        per_group = out_channels // group
        outputs = []
        for index, piece in enumerate(pieces):
            part = filters[..., index * per_group : (index + 1) * per_group]
            weight_part = _filter(ctx, part, f"weight_g{index}")
            outputs.append(_convolve(ctx, piece, weight_part, pads, strides, dilations))
        result = tf.concat(outputs, axis=-1)
    if ctx.has_input(2):
        bias = ctx.constant_input(2)
        bias_tensor = ctx.weight(bias, "bias") if bias is not None else ctx.input(2)
        result = tf.nn.bias_add(result, bias_tensor)
    return [Physical(result, channels_last(rank))]


def _weight_shape(ctx: ExportContext) -> list[int]:
    shape = ctx.input_shape(1)
    if shape is None or any(dim is None for dim in shape):
        raise ctx.error("the weight's shape must be known before run time")
    return [int(dim) for dim in shape if dim is not None]


def _filter(ctx: ExportContext, filters: Any, hint: str = "weight") -> Any:
    """A weight laid out in numpy becomes a module weight; a run-time one is used as is."""
    if isinstance(filters, np.ndarray):
        return ctx.weight(np.ascontiguousarray(filters), hint)
    return filters


def _convolve(
    ctx: ExportContext,
    x: Any,
    filters: Any,
    pads: list[tuple[int, int]],
    strides: list[int],
    dilations: list[int],
) -> Any:
    tf = ctx.tf
    if len(pads) == 2:
        # conv2d takes explicit padding itself: no separate Pad op.
        padding: Any = [[0, 0], *[[b, e] for b, e in pads], [0, 0]]
        if not any(b or e for b, e in pads):
            padding = "VALID"
        return tf.nn.conv2d(x, filters, strides=strides, padding=padding, dilations=dilations)
    padded = _pad_spatial(ctx, x, pads, 0.0)
    return tf.nn.convolution(padded, filters, strides=strides, padding="VALID", dilations=dilations)


@ops.register("ConvTranspose", since=11)
def conv_transpose_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    rank, spatial = _rank_and_spatial(ctx)
    weight = ctx.constant_input(1)
    weight_shape = _weight_shape(ctx)
    group = int(ctx.attr("group", 1))
    kernel = list(weight_shape[2:])
    attrs = _spatial_attrs(ctx, spatial, kernel)
    strides, dilations = attrs["strides"], attrs["dilations"]
    effective = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    output_padding = ctx.ints("output_padding", [0] * spatial) or [0] * spatial
    x = ctx.channels_last(0)
    begins, sizes = _transpose_crop(ctx, x, spatial, effective, output_padding)
    if any(d != 1 for d in dilations):
        weight_t = _dilated_kernel(ctx, weight, ctx.input(1) if weight is None else None, dilations)
        weight = weight_t if isinstance(weight_t, np.ndarray) else None
    else:
        weight_t = weight if weight is not None else ctx.input(1)
    # I O <spatial> -> <spatial> O I, conv_transpose's filter layout.
    to_tf = (*range(2, rank), 1, 0)
    filters: Any = weight.transpose(to_tf) if weight is not None else tf.transpose(weight_t, to_tf)
    shape = tf.shape(x)
    full = [
        (shape[1 + i] - 1) * strides[i] + effective[i] + output_padding[i] for i in range(spatial)
    ]
    per_group_out = int(weight_shape[1])
    per_group_in = int(weight_shape[0]) // group
    out_shape = tf.stack([shape[0], *full, per_group_out])
    pieces = tf.split(x, group, axis=-1) if group > 1 else [x]
    outputs = []
    for index, piece in enumerate(pieces):
        part = filters[..., index * per_group_in : (index + 1) * per_group_in]
        part_tensor = _filter(ctx, part, f"weight_g{index}" if group > 1 else "weight")
        outputs.append(
            tf.nn.conv_transpose(piece, part_tensor, out_shape, strides=strides, padding="VALID")
        )
    result = tf.concat(outputs, axis=-1) if group > 1 else outputs[0]
    if sizes is not None and all(isinstance(v, int) for v in sizes):
        # output_shape may reach past the full result (a negative end pad): zeros there.
        in_sizes = [int(v) for v in x.shape.as_list()[1:-1]]
        extra = [
            max(b + n - ((size - 1) * s + k + p), 0)
            for b, n, size, s, k, p in zip(
                begins, sizes, in_sizes, strides, effective, output_padding, strict=True
            )
        ]
        if any(extra):
            result = tf.pad(result, [[0, 0], *[[0, e] for e in extra], [0, 0]])
    if any(isinstance(b, int) and b for b in begins) or sizes is not None:
        size = [-1, *(sizes or [-1] * spatial), -1]
        result = tf.slice(result, [0, *begins, 0], tf.stack(size))
    if ctx.has_input(2):
        bias = ctx.constant_input(2)
        bias_tensor = ctx.weight(bias, "bias") if bias is not None else ctx.input(2)
        result = tf.nn.bias_add(result, bias_tensor)
    return [Physical(result, channels_last(rank))]


def _dilated_kernel(
    ctx: ExportContext, weight: np.ndarray | None, tensor: Any, dilations: list[int]
) -> Any:
    """The kernel with ``d - 1`` zeros between its taps on each spatial axis (numpy where the
    weight is constant)."""
    if weight is not None:
        effective = [(k - 1) * d + 1 for k, d in zip(weight.shape[2:], dilations, strict=True)]
        dilated = np.zeros((*weight.shape[:2], *effective), dtype=weight.dtype)
        dilated[(slice(None), slice(None), *(slice(None, None, d) for d in dilations))] = weight
        return dilated
    tf = ctx.tf
    kernel = [int(k) for k in _weight_shape(ctx)[2:]]
    for i, (k, d) in enumerate(zip(kernel, dilations, strict=True)):
        if d == 1:
            continue
        axis = 2 + i
        spaced = tf.stack([tensor] + [tf.zeros_like(tensor)] * (d - 1), axis=axis + 1)
        dims = tf.shape(tensor)
        merged = tf.reshape(spaced, tf.concat([dims[:axis], [k * d], dims[axis + 1 :]], 0))
        tensor = tf.gather(merged, tf.range((k - 1) * d + 1), axis=axis)
    # oneDNN's transposed convolution fails on a filter of unknown static shape.
    shape = _weight_shape(ctx)
    effective = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    return tf.ensure_shape(tensor, [*shape[:2], *effective])


def _transpose_crop(
    ctx: ExportContext, x: Any, spatial: int, effective: list[int], output_padding: list[int]
) -> tuple[list[int], list[Any] | None]:
    """Where ConvTranspose's output starts in the full (unpadded) result, per spatial axis, and
    its sizes (None: to the end less the end pads), from pads, output_shape or auto_pad."""
    tf = ctx.tf
    strides = ctx.ints("strides", [1] * spatial) or [1] * spatial
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    explicit = ctx.ints("pads", []) or None
    output_shape = ctx.ints("output_shape", []) or None
    in_sizes = x.shape.as_list()[1:-1]
    if explicit is not None and (auto_pad in ("NOTSET", "VALID") or output_shape is not None):
        if output_shape is not None:
            return explicit[:spatial], [int(v) for v in output_shape[-spatial:]]
        if auto_pad == "VALID":
            return [0] * spatial, None
        shape = tf.shape(x)
        sizes = [
            (shape[1 + i] - 1) * strides[i]
            + effective[i]
            + output_padding[i]
            - explicit[i]
            - explicit[spatial + i]
            for i in range(spatial)
        ]
        return explicit[:spatial], sizes
    if output_shape is None and auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        return [0] * spatial, None
    if any(size is None for size in in_sizes):
        raise ctx.error("ConvTranspose with output_shape or auto_pad needs static spatial sizes")
    targets = (
        [int(v) for v in output_shape[-spatial:]]
        if output_shape is not None
        else [int(size) * s for size, s in zip(in_sizes, strides, strict=True)]
    )
    begins = []
    for i in range(spatial):
        total = strides[i] * (int(in_sizes[i]) - 1) + output_padding[i] + effective[i] - targets[i]
        begins.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
    return begins, list(targets)


@ops.register("BatchNormalization", since=15)
def batch_normalization_v15(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    if int(ctx.attr("training_mode", 0)):
        from unframe.backends.tensorflow.ops.normalization import batch_normalization_training

        return batch_normalization_training(ctx)
    held = ctx.physical(0)
    rank = len(held.tensor.shape)
    epsilon = float(ctx.attr("epsilon"))
    params = [ctx.constant_input(i) for i in range(1, 5)]
    # Where the channel axis is last (channels-last, or rank 2) the per-channel vectors broadcast
    # as they are; in NCHW they take trailing unit axes.
    channel_axis = held.physical_axis(1)
    trailing = rank - 1 - channel_axis
    if all(p is not None for p in params):
        scale, bias, mean, var = (np.asarray(p, dtype=np.float64) for p in params)  # type: ignore[arg-type]
        factor = scale / np.sqrt(var + epsilon)
        shift = bias - mean * factor
        dtype = params[0].dtype  # type: ignore[union-attr]
        shape = (-1,) + (1,) * trailing
        factor_t = ctx.weight(factor.astype(dtype).reshape(shape), "scale")
        shift_t = ctx.weight(shift.astype(dtype).reshape(shape), "shift")
        return [wrap(held.tensor * factor_t + shift_t, held.perm)]
    scale, bias, mean, var = (tf.reshape(ctx.input(i), [-1] + [1] * trailing) for i in range(1, 5))
    x = held.tensor
    result = (x - mean) * tf.math.rsqrt(var + epsilon) * scale + bias
    return [wrap(result, held.perm)]


@ops.register("BatchNormalization", since=7)
def batch_normalization_v7(node: ir.Node, ctx: ExportContext) -> Outputs:
    # Before opset 14 the running statistics are outputs a training run fills; inference (the only
    # mode those opsets' exporters wrote for deployment) has Y alone.
    if any(value.name for value in node.outputs[1:]):
        raise ctx.error("the training outputs (running mean/variance) of opsets 7-13")
    return batch_normalization_v15(node, ctx)[:1]


@ops.register("LayerNormalization", since=17)
def layer_normalization_v17(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    x = ctx.input(0)
    rank = len(x.shape)
    axis = normalize_axis(int(ctx.attr("axis", -1)), rank)
    epsilon = float(ctx.attr("epsilon", 1e-5))
    axes = list(range(axis, rank))
    compute = x if x.dtype in (tf.float32, tf.float64) else tf.cast(x, tf.float32)
    mean = tf.reduce_mean(compute, axis=axes, keepdims=True)
    centered = compute - mean
    variance = tf.reduce_mean(tf.square(centered), axis=axes, keepdims=True)
    inv_std = tf.math.rsqrt(variance + tf.cast(epsilon, compute.dtype))
    y = tf.cast(centered * inv_std, x.dtype) * ctx.input(1)
    if ctx.has_input(2):
        y = y + ctx.input(2)
    return [y, mean, inv_std]


@ops.register("MatMul", since=13)
def matmul_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    a, b = ctx.input(0), ctx.input(1)
    # A rank unknown here (a run-time Reshape's result) is taken as a matrix or a batch of them.
    rank_a = a.shape.rank if a.shape.rank is not None else ctx.input_rank(0)
    rank_b = b.shape.rank if b.shape.rank is not None else ctx.input_rank(1)
    squeeze = []
    if rank_a == 1:
        a = tf.expand_dims(a, 0)
        squeeze.append(-2)
    if rank_b == 1:
        b = tf.expand_dims(b, -1)
        squeeze.append(-1)
    result = tf.linalg.matmul(a, b)
    if squeeze:
        result = tf.squeeze(result, axis=squeeze)
    return [result]


@ops.register("Gemm", since=7)  # 7, 9 and 11 widen types and make C optional; one semantics
@ops.register("Gemm", since=13)
def gemm_v13(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    alpha = float(ctx.attr("alpha", 1.0))
    beta = float(ctx.attr("beta", 1.0))
    trans_a = bool(ctx.attr("transA", 0))
    trans_b = bool(ctx.attr("transB", 0))
    a = ctx.input(0)
    b_const = ctx.constant_input(1)
    if b_const is not None and trans_b:
        # Laid out for the product in numpy: no transpose at run time.
        b = ctx.weight(np.ascontiguousarray(b_const.T), "B")
        trans_b = False
    else:
        b = ctx.input(1)
    result = tf.linalg.matmul(a, b, transpose_a=trans_a, transpose_b=trans_b)
    if alpha != 1.0:
        result = result * tf.constant(alpha, result.dtype)
    if ctx.has_input(2):
        c = ctx.input(2)
        if c.shape.rank == 2 and c.shape[0] == 1:
            # TF's oneDNN rewrite fuses MatMul + Add into a bias add that wants a vector
            # ("bias must be 1-dimensional" at run time); broadcasting is the same.
            c = tf.reshape(c, [-1])
        if beta != 1.0:
            c = c * tf.constant(beta, c.dtype)
        result = result + c
    return [result]
