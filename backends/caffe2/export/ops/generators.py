"""Ops whose inputs are all known when exporting (windows, mel matrices): written as constants.

Caffe2 has no window or mel-filter operators; with constant inputs these ops are constants, and
the value onnx's reference implementation computes is written into the init net.
"""

from __future__ import annotations

import onnx_ir as ir

from unframe.backends.caffe2.export.context import ExportContext, evaluate_node
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


@ops.register("HannWindow", since=17)
def hann_window_v17(node: ir.Node, ctx: ExportContext) -> None:
    _fold(node, ctx)


@ops.register("HammingWindow", since=17)
def hamming_window_v17(node: ir.Node, ctx: ExportContext) -> None:
    _fold(node, ctx)


@ops.register("BlackmanWindow", since=17)
def blackman_window_v17(node: ir.Node, ctx: ExportContext) -> None:
    _fold(node, ctx)


@ops.register("MelWeightMatrix", since=17)
def mel_weight_matrix_v17(node: ir.Node, ctx: ExportContext) -> None:
    _fold(node, ctx)
