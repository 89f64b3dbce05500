"""Resize and Upsample: Caffe2's ResizeNearest/UpsampleBilinear where they compute the same thing,
else an exact separable form: per resized axis, a few Gathers weighted by constant coefficients.

The coefficients are what ONNX's own definition (``onnx.reference``) computes for each output
position: the op is linear in its input along each axis, so resizing the identity matrix gives
them, whatever the mode, coordinate transform, rounding, cubic coefficient or antialiasing.

Scales or sizes fed at run time leave the output size and the positions unknown at export: the
net then computes them per axis, in double precision as the reference does, and weighs the taps
around each position with ONNX's coefficients computed in the net (``_runtime_resize``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.ops import _runtime as runtime
from unframe.backends.caffe2.ops._common import (
    attr_float,
    attr_int,
    attr_ints,
    attr_str,
    required,
    reshape,
)
from unframe.backends.caffe2.registry import ops

#: Attributes passed through to the one-axis Resize that yields the coefficients.
_PASSED = ("mode", "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a",
           "exclude_outside", "antialias")  # fmt: skip


def _native(
    ctx: ExportContext,
    node: ir.Node,
    scales: list[float],
    settings: dict[str, str],
) -> bool:
    """Emits Caffe2's own resize op where it computes exactly what ONNX asks; False otherwise."""
    shape, out = ctx.shape(node.inputs[0]), ctx.shape(node.outputs[0])
    if shape is None or out is None or len(scales) != 4 or scales[:2] != [1.0, 1.0]:
        return False
    height, width = scales[2], scales[3]
    if out[2:] != (int(shape[2] * height), int(shape[3] * width)):
        return False  # Caffe2 sizes its output as int(size * scale)
    mode, transform, nearest = settings["mode"], settings["transform"], settings["nearest"]
    x, y = ctx.input(0), ctx.output(node)
    if mode == "nearest":
        whole = float(height).is_integer() and float(width).is_integer()
        # With whole scale factors half_pixel + round_prefer_floor picks the same pixels as
        # Caffe2's floor(out / scale).
        centered = (
            transform in ("half_pixel", "pytorch_half_pixel") and nearest == "round_prefer_floor"
        )
        if (transform == "asymmetric" and nearest == "floor") or (centered and whole):
            args = {"height_scale": height, "width_scale": width, "order": "NCHW"}
            ctx.emit("ResizeNearest", [x], [y], **args)  # type: ignore[arg-type]
            return True
    upsampling = height >= 1.0 and width >= 1.0 and min(out[2:]) > 1
    if (
        mode == "linear"
        and transform == "align_corners"
        and upsampling
        and not settings["antialias"]
    ):
        ctx.emit("UpsampleBilinear", [x], [y], height_scale=height, width_scale=width)
        return True
    return False


def _coefficients(
    ctx: ExportContext, node: ir.Node, size: int, scale: float, out_size: int, opset: int
) -> np.ndarray:
    """The [out_size, size] matrix ONNX's Resize applies along one axis."""
    from onnx.reference import ReferenceEvaluator

    attrs = {}
    for name in _PASSED:
        attr = node.attributes.get(name)
        if attr is not None:
            attrs[name] = attr.value  # type: ignore[union-attr]
    resize = onnx.helper.make_node("Resize", ["x", "", "scales"], ["y"], **attrs)
    graph = onnx.helper.make_graph(
        [resize], "coefficients",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.DOUBLE, [size, size]),
         onnx.helper.make_tensor_value_info("scales", onnx.TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.DOUBLE, None)],
    )  # fmt: skip
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    feeds = {"x": np.eye(size), "scales": np.array([1.0, scale], dtype=np.float32)}
    (result,) = ReferenceEvaluator(model).run(None, feeds)
    matrix = np.asarray(result).T
    if matrix.shape != (out_size, size):
        raise ctx.error(
            f"resizing {size} by {scale} gives {matrix.shape[0]} positions, the model says {out_size}"
        )
    return matrix


def _separable(ctx: ExportContext, node: ir.Node, scales: list[float], opset: int) -> None:
    x = node.inputs[0]
    shape = ctx.need_shape(x, "for the resize coefficients")
    out = ctx.need_shape(node.outputs[0], "for the resize coefficients")
    dtype = ctx.dtype(x) or ir.DataType.FLOAT
    blob = ctx.blob(x)
    for axis, (size, out_size) in enumerate(zip(shape, out, strict=True)):
        if size == out_size and scales[axis] == 1.0:
            continue
        matrix = _coefficients(ctx, node, size, scales[axis], out_size, max(opset, 11))
        blob = _apply(ctx, blob, matrix, axis, len(shape), dtype)
    ctx.emit("Copy", [blob], [ctx.output(node)])


def _scales(
    ctx: ExportContext, node: ir.Node, scales_index: int, sizes_index: int | None
) -> list[float]:
    shape = ctx.need_shape(node.inputs[0], "to resize it")
    rank = len(shape)
    axes = attr_ints(node, "axes") or list(range(rank))
    axes = [a + rank if a < 0 else a for a in axes]
    full = [1.0] * rank
    # Where sizes are given, the scales are empty or left out (ONNX allows one of the two).
    with_sizes = sizes_index is not None and ctx.has_input(sizes_index)
    with_scales = ctx.has_input(scales_index) and not with_sizes
    given = ctx.known_value(node.inputs[scales_index]) if with_scales else None
    if given is None and with_scales:
        # The sampling positions follow from the scales themselves, not from the output size
        # they round to; Caffe2 needs them when the coefficients are written.
        raise ctx.error("Caffe2 needs the scales as a constant (they are a run-time input)")
    if given is not None and given.size:
        for axis, scale in zip(axes, given.reshape(-1), strict=True):
            full[axis] = float(scale)
        return full
    if sizes_index is None or not with_sizes:
        raise ctx.error("has neither scales nor sizes")
    sizes = ctx.known_ints(node.inputs[sizes_index])
    if sizes is None:
        raise ctx.error("Caffe2 needs the sizes as a constant (they are a run-time input)")
    policy = attr_str(node, "keep_aspect_ratio_policy", "stretch")
    ratios = [size / shape[axis] for axis, size in zip(axes, sizes, strict=True)]
    if policy in ("not_larger", "not_smaller"):
        ratios = [min(ratios) if policy == "not_larger" else max(ratios)] * len(ratios)
    for axis, ratio in zip(axes, ratios, strict=True):
        full[axis] = ratio
    return full


def _resize(
    node: ir.Node, ctx: ExportContext, scales: list[float], settings: dict[str, str], opset: int
) -> None:
    if settings["transform"] == "tf_crop_and_resize":
        raise ctx.error("tf_crop_and_resize (a region and an extrapolation value) is not exported")
    if not _native(ctx, node, scales, settings):
        _separable(ctx, node, scales, opset)


def _settings(node: ir.Node, transform: str, nearest: str) -> dict[str, str]:
    return {
        "mode": attr_str(node, "mode", "nearest"),
        "transform": attr_str(node, "coordinate_transformation_mode", transform),
        "nearest": attr_str(node, "nearest_mode", nearest),
        "antialias": "1" if attr_int(node, "antialias", 0) else "",
    }


@ops.register("Resize", since=11)
def resize_v11(node: ir.Node, ctx: ExportContext) -> None:
    settings = _settings(node, "half_pixel", "round_prefer_floor")
    if settings["transform"] == "tf_crop_and_resize":
        raise ctx.error("tf_crop_and_resize (a region and an extrapolation value) is not exported")
    if ctx.has_input(3):
        # Sizes given (the scales are then empty or left out).
        if ctx.known_value(node.inputs[3]) is None:
            _runtime_resize(node, ctx, 3, settings, sizes=True)
            return
    elif _runtime_scales(node, ctx, 2):
        _runtime_resize(node, ctx, 2, settings)
        return
    _resize(node, ctx, _scales(ctx, node, 2, 3), settings, ctx.opset)


@ops.register("Resize", since=10, until=10)
def resize_v10(node: ir.Node, ctx: ExportContext) -> None:
    # Opset 10's Resize (and Upsample) map output positions back as x / scale.
    upsample_v9(node, ctx)


@ops.register("Upsample", since=9)
def upsample_v9(node: ir.Node, ctx: ExportContext) -> None:
    mode = attr_str(node, "mode", "nearest")
    if _runtime_scales(node, ctx, 1) and mode in ("nearest", "linear"):
        settings = {"mode": mode, "transform": "asymmetric", "nearest": "floor", "antialias": ""}
        _runtime_resize(node, ctx, 1, settings)
        return
    _upsample(node, ctx, _scales(ctx, node, 1, None))


def _runtime_scales(node: ir.Node, ctx: ExportContext, index: int) -> bool:
    return ctx.has_input(index) and ctx.known_value(node.inputs[index]) is None


def _runtime_resize(
    node: ir.Node,
    ctx: ExportContext,
    index: int,
    settings: dict[str, str],
    *,
    sizes: bool = False,
) -> None:
    """Resizing by run-time scales (or sizes, with ``sizes``), per axis as onnx's reference
    does it, in double precision as it computes: the output size floor(size * scale) (or the
    size given, and scale = that size / the input size; under a keep_aspect_ratio_policy, the
    smallest or largest of those scales for every axis, and the sizes it gives rounded half
    up); each output position x mapped back by the coordinate transform; then the rounded
    position (nearest) or the taps around it, weighted (linear, cubic, antialiased), clamped to
    the axis as edge padding does."""
    x_value = node.inputs[0]
    shape = ctx.need_shape(x_value, "to resize it")
    rank = len(shape)
    axes = [a + rank if a < 0 else a for a in attr_ints(node, "axes") or range(rank)]
    mode = settings["mode"]
    dtype = ctx.dtype(x_value) or ir.DataType.FLOAT
    if mode not in ("nearest", "linear", "cubic"):
        raise ctx.error(f"mode={mode!r} has no Caffe2 form")
    if mode != "nearest" and not dtype.is_floating_point():
        raise ctx.error(f"{mode} interpolation of {dtype.name} values has no exact Caffe2 form")
    f64, i64 = caffe2_dtype(ir.DataType.DOUBLE), caffe2_dtype(ir.DataType.INT64)
    f64_type = ir.DataType.DOUBLE
    if sizes:
        params = runtime.int64(ctx, required(ctx, node, index))
    else:
        params = ctx.temp("Cast", [ctx.input(index)], "scales", to=f64)
    blob = ctx.input(0)
    if mode != "nearest":
        blob = ctx.temp("Cast", [blob], "double", to=f64)
    number, op = _helpers(ctx)
    if any(shape[axis] == 0 for axis in axes):
        raise ctx.error("cannot resize an empty axis")
    policy = attr_str(node, "keep_aspect_ratio_policy", "stretch") if sizes else "stretch"
    kept = _kept_scale(ctx, params, [shape[axis] for axis in axes], policy)
    for entry, axis in enumerate(axes):
        dim = shape[axis]
        picked = "" if kept else ctx.temp("Gather", [params, runtime.const64(ctx, entry)], "param")
        if kept:
            scale = kept
            width = op("Mul", scale, number(dim))
            resized = runtime.floor(ctx, op("Add", width, number(0.5)), f64_type)  # half up
            count = ctx.temp("Cast", [resized], "count", to=i64)
        elif sizes:
            count = picked
            resized = ctx.temp("Cast", [count], "resized", to=f64)
            scale = op("Div", resized, number(dim))
            width = op("Mul", scale, number(dim))
        else:
            scale = picked
            width = op("Mul", scale, number(dim))  # the output width before rounding
            resized = runtime.floor(ctx, width, f64_type)
            count = ctx.temp("Cast", [resized], "count", to=i64)
        one64 = runtime.const64(ctx, 1)
        steps = ctx.temp("Range", [runtime.const64(ctx, 0), count, one64], "steps")
        x = ctx.temp("Cast", [steps], "x", to=f64)
        source = _source(ctx, settings["transform"], x, scale, width, resized, dim)
        # onnx's reference leaves an axis alone where its size is unchanged and its scale is 1
        # (math.isclose: to 1e-9 of the larger of the two), whatever the transform would say.
        larger = ctx.temp("Where", [op("GT", scale, number(1.0)), scale, number(1.0)], "larger")
        unit = op("LE", runtime.absolute(ctx, op("Sub", scale, number(1.0)), f64_type),
                  op("Mul", larger, runtime.double(ctx, 1e-9)))  # fmt: skip
        same = op("And", op("EQ", count, runtime.const64(ctx, dim)), unit)
        source = ctx.temp("Where", [runtime.like_flag(ctx, same, x), x, source], "source")
        if mode == "nearest":
            blob = _nearest(ctx, blob, source, settings["nearest"], axis, dim)
        else:
            blob = _interpolate(ctx, node, blob, source, scale, settings, axis, rank, dim)
    if mode != "nearest":
        blob = ctx.temp("Cast", [blob], "resized", to=caffe2_dtype(dtype))
    ctx.emit("Copy", [blob], [ctx.output(node)])


def _kept_scale(ctx: ExportContext, sizes: str, dims: list[int], policy: str) -> str:
    """For keep_aspect_ratio_policy not_larger (not_smaller): the smallest (largest) of the
    scales size / dim of the resized axes, a 0-d double; "" for stretch."""
    if policy == "stretch":
        return ""
    if policy not in ("not_larger", "not_smaller"):
        raise ctx.error(f"keep_aspect_ratio_policy={policy!r} is not one of ONNX's")
    number, op = _helpers(ctx)
    kept = ""
    for entry, dim in enumerate(dims):
        size = ctx.temp("Gather", [sizes, runtime.const64(ctx, entry)], "size")
        f64 = caffe2_dtype(ir.DataType.DOUBLE)
        ratio = op("Div", ctx.temp("Cast", [size], "size", to=f64), number(dim))
        if kept:
            better = op("LT" if policy == "not_larger" else "GT", ratio, kept)
            ratio = ctx.temp("Where", [better, ratio, kept], "kept")
        kept = ratio
    return kept


def _helpers(ctx: ExportContext) -> tuple[Callable[[float], str], Callable[..., str]]:
    """``number``: a 0-d double constant (exact for float32 values: integers, halves...);
    ``op``: a one-output op on blobs."""

    def number(value: float) -> str:
        return ctx.scalar(value, ir.DataType.DOUBLE)

    def op(op_type: str, *inputs: str) -> str:
        return ctx.temp(op_type, list(inputs), op_type.lower())

    return number, op


def _source(
    ctx: ExportContext, transform: str, x: str, scale: str, width: str, resized: str, dim: int
) -> str:
    """The input position each output position ``x`` maps back to, computed in the order
    onnx's reference computes it (so that the rounding is the same)."""
    number, op = _helpers(ctx)

    def shifted() -> str:  # (x + 0.5) / scale
        return op("Div", op("Add", x, number(0.5)), scale)

    def single() -> str:  # whether the output width is 1, per position
        return runtime.like_flag(ctx, op("EQ", width, number(1.0)), x)

    if transform == "asymmetric":
        return op("Div", x, scale)
    if transform == "tf_half_pixel_for_nearest":
        return shifted()
    if transform == "half_pixel":
        return op("Sub", shifted(), number(0.5))
    if transform == "pytorch_half_pixel":
        lone = runtime.like(ctx, number(-0.5), x)
        return ctx.temp("Where", [single(), lone, op("Sub", shifted(), number(0.5))], "source")
    if transform == "half_pixel_symmetric":
        adjustment = op("Div", resized, width)
        offset = op("Mul", number(dim / 2), op("Sub", number(1.0), adjustment))
        return op("Sub", op("Add", offset, shifted()), number(0.5))
    if transform == "align_corners":
        spans = op("Sub", width, number(1.0))
        safe = ctx.temp("Where", [op("EQ", width, number(1.0)), number(1.0), spans], "spans")
        stretched = op("Div", op("Mul", x, number(float(dim - 1))), safe)
        origin = runtime.like(ctx, number(0.0), x)
        return ctx.temp("Where", [single(), origin, stretched], "source")
    raise ctx.error(f"coordinate_transformation_mode={transform!r} with run-time scales or sizes")


def _nearest(ctx: ExportContext, blob: str, source: str, rounding: str, axis: int, dim: int) -> str:
    """``blob`` read along ``axis`` at the rounded positions ``source``, clamped to the axis."""
    number, op = _helpers(ctx)
    f64 = ir.DataType.DOUBLE
    if rounding == "round_prefer_floor":
        picked = runtime.ceil(ctx, op("Sub", source, number(0.5)), f64)
    elif rounding == "round_prefer_ceil":
        picked = runtime.floor(ctx, op("Add", source, number(0.5)), f64)
    elif rounding == "floor":
        picked = runtime.floor(ctx, source, f64)
    elif rounding == "ceil":
        picked = runtime.ceil(ctx, source, f64)
    else:
        raise ctx.error(f"nearest_mode={rounding!r} has no Caffe2 form")
    whole = ctx.temp("Cast", [picked], "index", to=caffe2_dtype(ir.DataType.INT64))
    indices = runtime.clamp(ctx, whole, 0, dim - 1)
    return ctx.temp("Gather", [blob, indices], "resized", axis=axis)


#: Antialiased kernels reach 1 / scale taps (2 / scale for cubic) each side, and scale >= 1 / size
#: wherever the output is not empty: so 2 * reach * size taps along an axis, at most this many.
_MAX_TAPS = 64


def _interpolate(
    ctx: ExportContext,
    node: ir.Node,
    blob: str,
    source: str,
    scale: str,
    settings: dict[str, str],
    axis: int,
    rank: int,
    dim: int,
) -> str:
    """The double ``blob`` interpolated along ``axis`` at the positions ``source``: the taps
    floor(source) + offset, each weighted by ONNX's coefficient for its distance."""
    number, op = _helpers(ctx)
    below = runtime.floor(ctx, source, ir.DataType.DOUBLE)
    ratio = op("Sub", source, below)  # in [0, 1)
    left = ctx.temp("Cast", [below], "left", to=caffe2_dtype(ir.DataType.INT64))
    cubic = settings["mode"] == "cubic"
    a = float(attr_float(node, "cubic_coeff_a", -0.75))
    if settings["antialias"]:
        reach = (2 if cubic else 1) * dim
        if 2 * reach > _MAX_TAPS:
            raise ctx.error(
                f"antialiasing an axis of {dim} at a run-time scale reads up to {2 * reach} "
                f"taps (over {_MAX_TAPS}); give the scales or sizes as a constant"
            )
        offsets = list(range(1 - reach, reach + 1))
        # The kernel is stretched by 1 / scale when downsampling.
        shrink = ctx.temp("Where", [op("GT", scale, number(1.0)), number(1.0), scale], "shrink")
        weights = []
        for offset in offsets:
            distance = op("Mul", op("Sub", number(float(offset)), ratio), shrink)
            weights.append(_kernel(ctx, distance, a, cubic))
        weights = _normalized(ctx, weights)
    elif cubic:
        weights = _cubic_weights(ctx, ratio, a)
        offsets = [-1, 0, 1, 2]
    else:
        weights = [op("Sub", number(1.0), ratio), ratio]
        offsets = [0, 1]
    taps = [op("Add", left, runtime.const64(ctx, offset)) for offset in offsets]
    if attr_int(node, "exclude_outside", 0):
        # Taps outside the axis weigh nothing; the others are scaled to sum to 1 again.
        zero = number(0.0)
        for i, tap in enumerate(taps):
            inside = op("And", op("GE", tap, runtime.const64(ctx, 0)),
                        op("LT", tap, runtime.const64(ctx, dim)))  # fmt: skip
            weights[i] = ctx.temp("Where", [inside, weights[i], runtime.like(ctx, zero, tap)])
        weights = _normalized(ctx, weights, guard=True)
    column = [1] * axis + [-1] + [1] * (rank - axis - 1)
    total = ""
    for tap, weight in zip(taps, weights, strict=True):
        read = ctx.temp("Gather", [blob, runtime.clamp(ctx, tap, 0, dim - 1)], "tap", axis=axis)
        term = op("Mul", read, reshape(ctx, weight, column))
        total = term if not total else op("Add", total, term)
    return total


def _cubic_weights(ctx: ExportContext, ratio: str, a: float) -> list[str]:
    """ONNX's cubic coefficients of the taps at -1, 0, 1, 2 from floor(x), x - floor(x) being
    ``ratio``, each written as onnx's reference writes it."""
    number, op = _helpers(ctx)
    big = [runtime.double(ctx, v) for v in (a, 5 * a, 8 * a, 4 * a, a + 2, a + 3)]
    coeff_a, five_a, eight_a, four_a, a_plus_2, a_plus_3 = big

    def outer(t: str) -> str:  # ((A t - 5A) t + 8A) t - 4A, for t = 1 + distance
        return op("Sub", op("Mul", op("Add", op("Mul", op("Sub", op("Mul", coeff_a, t), five_a),
                                                       t), eight_a), t), four_a)  # fmt: skip

    def inner(t: str) -> str:  # ((A + 2) t - (A + 3)) t t + 1
        return op("Add", op("Mul", op("Mul", op("Sub", op("Mul", a_plus_2, t), a_plus_3), t), t),
                  number(1.0))  # fmt: skip

    rest = op("Sub", number(1.0), ratio)
    return [
        outer(op("Add", ratio, number(1.0))),
        inner(ratio),
        inner(rest),
        outer(op("Add", rest, number(1.0))),
    ]


def _kernel(ctx: ExportContext, distance: str, a: float, cubic: bool) -> str:
    """The antialiasing kernel at ``distance`` (scaled): the triangle max(1 - |d|, 0), or Keys'
    cubic (0 beyond 2), as onnx's reference writes them."""
    number, op = _helpers(ctx)
    d = runtime.absolute(ctx, distance, ir.DataType.DOUBLE)
    zero = runtime.like(ctx, number(0.0), d)
    if not cubic:
        tent = op("Sub", number(1.0), d)
        return ctx.temp("Where", [op("GT", tent, zero), tent, zero], "coeff")
    coeff_a, five_a, eight_a, four_a, a_plus_2, a_plus_3 = (
        runtime.double(ctx, v) for v in (a, 5 * a, 8 * a, 4 * a, a + 2, a + 3)
    )
    d2 = op("Mul", d, d)
    d3 = op("Mul", d, d2)
    near = op("Add", op("Sub", op("Mul", a_plus_2, d3), op("Mul", a_plus_3, d2)), number(1.0))
    far = op("Sub", op("Add", op("Sub", op("Mul", coeff_a, d3), op("Mul", five_a, d2)),
                       op("Mul", eight_a, d)), four_a)  # fmt: skip
    within_one = op("LE", d, runtime.like(ctx, number(1.0), d))
    within_two = op("LT", d, runtime.like(ctx, number(2.0), d))
    outer = ctx.temp("Where", [within_two, far, zero], "coeff")
    return ctx.temp("Where", [within_one, near, outer], "coeff")


def _normalized(ctx: ExportContext, weights: list[str], guard: bool = False) -> list[str]:
    """``weights`` divided by their sum, added in order (with ``guard``, a sum of 0 counts 1)."""
    number, op = _helpers(ctx)
    total = weights[0]
    for weight in weights[1:]:
        total = op("Add", total, weight)
    if guard:
        zero = op("EQ", total, runtime.like(ctx, number(0.0), total))
        total = ctx.temp("Where", [zero, runtime.like(ctx, number(1.0), total), total], "sum")
    return [op("Div", weight, total) for weight in weights]


@ops.register("Upsample", since=7, until=8)
def upsample_v7(node: ir.Node, ctx: ExportContext) -> None:
    attr = node.attributes.get("scales")
    scales = [float(s) for s in attr.as_floats()] if attr is not None else []  # type: ignore[union-attr]
    _upsample(node, ctx, scales)


def _upsample(node: ir.Node, ctx: ExportContext, scales: list[float]) -> None:
    mode = attr_str(node, "mode", "nearest")
    if mode not in ("nearest", "linear"):
        raise ctx.error(f"mode={mode!r} has no Caffe2 equivalent")
    settings = {"mode": mode, "transform": "asymmetric", "nearest": "floor", "antialias": ""}
    if not _native(ctx, node, scales, settings):
        _separable_asymmetric(ctx, node, scales, mode)


def _separable_asymmetric(
    ctx: ExportContext, node: ir.Node, scales: list[float], mode: str
) -> None:
    """Opset < 11 semantics through an opset-11 Resize with the same transform and rounding."""
    shim = ir.Node("", "Resize", [], attributes=[
        ir.AttrString("mode", mode), ir.AttrString("coordinate_transformation_mode", "asymmetric"),
        ir.AttrString("nearest_mode", "floor"),
    ])  # fmt: skip
    x, out = node.inputs[0], node.outputs[0]
    shape = ctx.need_shape(x, "for the resize coefficients")
    target = ctx.need_shape(out, "for the resize coefficients")
    dtype = ctx.dtype(x) or ir.DataType.FLOAT
    blob = ctx.blob(x)
    for axis, (size, out_size) in enumerate(zip(shape, target, strict=True)):
        if size == out_size and scales[axis] == 1.0:
            continue
        matrix = _coefficients(ctx, shim, size, scales[axis], out_size, 11)
        blob = _apply(ctx, blob, matrix, axis, len(shape), dtype)
    ctx.emit("Copy", [blob], [ctx.output(node)])


def _apply(
    ctx: ExportContext, blob: str, matrix: np.ndarray, axis: int, rank: int, dtype: ir.DataType
) -> str:
    out_size = matrix.shape[0]
    taps = max(int(np.count_nonzero(row)) for row in matrix) if out_size else 0
    indices = np.zeros((max(taps, 1), out_size), dtype=np.int64)
    weights = np.zeros((max(taps, 1), out_size), dtype=np.float64)
    for row, values in enumerate(matrix):
        for tap, column in enumerate(np.nonzero(values)[0]):
            indices[tap, row], weights[tap, row] = column, values[column]
    picks_only = taps == 1 and bool(np.all(weights == 1.0))
    if not picks_only and not dtype.is_floating_point():
        raise ctx.error(f"interpolating {dtype.name} values has no exact form")
    broadcast = (out_size,) + (1,) * (rank - axis - 1)
    total = ""
    for tap in range(max(taps, 1)):
        picked = ctx.temp(
            "Gather", [blob, ctx.make_constant(indices[tap], "resize_index")], "picked", axis=axis
        )
        if not picks_only:
            weight = ctx.make_constant(weights[tap].reshape(broadcast).astype(dtype.numpy()), "w")
            picked = ctx.temp("Mul", [picked, weight], "weighted")
        total = picked if not total else ctx.temp("Add", [total, picked], "sum")
    return total
