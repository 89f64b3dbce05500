"""NeuralNetwork layers (``.mlmodel`` specs from version 1): convolution, pooling, activations,
inner products, softmax, flattening, element-wise sums and products, normalization, scaling."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx_ir as ir

from unframe.frontends.coreml.neural_network import LayerContext
from unframe.frontends.coreml.registry import NN_DOMAIN, ops

#: The specification version of the original NeuralNetwork layers.
SPEC1 = 1


def _pads(ctx: LayerContext, padding: Any, kernel: list[int], attrs: dict[str, Any]) -> None:
    """ONNX padding from a layer's ``valid`` (explicit border amounts) or ``same`` padding."""
    which = ctx.params.WhichOneof(
        "ConvolutionPaddingType"
        if hasattr(ctx.params, "same") and ctx.op_type == "convolution"
        else "PoolingPaddingType"
    )
    if which == "same":
        attrs["auto_pad"] = "SAME_LOWER" if ctx.params.same.asymmetryMode == 1 else "SAME_UPPER"
        return
    if which == "includeLastPixel":
        amounts = [int(a) for a in ctx.params.includeLastPixel.paddingAmounts] or [0, 0]
        attrs["pads"] = amounts + amounts
        attrs["ceil_mode"] = 1
        return
    borders = list(ctx.params.valid.paddingAmounts.borderAmounts) if which == "valid" else []
    begins = [int(b.startEdgeSize) for b in borders] or [0] * len(kernel)
    ends = [int(b.endEdgeSize) for b in borders] or [0] * len(kernel)
    attrs["pads"] = begins + ends


@ops.register("convolution", since=SPEC1, domain=NN_DOMAIN)
def convolution(layer: Any, ctx: LayerContext) -> ir.Value:
    params = ctx.params
    kernel = [int(k) for k in params.kernelSize] or [3, 3]
    groups = int(params.nGroups) or 1
    attrs: dict[str, Any] = {
        "kernel_shape": kernel,
        "strides": [int(s) for s in params.stride] or [1, 1],
        "dilations": [int(d) for d in params.dilationFactor] or [1, 1],
        "group": groups,
    }
    _pads(ctx, params, kernel, attrs)
    out_channels, kernel_channels = int(params.outputChannels), int(params.kernelChannels)
    if params.isDeconvolution:
        shape = [kernel_channels, out_channels // groups, *kernel]
        op_type = "ConvTranspose"
        if params.outputShape:
            attrs["output_shape"] = [int(d) for d in params.outputShape]
            attrs.pop("pads", None)
    else:
        shape = [out_channels, kernel_channels, *kernel]
        op_type = "Conv"
    inputs = [ctx.input(0), ctx.make_constant(ctx.weights(params.weights, shape, "weights"), "W")]
    if params.hasBias:
        bias = ctx.weights(params.bias, [out_channels], "biases")
        inputs.append(ctx.make_constant(bias, "B"))
    return ctx.op1(op_type, inputs, attrs)


@ops.register("pooling", since=SPEC1, domain=NN_DOMAIN)
def pooling(layer: Any, ctx: LayerContext) -> ir.Value:
    params = ctx.params
    kind = {0: "Max", 1: "Average", 2: "Lp"}.get(params.type)
    if kind is None:
        raise ctx.error(f"pooling type {params.type} is not one Core ML defines")
    if params.globalPooling:
        return ctx.op1(f"Global{kind}Pool", [ctx.input(0)], {"p": 2} if kind == "Lp" else None)
    kernel = [int(k) for k in params.kernelSize] or [3, 3]
    attrs: dict[str, Any] = {
        "kernel_shape": kernel,
        "strides": [int(s) for s in params.stride] or [1, 1],
    }
    _pads(ctx, params, kernel, attrs)
    if kind == "Average":
        attrs["count_include_pad"] = int(not params.avgPoolExcludePadding)
    if kind == "Lp":
        attrs["p"] = 2
    return ctx.op1(f"{kind}Pool", [ctx.input(0)], attrs)


def _per_channel(ctx: LayerContext, params: Any, what: str, rank: int) -> ir.Value:
    """Per-channel activation parameters ([C] or [1]), along Core ML's channel axis.

    That axis is -3 of a blob held with its (C, H, W) last: (1, C, H, W) and (1, S, B, C, H, W)
    for the legacy layout, any rank as declared for the exact mapping. A (C, 1, 1) blob held
    flat, as (batch, C), has it last.
    """
    array = ctx.weights(params, [len(params.floatValue) or len(params.float16Value) // 2], what)
    return ctx.make_constant(array.reshape((-1, 1, 1) if rank >= 3 else (-1,)), what)


@ops.register("activation", since=SPEC1, domain=NN_DOMAIN)
def activation(layer: Any, ctx: LayerContext) -> ir.Value:
    x = ctx.input(0)
    which = ctx.params.WhichOneof("NonlinearityType")
    p: Any = getattr(ctx.params, which) if which else None
    simple = {"ReLU": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softsign": "Softsign",
              "softplus": "Softplus"}  # fmt: skip
    if which in simple:
        return ctx.op1(simple[which], [x])
    if which == "leakyReLU":
        return ctx.op1("LeakyRelu", [x], {"alpha": float(p.alpha)})
    if which == "ELU":
        return ctx.op1("Elu", [x], {"alpha": float(p.alpha)})
    if which == "thresholdedReLU":
        return ctx.op1("ThresholdedRelu", [x], {"alpha": float(p.alpha)})
    if which == "sigmoidHard":
        return ctx.op1("HardSigmoid", [x], {"alpha": float(p.alpha), "beta": float(p.beta)})
    if which == "linear":
        return ctx.op1("Add", [ctx.op1("Mul", [x, ctx.scalar(p.alpha)]), ctx.scalar(p.beta)])
    if which == "scaledTanh":
        inner = ctx.op1("Tanh", [ctx.op1("Mul", [x, ctx.scalar(p.beta)])])
        return ctx.op1("Mul", [inner, ctx.scalar(p.alpha)])
    if which == "PReLU":
        return ctx.op1("PRelu", [x, _per_channel(ctx, p.alpha, "alpha", ctx.rank(x))])
    if which == "parametricSoftplus":
        alpha = _per_channel(ctx, p.alpha, "alpha", ctx.rank(x))
        beta = _per_channel(ctx, p.beta, "beta", ctx.rank(x))
        return ctx.op1("Mul", [alpha, ctx.op1("Softplus", [ctx.op1("Mul", [x, beta])])])
    raise ctx.error(f"activation {which or '(none)'} is not converted")


@ops.register("innerProduct", since=SPEC1, domain=NN_DOMAIN)
def inner_product(layer: Any, ctx: LayerContext) -> ir.Value:
    """y = W x + b over the channel axis (a (C, 1, 1) blob is flattened first)."""
    params = ctx.params
    x = ctx.input(0)
    if ctx.rank(x) != 2:
        x = ctx.op1("Flatten", [x], {"axis": 1})
    shape = [int(params.outputChannels), int(params.inputChannels)]
    inputs = [x, ctx.make_constant(ctx.weights(params.weights, shape, "weights"), "W")]
    if params.hasBias:
        bias = ctx.weights(params.bias, [int(params.outputChannels)], "biases")
        inputs.append(ctx.make_constant(bias, "B"))
    if params.int8DynamicQuantize:
        raise ctx.error("int8 dynamic quantization is not converted")
    return ctx.op1("Gemm", inputs, {"transB": 1})


@ops.register("softmax", since=SPEC1, domain=NN_DOMAIN)
def softmax(layer: Any, ctx: LayerContext) -> ir.Value:
    """Over the channel axis (axis 1 of the IR's layout)."""
    return ctx.op1("Softmax", [ctx.input(0)], {"axis": 1})


@ops.register("flatten", since=SPEC1, domain=NN_DOMAIN)
def flatten(layer: Any, ctx: LayerContext) -> ir.Value:
    """CHANNEL_LAST flattens (H, W, C) order, as Keras did."""
    x = ctx.input(0)
    if ctx.params.mode == 1 and ctx.rank(x) == 4:
        x = ctx.op1("Transpose", [x], {"perm": [0, 2, 3, 1]})
    return ctx.op1("Flatten", [x], {"axis": 1})


@ops.register("reshape", since=SPEC1, domain=NN_DOMAIN)
def reshape(layer: Any, ctx: LayerContext) -> ir.Value:
    target = [int(d) for d in ctx.params.targetShape]
    if ctx.params.mode != 0:
        raise ctx.error("CHANNEL_LAST reshape is not converted")
    if len(target) == 4:
        if target[0] != 1:
            raise ctx.error("reshape into a sequence axis is not converted")
        target = target[1:]
    return ctx.op1("Reshape", [ctx.input(0), ctx.ints([1, *target])])


def _fold(ctx: LayerContext, op_type: str, layer: Any) -> ir.Value:
    values = [ctx.input(i) for i in range(len(layer.input))]
    result = values[0]
    for value in values[1:]:
        result = ctx.op1(op_type, [result, value])
    return result


@ops.register("add", since=SPEC1, domain=NN_DOMAIN)
def add(layer: Any, ctx: LayerContext) -> ir.Value:
    """The inputs' sum, plus ``alpha`` (a single input adds only ``alpha``)."""
    total = _fold(ctx, "Add", layer)
    if ctx.params.alpha or len(layer.input) == 1:
        total = ctx.op1("Add", [total, ctx.scalar(ctx.params.alpha)])
    return total


@ops.register("multiply", since=SPEC1, domain=NN_DOMAIN)
def multiply(layer: Any, ctx: LayerContext) -> ir.Value:
    """The inputs' product; a single input is multiplied by ``alpha``."""
    if len(layer.input) == 1:
        return ctx.op1("Mul", [ctx.input(0), ctx.scalar(ctx.params.alpha)])
    return _fold(ctx, "Mul", layer)


@ops.register("concat", since=SPEC1, domain=NN_DOMAIN)
def concat(layer: Any, ctx: LayerContext) -> ir.Value:
    if ctx.params.sequenceConcat:
        raise ctx.error("concatenation along the sequence axis is not converted")
    return ctx.op1("Concat", [ctx.input(i) for i in range(len(layer.input))], {"axis": 1})


@ops.register("batchnorm", since=SPEC1, domain=NN_DOMAIN)
def batchnorm(layer: Any, ctx: LayerContext) -> ir.Value:
    params = ctx.params
    if params.computeMeanVar or params.instanceNormalization:
        raise ctx.error("batchnorm computing its own mean and variance is not converted")
    channels = [int(params.channels)]
    inputs = [ctx.input(0)] + [
        ctx.make_constant(ctx.weights(getattr(params, name), channels, name), name)
        for name in ("gamma", "beta", "mean", "variance")
    ]
    return ctx.op1("BatchNormalization", inputs, {"epsilon": float(params.epsilon)})


def _broadcast(ctx: LayerContext, params: Any, shape: list[int], what: str, rank: int) -> ir.Value:
    """A scale or bias of shape [1], [C], [1, H, W] or [C, H, W], laid against a blob of ``rank``.

    Core ML reads the parameter as (C, H, W) against the blob's last three axes (any before are
    batch). The IR holds a flat blob, Core ML's (C, 1, 1) after an inner product or of a rank-1
    input, as (batch, C): there the parameter's H and W must be 1, and it runs along axis 1.
    """
    dims = [int(d) for d in shape] or [1]
    array = ctx.weights(params, dims, what)
    if len(dims) == 1 and dims[0] == 1:
        return ctx.make_constant(array.reshape(()), what)
    chw = dims + [1] * (3 - len(dims)) if len(dims) == 1 else dims
    if rank < 3:
        if any(d != 1 for d in chw[1:]):
            raise ctx.bad(
                f"{what} of shape {dims} does not broadcast against a blob of rank {rank} "
                "(Core ML's (C, 1, 1))"
            )
        chw = chw[:1]
    return ctx.make_constant(array.reshape(chw), what)


@ops.register("scale", since=SPEC1, domain=NN_DOMAIN)
def scale(layer: Any, ctx: LayerContext) -> ir.Value:
    params = ctx.params
    x = ctx.input(0)
    rank = ctx.rank(x)
    result = ctx.op1(
        "Mul", [x, _broadcast(ctx, params.scale, list(params.shapeScale), "scale", rank)]
    )
    if params.hasBias:
        result = ctx.op1(
            "Add", [result, _broadcast(ctx, params.bias, list(params.shapeBias), "bias", rank)]
        )
    return result


@ops.register("bias", since=SPEC1, domain=NN_DOMAIN)
def bias(layer: Any, ctx: LayerContext) -> ir.Value:
    x = ctx.input(0)
    shape = list(ctx.params.shape)
    return ctx.op1("Add", [x, _broadcast(ctx, ctx.params.bias, shape, "bias", ctx.rank(x))])


@ops.register("unary", since=SPEC1, domain=NN_DOMAIN)
def unary(layer: Any, ctx: LayerContext) -> ir.Value:
    """f(scale * x + shift) for Core ML's unary functions (epsilon guards rsqrt, inverse, log)."""
    params = ctx.params
    x = ctx.input(0)
    if params.scale not in (0.0, 1.0):
        x = ctx.op1("Mul", [x, ctx.scalar(params.scale)])
    if params.shift:
        x = ctx.op1("Add", [x, ctx.scalar(params.shift)])
    kind = params.type
    if kind == 0:
        return ctx.op1("Sqrt", [x])
    if kind == 1:
        return ctx.op1(
            "Reciprocal", [ctx.op1("Sqrt", [ctx.op1("Add", [x, ctx.scalar(params.epsilon)])])]
        )
    if kind == 2:
        return ctx.op1("Reciprocal", [ctx.op1("Add", [x, ctx.scalar(params.epsilon)])])
    if kind == 3:
        return ctx.op1("Pow", [x, ctx.scalar(params.alpha)])
    if kind == 4:
        return ctx.op1("Exp", [x])
    if kind == 5:
        return ctx.op1("Log", [ctx.op1("Add", [x, ctx.scalar(params.epsilon)])])
    if kind == 6:
        return ctx.op1("Abs", [x])
    if kind == 7:
        return ctx.op1("Max", [x, ctx.scalar(params.alpha)])
    raise ctx.error(f"unary function {kind} is not one Core ML defines")


@ops.register("upsample", since=SPEC1, domain=NN_DOMAIN)
def upsample(layer: Any, ctx: LayerContext) -> ir.Value:
    factors = [float(f) for f in ctx.params.scalingFactor] or [1.0, 1.0]
    if ctx.params.mode != 0:
        raise ctx.error("bilinear upsampling is not converted")
    scales = ctx.make_constant(np.array([1.0, 1.0, *factors], np.float32), "scales")
    attrs = {
        "mode": "nearest",
        "coordinate_transformation_mode": "asymmetric",
        "nearest_mode": "floor",
    }
    return ctx.op1("Resize", [ctx.input(0), None, scales], attrs)


@ops.register("lrn", since=SPEC1, domain=NN_DOMAIN)
def lrn(layer: Any, ctx: LayerContext) -> ir.Value:
    params = ctx.params
    attrs = {"alpha": float(params.alpha), "beta": float(params.beta), "bias": float(params.k),
             "size": int(params.localSize)}  # fmt: skip
    return ctx.op1("LRN", [ctx.input(0)], attrs)
