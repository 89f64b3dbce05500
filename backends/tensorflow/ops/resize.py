"""Resize (opset 10-19) and Upsample: separable per-axis interpolation, onnx's reference ported.

``tf.image.resize`` covers a few of ONNX's modes only, so each resized axis is one gather of
``n`` neighbours per output position and a weighted sum. The neighbour indices and weights depend
only on the axis' size, the scale and the attributes, so they are computed in numpy when the model
is converted (static sizes and constant scales/sizes) and reach the graph as constants. Being one
axis at a time, the op runs in whatever layout its input is held in (a channels-last feature map
stays channels-last).
"""

from __future__ import annotations

from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    Physical,
    for_tflite,
    ir,
    normalize_axis,
    np,
    ops,
    wrap,
)
from unframe.shared_ir.resize_rules import (
    ResizeOptions,
    legacy_resize_options,
    resize_axes_and_policy,
    resize_options,
)


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
    ones fall outside the input and take the extrapolation value), in ``y``'s float type."""
    mode = options.coordinate
    out = scale * width
    single = tf.equal(out, 1.0)
    extrapolated = None
    if mode == "align_corners":
        x = tf.where(single, tf.zeros_like(y), y * (width - 1) / tf.maximum(out - 1, 1e-30))
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
            single, tf.fill(tf.shape(y), tf.constant(-0.5, y.dtype)), (y + 0.5) / scale - 0.5
        )
    elif mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif mode == "half_pixel_symmetric":
        offset = width / 2 * (1 - tf.cast(out_int, y.dtype) / out)
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


#: One axis' resampling: the neighbour indices ([out], or [out, n] with weights [out, n]) and
#: which outputs take the extrapolation value (None: none).
Plan = tuple[Any, Any, Any]


def _axis_plan(
    tf: Any,
    width_int: Any,
    scale: Any,
    out_int: Any,
    roi: tuple[Any, Any],
    options: ResizeOptions,
) -> Plan:
    """Where each output position of one axis reads, and with which weights (in ``scale``'s
    float type; sizes and indices int32)."""
    f64 = scale.dtype
    width = tf.cast(width_int, f64)
    y = tf.cast(tf.range(out_int), f64)
    x, extrapolated = _source_coords(tf, options, y, scale, width, out_int, roi)
    x_floor = tf.floor(x)
    ratio = tf.where(tf.equal(x, x_floor), tf.ones_like(x), x - x_floor)
    if options.mode == "nearest":
        # The lower neighbour is floor(x), or x - 1 on a cell (where ratio is 1).
        lower = tf.where(tf.equal(x, x_floor), x_floor - 1, x_floor)
        chosen = lower + tf.cast(_nearest_right(tf, ratio, options.nearest_mode), f64)
        return tf.clip_by_value(tf.cast(chosen, tf.int32), 0, width_int - 1), None, extrapolated
    coeffs = _coefficients(tf, ratio, scale, options)
    n = tf.shape(coeffs)[1]
    pad = (n + 1) // 2
    padded = x + tf.cast(pad, f64)
    p = tf.cast(tf.floor(padded), tf.int32)
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
    return tf.clip_by_value(neighbours, 0, width_int - 1), coeffs, extrapolated


def _apply_plan(ctx: ExportContext, data: Any, axis: int, plan: Plan, fill: float) -> Any:
    """Resamples physical ``axis`` of ``data``: one gather and, but for nearest, a weighted sum."""
    tf = ctx.tf
    index, coeffs, extrapolated = plan
    rank = len(data.shape)
    if coeffs is None:
        result = tf.gather(data, index, axis=axis)
        out_int = tf.shape(index)[0]
    else:
        out_int, n = tf.shape(index)[0], tf.shape(index)[1]
        gathered = tf.gather(data, tf.reshape(index, [-1]), axis=axis)
        dims = tf.shape(gathered)
        gathered = tf.reshape(gathered, tf.concat([dims[:axis], [out_int, n], dims[axis + 1 :]], 0))
        weight_shape = tf.concat(
            [tf.ones([axis], tf.int32), [out_int, n], tf.ones([rank - axis - 1], tf.int32)], 0
        )
        weights = tf.reshape(tf.cast(coeffs, data.dtype), weight_shape)
        result = tf.reduce_sum(gathered * weights, axis=axis + 1)
    if extrapolated is not None:
        mask_shape = tf.concat(
            [tf.ones([axis], tf.int32), [out_int], tf.ones([rank - axis - 1], tf.int32)], 0
        )
        result = tf.where(
            tf.reshape(extrapolated, mask_shape), tf.constant(fill, result.dtype), result
        )
    return result


def _static_plan(ctx: ExportContext, plan: Plan) -> Plan:
    """A plan computed eagerly at conversion time, as graph constants (int32 indices, weights
    in the data's type): no float64 arithmetic at run time, which TFLite's builtins lack.

    Called outside ``tf.init_scope``: a constant made eagerly would be captured by the traced
    function as an extra input, which readers of the SavedModel's signature do not expect.
    """
    index, weights, outside = plan
    return (
        ctx.make_constant(index, "index"),
        None if weights is None else ctx.make_constant(weights, "weights"),
        None if outside is None else ctx.make_constant(outside, "outside"),
    )


def _plan_arrays(plan: Plan, dtype: Any) -> Plan:
    """An eagerly computed plan's values as numpy arrays (see ``_static_plan``)."""
    index, coeffs, extrapolated = plan
    weights = None if coeffs is None else coeffs.numpy().astype(dtype.as_numpy_dtype)
    outside = None
    if extrapolated is not None and bool(np.any(extrapolated.numpy())):
        outside = extrapolated.numpy()
    return index.numpy().astype(np.int32), weights, outside


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
    held = ctx.physical(0)
    shape = ctx.input_shape(0)
    if shape is None:
        raise ctx.error("Resize needs an input of known rank")
    rank = len(shape)
    axes = [normalize_axis(a, rank) for a in axes] if axes else list(range(rank))
    count = len(axes)
    if sizes[0] is None and scales[0] is None:
        raise ctx.error("Resize needs scales or sizes")
    dtype = held.tensor.dtype
    compute = dtype if dtype.is_floating else tf.float32
    kept = [
        i
        for i in range(count)
        if not _identity_axis(options, i, count, roi[1], scales[1], sizes[1], policy)
    ]
    known = all(t is None or k is not None for t, k in (roi, scales, sizes))
    if known and all(shape[axes[i]] is not None for i in kept):
        # Everything the indices depend on is known: compute them now, in numpy's float64.
        with tf.init_scope():
            eager = [None if k is None else tf.constant(k) for _, k in (roi, scales, sizes)]
            widths = tf.constant([shape[a] or 1 for a in axes], tf.int32)
            plans = _plans(
                tf, widths, eager, scales[1], rank, axes, kept, policy, options, tf.float64
            )
            arrays = [(i, _plan_arrays(plan, compute)) for i, plan in plans]
        plans = [(i, _static_plan(ctx, plan)) for i, plan in arrays]
        if not plans:
            return [held]
    else:
        physical = tf.shape(held.tensor)
        widths = tf.stack([physical[held.physical_axis(a)] for a in axes])
        tensors = [roi[0], scales[0], sizes[0]]
        # float32 at run time: TFLite's builtins have no float64 arithmetic.
        plans = _plans(
            tf, widths, tensors, scales[1], rank, axes, kept, policy, options, tf.float32
        )
    result = held.tensor
    if options.mode != "nearest" and not dtype.is_floating:
        result = tf.cast(result, compute)
    for i, plan in plans:
        result = _apply_plan(ctx, result, held.physical_axis(axes[i]), plan, options.extrapolation)
    if result.dtype != dtype:
        info = np.iinfo(dtype.as_numpy_dtype)
        result = tf.cast(tf.clip_by_value(tf.round(result), info.min, info.max), dtype)
    return [wrap(_with_known_dims(ctx, result, held, axes, kept, policy), held.perm)]


def _with_known_dims(
    ctx: ExportContext,
    result: Any,
    held: Physical,
    axes: list[int],
    kept: list[int],
    policy: str,
) -> Any:
    """``result`` with the static dims it lost to run-time sizes: an axis left as it is keeps
    the input's, and ONNX's shape inference may know the others.

    A gather along a run-time index and a reshape to a computed shape leave every dim unknown,
    and TFLite legalizes some ops (Conv2D) only with a static channel depth.
    """
    logical_in = ctx.input_shape(0) or ()
    inferred = ctx.node.outputs[0].shape
    if inferred is None or len(inferred) != len(logical_in):
        inferred = None
    resized = {axes[i] for i in kept}
    from_sizes = dict(zip(axes, _sizes_read_from_shapes(ctx, len(axes), policy), strict=True))
    known: list[int | None] = []
    for axis, size in enumerate(logical_in):
        dim = None if inferred is None else inferred[axis]
        if not isinstance(dim, int):
            dim = from_sizes.get(axis) if axis in resized else size
        known.append(dim)
    physical = known if held.perm is None else [known[axis] for axis in held.perm]
    have = result.shape.as_list() if result.shape.rank is not None else [None] * len(physical)
    if len(have) != len(physical):
        return result
    if not any(k is not None and h is None for k, h in zip(physical, have, strict=True)):
        return result
    tf = ctx.tf
    if for_tflite(ctx):
        # TFLite has no EnsureShape, and its converter infers shapes again from the ops (a
        # set_shape is lost): a reshape to the known dims, run-time ones elsewhere, carries them.
        run_time = tf.shape(result)
        dims = [run_time[i] if k is None else k for i, k in enumerate(physical)]
        return tf.reshape(result, tf.stack(dims))
    return tf.ensure_shape(result, physical)


def _sizes_read_from_shapes(ctx: ExportContext, count: int, policy: str) -> list[int | None]:
    """Per resized axis, the output size a run-time ``sizes`` input still fixes statically.

    ``F.interpolate(size=...)`` exports ``sizes`` as a Concat of the input's leading dims (a
    Shape with start/end) and the target's spatial dims: a constant entry, or one read from a
    value's static dim, is that axis' size. ONNX's shape inference propagates no values, so it
    knows neither.
    """
    unknown: list[int | None] = [None] * count
    sizes_value = ctx.node.inputs[3] if ctx.has_input(3) else None
    concat = None if sizes_value is None else sizes_value.producer()
    if policy != "stretch" or concat is None or concat.op_type != "Concat":
        return unknown
    sizes: list[int | None] = []
    for part in concat.inputs:
        producer = None if part is None else part.producer()
        if part is not None and part.const_value is not None:
            sizes += [int(v) for v in part.const_value.numpy().reshape(-1)]
        elif producer is not None and producer.op_type == "Shape":
            source = producer.inputs[0]
            if source is None or source.shape is None:
                return unknown
            rank = len(source.shape)
            start, end = (
                min(max(b + rank if b < 0 else b, 0), rank)
                for b in (
                    producer.attributes.get_int("start", 0),
                    producer.attributes.get_int("end", rank),
                )
            )
            sizes += [d if isinstance(d, int) else None for d in list(source.shape)[start:end]]
        elif part is not None and part.shape is not None and part.shape.is_static():
            sizes += [None] * int(np.prod(part.shape.numpy()))
        else:
            return unknown
    return sizes if len(sizes) == count else unknown


def _plans(
    tf: Any,
    widths: Any,
    tensors: list[Any],
    scales_known: np.ndarray | None,
    rank: int,
    axes: list[int],
    kept: list[int],
    policy: str,
    options: ResizeOptions,
    real: Any,
) -> list[tuple[int, Plan]]:
    """Every resized axis' plan (position among ``axes``, plan) from the roi/scales/sizes
    tensors (eager constants or run-time values) and the axes' sizes (int32), computed in the
    float type ``real``."""
    f64 = real
    roi, scales, sizes = tensors
    count = len(axes)
    widths_f = tf.cast(widths, f64)
    if sizes is not None:
        targets = tf.cast(sizes, f64)
        factors = targets / widths_f
        if policy != "stretch":
            pick = tf.reduce_min if policy == "not_larger" else tf.reduce_max
            factors = tf.fill([count], pick(factors))
            targets = tf.floor(factors * widths_f + 0.5)
        out_sizes = tf.cast(targets, tf.int32)
    else:
        factors = tf.cast(scales, f64)
        if scales_known is not None and len(scales_known) == rank and count != rank:
            factors = tf.gather(factors, axes)
        out_sizes = tf.cast(tf.floor(factors * widths_f), tf.int32)
    plans = []
    for i in kept:
        if roi is None:
            axis_roi: tuple[Any, Any] = (0.0, 1.0)
        else:
            roi_f64 = tf.cast(roi, f64)
            axis_roi = (roi_f64[i], roi_f64[count + i])
        plan = _axis_plan(tf, widths[i], factors[i], out_sizes[i], axis_roi, options)
        plans.append((i, plan))
    return plans


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


def _resize_legacy(ctx: ExportContext, scales: tuple[Any, np.ndarray | None]) -> Outputs:
    """Resize 10 and Upsample: every axis by ``scales``, by the rules of before opset 11."""
    options = legacy_resize_options(ctx)
    return _resize(ctx, options, (None, None), scales, (None, None), None, "stretch")


@ops.register("Resize", since=10)
def resize_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _resize_legacy(ctx, _vector(ctx, 1))


def _resize_v11(ctx: ExportContext, with_axes: bool) -> Outputs:
    options = resize_options(ctx)
    axes, policy = resize_axes_and_policy(ctx, with_axes)
    return _resize(ctx, options, _vector(ctx, 1), _vector(ctx, 2), _vector(ctx, 3), axes, policy)


@ops.register("Resize", since=11)
def resize_v11(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _resize_v11(ctx, with_axes=False)


@ops.register("Resize", since=18)
def resize_v18(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _resize_v11(ctx, with_axes=True)


@ops.register("Upsample", since=7)
def upsample_v7(node: ir.Node, ctx: ExportContext) -> Outputs:
    scales = np.asarray([float(s) for s in ctx.attr("scales")], dtype=np.float32)
    return _resize_legacy(ctx, (ctx.tf.constant(scales), scales))


@ops.register("Upsample", since=9)
def upsample_v9(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _resize_legacy(ctx, _vector(ctx, 1))
