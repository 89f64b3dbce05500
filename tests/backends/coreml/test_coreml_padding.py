"""Core ML backend: Pad by gathers (pads and axes at run time, negative pads, wrap, reflect and
edge on any axis), Slice whose output length is counted at run time, and CenterCropPad (which
expands to both), exported to .mlpackage, re-imported and run on onnxruntime, against
onnxruntime on the source model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from unframe.converters.adapters.coreml import CoreMLFramework
from unframe.shared_ir.runner import run_onnxruntime

pytest.importorskip("coremltools", reason="the coreml extra is not installed")


def _model(
    nodes: Sequence[object],
    inputs: Sequence[tuple[str, int, Sequence[int]]],
    output: str = "y",
    opset: int = 21,
) -> ir.Model:
    graph = helper.make_graph(
        list(nodes),  # type: ignore[arg-type]
        "g",
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
        # The output's shape left undeclared: lengths counted at run time.
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
    )
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def _check(model: ir.Model, feeds: dict[str, np.ndarray]) -> None:
    (want,) = run_onnxruntime(ir.from_proto(ir.to_proto(model)), feeds).values()
    (got,) = CoreMLFramework().run_ir(model, feeds).values()
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


_X = np.arange(60, dtype=np.float32).reshape(3, 4, 5) - 20


@pytest.mark.parametrize(
    ("mode", "pads", "axes"),
    [
        ("constant", [1, -1, 2, 0, 2, -2], None),  # negative pads crop
        ("constant", [2, -1, 3, 1], [2, 0]),
        ("constant", [1, 2, 0, 3], [-1, 1]),
        ("edge", [2, 0, 1, 1, 3, 2], None),  # the first axis: MIL pads the last two only
        ("reflect", [1, 1, 2, 1, 2, 3], None),
        ("wrap", [1, 3, 4, 2, 0, 6], None),
    ],
)
def test_pad_with_pads_and_axes_at_run_time(
    mode: str, pads: list[int], axes: list[int] | None
) -> None:
    inputs = [("x", TensorProto.FLOAT, [3, 4, 5]), ("pads", TensorProto.INT64, [len(pads)])]
    names = ["x", "pads"]
    feeds = {"x": _X, "pads": np.array(pads, np.int64)}
    if mode == "constant":
        inputs.append(("value", TensorProto.FLOAT, []))
        names.append("value")
        feeds["value"] = np.array(7.5, np.float32)
    if axes is not None:
        if len(names) == 2:
            names.append("")
        inputs.append(("axes", TensorProto.INT64, [len(axes)]))
        names.append("axes")
        feeds["axes"] = np.array(axes, np.int64)
    _check(_model([helper.make_node("Pad", names, ["y"], mode=mode)], inputs), feeds)


@pytest.mark.parametrize("mode", ["wrap", "reflect", "edge"])
def test_pad_with_constant_pads_mil_cannot_pad(mode: str) -> None:
    pads = helper.make_tensor("pads", TensorProto.INT64, [6], [1, 0, 2, 2, 1, 0])
    nodes = [
        helper.make_node("Constant", [], ["p"], value=pads),
        helper.make_node("Pad", ["x", "p"], ["y"], mode=mode),
    ]
    _check(_model(nodes, [("x", TensorProto.FLOAT, [3, 4, 5])]), {"x": _X})


@pytest.mark.parametrize(
    ("starts", "ends", "axes", "steps"),
    [
        ([1, -3], [100, -1], [2, 0], [2, 1]),
        ([-1, 3], [-100, 0], [1, 2], [-2, -1]),
        ([0], [2], [1], [1]),
    ],
)
def test_slice_whose_output_length_is_counted_at_run_time(
    starts: list[int], ends: list[int], axes: list[int], steps: list[int]
) -> None:
    k = len(starts)
    inputs = [("x", TensorProto.FLOAT, [3, 4, 5])] + [
        (name, TensorProto.INT64, [k]) for name in ("starts", "ends", "axes", "steps")
    ]
    feeds = {"x": _X} | {
        name: np.array(v, np.int64)
        for name, v in zip(
            ("starts", "ends", "axes", "steps"), (starts, ends, axes, steps), strict=True
        )
    }
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])
    _check(_model([node], inputs), feeds)


@pytest.mark.parametrize(
    ("target", "axes"), [([2, 7, 3], None), ([5, 2], [0, 2]), ([6, 1], [-1, 1])]
)
def test_center_crop_pad_to_a_shape_given_at_run_time(
    target: list[int], axes: list[int] | None
) -> None:
    attributes = {} if axes is None else {"axes": axes}
    node = helper.make_node("CenterCropPad", ["x", "shape"], ["y"], **attributes)
    inputs = [("x", TensorProto.FLOAT, [3, 4, 5]), ("shape", TensorProto.INT64, [len(target)])]
    _check(_model([node], inputs), {"x": _X, "shape": np.array(target, np.int64)})
