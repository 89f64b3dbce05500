"""Caffe2's rank-specific Conv/pool names, device copies and ThresholdedRelu, imported: checked
against the executor and numpy."""

from __future__ import annotations

import numpy as np
import pytest
from netdef_builders import op, randn
from numpy.lib.stride_tricks import sliding_window_view
from typed_nets import check, typed_net

from unframe.frontends.caffe2 import import_caffe2


# -- oracles ------------------------------------------------------------------------------------
def _windows(x: np.ndarray, kernel: list[int], stride: int, pad: int, fill: float) -> np.ndarray:
    nd = len(kernel)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pad, pad)] * nd, constant_values=fill)
    view = sliding_window_view(xp, kernel, axis=tuple(range(2, 2 + nd)))
    return view[(slice(None), slice(None), *[slice(None, None, stride)] * nd)]


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    nd = w.ndim - 2
    win = _windows(x, list(w.shape[2:]), stride, pad, 0.0)  # (n, c, out..., k...)
    out, taps = "pqr"[:nd], "ijk"[:nd]
    y = np.einsum(f"nc{out}{taps},mc{taps}->nm{out}", win, w)
    return (y + b.reshape(1, -1, *[1] * nd)).astype(np.float32)


# -- aliases ------------------------------------------------------------------------------------
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_rank_specific_conv_names(rank: int) -> None:
    spatial = [7, 6, 5][:rank]
    x = randn(1, 2, *spatial)
    w, b = randn(3, 2, *[3] * rank, seed=1), randn(3, seed=2)
    c2 = typed_net(
        [op(f"Conv{rank}D", ["x", "w", "b"], ["y"], kernel=3, stride=2, pad=1)],
        {"x": x, "w": w, "b": b},
        ["y"],
    )
    check(c2, {"x": x, "w": w, "b": b}, {"y": _conv(x, w, b, stride=2, pad=1)})


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kind", ["MaxPool", "AveragePool"])
def test_rank_specific_pool_names(kind: str, rank: int) -> None:
    x = randn(1, 2, *[7, 6, 5][:rank])
    c2 = typed_net([op(f"{kind}{rank}D", ["x"], ["y"], kernel=2, stride=2)], {"x": x}, ["y"])
    win = _windows(x, [2] * rank, 2, 0, 0.0)
    axes = tuple(range(-rank, 0))
    want = win.max(axis=axes) if kind == "MaxPool" else win.mean(axis=axes)
    check(c2, {"x": x}, {"y": want.astype(np.float32)})


def test_device_copies_are_identities() -> None:
    x = randn(2, 3)
    names = ["CopyCPUToGPU", "EnsureDense", "CopyGPUToCPU", "CopyFromCPUInput", "EnsureCPUOutput"]
    blobs = ["x", "a", "b", "c", "d", "y"]
    ops = [op(t, [blobs[i]], [blobs[i + 1]]) for i, t in enumerate(names)]
    c2 = typed_net(ops, {"x": x}, ["y"])
    check(c2, {"x": x}, {"y": x})
    imported = import_caffe2(c2)
    assert {n.op_type for n in imported.graph} == {"Identity"}


def test_thresholded_relu() -> None:
    x = np.array([[-1.0, 0.5, 0.50001, 2.0, 0.0]], dtype=np.float32)
    c2 = typed_net([op("ThresholdedRelu", ["x"], ["y"], alpha=0.5)], {"x": x}, ["y"])
    check(c2, {"x": x}, {"y": np.array([[0.0, 0.0, 0.50001, 2.0, 0.0]], np.float32)})
