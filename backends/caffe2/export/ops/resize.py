"""Resize and Upsample: Caffe2's ResizeNearest/UpsampleBilinear where they compute the same thing,
else an exact separable form: per resized axis, a few Gathers weighted by constant coefficients.

The coefficients are what ONNX's own definition (``onnx.reference``) computes for each output
position: the op is linear in its input along each axis, so resizing the identity matrix gives
them, whatever the mode, coordinate transform, rounding, cubic coefficient or antialiasing.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir

from unframe.backends.caffe2.export.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.export.ops import _runtime as runtime
from unframe.backends.caffe2.export.ops._common import attr_int, attr_ints, attr_str, reshape
from unframe.backends.caffe2.export.registry import ops

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
    x, y = ctx.input(node, 0), ctx.output(node)
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
    given = ctx.const(node.inputs[scales_index]) if ctx.has_input(node, scales_index) else None
    if given is None and ctx.has_input(node, scales_index):
        # The sampling positions follow from the scales themselves, not from the output size
        # they round to; Caffe2 needs them when the coefficients are written.
        raise ctx.error("Caffe2 needs the scales as a constant (they are a run-time input)")
    if given is not None and given.size:
        for axis, scale in zip(axes, given.reshape(-1), strict=True):
            full[axis] = float(scale)
        return full
    sizes = None
    if sizes_index is not None and ctx.has_input(node, sizes_index):
        sizes = ctx.const_ints(node.inputs[sizes_index])
    policy = attr_str(node, "keep_aspect_ratio_policy", "stretch")
    if sizes is None:
        if policy != "stretch":
            raise ctx.error(f"keep_aspect_ratio_policy={policy!r} needs the sizes as a constant")
        # Stretched to run-time sizes: each scale is the output size over the input size.
        out = ctx.need_shape(node.outputs[0], "to find the scales")
        return [o / s for o, s in zip(out, shape, strict=True)]
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
    if (
        _runtime_scales(node, ctx, 2)
        and settings["mode"] in ("nearest", "linear")
        and not settings["antialias"]
    ):
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
        settings = {"mode": mode, "transform": "asymmetric", "nearest": "floor"}
        _runtime_resize(node, ctx, 1, settings)
        return
    _upsample(node, ctx, _scales(ctx, node, 1, None))


def _runtime_scales(node: ir.Node, ctx: ExportContext, index: int) -> bool:
    return ctx.has_input(node, index) and ctx.const(node.inputs[index]) is None


def _runtime_resize(
    node: ir.Node, ctx: ExportContext, index: int, settings: dict[str, str]
) -> None:
    """Nearest or linear resizing by run-time scales, per axis as ONNX's reference does it: the
    output size floor(size * scale); each output position x mapped back by the coordinate
    transform (with size * scale unrounded where the transform uses the output width); then the
    rounded position (nearest) or the two neighbours around it, weighted (linear), clamped to
    the axis as edge padding does."""
    shape = ctx.need_shape(node.inputs[0], "to resize it")
    rank = len(shape)
    axes = [a + rank if a < 0 else a for a in attr_ints(node, "axes") or range(rank)]
    mode, transform, rounding = settings["mode"], settings["transform"], settings["nearest"]
    f32 = ir.DataType.FLOAT
    scales = ctx.temp("Cast", [ctx.input(node, index)], "scales", to=caffe2_dtype(f32))
    blob = ctx.input(node, 0)

    def number(value: float) -> str:
        return ctx.scalar(value, f32)

    def op(op_type: str, *inputs: str) -> str:
        return ctx.temp(op_type, list(inputs), op_type.lower())

    for entry, axis in enumerate(axes):
        scale = ctx.temp("Gather", [scales, runtime.const64(ctx, entry)], "scale")
        size = number(float(shape[axis]))
        width = op("Mul", size, scale)  # the output width before rounding
        resized = op("Floor", width)
        count = ctx.temp("Cast", [resized], "count", to=caffe2_dtype(ir.DataType.INT64))
        steps = ctx.temp("Range", [runtime.const64(ctx, 0), count, runtime.const64(ctx, 1)])
        x = ctx.temp("Cast", [steps], "x", to=caffe2_dtype(f32))
        centered = op("Sub", op("Div", op("Add", x, number(0.5)), scale), number(0.5))
        single = runtime.like(ctx, op("EQ", width, number(1.0)), x)
        if transform == "asymmetric":
            source = op("Div", x, scale)
        elif transform == "tf_half_pixel_for_nearest":
            source = op("Div", op("Add", x, number(0.5)), scale)
        elif transform == "half_pixel":
            source = centered
        elif transform == "pytorch_half_pixel":
            lone = runtime.like(ctx, number(-0.5), x)
            source = ctx.temp("Where", [single, lone, centered], "source")
        elif transform == "half_pixel_symmetric":
            adjustment = op("Div", resized, width)
            offset = op("Mul", number(shape[axis] / 2), op("Sub", number(1.0), adjustment))
            source = op("Add", centered, offset)
        elif transform == "align_corners":
            spans = op("Sub", width, number(1.0))
            safe = ctx.temp("Where", [op("EQ", width, number(1.0)), number(1.0), spans], "spans")
            ratio = op("Div", number(float(shape[axis] - 1)), safe)
            source = ctx.temp("Where", [single, runtime.like(ctx, number(0.0), x),
                                        op("Mul", x, ratio)], "source")  # fmt: skip
        else:
            raise ctx.error(f"coordinate_transformation_mode={transform!r} with run-time scales")
        if mode == "nearest":
            if rounding == "round_prefer_floor":
                picked = op("Ceil", op("Sub", source, number(0.5)))
            elif rounding == "round_prefer_ceil":
                picked = op("Floor", op("Add", source, number(0.5)))
            elif rounding in ("floor", "ceil"):
                picked = op(rounding.capitalize(), source)
            else:
                raise ctx.error(f"nearest_mode={rounding!r} has no Caffe2 form")
            whole = ctx.temp("Cast", [picked], "index", to=caffe2_dtype(ir.DataType.INT64))
            indices = runtime.clamp(ctx, whole, 0, shape[axis] - 1)
            blob = ctx.temp("Gather", [blob, indices], "resized", axis=axis)
            continue
        below = op("Floor", source)
        weight = reshape(ctx, op("Sub", source, below), [1] * axis + [-1] + [1] * (rank - axis - 1))
        left = ctx.temp("Cast", [below], "left", to=caffe2_dtype(ir.DataType.INT64))
        right = op("Add", left, runtime.const64(ctx, 1))
        near, far = (
            ctx.temp("Gather", [blob, runtime.clamp(ctx, i, 0, shape[axis] - 1)], "tap", axis=axis)
            for i in (left, right)
        )
        kept = op("Mul", near, op("Sub", number(1.0), weight))
        blob = op("Add", kept, op("Mul", far, weight))
    ctx.emit("Copy", [blob], [ctx.output(node)])


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
            "Gather", [blob, ctx.constant(indices[tap], "resize_index")], "picked", axis=axis
        )
        if not picks_only:
            weight = ctx.constant(weights[tap].reshape(broadcast).astype(dtype.numpy()), "w")
            picked = ctx.temp("Mul", [picked, weight], "weighted")
        total = picked if not total else ctx.temp("Add", [total, picked], "sum")
    return total
