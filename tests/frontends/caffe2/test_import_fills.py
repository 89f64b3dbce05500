"""Fill ops in a predict net: given values and RangeFill become constants (or a run-time
Reshape), random fills ONNX's random ops, and the fills without an exact form are refused."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import onnx_ir as ir
import pytest
from netdef_builders import op, randn
from typed_nets import check, imported, run_imported, typed_net

from unframe.backends.caffe2.native.executor import run_net
from unframe.backends.caffe2.native.netdef import Caffe2Model
from unframe.frontends.caffe2 import import_caffe2
from unframe.shared_ir.errors import BadInputError, UnsupportedOpsError
from unframe.shared_ir.runner import run_reference


# -- given values -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("op_type", "values", "dtype"),
    [
        ("GivenTensorFill", [1.5, -2.0, 0.25, 3.0, 4.0, 5.0], np.float32),
        ("GivenTensorDoubleFill", [1.5, -2.0, 0.25, 3.0, 4.0, 5.0], np.float64),
        ("GivenTensorIntFill", [1, -2, 3, 4, 5, 6], np.int32),
        ("GivenTensorInt64Fill", [1, -2, 3, 4, 5, 2**40], np.int64),
        ("GivenTensorInt16Fill", [1, -2, 3, 4, 5, 6], np.int16),
        ("GivenTensorBoolFill", [1, 0, 0, 1, 1, 0], np.bool_),
    ],
)
def test_given_tensor_fills_become_constants(op_type: str, values: list[Any], dtype: type) -> None:
    c2 = typed_net([op(op_type, [], ["c"], shape=[2, 3], values=values)], {}, ["c"])
    check(c2, {}, {"c": np.array(values, dtype=dtype).reshape(2, 3)}, exact=True)


def test_given_tensor_fill_dtype_picks_the_type() -> None:
    c2 = typed_net(
        [op("GivenTensorFill", [], ["c"], shape=[3], values=[7, -1, 2], dtype=2)], {}, ["c"]
    )
    check(c2, {}, {"c": np.array([7, -1, 2], np.int32)})


def test_given_constant_feeds_later_ops() -> None:
    x = randn(2, 3)
    ops = [op("GivenTensorFill", [], ["w"], shape=[3], values=[1.0, 2.0, 3.0]),
           op("Mul", ["x", "w"], ["y"])]  # fmt: skip
    check(typed_net(ops, {"x": x}, ["y"]), {"x": x}, {"y": x * np.array([1, 2, 3], np.float32)})


def test_given_tensor_fill_with_shape_from_input_and_extra_shape() -> None:
    x = randn(2, 1)
    c2 = typed_net(
        [op("GivenTensorFill", ["x"], ["c"], extra_shape=[2], values=[1.0, 2.0, 3.0, 4.0])],
        {"x": x},
        ["c"],
    )
    check(c2, {"x": x}, {"c": np.array([[[1.0, 2.0]], [[3.0, 4.0]]], np.float32)})


def test_given_string_fill() -> None:
    fill = op("GivenTensorStringFill", [], ["c"], shape=[2])
    fill.arg.add(name="values", strings=[b"ab", b"c"])
    c2 = typed_net([fill], {}, ["c"])
    got = run_imported(c2, {})["c"]
    assert got.tolist() == ["ab", "c"]


def test_given_fill_size_must_match_shape() -> None:
    c2 = typed_net([op("GivenTensorFill", [], ["c"], shape=[2, 2], values=[1.0])], {}, ["c"])
    with pytest.raises(BadInputError, match=r"GivenTensorFill.*1 values for shape \[2, 2\]"):
        import_caffe2(c2)


# -- RangeFill ----------------------------------------------------------------------------------
def test_range_fill_static() -> None:
    c2 = typed_net([op("RangeFill", [], ["c"], shape=[2, 3])], {}, ["c"])
    check(c2, {}, {"c": np.array([[0, 1, 2], [3, 4, 5]], np.float32)})
    assert [n.op_type for n in imported(c2, {}).graph] == ["Constant"]


def test_range_fill_with_run_time_shape() -> None:
    feeds = {"s": np.array([2, 1, 3], np.int64)}
    c2 = typed_net([op("RangeFill", ["s"], ["c"], input_as_shape=1, extra_shape=[2])], feeds, ["c"])
    check(c2, feeds, {"c": np.arange(12, dtype=np.float32).reshape(2, 1, 3, 2)})


# -- random fills ---------------------------------------------------------------------------------
def _only(c2: Caffe2Model, feeds: dict[str, np.ndarray]) -> tuple[ir.Node, np.ndarray]:
    onnx_model = imported(c2, feeds)
    random = [n for n in onnx_model.graph if n.op_type.startswith("Random")]
    assert len(random) == 1
    return random[0], run_reference(onnx_model, feeds).outputs["c"]


def test_uniform_fill() -> None:
    c2 = typed_net([op("UniformFill", [], ["c"], shape=[200, 100], min=-2.0, max=3.0)], {}, ["c"])
    node, got = _only(c2, {})
    assert node.op_type == "RandomUniform"
    assert got.dtype == np.float32 and got.shape == (200, 100)
    for values in (got, run_net(c2.predict_net, None, {})["c"]):
        assert -2.0 <= values.min() and values.max() < 3.0
        assert abs(values.mean() - 0.5) < 0.05  # the mean's std is 5 / sqrt(12 * 20000) = 0.01
        assert values.min() < -1.9 and values.max() > 2.9


def test_gaussian_fill_with_run_time_shape() -> None:
    feeds = {"s": np.array([200, 100], np.int64)}
    c2 = typed_net(
        [op("GaussianFill", ["s"], ["c"], input_as_shape=1, mean=1.0, std=2.0)], feeds, ["c"]
    )
    node, got = _only(c2, feeds)
    assert node.op_type == "RandomNormalLike"
    assert got.dtype == np.float32 and got.shape == (200, 100)
    for values in (got, run_net(c2.predict_net, None, feeds)["c"]):
        assert abs(values.mean() - 1.0) < 0.06 and abs(values.std() - 2.0) < 0.06


def test_xavier_fill_is_uniform_over_sqrt_3_over_fan_in() -> None:
    c2 = typed_net([op("XavierFill", [], ["c"], shape=[100, 4, 5, 5])], {}, ["c"])
    node, got = _only(c2, {})
    scale = np.sqrt(3.0 / 100)  # fan_in = 4 * 5 * 5
    assert node.op_type == "RandomUniform"
    np.testing.assert_allclose(node.attributes["high"].value, scale, rtol=1e-6)
    for values in (got, run_net(c2.predict_net, None, {})["c"]):
        assert values.shape == (100, 4, 5, 5)
        assert -scale <= values.min() and values.max() < scale and values.max() > 0.95 * scale


def test_msra_fill_is_normal_with_sqrt_2_over_fan_out() -> None:
    c2 = typed_net([op("MSRAFill", [], ["c"], shape=[64, 50, 3, 3])], {}, ["c"])
    node, got = _only(c2, {})
    std = np.sqrt(2.0 / (64 * 3 * 3))  # fan_out = size / shape[1]
    assert node.op_type == "RandomNormal"
    for values in (got, run_net(c2.predict_net, None, {})["c"]):
        assert abs(values.mean()) < 0.003 and abs(values.std() / std - 1) < 0.03


# -- refusals -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ops", "feeds", "message"),
    [
        (
            [op("UniformIntFill", [], ["c"], shape=[2], min=0, max=5)],
            {},
            r"node 'op 0': UniformIntFill: UniformIntFill .* has no exact ONNX form",
        ),
        (
            [op("UniformFill", ["x", "lo", "hi"], ["c"])],
            {"x": randn(2), "lo": randn(1), "hi": randn(1)},
            r"node 'op 0': UniformFill: UniformFill with min and max as inputs is not imported",
        ),
        (
            [op("XavierFill", ["s"], ["c"], input_as_shape=1)],
            {"s": np.array([2, 3], np.int64)},
            r"node 'op 0': XavierFill: XavierFill with a shape known only at run time",
        ),
        (
            [op("MSRAFill", ["s"], ["c"], input_as_shape=1)],
            {"s": np.array([2, 3], np.int64)},
            r"node 'op 0': MSRAFill: MSRAFill with a shape known only at run time",
        ),
    ],
)
def test_fills_without_an_exact_form_are_refused(
    ops: list[Any], feeds: dict[str, np.ndarray], message: str
) -> None:
    with pytest.raises(UnsupportedOpsError) as caught:
        imported(typed_net(ops, feeds, ["c"]), feeds)
    (line,) = caught.value.details()
    assert re.search(message, line), line


def test_uniform_fill_needs_min_below_max() -> None:
    c2 = typed_net([op("UniformFill", [], ["c"], shape=[2], min=1.0, max=1.0)], {}, ["c"])
    with pytest.raises(BadInputError, match="UniformFill.*min .* must be less than max"):
        import_caffe2(c2)


def test_uniform_fill_takes_no_two_inputs() -> None:
    feeds = {"x": randn(2), "lo": randn(1)}
    with pytest.raises(BadInputError, match=r"UniformFill.*\(not 2\)"):
        imported(typed_net([op("UniformFill", ["x", "lo"], ["c"])], feeds, ["c"]), feeds)


def test_gaussian_fill_without_shape_is_a_scalar() -> None:
    node, got = _only(typed_net([op("GaussianFill", [], ["c"], std=0.5)], {}, ["c"]), {})
    assert list(node.attributes["shape"].value) == []
    assert got.shape == () and got.dtype == np.float32
