"""MIL neural-network ops: convolution, pooling, normalization, linear, matmul, softmax."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.frontends.coreml.context import MilContext
from unframe.frontends.coreml.registry import IOS15, IOS16, MIL_DOMAIN, ops


def _window_attrs(ctx: MilContext, spatial: int) -> dict[str, Any]:
    """ONNX strides, dilations and padding from MIL's ``pad_type`` and ``pad``.

    MIL's custom ``pad`` lists (begin, end) per spatial axis; ONNX lists every begin, then
    every end. ``same`` puts the odd pixel at the end (SAME_UPPER), ``same_lower`` at the start.
    """
    attrs: dict[str, Any] = {}
    strides = ctx.attr("strides", None)
    attrs["strides"] = [int(s) for s in strides] if strides is not None else [1] * spatial
    pad_type = str(ctx.attr("pad_type", "valid"))
    if pad_type == "custom":
        pad = [int(p) for p in ctx.attr("pad", [0] * (2 * spatial))]
        attrs["pads"] = pad[0::2] + pad[1::2]
    elif pad_type == "same":
        attrs["auto_pad"] = "SAME_UPPER"
    elif pad_type == "same_lower":
        attrs["auto_pad"] = "SAME_LOWER"
    elif pad_type == "valid":
        attrs["pads"] = [0] * (2 * spatial)
    else:
        raise ctx.error(f"pad_type {pad_type!r} is not one MIL defines")
    return attrs


def _conv_common(ctx: MilContext) -> tuple[int, dict[str, Any]]:
    spatial = ctx.rank("x") - 2
    attrs = _window_attrs(ctx, spatial)
    dilations = ctx.attr("dilations", None)
    attrs["dilations"] = [int(d) for d in dilations] if dilations is not None else [1] * spatial
    attrs["group"] = int(ctx.attr("groups", 1))
    return spatial, attrs


@ops.register("conv", since=IOS15, domain=MIL_DOMAIN)
def conv(op: Any, ctx: MilContext) -> ir.Value:
    _spatial, attrs = _conv_common(ctx)
    inputs = [ctx.value("x"), ctx.value("weight")]
    if ctx.has("bias"):
        inputs.append(ctx.value("bias"))
    return ctx.op1("Conv", inputs, attrs)


@ops.register("conv_transpose", since=IOS15, domain=MIL_DOMAIN)
def conv_transpose(op: Any, ctx: MilContext) -> ir.Value:
    """MIL's weight is (C_in, C_out / groups, *kernel), as ONNX's; an output shape becomes
    ONNX's ``output_shape`` (spatial dims), which then decides the padding."""
    _spatial, attrs = _conv_common(ctx)
    out = ctx.static_out_shape()
    if out is not None and (ctx.has("output_shape") or attrs.get("auto_pad")):
        attrs.pop("pads", None)
        attrs["output_shape"] = out[2:]
        attrs.setdefault("auto_pad", "SAME_UPPER" if attrs.get("auto_pad") else "NOTSET")
        if attrs["auto_pad"] == "NOTSET":
            del attrs["auto_pad"]
    inputs = [ctx.value("x"), ctx.value("weight")]
    if ctx.has("bias"):
        inputs.append(ctx.value("bias"))
    return ctx.op1("ConvTranspose", inputs, attrs)


def _pool_attrs(ctx: MilContext) -> dict[str, Any]:
    kernel = [int(k) for k in ctx.attr("kernel_sizes")]
    attrs = _window_attrs(ctx, len(kernel))
    attrs["kernel_shape"] = kernel
    attrs["ceil_mode"] = int(bool(ctx.attr("ceil_mode", False)))
    return attrs


@ops.register("max_pool", since=IOS15, domain=MIL_DOMAIN)
def max_pool(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("MaxPool", [ctx.value("x")], _pool_attrs(ctx))


@ops.register("avg_pool", since=IOS15, domain=MIL_DOMAIN)
def avg_pool(op: Any, ctx: MilContext) -> ir.Value:
    attrs = _pool_attrs(ctx)
    attrs["count_include_pad"] = int(not ctx.attr("exclude_padding_from_average", False))
    return ctx.op1("AveragePool", [ctx.value("x")], attrs)


@ops.register("l2_pool", since=IOS15, domain=MIL_DOMAIN)
def l2_pool(op: Any, ctx: MilContext) -> ir.Value:
    attrs = _pool_attrs(ctx)
    attrs["p"] = 2
    return ctx.op1("LpPool", [ctx.value("x")], attrs)


def _channel_param(ctx: MilContext, name: str, fill: float, channels: int) -> ir.Value:
    if ctx.has(name):
        return ctx.value(name)
    return ctx.make_constant(np.full((channels,), fill, dtype=ctx.dtype("x")), name)


@ops.register("batch_norm", since=IOS15, domain=MIL_DOMAIN)
def batch_norm(op: Any, ctx: MilContext) -> ir.Value:
    channels = int(ctx.shape("mean")[0])
    inputs = [
        ctx.value("x"),
        _channel_param(ctx, "gamma", 1.0, channels),
        _channel_param(ctx, "beta", 0.0, channels),
        ctx.value("mean"),
        ctx.value("variance"),
    ]
    return ctx.op1("BatchNormalization", inputs, {"epsilon": float(ctx.attr("epsilon", 1e-5))})


@ops.register("instance_norm", since=IOS15, domain=MIL_DOMAIN)
def instance_norm(op: Any, ctx: MilContext) -> ir.Value:
    channels = ctx.shape("x")[1]
    if not isinstance(channels, int | np.integer):
        raise ctx.error("needs a known channel count")
    inputs = [
        ctx.value("x"),
        _channel_param(ctx, "gamma", 1.0, int(channels)),
        _channel_param(ctx, "beta", 0.0, int(channels)),
    ]
    return ctx.op1("InstanceNormalization", inputs, {"epsilon": float(ctx.attr("epsilon", 1e-5))})


@ops.register("layer_norm", since=IOS15, domain=MIL_DOMAIN)
def layer_norm(op: Any, ctx: MilContext) -> ir.Value:
    """ONNX's LayerNormalization normalizes trailing axes; other axes are computed by formula."""
    x = ctx.value("x")
    rank = ctx.rank("x")
    given = ctx.attr("axes", None)
    axes = sorted(int(a) % rank for a in given) if given is not None else list(range(rank))
    epsilon = float(ctx.attr("epsilon", 1e-5))
    trailing = axes == list(range(rank - len(axes), rank)) and bool(axes)
    if trailing:
        dims = ctx.shape("x")[rank - len(axes) :]
        if all(isinstance(d, int | np.integer) for d in dims):
            norm_shape = tuple(int(d) for d in dims)
            dtype = ctx.dtype("x")
            scale = (
                ctx.value("gamma")
                if ctx.has("gamma")
                else ctx.make_constant(np.ones(norm_shape, dtype), "gamma")
            )
            inputs = [x, scale] + ([ctx.value("beta")] if ctx.has("beta") else [])
            attrs = {"axis": rank - len(axes), "epsilon": epsilon}
            return ctx.op1("LayerNormalization", inputs, attrs)
    axes_value = ctx.ints(axes)
    mean = ctx.op1("ReduceMean", [x, axes_value], {"keepdims": 1})
    centered = ctx.op1("Sub", [x, mean])
    variance = ctx.op1(
        "ReduceMean", [ctx.op1("Mul", [centered, centered]), axes_value], {"keepdims": 1}
    )
    shifted = ctx.op1("Add", [variance, ctx.scalar(epsilon, ctx.dtype("x"))])
    normed = ctx.op1("Div", [centered, ctx.op1("Sqrt", [shifted])])
    if ctx.has("gamma"):
        normed = ctx.op1("Mul", [normed, ctx.value("gamma")])
    if ctx.has("beta"):
        normed = ctx.op1("Add", [normed, ctx.value("beta")])
    return normed


@ops.register("l2_norm", since=IOS15, domain=MIL_DOMAIN)
def l2_norm(op: Any, ctx: MilContext) -> ir.Value:
    """x / sqrt(max(sum(x^2) over the last three axes, epsilon))."""
    x = ctx.value("x")
    rank = ctx.rank("x")
    axes = ctx.ints(list(range(max(rank - 3, 0), rank)))
    total = ctx.op1("ReduceSumSquare", [x, axes], {"keepdims": 1})
    floor = ctx.op1("Max", [total, ctx.scalar(float(ctx.attr("epsilon", 1e-6)), ctx.dtype("x"))])
    return ctx.op1("Div", [x, ctx.op1("Sqrt", [floor])])


@ops.register("linear", since=IOS15, domain=MIL_DOMAIN)
def linear(op: Any, ctx: MilContext) -> ir.Value:
    """x @ weight.T + bias, weight (D_out, D_in)."""
    weight = ctx.const("weight")
    if weight is not None:
        transposed = ctx.make_constant(np.ascontiguousarray(np.asarray(weight).T), "weight_t")
    else:
        transposed = ctx.op1("Transpose", [ctx.value("weight")], {"perm": [1, 0]})
    product = ctx.op1("MatMul", [ctx.value("x"), transposed])
    if not ctx.has("bias"):
        return product
    bias = ctx.const("bias")
    if bias is not None and not np.any(bias):
        return product
    return ctx.op1("Add", [product, ctx.value("bias")])


def _swap_last(ctx: MilContext, name: str) -> ir.Value:
    rank = ctx.rank(name)
    if rank < 2:
        raise ctx.error(f"transposes the rank-{rank} input {name!r}")
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    return ctx.op1("Transpose", [ctx.value(name)], {"perm": perm})


@ops.register("matmul", since=IOS15, domain=MIL_DOMAIN)
def matmul(op: Any, ctx: MilContext) -> ir.Value:
    x = _swap_last(ctx, "x") if ctx.attr("transpose_x", False) else ctx.value("x")
    y = _swap_last(ctx, "y") if ctx.attr("transpose_y", False) else ctx.value("y")
    return ctx.op1("MatMul", [x, y])


@ops.register("softmax", since=IOS15, domain=MIL_DOMAIN)
def softmax(op: Any, ctx: MilContext) -> ir.Value:
    return ctx.op1("Softmax", [ctx.value("x")], {"axis": int(ctx.attr("axis", -1))})


def _resize(ctx: MilContext, mode: str, coordinates: str, scales: list[float]) -> ir.Value:
    rank = ctx.rank("x")
    all_scales = ctx.make_constant(np.array([1.0] * (rank - 2) + scales, np.float32), "scales")
    attrs: dict[str, Any] = {"mode": mode, "coordinate_transformation_mode": coordinates}
    if mode == "nearest":
        attrs["nearest_mode"] = "floor"
    return ctx.op1("Resize", [ctx.value("x"), None, all_scales], attrs)


@ops.register("upsample_nearest_neighbor", since=IOS15, domain=MIL_DOMAIN)
def upsample_nearest_neighbor(op: Any, ctx: MilContext) -> ir.Value:
    scales = [float(ctx.attr("scale_factor_height", 1)), float(ctx.attr("scale_factor_width", 1))]
    return _resize(ctx, "nearest", "asymmetric", scales)


def _output_sizes(ctx: MilContext) -> tuple[ir.Value, dict[str, Any]] | None:
    """The output's sizes for ONNX's Resize and its extra attributes: all sizes where the shape
    is static, else only the last two (``axes``; a batch unknown before run time is left as it
    is), which MIL's resize ops fix when built; None where those are unknown."""
    out = ctx.static_out_shape()
    if out is not None:
        return ctx.make_constant(np.array(out, np.int64), "sizes"), {}
    dims = ctx.out_shape()
    if not all(isinstance(d, int | np.integer) for d in dims[-2:]):
        return None
    last = ctx.make_constant(np.array([int(d) for d in dims[-2:]], np.int64), "sizes")
    return last, {"axes": [len(dims) - 2, len(dims) - 1]}


def _bilinear(ctx: MilContext, half_pixel: bool) -> ir.Value:
    """MIL recomputes the scale from the sizes (spacing = input / output size), which ONNX does
    given ``sizes``; the scale factors themselves (coremltools writes 1.2500062 for 16 -> 20)
    would move every sample."""
    align_corners = bool(ctx.attr("align_corners", True))
    if align_corners and half_pixel:
        raise ctx.error("align_corners and half_pixel_centers cannot both hold")
    mode = "align_corners" if align_corners else "half_pixel" if half_pixel else "asymmetric"
    found = _output_sizes(ctx)
    if found is None:
        scales = [
            float(ctx.attr("scale_factor_height", 1)),
            float(ctx.attr("scale_factor_width", 1)),
        ]
        return _resize(ctx, "linear", mode, scales)
    sizes, extra = found
    attrs = {"mode": "linear", "coordinate_transformation_mode": mode, **extra}
    return ctx.op1("Resize", [ctx.value("x"), None, None, sizes], attrs)


@ops.register("upsample_bilinear", since=IOS15, domain=MIL_DOMAIN)
def upsample_bilinear(op: Any, ctx: MilContext) -> ir.Value:
    """iOS15: ``align_corners=False`` samples at half-pixel centers (clamped at the edges)."""
    return _bilinear(ctx, half_pixel=not bool(ctx.attr("align_corners", True)))


@ops.register("upsample_bilinear", since=IOS16, domain=MIL_DOMAIN)
def upsample_bilinear_ios16(op: Any, ctx: MilContext) -> ir.Value:
    """iOS16 adds ``half_pixel_centers`` (default: not ``align_corners``)."""
    align_corners = bool(ctx.attr("align_corners", True))
    return _bilinear(ctx, half_pixel=bool(ctx.attr("half_pixel_centers", not align_corners)))


#: ``resize_bilinear``'s sampling modes as ONNX coordinate transformations (with the exact
#: output size, ONNX's scale is output / input, which is the spacing these modes use).
_SAMPLING_MODES = {
    "STRICT_ALIGN_CORNERS": "align_corners",
    "DEFAULT": "asymmetric",
    "UNALIGN_CORNERS": "half_pixel",
}


@ops.register("resize_bilinear", since=IOS15, domain=MIL_DOMAIN)
def resize_bilinear(op: Any, ctx: MilContext) -> ir.Value:
    sampling = str(ctx.attr("sampling_mode", "DEFAULT"))
    out = [int(d) if isinstance(d, int | np.integer) else -1 for d in ctx.out_shape()]
    if min(out[-2:]) < 0:
        raise ctx.error("needs the output's last two sizes known")
    if sampling == "ALIGN_CORNERS" and out[-2] > 1 and out[-1] > 1:
        sampling = "STRICT_ALIGN_CORNERS"  # they differ only for an output of one pixel
    coordinates = _SAMPLING_MODES.get(sampling)
    if coordinates is None or min(out[-2:]) < 2:
        raise ctx.error(f"sampling_mode={sampling} to {out[-2:]}: no ONNX Resize samples there")
    found = _output_sizes(ctx)
    assert found is not None  # the last two sizes are known (checked above)
    sizes, extra = found
    attrs = {"mode": "linear", "coordinate_transformation_mode": coordinates, **extra}
    return ctx.op1("Resize", [ctx.value("x"), None, None, sizes], attrs)


@ops.register("local_response_norm", since=IOS15, domain=MIL_DOMAIN)
def local_response_norm(op: Any, ctx: MilContext) -> ir.Value:
    """MIL normalizes across dim -3: ONNX's LRN (across dim 1) holds it for rank-4 inputs."""
    if ctx.rank("x") != 4:
        raise ctx.error(f"a rank-{ctx.rank('x')} input: ONNX's LRN runs across dim 1 of rank 4")
    attrs = {
        "size": int(ctx.attr("size")),
        "alpha": float(ctx.attr("alpha", 1e-4)),
        "beta": float(ctx.attr("beta", 0.75)),
        "bias": float(ctx.attr("k", 1.0)),
    }
    return ctx.op1("LRN", [ctx.value("x")], attrs)


@ops.register("crop", since=IOS15, domain=MIL_DOMAIN)
def crop(op: Any, ctx: MilContext) -> ir.Value:
    """Drops ``crop_height`` = [top, bottom] and ``crop_width`` = [left, right] off the last two
    axes: a Slice of those axes (ends counted back from the end)."""
    top, bottom = (int(v) for v in ctx.attr("crop_height", [0, 0]))
    left, right = (int(v) for v in ctx.attr("crop_width", [0, 0]))
    rank = ctx.rank("x")
    limit = np.iinfo(np.int64).max
    ends = [-bottom if bottom else limit, -right if right else limit]
    inputs = [ctx.value("x"), ctx.ints([top, left]), ctx.ints(ends), ctx.ints([rank - 2, rank - 1])]
    return ctx.op1("Slice", inputs)


@ops.register("resample", since=IOS15, domain=MIL_DOMAIN)
def resample(op: Any, ctx: MilContext) -> ir.Value:
    """ONNX's GridSample samples as torch's grid_sample, which coremltools maps onto resample:
    zero padding is constant 0, reflection is MIL's reflection with align_corners and its
    symmetric without."""
    align_corners = bool(ctx.attr("align_corners", False))
    if str(ctx.attr("coordinates_mode", "normalized_minus_one_to_one")) != (
        "normalized_minus_one_to_one"
    ):
        raise ctx.error(
            f"coordinates_mode={ctx.attr('coordinates_mode')}: GridSample's are [-1, 1]"
        )
    padding = str(ctx.attr("padding_mode", "constant"))
    padding_mode = {
        ("constant", align_corners): "zeros",
        ("border", align_corners): "border",
        ("reflection", True): "reflection",
        ("symmetric", False): "reflection",
    }.get((padding, align_corners))
    if padding_mode is None or (padding == "constant" and float(ctx.attr("padding_value", 0.0))):
        raise ctx.error(
            f"padding_mode={padding} (align_corners={align_corners}): no GridSample pads so"
        )
    sampling = str(ctx.attr("sampling_mode", "bilinear"))
    if sampling not in ("bilinear", "nearest"):
        raise ctx.error(f"sampling_mode={sampling}")
    attrs = {
        "mode": sampling,  # GridSample-16's words (20 renamed bilinear to linear)
        "padding_mode": padding_mode,
        "align_corners": int(align_corners),
    }
    return ctx.op1("GridSample", [ctx.value("x"), ctx.value("coordinates")], attrs)
