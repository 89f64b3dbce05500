"""Caffe2's OneHot, BatchGather, ScatterAssign and ScatterWeightedSum, imported: checked against
the executor and a numpy value written from Caffe2's kernels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from netdef_builders import model, op, randn
from typed_nets import check, typed_net

from unframe.converters.framework import ConvertOptions
from unframe.frontends.caffe2 import import_caffe2
from unframe.shared_ir.errors import BadInputError
from unframe.shared_ir.inputs import InputSpec
from unframe.shared_ir.runner import run_reference


# -- OneHot, BatchGather ------------------------------------------------------------------------
def test_one_hot() -> None:
    feeds = {"i": np.array([2, 0, 4, 2], dtype=np.int64), "n": np.array([5], dtype=np.int64)}
    c2 = typed_net([op("OneHot", ["i", "n"], ["y"])], feeds, ["y"])
    want = np.zeros((4, 5), np.float32)
    want[[0, 1, 2, 3], [2, 0, 4, 2]] = 1
    check(c2, feeds, {"y": want})


def test_one_hot_needs_1d_indices() -> None:
    feeds = {"i": np.array([[1]], dtype=np.int64), "n": np.array([5], dtype=np.int64)}
    with pytest.raises(BadInputError, match="OneHot.*1-D"):
        import_caffe2(typed_net([op("OneHot", ["i", "n"], ["y"])], feeds, ["y"]))


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_batch_gather(index_dtype: type) -> None:
    data = randn(2, 4, 3)
    indices = np.array([[3, 0], [1, 3]], dtype=index_dtype)
    c2 = typed_net([op("BatchGather", ["d", "i"], ["y"])], {"d": data, "i": indices}, ["y"])
    want = np.stack([data[b][indices] for b in range(2)])  # (2, 2, 2, 3)
    check(c2, {"d": data, "i": indices}, {"y": want})


# -- scatter ------------------------------------------------------------------------------------
def test_scatter_assign_reads_slices_by_size() -> None:
    data = randn(5, 2, 3)
    indices = np.array([[4], [1]], dtype=np.int32)
    slices = randn(2, 6, seed=1)  # Caffe2 reads K rows of DATA.shape[1:] whatever the shape
    feeds = {"d": data, "i": indices, "s": slices}
    c2 = typed_net([op("ScatterAssign", ["d", "i", "s"], ["d"])], feeds, ["d"])
    want = data.copy()
    want[4], want[1] = slices[0].reshape(2, 3), slices[1].reshape(2, 3)
    check(c2, feeds, {"d": want})


def test_scatter_assign_must_be_in_place() -> None:
    feeds = {"d": randn(3, 2), "i": np.array([0], np.int64), "s": randn(1, 2)}
    with pytest.raises(BadInputError, match="ScatterAssign must write its first input in place"):
        import_caffe2(typed_net([op("ScatterAssign", ["d", "i", "s"], ["y"])], feeds, ["y"]))


def _scatter_weighted_sum(x0: np.ndarray, w0: float, idx: np.ndarray, *pairs: Any) -> np.ndarray:
    """utility_ops.h: every listed row of X0 scaled by w0 (once per listing), then each input's
    rows added, input by input."""
    out = x0.copy()
    if w0 != 1.0:
        for i in idx:
            out[i] *= np.float32(w0)
    for slices, weight in pairs:
        rows = slices.reshape(len(idx), *x0.shape[1:])
        for position, i in enumerate(idx):
            out[i] += np.float32(weight) * rows[position]
    return out


def test_scatter_weighted_sum() -> None:
    x0, x1, x2 = randn(5, 3), randn(2, 3, seed=1), randn(6, seed=2)
    feeds = {"x0": x0, "w0": np.array([0.5], np.float32), "i": np.array([3, 0], np.int64),
             "x1": x1, "w1": np.array([2.0], np.float32), "x2": x2,
             "w2": np.array([-1.5], np.float32)}  # fmt: skip
    ins = ["x0", "w0", "i", "x1", "w1", "x2", "w2"]
    c2 = typed_net([op("ScatterWeightedSum", ins, ["x0"])], feeds, ["x0"])
    want = _scatter_weighted_sum(x0, 0.5, np.array([3, 0]), (x1, 2.0), (x2, -1.5))
    check(c2, feeds, {"x0": want})


def test_scatter_weighted_sum_repeated_indices() -> None:
    # Caffe2 scales a repeated row once per listing first, then adds the updates.
    x0, x1 = np.ones((3, 2), np.float32), np.array([[1, 2], [3, 4], [5, 6]], np.float32)
    feeds = {"x0": x0, "w0": np.array([2.0], np.float32), "i": np.array([1, 1, 2], np.int32),
             "x1": x1, "w1": np.array([1.0], np.float32)}  # fmt: skip
    c2 = typed_net([op("ScatterWeightedSum", ["x0", "w0", "i", "x1", "w1"], ["x0"])], feeds, ["x0"])
    want = np.array([[1, 1], [1 * 2 * 2 + 1 + 3, 1 * 2 * 2 + 2 + 4], [2 + 5, 2 + 6]], np.float32)
    np.testing.assert_array_equal(want, _scatter_weighted_sum(x0, 2.0, [1, 1, 2], (x1, 1.0)))
    check(c2, feeds, {"x0": want}, exact=True)  # onnxruntime and the executor


def test_scatter_weighted_sum_with_unit_weight_skips_scaling() -> None:
    weights = {"w0": np.array([1.0], np.float32), "w1": np.array([1.0], np.float32)}
    c2 = model(
        [op("ScatterWeightedSum", ["x0", "w0", "i", "x1", "w1"], ["x0"])], weights, {}, ["x0"]
    )
    c2.predict_net.external_input.extend(["x0", "i", "x1"])
    feeds = {"x0": randn(4, 2), "i": np.array([2, 3], np.int64), "x1": randn(2, 2, seed=1)}
    imported = import_caffe2(
        c2, ConvertOptions(inputs={k: InputSpec(k, v.shape, v.dtype) for k, v in feeds.items()})
    )
    reductions = [
        n.attributes["reduction"].value for n in imported.graph if n.op_type == "ScatterND"
    ]
    assert reductions == ["add"]
    (got,) = run_reference(imported, feeds).outputs.values()
    want = feeds["x0"].copy()
    want[[2, 3]] += feeds["x1"]
    np.testing.assert_allclose(got, want, rtol=1e-6)
