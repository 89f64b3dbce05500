"""Caffe2 neural-network ops: Conv, pooling, FC, normalization, Softmax, activations."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.native import caffe2_pb2
from unframe.frontends.caffe2.context import Args, ImportContext
from unframe.frontends.caffe2.registry import DOMAIN, ops

#: Caffe2's ``legacy_pad`` values (caffe2_legacy.proto).
NOTSET, VALID, SAME, CAFFE_LEGACY_POOLING = 0, 1, 2, 3

Op: TypeAlias = caffe2_pb2.OperatorDef


def _per_dim(
    args: Args, plural: str, single: str, hw: tuple[str, str], rank: int
) -> list[int] | None:
    """An argument in Caffe2's spellings and precedence (ConvPoolOpBase): ``kernels``, then
    ``kernel``, then ``kernel_h`` with ``kernel_w``; None where none is given."""
    values = args.integers(plural)
    given = [args.has(name) for name in (single, *hw)]
    if values:
        return values
    if given[0]:
        return [args.integer(single, 0)] * rank
    if all(given[1:]):
        return [args.integer(hw[0], 0), args.integer(hw[1], 0)]
    if any(given[1:]):
        raise args.ctx.bad(f"give both {hw[0]} and {hw[1]}, or neither")
    return None


def _explicit_pads(args: Args, rank: int) -> list[int] | None:
    """``pads`` (all begins, then all ends), ``pad``, or all four of ``pad_t/l/b/r``."""
    pads = args.integers("pads")
    sides = ("pad_t", "pad_l", "pad_b", "pad_r")
    given = [args.has(name) for name in ("pad", *sides)]
    if pads:
        return pads
    if given[0]:
        return [args.integer("pad", 0)] * (2 * rank)
    if all(given[1:]):
        return [args.integer(name, 0) for name in sides]
    if any(given[1:]):
        raise args.ctx.bad("give all four of pad_t, pad_l, pad_b and pad_r, or none")
    return None


def _spatial_rank(args: Args, ctx: ImportContext, x: ir.Value, weight: ir.Value | None) -> int:
    kernels = args.integers("kernels")
    if kernels:
        return len(kernels)
    if weight is not None and weight.shape is not None:
        return len(weight.shape) - 2
    if x.shape is not None:
        return len(x.shape) - 2
    return 2


def _conv_attrs(
    args: Args,
    ctx: ImportContext,
    x: ir.Value,
    weight: ir.Value | None,
    *,
    pool: bool,
    dilated: bool = True,
) -> dict[str, list[int] | int]:
    """ONNX window attributes from Caffe2's geometry arguments, refused where Caffe2 refused.

    ``dilated``: the op reads dilations (ConvTranspose's base does not: they stay unread).
    """
    rank = _spatial_rank(args, ctx, x, weight)
    kernel = _per_dim(args, "kernels", "kernel", ("kernel_h", "kernel_w"), rank)
    if kernel is None and weight is not None and ctx.shape(weight):
        kernel = [int(d) for d in ctx.shape(weight)[2:]]  # type: ignore[index]
    strides = _per_dim(args, "strides", "stride", ("stride_h", "stride_w"), rank) or [1] * rank
    dilations = [1] * rank
    if dilated:
        dilations = (
            _per_dim(args, "dilations", "dilation", ("dilation_h", "dilation_w"), rank) or dilations
        )
    explicit = _explicit_pads(args, rank)
    pads = explicit or [0] * (2 * rank)
    legacy = args.integer("legacy_pad", NOTSET)
    if legacy in (VALID, SAME) and explicit is not None:
        # ConvPoolOpBase: "If you use legacy padding VALID or SAME, you should not specify any
        # specific padding values."
        raise ctx.bad("legacy_pad VALID or SAME cannot be combined with explicit pads")
    if kernel is None:
        raise ctx.bad("no kernel size given (kernels, kernel or kernel_h and kernel_w)")
    if len(kernel) != rank or len(strides) != rank or len(pads) != 2 * rank:
        raise ctx.bad("kernel, stride and pad arguments disagree on the number of spatial dims")
    if len(dilations) != rank:
        raise ctx.bad("kernel and dilation arguments disagree on the number of spatial dims")
    _check_geometry(ctx, x, args, kernel, strides, dilations, pads, pool=pool)
    attrs: dict[str, list[int] | int] = {"kernel_shape": kernel, "strides": strides, "pads": pads}
    if not pool or any(d != 1 for d in dilations):
        attrs["dilations"] = dilations
    if legacy == VALID:
        attrs["pads"] = [0] * (2 * rank)
    elif legacy == SAME:
        shape = ctx.shape(x)
        if shape is None:
            raise ctx.needs_shape("legacy_pad=SAME needs the input's static shape")
        begins, ends = [], []
        for i in range(rank):
            size = shape[2 + i] if not _nhwc(args) else shape[1 + i]
            target = (size + strides[i] - 1) // strides[i]
            needed = (target - 1) * strides[i] + kernel[i] - size
            begins.append(needed // 2)
            ends.append(needed - needed // 2)
        attrs["pads"] = begins + ends
    elif legacy == CAFFE_LEGACY_POOLING:
        # Caffe's pooling rounds output sizes up, keeping the last window inside the image:
        # ONNX's ceil_mode with the same (symmetric) pads.
        attrs["ceil_mode"] = 1
    elif legacy != NOTSET:
        raise ctx.bad(f"legacy_pad={legacy} is not one of Caffe2's values 0-3")
    return attrs


#: Caffe2 keeps kernels, strides, dilations and pads as C++ ``int``: a larger value is corrupt.
GEOMETRY_LIMIT = 2**31


def _check_geometry(
    ctx: ImportContext,
    x: ir.Value,
    args: Args,
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pads: list[int],
    *,
    pool: bool,
) -> None:
    """Refuses the window arguments ConvPoolOpBase refuses, and a window larger than its input.

    Caffe2 enforces kernels, strides and dilations above 0 and pads at 0 or more; each is an
    ``int``. A pooling pad as large as the window puts whole windows in the padding (onnxruntime
    refuses it). Where the input's spatial size is known, the padded input must hold one window.
    """
    for what, values, least in (
        ("kernel", kernel, 1), ("stride", strides, 1), ("dilation", dilations, 1), ("pad", pads, 0),
    ):  # fmt: skip
        for value in values:
            if value < least or value >= GEOMETRY_LIMIT:
                bound = "positive" if least else "non-negative"
                raise ctx.bad(f"{what} {value} in {values}: each must be {bound} and below 2**31")
    rank = len(kernel)
    extents = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    if pool and any(max(pads[i], pads[rank + i]) >= extents[i] for i in range(rank)):
        raise ctx.bad(f"pads {pads} are not all smaller than the pooling window {kernel}")
    shape = ctx.shape(x)
    if shape is None or len(shape) != rank + 2:
        return
    sizes = shape[1:-1] if _nhwc(args) else shape[2:]
    for i, size in enumerate(sizes):
        if size + pads[i] + pads[rank + i] < extents[i]:
            raise ctx.bad(
                f"the window {kernel} (dilations {dilations}) is larger than the input's spatial "
                f"size {list(sizes)} with pads {pads}: no output"
            )


def _check_global_pooling(args: Args, ctx: ImportContext) -> None:
    """Global pooling reads every geometry argument and needs the neutral ones (ConvPoolOpBase).

    Caffe2 replaces the kernel by the input's spatial size and ignores ``legacy_pad`` (the
    output is 1 per axis), but refuses pads, strides and dilations other than 0, 1 and 1.
    """
    rank = len(args.integers("kernels") or []) or 2
    _per_dim(args, "kernels", "kernel", ("kernel_h", "kernel_w"), rank)  # the input's size wins
    strides = _per_dim(args, "strides", "stride", ("stride_h", "stride_w"), rank) or []
    dilations = _per_dim(args, "dilations", "dilation", ("dilation_h", "dilation_w"), rank) or []
    explicit = _explicit_pads(args, rank)
    pads = explicit or []
    legacy = args.integer("legacy_pad", NOTSET)
    if legacy not in (NOTSET, VALID, SAME, CAFFE_LEGACY_POOLING):
        raise ctx.bad(f"legacy_pad={legacy} is not one of Caffe2's values 0-3")
    if legacy in (VALID, SAME) and explicit is not None:
        raise ctx.bad("legacy_pad VALID or SAME cannot be combined with explicit pads")
    if any(pads) or any(s != 1 for s in strides) or any(d != 1 for d in dilations):
        raise ctx.bad(
            f"global_pooling with pads {pads or [0]}, strides {strides or [1]} and dilations "
            f"{dilations or [1]}: Caffe2 refuses global pooling unless they are 0, 1 and 1"
        )


def _nhwc(args: Args) -> bool:
    order = args.string("order", "NCHW").upper()
    return order == "NHWC"


def _to_nchw(ctx: ImportContext, x: ir.Value) -> ir.Value:
    rank = ctx.rank(x)
    return ctx.op1("Transpose", [x], {"perm": [0, rank - 1, *range(1, rank - 1)]})


def _to_nhwc(ctx: ImportContext, x: ir.Value, rank: int) -> ir.Value:
    return ctx.op1("Transpose", [x], {"perm": [0, *range(2, rank), 1]})


def _weight_to_nchw(ctx: ImportContext, weight: ir.Value) -> ir.Value:
    const = ctx.known_value(weight)
    if const is not None:
        return ctx.make_constant(np.moveaxis(const, -1, 1).copy(), "weight_nchw")
    return _to_nchw(ctx, weight)


def _channel_first(
    args: Args, ctx: ImportContext, op_type: str, inputs: list[ir.Value | None], attrs: dict
) -> None:  # type: ignore[type-arg]
    """Emits ``op_type`` on NCHW data, transposing around it where the op's order is NHWC."""
    x = inputs[0]
    assert x is not None
    if _nhwc(args):
        rank = ctx.rank(x)
        inputs = [_to_nchw(ctx, x), *inputs[1:]]
        y = ctx.op1(op_type, inputs, attrs)
        ctx.output(0, _to_nhwc(ctx, y, rank))
        return
    ctx.output(0, ctx.op1(op_type, inputs, attrs))


def _check_parameters(ctx: ImportContext, *params: ir.Value | None) -> None:
    """A weight or bias that the init net does not fill and no shape declares is missing.

    Caffe2 would need it fed at run time; every converter and backend needs its shape.
    """
    for param in params:
        if param is not None and param.shape is None and param in ctx.inputs:
            raise ctx.bad(
                f"its weight or bias {param.name!r} is not filled by the init net and has no "
                f"shape: fill it there, or give it with --input {param.name}=DIMS"
            )


def _check_conv_weight(ctx: ImportContext, x: ir.Value, weight: ir.Value, args: Args) -> int:
    """Caffe2's ConvOp: the weight is (M, C / group, *kernel) for C input channels; the group."""
    group = args.integer("group", 1)
    if group < 1 or group >= GEOMETRY_LIMIT:
        raise ctx.bad(f"group {group} must be positive and below 2**31")
    x_shape, w_shape = ctx.shape(x), ctx.shape(weight)
    if w_shape is None:
        return group
    if len(w_shape) < 3 or w_shape[0] % group:
        raise ctx.bad(f"weight {weight.name!r} of shape {list(w_shape)} for group {group}")
    if x_shape is not None:
        channels = x_shape[-1] if _nhwc(args) else x_shape[1]
        if len(x_shape) != len(w_shape) or channels != w_shape[1] * group:
            raise ctx.bad(
                f"weight {weight.name!r} of shape {list(w_shape)} does not fit the input "
                f"{x.name!r} of shape {list(x_shape)} with group {group}"
            )
    return group


@ops.register("Conv", since=1, domain=DOMAIN)
def conv(op: Op, args: Args, ctx: ImportContext) -> None:
    x, weight, bias = ctx.input(0), ctx.input(1), ctx.optional_input(2)
    _check_parameters(ctx, weight, bias)
    if _nhwc(args):
        weight = _weight_to_nchw(ctx, weight)
    attrs = _conv_attrs(args, ctx, x, weight, pool=False)
    attrs["group"] = _check_conv_weight(ctx, x, weight, args)
    _channel_first(args, ctx, "Conv", [x, weight, bias], attrs)


@ops.register("ConvTranspose", since=1, domain=DOMAIN)
def conv_transpose(op: Op, args: Args, ctx: ImportContext) -> None:
    x, weight, bias = ctx.input(0), ctx.input(1), ctx.optional_input(2)
    _check_parameters(ctx, weight, bias)
    if _nhwc(args):
        weight = _weight_to_nchw(ctx, weight)
    attrs = _conv_attrs(args, ctx, x, weight, pool=False, dilated=False)
    rank = len(attrs["kernel_shape"])  # type: ignore[arg-type]
    adjs = _per_dim(args, "adjs", "adj", ("adj_h", "adj_w"), rank) or [0] * rank
    if any(adjs):
        attrs["output_padding"] = adjs
    attrs["group"] = args.integer("group", 1)
    _channel_first(args, ctx, "ConvTranspose", [x, weight, bias], attrs)


def _pool(op: Op, args: Args, ctx: ImportContext, onnx_type: str) -> None:
    x = ctx.input(0)
    if args.integer("global_pooling", 0):
        _check_global_pooling(args, ctx)
        if onnx_type == "AveragePool":  # every window is the whole image: no pad to count
            args.integer("count_include_pad", 0)
        lp = {"p": int(args.number("p", 2.0))} if onnx_type == "LpPool" else {}
        _channel_first(args, ctx, f"Global{onnx_type}", [x], lp)
        return
    attrs = _conv_attrs(args, ctx, x, None, pool=True)
    if onnx_type == "AveragePool":
        attrs["count_include_pad"] = args.integer("count_include_pad", 0)
    if onnx_type == "LpPool":
        attrs["p"] = int(args.number("p", 2.0))
    _channel_first(args, ctx, onnx_type, [x], attrs)


@ops.register("MaxPool", since=1, domain=DOMAIN)
def max_pool(op: Op, args: Args, ctx: ImportContext) -> None:
    _pool(op, args, ctx, "MaxPool")


@ops.register("AveragePool", since=1, domain=DOMAIN)
def average_pool(op: Op, args: Args, ctx: ImportContext) -> None:
    _pool(op, args, ctx, "AveragePool")


@ops.register("LpPool", since=1, domain=DOMAIN)
def lp_pool(op: Op, args: Args, ctx: ImportContext) -> None:
    _pool(op, args, ctx, "LpPool")


def _fc(op: Op, args: Args, ctx: ImportContext, transposed: bool) -> None:
    x, weight, bias = ctx.input(0), ctx.input(1), ctx.input(2)
    _check_parameters(ctx, weight, bias)
    axis, axis_w = args.integer("axis", 1), args.integer("axis_w", 1)
    _check_fc_weight(ctx, x, weight, axis, axis_w, transposed)
    flat = (
        x
        if (x.shape is not None and len(x.shape) == 2 and axis == 1)
        else ctx.op1("Flatten", [x], {"axis": axis})
    )
    const = ctx.known_value(weight)
    if const is not None and const.ndim != 2:
        split = axis_w if not transposed else const.ndim - 1
        weight = ctx.make_constant(
            const.reshape(int(np.prod(const.shape[:split])), -1), "weight_2d"
        )
    elif const is None and (weight.shape is None or len(weight.shape) != 2):
        weight = ctx.op1("Flatten", [weight], {"axis": axis_w})
    y = ctx.op1("Gemm", [flat, weight, bias], {"transB": 0 if transposed else 1})
    x_shape = ctx.shape(x)
    if x_shape is not None and (axis != 1 or len(x_shape) != 2):
        y = ctx.op1("Reshape", [y, ctx.ints([*x_shape[:axis], -1])])
    elif axis != 1 or (x.shape is not None and len(x.shape) < 2):
        leading = ctx.op1("Shape", [x], {"end": axis})
        shape = ctx.op1("Concat", [leading, ctx.ints([-1])], {"axis": 0})
        y = ctx.op1("Reshape", [y, shape])
    ctx.output(0, y)


def _check_fc_weight(
    ctx: ImportContext, x: ir.Value, weight: ir.Value, axis: int, axis_w: int, transposed: bool
) -> None:
    """Caffe2's FullyConnectedOp: K, the input's size past ``axis``, is the weight's too."""
    x_shape, w_shape = ctx.shape(x), ctx.shape(weight)
    if x_shape is None or w_shape is None:
        return
    axis += len(x_shape) if axis < 0 else 0  # canonical_axis_index
    axis_w += len(w_shape) if axis_w < 0 else 0
    if not 0 < axis <= len(x_shape) or not 0 < axis_w <= len(w_shape):
        raise ctx.bad(f"axis {axis} or axis_w {axis_w} outside the input's or weight's dims")
    k = int(np.prod(x_shape[axis:]))
    w_k = int(np.prod(w_shape[:axis_w] if transposed else w_shape[axis_w:]))
    if k != w_k:
        raise ctx.bad(
            f"weight {weight.name!r} of shape {list(w_shape)} does not fit the input "
            f"{x.name!r} of shape {list(x_shape)}: {w_k} inputs per output, not {k}"
        )


@ops.register("FC", since=1, domain=DOMAIN)
def fc(op: Op, args: Args, ctx: ImportContext) -> None:
    _fc(op, args, ctx, transposed=False)


@ops.register("FCTransposed", since=1, domain=DOMAIN)
def fc_transposed(op: Op, args: Args, ctx: ImportContext) -> None:
    _fc(op, args, ctx, transposed=True)


@ops.register("SpatialBN", since=1, domain=DOMAIN)
def spatial_bn(op: Op, args: Args, ctx: ImportContext) -> None:
    if not args.integer("is_test", 1) and ctx.num_outputs() > 1:
        raise ctx.unsupported("training-mode SpatialBN (is_test=0) is not imported")
    inputs: list[ir.Value | None] = [ctx.input(i) for i in range(5)]
    args.used.update({"momentum"})
    attrs = {"epsilon": args.number("epsilon", 1e-5)}
    _channel_first(args, ctx, "BatchNormalization", inputs, attrs)


@ops.register("InstanceNorm", since=1, domain=DOMAIN)
def instance_norm(op: Op, args: Args, ctx: ImportContext) -> None:
    inputs: list[ir.Value | None] = [ctx.input(i) for i in range(3)]
    _channel_first(
        args, ctx, "InstanceNormalization", inputs, {"epsilon": args.number("epsilon", 1e-5)}
    )


@ops.register("GroupNorm", since=1, domain=DOMAIN)
def group_norm(op: Op, args: Args, ctx: ImportContext) -> None:
    if ctx.num_outputs() > 1:
        raise ctx.unsupported("GroupNorm's mean and inv_std outputs are not imported")
    inputs: list[ir.Value | None] = [ctx.input(i) for i in range(3)]
    attrs = {"num_groups": args.integer("group", 32), "epsilon": args.number("epsilon", 1e-5)}
    if _nhwc(args):
        raise ctx.unsupported("GroupNorm in NHWC order is not imported")
    # Opset 18's GroupNormalization scales per group; Caffe2's per channel: normalize, then
    # apply the per-channel affine transform.
    x = inputs[0]
    assert x is not None
    rank = ctx.rank(x)
    channels = ctx.shape(x)
    if channels is None:
        raise ctx.needs_shape("GroupNorm needs the input's channel count")
    groups = int(attrs["num_groups"])
    ones = ctx.make_constant(np.ones(groups, dtype=(x.dtype or ir.DataType.FLOAT).numpy()))
    zeros = ctx.make_constant(np.zeros(groups, dtype=(x.dtype or ir.DataType.FLOAT).numpy()))
    normed = ctx.op1("GroupNormalization", [x, ones, zeros], attrs)
    trailing = ctx.ints(list(range(1, rank - 1)))
    scale = ctx.op1("Unsqueeze", [inputs[1], trailing])
    bias = ctx.op1("Unsqueeze", [inputs[2], trailing])
    ctx.output(0, ctx.op1("Add", [ctx.op1("Mul", [normed, scale]), bias]))


@ops.register("Normalize", since=1, domain=DOMAIN)
def normalize(op: Op, args: Args, ctx: ImportContext) -> None:
    # Caffe2 divides by max(||x||, 1e-12) along the axis.
    x = ctx.input(0)
    axis = ctx.ints([args.integer("axis", -1)])
    norm = ctx.op1("ReduceL2", [x, axis], {"keepdims": 1})
    dtype = (x.dtype or ir.DataType.FLOAT).numpy()
    floor = ctx.make_constant(np.array(1e-12, dtype=dtype))
    ctx.output(0, ctx.op1("Div", [x, ctx.op1("Max", [norm, floor])]))


@ops.register("NormalizeL1", since=1, domain=DOMAIN)
def normalize_l1(op: Op, args: Args, ctx: ImportContext) -> None:
    # Caffe2 leaves a slice whose L1 norm is zero as it is.
    x = ctx.input(0)
    axis = ctx.ints([args.integer("axis", -1)])
    norm = ctx.op1("ReduceL1", [x, axis], {"keepdims": 1})
    dtype = (x.dtype or ir.DataType.FLOAT).numpy()
    zero, one = (
        ctx.make_constant(np.array(0, dtype=dtype)),
        ctx.make_constant(np.array(1, dtype=dtype)),
    )
    safe = ctx.op1("Where", [ctx.op1("Equal", [norm, zero]), one, norm])
    ctx.output(0, ctx.op1("Div", [x, safe]))


@ops.register("LRN", since=1, domain=DOMAIN)
def lrn(op: Op, args: Args, ctx: ImportContext) -> None:
    attrs = {
        "size": args.integer("size", 0), "alpha": args.number("alpha", 0.0),
        "beta": args.number("beta", 0.0), "bias": args.number("bias", 1.0),
    }  # fmt: skip
    _channel_first(args, ctx, "LRN", [ctx.input(0)], attrs)


@ops.register("Softmax", since=1, domain=DOMAIN)
def softmax(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    axis = args.integer("axis", 1)
    if x.shape is not None and axis in (len(x.shape) - 1, -1):
        ctx.output(0, ctx.op1("Softmax", [x], {"axis": -1}))
        return
    # Caffe2 coerces the input to 2-D at ``axis`` and normalizes each row.
    flat = ctx.op1("Flatten", [x], {"axis": axis})
    soft = ctx.op1("Softmax", [flat], {"axis": -1})
    ctx.output(0, ctx.op1("Reshape", [soft, ctx.op1("Shape", [x])]))


@ops.register("Dropout", since=1, domain=DOMAIN)
def dropout(op: Op, args: Args, ctx: ImportContext) -> None:
    args.number("ratio", 0.5)
    if not args.integer("is_test", 0):
        # A predict net runs in inference mode; Dropout there passes its input through.
        pass
    outputs = ctx.node("Dropout", [ctx.input(0)], {}, num_outputs=2 if ctx.num_outputs() > 1 else 1)
    for i, value in enumerate(outputs):
        ctx.output(i, value)


@ops.register("PRelu", since=1, domain=DOMAIN)
def prelu(op: Op, args: Args, ctx: ImportContext) -> None:
    x, slope = ctx.input(0), ctx.input(1)
    rank = ctx.rank(x)
    channel_axis = rank - 1 if _nhwc(args) else 1
    const = ctx.known_value(slope)
    trailing = rank - 1 - channel_axis
    if const is not None:
        if const.size == 1:
            slope = ctx.make_constant(const.reshape(()), "slope")
        else:
            slope = ctx.make_constant(const.reshape((-1,) + (1,) * trailing), "slope")
    elif trailing:
        slope = ctx.op1("Unsqueeze", [slope, ctx.ints(range(1, trailing + 1))])
    ctx.output(0, ctx.op1("PRelu", [x, slope]))


@ops.register("ChannelShuffle", since=1, domain=DOMAIN)
def channel_shuffle(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    group = args.integer("group", 1)
    nhwc = _nhwc(args)
    if nhwc:
        x = _to_nchw(ctx, x)
    shape = ctx.shape(x)
    if shape is None:
        raise ctx.needs_shape("ChannelShuffle needs the input's channel count")
    channels = shape[1]
    grouped = ctx.op1("Reshape", [x, ctx.ints([0, group, channels // group, -1])])
    moved = ctx.op1("Transpose", [grouped], {"perm": [0, 2, 1, 3]})
    y = ctx.op1("Reshape", [moved, ctx.op1("Shape", [x])])
    ctx.output(0, _to_nhwc(ctx, y, len(shape)) if nhwc else y)


@ops.register("LayerNorm", since=1, domain=DOMAIN)
def layer_norm(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    axis = args.integer("axis", 1)
    epsilon = args.number("epsilon", 1e-5)
    if args.integer("elementwise_affine", 0):
        scale, bias = ctx.input(1), ctx.input(2)
    else:
        ones = ctx.op1("Shape", [x], {"start": axis})
        scale = ctx.op1(
            "ConstantOfShape", [ones], {"value": ir.tensor(np.array([1.0], dtype=np.float32))}
        )
        bias = None
    outputs = ctx.node(
        "LayerNormalization", [x, scale, bias], {"axis": axis, "epsilon": epsilon}, num_outputs=3
    )
    ctx.output(0, outputs[0])
    if ctx.num_outputs() > 1:
        ctx.output(1, outputs[1])
    if ctx.num_outputs() > 2:
        # Caffe2 writes the standard deviation, ONNX its inverse.
        ctx.output(2, ctx.op1("Reciprocal", [outputs[2]]))


_ACTIVATIONS = {
    "Relu": "Relu",
    "Sigmoid": "Sigmoid",
    "Tanh": "Tanh",
    "Softsign": "Softsign",
    "Softplus": "Softplus",
    "Mish": "Mish",
}


def _activation(onnx_type: str):  # type: ignore[no-untyped-def]
    def convert(op: Op, args: Args, ctx: ImportContext) -> None:
        ctx.output(0, ctx.op1(onnx_type, [ctx.input(0)]))

    convert.__name__ = convert.__qualname__ = onnx_type.lower()
    return convert


for _caffe2, _onnx in _ACTIVATIONS.items():
    ops.register(_caffe2, since=1, domain=DOMAIN)(_activation(_onnx))


@ops.register("LeakyRelu", since=1, domain=DOMAIN)
def leaky_relu(op: Op, args: Args, ctx: ImportContext) -> None:
    ctx.output(0, ctx.op1("LeakyRelu", [ctx.input(0)], {"alpha": args.number("alpha", 0.01)}))


@ops.register("ThresholdedRelu", since=1, domain=DOMAIN)
def thresholded_relu(op: Op, args: Args, ctx: ImportContext) -> None:
    # x where x > alpha, else 0 (thresholded_relu_op.cc): ONNX's ThresholdedRelu.
    attrs = {"alpha": args.number("alpha", 1.0)}
    ctx.output(0, ctx.op1("ThresholdedRelu", [ctx.input(0)], attrs))


@ops.register("Elu", since=1, domain=DOMAIN)
def elu(op: Op, args: Args, ctx: ImportContext) -> None:
    ctx.output(0, ctx.op1("Elu", [ctx.input(0)], {"alpha": args.number("alpha", 1.0)}))


@ops.register("Selu", since=1, domain=DOMAIN)
def selu(op: Op, args: Args, ctx: ImportContext) -> None:
    attrs = {
        "alpha": args.number("alpha", 1.6732632423543772),
        "gamma": args.number("scale", 1.0507009873554805),
    }
    ctx.output(0, ctx.op1("Selu", [ctx.input(0)], attrs))


@ops.register("HardSigmoid", since=1, domain=DOMAIN)
def hard_sigmoid(op: Op, args: Args, ctx: ImportContext) -> None:
    attrs = {"alpha": args.number("alpha", 0.2), "beta": args.number("beta", 0.5)}
    ctx.output(0, ctx.op1("HardSigmoid", [ctx.input(0)], attrs))


@ops.register("Swish", since=1, domain=DOMAIN)
def swish(op: Op, args: Args, ctx: ImportContext) -> None:
    x = ctx.input(0)
    ctx.output(0, ctx.op1("Mul", [x, ctx.op1("Sigmoid", [x])]))


@ops.register("Gelu", since=1, domain=DOMAIN)
def gelu(op: Op, args: Args, ctx: ImportContext) -> None:
    # Opset 18 has no Gelu: 0.5 x (1 + erf(x / sqrt 2)), or the tanh form for fast_gelu.
    x = ctx.input(0)
    dtype = (x.dtype or ir.DataType.FLOAT).numpy()
    half, one = ctx.make_constant(np.array(0.5, dtype)), ctx.make_constant(np.array(1.0, dtype))
    if args.integer("fast_gelu", 0):
        cube = ctx.op1("Mul", [ctx.op1("Mul", [x, x]), x])
        inner = ctx.op1(
            "Add", [x, ctx.op1("Mul", [cube, ctx.make_constant(np.array(0.044715, dtype))])]
        )
        scaled = ctx.op1("Mul", [inner, ctx.make_constant(np.array(np.sqrt(2 / np.pi), dtype))])
        gate = ctx.op1("Tanh", [scaled])
    else:
        gate = ctx.op1(
            "Erf", [ctx.op1("Mul", [x, ctx.make_constant(np.array(1 / np.sqrt(2), dtype))])]
        )
    ctx.output(0, ctx.op1("Mul", [ctx.op1("Mul", [x, half]), ctx.op1("Add", [gate, one])]))
