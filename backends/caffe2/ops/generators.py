"""Generated tensors: windows and mel matrices.

Caffe2 has no window or mel-filter operators. Each is computed in the net as ONNX's function body
defines it (a window is a sum of cosines over a Range), except where its value is already known
(an output the shared folding pass computed), which is written into the init net.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from unframe.backends.caffe2.context import ExportContext, caffe2_dtype
from unframe.backends.caffe2.ops import _runtime as runtime
from unframe.backends.caffe2.ops._common import attr_int, reshape
from unframe.backends.caffe2.registry import ops


def _write_known(node: ir.Node, ctx: ExportContext) -> bool:
    """Writes the node's outputs as constants where all are known; whether it did."""
    known = [ctx.known_value(value) for value in node.outputs]
    if any(array is None for array in known):
        return False
    for index, array in enumerate(known):
        assert array is not None
        ctx.make_constant_output(array, node, index)
    return True


def _window(node: ir.Node, ctx: ExportContext, a0: float, a1: float, a2: float) -> None:
    """a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), n < size; N is size, or size - 1 when
    symmetric (periodic=0). Float32 throughout, as in ONNX's function body."""
    if _write_known(node, ctx):
        return
    f32 = ir.DataType.FLOAT
    size = ctx.temp("Cast", [ctx.input(0)], "size", to=caffe2_dtype(f32))
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
    if _write_known(node, ctx):
        return
    _runtime_mel_weight_matrix(node, ctx)


def _runtime_mel_weight_matrix(node: ir.Node, ctx: ExportContext) -> None:
    """Triangles over the spectrogram bins, between mel-spaced frequency bins, as ONNX defines
    them: rising from bin i to bin i + 1, falling to bin i + 2 (double precision throughout)."""
    f64, i64 = ir.DataType.DOUBLE, ir.DataType.INT64
    count, dft, rate, low, high = (
        ctx.temp("Cast", [ctx.input(i)], "input", to=caffe2_dtype(f64)) for i in range(5)
    )

    def number(value: float) -> str:
        return ctx.scalar(value, f64)

    # Caffe2's Log, Log1p and Exp are float only: in double, the net computes them from
    # arithmetic (runtime.log, runtime.exp).
    ln10 = runtime.double(ctx, math.log(10))

    def mel(hertz: str) -> str:
        ratio = ctx.temp("Add", [ctx.temp("Div", [hertz, number(700.0)], "ratio"), number(1.0)])
        return ctx.temp(
            "Div", [ctx.temp("Mul", [number(2595.0), runtime.log(ctx, ratio, f64)]), ln10], "mel"
        )

    low_mel, high_mel = mel(low), mel(high)
    points = ctx.temp("Add", [count, number(2.0)], "points")
    step = ctx.temp("Div", [ctx.temp("Sub", [high_mel, low_mel], "span"), points], "step")
    indices = ctx.temp("Range", [number(0.0), points, number(1.0)], "indices")
    mels = ctx.temp("Add", [ctx.temp("Mul", [indices, step], "mels"), low_mel], "mels")
    scaled = ctx.temp("Mul", [ctx.temp("Div", [mels, number(2595.0)]), ln10], "scaled")
    hertz = ctx.temp("Mul", [ctx.temp("Sub", [runtime.exp(ctx, scaled, f64), number(1.0)]),
                             number(700.0)], "hertz")  # fmt: skip
    spread = ctx.temp("Mul", [ctx.temp("Add", [dft, number(1.0)], "spread"), hertz], "spread")
    bins = runtime.floor(ctx, ctx.temp("Div", [spread, rate], "bins"), f64)
    edges = {}
    for name, start in (("left", 0), ("center", 1), ("right", 2)):
        stop = ctx.temp("Add", [count, number(float(start))], "stop")
        whole = [
            ctx.temp("Cast", [v], "bound", to=caffe2_dtype(i64)) for v in (number(start), stop)
        ]
        picked = ctx.temp("Range", [*whole, runtime.const64(ctx, 1)], "picked")
        edges[name] = reshape(ctx, ctx.temp("Gather", [bins, picked], name), [1, -1])
    half = runtime.floor(ctx, ctx.temp("Div", [dft, number(2.0)], "half"), f64)
    rows = ctx.temp("Range", [number(0.0), ctx.temp("Add", [half, number(1.0)]), number(1.0)])
    j = reshape(ctx, rows, [-1, 1])
    left, center, right = edges["left"], edges["center"], edges["right"]
    # Caffe2's Where wants one shape: every operand is expanded to [bins, mel bins].
    grid = ctx.temp(
        "Add", [ctx.temp("Mul", [j, number(0.0)]), ctx.temp("Mul", [left, number(0.0)])]
    )

    def full(blob: str) -> str:
        return runtime.like(ctx, blob, grid)

    rise_span = full(ctx.temp("Sub", [center, left], "rise_span"))
    flat = ctx.temp("EQ", [rise_span, number(0.0)], "flat")
    one = full(number(1.0))
    safe_rise = ctx.temp("Where", [flat, one, rise_span], "rise_span")
    rise = ctx.temp("Div", [full(ctx.temp("Sub", [j, left], "rise")), safe_rise], "rise")
    rise = ctx.temp("Where", [flat, one, rise], "rise")
    # Comparisons of expanded operands: Caffe2's Expand takes no bool (expand_op.cc).
    on_rise = ctx.temp("And", [ctx.temp("GE", [full(j), full(left)]),
                               ctx.temp("LE", [full(j), full(center)])])  # fmt: skip
    fall_span = full(ctx.temp("Sub", [right, center], "fall_span"))
    fall = ctx.temp("Div", [full(ctx.temp("Sub", [right, j], "fall")), fall_span], "fall")
    on_fall = ctx.temp("And", [ctx.temp("GE", [full(j), full(center)]),
                               ctx.temp("LT", [full(j), full(right)])])  # fmt: skip
    zeros = full(number(0.0))
    weights = ctx.temp("Where", [on_fall, fall, ctx.temp("Where", [on_rise, rise, zeros])])
    to = ir.DataType(attr_int(node, "output_datatype", int(ir.DataType.FLOAT)))
    ctx.emit("Cast", [weights], [ctx.output(node)], to=caffe2_dtype(to, "the matrix"))


@ops.register("STFT", since=17)
def stft_v17(node: ir.Node, ctx: ExportContext) -> None:
    """Frames gathered at run-time positions (frame k starts at k * frame_step), weighted by the
    window, times the DFT's cosine and sine matrices built from the run-time frame length."""
    signal = node.inputs[0]
    _, length, parts = ctx.need_shape(signal, "to frame the signal")
    if parts != 1:
        raise ctx.error("complex signals are not exported")
    f32, i64 = ir.DataType.FLOAT, ir.DataType.INT64
    dtype = ctx.dtype(signal) or f32
    step = ctx.temp("Cast", [ctx.input(1)], "step", to=caffe2_dtype(i64))
    if ctx.has_input(3):
        frame = ctx.temp("Cast", [ctx.input(3)], "frame", to=caffe2_dtype(i64))
    elif ctx.has_input(2):
        frame = ctx.temp("Size", [ctx.input(2)], "frame")
    else:
        frame = runtime.const64(ctx, length)
    zero, one = runtime.const64(ctx, 0), runtime.const64(ctx, 1)
    room = ctx.temp("Sub", [runtime.const64(ctx, length), frame], "room")
    frames = ctx.temp("Add", [ctx.temp("Div", [room, step], "frames"), one], "frames")
    starts = ctx.temp("Mul", [ctx.temp("Range", [zero, frames, one], "starts"), step], "starts")
    offsets = ctx.temp("Range", [zero, frame, one], "offsets")
    positions = ctx.temp("Add", [reshape(ctx, starts, [-1, 1]), reshape(ctx, offsets, [1, -1])])
    gathered = ctx.temp("Gather", [ctx.blob(signal), positions], "frames", axis=1)
    framed = ctx.temp("Squeeze", [gathered], "frames", dims=[3])
    if ctx.has_input(2):
        framed = ctx.temp("Mul", [framed, ctx.input(2)], "windowed")
    # Angles 2 pi (n k mod N) / N: the product is reduced in integers first.
    if attr_int(node, "onesided", 1):
        bins = ctx.temp("Add", [ctx.temp("Div", [frame, runtime.const64(ctx, 2)]), one], "bins")
    else:
        bins = frame
    n = reshape(ctx, offsets, [-1, 1])
    k = reshape(ctx, ctx.temp("Range", [zero, bins, one], "k"), [1, -1])
    product = ctx.temp("Mul", [n, k], "nk")
    turns = ctx.temp("Sub", [product, ctx.temp("Mul", [ctx.temp("Div", [product, frame]), frame])])
    # Caffe2's Cos and Sin are float only: in double, from the integer turns (runtime).
    cos, sin = (
        ctx.temp("Cast", [part], name, to=caffe2_dtype(dtype))
        for part, name in zip(runtime.cos_sin_turns(ctx, turns, frame), ("cos", "sin"), strict=True)
    )
    real = ctx.temp("BatchMatMul", [framed, cos], "real", broadcast=1)
    imag = ctx.temp("BatchMatMul", [framed, sin], "imag", broadcast=1)
    imag = ctx.temp("Negative", [imag], "imag")
    pair = [ctx.temp("ExpandDims", [part], "part", dims=[3]) for part in (real, imag)]
    ctx.emit("Concat", pair, [ctx.output(node), ctx.fresh("split_info")], axis=3)
