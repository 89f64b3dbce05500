"""Generated tensors: windows and mel matrices.

Caffe2 has no window or mel-filter operators. With constant inputs these ops are constants, and
the value onnx's reference implementation computes is written into the init net; a window of
run-time size is computed as ONNX's function body defines it, a sum of cosines over a Range.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.export.context import ExportContext, caffe2_dtype, evaluate_node
from unframe.backends.caffe2.export.ops._common import attr_int
from unframe.backends.caffe2.export.registry import ops


def _fold(node: ir.Node, ctx: ExportContext) -> None:
    inputs = [
        ctx.need_const(v, f"{node.op_type}'s inputs") if v is not None else None
        for v in node.inputs
    ]
    results = evaluate_node(node, inputs, ctx.opset, limit=1 << 22)
    if results is None:
        raise ctx.error("cannot be evaluated on its constant inputs")
    for index, array in enumerate(results):
        ctx.constant_output(array, node, index)


def _window(node: ir.Node, ctx: ExportContext, a0: float, a1: float, a2: float) -> None:
    """a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), n < size; N is size, or size - 1 when
    symmetric (periodic=0). Float32 throughout, as in ONNX's function body."""
    if ctx.const(node.inputs[0]) is not None:
        _fold(node, ctx)
        return
    f32 = ir.DataType.FLOAT
    size = ctx.temp("Cast", [ctx.input(node, 0)], "size", to=caffe2_dtype(f32))
    one = ctx.scalar(1.0, f32)
    period = size if attr_int(node, "periodic", 1) else ctx.temp("Sub", [size, one], "period")
    step = ctx.temp("Div", [ctx.scalar(float(np.float32(2 * np.pi)), f32), period], "step")
    angles = ctx.temp("Mul", [ctx.temp("Range", [ctx.scalar(0.0, f32), size, one]), step])
    window = ctx.temp(
        "Sub", [ctx.scalar(a0, f32), ctx.temp("Mul", [ctx.scalar(a1, f32),
                                                     ctx.temp("Cos", [angles])])], "window"
    )  # fmt: skip
    if a2:
        doubled = ctx.temp("Mul", [angles, ctx.scalar(2.0, f32)], "doubled")
        second = ctx.temp("Mul", [ctx.scalar(a2, f32), ctx.temp("Cos", [doubled])], "second")
        window = ctx.temp("Add", [window, second], "window")
    to = ir.DataType(attr_int(node, "output_datatype", int(f32)))
    ctx.emit("Cast", [window], [ctx.output(node)], to=caffe2_dtype(to, "the window"))


@ops.register("HannWindow", since=17)
def hann_window_v17(node: ir.Node, ctx: ExportContext) -> None:
    _window(node, ctx, 0.5, 0.5, 0.0)


@ops.register("HammingWindow", since=17)
def hamming_window_v17(node: ir.Node, ctx: ExportContext) -> None:
    _window(node, ctx, 25 / 46, 21 / 46, 0.0)


@ops.register("BlackmanWindow", since=17)
def blackman_window_v17(node: ir.Node, ctx: ExportContext) -> None:
    _window(node, ctx, 0.42, 0.5, 0.08)


@ops.register("MelWeightMatrix", since=17)
def mel_weight_matrix_v17(node: ir.Node, ctx: ExportContext) -> None:
    _fold(node, ctx)
