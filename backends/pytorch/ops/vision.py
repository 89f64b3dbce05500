"""Detection and image-layout ops: NonMaxSuppression, Col2Im, AffineGrid, MaxUnpool."""

from __future__ import annotations

import math

from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, ops, torch

F = torch.nn.functional


def _corners(boxes: torch.Tensor, center_point_box: int) -> torch.Tensor:
    """Boxes as [x_min, y_min, x_max, y_max] (ONNX corners are [y1, x1, y2, x2], any order)."""
    if center_point_box:
        xc, yc, w, h = boxes.unbind(-1)
        return torch.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], dim=-1)
    y1, x1, y2, x2 = boxes.unbind(-1)
    return torch.stack(
        [
            torch.minimum(x1, x2),
            torch.minimum(y1, y2),
            torch.maximum(x1, x2),
            torch.maximum(y1, y2),
        ],
        dim=-1,
    )


def _suppressed(boxes: torch.Tensor, threshold: float) -> torch.Tensor:
    """[n, n] bool: IoU(i, j) > threshold, with onnx's rules for empty boxes."""
    x_lo = torch.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y_lo = torch.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x_hi = torch.minimum(boxes[:, None, 2], boxes[None, :, 2])
    y_hi = torch.minimum(boxes[:, None, 3], boxes[None, :, 3])
    overlaps = (x_hi > x_lo) & (y_hi > y_lo)
    inter = (x_hi - x_lo) * (y_hi - y_lo)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area[:, None] + area[None, :] - inter
    valid = overlaps & (inter > 0) & (area[:, None] > 0) & (area[None, :] > 0) & (union > 0)
    return valid & (inter / torch.where(union > 0, union, torch.ones_like(union)) > threshold)


def _nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    max_per_class: torch.Tensor | None,
    iou_threshold: torch.Tensor | None,
    score_threshold: torch.Tensor | None,
    center_point_box: int,
) -> torch.Tensor:
    limit = 0 if max_per_class is None or max_per_class.numel() == 0 else int(max_per_class)
    iou = 0.0 if iou_threshold is None or iou_threshold.numel() == 0 else float(iou_threshold)
    selected: list[tuple[int, int, int]] = []
    for batch in range(scores.shape[0]):
        corners = _corners(boxes[batch].double(), center_point_box)
        suppress = _suppressed(corners, iou)
        for cls in range(scores.shape[1]):
            class_scores = scores[batch, cls]
            order = torch.sort(class_scores, descending=True, stable=True).indices.tolist()
            if score_threshold is not None and score_threshold.numel():
                cut = float(score_threshold)
                order = [i for i in order if float(class_scores[i]) > cut]
            kept: list[int] = []
            for index in order:
                if len(kept) >= limit:
                    break
                if not any(bool(suppress[index, k]) for k in kept):
                    kept.append(index)
                    selected.append((batch, cls, index))
    if not selected:
        return torch.zeros((0, 3), dtype=torch.int64)
    return torch.tensor(selected, dtype=torch.int64)


@ops.register("NonMaxSuppression", since=10)
def non_max_suppression_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [
        ctx.call(
            _nms,
            ctx.input(0),
            ctx.input(1),
            ctx.optional_input(2),
            ctx.optional_input(3),
            ctx.optional_input(4),
            ctx.attr_int("center_point_box", 0),
        )
    ]


def _col2im(
    x: torch.Tensor,
    image: list[int],
    block: list[int],
    dilations: list[int] | None,
    pads: list[int] | None,
    strides: list[int] | None,
) -> torch.Tensor:
    n = len(image)
    dilations = dilations or [1] * n
    pads = pads or [0] * (2 * n)
    strides = strides or [1] * n
    blocks = [
        (image[i] + pads[i] + pads[i + n] - (dilations[i] * (block[i] - 1) + 1)) // strides[i] + 1
        for i in range(n)
    ]
    kernel_grid = torch.meshgrid(*[torch.arange(k) for k in block], indexing="ij")
    block_grid = torch.meshgrid(*[torch.arange(b) for b in blocks], indexing="ij")
    valid = torch.ones((math.prod(block), math.prod(blocks)), dtype=torch.bool)
    flat = torch.zeros((math.prod(block), math.prod(blocks)), dtype=torch.int64)
    for i in range(n):
        pos = (
            block_grid[i].reshape(1, -1) * strides[i]
            - pads[i]
            + kernel_grid[i].reshape(-1, 1) * dilations[i]
        )
        valid &= (pos >= 0) & (pos < image[i])
        flat = flat * image[i] + pos
    batch = x.shape[0]
    channels = x.shape[1] // math.prod(block)
    cols = x.reshape(batch, channels, math.prod(block), math.prod(blocks))
    out = x.new_zeros((batch, channels, math.prod(image)))
    out.index_add_(2, flat[valid], cols[:, :, valid])
    return out.reshape(batch, channels, *image)


@ops.register("Col2Im", since=18)
def col2im_v18(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [
        ctx.call(
            _col2im,
            ctx.input(0),
            ctx.int_list(1),
            ctx.int_list(2),
            ctx.attr_ints("dilations", None),
            ctx.attr_ints("pads", None),
            ctx.attr_ints("strides", None),
        )
    ]


def _affine_grid(theta: torch.Tensor, size: list[int], align_corners: bool) -> torch.Tensor:
    return F.affine_grid(theta, list(size), align_corners=align_corners)


@ops.register("AffineGrid", since=20)
def affine_grid_v20(node: ir.Node, ctx: BuildContext) -> Outputs:
    align = bool(ctx.attr_int("align_corners", 0))
    return [ctx.call(_affine_grid, ctx.input(0), ctx.int_list(1), align)]


def _max_unpool(
    x: torch.Tensor,
    indices: torch.Tensor,
    output_shape: list[int] | None,
    kernel: list[int],
    pads: list[int] | None,
    strides: list[int] | None,
) -> torch.Tensor:
    n = len(kernel)
    pads = pads or [0] * (2 * n)
    strides = strides or [1] * n
    spatial = [
        (x.shape[2 + i] - 1) * strides[i] + kernel[i] - pads[i] - pads[i + n] for i in range(n)
    ]
    natural = [x.shape[0], x.shape[1], *spatial]
    out = x.new_zeros(math.prod(natural))
    out.scatter_(0, indices.reshape(-1).long(), x.reshape(-1))
    out = out.reshape(natural)
    if output_shape is not None:
        # Indices address the natural shape; a larger output_shape adds zeros at the ends.
        extra: list[int] = []
        for i in reversed(range(n)):
            extra += [0, int(output_shape[2 + i]) - spatial[i]]
        out = F.pad(out, extra)
    return out


@ops.register("MaxUnpool", since=9)
def max_unpool_v9(node: ir.Node, ctx: BuildContext) -> Outputs:
    kernel = ctx.attr_ints("kernel_shape")
    return [
        ctx.call(
            _max_unpool,
            ctx.input(0),
            ctx.input(1),
            ctx.int_list(2) if ctx.has_input(2) else None,
            kernel,
            ctx.attr_ints("pads", None),
            ctx.attr_ints("strides", None),
        )
    ]


def _roi_axis(
    start: float, bin_size: float, pooled: int, grid: int, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sample along one axis: low index, high index, weight of high, validity."""
    p = torch.arange(pooled, dtype=torch.float64)[:, None]
    i = torch.arange(grid, dtype=torch.float64)[None, :]
    pos = (start + p * bin_size + (i + 0.5) * bin_size / grid).reshape(-1)
    valid = (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    edge = low >= size - 1
    low = torch.where(edge, torch.full_like(low, size - 1), low)
    high = torch.where(edge, low, low + 1)
    pos = torch.where(edge, low.double(), pos)
    return low, high, pos - low, valid


def _roi_align(
    x: torch.Tensor,
    rois: torch.Tensor,
    batch_indices: torch.Tensor,
    half_pixel: bool,
    mode: str,
    out_h: int,
    out_w: int,
    sampling_ratio: int,
    spatial_scale: float,
) -> torch.Tensor:
    height, width = x.shape[2], x.shape[3]
    offset = 0.5 if half_pixel else 0.0
    results = []
    for n in range(rois.shape[0]):
        x0, y0, x1, y1 = (float(v) * spatial_scale - offset for v in rois[n])
        roi_w, roi_h = x1 - x0, y1 - y0
        if not half_pixel:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)
        y_lo, y_hi, ly, y_ok = _roi_axis(y0, roi_h / out_h, out_h, grid_h, height)
        x_lo, x_hi, lx, x_ok = _roi_axis(x0, roi_w / out_w, out_w, grid_w, width)
        data = x[int(batch_indices[n])].double()
        ly, lx = ly[:, None], lx[None, :]
        terms = [
            (1 - ly) * (1 - lx) * data[:, y_lo][:, :, x_lo],
            (1 - ly) * lx * data[:, y_lo][:, :, x_hi],
            ly * (1 - lx) * data[:, y_hi][:, :, x_lo],
            ly * lx * data[:, y_hi][:, :, x_hi],
        ]
        ok = (y_ok[:, None] & x_ok[None, :]).to(torch.float64)
        if mode == "avg":
            value = sum(terms) * ok  # type: ignore[operator]
        else:
            value = torch.stack(terms).amax(dim=0) * ok
        value = value.reshape(-1, out_h, grid_h, out_w, grid_w)
        if mode == "avg":
            pooled = value.sum(dim=(2, 4)) / max(grid_h * grid_w, 1)
        else:
            pooled = value.amax(dim=(2, 4))
        results.append(pooled)
    if not results:
        return x.new_zeros((0, x.shape[1], out_h, out_w))
    return torch.stack(results).to(x.dtype)


def _roi_align_node(ctx: BuildContext, default_mode: str) -> Outputs:
    return [
        ctx.call(
            _roi_align,
            ctx.input(0),
            ctx.input(1),
            ctx.input(2),
            ctx.attr_str("coordinate_transformation_mode", default_mode) == "half_pixel",
            ctx.attr_str("mode", "avg"),
            ctx.attr_int("output_height", 1),
            ctx.attr_int("output_width", 1),
            ctx.attr_int("sampling_ratio", 0),
            ctx.attr_float("spatial_scale", 1.0),
        )
    ]


@ops.register("RoiAlign", since=10)
def roi_align_v10(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _roi_align_node(ctx, "output_half_pixel")


@ops.register("RoiAlign", since=16)
def roi_align_v16(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _roi_align_node(ctx, "half_pixel")


def _deform_conv(
    x: torch.Tensor,
    w: torch.Tensor,
    offset: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor | None,
    dilations: list[int] | None,
    group: int,
    offset_group: int,
    pads: list[int] | None,
    strides: list[int] | None,
) -> torch.Tensor:
    n, channels, ih, iw = x.shape
    oc, _, kh, kw = w.shape
    dh, dw = dilations or [1, 1]
    sh, sw = strides or [1, 1]
    pads = pads or [0, 0, 0, 0]
    oh = (ih - ((kh - 1) * dh + 1) + pads[0] + pads[2]) // sh + 1
    ow = (iw - ((kw - 1) * dw + 1) + pads[1] + pads[3]) // sw + 1
    offset = offset.reshape(n, offset_group, kh, kw, 2, oh, ow).double()
    mask_t = (
        torch.ones((n, offset_group, kh, kw, oh, ow), dtype=torch.float64)
        if mask is None
        else mask.reshape(n, offset_group, kh, kw, oh, ow).double()
    )
    base_h = (-pads[0] + sh * torch.arange(oh, dtype=torch.float64)).reshape(1, 1, oh, 1)
    base_w = (-pads[1] + sw * torch.arange(ow, dtype=torch.float64)).reshape(1, 1, 1, ow)
    tap_h = (dh * torch.arange(kh, dtype=torch.float64)).reshape(kh, 1, 1, 1)
    tap_w = (dw * torch.arange(kw, dtype=torch.float64)).reshape(1, kw, 1, 1)
    per_group = channels // offset_group
    columns = []
    for g in range(offset_group):
        ys = base_h + tap_h + offset[:, g, :, :, 0]  # [n, kh, kw, oh, ow]
        xs = base_w + tap_w + offset[:, g, :, :, 1]
        grid = torch.stack((xs / (iw - 1) * 2 - 1, ys / (ih - 1) * 2 - 1), dim=-1)
        grid = grid.reshape(n, kh * kw * oh, ow, 2)
        part = x[:, g * per_group : (g + 1) * per_group].double()
        sampled = F.grid_sample(
            part, grid, mode="bilinear", padding_mode="zeros", align_corners=True
        )
        sampled = sampled.reshape(n, per_group, kh, kw, oh, ow) * mask_t[:, g].unsqueeze(1)
        columns.append(sampled)
    cols = torch.cat(columns, dim=1).reshape(n, group, channels // group * kh * kw, oh * ow)
    weights = w.double().reshape(group, oc // group, -1)
    out = torch.einsum("gok,ngkp->ngop", weights, cols).reshape(n, oc, oh, ow)
    if bias is not None:
        out = out + bias.double().reshape(1, -1, 1, 1)
    return out.to(x.dtype)


@ops.register("DeformConv", since=19)
def deform_conv_v19(node: ir.Node, ctx: BuildContext) -> Outputs:
    return [
        ctx.call(
            _deform_conv,
            *(ctx.optional_input(i) for i in range(5)),
            ctx.attr_ints("dilations", None),
            ctx.attr_int("group", 1),
            ctx.attr_int("offset_group", 1),
            ctx.attr_ints("pads", None),
            ctx.attr_ints("strides", None),
        )
    ]
