"""The executor refuses what Caffe2's kernels refuse, and returns what they return.

Each case was read from the kernel named (caffe2/operators/...): in-place scatters, OneHot's
1-D int64 indices, LpNorm's average of nothing, the fan of XavierFill and MSRAFill,
GivenTensorFill's dtypes and UniformFill's bounds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from unframe.backends.caffe2.native.executor import Workspace
from unframe.shared_ir.errors import BadInputError

from .conftest import make_op

Run1 = Callable[..., np.ndarray]
F32 = np.float32


def _in_place(op_type: str, *inputs: np.ndarray, output: str = "x0") -> np.ndarray:
    op = make_op(op_type, len(inputs))
    op.output[0] = output
    workspace = Workspace()
    for i, value in enumerate(inputs):
        workspace.feed(f"x{i}", value)
    workspace.run_op(op, 0)
    return workspace.fetch(output)


# -- ScatterAssign, ScatterWeightedSum: CAFFE_ENFORCE_EQ(&X0, output) (utility_ops.h) ----------
def test_scatter_assign_writes_its_first_input_in_place() -> None:
    data, indices = np.zeros((3, 2), F32), np.array([2, 0], np.int64)
    slices = np.array([[1, 2], [3, 4]], F32)
    assert _in_place("ScatterAssign", data, indices, slices).tolist() == [[3, 4], [0, 0], [1, 2]]
    with pytest.raises(BadInputError, match=r"In place operation is required.*utility_ops\.h"):
        _in_place("ScatterAssign", data, indices, slices, output="y0")


def test_scatter_assign_types() -> None:
    indices = np.array([1], np.int32)
    with pytest.raises(BadInputError, match=r"registers ScatterAssign for .*; DATA .* is double"):
        _in_place("ScatterAssign", np.zeros((2, 1)), indices, np.ones((1, 1)))
    with pytest.raises(BadInputError, match="Data and slice types must match"):
        _in_place("ScatterAssign", np.zeros((2, 1), np.int64), indices, np.ones((1, 1), F32))
    got = _in_place("ScatterAssign", np.zeros(2, np.uint8), indices, np.array([7], np.uint8))
    assert got.tolist() == [0, 7]


def test_scatter_weighted_sum_writes_its_first_input_in_place() -> None:
    inputs = (np.ones((2, 2), F32), np.array([2.0], F32), np.array([1], np.int64),
              np.array([[1, 1]], F32), np.array([3.0], F32))  # fmt: skip
    assert _in_place("ScatterWeightedSum", *inputs).tolist() == [[1, 1], [5, 5]]
    with pytest.raises(BadInputError, match="In place operation is required"):
        _in_place("ScatterWeightedSum", *inputs, output="y0")
    doubles = tuple(np.asarray(x, np.float64) if x.dtype == F32 else x for x in inputs)
    with pytest.raises(BadInputError, match=r"float only \(caffe2/operators/utility_ops\.cc\)"):
        _in_place("ScatterWeightedSum", *doubles)


# -- OneHot: "indices input must be 1D tensor of data type int64_t" (one_hot_ops.h) ------------
def test_one_hot_takes_1d_int64_indices(run1: Run1) -> None:
    size = np.array([3], np.int64)
    assert run1("OneHot", np.array([2, 0], np.int64), size).tolist() == [[0, 0, 1], [1, 0, 0]]
    with pytest.raises(BadInputError, match=r"1-D int64 .*one_hot_ops\.h"):
        run1("OneHot", np.array([[2, 0]], np.int64), size)
    with pytest.raises(BadInputError, match="1-D int64"):
        run1("OneHot", np.array([2, 0], np.int32), size)


# -- LpNorm: size = average_ ? numel : 1; CAFFE_ENFORCE_GT(size, 0) (lpnorm_op.cc) ------------
def test_lp_norm_average_of_nothing_is_refused(run1: Run1) -> None:
    empty = np.zeros(0, F32)
    assert run1("LpNorm", empty, p=1).tolist() == [0]
    with pytest.raises(BadInputError, match=r"average=1 needs a non-empty input"):
        run1("LpNorm", empty, p=1, average=1)
    assert run1("LpNorm", np.array([1, -3], F32), p=1, average=1).tolist() == [2]
    with pytest.raises(BadInputError, match=r"registers LpNorm for float only"):
        run1("LpNorm", np.array([1.0, 2.0]), p=2)


# -- XavierFill, MSRAFill: numel / dim32(0), numel / dim32(1) (filler_op.h) --------------------
@pytest.mark.parametrize(
    ("op", "shape"),
    [("XavierFill", [0, 3]), ("XavierFill", []), ("MSRAFill", [4]), ("MSRAFill", [2, 0])],
)
def test_fills_refuse_shapes_whose_fan_divides_by_zero(
    run1: Run1, op: str, shape: list[int]
) -> None:
    with pytest.raises(BadInputError, match=r"filler_op\.h"):
        run1(op, shape=shape)


@pytest.mark.parametrize(("op", "shape"), [("XavierFill", [3, 0]), ("MSRAFill", [0, 2])])
def test_fills_with_another_empty_dim_give_an_empty_output(
    run1: Run1, op: str, shape: list[int]
) -> None:
    assert run1(op, shape=shape).shape == tuple(shape)


def test_xavier_scale_comes_from_the_fan_in(run1: Run1) -> None:
    values = run1("XavierFill", shape=[2, 3, 4])
    assert np.abs(values).max() <= np.sqrt(3.0 / 12)


# -- GivenTensorFill: the dtype switch (given_tensor_fill_op.h) --------------------------------
@pytest.mark.parametrize("dtype", [6, 7, 12])  # caffe2.proto TensorProto: UINT8, INT8, FLOAT16
def test_given_tensor_fill_refuses_dtypes_caffe2_does_not_fill(run1: Run1, dtype: int) -> None:
    with pytest.raises(BadInputError, match=r"Unexpected 'dtype' argument value.*given_tensor"):
        run1("GivenTensorFill", shape=[2], values=[1, 2], dtype=dtype)


def test_given_tensor_fill_still_fills_int16(run1: Run1) -> None:
    got = run1("GivenTensorFill", shape=[2], values=[1, -2], dtype=9)  # TensorProto.INT16
    assert got.dtype == np.int16 and got.tolist() == [1, -2]


# -- UniformFill: CAFFE_ENFORCE_LT(min_, max_); input bounds min > max empty dim 0 -------------
def test_uniform_fill_with_input_bounds_min_above_max_has_first_dim_0(run1: Run1) -> None:
    shape = np.zeros((4, 3), F32)
    got = run1("UniformFill", shape, np.array([2.0], F32), np.array([1.0], F32))
    assert got.shape == (0, 3) and got.dtype == F32
    got = run1("UniformIntFill", shape, np.array([5], np.int32), np.array([5], np.int32))
    assert got.tolist() == [[5] * 3] * 4


def test_uniform_fill_with_equal_argument_bounds_is_refused(run1: Run1) -> None:
    with pytest.raises(BadInputError, match=r"Max value should be bigger than min value"):
        run1("UniformFill", shape=[2], min=1.0, max=1.0)
    with pytest.raises(BadInputError, match="Cannot set both min arg and min input blob"):
        run1("UniformFill", np.zeros(2, F32), np.array([0.0], F32), np.array([1.0], F32), min=0.0)
    with pytest.raises(BadInputError, match=r"min blob must be a scalar float32"):
        run1("UniformFill", np.zeros(2, F32), np.array([0.0]), np.array([1.0]))
    assert run1("UniformFill", shape=[3], min=1.0, max=2.0).min() >= 1
