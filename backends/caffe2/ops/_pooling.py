"""Pooling forms Caffe2's pooling ops lack: dilated average and Lp pooling as a depthwise Conv,
MaxPool with dilations or an Indices output as a Gather of every window.

The window sums come from a Conv with a kernel of ones (Caffe2's Conv has dilations); ONNX's
divisor per output position (count_include_pad, ceil_mode) is computed once by ``onnx.reference``
on an input of ones, so the exported net multiplies each sum by a constant.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext
from unframe.backends.caffe2.ops._common import attr_int


def _reference_pool(node: ir.Node, spatial: tuple[int, ...], opset: int) -> np.ndarray:
    """ONNX's AveragePool of ones (shape [1, 1, *spatial]) with the node's attributes."""
    from onnx.reference import ReferenceEvaluator

    proto = ir.serde.serialize_node(node)
    pool = onnx.helper.make_node("AveragePool", ["x"], ["y"])
    pool.attribute.extend(a for a in proto.attribute if a.name != "p")
    graph = onnx.helper.make_graph(
        [pool], "divisor",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.DOUBLE, [1, 1, *spatial])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.DOUBLE, None)],
    )  # fmt: skip
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    (result,) = ReferenceEvaluator(model).run(None, {"x": np.ones((1, 1, *spatial))})
    return np.asarray(result)


def _window_counts(
    spatial: tuple[int, ...],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pads: list[int],
    out: tuple[int, ...],
) -> np.ndarray:
    """How many real (unpadded) elements each output window covers."""
    rank = len(kernel)
    counts = np.zeros(out)
    for position in np.ndindex(*out):
        total = 1
        for i in range(rank):
            start = position[i] * strides[i] - pads[i]
            taps = start + np.arange(kernel[i]) * dilations[i]
            total *= int(np.count_nonzero((taps >= 0) & (taps < spatial[i])))
        counts[position] = total
    return counts


def dilated_pool(
    node: ir.Node,
    ctx: ExportContext,
    kind: str,
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pads: list[int],
) -> None:
    """AveragePool or LpPool with dilations: a grouped Conv of ones, then ONNX's scaling."""
    x = node.inputs[0]
    shape = ctx.need_shape(x, "for the pooling windows")
    out = ctx.need_shape(node.outputs[0], "for the pooling windows")
    dtype = ctx.dtype(x) or ir.DataType.FLOAT
    if not dtype.is_floating_point():
        raise ctx.error(f"pooling {dtype.name} values has no exact form")
    channels, spatial, rank = shape[1], tuple(shape[2:]), len(kernel)
    # End padding that makes the Conv's floor-rounded sizes equal the model's output sizes.
    ends = list(pads[rank:])
    for i in range(rank):
        span = (kernel[i] - 1) * dilations[i] + 1
        needed = (out[2 + i] - 1) * strides[i] + span - (spatial[i] + pads[i])
        ends[i] = max(ends[i], needed)
    ones = ctx.make_constant(np.ones((channels, 1, *kernel), dtype=dtype.numpy()), "ones")
    blob = ctx.blob(x)
    p = int(node.attributes["p"].as_int()) if "p" in node.attributes else 2  # type: ignore[union-attr]
    if kind == "LpPool":
        blob = ctx.temp("Abs", [blob], "magnitude")
        blob = (
            ctx.temp("Sqr", [blob])
            if p == 2
            else ctx.temp("Pow", [blob], "power", exponent=float(p))
        )
    sums = ctx.temp(
        "Conv", [blob, ones], "window_sum", kernels=kernel, strides=strides,
        pads=[*pads[:rank], *ends], dilations=dilations, group=channels, order="NCHW",
    )  # fmt: skip
    if kind == "LpPool":
        if p == 2:
            ctx.emit("Sqrt", [sums], [ctx.output(node)])
        else:
            ctx.emit("Pow", [sums], [ctx.output(node)], exponent=1.0 / p)
        return
    averages = _reference_pool(node, spatial, max(ctx.opset, 19))
    counts = _window_counts(spatial, kernel, strides, dilations, pads[:rank], tuple(out[2:]))
    if averages.shape[2:] != tuple(out[2:]):
        raise ctx.error("the pooled size disagrees with the model's output shape")
    # AveragePool(ones) = counted / divisor, so sum * AveragePool(ones) / counted = sum / divisor.
    factor = np.where(counts > 0, averages[0, 0] / np.where(counts > 0, counts, 1), 0.0)
    scale = ctx.make_constant(factor.reshape(1, 1, *out[2:]).astype(dtype.numpy()), "divisor")
    ctx.emit("Mul", [sums, scale], [ctx.output(node)])


def _window_table(
    spatial: tuple[int, ...],
    out: tuple[int, ...],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pads: list[int],
) -> np.ndarray:
    """[output position, kernel tap] -> flat input position, or ``prod(spatial)`` outside it."""
    size = int(np.prod(spatial))
    taps = list(np.ndindex(*kernel))
    table = np.full((int(np.prod(out)), len(taps)), size, dtype=np.int64)
    for row, position in enumerate(np.ndindex(*out)):
        for column, tap in enumerate(taps):
            coords = [
                p * s - pad + t * d
                for p, s, pad, t, d in zip(position, strides, pads, tap, dilations, strict=True)
            ]
            if all(0 <= c < n for c, n in zip(coords, spatial, strict=True)):
                table[row, column] = np.ravel_multi_index(coords, spatial)
    return table


def gathered_max_pool(
    node: ir.Node,
    ctx: ExportContext,
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pads: list[int],
) -> None:
    """MaxPool as a Gather of every window (dilated or not) into a new axis, then its max.

    Positions outside the input read an appended lowest value, so they never win; the Indices
    output is the window's first maximum (ArgMax), looked up in the same table, as a position
    in the flattened input (row-major, or column-major per spatial plane with storage_order=1).
    """
    x = node.inputs[0]
    shape = ctx.need_shape(x, "for the pooling windows")
    out = ctx.need_shape(node.outputs[0], "for the pooling windows")
    batch, channels, spatial = shape[0], shape[1], tuple(shape[2:])
    size = int(np.prod(spatial))
    dtype = (ctx.dtype(x) or ir.DataType.FLOAT).numpy()
    lowest = -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min
    table = _window_table(spatial, tuple(out[2:]), kernel, strides, dilations, pads[: len(kernel)])
    flat = ctx.temp("Reshape", [ctx.blob(x)], "flat", shape=[batch, channels, size])
    outside = ctx.make_constant(np.full((batch, channels, 1), lowest, dtype=dtype), "outside")
    padded = ctx.fresh("padded")
    ctx.emit("Concat", [flat, outside], [padded, ctx.fresh("split_info")], axis=2)
    windows = ctx.temp("Gather", [padded, ctx.make_constant(table, "windows")], "windows", axis=2)
    pooled = ctx.temp("ReduceMax", [windows], "pooled", axes=[3], keepdims=0)
    ctx.emit("Reshape", [pooled], [ctx.output(node), ctx.fresh("old_shape")], shape=list(out))
    if len(node.outputs) < 2 or node.outputs[1] is None:
        return
    first = ctx.temp("ArgMax", [windows], "tap", axis=3, keepdims=0)
    rows = ctx.make_constant(np.arange(table.shape[0], dtype=np.int64) * table.shape[1], "rows")
    chosen = ctx.temp("Gather", [ctx.make_constant(table.reshape(-1), "table"),
                                 ctx.temp("Add", [first, rows], "entry")], "position")  # fmt: skip
    if attr_int(node, "storage_order", 0):
        # Column-major: the same coordinates, read with the dims in reverse order.
        coords = np.unravel_index(np.arange(size), spatial)[::-1]
        order = np.ravel_multi_index(coords, spatial[::-1]).astype(np.int64)
        chosen = ctx.temp("Gather", [ctx.make_constant(order, "order"), chosen], "position")
    planes = np.arange(batch * channels, dtype=np.int64).reshape(batch, channels, 1) * size
    index = ctx.temp("Add", [chosen, ctx.make_constant(planes, "planes")], "index")
    ctx.emit("Reshape", [index], [ctx.output(node, 1), ctx.fresh("old_shape")], shape=list(out))
