"""Neural-network ops: convolution, pooling, normalization, softmax, matrix products."""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.ops import _runtime as runtime
from unframe.backends.caffe2.ops._common import (
    attr_float,
    attr_int,
    attr_ints,
    attr_str,
    normalize_axis,
    required,
    reshape,
)
from unframe.backends.caffe2.ops._common import (
    required as _required,
)
from unframe.backends.caffe2.registry import ops


def explicit_pads(
    ctx: ExportContext, node: ir.Node, kernel: list[int], strides: list[int], dilations: list[int]
) -> list[int]:
    """ONNX pads (begins then ends), with auto_pad resolved against the static input shape."""
    spatial = len(kernel)
    auto_pad = attr_str(node, "auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", ""):
        return attr_ints(node, "pads") or [0] * (2 * spatial)
    if auto_pad == "VALID":
        return [0] * (2 * spatial)
    shape = ctx.need_shape(node.inputs[0], f"to resolve auto_pad={auto_pad}")
    begins, ends = [], []
    for i in range(spatial):
        size = shape[2 + i]
        out = math.ceil(size / strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size)
        small, large = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else large)
        ends.append(large if auto_pad == "SAME_UPPER" else small)
    return begins + ends


def kernel_shape(ctx: ExportContext, node: ir.Node) -> list[int]:
    kernel = attr_ints(node, "kernel_shape")
    if kernel is None:
        weight = ctx.need_shape(node.inputs[1], "for the kernel size")
        kernel = list(weight[2:])
    return kernel


@ops.register("Conv", since=1)
def conv_v1(node: ir.Node, ctx: ExportContext) -> None:
    kernel = kernel_shape(ctx, node)
    spatial = len(kernel)
    strides = attr_ints(node, "strides") or [1] * spatial
    dilations = attr_ints(node, "dilations") or [1] * spatial
    pads = explicit_pads(ctx, node, kernel, strides, dilations)
    _float_only(ctx, node, "Conv (conv_op.cc)")
    inputs = [ctx.input(0), ctx.input(1)]
    if ctx.has_input(2):
        inputs.append(ctx.input(2))
    ctx.emit(
        "Conv", inputs, [ctx.output(node)], kernels=kernel, strides=strides, pads=pads,
        dilations=dilations, group=attr_int(node, "group", 1), order="NCHW",
    )  # fmt: skip


@ops.register("ConvTranspose", since=1)
def conv_transpose_v1(node: ir.Node, ctx: ExportContext) -> None:
    kernel = kernel_shape(ctx, node)
    spatial = len(kernel)
    strides = attr_ints(node, "strides") or [1] * spatial
    dilations = attr_ints(node, "dilations") or [1] * spatial
    weight = ctx.input(1)
    if any(d != 1 for d in dilations):
        # Caffe2's ConvTranspose has no dilation: spread the kernel out with zeros instead.
        weight, kernel = _dilated_kernel(ctx, _required(ctx, node, 1), dilations)
    adjs = attr_ints(node, "output_padding") or [0] * spatial
    output_shape = attr_ints(node, "output_shape")
    auto_pad = attr_str(node, "auto_pad", "NOTSET")
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        shape = ctx.need_shape(node.inputs[0], "to resolve output_shape/auto_pad")
        wanted = (
            list(output_shape[-spatial:])
            if output_shape
            else [shape[2 + i] * strides[i] for i in range(spatial)]
        )
        begins, ends = [], []
        for i in range(spatial):
            total = strides[i] * (shape[2 + i] - 1) + adjs[i] + kernel[i] - wanted[i]
            if total < 0:
                adjs[i] -= total
                total = 0
            small, large = total // 2, total - total // 2
            lower = auto_pad == "SAME_LOWER"
            begins.append(large if lower else small)
            ends.append(small if lower else large)
        pads = begins + ends
    else:
        pads = attr_ints(node, "pads") or [0] * (2 * spatial)
    if any(a >= s for a, s in zip(adjs, strides, strict=True)):
        raise ctx.error("output_padding must be smaller than the stride in Caffe2")
    inputs = [ctx.input(0), weight]
    if ctx.has_input(2):
        inputs.append(ctx.input(2))
    ctx.emit(
        "ConvTranspose", inputs, [ctx.output(node)], kernels=kernel, strides=strides, pads=pads,
        adjs=adjs, group=attr_int(node, "group", 1), order="NCHW",
    )  # fmt: skip


def _dilated_kernel(
    ctx: ExportContext, weight: ir.Value, dilations: list[int]
) -> tuple[str, list[int]]:
    """The weight with (d - 1) zeros between kernel taps: the same products, plus zeros."""
    shape = list(ctx.need_shape(weight, "to dilate the kernel"))
    blob = ctx.blob(weight)
    dtype = (ctx.dtype(weight) or ir.DataType.FLOAT).numpy()
    for i, d in enumerate(dilations):
        axis = 2 + i
        if d == 1:
            continue
        taps = ctx.temp("ExpandDims", [blob], "taps", dims=[axis + 1])
        gap_shape = shape[: axis + 1] + [d - 1] + shape[axis + 1 :]
        gaps = ctx.make_constant(np.zeros(gap_shape, dtype=dtype), "gaps")
        spread = ctx.fresh("spread")
        ctx.emit("Concat", [taps, gaps], [spread, ctx.fresh("split_info")], axis=axis + 1)
        flat_shape = shape[:axis] + [shape[axis] * d] + shape[axis + 1 :]
        flat = reshape(ctx, spread, flat_shape)
        ends = list(flat_shape)
        ends[axis] = (shape[axis] - 1) * d + 1
        blob = ctx.temp("Slice", [flat], "dilated", starts=[0] * len(shape), ends=ends)
        shape[axis] = ends[axis]
    return blob, shape[2:]


def _float_only(ctx: ExportContext, node: ir.Node, what: str) -> None:
    """Refuses, when exporting, input 0 of a type other than float for an op Caffe2 registers
    for float only (``what`` names it and its source): there is no exact other form."""
    dtype = ctx.dtype(node.inputs[0])
    if dtype not in (None, ir.DataType.FLOAT):
        raise ctx.error(f"Caffe2 registers {what} for float only, not {dtype.name}")


#: Caffe2's pooling is float only (PoolOp<float, CPUContext, ...>, pool_op.cc); 8-bit integers
#: pool exactly in float (every value is one), their max the same.
_POOLED_IN_FLOAT = frozenset({ir.DataType.INT8, ir.DataType.UINT8})


def _pool(node: ir.Node, ctx: ExportContext, caffe2_type: str) -> None:
    dtype = ctx.dtype(node.inputs[0])
    if caffe2_type == "MaxPool" and dtype in _POOLED_IN_FLOAT:
        source, target = ctx.input(0), ctx.output(node)
        wide = ctx.temp("Cast", [source], "wide", to=caffe2_dtype(ir.DataType.FLOAT))
        pooled = ctx.fresh("pooled")
        _pool_float(node, ctx, caffe2_type, wide, pooled)
        ctx.emit("Cast", [pooled], [target], to=caffe2_dtype(dtype))  # type: ignore[arg-type]
        return
    _float_only(ctx, node, f"{caffe2_type} (pool_op.cc)")
    _pool_float(node, ctx, caffe2_type, ctx.input(0), ctx.output(node))


def _pool_float(node: ir.Node, ctx: ExportContext, caffe2_type: str, x: str, y: str) -> None:
    indices = node.outputs[1] if len(node.outputs) > 1 else None
    wants_indices = indices is not None and bool(
        indices.uses() or indices in ctx.model.graph.outputs
    )
    kernel = attr_ints(node, "kernel_shape") or []
    spatial = len(kernel)
    strides = attr_ints(node, "strides") or [1] * spatial
    dilations = attr_ints(node, "dilations") or [1] * spatial
    pads = explicit_pads(ctx, node, kernel, strides, dilations)
    dilated = any(d != 1 for d in dilations)
    if x != ctx.input(0) and (dilated or wants_indices):
        raise ctx.error("an int8 or uint8 MaxPool with dilations or indices has no Caffe2 form")
    if caffe2_type == "MaxPool" and (dilated or wants_indices):
        # Caffe2's MaxPool has neither dilation nor an Indices output: gather the windows.
        from unframe.backends.caffe2.ops._pooling import gathered_max_pool

        gathered_max_pool(node, ctx, kernel, strides, dilations, pads)
        return
    if wants_indices:
        raise ctx.error("Caffe2's pooling has no Indices output")
    if dilated:
        # Caffe2's pooling has no dilation; sums over dilated windows come from a Conv.
        from unframe.backends.caffe2.ops._pooling import dilated_pool

        dilated_pool(node, ctx, caffe2_type, kernel, strides, dilations, pads)
        return
    count_include_pad = attr_int(node, "count_include_pad", 0)
    if attr_int(node, "ceil_mode", 0):
        # Caffe2 rounds output sizes down; extending the end padding gives ONNX's ceil sizes.
        shape = ctx.need_shape(node.inputs[0], "for ceil_mode")
        for i in range(spatial):
            size = shape[2 + i] + pads[i] + pads[spatial + i]
            floor_out = (size - kernel[i]) // strides[i] + 1
            ceil_out = math.ceil((size - kernel[i]) / strides[i]) + 1
            if (ceil_out - 1) * strides[i] >= shape[2 + i] + pads[i]:
                ceil_out -= 1
            if ceil_out > floor_out:
                if caffe2_type == "AveragePool" and count_include_pad:
                    raise ctx.error("ceil_mode with count_include_pad has no Caffe2 equivalent")
                pads[spatial + i] += (ceil_out - floor_out) * strides[i]
    args: dict[str, int | list[int] | str] = {
        "kernels": kernel, "strides": strides, "pads": pads, "order": "NCHW",
    }  # fmt: skip
    if caffe2_type == "AveragePool":
        args["count_include_pad"] = count_include_pad
    if caffe2_type == "LpPool":
        ctx.emit(caffe2_type, [x], [y], p=float(attr_int(node, "p", 2)), **args)
        return
    ctx.emit(caffe2_type, [x], [y], **args)


@ops.register("MaxPool", since=1)
def max_pool_v1(node: ir.Node, ctx: ExportContext) -> None:
    _pool(node, ctx, "MaxPool")


@ops.register("AveragePool", since=1)
def average_pool_v1(node: ir.Node, ctx: ExportContext) -> None:
    _pool(node, ctx, "AveragePool")


@ops.register("LpPool", since=11)
def lp_pool_v11(node: ir.Node, ctx: ExportContext) -> None:
    _pool(node, ctx, "LpPool")


@ops.register("GlobalAveragePool", since=1)
def global_average_pool_v1(node: ir.Node, ctx: ExportContext) -> None:
    ctx.emit("AveragePool", [ctx.input(0)], [ctx.output(node)], global_pooling=1, order="NCHW")


@ops.register("GlobalMaxPool", since=1)
def global_max_pool_v1(node: ir.Node, ctx: ExportContext) -> None:
    ctx.emit("MaxPool", [ctx.input(0)], [ctx.output(node)], global_pooling=1, order="NCHW")


@ops.register("RMSNormalization", since=23)
def rms_normalization_v23(node: ir.Node, ctx: ExportContext) -> None:
    x = node.inputs[0]
    rank = ctx.need_rank(x)
    axis = normalize_axis(ctx, attr_int(node, "axis", -1), rank)
    blob = ctx.blob(x)
    dtype = ctx.dtype(x)
    if attr_int(node, "stash_type", 1) == 1 and dtype not in (
        ir.DataType.FLOAT,
        ir.DataType.DOUBLE,
    ):
        blob = ctx.temp("Cast", [blob], "x32", to=1)
    squares = ctx.temp("Sqr", [blob])
    mean = ctx.temp("ReduceMean", [squares], "mean", axes=list(range(axis, rank)), keepdims=1)
    eps_type = ir.DataType.FLOAT if blob != ctx.blob(x) else dtype
    rms = ctx.temp(
        "Sqrt", [ctx.temp("Add", [mean, ctx.scalar(attr_float(node, "epsilon", 1e-5), eps_type)])]
    )
    normed = ctx.temp("Div", [blob, rms], "normed")
    if blob != ctx.blob(x) and dtype is not None:
        normed = ctx.temp("Cast", [normed], "normed", to=caffe2_dtype(dtype))
    ctx.emit("Mul", [normed, ctx.input(1)], [ctx.output(node)])


def _only_first_output(node: ir.Node, ctx: ExportContext, what: str) -> None:
    for output in node.outputs[1:]:
        if output is not None and (output.uses() or output in ctx.model.graph.outputs):
            raise ctx.error(f"Caffe2 cannot produce {what}")


@ops.register("BatchNormalization", since=9, until=13)
def batch_normalization_v9(node: ir.Node, ctx: ExportContext) -> None:
    if attr_int(node, "training_mode", 0):
        raise ctx.error("training_mode=1 (batch statistics) is not exported; Caffe2 runs is_test")
    _only_first_output(node, ctx, "the running statistics outputs")
    inputs = [ctx.input(i) for i in range(5)]
    epsilon = attr_float(node, "epsilon", 1e-5)
    ctx.emit("SpatialBN", inputs, [ctx.output(node)], epsilon=epsilon, is_test=1, order="NCHW")


@ops.register("InstanceNormalization", since=6)
def instance_normalization_v6(node: ir.Node, ctx: ExportContext) -> None:
    inputs = [ctx.input(i) for i in range(3)]
    epsilon = attr_float(node, "epsilon", 1e-5)
    ctx.emit("InstanceNorm", inputs, [ctx.output(node)], epsilon=epsilon, order="NCHW")


@ops.register("LayerNormalization", since=17)
def layer_normalization_v17(node: ir.Node, ctx: ExportContext) -> None:
    x = node.inputs[0]
    rank = ctx.need_rank(x)
    axis = normalize_axis(ctx, attr_int(node, "axis", -1), rank)
    epsilon = attr_float(node, "epsilon", 1e-5)
    if attr_int(node, "stash_type", 1) != 1 and ctx.dtype(x) != ir.DataType.DOUBLE:
        raise ctx.error("stash_type other than float32 has no Caffe2 equivalent")
    normed = ctx.fresh("normed")
    mean, std = ctx.fresh("mean"), ctx.fresh("std")
    ctx.emit("LayerNorm", [ctx.blob(x)], [normed, mean, std], axis=axis, epsilon=epsilon)
    if ctx.has_input(2):
        scaled = ctx.temp("Mul", [normed, ctx.input(1)], "scaled")
        ctx.emit("Add", [scaled, ctx.input(2)], [ctx.output(node)])
    else:
        ctx.emit("Mul", [normed, ctx.input(1)], [ctx.output(node)])
    # Caffe2 writes mean and std shaped [d0..d(axis-1), 1]; ONNX keeps every reduced dim as 1.
    stats = [(1, mean, False), (2, std, True)]
    for index, blob, invert in stats:
        if index < len(node.outputs) and node.outputs[index] is not None:
            shape = ctx.shape(node.outputs[index])
            if shape is None:
                leading = ctx.need_shape(x, "for the statistics' shape")[:axis]
                shape = tuple(leading) + (1,) * (rank - axis)
            if invert:
                blob = ctx.temp("Reciprocal", [blob], "inv_std")
            reshape(ctx, blob, list(shape), ctx.output(node, index))


def _group_norm(node: ir.Node, ctx: ExportContext, scale: str, bias: str) -> None:
    groups = attr_int(node, "num_groups", 1)
    epsilon = attr_float(node, "epsilon", 1e-5)
    outputs = [ctx.output(node), ctx.fresh("mean"), ctx.fresh("inv_std")]
    ctx.emit(
        "GroupNorm", [ctx.input(0), scale, bias], outputs, group=groups, epsilon=epsilon,
        order="NCHW",
    )  # fmt: skip


@ops.register("GroupNormalization", since=18, until=20)
def group_normalization_v18(node: ir.Node, ctx: ExportContext) -> None:
    # Opset 18 has one scale and bias per group; Caffe2 takes them per channel.
    channels = ctx.need_shape(node.inputs[0], "for the channel count")[1]
    groups = attr_int(node, "num_groups", 1)
    scale = ctx.need_known_value(node.inputs[1], "the per-group scale")
    bias = ctx.need_known_value(node.inputs[2], "the per-group bias")
    repeat = channels // groups
    _group_norm(
        node, ctx, ctx.make_constant(np.repeat(scale, repeat), "scale"),
        ctx.make_constant(np.repeat(bias, repeat), "bias"),
    )  # fmt: skip


@ops.register("GroupNormalization", since=21)
def group_normalization_v21(node: ir.Node, ctx: ExportContext) -> None:
    if attr_int(node, "stash_type", 1) != 1:
        raise ctx.error("stash_type other than float32 has no Caffe2 equivalent")
    _group_norm(node, ctx, ctx.input(1), ctx.input(2))


@ops.register("LRN", since=1)
def lrn_v1(node: ir.Node, ctx: ExportContext) -> None:
    ctx.emit(
        "LRN", [ctx.input(0)], [ctx.output(node)], size=attr_int(node, "size", 1),
        alpha=attr_float(node, "alpha", 1e-4), beta=attr_float(node, "beta", 0.75),
        bias=attr_float(node, "bias", 1.0), order="NCHW",
    )  # fmt: skip


def _double_softmax(ctx: ExportContext, blob: str, axis: int, out: str) -> None:
    """exp(x - max) / sum(exp(x - max)) along ``axis`` of a double ``blob``: Caffe2's Softmax
    and Exp are float only (softmax_op.cc, exp_op.cc), so exp is runtime.exp's, within a unit
    or two in the last place."""
    f64 = ir.DataType.DOUBLE
    peak = ctx.temp("ReduceMax", [blob], "max", axes=[axis], keepdims=1)
    powers = runtime.exp(ctx, ctx.temp("Sub", [blob, peak], "shifted"), f64)
    total = ctx.temp("ReduceSum", [powers], "sum", axes=[axis], keepdims=1)
    ctx.emit("Div", [powers, total], [out])


def _softmax_type(ctx: ExportContext, node: ir.Node) -> bool:
    """Whether input 0 is double (built from other ops); refuses types other than float."""
    if ctx.dtype(node.inputs[0]) == ir.DataType.DOUBLE:
        return True
    _float_only(ctx, node, "Softmax (softmax_op.cc)")
    return False


@ops.register("Softmax", since=1, until=12)
def softmax_v1(node: ir.Node, ctx: ExportContext) -> None:
    # Before opset 13 ONNX's Softmax is Caffe2's: the input coerced to 2-D at ``axis``.
    if _softmax_type(ctx, node):
        rank = ctx.need_rank(node.inputs[0])
        axis = normalize_axis(ctx, attr_int(node, "axis", 1), rank)
        x = ctx.input(0)
        result = ctx.fresh("softmax")
        _double_softmax(ctx, ctx.temp("Flatten", [x], "flat", axis=axis), 1, result)
        reshape(ctx, result, ctx.temp("Shape", [x], "shape"), ctx.output(node))
        return
    ctx.emit("Softmax", [ctx.input(0)], [ctx.output(node)], axis=attr_int(node, "axis", 1))


@ops.register("Softmax", since=13)
def softmax_v13(node: ir.Node, ctx: ExportContext) -> None:
    rank = ctx.need_rank(node.inputs[0])
    axis = normalize_axis(ctx, attr_int(node, "axis", -1), rank)
    if _softmax_type(ctx, node):
        _double_softmax(ctx, ctx.input(0), axis, ctx.output(node))
        return
    if axis == rank - 1:
        ctx.emit("Softmax", [ctx.input(0)], [ctx.output(node)], axis=axis)
        return
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    moved = ctx.temp("Transpose", [ctx.input(0)], "moved", axes=perm)
    soft = ctx.temp("Softmax", [moved], "softmax", axis=rank - 1)
    ctx.emit("Transpose", [soft], [ctx.output(node)], axes=perm)


def log_softmax_into(
    ctx: ExportContext, blob: str, axis: int, out: str, dtype: ir.DataType | None = None
) -> None:
    # x - max - log(sum(exp(x - max))): exact where log(softmax) would underflow. Caffe2's Exp
    # and Log are float only (exp_op.cc, log_op.cc): a double ``dtype`` takes runtime's forms.
    dtype = dtype or ir.DataType.FLOAT
    peak = ctx.temp("ReduceMax", [blob], "max", axes=[axis], keepdims=1)
    shifted = ctx.temp("Sub", [blob, peak], "shifted")
    powers = runtime.exp(ctx, shifted, dtype)
    total = ctx.temp("ReduceSum", [powers], "sum", axes=[axis], keepdims=1)
    ctx.emit("Sub", [shifted, runtime.log(ctx, total, dtype)], [out])


@ops.register("LogSoftmax", since=1, until=12)
def log_softmax_v1(node: ir.Node, ctx: ExportContext) -> None:
    rank = ctx.need_rank(node.inputs[0])
    axis = normalize_axis(ctx, attr_int(node, "axis", 1), rank)
    x = ctx.input(0)
    flat = ctx.temp("Flatten", [x], "flat", axis=axis)
    result = ctx.fresh("log_softmax")
    log_softmax_into(ctx, flat, 1, result, ctx.dtype(node.inputs[0]))
    reshape(ctx, result, ctx.temp("Shape", [x], "shape"), ctx.output(node))


@ops.register("LogSoftmax", since=13)
def log_softmax_v13(node: ir.Node, ctx: ExportContext) -> None:
    rank = ctx.need_rank(node.inputs[0])
    axis = normalize_axis(ctx, attr_int(node, "axis", -1), rank)
    log_softmax_into(ctx, ctx.input(0), axis, ctx.output(node), ctx.dtype(node.inputs[0]))


@ops.register("MatMul", since=1)
def matmul_v1(node: ir.Node, ctx: ExportContext) -> None:
    _float_only(ctx, node, "BatchMatMul (batch_matmul_op.h)")
    ctx.emit("BatchMatMul", [ctx.input(0), ctx.input(1)], [ctx.output(node)], broadcast=1)


#: Permutations of up to three rows with their signs, for Det by the Leibniz formula.
_PERMUTATIONS: dict[int, list[tuple[tuple[int, ...], int]]] = {
    1: [((0,), 1)],
    2: [((0, 1), 1), ((1, 0), -1)],
    3: [((0, 1, 2), 1), ((1, 2, 0), 1), ((2, 0, 1), 1),
        ((0, 2, 1), -1), ((2, 1, 0), -1), ((1, 0, 2), -1)],
}  # fmt: skip


@ops.register("Det", since=11)
def det_v11(node: ir.Node, ctx: ExportContext) -> None:
    """Sum over permutations p of sign(p) * prod_i x[i, p(i)], for matrices up to 3 x 3.

    Caffe2 has no factorization; beyond 3 x 3 the n! terms are not worth writing out.
    """
    shape = ctx.need_shape(node.inputs[0], "for the matrix size")
    n = shape[-1]
    if len(shape) < 2 or shape[-2] != n or n not in _PERMUTATIONS:
        raise ctx.error(f"matrices of shape {shape[-2:]} have no Caffe2 form here")
    flat = reshape(ctx, ctx.input(0), [*shape[:-2], n * n])
    axis = len(shape) - 2
    entries: dict[int, str] = {}
    terms = []
    for permutation, sign in _PERMUTATIONS[n]:
        product = ""
        for row, column in enumerate(permutation):
            position = row * n + column
            if position not in entries:
                index = ctx.make_constant(np.array(position, dtype=np.int64), "index")
                entries[position] = ctx.temp("Gather", [flat, index], "entry", axis=axis)
            entry = entries[position]
            product = ctx.temp("Mul", [product, entry], "product") if product else entry
        terms.append((product, sign))
    total, _ = terms[0]
    for product, sign in terms[1:]:
        total = ctx.temp("Add" if sign > 0 else "Sub", [total, product], "det")
    ctx.emit("Copy", [total], [ctx.output(node)])


@ops.register("Gemm", since=7)
def gemm_v7(node: ir.Node, ctx: ExportContext) -> None:
    _float_only(ctx, node, "MatMul (matmul_op.cc)")
    alpha, beta = attr_float(node, "alpha", 1.0), attr_float(node, "beta", 1.0)
    trans_a, trans_b = attr_int(node, "transA", 0), attr_int(node, "transB", 0)
    has_c = ctx.has_input(2)
    weight_shape = ctx.shape(node.inputs[1])
    bias_shape = ctx.shape(node.inputs[2]) if has_c else None
    if (
        alpha == 1.0 and beta == 1.0 and not trans_a and weight_shape is not None
        and bias_shape == (weight_shape[0 if trans_b else 1],)
    ):  # fmt: skip
        # A fully connected layer: Caffe2's FC (weights N x K) or FCTransposed (K x N).
        op_type = "FC" if trans_b else "FCTransposed"
        inputs = [ctx.input(i) for i in range(3)]
        ctx.emit(op_type, inputs, [ctx.output(node)], axis=1, axis_w=1)
        return
    product = ctx.output(node) if (alpha == 1.0 and not has_c) else ctx.fresh("product")
    ctx.emit(
        "MatMul",
        [ctx.input(0), ctx.input(1)],
        [product],
        trans_a=trans_a,
        trans_b=trans_b,
    )
    if not has_c:
        if alpha != 1.0:
            ctx.emit("Scale", [product], [ctx.output(node)], scale=alpha)
        return
    if alpha != 1.0:
        product = ctx.temp("Scale", [product], "scaled", scale=alpha)
    bias = ctx.input(2)
    if beta != 1.0:
        bias = ctx.temp("Scale", [bias], "bias", scale=beta)
    ctx.emit("Add", [product, bias], [ctx.output(node)])


@ops.register("Dropout", since=7)
def dropout_v7(node: ir.Node, ctx: ExportContext) -> None:
    if ctx.has_input(2):
        training = ctx.need_known_value(node.inputs[2], "training_mode")
        if bool(training):
            raise ctx.error("training_mode=True (random masks) is not exported")
    ratio = attr_float(node, "ratio", 0.5)
    if ctx.has_input(1):
        const = ctx.known_value(node.inputs[1])
        ratio = float(const) if const is not None else ratio
    ctx.emit("Dropout", [ctx.input(0)], [ctx.output(node)], ratio=ratio, is_test=1)
    if len(node.outputs) > 1 and node.outputs[1] is not None:
        ctx.emit("ConstantFill", [ctx.input(0)], [ctx.output(node, 1)], value=1, dtype=5)


@ops.register("LpNormalization", since=1)
def lp_normalization_v1(node: ir.Node, ctx: ExportContext) -> None:
    p = attr_int(node, "p", 2)
    if p not in (1, 2):
        raise ctx.error(f"p={p} has no Caffe2 equivalent")
    rank = ctx.need_rank(node.inputs[0])
    axis = normalize_axis(ctx, attr_int(node, "axis", -1), rank)
    op_type = "Normalize" if p == 2 else "NormalizeL1"
    ctx.emit(op_type, [ctx.input(0)], [ctx.output(node)], axis=axis)


@ops.register("MeanVarianceNormalization", since=9)
def mean_variance_normalization_v9(node: ir.Node, ctx: ExportContext) -> None:
    axes = attr_ints(node, "axes") or [0, 2, 3]
    x = ctx.input(0)
    mean = ctx.temp("ReduceMean", [x], "mean", axes=axes, keepdims=1)
    centered = ctx.temp("Sub", [x, mean], "centered")
    variance = ctx.temp("ReduceMean", [ctx.temp("Sqr", [centered])], "var", axes=axes, keepdims=1)
    std = ctx.temp("Sqrt", [variance], "std")
    eps = ctx.scalar(1e-9, node.inputs[0])
    ctx.emit("Div", [centered, ctx.temp("Add", [std, eps])], [ctx.output(node)])


@ops.register("Hardmax", since=13)
def hardmax_v13(node: ir.Node, ctx: ExportContext) -> None:
    _hardmax(node, ctx, attr_int(node, "axis", -1), coerce=False)


@ops.register("Hardmax", since=1, until=12)
def hardmax_v1(node: ir.Node, ctx: ExportContext) -> None:
    _hardmax(node, ctx, attr_int(node, "axis", 1), coerce=True)


def _hardmax(node: ir.Node, ctx: ExportContext, axis: int, *, coerce: bool) -> None:
    # one_hot(argmax) over rows; ArgMax takes the first of equal values, as Hardmax does.
    x = node.inputs[0]
    shape = ctx.need_shape(x, "for the one-hot depth")
    rank = len(shape)
    axis = normalize_axis(ctx, axis, rank)
    blob = ctx.blob(x)
    perm = list(range(rank))
    if not coerce and axis != rank - 1:
        perm[axis], perm[-1] = perm[-1], perm[axis]
        blob = ctx.temp("Transpose", [blob], "moved", axes=perm)
    moved_shape = [shape[p] for p in perm]
    split = axis if coerce else rank - 1
    depth = int(np.prod(moved_shape[split:]))
    rows = reshape(ctx, blob, [-1, depth])
    index = ctx.temp("ArgMax", [rows], "index", axis=1, keepdims=0)
    hot = ctx.temp(
        "OneHot", [index, ctx.make_constant(np.array([depth], dtype=np.int64), "depth")], "hot"
    )
    dtype = ctx.dtype(x) or ir.DataType.FLOAT
    if dtype != ir.DataType.FLOAT:
        hot = ctx.temp("Cast", [hot], "hot", to=caffe2_dtype(dtype))
    if perm == list(range(rank)):
        reshape(ctx, hot, list(shape), ctx.output(node))
        return
    back = reshape(ctx, hot, moved_shape)
    ctx.emit("Transpose", [back], [ctx.output(node)], axes=perm)


@ops.register("BatchNormalization", since=14)
def batch_normalization_v14(node: ir.Node, ctx: ExportContext) -> None:
    if not attr_int(node, "training_mode", 0):
        batch_normalization_v9(node, ctx)
        return
    # Batch statistics over all dims but the channels, as ONNX's training mode defines them.
    x = node.inputs[0]
    rank = ctx.need_rank(x)
    channels = ctx.need_shape(x, "for the channel count")[1]
    axes = [0, *range(2, rank)]
    blob = ctx.blob(x)
    eps = attr_float(node, "epsilon", 1e-5)
    momentum = attr_float(node, "momentum", 0.9)
    mean = ctx.temp("ReduceMean", [blob], "mean", axes=axes, keepdims=1)
    centered = ctx.temp("Sub", [blob, mean], "centered")
    var = ctx.temp("ReduceMean", [ctx.temp("Sqr", [centered])], "var", axes=axes, keepdims=1)
    std = ctx.temp("Sqrt", [ctx.temp("Add", [var, ctx.scalar(eps, x)])], "std")
    per_channel = [1, channels] + [1] * (rank - 2)
    scale = reshape(ctx, ctx.input(1), per_channel)
    bias = reshape(ctx, ctx.input(2), per_channel)
    normed = ctx.temp("Mul", [ctx.temp("Div", [centered, std]), scale], "scaled")
    ctx.emit("Add", [normed, bias], [ctx.output(node)])
    for index, current, running in ((1, mean, 3), (2, var, 4)):
        if index < len(node.outputs) and node.outputs[index] is not None:
            flat = reshape(ctx, current, [channels])
            kept = ctx.temp("Scale", [ctx.input(running)], "kept", scale=momentum)
            new = ctx.temp("Scale", [flat], "new", scale=1.0 - momentum)
            ctx.emit("Add", [kept, new], [ctx.output(node, index)])


@ops.register("RotaryEmbedding", since=23)
def rotary_embedding_v23(node: ir.Node, ctx: ExportContext) -> None:
    x = required(ctx, node, 0)
    original = ctx.need_shape(x, "to split the heads")
    blob = ctx.blob(x)
    if len(original) == 4:  # [batch, heads, seq, head] -> [batch, seq, heads, head]
        blob = ctx.temp("Transpose", [blob], "bshd", axes=[0, 2, 1, 3])
        batch, heads, seq, head = original
    else:
        heads = attr_int(node, "num_heads", 0)
        if not heads:
            raise ctx.error("a 3-D input needs num_heads")
        batch, seq, hidden = original
        head = hidden // heads
        blob = reshape(ctx, blob, [batch, seq, heads, head])
    rotary = attr_int(node, "rotary_embedding_dim", 0) or head
    half = rotary // 2
    rotate = blob
    if rotary < head:
        rotate = ctx.temp(
            "Slice", [blob], "rotate", starts=[0, 0, 0, 0], ends=[batch, seq, heads, rotary]
        )
        kept = ctx.temp(
            "Slice", [blob], "kept", starts=[0, 0, 0, rotary], ends=[batch, seq, heads, head]
        )
    caches = []
    for index in (1, 2):
        cache = ctx.input(index)
        if ctx.has_input(3):
            cache = ctx.temp("Gather", [cache, ctx.input(3)], "cache")
        caches.append(ctx.temp("ExpandDims", [cache], "cache", dims=[2]))
    cos, sin = caches
    interleaved = attr_int(node, "interleaved", 0)
    if interleaved:
        evens = ctx.make_constant(np.arange(0, rotary, 2, dtype=np.int64), "evens")
        odds = ctx.make_constant(np.arange(1, rotary, 2, dtype=np.int64), "odds")
        x1 = ctx.temp("Gather", [rotate, evens], "x1", axis=3)
        x2 = ctx.temp("Gather", [rotate, odds], "x2", axis=3)
    else:
        x1, x2 = ctx.fresh("x1"), ctx.fresh("x2")
        ctx.emit("Split", [rotate], [x1, x2], axis=3, split=[half, half])
    real = ctx.temp("Sub", [ctx.temp("Mul", [cos, x1]), ctx.temp("Mul", [sin, x2])], "real")
    imag = ctx.temp("Add", [ctx.temp("Mul", [sin, x1]), ctx.temp("Mul", [cos, x2])], "imag")
    rotated = ctx.fresh("rotated")
    if interleaved:
        pairs = [ctx.temp("ExpandDims", [part], "pair", dims=[4]) for part in (real, imag)]
        woven = ctx.fresh("woven")
        ctx.emit("Concat", pairs, [woven, ctx.fresh("split_info")], axis=4)
        reshape(ctx, woven, [batch, seq, heads, rotary], rotated)
    else:
        ctx.emit("Concat", [real, imag], [rotated, ctx.fresh("split_info")], axis=3)
    if rotary < head:
        joined = ctx.fresh("joined")
        ctx.emit("Concat", [rotated, kept], [joined, ctx.fresh("split_info")], axis=3)
        rotated = joined
    if len(original) == 4:
        ctx.emit("Transpose", [rotated], [ctx.output(node)], axes=[0, 2, 1, 3])
    else:
        reshape(ctx, rotated, list(original), ctx.output(node))
