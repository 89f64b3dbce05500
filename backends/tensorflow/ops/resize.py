"""Resize (opset 10-19) and Upsample: separable per-axis interpolation, onnx's reference ported.

``tf.image.resize`` covers a few of ONNX's modes only, so each resized axis is one gather of
``n`` neighbours per output position and a weighted sum. The neighbour indices and weights depend
only on the axis' size, the scale and the attributes, so they are computed in numpy when the model
is converted (static sizes and constant scales/sizes) and reach the graph as constants. Being one
axis at a time, the op runs in whatever layout its input is held in (a channels-last feature map
stays channels-last).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    ir,
    normalize_axis,
    np,
    ops,
    wrap,
)


@dataclass(frozen=True)
class ResizeOptions:
    mode: str = "nearest"
    coordinate: str = "half_pixel"
    nearest_mode: str = "round_prefer_floor"
    cubic_a: float = -0.75
    exclude_outside: bool = False
    extrapolation: float = 0.0
    antialias: bool = False


def _source_coords(
    tf: Any,
    options: ResizeOptions,
    y: Any,
    scale: Any,
    width: Any,
    out_int: Any,
    roi: tuple[Any, Any],
) -> tuple[Any, Any]:
    """Output positions ``y`` mapped to input coordinates (and, for tf_crop_and_resize, which
    ones fall outside the input and take the extrapolation value). All float64."""
    mode = options.coordinate
    out = scale * width
    single = tf.equal(out, 1.0)
    extrapolated = None
    if mode == "align_corners":
        x = tf.where(single, tf.zeros_like(y), y * (width - 1) / tf.maximum(out - 1, 1e-300))
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "tf_crop_and_resize":
        start, end = roi
        span = (end - start) * (width - 1)
        x = tf.where(single, tf.fill(tf.shape(y), span / 2), y * span / (out - 1))
        x = x + start * (width - 1)
        extrapolated = (x < 0) | (x > width - 1)
    elif mode == "pytorch_half_pixel":
        x = tf.where(
            single, tf.fill(tf.shape(y), tf.constant(-0.5, tf.float64)), (y + 0.5) / scale - 0.5
        )
    elif mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif mode == "half_pixel_symmetric":
        offset = width / 2 * (1 - tf.cast(out_int, tf.float64) / out)
        x = offset + (y + 0.5) / scale - 0.5
    else:
        raise ValueError(f"unknown coordinate_transformation_mode {mode!r}")
    return x, extrapolated


def _cubic_kernel(tf: Any, x: Any, a: float) -> Any:
    x = tf.abs(x)
    near = (a + 2) * x**3 - (a + 3) * x**2 + 1
    far = a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return tf.where(x <= 1, near, tf.where(x < 2, far, tf.zeros_like(x)))


def _coefficients(tf: Any, ratio: Any, scale: Any, options: ResizeOptions) -> Any:
    """Per output position, the weights of its ``n`` neighbours: shape ``[out, n]``."""
    r = ratio[:, None]
    a = options.cubic_a
    if options.mode == "linear" and not options.antialias:
        return tf.concat([1 - r, r], axis=1)
    if options.mode == "cubic" and not options.antialias:
        taps = [r + 1, r, 1 - r, 2 - r]
        return tf.concat([_cubic_kernel(tf, t, a) for t in taps], axis=1)
    # Antialiasing stretches the kernel by 1/scale when downsampling (a run-time tap count).
    s = tf.minimum(scale, 1.0)
    if options.mode == "linear":
        start = tf.floor(-1 / s) + 1
        steps = tf.range(start, start + 2 - 2 * start)
        weights = tf.clip_by_value(1 - tf.abs((steps[None, :] - r) * s), 0.0, 1.0)
    else:
        start = tf.floor(-2 / s) + 1
        steps = tf.range(start, 2 - start)
        weights = _cubic_kernel(tf, (steps[None, :] - r) * s, a)
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def _nearest_right(tf: Any, r: Any, nearest_mode: str) -> Any:
    """Whether nearest rounding takes the upper neighbour (``r`` in (0, 1], 1 on a cell)."""
    if nearest_mode == "round_prefer_floor":
        right = r > 0.5
    elif nearest_mode == "round_prefer_ceil":
        right = r >= 0.5
    elif nearest_mode == "floor":
        right = tf.zeros_like(r, dtype=tf.bool)
    else:  # ceil
        right = tf.ones_like(r, dtype=tf.bool)
    return right | tf.equal(r, 1.0)


def _resize_axis(
    ctx: ExportContext,
    data: Any,
    axis: int,
    logical_axis: int,
    scale: Any,
    out_int: Any,
    roi: tuple[Any, Any],
    options: ResizeOptions,
) -> Any:
    """Resizes physical ``axis`` of ``data``: a gather of neighbours and a weighted sum."""
    tf = ctx.tf
    f64 = tf.float64
    rank = len(data.shape)
    width_int = tf.shape(data, out_type=tf.int64)[axis]
    width = tf.cast(width_int, f64)
    y = tf.cast(tf.range(out_int), f64)
    x, extrapolated = _source_coords(tf, options, y, scale, width, out_int, roi)
    x_floor = tf.floor(x)
    ratio = tf.where(tf.equal(x, x_floor), tf.ones_like(x), x - x_floor)
    if options.mode == "nearest":
        # The lower neighbour is floor(x), or x - 1 on a cell (where ratio is 1).
        lower = tf.where(tf.equal(x, x_floor), x_floor - 1, x_floor)
        chosen = lower + tf.cast(_nearest_right(tf, ratio, options.nearest_mode), f64)
        index = tf.clip_by_value(tf.cast(chosen, tf.int64), 0, width_int - 1)
        result = tf.gather(data, index, axis=axis)
    else:
        coeffs = _coefficients(tf, ratio, scale, options)
        n = tf.shape(coeffs, out_type=tf.int64)[1]
        pad = (n + 1) // 2
        padded = x + tf.cast(pad, f64)
        p = tf.cast(tf.floor(padded), tf.int64)
        frac = padded - tf.cast(p, f64)
        offset = tf.where(
            tf.equal(n % 2, 0),
            tf.where(tf.equal(frac, 0.0), -(n // 2), -(n // 2) + 1),
            tf.where(frac <= 0.5, -((n - 1) // 2), -((n - 1) // 2) + 1),
        )
        neighbours = (p + offset)[:, None] + tf.range(n)[None, :] - pad
        if options.exclude_outside:
            outside = (neighbours < 0) | (neighbours >= width_int)
            coeffs = tf.where(outside, tf.zeros_like(coeffs), coeffs)
            total = tf.reduce_sum(coeffs, axis=-1, keepdims=True)
            coeffs = coeffs / tf.where(tf.equal(total, 0.0), tf.ones_like(total), total)
        index = tf.clip_by_value(neighbours, 0, width_int - 1)
        gathered = tf.gather(data, tf.reshape(index, [-1]), axis=axis)
        dims = tf.shape(gathered, out_type=tf.int64)
        gathered = tf.reshape(gathered, tf.concat([dims[:axis], [out_int, n], dims[axis + 1 :]], 0))
        weight_shape = tf.concat(
            [tf.ones([axis], tf.int64), [out_int, n], tf.ones([rank - axis - 1], tf.int64)], 0
        )
        weights = tf.reshape(tf.cast(coeffs, data.dtype), weight_shape)
        result = tf.reduce_sum(gathered * weights, axis=axis + 1)
    if extrapolated is not None:
        mask_shape = tf.concat(
            [tf.ones([axis], tf.int64), [out_int], tf.ones([rank - axis - 1], tf.int64)], 0
        )
        fill = tf.constant(options.extrapolation, result.dtype)
        result = tf.where(tf.reshape(extrapolated, mask_shape), fill, result)
    return result


def _vector(ctx: ExportContext, index: int) -> tuple[Any, np.ndarray | None]:
    """Input ``index`` (roi, scales or sizes) as a tensor and, where known, its constant value;
    ``(None, None)`` where it is absent or empty."""
    if not ctx.has_input(index):
        return None, None
    constant = ctx.constant_input(index)
    if constant is not None:
        if constant.size == 0:
            return None, None
        return ctx.tf.constant(constant.reshape(-1)), constant.reshape(-1)
    shape = ctx.input_shape(index)
    if shape is not None and shape and shape[0] == 0:
        return None, None
    return ctx.tf.reshape(ctx.input(index), [-1]), None


def _text(ctx: ExportContext, name: str, default: str) -> str:
    value = ctx.attr(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _resize(
    ctx: ExportContext,
    options: ResizeOptions,
    roi: tuple[Any, np.ndarray | None],
    scales: tuple[Any, np.ndarray | None],
    sizes: tuple[Any, np.ndarray | None],
    axes: list[int] | None,
    policy: str,
) -> Outputs:
    tf = ctx.tf
    f64 = tf.float64
    held = ctx.physical(0)
    rank = ctx.input_rank(0)
    if rank is None:
        raise ctx.error("Resize needs an input of known rank")
    axes = [normalize_axis(a, rank) for a in axes] if axes else list(range(rank))
    count = len(axes)
    physical_shape = tf.shape(held.tensor, out_type=tf.int64)
    widths = tf.cast(tf.stack([physical_shape[held.physical_axis(a)] for a in axes]), f64)
    (roi_tensor, roi_known), (scales_tensor, scales_known), (sizes_tensor, sizes_known) = (
        roi,
        scales,
        sizes,
    )
    if sizes_tensor is not None:
        targets = tf.cast(sizes_tensor, f64)
        factors = targets / widths
        if policy != "stretch":
            pick = tf.reduce_min if policy == "not_larger" else tf.reduce_max
            factors = tf.fill([count], pick(factors))
            targets = tf.floor(factors * widths + 0.5)
        out_sizes = tf.cast(targets, tf.int64)
    elif scales_tensor is not None:
        factors = tf.cast(scales_tensor, f64)
        if scales_known is not None and len(scales_known) == rank and count != rank:
            factors = tf.gather(factors, axes)
        out_sizes = tf.cast(tf.floor(factors * widths), tf.int64)
    else:
        raise ctx.error("Resize needs scales or sizes")
    dtype = held.tensor.dtype
    result = held.tensor
    if options.mode != "nearest" and not dtype.is_floating:
        result = tf.cast(result, tf.float32)
    for i, axis in enumerate(axes):
        if _identity_axis(options, i, count, roi_known, scales_known, sizes_known, policy):
            continue
        if roi_tensor is None:
            axis_roi: tuple[Any, Any] = (0.0, 1.0)
        else:
            roi_f64 = tf.cast(roi_tensor, f64)
            axis_roi = (roi_f64[i], roi_f64[count + i])
        result = _resize_axis(
            ctx,
            result,
            held.physical_axis(axis),
            axis,
            factors[i],
            out_sizes[i],
            axis_roi,
            options,
        )
    if result.dtype != dtype:
        info = np.iinfo(dtype.as_numpy_dtype)
        result = tf.cast(tf.clip_by_value(tf.round(result), info.min, info.max), dtype)
    return [wrap(result, held.perm)]


def _identity_axis(
    options: ResizeOptions,
    i: int,
    count: int,
    roi: np.ndarray | None,
    scales: np.ndarray | None,
    sizes: np.ndarray | None,
    policy: str,
) -> bool:
    """Whether axis ``i`` is statically left as it is (a scale of 1 and no crop)."""
    if options.coordinate == "tf_crop_and_resize" and (
        roi is None or roi[i] != 0.0 or roi[count + i] != 1.0
    ):
        return False
    if sizes is not None or policy != "stretch":
        return False
    return scales is not None and len(scales) == count and float(scales[i]) == 1.0


def _options(ctx: ExportContext, coordinate: str, nearest_mode: str | None = None) -> ResizeOptions:
    return ResizeOptions(
        mode=_text(ctx, "mode", "nearest"),
        coordinate=coordinate,
        nearest_mode=nearest_mode or _text(ctx, "nearest_mode", "round_prefer_floor"),
        cubic_a=float(ctx.attr("cubic_coeff_a", -0.75)),
        exclude_outside=bool(ctx.attr("exclude_outside", 0)),
        extrapolation=float(ctx.attr("extrapolation_value", 0.0)),
        antialias=bool(ctx.attr("antialias", 0)),
    )


@ops.register("Resize", since=10)
def resize_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    # Opset 10 maps coordinates asymmetrically and rounds nearest down (as onnxruntime does).
    options = _options(ctx, "asymmetric", nearest_mode="floor")
    return _resize(ctx, options, (None, None), _vector(ctx, 1), (None, None), None, "stretch")


def _resize_v11(ctx: ExportContext, with_axes: bool) -> Outputs:
    options = _options(ctx, _text(ctx, "coordinate_transformation_mode", "half_pixel"))
    axes = ctx.ints("axes", []) if with_axes else None
    policy = _text(ctx, "keep_aspect_ratio_policy", "stretch") if with_axes else "stretch"
    return _resize(ctx, options, _vector(ctx, 1), _vector(ctx, 2), _vector(ctx, 3), axes, policy)


@ops.register("Resize", since=11)
def resize_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _resize_v11(ctx, with_axes=False)


@ops.register("Resize", since=18)
def resize_v18(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _resize_v11(ctx, with_axes=True)


@ops.register("Upsample", since=7)
def upsample_v7(node: ir.Node, ctx: ExportContext) -> Outputs:
    options = _options(ctx, "asymmetric", nearest_mode="floor")
    scales = np.asarray([float(s) for s in ctx.attr("scales")], dtype=np.float32)
    known = (ctx.tf.constant(scales), scales)
    return _resize(ctx, options, (None, None), known, (None, None), None, "stretch")


@ops.register("Upsample", since=9)
def upsample_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    options = _options(ctx, "asymmetric", nearest_mode="floor")
    return _resize(ctx, options, (None, None), _vector(ctx, 1), (None, None), None, "stretch")
