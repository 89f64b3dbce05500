"""Signal processing: HannWindow, HammingWindow, BlackmanWindow, DFT, STFT, MelWeightMatrix.

ONNX holds complex values as a trailing dimension of 2 (real, imaginary) and real signals as a
trailing dimension of 1; the helpers convert to torch complex tensors, transform with ``torch.fft``
and convert back. Windows are computed in float64 and cast, as the reference's formulas read.
"""

from __future__ import annotations

import math
from typing import Any

from unframe.backends.pytorch.dtypes import to_torch_dtype
from unframe.backends.pytorch.ops._common import BuildContext, Outputs, ir, np, ops, torch


def _scalar(value: Any) -> Any:
    """A python number from a scalar (or one-element) tensor, or the number (or SymInt) itself."""
    if isinstance(value, torch.Tensor):
        return value.reshape(-1)[0].item()
    return value


def _size(value: Any) -> Any:
    """A size as an int, a symbolic size left as it is (``int()`` would specialize it)."""
    value = _scalar(value)
    return value if isinstance(value, torch.SymInt) else int(value)


def _scalar_input(ctx: BuildContext, index: int) -> Any:
    """Input ``index`` as a python number where it is a constant, else its fx node (or None)."""
    array = ctx.constant_input(index)
    if array is None:
        return ctx.optional_input(index)
    return array.reshape(-1)[0].item()


# -- windows -----------------------------------------------------------------------------------


def _window(size: Any, periodic: int, kind: str, dtype: torch.dtype) -> torch.Tensor:
    size = _size(size)
    span = size if periodic else size - 1
    n = torch.arange(size, dtype=torch.float64)
    if kind == "hann":
        values = torch.sin(n * math.pi / span) ** 2
    elif kind == "hamming":
        alpha = 25.0 / 46.0
        values = alpha - torch.cos(n * (2 * math.pi) / span) * (1 - alpha)
    else:  # blackman
        values = (
            0.42
            - 0.5 * torch.cos(n * (2 * math.pi) / span)
            + 0.08 * torch.cos(n * (4 * math.pi) / span)
        )
    return values.to(dtype)


def _window_node(ctx: BuildContext, kind: str) -> Outputs:
    dtype = to_torch_dtype(ctx.attr_int("output_datatype", 1))
    periodic = ctx.attr_int("periodic", 1)
    return [ctx.call(_window, _scalar_input(ctx, 0), periodic, kind, dtype)]


@ops.register("HannWindow", since=17)
def hann_window_v17(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _window_node(ctx, "hann")


@ops.register("HammingWindow", since=17)
def hamming_window_v17(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _window_node(ctx, "hamming")


@ops.register("BlackmanWindow", since=17)
def blackman_window_v17(node: ir.Node, ctx: BuildContext) -> Outputs:
    return _window_node(ctx, "blackman")


# -- DFT / STFT --------------------------------------------------------------------------------


def _to_complex(x: torch.Tensor) -> torch.Tensor:
    """``[..., 1]`` (real) or ``[..., 2]`` (real, imaginary) as a complex tensor ``[...]``."""
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()  # torch.fft has no half-precision CPU kernels
    if x.shape[-1] == 1:
        return torch.complex(x[..., 0], torch.zeros_like(x[..., 0]))
    return torch.complex(x[..., 0], x[..., 1])


def _dft(x: torch.Tensor, length: Any, axis: int, inverse: int, onesided: int) -> torch.Tensor:
    axis = axis % x.dim()
    size = x.shape[axis]
    if length is None:
        length = 2 * (size - 1) if inverse and onesided else size
    length = _size(length)
    signal = _to_complex(x)
    if inverse and onesided:
        real = torch.fft.irfft(signal, n=length, dim=axis)
        return real.unsqueeze(-1).to(x.dtype)
    if inverse:
        result = torch.fft.ifft(signal, n=length, dim=axis)
    else:
        result = torch.fft.fft(signal, n=length, dim=axis)
        if onesided:
            result = result.narrow(axis, 0, length // 2 + 1)
    return torch.view_as_real(result).to(x.dtype)


@ops.register("DFT", since=17)
def dft_v17(node: ir.Node, ctx: BuildContext) -> Outputs:
    inverse, onesided = ctx.attr_int("inverse", 0), ctx.attr_int("onesided", 0)
    axis = ctx.attr_int("axis", 1)
    return [ctx.call(_dft, ctx.input(0), _scalar_input(ctx, 1), axis, inverse, onesided)]


@ops.register("DFT", since=20)
def dft_v20(node: ir.Node, ctx: BuildContext) -> Outputs:
    inverse, onesided = ctx.attr_int("inverse", 0), ctx.attr_int("onesided", 0)
    axis = _scalar_input(ctx, 2)
    if axis is None:
        axis = -2
    elif not isinstance(axis, int):
        axis = ctx.call(_scalar, axis)
    return [ctx.call(_dft, ctx.input(0), _scalar_input(ctx, 1), axis, inverse, onesided)]


def _stft(
    x: torch.Tensor, step: Any, window: torch.Tensor | None, length: Any, onesided: int
) -> torch.Tensor:
    step = _size(step)
    if length is None:
        length = x.shape[-2] if window is None else window.shape[0]
    length = _size(length)
    frames = x.unfold(1, length, step).movedim(-1, -2)  # [batch, frames, length, 1 or 2]
    if window is not None:
        frames = frames * window.to(frames.dtype).reshape(1, 1, length, 1)
    return _dft(frames, length, 2, 0, onesided)


@ops.register("STFT", since=17)
def stft_v17(node: ir.Node, ctx: BuildContext) -> Outputs:
    onesided = ctx.attr_int("onesided", 1)
    step, length = _scalar_input(ctx, 1), _scalar_input(ctx, 3)
    return [ctx.call(_stft, ctx.input(0), step, ctx.optional_input(2), length, onesided)]


# -- MelWeightMatrix ---------------------------------------------------------------------------


def _mel_matrix(
    bins: int, dft_length: int, sample_rate: float, low: float, high: float
) -> np.ndarray:
    """The [dft_length // 2 + 1, bins] triangular filter bank, as onnx's reference builds it."""
    edges = np.arange(0, bins + 2)
    low_mel = 2595 * np.log1p(low / 700) / np.log(10)
    high_mel = 2595 * np.log1p(high / 700) / np.log(10)
    step = (high_mel - low_mel) / edges.shape[0]
    hertz = 700 * np.expm1((edges * step + low_mel) / 2595 * np.log(10))
    points = (((dft_length + 1) * hertz) // sample_rate).astype(int)
    out = np.zeros((dft_length // 2 + 1, bins))
    for i in range(bins):
        left, center, right = points[i], points[i + 1], points[i + 2]
        if center == left:
            out[center, i] = 1
        else:
            for j in range(left, center + 1):
                out[j, i] = (j - left) / (center - left)
        for j in range(center, right):
            out[j, i] = (right - j) / (right - center)
    return out


def _mel_weight_matrix(
    bins: Any, dft_length: Any, sample_rate: Any, low: Any, high: Any, dtype: torch.dtype
) -> torch.Tensor:
    args = [_scalar(v) for v in (bins, dft_length, sample_rate, low, high)]
    return torch.from_numpy(_mel_matrix(*args)).to(dtype)


@ops.register("MelWeightMatrix", since=17)
def mel_weight_matrix_v17(node: ir.Node, ctx: BuildContext) -> Outputs:
    dtype = to_torch_dtype(ctx.attr_int("output_datatype", 1))
    args = [_scalar_input(ctx, i) for i in range(5)]
    if all(not isinstance(a, torch.fx.Node) for a in args):
        return [ctx.make_constant(_mel_matrix(*args), dtype=dtype)]
    return [ctx.call(_mel_weight_matrix, *args, dtype)]
