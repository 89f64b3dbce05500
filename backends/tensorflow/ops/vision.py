"""Vision ops: GridSample (2-D and N-D), NonMaxSuppression, Col2Im, RoiAlign, DeformConv.

GridSample reads the input channels-last (one ``gather_nd`` fetches every channel of a pixel)
and follows onnx's reference: coordinates denormalized per axis, nearest rounded half to even,
out-of-range coordinates clamped or reflected per padding_mode, then every tap combination of
the per-axis kernels (1 nearest, 2 linear, 4 cubic) weighted and summed.
"""

from __future__ import annotations

import itertools
from typing import Any

from unframe.backends.tensorflow.ops._common import (
    ExportContext,
    Outputs,
    Physical,
    channels_last,
    for_tflite,
    ir,
    ops,
)

_CUBIC_A = -0.75


def _text(ctx: ExportContext, name: str, default: str) -> str:
    value = ctx.attr(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _reflect(tf: Any, x: Any, low: float, high: float) -> Any:
    """Reflects ``x`` by the near border until it lies in [low, high] (onnx's _gs_reflect)."""
    span = high - low
    below = low - x
    above = x - high
    n_below = tf.floor(below / span)
    n_above = tf.floor(above / span)
    r_below = below - n_below * span
    r_above = above - n_above * span
    even_below = tf.equal(tf.math.floormod(n_below, 2.0), 0.0)
    even_above = tf.equal(tf.math.floormod(n_above, 2.0), 0.0)
    from_below = tf.where(even_below, low + r_below, high - r_below)
    from_above = tf.where(even_above, high - r_above, low + r_above)
    return tf.where(x < low, from_below, tf.where(x > high, from_above, x))


def _cubic_weights(tf: Any, t: Any) -> list[Any]:
    a = _CUBIC_A

    def far(d: Any) -> Any:
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    def near(d: Any) -> Any:
        return ((a + 2) * d - (a + 3)) * d * d + 1

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


@ops.register("GridSample", since=16)
def grid_sample_v16(node: ir.Node, ctx: ExportContext) -> Outputs:
    tf = ctx.tf
    mode = _text(ctx, "mode", "bilinear" if ctx.opset < 20 else "linear")
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    padding_mode = _text(ctx, "padding_mode", "zeros")
    align = bool(ctx.attr("align_corners", 0))
    rank = ctx.input_rank(0)
    shape = ctx.input_shape(0)
    if rank is None or shape is None or any(d is None for d in shape[2:]):
        raise ctx.error("GridSample needs the input's spatial sizes before run time")
    dims = [int(d) for d in shape[2:] if d is not None]
    spatial = len(dims)
    x = ctx.channels_last(0)  # [N, D1.., C]
    grid = ctx.input(1)  # [N, O1.., spatial], the last axis x (innermost) first
    dtype = x.dtype
    grid = tf.cast(grid, dtype)
    taps = []
    for i, size in enumerate(dims):
        n = grid[..., spatial - 1 - i]
        pos = (n + 1) / 2 * (size - 1) if align else ((n + 1) * size - 1) / 2
        if mode == "nearest":
            pos = tf.round(pos)  # half to even, as onnx's reference (np.rint)
        low, high = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
        if padding_mode == "border":
            pos = tf.where((pos < low) | (pos > high), tf.clip_by_value(pos, 0.0, size - 1.0), pos)
        elif padding_mode == "reflection":
            pos = _reflect(tf, pos, low, high)
        if mode == "nearest":
            taps.append([(tf.cast(pos, tf.int32), tf.ones_like(pos))])
            continue
        base = tf.floor(pos)
        t = pos - base
        start = tf.cast(base, tf.int32)
        if mode == "linear":
            taps.append([(start, 1 - t), (start + 1, t)])
        elif mode == "cubic":
            weights = _cubic_weights(tf, t)
            taps.append([(start + k - 1, weights[k]) for k in range(4)])
        else:
            raise ctx.error(f"unknown GridSample mode {mode!r}")
    batch = tf.shape(grid)[0]
    out_rank = len(grid.shape) - 1
    batch_index = tf.reshape(tf.range(batch), [-1] + [1] * (out_rank - 1))
    batch_index = tf.broadcast_to(batch_index, tf.shape(grid)[:-1])
    result = None
    for combo in itertools.product(*taps):
        indices: list[Any] = []
        weight: Any = None
        valid: Any = None
        for axis, (index, w) in enumerate(combo):
            fetched, inside = _pixel_index(tf, index, dims[axis], padding_mode, align)
            indices.append(fetched)
            weight = w if weight is None else weight * w
            if inside is not None:
                valid = inside if valid is None else valid & inside
        values = tf.gather_nd(x, tf.stack([batch_index, *indices], axis=-1))  # [N, O.., C]
        if valid is not None:
            values = tf.where(valid[..., None], values, tf.zeros_like(values))
        term = values * weight[..., None]
        result = term if result is None else result + term
    return [Physical(result, channels_last(spatial + 2))]


def _pixel_index(tf: Any, index: Any, size: int, padding_mode: str, align: bool) -> tuple[Any, Any]:
    """Where a tap reads (always in range) and, for zeros padding, whether it is inside."""
    if padding_mode == "zeros":
        inside = (index >= 0) & (index < size)
        return tf.clip_by_value(index, 0, size - 1), inside
    if padding_mode == "border":
        return tf.clip_by_value(index, 0, size - 1), None
    low, high = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
    reflected = _reflect(tf, tf.cast(index, tf.float32), low, high)
    return tf.clip_by_value(tf.cast(reflected, tf.int32), 0, size - 1), None


def _optional_scalar(ctx: ExportContext, index: int, dtype: Any, default: float) -> Any:
    """A scalar input (absent or empty: ``default``)."""
    tf = ctx.tf
    if not ctx.has_input(index):
        return tf.constant(default, dtype)
    flat = tf.reshape(tf.cast(ctx.input(index), dtype), [-1])
    return tf.cond(tf.size(flat) > 0, lambda: flat[0], lambda: tf.constant(default, dtype))


@ops.register("NonMaxSuppression", since=10)
def non_max_suppression_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    """TF's per-class NMS (corners in either order, IoU > threshold suppresses, scores above
    score_threshold kept) for every batch and class; rows (batch, class, box) in that order."""
    tf = ctx.tf
    boxes, scores = ctx.input(0), ctx.input(1)
    batches, classes = scores.shape[0], scores.shape[1]
    if batches is None or classes is None:
        raise ctx.error("NonMaxSuppression needs the batch and class counts before run time")
    if int(ctx.attr("center_point_box", 0)):
        xc, yc, w, h = (boxes[..., i] for i in range(4))
        boxes = tf.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)
    limit = _optional_scalar(ctx, 2, tf.int64, 0)
    iou = _optional_scalar(ctx, 3, tf.float32, 0.0)
    score_cut = _optional_scalar(ctx, 4, tf.float32, float("-inf"))
    rows = []
    for b in range(batches):
        batch_boxes = tf.cast(boxes[b], tf.float32)
        for c in range(classes):
            kept = _selected_boxes(
                ctx, batch_boxes, tf.cast(scores[b, c], tf.float32), limit, iou, score_cut
            )
            kept = tf.cast(kept, tf.int64)[:, None]
            fixed = tf.broadcast_to(tf.constant([[b, c]], tf.int64), [tf.shape(kept)[0], 2])
            rows.append(tf.concat([fixed, kept], axis=1))
    if not rows:
        return [tf.zeros([0, 3], tf.int64)]
    return [tf.concat(rows, axis=0)]


def _selected_boxes(
    ctx: ExportContext, boxes: Any, scores: Any, limit: Any, iou: Any, score_cut: Any
) -> Any:
    """The indices TF's NMS selects; for a TFLite export from the padded form, cut to its count
    of valid indices here (TFLite's NON_MAX_SUPPRESSION_V4 returns them padded, and the cut
    TFLiteConverter adds for the plain form left the padding in)."""
    tf = ctx.tf
    if not for_tflite(ctx):
        return tf.image.non_max_suppression(
            boxes, scores, tf.cast(limit, tf.int32), iou_threshold=iou, score_threshold=score_cut
        )
    # ONNX suppresses a box whose IoU is above the threshold, LiteRT one whose IoU reaches it:
    # the next float32 above a threshold in [0, 1] (its bits plus one) draws ONNX's line.
    above = tf.bitcast(tf.bitcast(tf.cast(iou, tf.float32), tf.int32) + 1, tf.float32)
    padded, valid = tf.image.non_max_suppression_padded(
        boxes,
        scores,
        tf.cast(limit, tf.int32),
        iou_threshold=above,
        score_threshold=score_cut,
        pad_to_max_output_size=True,
    )
    return tf.slice(padded, [0], tf.reshape(valid, [1]))


@ops.register("Col2Im", since=18)
def col2im_v18(node: ir.Node, ctx: ExportContext) -> Outputs:
    """Sums every column entry into its image cell (``unsorted_segment_sum``); image and block
    shapes may be computed at run time (their length must be known). int32 index arithmetic:
    TFLite's FloorDiv has no int64."""
    tf = ctx.tf
    x = ctx.input(0)  # [N, C * prod(block), L]
    image = tf.cast(tf.reshape(ctx.input(1), [-1]), tf.int32)
    block = tf.cast(tf.reshape(ctx.input(2), [-1]), tf.int32)
    count = ctx.input_shape(1)
    if count is None or count[0] is None:
        raise ctx.error("Col2Im needs the length of image_shape before run time")
    n = int(count[0])
    dilations = ctx.ints("dilations", [1] * n) or [1] * n
    pads = ctx.ints("pads", [0] * 2 * n) or [0] * 2 * n
    strides = ctx.ints("strides", [1] * n) or [1] * n
    blocks = [
        (image[i] + pads[i] + pads[i + n] - (dilations[i] * (block[i] - 1) + 1)) // strides[i] + 1
        for i in range(n)
    ]
    kernel_grid = tf.meshgrid(*[tf.range(block[i]) for i in range(n)], indexing="ij")
    block_grid = tf.meshgrid(*[tf.range(blocks[i]) for i in range(n)], indexing="ij")
    kernel_size = tf.reduce_prod(block)
    block_count = tf.reduce_prod(tf.stack(blocks))
    cells = tf.reduce_prod(image)
    valid = tf.ones(tf.stack([kernel_size, block_count]), tf.bool)
    flat = tf.zeros(tf.stack([kernel_size, block_count]), tf.int32)
    for i in range(n):
        pos = (
            tf.reshape(block_grid[i], [1, -1]) * strides[i]
            - pads[i]
            + tf.reshape(kernel_grid[i], [-1, 1]) * dilations[i]
        )
        valid &= (pos >= 0) & (pos < image[i])
        flat = flat * image[i] + pos
    shape = tf.shape(x)
    batch = shape[0]
    channels = shape[1] // kernel_size
    cols = tf.reshape(x, tf.stack([batch, channels, kernel_size * block_count]))
    cols = tf.transpose(cols, [2, 0, 1])  # [K * L, N, C]
    # Cells outside the image go to one extra segment, dropped after the sum.
    segments = tf.reshape(tf.where(valid, flat, cells), [-1])
    summed = tf.math.unsorted_segment_sum(cols, segments, cells + 1)[:-1]  # [P, N, C]
    out = tf.transpose(summed, [1, 2, 0])
    return [tf.reshape(out, tf.concat([tf.stack([batch, channels]), image], 0))]


def _roi_axis(
    tf: Any, start: Any, bin_size: Any, pooled: int, grid: Any, size: Any
) -> tuple[Any, Any, Any, Any]:
    """Per sample along one axis (float64): low index, high index, weight of high, validity."""
    f64 = tf.float64
    p = tf.cast(tf.range(pooled), f64)[:, None]
    i = tf.cast(tf.range(grid), f64)[None, :]
    pos = tf.reshape(start + p * bin_size + (i + 0.5) * bin_size / tf.cast(grid, f64), [-1])
    size_f = tf.cast(size, f64)
    valid = (pos >= -1.0) & (pos <= size_f)
    pos = tf.maximum(pos, 0.0)
    low = tf.cast(tf.floor(pos), tf.int32)
    edge = low >= size - 1
    low = tf.where(edge, tf.fill(tf.shape(low), size - 1), low)
    high = tf.where(edge, low, low + 1)
    pos = tf.where(edge, tf.cast(low, f64), pos)
    return low, high, pos - tf.cast(low, f64), valid


def _roi_align(ctx: ExportContext, default_mode: str) -> Outputs:
    """Each RoI pooled from bilinear samples on a grid (adaptive where sampling_ratio is 0), as
    onnxruntime does; one ``tf.map_fn`` step per RoI."""
    tf = ctx.tf
    f64 = tf.float64
    half_pixel = _text(ctx, "coordinate_transformation_mode", default_mode) == "half_pixel"
    mode = _text(ctx, "mode", "avg")
    out_h = int(ctx.attr("output_height", 1))
    out_w = int(ctx.attr("output_width", 1))
    ratio = int(ctx.attr("sampling_ratio", 0))
    scale = float(ctx.attr("spatial_scale", 1.0))
    x = ctx.input(0)
    data = tf.cast(x, f64)
    height, width = tf.shape(x)[2], tf.shape(x)[3]
    offset = 0.5 if half_pixel else 0.0

    def pool(roi_and_batch: tuple[Any, Any]) -> Any:
        roi, batch = roi_and_batch
        x0, y0, x1, y1 = (roi[k] * scale - offset for k in range(4))
        roi_w, roi_h = x1 - x0, y1 - y0
        if not half_pixel:
            roi_w, roi_h = tf.maximum(roi_w, 1.0), tf.maximum(roi_h, 1.0)
        grid_h = ratio if ratio > 0 else tf.cast(tf.math.ceil(roi_h / out_h), tf.int32)
        grid_w = ratio if ratio > 0 else tf.cast(tf.math.ceil(roi_w / out_w), tf.int32)
        y_lo, y_hi, ly, y_ok = _roi_axis(tf, y0, roi_h / out_h, out_h, grid_h, height)
        x_lo, x_hi, lx, x_ok = _roi_axis(tf, x0, roi_w / out_w, out_w, grid_w, width)
        image = data[batch]  # [C, H, W]
        rows_lo, rows_hi = tf.gather(image, y_lo, axis=1), tf.gather(image, y_hi, axis=1)
        ly, lx = ly[:, None], lx[None, :]
        terms = [
            (1 - ly) * (1 - lx) * tf.gather(rows_lo, x_lo, axis=2),
            (1 - ly) * lx * tf.gather(rows_lo, x_hi, axis=2),
            ly * (1 - lx) * tf.gather(rows_hi, x_lo, axis=2),
            ly * lx * tf.gather(rows_hi, x_hi, axis=2),
        ]
        ok = tf.cast(y_ok[:, None] & x_ok[None, :], f64)
        combined = tf.add_n(terms) if mode == "avg" else tf.reduce_max(tf.stack(terms), axis=0)
        value = tf.reshape(combined * ok, tf.stack([-1, out_h, grid_h, out_w, grid_w]))
        if mode == "avg":
            count = tf.cast(tf.maximum(grid_h * grid_w, 1), f64)
            return tf.reduce_sum(value, axis=[2, 4]) / count
        return tf.reduce_max(value, axis=[2, 4])

    rois = tf.cast(ctx.input(1), f64)
    batches = tf.cast(ctx.input(2), tf.int32)
    pooled = tf.map_fn(
        pool, (rois, batches), fn_output_signature=tf.TensorSpec([None, out_h, out_w], f64)
    )
    return [tf.cast(pooled, x.dtype)]


@ops.register("RoiAlign", since=10)
def roi_align_v10(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _roi_align(ctx, "output_half_pixel")


@ops.register("RoiAlign", since=16)
def roi_align_v16(node: ir.Node, ctx: ExportContext) -> Outputs:
    return _roi_align(ctx, "half_pixel")


def _bilinear_taps(tf: Any, ys: Any, xs: Any, height: Any, width: Any) -> list[tuple[Any, Any]]:
    """The four corners of each sample: (y, x) int32 indices clipped in range, and their
    weights, zero for corners outside the image (zeros padding)."""
    y0, x0 = tf.floor(ys), tf.floor(xs)
    wy1, wx1 = ys - y0, xs - x0
    taps = []
    for dy, wy in ((0.0, 1 - wy1), (1.0, wy1)):
        for dx, wx in ((0.0, 1 - wx1), (1.0, wx1)):
            y, x = y0 + dy, x0 + dx
            inside = (y >= 0) & (y <= tf.cast(height - 1, ys.dtype))
            inside &= (x >= 0) & (x <= tf.cast(width - 1, xs.dtype))
            weight = tf.where(inside, wy * wx, tf.zeros_like(wy))
            index = tf.stack(
                [
                    tf.clip_by_value(tf.cast(y, tf.int32), 0, height - 1),
                    tf.clip_by_value(tf.cast(x, tf.int32), 0, width - 1),
                ],
                axis=-1,
            )
            taps.append((index, weight))
    return taps


@ops.register("DeformConv", since=19)
def deform_conv_v19(node: ir.Node, ctx: ExportContext) -> Outputs:
    """Each kernel tap samples the input bilinearly at its offset position (zeros outside),
    scaled by the mask; the sampled columns meet the weight in one einsum per group."""
    tf = ctx.tf
    f64 = tf.float64
    if ctx.input_rank(0) != 4:
        raise ctx.error("only 2-D DeformConv is converted")
    weight_shape = ctx.input_shape(1)
    if weight_shape is None or any(d is None for d in weight_shape):
        raise ctx.error("the weight's shape must be known before run time")
    out_channels, _, kh, kw = (int(d) for d in weight_shape if d is not None)
    group = int(ctx.attr("group", 1))
    offset_group = int(ctx.attr("offset_group", 1))
    dh, dw = ctx.ints("dilations", [1, 1]) or [1, 1]
    sh, sw = ctx.ints("strides", [1, 1]) or [1, 1]
    pads = ctx.ints("pads", [0, 0, 0, 0]) or [0, 0, 0, 0]
    x = tf.cast(ctx.channels_last(0), f64)  # [N, H, W, C]
    shape = tf.shape(x)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    out_h = (height - ((kh - 1) * dh + 1) + pads[0] + pads[2]) // sh + 1
    out_w = (width - ((kw - 1) * dw + 1) + pads[1] + pads[3]) // sw + 1
    offsets = tf.reshape(
        tf.cast(ctx.input(2), f64), tf.stack([batch, offset_group, kh, kw, 2, out_h, out_w])
    )
    if ctx.has_input(4):
        mask = tf.reshape(
            tf.cast(ctx.input(4), f64), tf.stack([batch, offset_group, kh, kw, out_h, out_w])
        )
    else:
        mask = tf.ones(tf.stack([batch, offset_group, kh, kw, out_h, out_w]), f64)
    base_h = tf.reshape(tf.cast(tf.range(out_h) * sh - pads[0], f64), [1, 1, -1, 1])
    base_w = tf.reshape(tf.cast(tf.range(out_w) * sw - pads[1], f64), [1, 1, 1, -1])
    tap_h = tf.reshape(tf.constant([dh * i for i in range(kh)], f64), [kh, 1, 1, 1])
    tap_w = tf.reshape(tf.constant([dw * j for j in range(kw)], f64), [1, kw, 1, 1])
    batch_index = tf.broadcast_to(
        tf.reshape(tf.range(batch), [-1, 1, 1, 1, 1]), tf.stack([batch, kh, kw, out_h, out_w])
    )
    per_offset_group = channels // offset_group
    columns = []
    for g in range(offset_group):
        ys = base_h + tap_h + offsets[:, g, :, :, 0]  # [N, kh, kw, oh, ow]
        xs = base_w + tap_w + offsets[:, g, :, :, 1]
        part = x[..., g * per_offset_group : (g + 1) * per_offset_group]
        sampled = None
        for index, weight in _bilinear_taps(tf, ys, xs, height, width):
            full_index = tf.concat([batch_index[..., None], index], axis=-1)
            term = tf.gather_nd(part, full_index) * weight[..., None]
            sampled = term if sampled is None else sampled + term
        columns.append(sampled * mask[:, g][..., None])  # [N, kh, kw, oh, ow, Cg]
    cols = tf.concat(columns, axis=-1) if offset_group > 1 else columns[0]
    w = tf.cast(ctx.input(1), f64)  # [O, C / group, kh, kw]
    per_group_in = channels // group
    per_group_out = out_channels // group
    outputs = []
    for g in range(group):
        part = cols[..., g * per_group_in : (g + 1) * per_group_in]
        kernel = w[g * per_group_out : (g + 1) * per_group_out]
        outputs.append(tf.einsum("nijhwc,ocij->nhwo", part, kernel))
    result = tf.concat(outputs, axis=-1) if group > 1 else outputs[0]
    if ctx.has_input(3):
        result = result + tf.cast(ctx.input(3), f64)
    return [Physical(tf.cast(result, ctx.input_dtype(0)), channels_last(4))]
