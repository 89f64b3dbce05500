"""Core ML backend: MaxUnpool, Col2Im, TensorScatter and Det, exported to .mlpackage, re-imported
through the frontend and run on onnxruntime, against onnxruntime on the source model; indices,
shapes and write positions at run time and as constants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.errors import UnsupportedOpsError
from unframe.shared_ir.runner import run_onnxruntime

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


def _model(
    op: str,
    inputs: Sequence[tuple[str, int, Sequence[int]]],
    output_shape: Sequence[int] | None,
    opset: int,
    constants: dict[str, np.ndarray] | None = None,
    **attributes: Any,
) -> ir.Model:
    """One node; ``constants`` become initializers (known before run time)."""
    constants = constants or {}
    names = [n for n, _, _ in inputs]
    graph = helper.make_graph(
        [helper.make_node(op, names, ["y"], **attributes)],
        op.lower(),
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs if n not in constants],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        initializer=[
            helper.make_tensor(n, TensorProto.INT64, v.shape, v) for n, v in constants.items()
        ],
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def _check(model: ir.Model, feeds: dict[str, np.ndarray]) -> None:
    (want,) = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds).values()
    (got,) = CoreMLFramework().run_ir(model, feeds).values()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _pooled_with_indices(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((2, 3, 4, 6)).astype(np.float32)
    windows = x.reshape(2, 3, 2, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 2, 3, 4)
    best = windows.argmax(-1)
    rows = np.arange(2)[:, None] * 2 + best // 2
    cols = np.arange(3)[None, :] * 2 + best % 2
    flat = (np.arange(6)[:, None, None, None] * 24).reshape(2, 3, 1, 1) + rows * 6 + cols
    return windows.max(-1), flat.astype(np.int64)


@pytest.mark.parametrize("output_shape", [None, [2, 3, 5, 7]])
def test_max_unpool_matches_onnx_reference(output_shape: list[int] | None) -> None:
    """A larger output_shape keeps the unpooled values at the start of each axis, as onnx's
    reference (and its node test) places them; onnxruntime reads the indices over output_shape
    instead, so the reference is the oracle."""
    values, indices = _pooled_with_indices(np.random.default_rng(0))
    inputs = [("x", TensorProto.FLOAT, values.shape), ("i", TensorProto.INT64, indices.shape)]
    feeds = {"x": values, "i": indices}
    if output_shape is not None:
        inputs.append(("shape", TensorProto.INT64, [4]))
        feeds["shape"] = np.array(output_shape, np.int64)
    model = _model("MaxUnpool", inputs, output_shape, 11, kernel_shape=[2, 2], strides=[2, 2])
    (want,) = ReferenceEvaluator(ir.to_proto(model)).run(None, feeds)
    (got,) = CoreMLFramework().run_ir(model, feeds).values()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("at_run_time", [True, False])
@pytest.mark.parametrize(
    ("image", "block", "attributes"),
    [
        ([5, 6], [2, 3], {"strides": [1, 2], "pads": [1, 0, 0, 1]}),
        ([6, 5], [2, 2], {"dilations": [2, 1]}),
        ([3, 4, 4], [1, 2, 3], {"pads": [0, 1, 1, 0, 0, 1]}),
    ],
)
def test_col2im_matches_onnxruntime(
    image: list[int], block: list[int], attributes: dict[str, list[int]], at_run_time: bool
) -> None:
    spatial = len(image)
    strides = attributes.get("strides", [1] * spatial)
    dilations = attributes.get("dilations", [1] * spatial)
    pads = attributes.get("pads", [0] * (2 * spatial))
    count = int(
        np.prod(
            [
                (image[i] + pads[i] + pads[spatial + i] - dilations[i] * (block[i] - 1) - 1)
                // strides[i]
                + 1
                for i in range(spatial)
            ]
        )
    )
    columns = np.random.default_rng(1).standard_normal((2, 2 * int(np.prod(block)), count))
    inputs = [
        ("x", TensorProto.FLOAT, columns.shape),
        ("image", TensorProto.INT64, [spatial]),
        ("block", TensorProto.INT64, [spatial]),
    ]
    shapes = {"image": np.array(image, np.int64), "block": np.array(block, np.int64)}
    feeds = {"x": columns.astype(np.float32)} | (shapes if at_run_time else {})
    model = _model(
        "Col2Im", inputs, [2, 2, *image], 18, None if at_run_time else shapes, **attributes
    )
    _check(model, feeds)


@pytest.mark.parametrize("mode", ["linear", "circular"])
@pytest.mark.parametrize("with_indices", [True, False])
def test_tensor_scatter_matches_onnxruntime(mode: str, with_indices: bool) -> None:
    rng = np.random.default_rng(2)
    inputs = [
        ("past", TensorProto.FLOAT, [3, 2, 6, 4]),
        ("update", TensorProto.FLOAT, [3, 2, 3, 4]),
    ]
    feeds = {
        "past": rng.standard_normal((3, 2, 6, 4)).astype(np.float32),
        "update": rng.standard_normal((3, 2, 3, 4)).astype(np.float32),
    }
    if with_indices:
        inputs.append(("writes", TensorProto.INT64, [3]))
        feeds["writes"] = np.array([0, 3, 5] if mode == "circular" else [0, 3, 2], np.int64)
    _check(_model("TensorScatter", inputs, [3, 2, 6, 4], 24, mode=mode), feeds)


@pytest.mark.parametrize("shape", [[2, 2], [4, 3, 3], [2, 1, 1], [3, 2, 2]])
def test_det_matches_onnxruntime(shape: list[int]) -> None:
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    _check(_model("Det", [("x", TensorProto.FLOAT, shape)], shape[:-2], 11), {"x": x})


def test_det_of_larger_matrices_is_refused_by_name() -> None:
    model = _model("Det", [("x", TensorProto.FLOAT, [4, 4])], [], 11)
    with pytest.raises(UnsupportedOpsError) as caught:
        CoreMLFramework().run_ir(model, {"x": np.eye(4, dtype=np.float32)})
    assert caught.value.exit_code == 3
    assert "up to 3 x 3" in caught.value.ops[0].reason


@pytest.mark.parametrize("align_corners", [0, 1])
@pytest.mark.parametrize(
    ("theta_shape", "size", "at_run_time"),
    [
        ([2, 2, 3], [2, 3, 4, 5], True),
        ([1, 3, 4], [1, 2, 3, 1, 4], False),
        ([2, 2, 3], [2, 1, 1, 3], False),
    ],
)
def test_affine_grid_matches_onnxruntime(
    theta_shape: list[int], size: list[int], at_run_time: bool, align_corners: int
) -> None:
    spatial = theta_shape[1]
    inputs = [("theta", TensorProto.FLOAT, theta_shape), ("size", TensorProto.INT64, [len(size)])]
    feeds = {"theta": np.random.default_rng(10).standard_normal(theta_shape).astype(np.float32)}
    constants = None
    if at_run_time:
        feeds["size"] = np.array(size, np.int64)
    else:
        constants = {"size": np.array(size, np.int64)}
    output = [size[0], *size[2:], spatial]
    model = _model("AffineGrid", inputs, output, 20, constants, align_corners=align_corners)
    if align_corners and 1 in size[2:]:
        # onnx's reference puts a single aligned sample at -1, onnxruntime elsewhere: refused.
        with pytest.raises(UnsupportedOpsError) as caught:
            CoreMLFramework().run_ir(model, feeds)
        assert "single sample" in caught.value.ops[0].reason
        return
    _check(model, feeds)
