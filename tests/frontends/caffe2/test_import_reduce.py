"""Caffe2's ReduceFront*/ReduceBack* (lengths included) and LpNorm, imported: checked against
the executor and a numpy value written from Caffe2's kernels."""

from __future__ import annotations

import numpy as np
import pytest
from netdef_builders import op, randn
from typed_nets import check, run_imported, typed_net

from unframe.backends.caffe2.native.executor import run_net
from unframe.frontends.caffe2 import import_caffe2
from unframe.shared_ir.errors import BadInputError

# -- ReduceFront / ReduceBack -------------------------------------------------------------------
_NUMPY = {"Sum": np.sum, "Mean": np.mean, "Max": np.max}


@pytest.mark.parametrize("side", ["Front", "Back"])
@pytest.mark.parametrize("kind", ["Sum", "Mean", "Max"])
@pytest.mark.parametrize("count", [0, 1, 2, 4])
def test_reduce_front_back(side: str, kind: str, count: int) -> None:
    x = randn(2, 3, 4, 5)
    c2 = typed_net([op(f"Reduce{side}{kind}", ["x"], ["y"], num_reduce_dim=count)], {"x": x}, ["y"])
    axes = tuple(range(count)) if side == "Front" else tuple(range(4 - count, 4))
    want = _NUMPY[kind](x.astype(np.float64), axis=axes) if count else x
    check(c2, {"x": x}, {"y": np.asarray(want, dtype=np.float32)})


def test_integer_mean_truncates_like_c() -> None:
    x = np.array([[-7, 5, 1], [0, 2, 1]], dtype=np.int32)
    c2 = typed_net(
        [op("ReduceFrontMean", ["x"], ["y"]), op("ReduceBackMean", ["x"], ["z"])],
        {"x": x},
        ["y", "z"],
    )
    # C's int division: -7/2 = -3, 7/2 = 3; rows -1/3 = 0, 3/3 = 1.
    check(c2, {"x": x}, {"y": np.array([-3, 3, 1], np.int32), "z": np.array([0, 1], np.int32)})


def _caffe2_lengths(x2: np.ndarray, lengths: np.ndarray, kind: str) -> np.ndarray:
    """The Back kernels of reduce_front_back_*_ops.cc on (rows, cols): acc = row[0], then
    row[1:length]; the mean divides by length."""
    out = []
    for row, length in zip(x2, lengths, strict=True):
        acc = row[0]
        for j in range(1, length):
            acc = max(acc, row[j]) if kind == "Max" else acc + row[j]
        with np.errstate(divide="ignore"):
            out.append(acc / np.float32(length) if kind == "Mean" else acc)
    return np.array(out, dtype=x2.dtype)


@pytest.mark.parametrize("kind", ["Sum", "Mean", "Max"])
def test_reduce_back_with_lengths(kind: str) -> None:
    x = randn(2, 3, 4)
    lengths = np.array([[1, 4, 2], [3, 0, 4]], dtype=np.int32)
    c2 = typed_net(
        [op(f"ReduceBack{kind}", ["x", "lengths"], ["y"])], {"x": x, "lengths": lengths}, ["y"]
    )
    want = _caffe2_lengths(x.reshape(6, 4), lengths.reshape(-1), kind).reshape(2, 3)
    got = run_imported(c2, {"x": x, "lengths": lengths})["y"]
    executed = run_net(c2.predict_net, c2.init_net, {"x": x, "lengths": lengths})["y"]
    for result in (got, executed):
        assert result.shape == (2, 3)
        np.testing.assert_allclose(result, want, rtol=1e-6)
        if kind == "Mean":  # length 0: the first element over 0, as Caffe2 divides
            assert np.isinf(result[1, 1])


@pytest.mark.parametrize("kind", ["Sum", "Mean", "Max"])
def test_reduce_front_with_lengths(kind: str) -> None:
    x = randn(4, 2, 3)
    lengths = np.array([2, 4, 1, 3, 1, 4], dtype=np.int32)
    c2 = typed_net(
        [op(f"ReduceFront{kind}", ["x", "lengths"], ["y"])], {"x": x, "lengths": lengths}, ["y"]
    )
    want = _caffe2_lengths(x.reshape(4, 6).T, lengths, kind).reshape(2, 3)
    got = run_imported(c2, {"x": x, "lengths": lengths})["y"]
    executed = run_net(c2.predict_net, c2.init_net, {"x": x, "lengths": lengths})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(executed, want, rtol=1e-6)


def test_lengths_need_one_reduced_dim() -> None:
    x, lengths = randn(2, 3, 4), np.array([1, 2], dtype=np.int32)
    c2 = typed_net(
        [op("ReduceBackSum", ["x", "lengths"], ["y"], num_reduce_dim=2)],
        {"x": x, "lengths": lengths},
        ["y"],
    )
    with pytest.raises(BadInputError, match="ReduceBackSum.*num_reduce_dim must be 1"):
        import_caffe2(c2)


@pytest.mark.parametrize("kind", ["Sum", "Mean", "Max"])
@pytest.mark.parametrize("dynamic", [False, True])
def test_empty_reduction_gives_zeros(kind: str, dynamic: bool) -> None:
    # Caffe2 sets the output to 0 where there are no rows to reduce (ONNX: -inf, NaN).
    x = np.zeros((0, 3), dtype=np.float32)
    c2 = typed_net([op(f"ReduceFront{kind}", ["x"], ["y"])], {"x": x}, ["y"])
    shapes = {"x": ("n", 3)} if dynamic else None
    got = run_imported(c2, {"x": x}, shapes)["y"]
    np.testing.assert_array_equal(got, np.zeros(3, np.float32))
    executed = run_net(c2.predict_net, c2.init_net, {"x": x})["y"]
    np.testing.assert_array_equal(executed, np.zeros(3, np.float32))


# -- LpNorm, ThresholdedRelu ----------------------------------------------------------------------
@pytest.mark.parametrize(("p", "average"), [(1, 0), (1, 1), (2, 0), (2, 1)])
def test_lp_norm(p: int, average: int) -> None:
    x = randn(3, 4)
    c2 = typed_net([op("LpNorm", ["x"], ["y"], p=p, average=average)], {"x": x}, ["y"])
    total = np.sum(np.abs(x)) if p == 1 else np.sum(x * x)
    want = np.array([total / (x.size if average else 1)], dtype=np.float32)
    check(c2, {"x": x}, {"y": want})


def test_lp_norm_refuses_other_p() -> None:
    x = randn(3)
    with pytest.raises(BadInputError, match="LpNorm.*p must be 1 or 2"):
        import_caffe2(typed_net([op("LpNorm", ["x"], ["y"], p=3)], {"x": x}, ["y"]))
